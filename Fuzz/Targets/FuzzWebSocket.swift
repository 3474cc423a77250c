// WebSocket frame decoder (Net/WebSocket.swift `receive`) and the Engine.IO packet
// layer on top of it (Realtime/EngineIO.swift). The decoder reads from a connection,
// so a loopback server in this process answers the opening handshake correctly and
// then sends the fuzz input as the server's byte stream, and closes.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class LoopbackWSServer: @unchecked Sendable {
    let port: Int
    private let listenFd: Int32
    private let lock = NSLock()
    private var payload: [UInt8] = []
    private var inlineWithHead = false
    private let done = DispatchSemaphore(value: 0)

    init() {
        let lfd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(lfd, $0, len) == 0, listen(lfd, 16) == 0 else { fatalError("loopback listen") }
                getsockname(lfd, $0, &len)
            }
        }
        listenFd = lfd
        port = Int(UInt16(bigEndian: a.sin_port))
        let t = Thread { [self] in serveForever() }
        t.stackSize = 1 << 20
        t.start()
    }

    /// Serves one connection with `bytes` after the 101 answer; call `waitDone` after.
    func prepare(_ bytes: [UInt8], inline: Bool) {
        lock.lock(); payload = bytes; inlineWithHead = inline; lock.unlock()
    }
    func waitDone() { done.wait() }

    private func sendAll(_ fd: Int32, _ b: [UInt8]) {
        var off = 0
        while off < b.count {
            let n = b.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    private func serveForever() {
        while true {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 { continue }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var head: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while head.count < 16384 {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { break }
                head.append(contentsOf: buf[0..<n])
                if head.count >= 4, String(decoding: head, as: UTF8.self).contains("\r\n\r\n") { break }
            }
            let text = String(decoding: head, as: UTF8.self)
            var key = ""
            for line in text.split(separator: "\r\n") where line.lowercased().hasPrefix("sec-websocket-key:") {
                key = line.dropFirst("sec-websocket-key:".count).trimmingCharacters(in: .whitespaces)
            }
            lock.lock(); let p = payload; let inline = inlineWithHead; lock.unlock()
            let answer = Array(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: \(WebSocket.acceptValue(forKey: key))\r\n\r\n").utf8)
            if inline { sendAll(fd, answer + p) } else { sendAll(fd, answer); sendAll(fd, p) }
            shutdown(fd, Int32(SHUT_WR))
            while recv(fd, &buf, buf.count, 0) > 0 {}  // drain pongs/close frames until the client closes
            close(fd)
            done.signal()
        }
    }
}

nonisolated(unsafe) var loopbackServer: LoopbackWSServer? = nil
func loopback() -> LoopbackWSServer {
    if let s = loopbackServer { return s }
    let s = LoopbackWSServer()
    loopbackServer = s
    return s
}

/// Server → client text frame (unmasked).
func serverTextFrame(_ payload: [UInt8]) -> [UInt8] {
    var f: [UInt8] = [0x81]
    if payload.count < 126 { f.append(UInt8(payload.count)) }
    else if payload.count < 65536 { f += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
    else { f.append(127); for i in (0..<8).reversed() { f.append(UInt8((payload.count >> (i * 8)) & 0xFF)) } }
    return f + payload
}

/// First byte: bit 0 = frames arrive together with the 101 answer (leftover path);
/// bit 1 = small message limit (64 bytes). Rest: the raw server byte stream.
func fuzzWebSocketFrames(_ data: [UInt8]) {
    guard let mode = data.first else { return }
    let server = loopback()
    server.prepare(Array(data.dropFirst()), inline: mode & 1 == 1)
    var opts = WebSocket.Options(handshakeTimeout: 5, writeTimeout: 2)
    if mode & 2 != 0 { opts.maxMessageBytes = 64 }
    guard let ws = try? WebSocket.connect(url: "ws://127.0.0.1:\(server.port)/", options: opts) else {
        fatalError("loopback handshake failed")
    }
    var n = 0
    while n < 10_000 {
        n += 1
        do {
            switch try ws.receive(deadline: .after(5)) {
            case .text(let s): _ = s.utf8.count
            case .binary(let b): _ = b.count
            }
        } catch let e as NetError {
            if case .timedOut = e { fatalError("receive timed out on a closed stream") }
            break
        } catch { break }
    }
    ws.close()
    server.waitDone()
}

/// Engine.IO open + run over real frames: the input, split at newlines, is sent as
/// text messages (the first must be the open packet `0{...}`); every `4` message is
/// decoded as a Socket.IO packet as the client does.
func fuzzEngineIO(_ data: [UInt8]) {
    let server = loopback()
    var stream: [UInt8] = []
    for msg in data.split(separator: 0x0A, omittingEmptySubsequences: false).prefix(64) {
        stream += serverTextFrame(Array(msg))
    }
    server.prepare(stream, inline: false)
    let opts = WebSocket.Options(maxMessageBytes: 1 << 16, handshakeTimeout: 5, writeTimeout: 2)
    let url = "ws://127.0.0.1:\(server.port)/socket.io/?EIO=4&transport=websocket"
    if let eio = try? EngineIOConnection.open(url: url, options: opts) {
        _ = eio.run { msg in _ = try? SocketIOPacket.decode(msg) }
        eio.close()
    }
    server.waitDone()
}
