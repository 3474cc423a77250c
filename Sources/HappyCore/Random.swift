#if canImport(Glibc)
import Glibc
#endif

/// Constant-time comparison (time depends only on the lengths): MAC tags, the control
/// API's bearer token.
public enum ConstantTime {
    public static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
        var diff: UInt8 = 0
        let x = a.assumingMemoryBound(to: UInt8.self), y = b.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in equal(x.baseAddress!, y.baseAddress!, a.count) } }
    }

    /// Strings compared by their UTF-8 bytes; a length difference is not leaked early.
    public static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }
}

/// Cryptographically secure random bytes: the one source for keys, nonces, tokens and
/// WebSocket masks. `SystemRandomNumberGenerator` reads the kernel's CSPRNG (getrandom).
public enum SecureRandom {
    public static func bytes(_ n: Int) -> [UInt8] {
        guard n > 0 else { return [] }
        var g = SystemRandomNumberGenerator()
        var out = [UInt8](repeating: 0, count: n)
        var i = 0
        while i < n {
            var word = g.next()
            for _ in 0..<8 where i < n {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }
}
