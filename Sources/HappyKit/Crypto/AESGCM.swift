import COpenSSL

/// AES-256-GCM through OpenSSL EVP. Key 32 bytes, nonce 12 bytes, tag 16 bytes, no AAD.
public enum AESGCM {
    public static let keyBytes = 32
    public static let nonceBytes = 12
    public static let tagBytes = 16

    nonisolated(unsafe) private static let cipher: OpaquePointer? = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)

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
        guard let cipher, let ctx = EVP_CIPHER_CTX_new() else { return false }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_EncryptInit_ex2(ctx, cipher, key.assumingMemoryBound(to: UInt8.self),
                                  nonce.assumingMemoryBound(to: UInt8.self), nil) == 1 else { return false }
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
        return true
    }

    /// Decrypts `count` bytes into `out` and checks the tag; false (and `out` wiped) on mismatch.
    static func openRaw(out: UnsafeMutableRawPointer?, ciphertext: UnsafeRawPointer?, count: Int,
                        key: UnsafeRawPointer, nonce: UnsafeRawPointer, tag: UnsafeRawPointer) -> Bool {
        defer { ERR_clear_error() }
        guard let cipher, let ctx = EVP_CIPHER_CTX_new() else { return false }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_DecryptInit_ex2(ctx, cipher, key.assumingMemoryBound(to: UInt8.self),
                                  nonce.assumingMemoryBound(to: UInt8.self), nil) == 1 else { return false }
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
        return true
    }
}
