import COpenSSL
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// RFC 6455 WebSocket client over `NetConnection` (TCP, TLS, CONNECT proxy).
/// Blocking API with deadlines: one thread reads (`receive`), any thread may send
/// (sends are serialized). Protocol violations close the connection with the right
/// code and throw; nothing the peer sends can crash the process.
public final class WebSocket: @unchecked Sendable {
    public struct Options: Sendable {
        public var net: NetOptions
        /// Largest message accepted (after reassembly); larger → close 1009.
        public var maxMessageBytes: Int
        public var headers: HTTPHeaders
        public var handshakeTimeout: Double
        public var writeTimeout: Double

        public init(net: NetOptions = NetOptions(), maxMessageBytes: Int = 1_000_000, headers: HTTPHeaders = HTTPHeaders(),
                    handshakeTimeout: Double = 20, writeTimeout: Double = 30) {
            self.net = net
            self.maxMessageBytes = maxMessageBytes
            self.headers = headers
            self.handshakeTimeout = handshakeTimeout
            self.writeTimeout = writeTimeout
        }
    }

    public enum Message: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
    }

    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    let conn: NetConnection
    public let options: Options
    public var url: NetURL { conn.url }
    private let sendLock = Lock()
    private let closeState = Locked<(sent: Bool, done: Bool)>((false, false))
    // Reader state (reader thread only).
    private var rbuf: [UInt8] = []
    private var rpos = 0
    private var fragments: [UInt8] = []
    private var fragmentOpcode: UInt8? = nil

    private init(conn: NetConnection, options: Options, leftover: [UInt8]) {
        self.conn = conn
        self.options = options
        self.rbuf = leftover
    }

    /// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)).
    public static func acceptValue(forKey key: String) -> String {
        let input = Array((key + guid).utf8)
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        _ = input.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &md, &len, EVP_sha1(), nil) }
        return Base64.encode(Array(md[0..<Int(len)]))
    }

    /// Connects (proxy, TLS) and performs the opening handshake. `ws`/`wss` or `http`/`https` URLs.
    public static func connect(url text: String, options: Options = Options()) throws -> WebSocket {
        var url = try NetURL(text)
        if url.scheme == "http" { url.scheme = "ws" } else if url.scheme == "https" { url.scheme = "wss" }
        let deadline = Deadline.after(options.handshakeTimeout)
        let conn = try NetConnection.open(url: url, options: options.net, deadline: deadline)
        do {
            let key = Base64.encode(SecureRandom.bytes(16))
            var h = options.headers
            h.set("Host", url.hostHeader)
            h.set("Upgrade", "websocket")
            h.set("Connection", "Upgrade")
            h.set("Sec-WebSocket-Key", key)
            h.set("Sec-WebSocket-Version", "13")
            if h["User-Agent"] == nil { h.set("User-Agent", "happy/\(HappyVersion.current)") }
            try conn.write(HTTPRequest(method: "GET", target: url.target, headers: h).serialized(), deadline: deadline)
            var parser = HTTPMessageParser(kind: .response)
            while true {
                let got = try conn.read(deadline: deadline)
                if got.isEmpty { throw NetError.webSocketHandshake(target: url.origin, reason: "connection closed during the handshake") }
                parser.append(got)
                let resp: HTTPResponse?
                do { resp = try parser.nextResponseHead() } catch {
                    throw NetError.webSocketHandshake(target: url.origin, reason: "malformed HTTP response")
                }
                guard let resp else { continue }
                guard resp.status == 101 else {
                    throw NetError.webSocketHandshake(target: url.origin, reason: "\(resp.version) \(resp.status) \(resp.reason)")
                }
                guard resp.headers["Upgrade"]?.lowercased() == "websocket",
                      resp.headers["Connection"]?.lowercased().contains("upgrade") == true else {
                    throw NetError.webSocketHandshake(target: url.origin, reason: "missing Upgrade/Connection headers")
                }
                guard resp.headers["Sec-WebSocket-Accept"] == acceptValue(forKey: key) else {
                    throw NetError.webSocketHandshake(target: url.origin, reason: "bad Sec-WebSocket-Accept")
                }
                if let ext = resp.headers["Sec-WebSocket-Extensions"], !ext.isEmpty {
                    throw NetError.webSocketHandshake(target: url.origin, reason: "unrequested extension \(ext)")
                }
                return WebSocket(conn: conn, options: options, leftover: parser.takeRemainingBytes())
            }
        } catch {
            conn.close()
            throw error
        }
    }

    // MARK: sending

    public func send(text: String) throws { try sendFrame(opcode: 1, payload: Array(text.utf8)) }
    public func send(binary: [UInt8]) throws { try sendFrame(opcode: 2, payload: binary) }
    public func ping(_ payload: [UInt8] = []) throws { try sendFrame(opcode: 9, payload: Array(payload.prefix(125))) }

    /// Encodes one masked client frame (exposed for tests).
    static func encodeFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, mask: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(payload.count + 14)
        out.append((fin ? 0x80 : 0) | opcode)
        let n = payload.count
        if n < 126 {
            out.append(0x80 | UInt8(n))
        } else if n < 65536 {
            out.append(0x80 | 126)
            out.append(UInt8(n >> 8)); out.append(UInt8(n & 0xFF))
        } else {
            out.append(0x80 | 127)
            for i in (0..<8).reversed() { out.append(UInt8((UInt64(n) >> (UInt64(i) * 8)) & 0xFF)) }
        }
        out.append(contentsOf: mask)
        for i in 0..<n { out.append(payload[i] ^ mask[i & 3]) }
        return out
    }

    func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        if opcode < 8 && payload.count > options.maxMessageBytes {
            throw NetError.messageTooLarge(size: payload.count, limit: options.maxMessageBytes)
        }
        let frame = WebSocket.encodeFrame(opcode: opcode, payload: payload, mask: SecureRandom.bytes(4))
        sendLock.lock(); defer { sendLock.unlock() }
        if closeState.get.sent && opcode != 8 { throw NetError.webSocketClosed(code: 1006, reason: "closing") }
        try conn.write(frame, deadline: .after(options.writeTimeout))
    }

    /// Starts the closing handshake (sends a close frame once) and shuts the socket
    /// down shortly after; a reader blocked in `receive` gets `webSocketClosed`.
    public func close(code: Int = 1000, reason: String = "") {
        sendClose(code: code, reason: reason)
        conn.close()
    }

    private func sendClose(code: Int, reason: String) {
        let first = closeState.withLock { s -> Bool in if s.sent { return false }; s.sent = true; return true }
        guard first else { return }
        var p: [UInt8] = [UInt8((code >> 8) & 0xFF), UInt8(code & 0xFF)]
        p.append(contentsOf: Array(reason.utf8).prefix(123))
        let frame = WebSocket.encodeFrame(opcode: 8, payload: p, mask: SecureRandom.bytes(4))
        sendLock.lock(); defer { sendLock.unlock() }
        try? conn.write(frame, deadline: .after(2))
    }

    /// Closes with `code` after a violation and returns the error to throw.
    private func fail(_ code: Int, _ reason: String, size: Int = 0) -> NetError {
        sendClose(code: code, reason: reason)
        conn.close()
        if code == 1009 { return NetError.messageTooLarge(size: size, limit: options.maxMessageBytes) }
        return NetError.protocolError(target: url.origin, reason: "WebSocket: \(reason) (closed with \(code))")
    }

    // MARK: receiving

    private func need(_ n: Int, deadline: Deadline) throws {
        while rbuf.count - rpos < n {
            if rpos > 0 && rpos == rbuf.count { rbuf.removeAll(keepingCapacity: true); rpos = 0 }
            else if rpos > 65536 { rbuf.removeFirst(rpos); rpos = 0 }
            let got: [UInt8]
            do { got = try conn.read(max: max(65536, min(n, 1 << 20)), deadline: deadline) } catch let e as NetError {
                if case .timedOut = e { throw e }
                if closeState.get.sent { throw NetError.webSocketClosed(code: 1006, reason: "closed") }
                throw e
            }
            if got.isEmpty {
                conn.close()
                throw NetError.webSocketClosed(code: 1006, reason: "connection closed without a close frame")
            }
            rbuf.append(contentsOf: got)
        }
    }

    private func take(_ n: Int) -> ArraySlice<UInt8> {
        let s = rbuf[rpos..<(rpos + n)]
        rpos += n
        return s
    }

    /// Receives the next data message. Answers pings, skips pongs, completes the
    /// closing handshake (then throws `webSocketClosed(code, reason)`). A timeout
    /// (`NetError.timedOut`) leaves the connection usable.
    public func receive(deadline: Deadline = .distant) throws -> Message {
        while true {
            try need(2, deadline: deadline)
            let b0 = rbuf[rpos], b1 = rbuf[rpos + 1]
            let fin = b0 & 0x80 != 0
            let rsv = b0 & 0x70
            let opcode = b0 & 0x0F
            let masked = b1 & 0x80 != 0
            var len = UInt64(b1 & 0x7F)
            var headLen = 2
            if rsv != 0 { throw fail(1002, "reserved bits set") }
            if masked { throw fail(1002, "masked frame from server") }
            guard [0, 1, 2, 8, 9, 10].contains(opcode) else { throw fail(1002, "bad opcode \(opcode)") }
            let isControl = opcode >= 8
            if isControl && (!fin || len > 125) { throw fail(1002, fin ? "control frame too large" : "fragmented control frame") }
            if len == 126 {
                try need(4, deadline: deadline)
                len = UInt64(rbuf[rpos + 2]) << 8 | UInt64(rbuf[rpos + 3])
                headLen = 4
            } else if len == 127 {
                try need(10, deadline: deadline)
                len = 0
                for i in 0..<8 { len = len << 8 | UInt64(rbuf[rpos + 2 + i]) }
                if len >> 63 != 0 { throw fail(1002, "bad frame length") }
                headLen = 10
            }
            if !isControl {
                if opcode == 0 && fragmentOpcode == nil { throw fail(1002, "continuation without a message") }
                if opcode != 0 && fragmentOpcode != nil { throw fail(1002, "new message inside a fragmented one") }
                let already = UInt64(fragments.count)
                if already + len > UInt64(options.maxMessageBytes) { throw fail(1009, "message too big", size: Int(min(already + len, UInt64(Int.max)))) }
            }
            let n = Int(len)
            try need(headLen + n, deadline: deadline)
            _ = take(headLen)
            let payload = Array(take(n))
            switch opcode {
            case 9:
                sendLock.lock()
                let frame = WebSocket.encodeFrame(opcode: 10, payload: payload, mask: SecureRandom.bytes(4))
                let closing = closeState.get.sent
                if !closing { try? conn.write(frame, deadline: .after(options.writeTimeout)) }
                sendLock.unlock()
                continue
            case 10:
                continue
            case 8:
                var code = 1005
                var reason = ""
                if payload.count == 1 { throw fail(1002, "bad close payload") }
                if payload.count >= 2 {
                    code = Int(payload[0]) << 8 | Int(payload[1])
                    guard let r = String(validating: payload[2...], as: UTF8.self) else { throw fail(1007, "bad UTF-8 in close reason") }
                    reason = r
                    let valid = (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code)
                    if !valid { throw fail(1002, "bad close code \(code)") }
                }
                sendClose(code: code == 1005 ? 1000 : code, reason: "")
                conn.close()
                throw NetError.webSocketClosed(code: code, reason: reason)
            default:
                if opcode != 0 { fragmentOpcode = opcode }
                fragments.append(contentsOf: payload)
                guard fin else { continue }
                let op = fragmentOpcode ?? 1
                let data = fragments
                fragments = []
                fragmentOpcode = nil
                if op == 1 {
                    guard let s = String(validating: data, as: UTF8.self) else { throw fail(1007, "invalid UTF-8 in a text message") }
                    return .text(s)
                }
                return .binary(data)
            }
        }
    }

    public var isClosed: Bool { conn.isClosed }
}
