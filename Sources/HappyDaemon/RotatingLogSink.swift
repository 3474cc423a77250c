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

/// The daemon's log: `logs/YYYY-MM-DD-HH-MM-SS-pid-PID-daemon.log` (0600), one line per
/// event in the `Log.formatLine` format. Rotates to a new name (the next free second
/// when the name is taken) when the file passes `maxBytes`; keeps at most `maxFiles`
/// `*-daemon.log` files in the folder (applied at open, counting the new file, and at
/// every rotation). Also writes to stderr when `alsoStderr`.
public final class RotatingLogSink: LogSink, @unchecked Sendable {
    public let directory: String
    public let maxBytes: Int
    public let maxFiles: Int
    private let pid: Int32
    private let alsoStderr: Bool
    private let lock = Lock()
    private var fd: Int32 = -1
    private var size = 0
    private var _path = ""
    private var onRotate: (@Sendable (String) -> Void)?
    /// Injected clock (tests).
    private let now: @Sendable () -> Date
    /// `write(2)` (injected by tests to simulate a full disk).
    private let writeFn: @Sendable (Int32, UnsafeRawPointer, Int) -> Int
    /// Bytes that could not be written (full disk, I/O error) since the last report.
    private var unwritten = 0

    public init(directory: String, maxBytes: Int, maxFiles: Int, pid: Int32 = getpid(), alsoStderr: Bool = false,
                now: @escaping @Sendable () -> Date = { Date() },
                write: @escaping @Sendable (Int32, UnsafeRawPointer, Int) -> Int = { Glibc.write($0, $1, $2) }) throws {
        self.directory = directory
        self.maxBytes = max(1024, maxBytes)
        self.maxFiles = max(1, maxFiles)
        self.pid = pid
        self.alsoStderr = alsoStderr
        self.now = now
        self.writeFn = write
        try FileIO.ensureDirectory(directory)
        try openNewFile()
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public var path: String { lock.lock(); defer { lock.unlock() }; return _path }

    /// Called (outside the sink's lock) with the new path after each rotation.
    public func setOnRotate(_ f: (@Sendable (String) -> Void)?) { lock.lock(); onRotate = f; lock.unlock() }

    public static func fileName(date: Date, pid: Int32) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tmv = tm()
        localtime_r(&t, &tmv)
        func p(_ v: Int32, _ w: Int = 2) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(p(tmv.tm_year + 1900, 4))-\(p(tmv.tm_mon + 1))-\(p(tmv.tm_mday))-\(p(tmv.tm_hour))-\(p(tmv.tm_min))-\(p(tmv.tm_sec))-pid-\(pid)-daemon.log"
    }

    /// `*-daemon.log` files in `directory`, newest first (modification time, then name).
    public static func logFiles(in directory: String) -> [(path: String, size: Int64, mtimeMs: Int64)] {
        var out: [(String, Int64, Int64)] = []
        for name in FileManagerShim.listDirectory(directory) where name.hasSuffix("-daemon.log") {
            let p = directory + "/" + name
            var st = stat()
            guard lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let ms = Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
            out.append((p, Int64(st.st_size), ms))
        }
        out.sort { $0.2 != $1.2 ? $0.2 > $1.2 : $0.0 > $1.0 }
        return out.map { (path: $0.0, size: $0.1, mtimeMs: $0.2) }
    }

    private func openNewFile() throws {
        var date = now()
        var name = Self.fileName(date: date, pid: pid)
        var tries = 0
        var p = directory + "/" + name
        var nfd: Int32 = -1
        while true {
            // A new file every time: O_EXCL never opens an existing file or follows a
            // planted symbolic link (EEXIST → the next second's name).
            if p != _path && !FileIO.exists(p) {
                nfd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
                if nfd >= 0 { break }
                if errno != EEXIST { throw FileIOError.cannotWrite(path: p, reason: errnoString()) }
            }
            tries += 1
            if tries > 100_000 { throw FileIOError.cannotWrite(path: p, reason: "no free log file name") }
            date = date.addingTimeInterval(1)
            name = Self.fileName(date: date, pid: pid)
            p = directory + "/" + name
        }
        _ = fchmod(nfd, 0o600)
        if fd >= 0 { Glibc.close(fd) }
        fd = nfd
        size = 0
        _path = p
        applyRetention()
    }

    private func applyRetention() {
        var keptOthers = 0
        for f in Self.logFiles(in: directory) where f.path != _path {
            if keptOthers < maxFiles - 1 { keptOthers += 1 } else { unlink(f.path) }
        }
    }

    public func write(level: LogLevel, component: String, message: String) {
        // One line per event: never let a message break the line format.
        var msg = message
        if msg.contains(where: { $0 == "\n" || $0 == "\r" }) {
            msg = msg.replacing("\r\n", with: " ⏎ ").replacing("\n", with: " ⏎ ")
                .replacing("\r", with: " ")
        }
        let line = Log.formatLine(date: now(), level: level, component: component, message: msg) + "\n"
        let bytes = Array(line.utf8)
        var rotated: String?
        var cb: (@Sendable (String) -> Void)?
        lock.lock()
        if fd >= 0 {
            if unwritten > 0 {
                // Say once, when writing works again, how much was lost meanwhile.
                let note = Array((Log.formatLine(date: now(), level: .warn, component: "log",
                                                 message: "\(unwritten) bytes of log lines were lost (disk full or write error)") + "\n").utf8)
                let w = writeAll(fd, note, using: writeFn)
                size += w
                if w == note.count { unwritten = 0 }
            }
            // Only what reached the file counts towards the rotation size: on a full disk
            // nothing is written, so nothing rotates and no older log is deleted for it.
            let written = writeAll(fd, bytes, using: writeFn)
            size += written
            unwritten += bytes.count - written
            if size >= maxBytes {
                if (try? openNewFile()) != nil { rotated = _path; cb = onRotate }
            }
        }
        lock.unlock()
        if alsoStderr { _ = writeAll(2, bytes, using: { Glibc.write($0, $1, $2) }) }
        if let rotated, let cb { cb(rotated) }
    }

    /// Bytes lost so far to failed writes (tests, diagnostics).
    var lostBytes: Int { lock.lock(); defer { lock.unlock() }; return unwritten }

    /// Writes as much as it can; returns the number of bytes written.
    private func writeAll(_ fd: Int32, _ bytes: [UInt8], using write: (Int32, UnsafeRawPointer, Int) -> Int) -> Int {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            off += n
        }
        return off
    }

    public func close() {
        lock.lock(); defer { lock.unlock() }
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}
