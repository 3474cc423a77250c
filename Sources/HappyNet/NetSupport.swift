import CPosix
import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// A point in monotonic time with the timeout it came from (for messages).
public struct Deadline: Sendable {
    public let uptimeNs: UInt64
    public let seconds: Double

    public init(uptimeNs: UInt64, seconds: Double) {
        self.uptimeNs = uptimeNs
        self.seconds = seconds
    }

    public static func after(_ seconds: Double) -> Deadline {
        let s = max(0, seconds)
        let add = s >= 1e9 ? UInt64(1e18) : UInt64(s * 1e9)
        return Deadline(uptimeNs: DispatchTime.now().uptimeNanoseconds &+ add, seconds: s)
    }
    public static let distant = Deadline(uptimeNs: UInt64.max / 2, seconds: 1e9)

    /// Milliseconds left, clamped to [0, Int32.max].
    public var remainingMs: Int32 {
        let now = DispatchTime.now().uptimeNanoseconds
        if now >= uptimeNs { return 0 }
        let ms = (uptimeNs - now + 999_999) / 1_000_000
        return ms > UInt64(Int32.max) ? Int32.max : Int32(ms)
    }
    public var isPast: Bool { DispatchTime.now().uptimeNanoseconds >= uptimeNs }
    public static func earliest(_ a: Deadline, _ b: Deadline) -> Deadline { a.uptimeNs <= b.uptimeNs ? a : b }
}

/// A parsed `scheme://[user[:pass]@]host[:port][/path][?query]` URL.
public struct NetURL: Sendable, Equatable {
    public var scheme: String
    public var user: String?
    public var password: String?
    /// Host without IPv6 brackets and without a zone id, lower-cased.
    public var host: String
    /// The zone of a scoped IPv6 literal (`[fe80::1%25eth0]` → `eth0`), else nil.
    public var zoneId: String?
    public var port: Int
    /// Origin-form request target: `/path?query` (at least `/`).
    public var target: String

    public init(_ text: String) throws {
        guard let sep = text.firstRange(of: "://") else { throw NetError.invalidURL(text) }
        scheme = text[..<sep.lowerBound].lowercased()
        var rest = Substring(text[sep.upperBound...])
        let authEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[..<authEnd]
        rest = rest[authEnd...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        target = rest.isEmpty ? "/" : (rest.first == "?" ? "/" + rest : String(rest))
        if let at = authority.lastIndex(of: "@") {
            let ui = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let c = ui.firstIndex(of: ":") {
                user = HTTPCodec.percentDecode(String(ui[..<c]))
                password = HTTPCodec.percentDecode(String(ui[ui.index(after: c)...]))
            } else {
                user = HTTPCodec.percentDecode(String(ui))
            }
        }
        var portText: Substring? = nil
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { throw NetError.invalidURL(text) }
            let literal = String(authority[authority.index(after: authority.startIndex)..<close])
            // RFC 6874: `[address%25zone]` (a bare `%zone` is accepted too). The address
            // must be a real IPv6 address: it is what the certificate is checked against.
            var address = literal
            if let pct = literal.firstIndex(of: "%") {
                address = String(literal[..<pct])
                var zone = literal[literal.index(after: pct)...]
                if zone.hasPrefix("25") { zone = zone.dropFirst(2) }  // the RFC 6874 separator is "%25"
                let decoded = HTTPCodec.percentDecode(String(zone))
                guard !decoded.isEmpty, decoded.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "%") }) else {
                    throw NetError.invalidURL(text)
                }
                zoneId = decoded
            }
            guard TLSPeerIdentity.isIPv6Literal(address) else { throw NetError.invalidURL(text) }
            host = address.lowercased()
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw NetError.invalidURL(text) }
                portText = after.dropFirst()
            }
        } else if let c = authority.lastIndex(of: ":") {
            host = authority[..<c].lowercased()
            portText = authority[authority.index(after: c)...]
        } else {
            host = authority.lowercased()
        }
        guard !host.isEmpty else { throw NetError.invalidURL(text) }
        let dflt: Int
        switch scheme {
        case "http", "ws": dflt = 80
        case "https", "wss": dflt = 443
        default: throw NetError.invalidURL(text)
        }
        if let p = portText, !p.isEmpty {
            guard let n = Int(p), (1...65535).contains(n) else { throw NetError.invalidURL(text) }
            port = n
        } else {
            port = dflt
        }
    }

    public var isTLS: Bool { scheme == "https" || scheme == "wss" }
    public var defaultPort: Int { isTLS ? 443 : 80 }
    /// What to resolve and connect to: the host, with `%zone` for a scoped IPv6 address.
    public var connectHost: String { zoneId.map { "\(host)%\($0)" } ?? host }
    /// `host` with brackets for IPv6 literals (and the zone as `%25zone`, RFC 6874).
    public var hostForURL: String {
        guard host.contains(":") else { return host }
        return "[\(host)\(zoneId.map { "%25" + $0 } ?? "")]"
    }
    /// `host:port` (brackets for IPv6).
    public var hostPort: String { "\(hostForURL):\(port)" }
    /// Value for the `Host` header (port omitted when default).
    public var hostHeader: String { port == defaultPort ? hostForURL : hostPort }
    /// `https://host:port`, used in messages (no credentials, no path).
    public var origin: String { "\(scheme)://\(hostPort)" }
}

/// Runs blocking work on a fresh dedicated thread (never on the cooperative pool).
public func runBlocking<T: Sendable>(_ name: String = "happy-io", _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
        OSThread.start(name: name) {
            do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
        }
    }
}

/// One dedicated thread that runs submitted jobs in order (a connection's writer).
public final class SerialIOThread: @unchecked Sendable {
    private let cond = Condition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    public init(name: String) {
        OSThread.start(name: name) { [self] in self.loop() }
    }

    private func loop() {
        while true {
            cond.lock()
            while jobs.isEmpty && !stopping { cond.wait() }
            if jobs.isEmpty && stopping { cond.unlock(); return }
            let job = jobs.removeFirst()
            cond.unlock()
            job()
        }
    }

    public func submit(_ job: @escaping @Sendable () -> Void) {
        cond.lock()
        jobs.append(job)
        cond.signal()
        cond.unlock()
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
            submit {
                do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
            }
        }
    }

    /// Lets queued jobs finish, then ends the thread.
    public func stop() {
        cond.lock()
        stopping = true
        cond.signal()
        cond.unlock()
    }
}

/// What a TLS server certificate is checked against, from a URL host (brackets and the
/// zone id already removed by `NetURL`): an IP literal (IPv4 dotted quad or IPv6) is
/// matched against the certificate's IP addresses, anything else as a DNS name.
public enum TLSPeerIdentity: Equatable, Sendable {
    case ip(String)
    case dns(String)
    /// Cannot be expressed as an expected identity (empty, NUL, a `%` zone left over):
    /// the connection must fail rather than go unchecked.
    case invalid

    public init(host: String) {
        if host.isEmpty || host.utf8.contains(0) || host.contains("%") { self = .invalid; return }
        if Self.isIPv4Literal(host) || Self.isIPv6Literal(host) { self = .ip(host); return }
        if host.contains(":") || host.contains("[") || host.contains("]") { self = .invalid; return }
        self = .dns(host)
    }

    public static func isIPv4Literal(_ s: String) -> Bool {
        var a = in_addr()
        return inet_pton(AF_INET, s, &a) == 1
    }

    public static func isIPv6Literal(_ s: String) -> Bool {
        var a = in6_addr()
        return inet_pton(AF_INET6, s, &a) == 1
    }
}
