import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// HTTP/1.1 client over `NetConnection` (TCP, TLS, CONNECT proxy). Implements the
/// `HTTPTransport` seam used by the REST layer. Responses with `Content-Length`,
/// chunked or until-close bodies (at most `NetOptions.maxResponseBytes`, held once);
/// whole-request timeout; idle keep-alive reuse. Over TLS, a body that ends without
/// `close_notify` is a truncation error.
public final class HTTPClient: HTTPTransport, @unchecked Sendable {
    public let options: NetOptions
    public var userAgent: String
    private let pool = Locked<[String: [NetConnection]]>([:])

    public init(options: NetOptions = NetOptions(), userAgent: String = "happy/\(HappyVersion.current)") {
        self.options = options
        self.userAgent = userAgent
    }

    deinit { closeIdleConnections() }

    public func send(_ request: HTTPClientRequest) async throws -> HTTPResponse {
        try await runBlocking("happy-http") { [self] in try self.sendSync(request) }
    }

    /// Blocking variant (call from a dedicated thread only).
    public func sendSync(_ request: HTTPClientRequest) throws -> HTTPResponse {
        let url = try NetURL(request.url)
        guard url.scheme == "http" || url.scheme == "https" else { throw NetError.invalidURL(request.url) }
        let deadline = Deadline.after(request.timeout)
        let idempotent = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].contains(request.method.uppercased())
        if let conn = takeIdle(url) {
            do {
                return try exchange(conn, url: url, request: request, deadline: deadline)
            } catch let e as NetError where e.isConnectionLost && idempotent && !deadline.isPast {
                // A kept-alive connection the server had closed: retry once on a fresh one.
            }
        }
        let conn = try NetConnection.open(url: url, options: options, deadline: deadline)
        return try exchange(conn, url: url, request: request, deadline: deadline)
    }

    private func poolKey(_ url: NetURL) -> String { "\(url.scheme)://\(url.hostPort)" }

    private func takeIdle(_ url: NetURL) -> NetConnection? {
        guard options.keepAlive else { return nil }
        let now = DispatchTime.now().uptimeNanoseconds
        let maxIdle = UInt64(options.idleTimeout * 1e9)
        return pool.withLock { p -> NetConnection? in
            var list = p[poolKey(url)] ?? []
            defer { p[poolKey(url)] = list.isEmpty ? nil : list }
            while let c = list.popLast() {
                if now &- c.lastUsedNs < maxIdle && c.isIdleAndHealthy() { return c }
                c.close()
            }
            return nil
        }
    }

    private func putIdle(_ c: NetConnection) {
        c.lastUsedNs = DispatchTime.now().uptimeNanoseconds
        pool.withLock { p in
            var list = p[poolKey(c.url)] ?? []
            list.append(c)
            if list.count > 8 { list.removeFirst().close() }
            p[poolKey(c.url)] = list
        }
    }

    /// Idle kept-alive connections (tests and diagnostics).
    var idleConnectionCount: Int { pool.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    var maxRequestsServed: Int { pool.withLock { $0.values.flatMap { $0 }.map(\.requestsServed).max() ?? 0 } }

    /// Closes every idle kept-alive connection.
    public func closeIdleConnections() {
        let all = pool.withLock { p -> [NetConnection] in let a = p.values.flatMap { $0 }; p = [:]; return a }
        for c in all { c.close() }
    }

    private func exchange(_ conn: NetConnection, url: NetURL, request: HTTPClientRequest, deadline: Deadline) throws -> HTTPResponse {
        var headers = request.headers
        headers.set("Host", url.hostHeader)
        if headers["User-Agent"] == nil { headers.set("User-Agent", userAgent) }
        if !options.keepAlive { headers.set("Connection", "close") }
        let method = request.method.uppercased()
        var req = HTTPRequest(method: method, target: url.target, headers: headers, body: request.body)
        if request.body.isEmpty && ["POST", "PUT", "PATCH"].contains(method) { req.headers.set("Content-Length", "0") }
        do {
            try conn.write(req.serialized(), deadline: deadline)
        } catch let e as NetError {
            conn.close()
            throw e
        }
        var parser = HTTPMessageParser(kind: .response, maxHeaderBytes: 64 * 1024, maxBodyBytes: options.maxResponseBytes)
        parser.expectNoBody = method == "HEAD"
        var received = 0
        while true {
            let chunk: [UInt8]
            do {
                chunk = try conn.read(deadline: deadline)
            } catch let e as NetError {
                conn.close()
                if case .timedOut = e { throw NetError.timedOut(target: url.origin, seconds: deadline.seconds) }
                throw e
            }
            received += chunk.count
            if chunk.isEmpty && received == 0 {
                conn.close()
                throw NetError.connectionLost(target: url.origin, reason: "server closed the connection without a response")
            }
            if chunk.isEmpty && conn.closedWithoutNotify {
                // A complete message would have been returned before the end of the stream:
                // this response was cut, and without close_notify nothing says it is whole.
                conn.close()
                throw NetError.connectionLost(target: url.origin,
                                              reason: "the TLS connection closed without close_notify before the response was complete (truncated)")
            }
            parser.append(chunk)
            do {
                while let resp = try parser.nextResponse(eof: chunk.isEmpty) {
                    if (100..<200).contains(resp.status) && resp.status != 101 { continue }  // interim
                    let reusable = options.keepAlive && !chunk.isEmpty && resp.keepAlive && parser.bufferedByteCount == 0
                        && (resp.headers["Content-Length"] != nil || resp.headers["Transfer-Encoding"] != nil || method == "HEAD"
                            || resp.status == 204 || resp.status == 304)
                    if reusable { conn.requestsServed += 1; putIdle(conn) } else { conn.close() }
                    return resp
                }
            } catch HTTPParseError.bodyTooLarge {
                conn.close()
                throw NetError.responseTooLarge(target: url.origin, limit: options.maxResponseBytes)
            } catch let e as HTTPParseError {
                conn.close()
                throw NetError.protocolError(target: url.origin, reason: "\(e)")
            }
            if chunk.isEmpty {
                conn.close()
                throw NetError.connectionLost(target: url.origin, reason: "connection closed before the response ended")
            }
        }
    }
}
