import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// Errors of the network stack (TCP, TLS, proxy, HTTP client, WebSocket). Messages
/// name the target (`https://host:port`) and the reason; never credentials.
public enum NetError: HappyError, Equatable {
    case invalidURL(String)
    /// Name resolution failed.
    case cannotResolve(target: String, reason: String)
    /// TCP connect failed (`connection refused`, ...).
    case cannotReach(target: String, reason: String)
    /// The proxy itself could not be reached.
    case cannotReachProxy(proxy: String, reason: String)
    /// The proxy answered `CONNECT` with a non-2xx status line.
    case proxyRefused(proxy: String, statusLine: String)
    case timedOut(target: String, seconds: Double)
    case tls(target: String, reason: String)
    /// Read/write failed after the connection was up (reset, closed early).
    case connectionLost(target: String, reason: String)
    /// The peer did not speak the expected protocol (HTTP, WebSocket).
    case protocolError(target: String, reason: String)
    case responseTooLarge(target: String, limit: Int)
    /// The WebSocket handshake was answered with something else than 101.
    case webSocketHandshake(target: String, reason: String)
    /// The WebSocket was closed (by the peer or by us after a violation).
    case webSocketClosed(code: Int, reason: String)
    /// An outgoing or incoming message is larger than the configured limit.
    case messageTooLarge(size: Int, limit: Int)

    public var what: String {
        switch self {
        case .invalidURL(let u): return "invalid URL '\(u)'"
        case .cannotResolve(let t, let r): return "cannot reach \(t): cannot resolve host name (\(r))"
        case .cannotReach(let t, let r): return "cannot reach \(t): \(r)"
        case .cannotReachProxy(let p, let r): return "cannot reach proxy \(p): \(r)"
        case .proxyRefused(let p, let s): return "proxy \(p) refused CONNECT: \(s)"
        case .timedOut(let t, let s): return "\(t): timed out after \(NetError.formatSeconds(s))"
        case .tls(let t, let r): return "TLS connection to \(t) failed: \(r)"
        case .connectionLost(let t, let r): return "connection to \(t) lost: \(r)"
        case .protocolError(let t, let r): return "unexpected response from \(t): \(r)"
        case .responseTooLarge(let t, let l): return "response from \(t) is larger than \(l) bytes"
        case .webSocketHandshake(let t, let r): return "WebSocket handshake with \(t) failed: \(r)"
        case .webSocketClosed(let c, let r): return r.isEmpty ? "WebSocket closed (code \(c))" : "WebSocket closed (code \(c)): \(r)"
        case .messageTooLarge(let s, let l): return "message of \(s) bytes exceeds the limit of \(l) bytes"
        }
    }

    public var hint: String? {
        switch self {
        case .invalidURL: return "use http(s)://host[:port]/path"
        case .cannotResolve, .cannotReach, .timedOut, .connectionLost:
            return "check the server URL and your network (HTTPS_PROXY / NO_PROXY if you use a proxy)"
        case .cannotReachProxy, .proxyRefused: return "check HTTPS_PROXY / HTTP_PROXY / NO_PROXY and the proxy credentials"
        case .tls: return "the server certificate must be trusted by the system store, or by SSL_CERT_FILE / SSL_CERT_DIR"
        default: return nil
        }
    }

    public static func formatSeconds(_ s: Double) -> String {
        if s.rounded() == s && abs(s) < 1e9 { return "\(Int(s)) s" }
        return "\((s * 1000).rounded() / 1000) s"
    }

    /// True for failures where nothing was received from the peer on a reused
    /// keep-alive connection (safe to retry idempotent requests).
    var isConnectionLost: Bool { if case .connectionLost = self { return true }; return false }
}

/// errno → lower-case reason (`connection refused`).
func errnoReason(_ e: Int32) -> String {
    let s = String(cString: strerror(e))
    guard let f = s.first else { return "error \(e)" }
    return f.lowercased() + s.dropFirst()
}
