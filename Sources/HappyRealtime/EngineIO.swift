import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyNet

/// Engine.IO v4 over the websocket transport only. Blocking: `open` and `run` execute
/// on dedicated threads (the Socket.IO client's reader thread).
final class EngineIOConnection: @unchecked Sendable {
    let ws: WebSocket
    let sid: String
    let pingInterval: Double
    let pingTimeout: Double
    let maxPayload: Int
    private let closing = Locked(false)
    /// Server pings answered with a pong.
    let pongsSent = Locked(0)

    private init(ws: WebSocket, sid: String, pingInterval: Double, pingTimeout: Double, maxPayload: Int) {
        self.ws = ws; self.sid = sid; self.pingInterval = pingInterval; self.pingTimeout = pingTimeout; self.maxPayload = maxPayload
    }

    /// `<base><path>/?EIO=4&transport=websocket` (trailing slash as socket.io-client sends it).
    static func endpoint(base: String, path: String, query: [String: String] = [:]) -> String {
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        var p = path.hasPrefix("/") ? path : "/" + path
        if !p.hasSuffix("/") { p += "/" }
        var q = "EIO=4&transport=websocket"
        for (k, v) in query.sorted(by: { $0.key < $1.key }) { q += "&\(HTTPCodec.percentEncode(k))=\(HTTPCodec.percentEncode(v))" }
        return b + p + "?" + q
    }

    static func open(url: String, options: WebSocket.Options) throws -> EngineIOConnection {
        let ws = try WebSocket.connect(url: url, options: options)
        do {
            let first = try ws.receive(deadline: .after(options.handshakeTimeout))
            guard case .text(let t) = first, t.first == "0" else {
                throw NetError.protocolError(target: ws.url.origin, reason: "Engine.IO: expected an open packet")
            }
            let j: JSON
            do { j = try JSON.parse(String(t.dropFirst())) } catch {
                throw NetError.protocolError(target: ws.url.origin, reason: "Engine.IO: malformed open packet")
            }
            guard let sid = j["sid"]?.string, let piMs = j["pingInterval"]?.double, let ptMs = j["pingTimeout"]?.double else {
                throw NetError.protocolError(target: ws.url.origin, reason: "Engine.IO: open packet without sid/pingInterval/pingTimeout")
            }
            guard let (pi, pt) = pingTiming(intervalMs: piMs, timeoutMs: ptMs) else {
                throw NetError.protocolError(target: ws.url.origin, reason: "Engine.IO: open packet with an unusable pingInterval/pingTimeout")
            }
            let mp = j["maxPayload"]?.int ?? options.maxMessageBytes
            return EngineIOConnection(ws: ws, sid: sid, pingInterval: pi, pingTimeout: pt, maxPayload: mp)
        } catch {
            ws.close(code: 1002)
            throw error
        }
    }

    /// Server ping timing in seconds, or nil when a value is negative, not finite or
    /// over 2^31 ms. (Fuzz/ engineio: a huge or negative `pingInterval` trapped in
    /// `run`'s deadline arithmetic.)
    static func pingTiming(intervalMs: Double, timeoutMs: Double) -> (interval: Double, timeout: Double)? {
        let limit = Double(Int32.max)
        guard intervalMs.isFinite, timeoutMs.isFinite, (0...limit).contains(intervalMs), (0...limit).contains(timeoutMs) else { return nil }
        return (intervalMs / 1000, timeoutMs / 1000)
    }

    /// Sends one Engine.IO packet (e.g. `"4" + socketIOPacket`).
    func send(_ packet: String) throws { try ws.send(text: packet) }

    /// Reads until the connection ends; answers pings; delivers message payloads.
    /// Returns the reason: `transport close`, `ping timeout`, `message too large`,
    /// `transport error: ...`.
    func run(onMessage: (String) -> Void) -> String {
        var lastPing = Deadline.after(0)
        let window = pingInterval + pingTimeout
        while true {
            let deadline = Deadline(uptimeNs: lastPing.uptimeNs &+ UInt64(window * 1e9), seconds: window)
            let msg: WebSocket.Message
            do {
                msg = try ws.receive(deadline: deadline)
            } catch let e as NetError {
                if closing.get { return "transport close" }
                switch e {
                case .timedOut:
                    ws.close(code: 1000)
                    return "ping timeout"
                case .webSocketClosed: return "transport close"
                case .messageTooLarge: return "message too large"
                default: ws.close(code: 1000); return "transport error: \(e.what)"
                }
            } catch {
                ws.close()
                return "transport error: \(error)"
            }
            guard case .text(let t) = msg, let kind = t.first else { continue }  // binary attachments unsupported
            switch kind {
            case "2":
                lastPing = .after(0)
                if (try? ws.send(text: "3" + t.dropFirst())) != nil { pongsSent.withLock { $0 += 1 } }
            case "4":
                onMessage(String(t.dropFirst()))
            case "1":
                ws.close(code: 1000)
                return "transport close"
            default:
                continue  // "6" noop, "3" pong, unknown
            }
        }
    }

    func close() {
        let first = closing.withLock { c -> Bool in let was = c; c = true; return !was }
        guard first else { return }
        ws.close(code: 1000)
    }
}
