import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// The one-time warning for credentials sent in clear: an `http://` (or `ws://`) server
/// URL whose host is not loopback carries the bearer token unencrypted. The REST layer
/// calls `check` before each request that carries or returns a token; the first such
/// request to a given origin warns, later ones do not.
///
/// Where the warning goes is decided by whoever owns the process's output: `setHandler`.
/// Without a handler it goes to the log when a log sink is installed (the daemon: its
/// log file) and otherwise to stderr as a `warning:` line (commands).
public enum InsecureTransportNotice {
    private static let state = Locked<(warned: Set<String>, handler: (@Sendable (String) -> Void)?)>(([], nil))

    /// Replaces where the warning goes (nil: the default described above).
    public static func setHandler(_ handler: (@Sendable (String) -> Void)?) {
        state.withLock { $0.handler = handler }
    }

    /// True for a cleartext scheme (`http`, `ws`) to a host that is not loopback.
    public static func isCleartextToRemote(_ url: NetURL) -> Bool {
        guard url.scheme == "http" || url.scheme == "ws" else { return false }
        return !isLoopback(url.host)
    }

    /// `localhost` (and `*.localhost`), 127.0.0.0/8, `::1` and `::ffff:127.x.y.z`.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") { return true }
        var a4 = in_addr()
        if inet_pton(AF_INET, h, &a4) == 1 { return UInt32(bigEndian: a4.s_addr) >> 24 == 127 }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, h, &a6) == 1 {
            let b = withUnsafeBytes(of: &a6) { Array($0) }
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return b[12] == 127 }
        }
        return false
    }

    /// The warning text for an origin (no credentials, no path).
    public static func message(origin: String) -> String {
        "the server \(origin) is not encrypted (http:// to a host that is not this machine): "
            + "the access token travels in clear text — use an https:// server URL"
    }

    /// Warns once per origin when `url` would carry credentials in clear. Returns true
    /// when this call warned.
    @discardableResult
    public static func check(_ url: String) -> Bool {
        guard let u = try? NetURL(url), isCleartextToRemote(u) else { return false }
        let origin = u.origin
        let (first, handler) = state.withLock { s -> (Bool, (@Sendable (String) -> Void)?) in
            (s.warned.insert(origin).inserted, s.handler)
        }
        guard first else { return false }
        let text = message(origin: origin)
        if let handler {
            handler(text)
        } else if Log.hasSink {
            Log.warn("net", text)
        } else {
            StandardStreams.write(2, "warning: \(text)\n")
        }
        return true
    }
}
