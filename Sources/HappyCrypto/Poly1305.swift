import Synchronization
import COpenSSL
import HappyCore

/// Poly1305 one-time authenticator (RFC 8439), 44-bit-limb ("donna-64") Swift code.
///
/// Chosen over OpenSSL's EVP_MAC "POLY1305" by measurement (see Benchmarks/crypto.md):
/// both are kept, `Poly1305.openSSLTag` exists for the benchmark and the
/// cross-check test.
struct Poly1305 {
    private var r0: UInt64, r1: UInt64, r2: UInt64
    private var s1: UInt64, s2: UInt64
    private var h0: UInt64 = 0, h1: UInt64 = 0, h2: UInt64 = 0
    private var pad0: UInt64, pad1: UInt64

    private static let mask44: UInt64 = 0xfff_ffff_ffff
    private static let mask42: UInt64 = 0x3ff_ffff_ffff

    @inline(__always) private static func le64(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
    }

    /// `key`: 32 bytes.
    init(key: UnsafeRawPointer) {
        let t0 = Self.le64(key, 0), t1 = Self.le64(key, 8)
        r0 = t0 & 0xffc_0fff_ffff
        r1 = ((t0 >> 44) | (t1 << 20)) & 0xfff_ffc0_ffff
        r2 = (t1 >> 24) & 0x00f_ffff_fc0f
        s1 = r1 &* (5 << 2)
        s2 = r2 &* (5 << 2)
        pad0 = Self.le64(key, 16)
        pad1 = Self.le64(key, 24)
    }

    @inline(__always) private static func mulAdd(_ acc: inout (hi: UInt64, lo: UInt64), _ a: UInt64, _ b: UInt64) {
        let p = a.multipliedFullWidth(by: b)
        let (lo, o) = acc.lo.addingReportingOverflow(p.low)
        acc.lo = lo
        acc.hi = acc.hi &+ p.high &+ (o ? 1 : 0)
    }

    /// Processes whole 16-byte blocks; `hibit` is 1<<40 for full blocks, 0 for the padded final one.
    @inline(__always)
    private mutating func blocks(_ m: UnsafeRawPointer, _ count: Int, hibit: UInt64) {
        var h0 = self.h0, h1 = self.h1, h2 = self.h2
        let r0 = self.r0, r1 = self.r1, r2 = self.r2, s1 = self.s1, s2 = self.s2
        var off = 0
        while off + 16 <= count {
            let t0 = Self.le64(m, off), t1 = Self.le64(m, off + 8)
            h0 &+= t0 & Self.mask44
            h1 &+= ((t0 >> 44) | (t1 << 20)) & Self.mask44
            h2 &+= ((t1 >> 24) & Self.mask42) | hibit

            var d0: (hi: UInt64, lo: UInt64) = (0, 0)
            var d1: (hi: UInt64, lo: UInt64) = (0, 0)
            var d2: (hi: UInt64, lo: UInt64) = (0, 0)
            Self.mulAdd(&d0, h0, r0); Self.mulAdd(&d0, h1, s2); Self.mulAdd(&d0, h2, s1)
            Self.mulAdd(&d1, h0, r1); Self.mulAdd(&d1, h1, r0); Self.mulAdd(&d1, h2, s2)
            Self.mulAdd(&d2, h0, r2); Self.mulAdd(&d2, h1, r1); Self.mulAdd(&d2, h2, r0)

            var c = (d0.lo >> 44) | (d0.hi << 20); h0 = d0.lo & Self.mask44
            Self.addSmall(&d1, c)
            c = (d1.lo >> 44) | (d1.hi << 20); h1 = d1.lo & Self.mask44
            Self.addSmall(&d2, c)
            c = (d2.lo >> 42) | (d2.hi << 22); h2 = d2.lo & Self.mask42
            h0 &+= c &* 5; c = h0 >> 44; h0 &= Self.mask44
            h1 &+= c
            off += 16
        }
        self.h0 = h0; self.h1 = h1; self.h2 = h2
    }

    @inline(__always) private static func addSmall(_ acc: inout (hi: UInt64, lo: UInt64), _ v: UInt64) {
        let (lo, o) = acc.lo.addingReportingOverflow(v)
        acc.lo = lo
        acc.hi = acc.hi &+ (o ? 1 : 0)
    }

    /// Authenticates the whole message in one call (the only way secretbox needs it).
    mutating func update(_ m: UnsafeRawPointer, _ count: Int) {
        let full = count & ~15
        blocks(m, full, hibit: 1 << 40)
        let rest = count - full
        if rest > 0 {
            var last: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &last) { lb in
                lb.baseAddress!.copyMemory(from: m + full, byteCount: rest)
                lb[rest] = 1
                blocks(lb.baseAddress!, 16, hibit: 0)
            }
        }
    }

    /// Writes the 16-byte tag and wipes the state.
    mutating func finish(_ out: UnsafeMutableRawPointer) {
        var h0 = self.h0, h1 = self.h1, h2 = self.h2
        var c = h1 >> 44; h1 &= Self.mask44
        h2 &+= c; c = h2 >> 42; h2 &= Self.mask42
        h0 &+= c &* 5; c = h0 >> 44; h0 &= Self.mask44
        h1 &+= c; c = h1 >> 44; h1 &= Self.mask44
        h2 &+= c; c = h2 >> 42; h2 &= Self.mask42
        h0 &+= c &* 5; c = h0 >> 44; h0 &= Self.mask44
        h1 &+= c

        var g0 = h0 &+ 5; c = g0 >> 44; g0 &= Self.mask44
        var g1 = h1 &+ c; c = g1 >> 44; g1 &= Self.mask44
        var g2 = h2 &+ c &- (1 << 42)

        c = (g2 >> 63) &- 1   // all ones when h >= p (no borrow)
        g0 &= c; g1 &= c; g2 &= c
        c = ~c
        h0 = (h0 & c) | g0; h1 = (h1 & c) | g1; h2 = (h2 & c) | g2

        let t0 = pad0, t1 = pad1
        h0 &+= t0 & Self.mask44; c = h0 >> 44; h0 &= Self.mask44
        h1 &+= (((t0 >> 44) | (t1 << 20)) & Self.mask44) &+ c; c = h1 >> 44; h1 &= Self.mask44
        h2 &+= (((t1 >> 24)) & Self.mask42) &+ c; h2 &= Self.mask42

        let o0 = h0 | (h1 << 44)
        let o1 = (h1 >> 20) | (h2 << 24)
        out.storeBytes(of: o0.littleEndian, toByteOffset: 0, as: UInt64.self)
        out.storeBytes(of: o1.littleEndian, toByteOffset: 8, as: UInt64.self)
        wipe()
    }

    mutating func wipe() {
        r0 = 0; r1 = 0; r2 = 0; s1 = 0; s2 = 0; h0 = 0; h1 = 0; h2 = 0; pad0 = 0; pad1 = 0
    }

    /// One-shot tag with the Swift implementation.
    static func tag(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        precondition(key.count == 32)
        return [UInt8](unsafeUninitializedCapacity: 16) { buf, n in
            key.withUnsafeBytes { k in
                var p = Poly1305(key: k.baseAddress!)
                message.withUnsafeBytes { m in
                    if let b = m.baseAddress { p.update(b, m.count) }
                }
                p.finish(UnsafeMutableRawPointer(buf.baseAddress!))
            }
            n = 16
        }
    }

    // MARK: OpenSSL EVP_MAC "POLY1305" (kept for measurement and cross-checking)

    nonisolated(unsafe) private static let evpMac: OpaquePointer? = EVP_MAC_fetch(nil, "POLY1305", nil)

    /// Tag through OpenSSL into `out` (16 bytes). Returns false if OpenSSL fails.
    static func openSSLTag(_ m: UnsafeRawPointer?, _ count: Int, key: UnsafeRawPointer, out: UnsafeMutableRawPointer) -> Bool {
        guard let mac = evpMac, let ctx = EVP_MAC_CTX_new(mac) else { return false }
        defer { EVP_MAC_CTX_free(ctx) }
        guard EVP_MAC_init(ctx, key.assumingMemoryBound(to: UInt8.self), 32, nil) == 1 else { return false }
        if count > 0, let m {
            guard EVP_MAC_update(ctx, m.assumingMemoryBound(to: UInt8.self), count) == 1 else { return false }
        }
        var outLen = 0
        return EVP_MAC_final(ctx, out.assumingMemoryBound(to: UInt8.self), &outLen, 16) == 1 && outLen == 16
    }

    static func openSSLTag(_ message: [UInt8], key: [UInt8]) -> [UInt8]? {
        precondition(key.count == 32)
        var out = [UInt8](repeating: 0, count: 16)
        let ok = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                out.withUnsafeMutableBytes { o in
                    openSSLTag(m.baseAddress, m.count, key: k.baseAddress!, out: o.baseAddress!)
                }
            }
        }
        return ok ? out : nil
    }
}

/// Implementation choices made by measurement (Benchmarks/crypto.md). Changing them
/// never changes any output, only which code computes it; the benchmark and the tests
/// sets them to compare both paths (the tests pass thresholds explicitly instead).
public enum CryptoTuning {
    /// Poly1305 over messages of at least this many bytes goes to OpenSSL's EVP_MAC.
    /// Stored in an atomic: tests change it while other tests seal/open in parallel
    /// (ThreadSanitizer reported the plain `nonisolated(unsafe) var` as a data race).
    public static var poly1305OpenSSLThreshold: Int {
        get { threshold.load(ordering: .relaxed) }
        set { threshold.store(newValue, ordering: .relaxed) }
    }
    private static let threshold = Atomic<Int>(512)
}
