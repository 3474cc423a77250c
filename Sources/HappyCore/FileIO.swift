import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

public enum FileIOError: HappyError, Equatable {
    case cannotWrite(path: String, reason: String)
    case cannotRead(path: String, reason: String)
    case cannotCreateDirectory(path: String, reason: String)
    case notADirectory(path: String)
    case corrupt(path: String, reason: String)
    /// A file of ours that is a symbolic link (opened with O_NOFOLLOW: never followed).
    case symbolicLink(path: String)

    public var what: String {
        switch self {
        case .cannotWrite(let p, let r): return "cannot write \(p): \(r)"
        case .cannotRead(let p, let r): return "cannot read \(p): \(r)"
        case .cannotCreateDirectory(let p, let r): return "cannot create directory \(p): \(r)"
        case .notADirectory(let p): return "\(p) exists but is not a directory"
        case .corrupt(let p, let r): return "\(p) cannot be parsed (\(r))"
        case .symbolicLink(let p): return "\(p) is a symbolic link; refusing to follow it"
        }
    }
    public var hint: String? {
        switch self {
        case .cannotWrite, .cannotCreateDirectory: return "check the permissions of the folder and free disk space"
        case .cannotRead: return "check that the file exists and is readable"
        case .notADirectory: return "point HAPPY_HOME_DIR / --home-dir at a folder"
        case .corrupt: return "fix or move the file aside; it was left untouched"
        case .symbolicLink: return "replace the link with a regular file (or remove it), and check who can write to the folder"
        }
    }
}

public func errnoString(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

/// Small, dependency-free file helpers. Every JSON/state write goes through
/// `atomicWrite`: temp file in the same folder, fsync, rename, then fsync of the folder.
public enum FileIO {
    /// Writes `bytes` to `path` atomically with `mode` (default 0600).
    public static func atomicWrite(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws {
        let dir = Paths.dirname(path)
        let base = Paths.basename(path)
        var rnd = UInt64.random(in: 0...UInt64.max)
        let tmp = "\(dir.isEmpty ? "." : dir)/.\(base).tmp-\(getpid())-\(String(rnd, radix: 36))"
        rnd = 0
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        if fd < 0 { throw FileIOError.cannotWrite(path: path, reason: errnoString()) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        _ = fchmod(fd, mode)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                write(fd, raw.baseAddress! + off, bytes.count - off)
            }
            if n < 0 {
                if errno == EINTR { continue }
                let r = errnoString()
                close(fd)
                throw FileIOError.cannotWrite(path: path, reason: r)
            }
            off += n
        }
        if fsync(fd) != 0 {
            let r = errnoString()
            close(fd)
            throw FileIOError.cannotWrite(path: path, reason: r)
        }
        close(fd)
        if rename(tmp, path) != 0 { throw FileIOError.cannotWrite(path: path, reason: errnoString()) }
        ok = true
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    public static func atomicWrite(_ string: String, to path: String, mode: mode_t = 0o600) throws {
        try atomicWrite(Array(string.utf8), to: path, mode: mode)
    }

    /// Pretty JSON (2-space indent) + newline, atomically.
    public static func writeJSON(_ value: JSON, to path: String, mode: mode_t = 0o600) throws {
        try atomicWrite(value.serialized(pretty: true) + "\n", to: path, mode: mode)
    }

    /// Reads a whole file; nil when it does not exist. `noFollow` refuses symlinks.
    public static func read(_ path: String, noFollow: Bool = false, limit: Int = 64 << 20) throws -> [UInt8]? {
        var flags = O_RDONLY | O_CLOEXEC
        if noFollow { flags |= O_NOFOLLOW }
        let fd = open(path, flags)
        if fd < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP && noFollow { throw FileIOError.symbolicLink(path: path) }
            throw FileIOError.cannotRead(path: path, reason: errnoString())
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            throw FileIOError.cannotRead(path: path, reason: "is a directory")
        }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError.cannotRead(path: path, reason: errnoString())
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw FileIOError.cannotRead(path: path, reason: "file too large") }
        }
        return out
    }

    /// Reads and parses a JSON file. nil when missing; `.corrupt` when unparsable.
    public static func readJSON(_ path: String, noFollow: Bool = false) throws -> JSON? {
        guard let bytes = try read(path, noFollow: noFollow) else { return nil }
        do {
            return try JSON.parse(bytes)
        } catch let e as JSONParseError {
            throw FileIOError.corrupt(path: path, reason: e.description)
        }
    }

    /// Moves a file that cannot be parsed aside to `NAME.corrupt-TIMESTAMP`; returns the new path.
    @discardableResult
    public static func moveAside(_ path: String) -> String? {
        let stamp = Int(Date().timeIntervalSince1970 * 1000)
        let dest = "\(path).corrupt-\(stamp)"
        return rename(path, dest) == 0 ? dest : nil
    }

    /// Creates `path` (and parents) as a directory with `mode`; tightens the mode of an
    /// existing folder that is wider. Returns true when the mode had to be tightened.
    @discardableResult
    public static func ensureDirectory(_ path: String, mode: mode_t = 0o700) throws -> Bool {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw FileIOError.notADirectory(path: path) }
            if (st.st_mode & 0o777) & ~mode != 0 {
                if chmod(path, mode) != 0 {
                    throw FileIOError.cannotCreateDirectory(path: path, reason: errnoString())
                }
                return true
            }
            return false
        }
        let parent = Paths.dirname(path)
        if !parent.isEmpty && parent != path && parent != "/" {
            var pst = stat()
            if stat(parent, &pst) != 0 { try ensureDirectory(parent, mode: 0o755 & ~0o022 | mode) }
        }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw FileIOError.cannotCreateDirectory(path: path, reason: errnoString())
        }
        _ = chmod(path, mode)
        return false
    }

    /// `mkdir -p` with mode 0777 minus the umask (a user's project folder, not ours).
    public static func createDirectories(_ path: String) throws {
        if isDirectory(path) { return }
        let parent = Paths.dirname(path)
        if !parent.isEmpty && parent != path && !isDirectory(parent) { try createDirectories(parent) }
        if mkdir(path, 0o777) != 0 && !(errno == EEXIST && isDirectory(path)) {
            throw FileIOError.cannotCreateDirectory(path: path, reason: errnoString())
        }
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Permission bits of a path, or nil.
    public static func mode(_ path: String) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }
}
