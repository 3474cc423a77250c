import Foundation

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
    private static let lock = NSLock()
    nonisolated(unsafe) private static var _sink: LogSink?
    nonisolated(unsafe) private static var _minLevel: LogLevel = .info

    public static func install(_ sink: LogSink?, minLevel: LogLevel = .info) {
        lock.lock(); defer { lock.unlock() }
        _sink = sink
        _minLevel = minLevel
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
        "\(ISOTime.string(date)) \(level.rawValue) [\(component)] \(message)"
    }
}

/// Stderr sink (used by `--verbose` and by `start-sync` on a terminal).
public struct StderrLogSink: LogSink {
    public init() {}
    public func write(level: LogLevel, component: String, message: String) {
        let line = Log.formatLine(level: level, component: component, message: message) + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// ISO-8601 UTC with milliseconds, without Foundation's formatter cost.
public enum ISOTime {
    public static func string(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        return string(epochMs: ms)
    }

    public static func string(epochMs: Int64) -> String {
        var t = time_t(epochMs / 1000)
        var msPart = Int(epochMs % 1000)
        if msPart < 0 { msPart += 1000; t -= 1 }
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func p(_ v: Int32, _ w: Int) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(p(tmv.tm_year + 1900, 4))-\(p(tmv.tm_mon + 1, 2))-\(p(tmv.tm_mday, 2))T\(p(tmv.tm_hour, 2)):\(p(tmv.tm_min, 2)):\(p(tmv.tm_sec, 2)).\(p(Int32(msPart), 3))Z"
    }

    public static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// Parses `YYYY-MM-DDTHH:MM:SS(.sss)Z`; nil otherwise.
    public static func parse(_ s: String) -> Int64? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        return nil
    }
}
