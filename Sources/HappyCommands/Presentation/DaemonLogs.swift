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

    /// The last `n` lines of a file (reads backwards in chunks), of its first `end` bytes
    /// when given.
    public static func lastLines(_ path: String, _ n: Int, end limit: Int64? = nil) -> [String] {
        guard n > 0 else { return [] }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        var end = min(Int64(st.st_size), limit ?? Int64.max)
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

/// Follows a growing file, or "the newest file of a set", across rotation and restarts
/// (`tail -F`): polls the open file for new bytes; when the path now names another file
/// (renamed away, replaced, or `resolve` returns a new path), the old file is read to its
/// end first and a partial last line is terminated, then the new file is read from its
/// start. A file truncated in place is read again from its start.
public final class FileFollower: @unchecked Sendable {
    private let resolve: @Sendable () -> String?
    /// The file followed now (nil until one exists).
    public private(set) var path: String?
    private var fd: Int32 = -1
    private var inode: UInt64 = 0
    /// How far the current file was read.
    public private(set) var offset: Int64 = 0
    /// The last byte read from the current file was a newline (or nothing was read).
    private var atLineStart = true

    /// `resolve` returns the file to follow now (called at every poll).
    public init(resolve: @escaping @Sendable () -> String?, startAtEnd: Bool) {
        self.resolve = resolve
        if let p = resolve() { _ = open(p, atEnd: startAtEnd) }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Opens `p` (at its start or end); false when it cannot be opened.
    private func open(_ p: String, atEnd: Bool) -> Bool {
        let f = Glibc.open(p, O_RDONLY | O_CLOEXEC)
        guard f >= 0 else { return false }
        var st = stat()
        guard fstat(f, &st) == 0 else { close(f); return false }
        if fd >= 0 { close(fd) }
        fd = f
        path = p
        inode = UInt64(st.st_ino)
        offset = atEnd ? Int64(st.st_size) : 0
        atLineStart = true
        return true
    }

    /// Everything new in the open file (at most 4 MiB per call).
    private func drain() -> [UInt8] {
        guard fd >= 0 else { return [] }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        if Int64(st.st_size) < offset { offset = 0 }  // truncated in place
        guard Int64(st.st_size) > offset else { return [] }
        let want = Int(min(Int64(st.st_size) - offset, 4 << 20))
        var buf = [UInt8](repeating: 0, count: want)
        let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(offset)) }
        guard got > 0 else { return [] }
        offset += Int64(got)
        atLineStart = buf[got - 1] == 10
        return Array(buf[0..<got])
    }

    /// One poll: new bytes (the end of the old file then the start of a new one after a
    /// switch) and the path switched to, if any.
    public func poll() -> (bytes: [UInt8], switchedTo: String?) {
        var out = drain()
        guard let now = resolve() else { return (out, nil) }
        var st = stat()
        guard stat(now, &st) == 0 else { return (out, nil) }  // between a rename and the new file
        guard now != path || UInt64(st.st_ino) != inode || fd < 0 else { return (out, nil) }
        // Another file: finish the old one, then start the new one.
        out += drain()
        if !atLineStart { out.append(10) }
        guard open(now, atEnd: false) else { return (out, nil) }
        out += drain()
        return (out, now)
    }
}
