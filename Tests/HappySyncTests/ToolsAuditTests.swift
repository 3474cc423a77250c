import Foundation
import Glibc
import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappySync

@Suite("Tools: RPC audit log")
struct ToolsAuditTests {
    func lines(_ path: String) -> [JSON] {
        guard let b = try? FileIO.read(path) else { return [] }
        return String(decoding: b, as: UTF8.self).split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
    }

    func entry(_ i: Int, method: String = "bash", summary: String = "echo hi") -> AuditEntry {
        AuditEntry(time: 1_700_000_000_000 + Int64(i), scope: .machine, method: method, summary: summary, result: .ok,
                   durationMs: Int64(i))
    }

    @Test func lineShape() async throws {
        let s = ToolSandbox()
        let path = s.base + "/home/logs/rpc-audit.jsonl"
        let log = RPCAuditLog(path: path, maxBytes: 1 << 20, maxFiles: 10)
        log.record(AuditEntry(time: 1_700_000_000_123, scope: .session, sessionId: "srv-1", method: "readFile",
                              summary: "/x/y", result: .refused, durationMs: 4))
        log.record(AuditEntry(time: 1_700_000_000_124, scope: .machine, method: "stop-daemon", summary: "",
                              result: .ok, durationMs: 0))
        await log.flush()
        let ls = lines(path)
        #expect(ls.count == 2)
        #expect(ls[0] == ["time": 1_700_000_000_123, "scope": "session", "sessionId": "srv-1", "method": "readFile",
                          "summary": "/x/y", "result": "refused", "durationMs": 4])
        #expect(toolKeys(ls[1]) == ["time", "scope", "method", "summary", "result", "durationMs"])
        #expect(try AuditEntry(json: ls[0]).sessionId == "srv-1")
        // One JSON object per line, newline-terminated.
        let raw = String(decoding: try #require(try FileIO.read(path)), as: UTF8.self)
        #expect(raw.hasSuffix("}\n") && raw.split(separator: "\n").count == 2)
        #expect(mode(path) == 0o600)
        #expect(mode(s.base + "/home/logs") == 0o700)
    }

    func mode(_ p: String) -> mode_t { FileIO.mode(p) ?? 0 }

    @Test func summariesNeverCarryContentsOrSecrets() throws {
        let long = String(repeating: "x", count: 500)
        let bash = AuditSummary.of(method: "bash", params: ["command": .string("echo " + long), "timeout": 5])
        #expect(bash.count == 200 && bash.hasSuffix("…") && bash.hasPrefix("echo xxx"))
        #expect(AuditSummary.of(method: "bash", params: ["command": "ls", "cwd": "/p"]) == "ls (in /p)")

        let secret = "TOP-SECRET-CONTENT"
        let write = AuditSummary.of(method: "writeFile", params: ["path": "/a/b.txt",
                                                                   "content": .string(Base64.encode(Array(secret.utf8))),
                                                                   "expectedHash": "abc"])
        #expect(write == "/a/b.txt")
        for m in ["readFile", "listDirectory", "getDirectoryTree"] {
            #expect(AuditSummary.of(method: m, params: ["path": "/p", "maxDepth": 2]) == "/p")
        }
        #expect(AuditSummary.of(method: "ripgrep", params: ["args": ["-n", "two words"], "cwd": "src"])
                == "-n 'two words' (in src)")
        let spawn = AuditSummary.of(method: "spawn-happy-session",
                                    params: ["directory": "/w/proj", "token": "tok-SECRET",
                                             "environmentVariables": ["API_KEY": "val-SECRET"]])
        #expect(spawn == "/w/proj")
        #expect(AuditSummary.of(method: "permission", params: ["id": "t1", "approved": true]) == "approved")
        #expect(AuditSummary.of(method: "permission", params: ["id": "t1", "approved": false], permissionTool: "Bash")
                == "Bash denied")
        #expect(AuditSummary.of(method: "stop-session", params: ["sessionId": "abc"]) == "abc")
        #expect(AuditSummary.of(method: "killSession", params: ["x": "y"]) == "")

        // A whole line built from params.
        let e = AuditEntry(scope: .session, sessionId: "s", method: "writeFile",
                           params: ["path": "/a", "content": .string(Base64.encode(Array(secret.utf8)))],
                           result: .ok, startedMs: 5, durationMs: 2)
        let text = e.json.serialized()
        #expect(!text.contains(Base64.encode(Array(secret.utf8))) && !text.contains(secret))
        #expect(!spawn.contains("SECRET"))
    }

    @Test func rotationShiftsFilesAndKeepsTheCount() async throws {
        let s = ToolSandbox()
        let path = s.base + "/logs/rpc-audit.jsonl"
        let lineBytes = entry(0).json.serialized().utf8.count + 1
        // Three lines per file.
        let log = RPCAuditLog(path: path, maxBytes: lineBytes * 3, maxFiles: 3)
        for i in 0..<20 { log.record(entry(i)) }
        await log.flush()
        let names = Set(FileManagerShim.listDirectory(s.base + "/logs"))
        #expect(names == ["rpc-audit.jsonl", "rpc-audit.1.jsonl", "rpc-audit.2.jsonl"])
        let cur = lines(path).map { $0["durationMs"]?.int ?? -1 }
        let one = lines(RPCAuditLog.rotatedPath(path, 1)).map { $0["durationMs"]?.int ?? -1 }
        let two = lines(RPCAuditLog.rotatedPath(path, 2)).map { $0["durationMs"]?.int ?? -1 }
        // 20 lines: 18 in six full files (the last four deleted... shifted out), 2 in the current one.
        #expect(cur == [18, 19])
        #expect(one == [15, 16, 17])
        #expect(two == [12, 13, 14])
        #expect(RPCAuditLog.rotatedPath(path, 4) == s.base + "/logs/rpc-audit.4.jsonl")
    }

    @Test func theSizeOfAnExistingFileCountsAndOldFilesBeyondTheLimitGo() async throws {
        let s = ToolSandbox()
        let logs = s.mkdir("logs")
        let path = logs + "/rpc-audit.jsonl"
        try FileIO.atomicWrite(String(repeating: "{}\n", count: 100), to: path)  // 300 bytes
        try FileIO.atomicWrite("{}\n", to: logs + "/rpc-audit.7.jsonl")
        try FileIO.atomicWrite("{\"old\":1}\n", to: logs + "/rpc-audit.1.jsonl")
        try FileIO.atomicWrite("{\"old\":2}\n", to: logs + "/rpc-audit.2.jsonl")
        try FileIO.atomicWrite("keep\n", to: logs + "/2026-01-01-00-00-00-pid-1-daemon.log")
        let log = RPCAuditLog(path: path, maxBytes: 200, maxFiles: 3)
        log.record(entry(1))
        await log.flush()
        let names = Set(FileManagerShim.listDirectory(logs))
        #expect(names == ["rpc-audit.jsonl", "rpc-audit.1.jsonl", "rpc-audit.2.jsonl",
                          "2026-01-01-00-00-00-pid-1-daemon.log"])
        // The old current file (already past the size) moved to .1; the new line starts a new file.
        #expect(lines(path).count == 1)
        #expect(lines(logs + "/rpc-audit.1.jsonl").count == 100)
        // .1 moved to .2; the old .2 (beyond the count) and .7 are gone.
        #expect(lines(logs + "/rpc-audit.2.jsonl") == [["old": 1]])
    }

    @Test func oneFileMeansNoRotatedFiles() async throws {
        let s = ToolSandbox()
        let path = s.base + "/logs/rpc-audit.jsonl"
        let log = RPCAuditLog(path: path, maxBytes: 10, maxFiles: 1)
        for i in 0..<5 { log.record(entry(i)) }
        await log.flush()
        #expect(FileManagerShim.listDirectory(s.base + "/logs") == ["rpc-audit.jsonl"])
    }

    @Test func aSymlinkIsNotFollowedAndAFailureDoesNotThrow() async throws {
        let s = ToolSandbox()
        let logs = s.mkdir("logs")
        let target = s.write("outside/target", "untouched\n")
        s.symlink(target, at: "logs/rpc-audit.jsonl")
        let log = RPCAuditLog(path: logs + "/rpc-audit.jsonl", maxBytes: 1 << 20, maxFiles: 3)
        log.record(entry(1))
        log.record(entry(2))
        await log.flush()
        #expect(s.read("outside/target") == "untouched\n")
        // A folder that cannot be created: recorded lines are dropped, nothing throws.
        s.write("a-file", "x")
        let broken = RPCAuditLog(path: s.base + "/a-file/logs/rpc-audit.jsonl", maxBytes: 100, maxFiles: 2)
        broken.record(entry(1))
        await broken.flush()
    }

    @Test func theConfigDecidesPathSizeAndCount() {
        var c = HappyConfig(homeDir: "/h")
        c.daemon.logMaxMiB = 0.5
        c.daemon.logFiles = 4
        let log = RPCAuditLog.forConfig(c)
        #expect(log?.path == "/h/logs/rpc-audit.jsonl")
        #expect(log?.maxBytes == 524_288)
        #expect(log?.maxFiles == 4)
        c.rpc.audit = false
        #expect(RPCAuditLog.forConfig(c) == nil)
    }

    @Test func toolOutcomesFeedTheAuditLine() async throws {
        let s = ToolSandbox()
        let ctx = s.session(s.mkdir("root/p"))
        let started = ISOTime.nowMs()
        let params: JSON = ["path": "/etc/passwd"]
        let o = try #require(await RPCTools.run("readFile", params: params, context: ctx))
        let e = AuditEntry(scope: ctx.auditScope, sessionId: ctx.sessionId, method: "readFile", params: params,
                           result: o.audit, startedMs: started, durationMs: ISOTime.nowMs() - started)
        #expect(e.json["scope"] == "session" && e.json["sessionId"] == "sess-1")
        #expect(e.json["result"] == "refused" && e.json["summary"] == "/etc/passwd")
        #expect(await RPCTools.run("spawn-happy-session", params: [:], context: ctx) == nil)
        #expect(RPCTools.methods.count == 7 && RPCTools.methods.allSatisfy(RPCTools.isTool))
    }
}
