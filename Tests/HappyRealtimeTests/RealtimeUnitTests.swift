import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyTestSupport

/// Deterministic generator for jitter tests.
struct FixedRandom: RandomNumberGenerator {
    var values: [UInt64]
    var i = 0
    mutating func next() -> UInt64 { defer { i += 1 }; return values[i % values.count] }
}

@Suite struct ReconnectPolicyTests {
    @Test func scheduleWithoutJitter() {
        var p = ReconnectPolicy()
        let d = (0..<6).map { _ in p.nextDelay(unit: 0.5) }
        #expect(d == [0.5, 1, 2, 3, 3, 3])
        #expect(p.attempt == 6)
    }

    @Test func jitterBoundsAreTwentyPercent() {
        var lo = ReconnectPolicy(), hi = ReconnectPolicy()
        #expect(abs(lo.nextDelay(unit: 0) - 0.4) < 1e-9)
        #expect(abs(hi.nextDelay(unit: 1) - 0.6) < 1e-9)
        for _ in 0..<5 { _ = lo.nextDelay(unit: 0); _ = hi.nextDelay(unit: 1) }
        #expect(abs(lo.nextDelay(unit: 0) - 2.4) < 1e-9)
        #expect(abs(hi.nextDelay(unit: 1) - 3.6) < 1e-9)
    }

    @Test func injectableRandomSource() {
        var g = FixedRandom(values: [0, UInt64.max])
        var p = ReconnectPolicy()
        let a = p.nextDelay(using: &g)
        let b = p.nextDelay(using: &g)
        #expect(abs(a - 0.4) < 1e-9)
        #expect(b > 1.19 && b <= 1.2)
        var sys = ReconnectPolicy()
        for _ in 0..<100 {
            let d = sys.nextDelay()
            #expect(d >= 0.4 && d <= 3.6)
        }
    }

    @Test func delayAfterFailuresFollowsTheScheduleWithoutAdvancingIt() {
        let p = ReconnectPolicy()
        for (failures, base) in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (50, 3.0), (-1, 0.5)] {
            for _ in 0..<20 {
                let d = p.delay(afterFailures: failures)
                #expect(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9, "failures \(failures): \(d)")
            }
        }
        #expect(p.attempt == 0)
    }

    @Test func resetOnlyAfterStableConnection() {
        var p = ReconnectPolicy()
        for _ in 0..<4 { _ = p.nextDelay(unit: 0.5) }
        p.connectionEnded(uptime: 29.9)
        #expect(p.nextBaseDelay == 3)
        p.connectionEnded(uptime: 30)
        #expect(p.attempt == 0 && p.nextBaseDelay == 0.5)
        _ = p.nextDelay(unit: 0.5)
        p.reset()
        #expect(p.nextDelay(unit: 0.5) == 0.5)
    }
}

@Suite struct SocketIOPacketTests {
    @Test func decodesPackets() throws {
        let e = try SocketIOPacket.decode(#"2["echo",{"a":1},2]"#)
        #expect(e.type == .event && e.id == nil && e.data == ["echo", ["a": 1], 2])
        let a = try SocketIOPacket.decode(#"312["x"]"#)
        #expect(a.type == .ack && a.id == 12 && a.data == ["x"])
        let ea = try SocketIOPacket.decode(#"27["rpc-request",{}]"#)
        #expect(ea.type == .event && ea.id == 7)
        let ce = try SocketIOPacket.decode(#"4{"message":"Invalid authentication token"}"#)
        #expect(ce.type == .connectError && ce.data?["message"]?.string == "Invalid authentication token")
        let c = try SocketIOPacket.decode(#"0{"sid":"abc"}"#)
        #expect(c.type == .connect && c.data?["sid"]?.string == "abc")
        let d = try SocketIOPacket.decode("1")
        #expect(d.type == .disconnect && d.data == nil)
        let n = try SocketIOPacket.decode(#"2/admin,3["x"]"#)
        #expect(n.nsp == "/admin" && n.id == 3)
        let b = try SocketIOPacket.decode(#"51-["file",{"_placeholder":true,"num":0}]"#)
        #expect(b.type == .binaryEvent)
    }

    @Test(arguments: ["", "9", "x", "2[", #"2["a""#, "3abc"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: SocketIOError.self) { try SocketIOPacket.decode(text) }
    }

    @Test func encodesPackets() {
        #expect(SocketIOPacket(type: .connect, data: ["token": "t"]).encoded() == #"0{"token":"t"}"#)
        #expect(SocketIOPacket(type: .event, id: 5, data: ["a", 1]).encoded() == #"25["a",1]"#)
        #expect(SocketIOPacket(type: .ack, id: 0, data: ["r"]).encoded() == #"30["r"]"#)
        #expect(SocketIOPacket(type: .disconnect).encoded() == "1")
    }

    @Test func engineEndpoint() {
        #expect(EngineIOConnection.endpoint(base: "https://api.example.com/", path: "/v1/updates")
            == "https://api.example.com/v1/updates/?EIO=4&transport=websocket")
        #expect(EngineIOConnection.endpoint(base: "http://h:1", path: "x/", query: ["b": "1 2"])
            == "http://h:1/x/?EIO=4&transport=websocket&b=1%202")
    }

    @Test func errorsRender() {
        let e = SocketIOError.connectError("Invalid authentication token")
        #expect(e.isAuthRejection)
        #expect(renderError(e) == "error: the server refused the realtime connection: Invalid authentication token — run `happy auth login`")
    }
}
