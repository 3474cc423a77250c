import FoundationEssentials
import CPosix
#if canImport(Glibc)
import Glibc
#endif

/// Reads facts about other processes from /proc.
public enum ProcessProbe {
    /// Field 22 of /proc/PID/stat (start time in clock ticks since boot); nil when unreadable.
    public static func startTime(_ pid: Int32) -> UInt64? {
        statFields(pid).flatMap { $0.count > 19 ? UInt64($0[19]) : nil }
    }

    /// (state, start time = field 22) of /proc/PID/stat; nil when the process is gone.
    public static func readStat(_ pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard let f = statFields(pid), f.count > 19, let st = UInt64(f[19]), let state = f[0].first else { return nil }
        return (state, st)
    }

    /// Fields after `(comm)`: index 0 is field 3 (state).
    static func statFields(_ pid: Int32) -> [Substring]? {
        guard pid > 0, let bytes = try? FileIO.read("/proc/\(pid)/stat", limit: 64 * 1024) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// Alive and not a zombie.
    public static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, cposix_pid_alive(pid) == 1 else { return false }
        if let f = statFields(pid), let s = f.first, s == "Z" || s == "X" { return false }
        return true
    }

    public static func cmdline(_ pid: Int32) -> [String]? {
        guard pid > 0, let bytes = try? FileIO.read("/proc/\(pid)/cmdline", limit: 256 * 1024) else { return nil }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            .filter { !$0.isEmpty }
    }

    /// A command line of a happy daemon: `... happy ... daemon start-sync ...`.
    public static func looksLikeHappyDaemon(_ args: [String]) -> Bool {
        guard args.contains("daemon") else { return false }
        if args.contains("start-sync") { return true }
        return args.contains { Paths.basename($0).contains("happy") }
    }

    /// The pid is a live happy daemon, with the recorded start time when one is known.
    public static func isHappyDaemon(pid: Int32, expectedStartTime: UInt64?) -> Bool {
        guard isAlive(pid) else { return false }
        if pid == getpid() { return true }
        guard let args = cmdline(pid), looksLikeHappyDaemon(args) else { return false }
        if let expectedStartTime, let actual = startTime(pid), actual != expectedStartTime { return false }
        return true
    }

    /// Absolute path of the running executable.
    public static func executablePath() -> String {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4095) }
        if n > 0 { return String(decoding: buf[0..<n], as: UTF8.self) }
        return CommandLine.arguments.first ?? "happy"
    }
}
