import HappyCore
#if canImport(Glibc)
import Glibc
#endif

/// The size cap of a session's output files (SPEC §4.5): when `stdout.jsonl` passes
/// `sessions.maxOutputMiB`, its content moves to `stdout.1.jsonl` (replacing an older one)
/// and it restarts empty with a marker line. The cap holds even when the copy is
/// impossible (a full disk): the content is then dropped, counted, and said once.
enum OutputFiles {
    enum Rotation: Equatable {
        /// `bytes` left `path`; `kept` when they are in `dest`, not when they were dropped.
        case rotated(bytes: Int64, kept: Bool)
        /// Nothing was done (the file could not be opened).
        case failed
    }

    /// The first line of a restarted output file.
    static func marker(droppedBytes: Int64) -> String {
        "{\"type\":\"happy\",\"subtype\":\"output-rotated\",\"droppedBytes\":\(droppedBytes)}\n"
    }

    /// Copies `path` to `dest` (atomically replacing it), truncates `path` to 0 and appends
    /// the marker. Bytes beyond `readOffset` that were not parsed yet are handed to `unread`
    /// (whether or not the copy succeeds). When the copy fails, the truncation still
    /// happens: the cap wins over keeping the bytes.
    static func rotate(path: String, to dest: String, readOffset: Int64?,
                       unread: (UnsafeRawBufferPointer) -> Void = { _ in }) -> Rotation {
        let src = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard src >= 0 else { return .failed }
        defer { close(src) }
        // Opened before the copy, so the marker follows the truncation with no other call between.
        let app = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        defer { if app >= 0 { close(app) } }
        let tmp = dest + ".tmp-\(getpid())"
        var out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        var copyFailed = out < 0
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var pos: Int64 = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(src, $0.baseAddress, $0.count, off_t(pos)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if !copyFailed {
                var w = 0
                while w < n {
                    let k = buf.withUnsafeBytes { write(out, $0.baseAddress! + w, n - w) }
                    if k < 0 { if errno == EINTR { continue }; copyFailed = true; break }
                    w += k
                }
            }
            if let ro = readOffset, pos + Int64(n) > ro {
                let from = Int(Swift.max(0, ro - pos))
                buf.withUnsafeBytes { unread(UnsafeRawBufferPointer(rebasing: $0[from..<n])) }
            }
            pos += Int64(n)
        }
        // Truncate right after reaching the end and write the marker at once: the windows
        // for a lost line (before) and a line ahead of the marker (after) stay tiny.
        _ = ftruncate(src, 0)
        if app >= 0 { _ = ProcessLauncher.writeAll(app, Array(marker(droppedBytes: pos).utf8), timeoutMs: 1000) }
        if out >= 0 {
            if !copyFailed && fsync(out) != 0 { copyFailed = true }
            close(out)
            out = -1
        }
        if copyFailed {
            unlink(tmp)
            return .rotated(bytes: pos, kept: false)
        }
        _ = chmod(tmp, 0o600)
        if rename(tmp, dest) != 0 {
            unlink(tmp)
            return .rotated(bytes: pos, kept: false)
        }
        return .rotated(bytes: pos, kept: true)
    }
}
