import HappyCore
/// NaCl `crypto_secretbox` (XSalsa20-Poly1305) in libsodium's "easy" layout:
/// `tag(16) | ciphertext`. Key 32 bytes, nonce 24 bytes.
public enum SecretBox {
    public static let keyBytes = 32
    public static let nonceBytes = 24
    public static let tagBytes = 16

    /// Encrypts and authenticates. Traps on a wrong key or nonce length (a programming error).
    public static func seal(_ plain: [UInt8], nonce: [UInt8], key: [UInt8]) -> [UInt8] {
        seal(plain, nonce: nonce, key: key, polyThreshold: CryptoTuning.poly1305OpenSSLThreshold)
    }

    /// `polyThreshold`: messages of at least this many bytes use OpenSSL's Poly1305.
    static func seal(_ plain: [UInt8], nonce: [UInt8], key: [UInt8], polyThreshold: Int) -> [UInt8] {
        precondition(key.count == keyBytes, "SecretBox.seal: key must be 32 bytes")
        precondition(nonce.count == nonceBytes, "SecretBox.seal: nonce must be 24 bytes")
        let total = tagBytes + plain.count
        return [UInt8](unsafeUninitializedCapacity: total) { out, n in
            key.withUnsafeBytes { k in
                nonce.withUnsafeBytes { nb in
                    plain.withUnsafeBytes { p in
                        sealRaw(out: UnsafeMutableRawPointer(out.baseAddress!), plain: p.baseAddress, count: p.count,
                                nonce: nb.baseAddress!, key: k.baseAddress!, polyThreshold: polyThreshold)
                    }
                }
            }
            n = total
        }
    }

    /// Verifies (constant time) and decrypts; nil on a bad tag, short input or wrong sizes.
    public static func open(_ boxed: [UInt8], nonce: [UInt8], key: [UInt8]) -> [UInt8]? {
        open(boxed, nonce: nonce, key: key, polyThreshold: CryptoTuning.poly1305OpenSSLThreshold)
    }

    static func open(_ boxed: [UInt8], nonce: [UInt8], key: [UInt8], polyThreshold: Int) -> [UInt8]? {
        guard key.count == keyBytes, nonce.count == nonceBytes, boxed.count >= tagBytes else { return nil }
        let count = boxed.count - tagBytes
        var ok = false
        let plain = [UInt8](unsafeUninitializedCapacity: count) { out, n in
            ok = key.withUnsafeBytes { k in
                nonce.withUnsafeBytes { nb in
                    boxed.withUnsafeBytes { b in
                        openRaw(out: out.baseAddress.map(UnsafeMutableRawPointer.init), boxed: b.baseAddress!, count: count,
                                nonce: nb.baseAddress!, key: k.baseAddress!, polyThreshold: polyThreshold)
                    }
                }
            }
            n = ok ? count : 0
        }
        return ok ? plain : nil
    }

    // MARK: pointer-level core (no allocations)

    /// First keystream block: Poly1305 key in bytes 0..<32, stream for message bytes 0..<32 in 32..<64.
    @inline(__always)
    private static func setup(nonce: UnsafeRawPointer, key: UnsafeRawPointer,
                              block0: UnsafeMutableRawPointer) -> Salsa20State {
        var sub: (SIMD8<UInt32>) = .zero
        var input: (UInt64, UInt64) = (0, 0)
        let st: Salsa20State = withUnsafeMutableBytes(of: &sub) { s in
            Salsa20.hsalsa20(key: key, input: nonce, out: s.baseAddress!)
            return withUnsafeMutableBytes(of: &input) { ib in
                ib.baseAddress!.copyMemory(from: nonce + 16, byteCount: 8)
                var st = Salsa20State(key: s.baseAddress!, input: ib.baseAddress!)
                st.block(block0)
                st.counter = 1
                Wipe.raw(s.baseAddress!, 32)
                return st
            }
        }
        return st
    }

    /// `out` receives `tag | ciphertext` (16 + count bytes).
    static func sealRaw(out: UnsafeMutableRawPointer, plain: UnsafeRawPointer?, count: Int,
                        nonce: UnsafeRawPointer, key: UnsafeRawPointer, polyThreshold: Int) {
        var ks: (SIMD16<UInt32>) = .zero
        withUnsafeMutableBytes(of: &ks) { kb in
            let k0 = kb.baseAddress!
            var st = setup(nonce: nonce, key: key, block0: k0)
            let ct = out + tagBytes
            if let plain, count > 0 {
                let head = min(32, count)
                let c = ct.assumingMemoryBound(to: UInt8.self), p = plain.assumingMemoryBound(to: UInt8.self)
                let s = (k0 + 32).assumingMemoryBound(to: UInt8.self)
                for i in 0..<head { c[i] = p[i] ^ s[i] }
                if count > 32 { st.xorStream(ct + 32, plain + 32, count - 32) }
            }
            authenticate(ct, count, key: k0, out: out, polyThreshold: polyThreshold)
            st.wipe()
            Wipe.raw(k0, 64)
        }
    }

    /// Checks the tag over `boxed[16...]`, then decrypts into `out` (count bytes). False on mismatch.
    static func openRaw(out: UnsafeMutableRawPointer?, boxed: UnsafeRawPointer, count: Int,
                        nonce: UnsafeRawPointer, key: UnsafeRawPointer, polyThreshold: Int) -> Bool {
        var ks: (SIMD16<UInt32>) = .zero
        var tag: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &ks) { kb in
            withUnsafeMutableBytes(of: &tag) { tb in
                let k0 = kb.baseAddress!
                var st = setup(nonce: nonce, key: key, block0: k0)
                defer { st.wipe(); Wipe.raw(k0, 64) }
                let ct = boxed + tagBytes
                authenticate(ct, count, key: k0, out: tb.baseAddress!, polyThreshold: polyThreshold)
                guard ConstantTime.equal(tb.baseAddress!, boxed, tagBytes) else { return false }
                if let out, count > 0 {
                    let head = min(32, count)
                    let o = out.assumingMemoryBound(to: UInt8.self), c = ct.assumingMemoryBound(to: UInt8.self)
                    let s = (k0 + 32).assumingMemoryBound(to: UInt8.self)
                    for i in 0..<head { o[i] = c[i] ^ s[i] }
                    if count > 32 { st.xorStream(out + 32, ct + 32, count - 32) }
                }
                return true
            }
        }
    }

    /// Poly1305 over `count` bytes at `m` with the 32-byte one-time key.
    @inline(__always)
    static func authenticate(_ m: UnsafeRawPointer, _ count: Int, key: UnsafeRawPointer, out: UnsafeMutableRawPointer,
                             polyThreshold: Int) {
        if count >= polyThreshold,
           Poly1305.openSSLTag(m, count, key: key, out: out) {
            return
        }
        var p = Poly1305(key: key)
        p.update(m, count)
        p.finish(out)
    }
}
