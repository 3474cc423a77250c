import COpenSSL
import Glibc
import HappyCore

/// AES-256-GCM through OpenSSL EVP. Key 32 bytes, nonce 12 bytes, tag 16 bytes, no AAD.
public enum AESGCM {
    public static let keyBytes = 32
    public static let nonceBytes = 12
    public static let tagBytes = 16

    public static func seal(_ plain: [UInt8], key: [UInt8], nonce: [UInt8]) -> (ciphertext: [UInt8], tag: [UInt8]) {
        precondition(key.count == keyBytes, "AESGCM.seal: key must be 32 bytes")
        precondition(nonce.count == nonceBytes, "AESGCM.seal: nonce must be 12 bytes")
        var tag = [UInt8](repeating: 0, count: tagBytes)
        let ct = [UInt8](unsafeUninitializedCapacity: plain.count) { out, n in
            let ok = key.withUnsafeBytes { k in
                nonce.withUnsafeBytes { iv in
                    plain.withUnsafeBytes { p in
                        tag.withUnsafeMutableBytes { t in
                            sealRaw(out: out.baseAddress.map(UnsafeMutableRawPointer.init), plain: p.baseAddress, count: p.count,
                                    key: k.baseAddress!, nonce: iv.baseAddress!, tag: t.baseAddress!)
                        }
                    }
                }
            }
            guard ok else { fatalError("OpenSSL AES-256-GCM encryption failed") }
            n = plain.count
        }
        return (ct, tag)
    }

    public static func open(ciphertext: [UInt8], tag: [UInt8], key: [UInt8], nonce: [UInt8]) -> [UInt8]? {
        guard key.count == keyBytes, nonce.count == nonceBytes, tag.count == tagBytes else { return nil }
        var ok = false
        let plain = [UInt8](unsafeUninitializedCapacity: ciphertext.count) { out, n in
            ok = key.withUnsafeBytes { k in
                nonce.withUnsafeBytes { iv in
                    ciphertext.withUnsafeBytes { c in
                        tag.withUnsafeBytes { t in
                            openRaw(out: out.baseAddress.map(UnsafeMutableRawPointer.init), ciphertext: c.baseAddress,
                                    count: c.count, key: k.baseAddress!, nonce: iv.baseAddress!, tag: t.baseAddress!)
                        }
                    }
                }
            }
            n = ok ? ciphertext.count : 0
        }
        return ok ? plain : nil
    }

    /// Encrypts `count` bytes into `out` and writes the 16-byte tag.
    static func sealRaw(out: UnsafeMutableRawPointer?, plain: UnsafeRawPointer?, count: Int,
                        key: UnsafeRawPointer, nonce: UnsafeRawPointer, tag: UnsafeMutableRawPointer) -> Bool {
        guard let ctx = GCMContextPool.shared.acquire(key: key, nonce: nonce, encrypt: true) else { return false }
        var reusable = false
        defer { GCMContextPool.shared.release(ctx, key: key, encrypt: true, reusable: reusable) }
        var len: Int32 = 0
        var done = 0
        while done < count, let out, let plain {
            let chunk = Int32(min(count - done, 1 << 30))
            guard EVP_EncryptUpdate(ctx, (out + done).assumingMemoryBound(to: UInt8.self), &len,
                                    (plain + done).assumingMemoryBound(to: UInt8.self), chunk) == 1 else { return false }
            done += Int(len)
        }
        var fin: UInt8 = 0
        guard EVP_EncryptFinal_ex(ctx, &fin, &len) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(tagBytes), tag) == 1 else { return false }
        reusable = true
        return true
    }

    /// Decrypts `count` bytes into `out` and checks the tag; false (and `out` wiped) on mismatch.
    static func openRaw(out: UnsafeMutableRawPointer?, ciphertext: UnsafeRawPointer?, count: Int,
                        key: UnsafeRawPointer, nonce: UnsafeRawPointer, tag: UnsafeRawPointer) -> Bool {
        defer { ERR_clear_error() }
        guard let ctx = GCMContextPool.shared.acquire(key: key, nonce: nonce, encrypt: false) else { return false }
        var reusable = false
        defer { GCMContextPool.shared.release(ctx, key: key, encrypt: false, reusable: reusable) }
        var len: Int32 = 0
        var done = 0
        while done < count, let out, let ciphertext {
            let chunk = Int32(min(count - done, 1 << 30))
            guard EVP_DecryptUpdate(ctx, (out + done).assumingMemoryBound(to: UInt8.self), &len,
                                    (ciphertext + done).assumingMemoryBound(to: UInt8.self), chunk) == 1 else { return false }
            done += Int(len)
        }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(tagBytes), UnsafeMutableRawPointer(mutating: tag)) == 1
        else { return false }
        var fin: UInt8 = 0
        guard EVP_DecryptFinal_ex(ctx, &fin, &len) == 1 else {
            if let out, count > 0 { Wipe.raw(out, count) }
            return false
        }
        reusable = true
        return true
    }
}

/// A few keyed AES-GCM contexts kept for reuse: re-initialising an existing context
/// with a new nonce skips the context allocation, the AES key schedule and the GHASH
/// table setup, which dominate small messages. Holds at most `capacity` contexts
/// (each keeps its key schedule in OpenSSL memory, freed with OPENSSL_cleanse).
/// A context that saw an error is never reused.
final class GCMContextPool: @unchecked Sendable {
    static let shared = GCMContextPool()
    private static let capacity = 4

    private struct Entry {
        var key: (UInt64, UInt64, UInt64, UInt64)
        var encrypt: Bool
        var ctx: OpaquePointer
    }

    private let cipher: OpaquePointer? = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)
    private let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    private var entries: [Entry] = []

    private init() { entries.reserveCapacity(Self.capacity) }

    @inline(__always) private static func keyWords(_ key: UnsafeRawPointer) -> (UInt64, UInt64, UInt64, UInt64) {
        (key.loadUnaligned(fromByteOffset: 0, as: UInt64.self), key.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
         key.loadUnaligned(fromByteOffset: 16, as: UInt64.self), key.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    @inline(__always) private static func same(_ a: (UInt64, UInt64, UInt64, UInt64), _ b: (UInt64, UInt64, UInt64, UInt64)) -> Bool {
        ((a.0 ^ b.0) | (a.1 ^ b.1) | (a.2 ^ b.2) | (a.3 ^ b.3)) == 0
    }

    /// A context initialised for `key` and `nonce` (12 bytes), or nil if OpenSSL fails.
    func acquire(key: UnsafeRawPointer, nonce: UnsafeRawPointer, encrypt: Bool) -> OpaquePointer? {
        let k = Self.keyWords(key)
        var reused: OpaquePointer?
        pthread_mutex_lock(lock)
        if let i = entries.firstIndex(where: { $0.encrypt == encrypt && Self.same($0.key, k) }) {
            reused = entries.remove(at: i).ctx
        }
        pthread_mutex_unlock(lock)
        let iv = nonce.assumingMemoryBound(to: UInt8.self)
        if let ctx = reused {
            let rc = encrypt ? EVP_EncryptInit_ex2(ctx, nil, nil, iv, nil) : EVP_DecryptInit_ex2(ctx, nil, nil, iv, nil)
            if rc == 1 { return ctx }
            EVP_CIPHER_CTX_free(ctx)
        }
        guard let cipher, let ctx = EVP_CIPHER_CTX_new() else { return nil }
        let kb = key.assumingMemoryBound(to: UInt8.self)
        let rc = encrypt ? EVP_EncryptInit_ex2(ctx, cipher, kb, iv, nil) : EVP_DecryptInit_ex2(ctx, cipher, kb, iv, nil)
        guard rc == 1 else { EVP_CIPHER_CTX_free(ctx); return nil }
        return ctx
    }

    func release(_ ctx: OpaquePointer, key: UnsafeRawPointer, encrypt: Bool, reusable: Bool) {
        guard reusable else { EVP_CIPHER_CTX_free(ctx); return }
        var entry = Entry(key: Self.keyWords(key), encrypt: encrypt, ctx: ctx)
        var evicted: OpaquePointer?
        pthread_mutex_lock(lock)
        if entries.count >= Self.capacity {
            var old = entries.removeFirst()
            evicted = old.ctx
            old.key = (0, 0, 0, 0)
        }
        entries.append(entry)
        pthread_mutex_unlock(lock)
        entry.key = (0, 0, 0, 0)
        if let evicted { EVP_CIPHER_CTX_free(evicted) }
    }
}
