import COpenSSL
import HappyCore

/// Overwrites key material with zeros in a way the optimiser cannot drop (OPENSSL_cleanse).
enum Wipe {
    static func bytes(_ a: inout [UInt8]) {
        a.withUnsafeMutableBytes { b in
            if let p = b.baseAddress, b.count > 0 { OPENSSL_cleanse(p, b.count) }
        }
    }

    static func raw(_ p: UnsafeMutableRawPointer, _ count: Int) {
        if count > 0 { OPENSSL_cleanse(p, count) }
    }
}

/// SHA-2 digests, HMAC-SHA512 and hex.
public enum Digest {
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { buf, n in
            data.withUnsafeBytes { d in _ = SHA256(d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, buf.baseAddress!) }
            n = 32
        }
    }

    public static func sha512(_ data: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 64) { buf, n in
            data.withUnsafeBytes { d in _ = SHA512(d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, buf.baseAddress!) }
            n = 64
        }
    }

    public static func hmacSHA512(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var len: UInt32 = 64
        // HMAC() needs a non-null key pointer even for an empty key.
        let keyBuf: [UInt8] = key.isEmpty ? [0] : key
        let ok = keyBuf.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                out.withUnsafeMutableBytes { o in
                    HMAC(EVP_sha512(), k.baseAddress!, Int32(key.count),
                                d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count,
                                o.baseAddress!.assumingMemoryBound(to: UInt8.self), &len) != nil
                }
            }
        }
        guard ok, len == 64 else { fatalError("OpenSSL HMAC-SHA512 failed") }
        return out
    }

    public static func hex(_ data: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(data.count * 2)
        for b in data {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The HMAC-SHA512 key-derivation chain of the protocol sheet §1.4.
public enum KeyDerivation {
    public static func deriveKey(master: [UInt8], usage: String, path: [String]) -> [UInt8] {
        var i = Digest.hmacSHA512(key: Array((usage + " Master Seed").utf8), data: master)
        for element in path {
            var chain = Array(i[32..<64])
            var data: [UInt8] = [0]
            data.append(contentsOf: element.utf8)
            Wipe.bytes(&i)
            i = Digest.hmacSHA512(key: chain, data: data)
            Wipe.bytes(&chain)
        }
        let key = Array(i[0..<32])
        Wipe.bytes(&i)
        return key
    }
}
