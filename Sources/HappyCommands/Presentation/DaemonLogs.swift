import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// `happy logs`: the daemon logs `logs/*-daemon.log` of a home.
public enum DaemonLogs {
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var sizeBytes: Int64
        public var modifiedAt: Int64
        public var json: JSON { ["path": .string(path), "sizeBytes": .number(Double(sizeBytes)), "modifiedAt": .number(Double(modifiedAt))] }
    }

    /// Newest first.
    public static func list(_ home: HomeLayout) -> [Entry] {
        RotatingLogSink.logFiles(in: home.logsDir).map { Entry(path: $0.path, sizeBytes: $0.size, modifiedAt: $0.mtimeMs) }
    }

    public static func newest(_ home: HomeLayout) -> String? { list(home).first?.path }

    /// The last `n` lines of a file (reads backwards in chunks).
    public static func lastLines(_ path: String, _ n: Int) -> [String] {
        guard n > 0 else { return [] }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        var end = Int64(st.st_size)
        var data: [UInt8] = []
        let chunk: Int64 = 64 * 1024
        while end > 0 {
            let start = max(0, end - chunk)
            var buf = [UInt8](repeating: 0, count: Int(end - start))
            let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(start)) }
            if got <= 0 { break }
            data.insert(contentsOf: buf[0..<got], at: 0)
            end = start
            // n lines need n+1 newlines (the file usually ends with one).
            if data.reduce(0, { $0 + ($1 == 10 ? 1 : 0) }) > n { break }
        }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if end > 0 && !lines.isEmpty { lines.removeFirst() }  // partial first line
        return Array(lines.suffix(n))
    }
}

/// Follows a growing file, or "the newest file of a set" (across rotation and restarts),
/// by polling size and identity every `interval`. Emits whole bytes as they appear.
public final class FileFollower: @unchecked Sendable {
    private let resolve: @Sendable () -> String?
    /// The file followed now (nil until one exists).
    public private(set) var path: String?
    private var offset: Int64 = 0
    private var inode: UInt64 = 0

    /// `resolve` returns the file to follow now (called at every poll).
    public init(resolve: @escaping @Sendable () -> String?, startAtEnd: Bool) {
        self.resolve = resolve
        if let p = resolve() {
            path = p
            var st = stat()
            if stat(p, &st) == 0 {
                inode = UInt64(st.st_ino)
                offset = startAtEnd ? Int64(st.st_size) : 0
            }
        }
    }

    /// One poll: returns new bytes (possibly from a new file) and whether the file switched.
    public func poll() -> (bytes: [UInt8], switchedTo: String?) {
        var switched: String?
        if let now = resolve(), now != path {
            path = now
            offset = 0
            inode = 0
            switched = now
        }
        guard let p = path else { return ([], switched) }
        var st = stat()
        guard stat(p, &st) == 0 else { return ([], switched) }
        if UInt64(st.st_ino) != inode || Int64(st.st_size) < offset {
            // Replaced or truncated (session output rotation): start over.
            inode = UInt64(st.st_ino)
            offset = 0
        }
        guard Int64(st.st_size) > offset else { return ([], switched) }
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ([], switched) }
        defer { close(fd) }
        let want = Int(min(Int64(st.st_size) - offset, 4 << 20))
        var buf = [UInt8](repeating: 0, count: want)
        let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(offset)) }
        guard got > 0 else { return ([], switched) }
        offset += Int64(got)
        return (Array(buf[0..<got]), switched)
    }
}
