import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyTestSupport

@Suite struct WebSocketUnitTests {
    @Test func acceptValueMatchesRFCExample() {
        // RFC 6455 §1.3
        #expect(WebSocket.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func framesAreMaskedWithLengthForms() {
        let mask: [UInt8] = [1, 2, 3, 4]
        let small = WebSocket.encodeFrame(opcode: 1, payload: Array("Hi".utf8), mask: mask)
        #expect(small == [0x81, 0x82, 1, 2, 3, 4, UInt8(ascii: "H") ^ 1, UInt8(ascii: "i") ^ 2])
        let mid = WebSocket.encodeFrame(opcode: 2, payload: [UInt8](repeating: 0, count: 300), mask: mask)
        #expect(Array(mid[0..<4]) == [0x82, 0x80 | 126, 1, 44])
        let big = WebSocket.encodeFrame(opcode: 2, payload: [UInt8](repeating: 0, count: 70000), mask: mask)
        #expect(Array(big[0..<10]) == [0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70])
    }
}

@Suite struct WebSocketRawServerTests {
    static func open(_ s: PyServer, _ mode: String, max: Int = 1_000_000) async throws -> WebSocket {
        try await runBlocking {
            try WebSocket.connect(url: "ws://127.0.0.1:\(s.port)/ws/\(mode)",
                                  options: .init(net: directOptions(), maxMessageBytes: max, handshakeTimeout: 10))
        }
    }

    static func receive(_ ws: WebSocket) async throws -> WebSocket.Message {
        try await runBlocking { try ws.receive(deadline: .after(10)) }
    }

    /// Expects the next receive to fail with a protocol error mentioning `text`.
    static func expectViolation(_ mode: String, _ text: String) async throws {
        let s = try await PyServer.rawServer()
        let ws = try await open(s, mode)
        do {
            let m = try await receive(ws)
            Issue.record("\(mode): expected an error, got \(m)")
        } catch let e as NetError {
            #expect(e.what.contains(text), "\(mode): \(e.what)")
        }
        #expect(ws.isClosed)
        await s.stop()
    }

    @Test func badOpcode() async throws { try await Self.expectViolation("badopcode", "bad opcode 3") }
    @Test func maskedServerFrame() async throws { try await Self.expectViolation("masked", "masked frame from server") }
    @Test func oversizedControlFrame() async throws { try await Self.expectViolation("bigcontrol", "control frame too large") }
    @Test func fragmentedControlFrame() async throws { try await Self.expectViolation("fragcontrol", "fragmented control frame") }
    @Test func reservedBits() async throws { try await Self.expectViolation("reserved", "reserved bits") }
    @Test func badUTF8() async throws { try await Self.expectViolation("badutf8", "invalid UTF-8 in a text message (closed with 1007)") }

    @Test func badAcceptIsRefused() async throws {
        let s = try await PyServer.rawServer()
        do {
            _ = try await Self.open(s, "badaccept")
            Issue.record("expected a handshake failure")
        } catch let e as NetError {
            #expect(e.what.contains("bad Sec-WebSocket-Accept"))
        }
        await s.stop()
    }

    @Test func notAWebSocketServer() async throws {
        let s = try await PyServer.rawServer()
        do {
            _ = try await runBlocking {
                try WebSocket.connect(url: "ws://127.0.0.1:\(s.port)/nothing", options: .init(net: directOptions(), handshakeTimeout: 10))
            }
            Issue.record("expected a handshake failure")
        } catch let e as NetError {
            #expect(e.what.contains("HTTP/1.1 404 Not Found"), "\(e.what)")
        }
        await s.stop()
    }

    @Test func fragmentsPingsBinaryAndClose() async throws {
        let s = try await PyServer.rawServer()
        let ws = try await Self.open(s, "fragmented")
        #expect(try await Self.receive(ws) == .text("hello"))
        #expect(try await Self.receive(ws) == .binary([1, 2, 3]))
        do {
            _ = try await Self.receive(ws)
            Issue.record("expected close")
        } catch NetError.webSocketClosed(let code, let reason) {
            #expect(code == 1000 && reason == "bye")
        }
        await s.stop()
    }

    @Test func closeCodeFromServer() async throws {
        let s = try await PyServer.rawServer()
        let ws = try await Self.open(s, "closecode")
        await #expect(throws: NetError.webSocketClosed(code: 4001, reason: "custom")) { _ = try await Self.receive(ws) }
        await s.stop()
    }

    @Test func pingIsAnsweredWithMaskedPong() async throws {
        let s = try await PyServer.rawServer()
        let ws = try await Self.open(s, "wsping")
        #expect(try await Self.receive(ws) == .text("pong-ok"))
        await s.stop()
    }

    @Test func echoMaskedFramesAndCloseHandshake() async throws {
        let s = try await PyServer.rawServer()
        let ws = try await Self.open(s, "echo")
        let big = String(repeating: "é", count: 40_000)
        try await runBlocking { try ws.send(text: "hi"); try ws.send(binary: [9, 8]); try ws.send(text: big) }
        #expect(try await Self.receive(ws) == .text("hi"))
        #expect(try await Self.receive(ws) == .binary([9, 8]))
        #expect(try await Self.receive(ws) == .text(big))
        ws.close(code: 1000, reason: "done")
        await s.stop()
    }

    @Test func messageOverTheLimitClosesWith1009() async throws {
        let s = try await PyServer.rawServer()
        let ws = try await Self.open(s, "big")
        do {
            _ = try await Self.receive(ws)
            Issue.record("expected messageTooLarge")
        } catch NetError.messageTooLarge(let size, let limit) {
            #expect(size == 2_000_000 && limit == 1_000_000)
        }
        #expect(ws.isClosed)
        // Sending over the limit is refused locally.
        let ws2 = try await Self.open(s, "echo", max: 10)
        await #expect(throws: NetError.messageTooLarge(size: 11, limit: 10)) {
            try await runBlocking { try ws2.send(text: "01234567890") }
        }
        ws2.close()
        await s.stop()
    }

    @Test func receiveTimeoutKeepsConnection() async throws {
        let s = try await PyServer.rawServer()
        let ws = try await Self.open(s, "echo")
        await #expect(throws: NetError.self) { _ = try await runBlocking { try ws.receive(deadline: .after(0.2)) } }
        #expect(!ws.isClosed)
        try await runBlocking { try ws.send(text: "after") }
        #expect(try await Self.receive(ws) == .text("after"))
        ws.close()
        await s.stop()
    }
}
