import HappyCore
// Salsa20 / HSalsa20 / XSalsa20 (D. J. Bernstein), byte-compatible with libsodium.
//
// Bulk keystream uses four blocks in parallel (one SIMD4 lane per block, the same
// shape as libsodium's SSE2 code); the tail and HSalsa20 use the scalar core.
// No allocations on the hot path: everything works on caller-provided pointers.

@inline(__always) private func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 {
    (x &<< n) | (x &>> (32 &- n))
}

/// Vector rotate. Written with `&+` (the two halves never overlap): with `|` LLVM
/// recognises a rotate, finds no SSE2 vector rotate and scalarises all four lanes.
@inline(__always) private func rotl(_ x: SIMD4<UInt32>, _ n: UInt32) -> SIMD4<UInt32> {
    (x &<< SIMD4(repeating: n)) &+ (x &>> SIMD4(repeating: 32 &- n))
}

@inline(__always) private func le32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

@inline(__always) private func store32(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt32) {
    p.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
}

/// The 16-word Salsa20 input block.
struct Salsa20State {
    var j0, j1, j2, j3, j4, j5, j6, j7, j8, j9, j10, j11, j12, j13, j14, j15: UInt32

    /// `key` 32 bytes, `input` 16 bytes (nonce(8) | counter(8) for Salsa20, or the
    /// 16-byte HSalsa20 input).
    @inline(__always)
    init(key: UnsafeRawPointer, input: UnsafeRawPointer) {
        j0 = 0x6170_7865; j5 = 0x3320_646e; j10 = 0x7962_2d32; j15 = 0x6b20_6574
        j1 = le32(key, 0); j2 = le32(key, 4); j3 = le32(key, 8); j4 = le32(key, 12)
        j11 = le32(key, 16); j12 = le32(key, 20); j13 = le32(key, 24); j14 = le32(key, 28)
        j6 = le32(input, 0); j7 = le32(input, 4); j8 = le32(input, 8); j9 = le32(input, 12)
    }

    var counter: UInt64 {
        get { UInt64(j8) | (UInt64(j9) << 32) }
        set { j8 = UInt32(truncatingIfNeeded: newValue); j9 = UInt32(truncatingIfNeeded: newValue >> 32) }
    }

    mutating func wipe() {
        j0 = 0; j1 = 0; j2 = 0; j3 = 0; j4 = 0; j5 = 0; j6 = 0; j7 = 0
        j8 = 0; j9 = 0; j10 = 0; j11 = 0; j12 = 0; j13 = 0; j14 = 0; j15 = 0
    }

    /// 20 rounds. `feedForward` adds the input (Salsa20); HSalsa20 does not.
    /// Writes 64 bytes (Salsa20) to `out`.
    @inline(__always)
    func block(_ out: UnsafeMutableRawPointer) {
        var x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7
        var x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14, x15 = j15
        for _ in 0..<10 {
            x4 ^= rotl(x0 &+ x12, 7); x8 ^= rotl(x4 &+ x0, 9); x12 ^= rotl(x8 &+ x4, 13); x0 ^= rotl(x12 &+ x8, 18)
            x9 ^= rotl(x5 &+ x1, 7); x13 ^= rotl(x9 &+ x5, 9); x1 ^= rotl(x13 &+ x9, 13); x5 ^= rotl(x1 &+ x13, 18)
            x14 ^= rotl(x10 &+ x6, 7); x2 ^= rotl(x14 &+ x10, 9); x6 ^= rotl(x2 &+ x14, 13); x10 ^= rotl(x6 &+ x2, 18)
            x3 ^= rotl(x15 &+ x11, 7); x7 ^= rotl(x3 &+ x15, 9); x11 ^= rotl(x7 &+ x3, 13); x15 ^= rotl(x11 &+ x7, 18)
            x1 ^= rotl(x0 &+ x3, 7); x2 ^= rotl(x1 &+ x0, 9); x3 ^= rotl(x2 &+ x1, 13); x0 ^= rotl(x3 &+ x2, 18)
            x6 ^= rotl(x5 &+ x4, 7); x7 ^= rotl(x6 &+ x5, 9); x4 ^= rotl(x7 &+ x6, 13); x5 ^= rotl(x4 &+ x7, 18)
            x11 ^= rotl(x10 &+ x9, 7); x8 ^= rotl(x11 &+ x10, 9); x9 ^= rotl(x8 &+ x11, 13); x10 ^= rotl(x9 &+ x8, 18)
            x12 ^= rotl(x15 &+ x14, 7); x13 ^= rotl(x12 &+ x15, 9); x14 ^= rotl(x13 &+ x12, 13); x15 ^= rotl(x14 &+ x13, 18)
        }
        store32(out, 0, x0 &+ j0); store32(out, 4, x1 &+ j1); store32(out, 8, x2 &+ j2); store32(out, 12, x3 &+ j3)
        store32(out, 16, x4 &+ j4); store32(out, 20, x5 &+ j5); store32(out, 24, x6 &+ j6); store32(out, 28, x7 &+ j7)
        store32(out, 32, x8 &+ j8); store32(out, 36, x9 &+ j9); store32(out, 40, x10 &+ j10); store32(out, 44, x11 &+ j11)
        store32(out, 48, x12 &+ j12); store32(out, 52, x13 &+ j13); store32(out, 56, x14 &+ j14); store32(out, 60, x15 &+ j15)
    }

    /// HSalsa20 output (32 bytes): words 0,5,10,15,6,7,8,9 after 20 rounds, no feed-forward.
    func hsalsa(_ out: UnsafeMutableRawPointer) {
        var x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7
        var x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14, x15 = j15
        for _ in 0..<10 {
            x4 ^= rotl(x0 &+ x12, 7); x8 ^= rotl(x4 &+ x0, 9); x12 ^= rotl(x8 &+ x4, 13); x0 ^= rotl(x12 &+ x8, 18)
            x9 ^= rotl(x5 &+ x1, 7); x13 ^= rotl(x9 &+ x5, 9); x1 ^= rotl(x13 &+ x9, 13); x5 ^= rotl(x1 &+ x13, 18)
            x14 ^= rotl(x10 &+ x6, 7); x2 ^= rotl(x14 &+ x10, 9); x6 ^= rotl(x2 &+ x14, 13); x10 ^= rotl(x6 &+ x2, 18)
            x3 ^= rotl(x15 &+ x11, 7); x7 ^= rotl(x3 &+ x15, 9); x11 ^= rotl(x7 &+ x3, 13); x15 ^= rotl(x11 &+ x7, 18)
            x1 ^= rotl(x0 &+ x3, 7); x2 ^= rotl(x1 &+ x0, 9); x3 ^= rotl(x2 &+ x1, 13); x0 ^= rotl(x3 &+ x2, 18)
            x6 ^= rotl(x5 &+ x4, 7); x7 ^= rotl(x6 &+ x5, 9); x4 ^= rotl(x7 &+ x6, 13); x5 ^= rotl(x4 &+ x7, 18)
            x11 ^= rotl(x10 &+ x9, 7); x8 ^= rotl(x11 &+ x10, 9); x9 ^= rotl(x8 &+ x11, 13); x10 ^= rotl(x9 &+ x8, 18)
            x12 ^= rotl(x15 &+ x14, 7); x13 ^= rotl(x12 &+ x15, 9); x14 ^= rotl(x13 &+ x12, 13); x15 ^= rotl(x14 &+ x13, 18)
        }
        store32(out, 0, x0); store32(out, 4, x5); store32(out, 8, x10); store32(out, 12, x15)
        store32(out, 16, x6); store32(out, 20, x7); store32(out, 24, x8); store32(out, 28, x9)
    }

    /// Four consecutive blocks (counter, counter+1, +2, +3) XORed into `out` from `inp`
    /// (256 bytes each). Does not advance the counter.
    @inline(__always)
    func xor4Blocks(_ out: UnsafeMutableRawPointer, _ inp: UnsafeRawPointer) {
        typealias V = SIMD4<UInt32>
        let c = counter
        let c0 = c, c1 = c &+ 1, c2 = c &+ 2, c3 = c &+ 3
        let i0 = V(repeating: j0), i1 = V(repeating: j1), i2 = V(repeating: j2), i3 = V(repeating: j3)
        let i4 = V(repeating: j4), i5 = V(repeating: j5), i6 = V(repeating: j6), i7 = V(repeating: j7)
        let i8 = V(UInt32(truncatingIfNeeded: c0), UInt32(truncatingIfNeeded: c1),
                   UInt32(truncatingIfNeeded: c2), UInt32(truncatingIfNeeded: c3))
        let i9 = V(UInt32(truncatingIfNeeded: c0 >> 32), UInt32(truncatingIfNeeded: c1 >> 32),
                   UInt32(truncatingIfNeeded: c2 >> 32), UInt32(truncatingIfNeeded: c3 >> 32))
        let i10 = V(repeating: j10), i11 = V(repeating: j11), i12 = V(repeating: j12)
        let i13 = V(repeating: j13), i14 = V(repeating: j14), i15 = V(repeating: j15)
        var x0 = i0, x1 = i1, x2 = i2, x3 = i3, x4 = i4, x5 = i5, x6 = i6, x7 = i7
        var x8 = i8, x9 = i9, x10 = i10, x11 = i11, x12 = i12, x13 = i13, x14 = i14, x15 = i15
        for _ in 0..<10 {
            x4 ^= rotl(x0 &+ x12, 7); x8 ^= rotl(x4 &+ x0, 9); x12 ^= rotl(x8 &+ x4, 13); x0 ^= rotl(x12 &+ x8, 18)
            x9 ^= rotl(x5 &+ x1, 7); x13 ^= rotl(x9 &+ x5, 9); x1 ^= rotl(x13 &+ x9, 13); x5 ^= rotl(x1 &+ x13, 18)
            x14 ^= rotl(x10 &+ x6, 7); x2 ^= rotl(x14 &+ x10, 9); x6 ^= rotl(x2 &+ x14, 13); x10 ^= rotl(x6 &+ x2, 18)
            x3 ^= rotl(x15 &+ x11, 7); x7 ^= rotl(x3 &+ x15, 9); x11 ^= rotl(x7 &+ x3, 13); x15 ^= rotl(x11 &+ x7, 18)
            x1 ^= rotl(x0 &+ x3, 7); x2 ^= rotl(x1 &+ x0, 9); x3 ^= rotl(x2 &+ x1, 13); x0 ^= rotl(x3 &+ x2, 18)
            x6 ^= rotl(x5 &+ x4, 7); x7 ^= rotl(x6 &+ x5, 9); x4 ^= rotl(x7 &+ x6, 13); x5 ^= rotl(x4 &+ x7, 18)
            x11 ^= rotl(x10 &+ x9, 7); x8 ^= rotl(x11 &+ x10, 9); x9 ^= rotl(x8 &+ x11, 13); x10 ^= rotl(x9 &+ x8, 18)
            x12 ^= rotl(x15 &+ x14, 7); x13 ^= rotl(x12 &+ x15, 9); x14 ^= rotl(x13 &+ x12, 13); x15 ^= rotl(x14 &+ x13, 18)
        }
        x0 &+= i0; x1 &+= i1; x2 &+= i2; x3 &+= i3; x4 &+= i4; x5 &+= i5; x6 &+= i6; x7 &+= i7
        x8 &+= i8; x9 &+= i9; x10 &+= i10; x11 &+= i11; x12 &+= i12; x13 &+= i13; x14 &+= i14; x15 &+= i15
        // Transpose 4x4 groups: block b, words 4k..4k+3 live in lane b of x(4k)...x(4k+3).
        @inline(__always) func emit(_ a: V, _ b: V, _ c: V, _ d: V, _ off: Int) {
            let w0 = V(a[0], b[0], c[0], d[0])
            let w1 = V(a[1], b[1], c[1], d[1])
            let w2 = V(a[2], b[2], c[2], d[2])
            let w3 = V(a[3], b[3], c[3], d[3])
            let p0 = inp.loadUnaligned(fromByteOffset: off, as: V.self)
            let p1 = inp.loadUnaligned(fromByteOffset: off + 64, as: V.self)
            let p2 = inp.loadUnaligned(fromByteOffset: off + 128, as: V.self)
            let p3 = inp.loadUnaligned(fromByteOffset: off + 192, as: V.self)
            out.storeBytes(of: p0 ^ w0, toByteOffset: off, as: V.self)
            out.storeBytes(of: p1 ^ w1, toByteOffset: off + 64, as: V.self)
            out.storeBytes(of: p2 ^ w2, toByteOffset: off + 128, as: V.self)
            out.storeBytes(of: p3 ^ w3, toByteOffset: off + 192, as: V.self)
        }
        emit(x0, x1, x2, x3, 0)
        emit(x4, x5, x6, x7, 16)
        emit(x8, x9, x10, x11, 32)
        emit(x12, x13, x14, x15, 48)
    }

    /// XOR `count` bytes of keystream (starting at the current counter) from `inp`
    /// into `out` (may alias). Advances the counter by the number of blocks used.
    mutating func xorStream(_ out: UnsafeMutableRawPointer, _ inp: UnsafeRawPointer, _ count: Int) {
        var done = 0
        while count - done >= 256 {
            xor4Blocks(out + done, inp + done)
            counter &+= 4
            done += 256
        }
        if done < count {
            var ks: (SIMD16<UInt32>) = .zero  // 64 bytes on the stack
            withUnsafeMutableBytes(of: &ks) { kp in
                let k = kp.baseAddress!
                while done < count {
                    block(k)
                    counter &+= 1
                    let n = min(64, count - done)
                    let o = (out + done).assumingMemoryBound(to: UInt8.self)
                    let i = (inp + done).assumingMemoryBound(to: UInt8.self)
                    let kb = k.assumingMemoryBound(to: UInt8.self)
                    for t in 0..<n { o[t] = i[t] ^ kb[t] }
                    done += n
                }
                kp.initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
    }
}

/// Raw Salsa20-family primitives. Key 32 bytes.
enum Salsa20 {
    /// HSalsa20(key, input16) -> 32 bytes.
    static func hsalsa20(key: [UInt8], input: [UInt8]) -> [UInt8] {
        precondition(key.count == 32 && input.count == 16, "HSalsa20 needs a 32-byte key and 16-byte input")
        return [UInt8](unsafeUninitializedCapacity: 32) { buf, n in
            key.withUnsafeBytes { k in
                input.withUnsafeBytes { i in
                    var st = Salsa20State(key: k.baseAddress!, input: i.baseAddress!)
                    st.hsalsa(UnsafeMutableRawPointer(buf.baseAddress!))
                    st.wipe()
                }
            }
            n = 32
        }
    }

    /// HSalsa20 into a caller buffer (pointer forms, no allocation).
    @inline(__always)
    static func hsalsa20(key: UnsafeRawPointer, input: UnsafeRawPointer, out: UnsafeMutableRawPointer) {
        var st = Salsa20State(key: key, input: input)
        st.hsalsa(out)
        st.wipe()
    }

    /// Salsa20 XOR with an 8-byte nonce and a starting block counter.
    static func xor(_ data: [UInt8], key: [UInt8], nonce8: [UInt8], counter: UInt64 = 0) -> [UInt8] {
        precondition(key.count == 32 && nonce8.count == 8)
        var input = [UInt8](repeating: 0, count: 16)
        input.replaceSubrange(0..<8, with: nonce8)
        var out = data
        key.withUnsafeBytes { k in
            input.withUnsafeBytes { i in
                var st = Salsa20State(key: k.baseAddress!, input: i.baseAddress!)
                st.counter = counter
                out.withUnsafeMutableBytes { o in
                    if let base = o.baseAddress { st.xorStream(base, UnsafeRawPointer(base), o.count) }
                }
                st.wipe()
            }
        }
        return out
    }

    /// XSalsa20 XOR with a 24-byte nonce (HSalsa20 subkey + Salsa20 with nonce[16..<24]).
    static func xsalsa20XOR(_ data: [UInt8], key: [UInt8], nonce: [UInt8]) -> [UInt8] {
        precondition(key.count == 32 && nonce.count == 24)
        var sub = hsalsa20(key: key, input: Array(nonce[0..<16]))
        defer { Wipe.bytes(&sub) }
        return xor(data, key: sub, nonce8: Array(nonce[16..<24]))
    }
}
