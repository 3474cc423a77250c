import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// An HTTP proxy reached with `CONNECT` (from `http://[user:pass@]host:port`).
public struct ProxyEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?

    public init(host: String, port: Int, user: String? = nil, password: String? = nil) {
        self.host = host; self.port = port; self.user = user; self.password = password
    }

    /// Parses a proxy URL; a bare `host:port` is read as `http://host:port`.
    public init(url: String) throws {
        let text = url.contains("://") ? url : "http://" + url
        let u = try NetURL(text)
        guard u.scheme == "http" else { throw NetError.invalidURL("proxy URL must be http://[user:pass@]host:port") }
        host = u.host
        port = u.port
        user = u.user
        password = u.password
    }

    /// `http://host:port` (never the credentials) for messages.
    public var display: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// `Proxy-Authorization` value when credentials are set.
    public var authorization: String? {
        guard let u = user else { return nil }
        let raw = "\(u):\(password ?? "")"
        return "Basic " + Base64.encode(Array(raw.utf8))
    }
}

/// Which proxy (if any) a connection goes through. Built from the environment
/// (`HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy`, `NO_PROXY`/`no_proxy`)
/// or `.none` to bypass proxies entirely (the local control API).
public struct ProxySettings: Sendable, Equatable {
    public var httpsProxy: String?
    public var httpProxy: String?
    public var noProxy: String?

    public init(httpsProxy: String? = nil, httpProxy: String? = nil, noProxy: String? = nil) {
        self.httpsProxy = httpsProxy; self.httpProxy = httpProxy; self.noProxy = noProxy
    }

    /// No proxy at all, whatever the environment says.
    public static let none = ProxySettings()

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> ProxySettings {
        func pick(_ lower: String, _ upper: String) -> String? {
            for k in [lower, upper] { if let v = env[k]?.trimmingCharacters(in: " \t"), !v.isEmpty { return v } }
            return nil
        }
        return ProxySettings(httpsProxy: pick("https_proxy", "HTTPS_PROXY"),
                             httpProxy: pick("http_proxy", "HTTP_PROXY"),
                             noProxy: pick("no_proxy", "NO_PROXY"))
    }

    /// The proxy for a target, or nil for a direct connection. `https`/`wss` use
    /// `httpsProxy`, `http`/`ws` use `httpProxy`; `NO_PROXY` matches bypass.
    public func proxy(for url: NetURL) throws -> ProxyEndpoint? {
        let p = url.isTLS ? httpsProxy : httpProxy
        guard let p, !p.isEmpty else { return nil }
        if bypasses(host: url.host, port: url.port) { return nil }
        return try ProxyEndpoint(url: p)
    }

    /// `NO_PROXY` rules: `*`; host names; domain suffixes (`.example.com` or
    /// `example.com` match `a.example.com`); IP addresses; `host:port`.
    public func bypasses(host rawHost: String, port: Int) -> Bool {
        guard let list = noProxy else { return false }
        var host = rawHost.lowercased()
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host = String(host.dropLast()) }
        for raw in list.split(separator: ",") {
            var e = raw.trimmingCharacters(in: " \t").lowercased()
            if e.isEmpty { continue }
            if e == "*" { return true }
            var ePort: Int? = nil
            if e.hasPrefix("[") {
                // [v6]:port or [v6]
                if let close = e.firstIndex(of: "]") {
                    let after = e[e.index(after: close)...]
                    if after.hasPrefix(":") { ePort = Int(after.dropFirst()) }
                    e = String(e[e.index(after: e.startIndex)..<close])
                }
            } else if e.filter({ $0 == ":" }).count == 1, let c = e.lastIndex(of: ":") {
                ePort = Int(e[e.index(after: c)...])
                e = String(e[..<c])
            }
            if let ep = ePort, ep != port { continue }
            if e.hasPrefix("*.") { e = String(e.dropFirst(2)) } else if e.hasPrefix(".") { e = String(e.dropFirst()) }
            if e.hasSuffix(".") { e = String(e.dropLast()) }
            if e.isEmpty { continue }
            if host == e || host.hasSuffix("." + e) { return true }
        }
        return false
    }
}

/// Trust anchors for TLS: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the
/// system trust store (`SSL_CTX_set_default_verify_paths`).
public struct TrustSettings: Sendable, Equatable, Hashable {
    public var caFile: String?
    public var caDir: String?

    public init(caFile: String? = nil, caDir: String? = nil) { self.caFile = caFile; self.caDir = caDir }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> TrustSettings {
        TrustSettings(caFile: env["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 },
                      caDir: env["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0 })
    }
}

/// Connection options shared by the HTTP client and the WebSocket.
public struct NetOptions: Sendable {
    public var proxies: ProxySettings
    public var trust: TrustSettings
    /// Upper bound for TCP connect (+ proxy + TLS handshake); the request timeout applies too.
    public var connectTimeout: Double
    /// Reuse idle HTTP connections (keep-alive) for up to `idleTimeout` seconds.
    public var keepAlive: Bool
    public var idleTimeout: Double
    /// Largest response body accepted (16 MiB): a hostile server cannot make us buffer more.
    public var maxResponseBytes: Int

    public init(proxies: ProxySettings = .fromEnvironment(), trust: TrustSettings = .fromEnvironment(),
                connectTimeout: Double = 15, keepAlive: Bool = true, idleTimeout: Double = 4,
                maxResponseBytes: Int = 16 << 20) {
        self.proxies = proxies
        self.trust = trust
        self.connectTimeout = connectTimeout
        self.keepAlive = keepAlive
        self.idleTimeout = idleTimeout
        self.maxResponseBytes = maxResponseBytes
    }

    /// Everything from an explicit environment dictionary (tests, subprocess env).
    public static func environment(_ env: [String: String]) -> NetOptions {
        NetOptions(proxies: .fromEnvironment(env), trust: .fromEnvironment(env))
    }
}
