import COpenSSL
import CPosix
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// Shared SSL_CTX per trust configuration (loading the trust store costs a few ms).
enum TLSContexts {
    private static let cache = Locked<[TrustSettings: OpaquePointer]>([:])

    static func context(for trust: TrustSettings) throws -> OpaquePointer {
        try cache.withLock { c in
            if let ctx = c[trust] { return ctx }
            guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSContexts.lastError("cannot create TLS context") }
            guard happy_tls_ctx_configure(ctx) == 1 else {
                SSL_CTX_free(ctx)
                throw lastError("cannot configure TLS")
            }
            let ok: Int32
            if trust.caFile != nil || trust.caDir != nil {
                ok = SSL_CTX_load_verify_locations(ctx, trust.caFile, trust.caDir)
            } else {
                ok = SSL_CTX_set_default_verify_paths(ctx)
            }
            if ok != 1 {
                let e = lastError("cannot load trusted certificates from \(trust.caFile ?? trust.caDir ?? "the system store")")
                SSL_CTX_free(ctx)
                throw e
            }
            ERR_clear_error()
            c[trust] = ctx
            return ctx
        }
    }

    static func lastError(_ prefix: String) -> NetError {
        let r = opensslReason() ?? "unknown error"
        return NetError.tls(target: "-", reason: "\(prefix): \(r)")
    }

    /// Reason string of the oldest queued OpenSSL error (clears the queue).
    static func opensslReason() -> String? {
        let e = ERR_get_error()
        ERR_clear_error()
        guard e != 0 else { return nil }
        if let r = ERR_reason_error_string(e) { return String(cString: r) }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(e, &buf, buf.count)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// A TCP connection (optionally through an HTTP CONNECT proxy, optionally TLS).
/// All methods are blocking with deadlines and must run on a dedicated thread
/// (`runBlocking`, `SerialIOThread`). One reader and one writer may use it at once:
/// OpenSSL calls are serialized by a lock, waits (poll) happen outside it.
public final class NetConnection: @unchecked Sendable {
    public let url: NetURL
    public let proxy: ProxyEndpoint?
    let fd: Int32
    private var ssl: OpaquePointer?
    private let sslLock = Lock()
    private let closed = Locked(false)
    /// Bytes received before the TLS/upgrade layer took over (rarely non-empty).
    var pending: [UInt8] = []
    /// Target label for messages: `https://host:port`.
    var label: String { url.origin }
    /// Monotonic time of the last use (pool bookkeeping).
    var lastUsedNs: UInt64 = 0
    /// Set when `read` returned end-of-stream because a TLS peer closed the TCP
    /// connection without `close_notify`: what was read may be truncated.
    public private(set) var closedWithoutNotify = false
    var requestsServed = 0

    private init(fd: Int32, url: NetURL, proxy: ProxyEndpoint?) {
        self.fd = fd
        self.url = url
        self.proxy = proxy
    }

    deinit {
        if let ssl { SSL_free(ssl) }
        Glibc.close(fd)
    }

    /// Connects to `url`'s host (through `proxy` when given), then TLS for https/wss.
    public static func open(url: NetURL, options: NetOptions, deadline: Deadline) throws -> NetConnection {
        cposix_install_sigpipe_noop()
        let proxy = try options.proxies.proxy(for: url)
        let connectDeadline = Deadline.earliest(deadline, .after(options.connectTimeout))
        let (host, port) = proxy.map { ($0.host, $0.port) } ?? (url.connectHost, url.port)
        var err: Int32 = 0
        var ebuf = [CChar](repeating: 0, count: 256)
        let fd = cposix_tcp_connect(host, Int32(port), connectDeadline.remainingMs, &err, &ebuf, Int32(ebuf.count))
        if fd < 0 {
            let reason: String
            switch fd {
            case -1:
                let m = ebuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                if let p = proxy { throw NetError.cannotReachProxy(proxy: p.display, reason: "cannot resolve host name (\(m))") }
                throw NetError.cannotResolve(target: url.origin, reason: m)
            case -3:
                if let p = proxy { throw NetError.cannotReachProxy(proxy: p.display, reason: "timed out after \(NetError.formatSeconds(connectDeadline.seconds))") }
                throw NetError.timedOut(target: url.origin, seconds: connectDeadline.seconds)
            default: reason = errnoReason(err)
            }
            if let p = proxy { throw NetError.cannotReachProxy(proxy: p.display, reason: reason) }
            throw NetError.cannotReach(target: url.origin, reason: reason)
        }
        let c = NetConnection(fd: fd, url: url, proxy: proxy)
        if let p = proxy { try c.proxyConnect(p, deadline: connectDeadline) }
        if url.isTLS { try c.startTLS(trust: options.trust, deadline: connectDeadline) }
        return c
    }

    // MARK: proxy

    private func proxyConnect(_ p: ProxyEndpoint, deadline: Deadline) throws {
        var head = "CONNECT \(url.hostPort) HTTP/1.1\r\nHost: \(url.hostPort)\r\n"
        if let a = p.authorization { head += "Proxy-Authorization: \(a)\r\n" }
        head += "\r\n"
        try rawWriteAll(Array(head.utf8), deadline: deadline)
        var parser = HTTPMessageParser(kind: .response)
        while true {
            let got = try rawRead(max: 16 * 1024, deadline: deadline, peer: p.display)
            if got.isEmpty { throw NetError.cannotReachProxy(proxy: p.display, reason: "connection closed during CONNECT") }
            parser.append(got)
            let r: HTTPResponse?
            do { r = try parser.nextResponseHead() } catch {
                throw NetError.cannotReachProxy(proxy: p.display, reason: "malformed answer to CONNECT")
            }
            guard let r else { continue }
            guard (200..<300).contains(r.status) else {
                let line = "\(r.version) \(r.status) \(r.reason)".trimmingCharacters(in: " ")
                throw NetError.proxyRefused(proxy: p.display, statusLine: line)
            }
            pending = parser.takeRemainingBytes()
            return
        }
    }

    // MARK: TLS

    private func startTLS(trust: TrustSettings, deadline: Deadline) throws {
        let ctx: OpaquePointer
        do { ctx = try TLSContexts.context(for: trust) } catch NetError.tls(_, let r) {
            throw NetError.tls(target: label, reason: r)
        }
        guard pending.isEmpty else { throw NetError.protocolError(target: label, reason: "proxy sent data before TLS") }
        guard let s = SSL_new(ctx) else { throw NetError.tls(target: label, reason: TLSContexts.opensslReason() ?? "SSL_new failed") }
        ssl = s
        guard SSL_set_fd(s, fd) == 1 else { throw NetError.tls(target: label, reason: TLSContexts.opensslReason() ?? "SSL_set_fd failed") }
        // The peer identity check must be in place before the handshake: every setter is
        // checked, and a host we cannot express as an expected name or address fails
        // closed instead of skipping the check.
        let identityFailed = { (what: String) -> NetError in
            ERR_clear_error()
            return NetError.tls(target: self.label, reason: "cannot set up the certificate check for \(what)")
        }
        switch TLSPeerIdentity(host: url.host) {
        case .ip(let ip):
            guard happy_tls_set_expected_ip(s, ip) == 1 else { throw identityFailed("the address \(ip)") }
        case .dns(let name):
            guard happy_SSL_set_tlsext_host_name(s, name) == 1, SSL_set1_host(s, name) == 1 else {
                throw identityFailed("the host name \(name)")
            }
        case .invalid:
            throw identityFailed("the host \(url.host)")
        }
        while true {
            ERR_clear_error()
            let r = SSL_connect(s)
            if r == 1 {
                // Belt and braces: SSL_VERIFY_PEER already fails the handshake otherwise.
                guard happy_tls_peer_verified(s) == 1 else {
                    throw NetError.tls(target: label, reason: "certificate verify failed: no verified peer certificate")
                }
                return
            }
            let e = SSL_get_error(s, r)
            switch e {
            case SSL_ERROR_WANT_READ: try wait(Int32(cposix_POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try wait(Int32(cposix_POLLOUT), deadline: deadline)
            default:
                let v = SSL_get_verify_result(s)
                if v != X509_V_OK {
                    let reason = String(cString: X509_verify_cert_error_string(v))
                    ERR_clear_error()
                    throw NetError.tls(target: label, reason: "certificate verify failed: \(reason)")
                }
                let reason = TLSContexts.opensslReason() ?? (e == SSL_ERROR_SYSCALL ? "connection closed during handshake" : "handshake failed")
                throw NetError.tls(target: label, reason: reason)
            }
        }
    }

    // MARK: I/O

    /// Waits until the fd is ready for `events`, or throws a timeout / closed error.
    private func wait(_ events: Int32, deadline: Deadline) throws {
        while true {
            if closed.get { throw NetError.connectionLost(target: label, reason: "closed") }
            let ms = deadline.remainingMs
            if ms == 0 { throw NetError.timedOut(target: label, seconds: deadline.seconds) }
            let r = cposix_poll1(fd, events, min(ms, 60_000))
            if r == -EINTR { continue }
            if r < 0 { throw NetError.connectionLost(target: label, reason: errnoReason(-r)) }
            if r > 0 { return }
        }
    }

    private func rawRead(max: Int, deadline: Deadline, peer: String? = nil) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            let n = buf.withUnsafeMutableBytes { cposix_recv(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return Array(buf[0..<n]) }
            let e = Int32(-n)
            if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { try wait(Int32(cposix_POLLIN), deadline: deadline); continue }
            throw NetError.connectionLost(target: peer ?? label, reason: errnoReason(e))
        }
    }

    private func rawWriteAll(_ bytes: [UInt8], deadline: Deadline) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { cposix_send(fd, $0.baseAddress! + off, $0.count - off) }
            if n >= 0 { off += n; continue }
            let e = Int32(-n)
            if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { try wait(Int32(cposix_POLLOUT), deadline: deadline); continue }
            throw NetError.connectionLost(target: label, reason: errnoReason(e))
        }
    }

    /// Reads up to `max` bytes; an empty result means the peer closed the connection.
    public func read(max: Int = 64 * 1024, deadline: Deadline) throws -> [UInt8] {
        if !pending.isEmpty { let p = pending; pending = []; return p }
        guard let ssl else { return try rawRead(max: max, deadline: deadline) }
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            if closed.get { throw NetError.connectionLost(target: label, reason: "closed") }
            sslLock.lock()
            ERR_clear_error()
            let n = buf.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            let e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n)
            let sysErr = errno
            let unexpectedEOF = e == SSL_ERROR_SSL && happy_tls_error_is_unexpected_eof(ERR_peek_error()) == 1
            let reason = (e == SSL_ERROR_SSL) ? TLSContexts.opensslReason() : nil
            sslLock.unlock()
            if n > 0 { return Array(buf[0..<Int(n)]) }
            switch e {
            case SSL_ERROR_ZERO_RETURN: return []
            case SSL_ERROR_WANT_READ: try wait(Int32(cposix_POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try wait(Int32(cposix_POLLOUT), deadline: deadline)
            case SSL_ERROR_SSL where unexpectedEOF:
                // The peer closed TCP without close_notify: end of stream, but possibly a
                // truncated one (an attacker can cut a connection). Callers that need the
                // whole stream (an HTTP body read until close) check `closedWithoutNotify`.
                closedWithoutNotify = true
                return []
            case SSL_ERROR_SYSCALL:
                if sysErr == 0 || sysErr == EAGAIN { closedWithoutNotify = true; return [] }
                throw NetError.connectionLost(target: label, reason: errnoReason(sysErr))
            default:
                throw NetError.tls(target: label, reason: reason ?? "read failed")
            }
        }
    }

    /// Writes all bytes (or throws).
    public func write(_ bytes: [UInt8], deadline: Deadline) throws {
        guard let ssl else { return try rawWriteAll(bytes, deadline: deadline) }
        var off = 0
        while off < bytes.count {
            if closed.get { throw NetError.connectionLost(target: label, reason: "closed") }
            sslLock.lock()
            ERR_clear_error()
            let n = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + off, Int32(min($0.count - off, 1 << 20))) }
            let e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n)
            let sysErr = errno
            let reason = (e == SSL_ERROR_SSL) ? TLSContexts.opensslReason() : nil
            sslLock.unlock()
            if n > 0 { off += Int(n); continue }
            switch e {
            case SSL_ERROR_WANT_READ: try wait(Int32(cposix_POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try wait(Int32(cposix_POLLOUT), deadline: deadline)
            case SSL_ERROR_SYSCALL:
                throw NetError.connectionLost(target: label, reason: errnoReason(sysErr == 0 ? EPIPE : sysErr))
            default:
                throw NetError.tls(target: label, reason: reason ?? "write failed")
            }
        }
    }

    /// True when an idle connection looks reusable (no EOF or stray bytes pending).
    func isIdleAndHealthy() -> Bool {
        if closed.get || !pending.isEmpty { return false }
        let r = cposix_poll1(fd, Int32(cposix_POLLIN), 0)
        return r == 0
    }

    /// Shuts the socket down (wakes any thread waiting on it). The fd and TLS state
    /// are freed when the last reference goes away.
    public func close() {
        let already = closed.withLock { c -> Bool in let was = c; c = true; return was }
        if already { return }
        _ = cposix_shutdown(fd)
    }

    public var isClosed: Bool { closed.get }
}
