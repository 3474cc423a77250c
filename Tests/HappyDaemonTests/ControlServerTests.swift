import Foundation
import CPosix
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappySessions
@testable import HappySync
@testable import HappyDaemon
@testable import HappyTestSupport

/// A running in-process engine on a free port with a fake session manager.
final class EngineHarness: @unchecked Sendable {
    let home: String
    let sessions = FakeSessions()
    let engine: DaemonEngine
    var port: Int { engine.httpPort }
    var token: String { engine.controlToken ?? "" }
    var client: ControlClient { ControlClient(port: port, token: token, timeout: 5) }

    init(idleTimeout: Double = 10, healthCheck: Double = 60, link: ServerLinkFactory? = nil) async throws {
        home = makeTempHome("engine")
        var cfg = HappyConfig(homeDir: home)
        cfg.profile = "test"
        cfg.serverUrl = "http://127.0.0.1:9"
        cfg.daemon.httpPort = 0
        cfg.daemon.healthCheckSeconds = healthCheck
        var opts = DaemonOptions()
        opts.handleSignals = false
        opts.installLogSink = false
        opts.idleTimeout = idleTimeout
        opts.trimResidentPages = false  // never touch the shared test process's mappings
        opts.shutdownBudget = 5
        opts.serverLinkShutdownBudget = 1
        engine = DaemonEngine(config: cfg, sessions: sessions, serverLinkFactory: link, options: opts)
        try await engine.start()
    }

    func raw(_ s: String) async -> HTTPResponse? { let p = port; return await off { rawExchange(port: p, Array(s.utf8)) } }

    func stop() async {
        engine.requestShutdown(source: .cli, keepSessions: true)
        await engine.waitUntilStopped()
        removeTree(home)
    }
}

@Suite(.serialized) struct ControlServerTests {
    @Test func stateFileAndHealth() async throws {
        let h = try await EngineHarness()
        let st = DaemonStateFile.read(h.home + "/daemon.state.json")
        guard case .ok(let s) = st else { Issue.record("no state: \(st)"); await h.stop(); return }
        #expect(s.pid == getpid() && s.httpPort == h.port && s.profile == "test" && s.controlToken.count >= 32)
        #expect(FileIO.exists(s.daemonLogPath))
        #expect(FileIO.mode(h.home + "/daemon.state.json") == 0o600)
        #expect(await h.sessions.started)
        // /health needs no token.
        let r = try await off { try ControlClient(port: h.port, token: nil).request("GET", "/health") }
        #expect(r.status == 200)
        #expect(r.json?["status"] == "ok" && r.json?["pid"]?.int == Int(getpid()) && r.json?["version"]?.string == HappyVersion.current)
        #expect(r.json?["uptimeMs"]?.int != nil)
        await h.stop()
        #expect(!FileIO.exists(h.home + "/daemon.state.json"))
        #expect(!FileIO.exists(h.home + "/daemon.state.json.lock"))
    }

    @Test func statusRoute() async throws {
        struct Link: ServerLink {
            func start() async {}
            func status() async -> ServerLinkStatus { .tokenRejected }
            func shutdown(source: ShutdownSource) async {}
        }
        let h = try await EngineHarness(link: { _ in Link() })
        try FileIO.writeJSON(["schemaVersion": 2, "machineId": "m-1"], to: h.home + "/settings.json")
        let j = try #require(try await off { try h.client.request("GET", "/status") }.json)
        #expect(Set(j.object?.keys ?? [:].keys) == ["pid", "httpPort", "version", "profile", "machineId", "serverUrl", "server", "startedAt", "sessions"])
        let st = try await off { try h.client.status() }
        #expect(st.server == .tokenRejected && st.machineId == "m-1" && st.profile == "test" && st.sessions == 0)
        #expect(st.httpPort == h.port && st.serverUrl == "http://127.0.0.1:9")
        await h.stop()
        // Without a link: no-credentials.
        let h2 = try await EngineHarness()
        #expect(try await off { try h2.client.status() }.server == .noCredentials)
        // The engine owns settings.json: it creates the machine id at start (UUID v4, lower case).
        let mid = try await off { try h2.client.status() }.machineId
        #expect(mid?.count == 36 && mid == mid?.lowercased())
        await h2.stop()
    }

    @Test func sessionRoutes() async throws {
        let h = try await EngineHarness()
        let c = h.client
        let dir = h.home + "/work"
        // Missing directory → 404 CREATE_DIRECTORY.
        func spawn(_ req: SpawnRequest) async throws -> ControlResponse {
            try await off { try c.request("POST", "/sessions", body: req.controlAPIBody) }
        }
        var r = try await spawn(SpawnRequest(directory: dir))
        #expect(r.status == 404)
        #expect(r.json?["actionRequired"] == "CREATE_DIRECTORY" && r.json?["directory"]?.string == dir && r.json?["error"]?.string != nil)
        await #expect(throws: SessionError.directoryMissing(dir)) { try await off { try c.spawn(SpawnRequest(directory: dir)) } }
        let created = try await off { try c.spawn(SpawnRequest(directory: dir, prompt: "hi", createDirectory: true,
                                                                environmentVariables: ["A": "1"])) }
        let id = created.id
        #expect(created.status == .running && created.startedBy == "cli")
        // Unresolved variable → 400.
        r = try await spawn(SpawnRequest(directory: dir, environmentVariables: ["B": "${NOPE}"]))
        #expect(r.status == 400)
        #expect(try await off { try c.listSessions(all: false) }.count == 1)
        #expect(try await off { try c.session(id) }.id == id)
        #expect(try await off { try c.request("GET", "/sessions/nope") }.status == 404)
        // Messages.
        #expect(try await off { try c.request("POST", "/sessions/\(id)/messages", body: ["text": "yo"]) }.status == 202)
        #expect(await h.sessions.sent.map(\.1) == ["yo"])
        #expect(try await off { try c.request("POST", "/sessions/\(id)/messages", body: ["text": 5]) }.status == 400)
        #expect(try await off { try c.request("POST", "/sessions/\(id)/messages") }.status == 400)
        #expect(try await off { try c.request("POST", "/sessions/zzz/messages", body: ["text": "x"]) }.status == 404)
        // Stop → 200 with the stopped record; then messages → 409; list without --all is empty.
        r = try await off { try c.request("DELETE", "/sessions/\(id)") }
        #expect(r.status == 200 && r.json?["session"]?["status"] == "stopped")
        #expect(try await off { try c.request("POST", "/sessions/\(id)/messages", body: ["text": "x"]) }.status == 409)
        #expect(try await off { try c.listSessions(all: false) }.isEmpty)
        #expect(try await off { try c.listSessions(all: true) }.count == 1)
        #expect(try await off { try c.request("DELETE", "/sessions/nope") }.status == 404)
        // Limit → 429.
        for _ in 0..<3 { _ = try await spawn(SpawnRequest(directory: dir)) }
        r = try await spawn(SpawnRequest(directory: dir))
        #expect(r.status == 429 && r.json?["error"]?.string?.contains("sessions.max") == true)
        // Field validation.
        let bad: [JSON] = [["directory": 5], ["prompt": "x"], ["directory": "rel/dir"], ["directory": .string(dir), "createDirectory": "yes"],
                           ["directory": .string(dir), "environmentVariables": ["A": 1]], ["directory": .string(dir), "prompt": 3], [1, 2]]
        for body in bad {
            #expect(try await off { try c.request("POST", "/sessions", body: body) }.status == 400, "\(body)")
        }
        await h.stop()
    }

    @Test func checkOrderAndErrors() async throws {
        let h = try await EngineHarness()
        let p = h.port, t = h.token
        let host = "Host: 127.0.0.1:\(p)\r\n"
        let auth = "Authorization: Bearer \(t)\r\n"
        func status(_ s: String) async -> Int? { await h.raw(s)?.status }
        func isJSONError(_ s: String) async -> Bool {
            guard let r = await h.raw(s), let j = try? JSON.parse(r.body) else { return false }
            return j["error"]?.string != nil && r.headers["Content-Type"] == "application/json"
        }
        // 403 beats everything.
        #expect(await status("GET /nope HTTP/1.1\r\nHost: evil.com:\(p)\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\n{{{") == 403)
        #expect(await status("GET /health HTTP/1.1\r\n\r\n") == 403)
        #expect(await status("GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(p + 1)\r\n\r\n") == 403)
        #expect(await status("GET /health HTTP/1.1\r\nHost: localhost:\(p)\r\n\r\n") == 200)
        // 401 beats 415/400/404.
        #expect(await status("POST /nope HTTP/1.1\r\n\(host)Content-Length: 3\r\nContent-Type: text/plain\r\n\r\n{{{") == 401)
        #expect(await status("GET /status HTTP/1.1\r\n\(host)Authorization: Bearer wrong\r\n\r\n") == 401)
        #expect(await status("GET /status HTTP/1.1\r\n\(host)\r\n") == 401)
        // 415 beats 413 / 400 / 404.
        #expect(await status("POST /nope HTTP/1.1\r\n\(host)\(auth)Content-Length: 3\r\nContent-Type: text/plain\r\n\r\n{{{") == 415)
        #expect(await status("POST /sessions HTTP/1.1\r\n\(host)\(auth)Content-Length: 2000000\r\nContent-Type: text/plain\r\n\r\n") == 415)
        // 413 beats 400 / 404.
        #expect(await status("POST /nope HTTP/1.1\r\n\(host)\(auth)Content-Length: 2000000\r\nContent-Type: application/json\r\n\r\n{{{") == 413)
        // 400 (body) beats 404.
        #expect(await status("POST /nope HTTP/1.1\r\n\(host)\(auth)Content-Length: 3\r\nContent-Type: application/json\r\n\r\n{{{") == 400)
        #expect(await status("POST /nope HTTP/1.1\r\n\(host)\(auth)Content-Length: 2\r\nContent-Type: application/json\r\n\r\n{}") == 404)
        // 405 on a known path, with Allow.
        let r405 = await h.raw("PUT /sessions HTTP/1.1\r\n\(host)\(auth)\r\n")
        #expect(r405?.status == 405 && r405?.headers["Allow"] == "GET, POST")
        #expect(await status("POST /health HTTP/1.1\r\n\(host)\(auth)\r\n") == 405)
        #expect(await status("DELETE /stop HTTP/1.1\r\n\(host)\(auth)\r\n") == 405)
        // Empty body where one is required → 400; charset parameter accepted.
        #expect(await status("POST /sessions HTTP/1.1\r\n\(host)\(auth)Content-Length: 0\r\n\r\n") == 400)
        #expect(await status("POST /sessions HTTP/1.1\r\n\(host)\(auth)Content-Length: 2\r\nContent-Type: application/json; charset=utf-8\r\n\r\n{}") == 400)
        // 431.
        let big = String(repeating: "a", count: 17 * 1024)
        #expect(await status("GET /health HTTP/1.1\r\n\(host)X-Big: \(big)\r\n\r\n") == 431)
        // Malformed → 400.
        #expect(await status("NOT HTTP AT ALL\r\n\r\n") == 400)
        #expect(await status("GET /health HTTP/1.1\r\n\(host)Content-Length: abc\r\n\r\n") == 400)
        for s in ["GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "GET /status HTTP/1.1\r\n\(host)\r\n",
                  "POST /nope HTTP/1.1\r\n\(host)\(auth)Content-Length: 1\r\nContent-Type: application/json\r\n\r\n{",
                  "GET /nope HTTP/1.1\r\n\(host)\(auth)\r\n", "PUT /stop HTTP/1.1\r\n\(host)\(auth)\r\n"] {
            #expect(await isJSONError(s), "\(s)")
        }
        #expect(try await off { try ControlClient(port: p, token: nil).request("GET", "/health") }.status == 200)
        await h.stop()
    }

    /// A web page must not reach the control API (SPEC §4.2 as amended by issue 15): any
    /// `Origin`, or `Sec-Fetch-Site: cross-site|same-site`, is 403 before the token check.
    @Test func browsersAreRefused() async throws {
        let h = try await EngineHarness()
        let p = h.port, t = h.token
        let host = "Host: 127.0.0.1:\(p)\r\n"
        let auth = "Authorization: Bearer \(t)\r\n"
        func status(_ s: String) async -> Int? { await h.raw(s)?.status }
        for extra in ["Origin: http://evil.example\r\n", "Origin: null\r\n", "Origin: http://127.0.0.1:\(p)\r\n",
                      "Sec-Fetch-Site: cross-site\r\n", "Sec-Fetch-Site: same-site\r\n"] {
            #expect(await status("GET /health HTTP/1.1\r\n\(host)\(extra)\r\n") == 403, "\(extra)")
            #expect(await status("GET /status HTTP/1.1\r\n\(host)\(auth)\(extra)\r\n") == 403, "\(extra)")
            // Before the token check.
            #expect(await status("GET /status HTTP/1.1\r\n\(host)\(extra)\r\n") == 403, "\(extra)")
            #expect(await status("POST /stop HTTP/1.1\r\n\(host)\(auth)\(extra)Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}") == 403)
        }
        let r = await h.raw("GET /health HTTP/1.1\r\n\(host)Origin: http://evil.example\r\n\r\n")
        #expect(r.flatMap { try? JSON.parse($0.body) }?["error"]?.string?.contains("browsers") == true)
        // A user typing the URL (Sec-Fetch-Site: none) and our own clients (no such headers) are served.
        #expect(await status("GET /health HTTP/1.1\r\n\(host)Sec-Fetch-Site: none\r\n\r\n") == 200)
        #expect(await status("GET /status HTTP/1.1\r\n\(host)\(auth)\r\n") == 200)
        await h.stop()
    }

    /// Framing that could smuggle a second request is refused by the server side too.
    @Test func ambiguousFramingIsRefused() async throws {
        let h = try await EngineHarness()
        let host = "Host: 127.0.0.1:\(h.port)\r\n"
        let auth = "Authorization: Bearer \(h.token)\r\n"
        for framing in ["Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"] {
            let r = await h.raw("POST /sessions HTTP/1.1\r\n\(host)\(auth)Content-Type: application/json\r\n\(framing)\r\n0\r\n\r\n")
            #expect(r?.status == 400, "\(framing)")
        }
        let signed = await h.raw("POST /sessions HTTP/1.1\r\n\(host)\(auth)Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n")
        #expect(signed?.status == 400)
        await h.stop()
    }

    @Test func keepAliveAndPipelining() async throws {
        let h = try await EngineHarness()
        let fd = await off { cposix_connect_loopback(Int32(h.port), 2000) }
        #expect(fd >= 0)
        defer { close(fd) }
        let one = "GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(h.port)\r\n\r\n"
        let bytes = Array(String(repeating: one, count: 3).utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, 0) }
        var parser = HTTPMessageParser(kind: .response)
        var got = 0
        var buf = [UInt8](repeating: 0, count: 8192)
        let deadline = monoNow() + 3
        while got < 3 && monoNow() < deadline {
            while let r = try parser.nextResponse() { #expect(r.status == 200 && r.headers["Connection"] == "keep-alive"); got += 1 }
            if got == 3 { break }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            buf.withUnsafeBytes { parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        #expect(got == 3)
        await h.stop()
    }

    @Test func idleClientIsDroppedAndStalledClientDelaysNoOne() async throws {
        let h = try await EngineHarness(idleTimeout: 6)
        // A stalled client: half a request head.
        let fd = await off { cposix_connect_loopback(Int32(h.port), 2000) }
        #expect(fd >= 0)
        defer { close(fd) }
        let partial = Array("GET /health HTTP/1.1\r\nHost: 127".utf8)
        _ = partial.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, 0) }
        // Others are served meanwhile: all 20 answered while the stalled client is still
        // connected (held up by it, they would come only after it was dropped). Order, not
        // elapsed time, so a loaded machine cannot fail it.
        for _ in 0..<20 { #expect(try await off { try ControlClient(port: h.port, token: nil).request("GET", "/health") }.status == 200) }
        var b = [UInt8](repeating: 0, count: 64)
        let early = b.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
        let earlyErrno = errno
        #expect(early == -1 && (earlyErrno == EAGAIN || earlyErrno == EWOULDBLOCK), "the stalled client was dropped before the others were served")
        // The stalled one is dropped after the idle timeout.
        _ = cposix_set_timeouts(fd, 30_000)
        let start = monoNow()
        let n = b.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        #expect(n == 0)
        #expect(monoNow() - start < 25)  // dropped, not held open
        await h.stop()
    }

    @Test func manyConcurrentConnections() async throws {
        let h = try await EngineHarness()
        let port = h.port
        var fds: [Int32] = []
        for _ in 0..<100 {
            let fd = await off { cposix_connect_loopback(Int32(port), 2000) }
            #expect(fd >= 0)
            fds.append(fd)
        }
        defer { for fd in fds { close(fd) } }
        let req = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n".utf8)
        for fd in fds { _ = req.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, 0) } }
        var ok = 0
        for fd in fds { if await off { readResponse(fd) }?.status == 200 { ok += 1 } }
        #expect(ok == 100)
        await h.stop()
    }

    @Test func slowAsyncRouteDoesNotBlockOthers() async throws {
        let h = try await EngineHarness()
        await h.sessions.setSpawnDelay(4)
        let c = h.client
        let dir = h.home
        let slowState = TestBox("in flight")
        let slow = Thread.detachNewThreadAsync { _ = try? c.spawn(SpawnRequest(directory: dir)); slowState.value = "answered" }
        try await Task.sleep(nanoseconds: 100_000_000)
        let fast = await off { (try? c.request("GET", "/sessions"))?.status }
        #expect(fast == 200)
        // Served while the spawn (4 s) is still in flight: order, not elapsed time.
        #expect(slowState.value == "in flight")
        await slow.value
        #expect(slowState.value == "answered")
        await h.stop()
    }

    @Test func thousandMalformedOrSlowRequestsLeaveItHealthy() async throws {
        let h = try await EngineHarness(idleTimeout: 0.5)
        let port = h.port
        var rng = SystemRandomNumberGenerator()
        let samples: [[UInt8]] = [
            Array("\r\n\r\n".utf8), Array("GET\r\n\r\n".utf8), Array("GET / HTTP/9.9\r\n\r\n".utf8),
            Array("POST /sessions HTTP/1.1\r\nContent-Length: -1\r\n\r\n".utf8),
            Array("POST /sessions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".utf8),
            Array("POST /sessions HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n".utf8),
            [0, 1, 2, 255, 254, 13, 10, 13, 10], Array("GET /health HTTP/1.1\r\n\u{0}: x\r\n\r\n".utf8),
        ]
        await withTaskGroup(of: Void.self) { g in
            for w in 0..<8 {
                g.addTask {
                    var r = SystemRandomNumberGenerator()
                    for i in 0..<125 {
                        let fd = await off { cposix_connect_loopback(Int32(port), 2000) }
                        guard fd >= 0 else { continue }
                        var bytes: [UInt8]
                        switch (i + w) % 4 {
                        case 0: bytes = samples[Int.random(in: 0..<samples.count, using: &r)]
                        case 1: bytes = (0..<Int.random(in: 1..<300, using: &r)).map { _ in UInt8.random(in: 0...255, using: &r) }
                        case 2: bytes = Array("GET /health HTTP/1.1\r\nHo".utf8)  // then abandon
                        default: bytes = Array("POST /sessions HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 50\r\nContent-Type: application/json\r\n\r\n{\"dir".utf8)
                        }
                        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                        close(fd)
                    }
                }
            }
        }
        _ = rng.next()
        #expect(try await off { try ControlClient(port: port, token: nil).request("GET", "/health") }.status == 200)
        #expect(try await off { try h.client.status() }.pid == getpid())
        await h.stop()
    }

    @Test func postStopRespondsThenShutsDown() async throws {
        let h = try await EngineHarness()
        let r = try await off { try h.client.request("POST", "/stop", body: ["keepSessions": true]) }
        #expect(r.status == 202 && r.json?["status"] == "stopping")
        await h.engine.waitUntilStopped()
        #expect(await h.sessions.shutdownCalls == [true])
        #expect(!FileIO.exists(h.home + "/daemon.state.json") && !FileIO.exists(h.home + "/daemon.state.json.lock"))
        await #expect(throws: (any Error).self) { try await off { try ControlClient(port: h.port, token: nil, timeout: 1).request("GET", "/health") } }
        removeTree(h.home)
        // keepSessions must be a boolean.
        let h2 = try await EngineHarness()
        #expect(try await off { try h2.client.request("POST", "/stop", body: ["keepSessions": "yes"]) }.status == 400)
        await h2.stop()
    }

    @Test func secondEngineOnSameHomeIsRefusedAndBusyPortNamed() async throws {
        let h = try await EngineHarness()
        // A live happy-looking process holds another home's lock.
        let home2 = makeTempHome("engine2"); defer { removeTree(home2) }
        let other = spawnFakeDaemonProcess(); defer { killAndReap(other) }
        usleep(50_000)
        try FileIO.atomicWrite(DaemonLockInfo(pid: other, startTime: ProcessProbe.startTime(other)).text, to: home2 + "/daemon.state.json.lock")
        var cfg = HappyConfig(homeDir: home2)
        cfg.daemon.httpPort = 0
        var o = DaemonOptions(); o.handleSignals = false; o.installLogSink = false
        let refused = DaemonEngine(config: cfg, sessions: FakeSessions(), options: o)
        #expect(refused.phase == .starting)
        await #expect(throws: DaemonError.alreadyRunning(pid: other)) { try await refused.start() }
        #expect(refused.phase == .stopped)
        // Busy port: names the port and the key.
        unlink(home2 + "/daemon.state.json.lock")
        cfg.daemon.httpPort = h.port
        do {
            try await DaemonEngine(config: cfg, sessions: FakeSessions(), options: o).start()
            Issue.record("expected a busy port error")
        } catch let e as DaemonError {
            #expect(e == .portBusy(port: h.port, profile: "default"))
            #expect(renderError(e).contains("\(h.port)") && renderError(e).contains("daemon.httpPort"))
        }
        // A start that failed after taking the lock ends stopped (not stuck in starting).
        let failed = DaemonEngine(config: cfg, sessions: FakeSessions(), options: o)
        await #expect(throws: DaemonError.self) { try await failed.start() }
        #expect(failed.phase == .stopped)
        // The failed start released its lock and wrote no state.
        #expect(!FileIO.exists(home2 + "/daemon.state.json.lock") && !FileIO.exists(home2 + "/daemon.state.json"))
        await h.stop()
    }

    @Test func healthCheckPrunesHeartbeatsAndYieldsToAnotherPid() async throws {
        let h = try await EngineHarness(healthCheck: 0.2)
        let path = h.home + "/daemon.state.json"
        guard case .ok(let s0) = DaemonStateFile.read(path) else { Issue.record("no state"); return }
        try await Task.sleep(nanoseconds: 1_100_000_000)
        #expect(await h.sessions.pruneCalls >= 2)
        guard case .ok(let s1) = DaemonStateFile.read(path) else { Issue.record("no state"); return }
        #expect(s1.lastHeartbeat != s0.lastHeartbeat)
        var other = s1; other.pid = 1
        try other.write(to: path)
        await h.engine.waitUntilStopped()
        #expect(await h.sessions.shutdownCalls == [true])
        #expect(FileIO.exists(path))  // not ours: left alone
        removeTree(h.home)
    }

    @Test func shutdownIsBoundedWhenTheLinkHangs() async throws {
        struct HangingLink: ServerLink {
            func start() async {}
            func status() async -> ServerLinkStatus { .connecting }
            func shutdown(source: ShutdownSource) async { try? await Task.sleep(nanoseconds: 30_000_000_000) }
        }
        let h = try await EngineHarness(link: { _ in HangingLink() })
        #expect(h.engine.phase == .running)
        let t0 = monoNow()
        h.engine.requestShutdown(source: .osSignal, keepSessions: false)
        #expect(h.engine.phase == .shuttingDown(.osSignal))
        // A second request (another source) does not restart or relabel the shutdown.
        h.engine.requestShutdown(source: .cli, keepSessions: true)
        #expect(h.engine.phase == .shuttingDown(.osSignal))
        await h.engine.waitUntilStopped()
        #expect(h.engine.phase == .stopped)
        await h.engine.waitUntilStopped()  // returns at once once stopped
        #expect(monoNow() - t0 < 20)  // bounded (link steps of 1 s, a 5 s backstop), not the link's 30 s
        #expect(await h.sessions.shutdownCalls == [false])
        removeTree(h.home)
    }
}

extension Thread {
    /// Runs blocking work on a new thread; await `.value` for completion.
    static func detachNewThreadAsync(_ body: @escaping @Sendable () -> Void) -> Task<Void, Never> {
        let sem = DispatchSemaphore(value: 0)
        Thread.detachNewThread { body(); sem.signal() }
        return Task.detached { await withCheckedContinuation { c in DispatchQueue.global().async { sem.wait(); c.resume() } } }
    }
}
