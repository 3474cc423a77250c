import Foundation
import CPosix
import Testing
import Glibc
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappySessions
@testable import HappySync
@testable import HappyDaemon
@testable import HappyCommands
@testable import HappyTestSupport

@Suite struct PresentationTests {
    @Test func lastLinesAndFollower() throws {
        let dir = makeTempHome("logs"); defer { removeTree(dir) }
        let p = dir + "/a.log"
        let text = (1...5000).map { "line \($0)" }.joined(separator: "\n") + "\n"
        try FileIO.atomicWrite(text, to: p)
        #expect(DaemonLogs.lastLines(p, 3) == ["line 4998", "line 4999", "line 5000"])
        #expect(DaemonLogs.lastLines(p, 10000).count == 5000)
        // Follower: appends, then a switch to a newer file.
        let current = TestBox(p)
        let f = FileFollower(resolve: { current.value }, startAtEnd: true)
        #expect(f.poll().bytes.isEmpty)
        let fd = open(p, O_WRONLY | O_APPEND); _ = write(fd, "x\n", 2); close(fd)
        #expect(f.poll().bytes == Array("x\n".utf8))
        let p2 = dir + "/b.log"
        try FileIO.atomicWrite("new\n", to: p2)
        current.value = p2
        let r = f.poll()
        #expect(r.switchedTo == p2 && r.bytes == Array("new\n".utf8))
        // Truncation (session output rotation) restarts at 0.
        try FileIO.atomicWrite("z\n", to: p2)
        #expect(f.poll().bytes == Array("z\n".utf8))
        var a = LineAssembler()
        #expect(a.feed(Array("ab\ncd".utf8)) == ["ab"])
        #expect(a.feed(Array("e\n".utf8)) == ["cde"])
    }

    @Test func followerFinishesARenamedFileBeforeTheNewOne() throws {
        let dir = makeTempHome("follow"); defer { removeTree(dir) }
        let p = dir + "/audit.jsonl"
        try FileIO.atomicWrite("a\n", to: p)
        let f = FileFollower(resolve: { p }, startAtEnd: true)
        #expect(f.poll().bytes.isEmpty)
        // Appended to the old file, which is then renamed away before the next poll, and a
        // new file starts under the path: the follower reads the old file to its end
        // (terminating a partial line), then the new one from its start.
        let fd = open(p, O_WRONLY | O_APPEND); _ = write(fd, "b\nc", 3); close(fd)
        #expect(rename(p, dir + "/audit.1.jsonl") == 0)
        try FileIO.atomicWrite("d\n", to: p)
        let r = f.poll()
        #expect(String(decoding: r.bytes, as: UTF8.self) == "b\nc\nd\n" && r.switchedTo == p)
        // Between the rename and the new file, nothing is lost or repeated.
        let fd2 = open(p, O_WRONLY | O_APPEND); _ = write(fd2, "x\n", 2); close(fd2)
        #expect(rename(p, dir + "/audit.1.jsonl") == 0)
        #expect(f.poll().bytes == Array("x\n".utf8))
        #expect(f.poll().bytes.isEmpty)
        try FileIO.atomicWrite("y\n", to: p)
        #expect(f.poll().bytes == Array("y\n".utf8))
        // Truncated in place: read again from the start.
        let t = open(p, O_WRONLY | O_TRUNC); close(t)
        #expect(f.poll().bytes.isEmpty)
        let e = open(p, O_WRONLY | O_APPEND); _ = write(e, "e\n", 2); close(e)
        #expect(f.poll().bytes == Array("e\n".utf8))
        try FileIO.atomicWrite("a\nb\nc\n", to: p)
        #expect(DaemonLogs.lastLines(p, 5, end: 4) == ["a", "b"])
    }

    @Test func sessionLogFormatting() {
        #expect(SessionLogFormatter.render(#"{"type":"system","subtype":"init","session_id":"abc","model":"m1"}"#) == ["[system] session started, claude session abc, model m1"])
        #expect(SessionLogFormatter.render(#"{"type":"assistant","message":{"content":[{"type":"text","text":"Hello"},{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}"#)
                == ["assistant: Hello", #"tool use: Bash {"command":"ls"}"#])
        #expect(SessionLogFormatter.render(#"{"type":"result","subtype":"success","num_turns":2,"total_cost_usd":0.0123,"result":"done"}"#)
                == ["result: success, 2 turns, $0.0123", "  done"])
        #expect(SessionLogFormatter.render("not json") == ["[unparsed] not json"])
        #expect(SessionLogFormatter.render("") == [])
    }

    @Test func doctorChecks() throws {
        let home = makeTempHome("doc"); defer { removeTree(home) }
        var cfg = HappyConfig(homeDir: home)
        cfg.claude.command = "definitely-not-a-command-xyz"
        var checks = Doctor.run(config: cfg, environment: ["PATH": "/usr/bin:/bin"])
        func level(_ n: String) -> DoctorCheck.Level? { checks.first { $0.name == n }?.level }
        #expect(level("claude") == .fail && level("credentials") == .warn && level("daemon") == .warn && level("home") == .ok)
        #expect(level("server") == .skip && level("stale-state") == .ok && level("logs") == .ok)
        #expect(Doctor.json(checks)["ok"] == false)
        cfg.claude.command = "sh"
        try FileIO.atomicWrite(#"{"token":"abc","secret":"x"}"#, to: home + "/access.key")
        try FileIO.atomicWrite("999999\n", to: home + "/daemon.state.json.lock")
        chmod(home, 0o755)
        checks = Doctor.run(config: cfg, environment: ["PATH": "/usr/bin:/bin"])
        #expect(level("claude") == .ok && level("credentials") == .ok && level("stale-state") == .warn && level("home") == .warn)
        // The token never appears in the report.
        #expect(!Doctor.json(checks).serialized().contains("abc\""))
        try FileIO.atomicWrite("{}", to: home + "/access.key")
        checks = Doctor.run(config: cfg, environment: ["PATH": "/usr/bin:/bin"])
        #expect(level("credentials") == .fail)
    }
}
