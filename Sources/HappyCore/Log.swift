import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

public enum LogLevel: String, Sendable, Comparable {
    case debug = "DEBUG", info = "INFO", warn = "WARN", error = "ERROR"
    var rank: Int {
        switch self { case .debug: 0; case .info: 1; case .warn: 2; case .error: 3 }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// Where log lines go. The daemon installs a rotating file sink; commands leave the
/// default (nothing, or stderr with --verbose). Lines never contain secrets: callers
/// log ids, sizes and outcomes, never tokens, keys or decrypted payloads.
public protocol LogSink: Sendable {
    func write(level: LogLevel, component: String, message: String)
}

public final class Log: @unchecked Sendable {
    private static let lock = Lock()
    nonisolated(unsafe) private static var _sink: LogSink?
    nonisolated(unsafe) private static var _minLevel: LogLevel = .info

    public static func install(_ sink: LogSink?, minLevel: LogLevel = .info) {
        lock.lock(); defer { lock.unlock() }
        _sink = sink
        _minLevel = minLevel
    }

    /// True while a sink is installed (the daemon's log file, or stderr with --verbose).
    public static var hasSink: Bool {
        lock.lock(); defer { lock.unlock() }
        return _sink != nil
    }

    public static func write(_ level: LogLevel, _ component: String, _ message: @autoclosure () -> String) {
        lock.lock()
        let sink = _sink
        let min = _minLevel
        lock.unlock()
        guard let sink, level >= min else { return }
        sink.write(level: level, component: component, message: message())
    }

    public static func debug(_ c: String, _ m: @autoclosure () -> String) { write(.debug, c, m()) }
    public static func info(_ c: String, _ m: @autoclosure () -> String) { write(.info, c, m()) }
    public static func warn(_ c: String, _ m: @autoclosure () -> String) { write(.warn, c, m()) }
    public static func error(_ c: String, _ m: @autoclosure () -> String) { write(.error, c, m()) }

    /// `2026-11-24T10:15:02.123Z LEVEL [component] message`
    public static func formatLine(date: Date = Date(), level: LogLevel, component: String, message: String) -> String {
        "\(ISOTime.string(epochMs: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))) \(level.rawValue) [\(component)] \(message)"
    }
}

/// Stderr sink (used by `--verbose` and by `start-sync` on a terminal).
public struct StderrLogSink: LogSink {
    public init() {}
    public func write(level: LogLevel, component: String, message: String) {
        let line = Log.formatLine(level: level, component: component, message: message) + "\n"
        StandardStreams.write(2, line)
    }
}
