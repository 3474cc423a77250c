import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import HappyCore
@testable import HappyConfig
@testable import HappySessions
@testable import HappyTestSupport

/// Events a manager emitted, for the tests.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [SessionEvent] = []
    func add(_ e: SessionEvent) { lock.lock(); items.append(e); lock.unlock() }
    var all: [SessionEvent] { lock.lock(); defer { lock.unlock() }; return items }
    var resolved: [CompletedPermission] {
        all.compactMap { if case .permissionResolved(_, let c) = $0 { return c }; return nil }
    }
    var thinking: [Bool] { all.compactMap { if case .thinking(_, let t) = $0 { return t }; return nil } }
}

@Suite struct PermissionRuleTests {
    @Test func allowSetRules() {
        let cmd: JSON = ["command": "rm -f x.txt"]
        #expect(PermissionRules.allows(["Bash(rm -f x.txt)"], tool: "Bash", input: cmd))
        #expect(!PermissionRules.allows(["Bash(rm -f y.txt)"], tool: "Bash", input: cmd))
        #expect(PermissionRules.allows(["Bash(rm:*)"], tool: "Bash", input: cmd))
        #expect(!PermissionRules.allows(["Bash(ls:*)"], tool: "Bash", input: cmd))
        #expect(PermissionRules.allows(["Read"], tool: "Read", input: [:]))
        #expect(!PermissionRules.allows(["Read"], tool: "Write", input: [:]))
        #expect(!PermissionRules.allows(["Write(x)"], tool: "Write", input: ["file_path": "x"]))
    }

    @Test func autoAnswersByModeAndRules() {
        #expect(PermissionRules.autoAllows(mode: .bypassPermissions, rules: [], tool: "Bash", input: [:]))
        #expect(PermissionRules.autoAllows(mode: .acceptEdits, rules: [], tool: "Write", input: [:]))
        #expect(!PermissionRules.autoAllows(mode: .acceptEdits, rules: [], tool: "Bash", input: [:]))
        #expect(!PermissionRules.autoAllows(mode: .default, rules: [], tool: "Edit", input: [:]))
        #expect(!PermissionRules.autoAllows(mode: .plan, rules: [], tool: "Edit", input: [:]))
        // Questions and plan exits always go to the user, even in bypass mode or in the allow-set.
        #expect(!PermissionRules.autoAllows(mode: .bypassPermissions, rules: ["AskUserQuestion"], tool: "AskUserQuestion", input: [:]))
        #expect(!PermissionRules.autoAllows(mode: .bypassPermissions, rules: [], tool: "ExitPlanMode", input: [:]))
    }

    @Test func alwaysRuleAndAppModes() {
        let p = PermissionRequest(id: "t", requestId: "r", tool: "Bash", arguments: ["command": "make test"], createdAt: 1)
        #expect(PermissionRules.rule(for: p) == "Bash(make test)")
        #expect(PermissionRules.rule(for: PermissionRequest(id: "t", requestId: "r", tool: "Write", arguments: [:], createdAt: 1)) == "Write")
        #expect(PermissionMode(appValue: "yolo") == .bypassPermissions)
        #expect(PermissionMode(appValue: "safe-yolo") == .default && PermissionMode(appValue: "read-only") == .default)
        #expect(PermissionMode(appValue: "acceptEdits") == .acceptEdits && PermissionMode(appValue: "nope") == nil)
    }

    @Test func controlLinesAreSingleJSONObjects() throws {
        for line in [ClaudeInput.userMessage("a \"quoted\"\nline"), ClaudeInput.allow(requestId: "r1", input: ["x": 1]),
                     ClaudeInput.deny(requestId: "r1", message: "no"), ClaudeInput.error(requestId: "r2", message: "?"),
                     ClaudeInput.control(requestId: "c1", ["subtype": "interrupt"])] {
            #expect(line.hasSuffix("\n") && line.dropLast().firstIndex(of: "\n") == nil)
            _ = try JSON.parse(String(line.dropLast()))
        }
        let u = try JSON.parse(String(ClaudeInput.userMessage("hi").dropLast()))
        #expect(u == ["type": "user", "message": ["role": "user", "content": "hi"], "parent_tool_use_id": .null])
        let a = try JSON.parse(String(ClaudeInput.allow(requestId: "r1", input: ["command": "ls"]).dropLast()))
        #expect(a["response"]?["request_id"] == "r1" && a["response"]?["response"]?["behavior"] == "allow"
                && a["response"]?["response"]?["updatedInput"]?["command"] == "ls")
    }

    @Test func completedRequestsCarryBothAllowKeys() {
        let p = PermissionRequest(id: "toolu_1", requestId: "r", tool: "Bash", arguments: ["command": "ls"], createdAt: 5)
        let c = CompletedPermission(request: p, outcome: .approved, completedAt: 9, reason: nil, mode: .acceptEdits,
                                    allowTools: ["Bash(ls)"])
        let j = c.agentStateJSON
        #expect(j["status"] == "approved" && j["completedAt"]?.int == 9 && j["mode"] == "acceptEdits")
        #expect(j["allowTools"] == ["Bash(ls)"] && j["allowedTools"] == ["Bash(ls)"])
    }
}

@Suite(.serialized) struct SessionPermissionFlowTests {
    func stdinLines(_ path: String) -> [JSON] {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").compactMap {
            (try? JSON.parse(String($0)))?["line"]?.string.flatMap { try? JSON.parse($0) }
        } ?? []
    }

    @Test func pendingAnsweredAllowSetAndCancel() async throws {
        let f = SessionFixture()
        let log = f.home + "/stdin.jsonl"
        let m = f.manager()
        let events = EventLog()
        await m.observe({ events.add($0) }, mirroring: false)
        let rec = try await m.spawn(f.request(env: ["FAKE_CLAUDE_STDIN_LOG": log, "FAKE_CLAUDE_INIT": "turn"]))
        try await m.send(rec.id, text: "__tool Bash {\"command\":\"touch approved.txt\"}")
        #expect(await eventually { await m.get(rec.id)?.pendingPermissions.count == 1 })
        let p = try #require(await m.get(rec.id)?.pendingPermissions.first)
        #expect(p.tool == "Bash" && p.id.hasPrefix("toolu_") && p.arguments["command"] == "touch approved.txt")
        #expect(await m.get(rec.id)?.thinking == true)
        // By prefix, the oldest request, "always".
        _ = try await m.answerPermission(String(rec.id.prefix(8)), requestId: nil,
                                         PermissionAnswer(approved: true, allowTools: ["Bash(touch approved.txt)"]))
        #expect(await eventually { FileManager.default.fileExists(atPath: f.work + "/approved.txt") })
        #expect(events.resolved.first?.outcome == .approved)
        #expect(await m.get(rec.id)?.pendingPermissions.isEmpty == true)
        // The same command again: answered from the allow-set, nobody asked.
        try FileManager.default.removeItem(atPath: f.work + "/approved.txt")
        try await m.send(rec.id, text: "__tool Bash {\"command\":\"touch approved.txt\"}")
        #expect(await eventually { FileManager.default.fileExists(atPath: f.work + "/approved.txt") })
        #expect(!events.all.contains { if case .permissionRequested = $0 { return events.resolved.count > 1 }; return false })
        let allows = stdinLines(log).filter { $0["response"]?["response"]?["behavior"] == "allow" }
        #expect(allows.count == 2)
        // A pending one canceled by an interrupt: claude's own cancel afterwards finds nothing.
        try await m.send(rec.id, text: "__tool Bash {\"command\":\"touch never.txt\"}")
        #expect(await eventually { await m.get(rec.id)?.pendingPermissions.count == 1 })
        try await m.interrupt(rec.id)
        #expect(await eventually { events.resolved.contains { $0.outcome == .canceled } })
        #expect(await m.get(rec.id)?.pendingPermissions.isEmpty == true)
        #expect(await m.peek(rec.id)?.thinking == false)
        // The fake logs a stdin line when it reads it: eventually, not at once.
        #expect(await eventually { self.stdinLines(log).contains { $0["type"] == "control_request" && $0["request"]?["subtype"] == "interrupt" } })
        #expect(await eventually { await m.get(rec.id)?.lastEventType == "result" })
        #expect(events.resolved.filter { $0.outcome == .canceled }.count == 1)
        // The record's log shows the answers (session logs reads them).
        let out = try String(contentsOfFile: rec.stdoutPath, encoding: .utf8)
        #expect(out.contains("\"subtype\":\"permission\"") && out.contains("\"decision\":\"allowed\"")
                && out.contains("\"decision\":\"canceled\""))
        // Answering a request that is not pending.
        await #expect(throws: SessionError.noSuchPermission(session: rec.id, request: "toolu_x")) {
            _ = try await m.answerPermission(rec.id, requestId: "toolu_x", PermissionAnswer(approved: true))
        }
        #expect(events.thinking.contains(true) && events.thinking.last == false)
        await f.cleanup(m)
    }

    @Test func denyTellsClaudeTheReasonOrTheStandardRefusal() async throws {
        let f = SessionFixture()
        let log = f.home + "/stdin.jsonl"
        let m = f.manager()
        let rec = try await m.spawn(f.request(env: ["FAKE_CLAUDE_STDIN_LOG": log, "FAKE_CLAUDE_INIT": "turn"]))
        try await m.send(rec.id, text: "__tool Bash {\"command\":\"touch no.txt\"}")
        #expect(await eventually { await m.get(rec.id)?.pendingPermissions.count == 1 })
        _ = try await m.answerPermission(rec.id, requestId: nil, PermissionAnswer(approved: false))
        #expect(await eventually { self.stdinLines(log).contains { $0["response"]?["response"]?["behavior"] == "deny" } })
        let deny = try #require(stdinLines(log).first { $0["response"]?["response"]?["behavior"] == "deny" })
        #expect(deny["response"]?["response"]?["message"]?.string == PermissionRules.standardRefusal)
        try await m.send(rec.id, text: "__tool Bash {\"command\":\"touch no2.txt\"}")
        #expect(await eventually { await m.get(rec.id)?.pendingPermissions.count == 1 })
        _ = try await m.answerPermission(rec.id, requestId: nil, PermissionAnswer(approved: false, reason: "use make"))
        #expect(await eventually { self.stdinLines(log).filter { $0["response"]?["response"]?["behavior"] == "deny" }.count == 2 })
        #expect(stdinLines(log).last { $0["response"]?["response"]?["behavior"] == "deny" }?["response"]?["response"]?["message"] == "use make")
        #expect(!FileManager.default.fileExists(atPath: f.work + "/no.txt"))
        await f.cleanup(m)
    }

    /// A claude that asks the daemon something it does not handle gets an error answer.
    @Test func unknownControlRequestsGetAnErrorResponse() async throws {
        let f0 = SessionFixture()
        let script = f0.home + "/asker"
        let log = f0.home + "/stdin.txt"
        try """
        #!/bin/sh
        printf '%s\\n' '{"type":"control_request","request_id":"q1","request":{"subtype":"mystery"}}'
        while IFS= read -r line; do printf '%s\\n' "$line" >> \(log); done
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let f = SessionFixture { $0.claude.command = script }
        let m = f.manager()
        _ = try await m.spawn(f.request())
        #expect(await eventually { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("q1") })
        let line = try #require(try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").first)
        let j = try JSON.parse(String(line))
        #expect(j["type"] == "control_response" && j["response"]?["subtype"] == "error" && j["response"]?["request_id"] == "q1")
        #expect(j["response"]?["error"]?.string?.contains("mystery") == true)
        await f.cleanup(m)
        try? FileManager.default.removeItem(atPath: f0.home)
    }

    @Test func idsResolveByLocalIdServerIdAndPrefix() async throws {
        let f = SessionFixture()
        let m = f.manager()
        let a = try await m.spawn(f.request())
        let b = try await m.spawn(f.request())
        await m.setSync(a.id, serverSessionId: "cmsrv0123456789", state: .synced)
        #expect(try await m.resolve(a.id).id == a.id)
        #expect(try await m.resolve("cmsrv0123456789").id == a.id)
        #expect(try await m.resolve("cmsrv01").id == a.id)
        #expect(try await m.resolve(String(b.id.prefix(10))).id == b.id)
        await #expect(throws: SessionError.self) { _ = try await m.resolve("cmsr") }  // shorter than 6
        await #expect(throws: SessionError.notFound("zzzzzzzz")) { _ = try await m.resolve("zzzzzzzz") }
        #expect(await m.get(a.id)?.sync == .synced)
        #expect(await m.peek(a.id)?.json["serverSessionId"] == "cmsrv0123456789")
        #expect(await m.get(b.id)?.json["serverSessionId"] == .null)
        #expect(await m.peek(b.id)?.json["sync"] == "off")
        await f.cleanup(m)
    }

    @Test func aSessionWhoseRecordCannotBeWrittenIsNotStarted() async throws {
        let f = SessionFixture()
        let m = f.manager()
        await m.setRecordWriter { _, path in throw FileIOError.cannotWrite(path: path, reason: "No space left on device") }
        let pidsBefore = Set(FileManagerShim.listDirectory("/proc").compactMap { Int32($0) })
        await #expect(throws: SessionError.self) { _ = try await m.spawn(f.request(prompt: "hi")) }
        #expect(await m.liveCount() == 0)
        #expect(await m.list(includeFinished: true).isEmpty)
        // Nothing left behind: no session folder, no claude process.
        #expect(FileManagerShim.listDirectory(f.config.home.sessionsDir).isEmpty)
        let stray = Set(FileManagerShim.listDirectory("/proc").compactMap { Int32($0) }).subtracting(pidsBefore).filter {
            (ProcessProbe.cmdline($0) ?? []).contains { $0.hasSuffix("fake_claude/claude") } && ProcessProbe.isAlive($0)
        }
        #expect(stray.isEmpty)
        await f.cleanup(m)
    }

    @Test func bypassAsRootWithoutTheSandboxFlagIsRefusedClearly() async throws {
        guard getuid() == 0 else { return }
        let f = SessionFixture()
        let m = f.manager()
        var req = f.request()
        req.permissionMode = .bypassPermissions
        await #expect(throws: SessionError.self) { _ = try await m.spawn(req) }
        #expect(await m.liveCount() == 0)
        req.environmentVariables["IS_SANDBOX"] = "1"
        let rec = try await m.spawn(req)
        #expect(rec.permissionMode == .bypassPermissions)
        await f.cleanup(m)
    }
}

@Suite struct SpawnRequestParseTests {
    @Test func controlAPIBodiesRoundTrip() throws {
        var r = SpawnRequest(directory: "/w", prompt: "p", createDirectory: true, environmentVariables: ["A": "1"], startedBy: "x",
                             permissionMode: .plan, model: "m", resume: "c")
        r.effortLevel = nil
        #expect(try SpawnRequest.parse(r.controlAPIBody, origin: .controlAPI, home: "/h") == r)
        #expect(throws: SpawnRequestError.self) { try SpawnRequest.parse(["directory": "rel"], origin: .controlAPI, home: "/h") }
        #expect(throws: SpawnRequestError.self) { try SpawnRequest.parse(["directory": "/w", "permissionMode": "fast"], origin: .controlAPI, home: "/h") }
        // The local user may set loader variables for their own session.
        #expect(try SpawnRequest.parse(["directory": "/w", "environmentVariables": ["LD_PRELOAD": "x"]], origin: .controlAPI, home: "/h")
                .environmentVariables["LD_PRELOAD"] == "x")
    }

    @Test func phoneParams() throws {
        let p = try SpawnRequest.parse(["type": "spawn-in-directory", "directory": "~/proj", "approvedNewDirectoryCreation": true,
                                        "agent": "claude", "permissionMode": "yolo", "modelMode": "opus", "effortLevel": "high",
                                        "resumeClaudeSessionId": "abc", "token": .null],
                                       origin: .phone, home: "/home/u")
        #expect(p.directory == "/home/u/proj" && p.createDirectory && p.startedBy == "mobile-app")
        #expect(p.permissionMode == .bypassPermissions && p.model == "opus" && p.effortLevel == "high" && p.resume == "abc")
        let d = try SpawnRequest.parse(["directory": "/w", "modelMode": "default", "permissionMode": "something-new"], origin: .phone, home: "/h")
        #expect(d.model == nil && d.permissionMode == nil && !d.createDirectory)
        for name in ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "NODE_OPTIONS", "DYLD_INSERT_LIBRARIES"] {
            #expect(throws: SpawnRequestError.self) {
                try SpawnRequest.parse(["directory": "/w", "environmentVariables": [name: "x"]], origin: .phone, home: "/h")
            }
        }
        for bad: JSON in [["directory": "/w", "environmentVariables": ["A B": "x"]], ["directory": "/w", "environmentVariables": ["": "x"]],
                          ["directory": "/w", "environmentVariables": ["A": 1]], ["directory": "/w", "agent": "gemini"], [:], ["directory": 3]] {
            #expect(throws: SpawnRequestError.self) { try SpawnRequest.parse(bad, origin: .phone, home: "/h") }
        }
    }
}
