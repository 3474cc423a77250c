import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyTestSupport

/// Collects values from handlers (thread-safe).
final class Collector<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func add(_ v: T) { lock.lock(); items.append(v); lock.unlock() }
    var all: [T] { lock.lock(); defer { lock.unlock() }; return items }

    /// Polls until `count` items arrived (bounded).
    func wait(count: Int, seconds: Double = 10) async -> [T] {
        let end = Date().addingTimeInterval(seconds)
        while all.count < count && Date() < end { try? await Task.sleep(nanoseconds: 20_000_000) }
        return all
    }
}

enum Emu {
    static func auth(_ token: String? = "test-token") -> JSON {
        var o: [String: JSON] = ["clientType": "machine-scoped", "machineId": "m-1", "happyClient": "cli-daemon/test"]
        if let token { o["token"] = .string(token) }
        return .object(o)
    }

    static func client(_ s: PyServer, token: String? = "test-token", scheme: String = "http", host: String = "127.0.0.1",
                       options: SocketIOOptions = SocketIOOptions(net: directOptions(), connectTimeout: 10)) -> SocketIOClient {
        SocketIOClient(url: "\(scheme)://\(host):\(s.port)", auth: auth(token), options: options)
    }

    @discardableResult
    static func control(_ s: PyServer, _ method: String, _ path: String, _ body: JSON? = nil) async throws -> JSON {
        let c = HTTPClient(options: directOptions())
        let url = "http://127.0.0.1:\(s.port)\(path)"
        let r = try await c.send(body.map { .json(method, url, $0) } ?? HTTPClientRequest(method: method, url: url))
        return try JSON.parse(r.body)
    }
}

@Suite struct SocketIOClientTests {
    @Test func connectWithAuthAndStates() async throws {
        let s = try await PyServer.emulator()
        let c = Emu.client(s)
        try await c.connect()
        #expect(c.isConnected && c.engineSid != nil)
        let st = try await Emu.control(s, "GET", "/__test/state")
        let clients = st["clients"]?.object ?? [:]
        #expect(clients.count == 1)
        #expect(clients.values.first?["machineId"]?.string == "m-1")
        await #expect(throws: SocketIOError.alreadyUsed) { try await c.connect() }
        await c.disconnect()
        var seen: [SocketIOState] = []
        for await x in c.states { seen.append(x) }
        #expect(seen == [.connecting, .connected, .disconnected("io client disconnect")])
        await #expect(throws: SocketIOError.notConnected) { try await c.emit("echo", "x") }
        await s.stop()
    }

    @Test func authRefusalCarriesTheServerMessage() async throws {
        let s = try await PyServer.emulator()
        let bad = Emu.client(s, token: "wrong")
        await #expect(throws: SocketIOError.connectError("Invalid authentication token")) { try await bad.connect() }
        let missing = Emu.client(s, token: nil)
        await #expect(throws: SocketIOError.connectError("Missing authentication token")) { try await missing.connect() }
        #expect(await missing.waitUntilDisconnected() == "connect error")
        await s.stop()
    }

    @Test func eventsAndAcksBothWays() async throws {
        let s = try await PyServer.emulator()
        let c = Emu.client(s)
        let echoes = Collector<[JSON]>()
        c.on("echo") { args, _ in echoes.add(args) }
        let rpc = Collector<JSON>()
        c.on("rpc-request") { args, ack in
            rpc.add(args.first ?? .null)
            await ack?([.string("result-for-" + (args.first?["method"]?.string ?? "?"))])
        }
        try await c.connect()
        // client → server event; server → client event.
        try await c.emit("echo", ["a": 1])
        let got = await echoes.wait(count: 1)
        #expect(got.first == [["a": 1]])
        // client → server with ack (one and two arguments).
        #expect(try await c.emitWithAck("ack-me", "x", timeout: 5) == [["ok": true, "got": "x"]])
        #expect(try await c.emitWithAck("ack-two", .null, timeout: 5) == ["first", ["second": 2]])
        // server → client with ack: answered with exactly one argument.
        let r = try await Emu.control(s, "POST", "/__test/emit", ["event": "rpc-request", "data": ["method": "m-1:stop-session", "params": "p"], "ack": true])
        #expect(r["results"]?.array?.first?["ack"] == ["result-for-m-1:stop-session"])
        #expect(rpc.all.first?["params"]?.string == "p")
        // ack timeout
        await #expect(throws: SocketIOError.ackTimeout(event: "slow-ack", seconds: 0.3)) {
            _ = try await c.emitWithAck("slow-ack", 2, timeout: 0.3)
        }
        #expect(c.isConnected)
        await c.disconnect()
        await s.stop()
    }

    @Test func answersPingsOverManyIntervals() async throws {
        // A pong may be up to 6 s late before the server gives up: on a loaded machine the
        // Python server itself can be that slow to take a pong in (seen with 3 busy loops).
        let s = try await PyServer.emulator(["--ping-interval", "1", "--ping-timeout", "6"])
        let c = Emu.client(s)
        try await c.connect()
        #expect(c.pingSettings?.interval == 1.0)
        #expect(c.pingSettings?.timeout == 6.0)
        try await Task.sleep(nanoseconds: 8_500_000_000)
        // Without pongs the server would have dropped us after 7 s.
        #expect(c.isConnected)
        #expect(c.pongsSent >= 5)
        #expect(try await c.emitWithAck("ack-me", 1, timeout: 5).count == 1)
        await c.disconnect()
        await s.stop()
    }

    @Test func deadConnectionDetectedWithoutPings() async throws {
        let raw = try await PyServer.rawServer()
        let c = SocketIOClient(url: "http://127.0.0.1:\(raw.port)", path: "/ws/eio-noping", auth: Emu.auth(),
                               options: SocketIOOptions(net: directOptions(), connectTimeout: 10))
        try await c.connect()
        let t0 = Date()
        let reason = await c.waitUntilDisconnected()
        #expect(reason == "ping timeout")
        // 0.5 s of silence is the limit; the server itself would close after 30 s (another
        // reason). The bound only separates "detected" from "waited for the close".
        #expect(Date().timeIntervalSince(t0) < 20)
        await raw.stop()
    }

    /// A server that sends events faster than the handlers take them cannot grow the
    /// inbound queue without bound: the connection is dropped with a clear reason.
    @Test func floodingServerIsDisconnected() async throws {
        let raw = try await PyServer.rawServer()
        let c = SocketIOClient(url: "http://127.0.0.1:\(raw.port)", path: "/ws/eio-flood", auth: Emu.auth(),
                               options: SocketIOOptions(net: directOptions(), connectTimeout: 10, maxQueuedEvents: 200))
        let gate = Locked(false)
        let handled = Locked(0)
        c.on("flood") { _, _ in
            handled.withLock { $0 += 1 }
            while !gate.get { try? await Task.sleep(nanoseconds: 20_000_000) }  // a handler that cannot keep up
        }
        try await c.connect()
        let reason = await c.waitUntilDisconnected()
        gate.withLock { $0 = true }
        #expect(reason.hasPrefix("inbound queue full"), "\(reason)")
        #expect(reason.contains("200 events"), "\(reason)")
        #expect(handled.get <= 201)
        await raw.stop()
    }

    @Test func serverInitiatedDisconnect() async throws {
        let s = try await PyServer.emulator()
        let c = Emu.client(s)
        try await c.connect()
        let pending = Task { try await c.emitWithAck("slow-ack", 3, timeout: 10) }
        try await Task.sleep(nanoseconds: 100_000_000)
        try await Emu.control(s, "POST", "/__test/disconnect", [:])
        #expect(await c.waitUntilDisconnected() == "io server disconnect")
        await #expect(throws: SocketIOError.disconnected(reason: "io server disconnect")) { _ = try await pending.value }
        await s.stop()
    }

    @Test func serverKilledThenRestartedAndCallerReconnects() async throws {
        let s = try await PyServer.emulator()
        let port = s.port
        let c = Emu.client(s)
        try await c.connect()
        await s.kill9()
        let reason = await c.waitUntilDisconnected()
        #expect(reason == "transport close" || reason.hasPrefix("transport error"), "\(reason)")
        // While the server is down, a connect fails with a transport error.
        let down = SocketIOClient(url: "http://127.0.0.1:\(port)", auth: Emu.auth(), options: SocketIOOptions(net: directOptions(), connectTimeout: 2))
        do { try await down.connect(); Issue.record("expected failure") } catch let e as SocketIOError {
            guard case .transport(.cannotReach) = e else { Issue.record("\(e)"); return }
        }
        let s2 = try await PyServer.emulator(["--port", String(port)])
        var policy = ReconnectPolicy()
        var connected: SocketIOClient?
        for _ in 0..<10 {
            let n = SocketIOClient(url: "http://127.0.0.1:\(port)", auth: Emu.auth(), options: SocketIOOptions(net: directOptions(), connectTimeout: 5))
            do { try await n.connect(); connected = n; break } catch {
                try await Task.sleep(nanoseconds: UInt64(policy.nextDelay() * 1e9))
            }
        }
        let n = try #require(connected)
        #expect(try await n.emitWithAck("ack-me", "again", timeout: 5) == [["ok": true, "got": "again"]])
        await n.disconnect()
        await s2.stop()
    }

    @Test func messagesOverTheLimit() async throws {
        let s = try await PyServer.emulator()
        let c = Emu.client(s)
        try await c.connect()
        // Outgoing: refused locally, connection stays up.
        let big = String(repeating: "y", count: 1_000_001)
        await #expect(throws: SocketIOError.self) { try await c.emit("echo", .string(big)) }
        #expect(c.isConnected)
        // Incoming: closed with 1009.
        try await Emu.control(s, "POST", "/__test/large", ["size": 1_500_000])
        #expect(await c.waitUntilDisconnected() == "message too large")
        await s.stop()
    }

    @Test func tlsSocketTrustedViaSSLCertFileAndRefusedWithout() async throws {
        let cert = try await TestCert.make()
        let s = try await PyServer.emulator(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let ok = Emu.client(s, scheme: "https", options: SocketIOOptions(net: .init(proxies: .none, trust: .fromEnvironment(["SSL_CERT_FILE": cert.cert])), connectTimeout: 10))
        try await ok.connect()
        #expect(try await ok.emitWithAck("ack-me", "tls", timeout: 5).count == 1)
        await ok.disconnect()
        let refused = Emu.client(s, scheme: "https")
        do { try await refused.connect(); Issue.record("expected TLS failure") } catch let e as SocketIOError {
            #expect(e.what.contains("certificate verify failed: self-signed certificate"), "\(e.what)")
        }
        await s.stop()
    }

    @Test func socketThroughProxyAndNoProxyBypass() async throws {
        let cert = try await TestCert.make()
        let s = try await PyServer.emulator(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let p = try await PyServer.proxy()
        let env = ["HTTPS_PROXY": "http://127.0.0.1:\(p.port)", "SSL_CERT_FILE": cert.cert]
        let c = Emu.client(s, scheme: "https", options: SocketIOOptions(net: .environment(env), connectTimeout: 10))
        try await c.connect()
        #expect(try await c.emitWithAck("ack-me", 1, timeout: 5).count == 1)
        await c.disconnect()
        #expect(try await proxyTunnelCount(p)["tunnels"]?.int == 1)
        let bypass = Emu.client(s, scheme: "https", options: SocketIOOptions(net: .environment(env.merging(["NO_PROXY": "127.0.0.1"]) { $1 }), connectTimeout: 10))
        try await bypass.connect()
        await bypass.disconnect()
        #expect(try await proxyTunnelCount(p)["tunnels"]?.int == 1)
        await p.stop(); await s.stop()
    }
}
