import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Splits fuzz input into pieces (to exercise incremental parsers): the first byte
/// seeds the piece sizes (1...64 bytes), the rest is the payload.
func fuzzPieces(_ data: [UInt8]) -> [ArraySlice<UInt8>] {
    guard let seed = data.first else { return [] }
    let body = data[1...]
    var out: [ArraySlice<UInt8>] = []
    var i = body.startIndex
    var s = UInt32(seed) | 1
    while i < body.endIndex {
        s = s &* 1_103_515_245 &+ 12345
        let n = seed < 16 ? body.count : Int((s >> 16) % 64) + 1  // small seeds: one piece
        let e = min(body.endIndex, i + n)
        out.append(body[i..<e])
        i = e
    }
    return out
}

/// A scratch folder in /dev/shm (tmpfs) for the file-reader targets.
let fuzzScratch: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
    let dir = base + "/happy-fuzz-\(getpid())"
    mkdir(dir, 0o700)
    atexit { _ = try? FileManager.default.removeItem(atPath: "/dev/shm/happy-fuzz-\(getpid())") }
    return dir
}()

/// Writes bytes to `path` (plain write, no fsync: speed matters here).
func fuzzWriteFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { break }
        off += n
    }
    close(fd)
}

/// Keeps a value alive and observed (for results a target has no other use for).
@inline(never) func fuzzSink<T>(_ value: T) { withExtendedLifetime(value) {} }
