import COpenSSL
import HappyCore

/// X25519 through OpenSSL raw keys. The 32-byte secret is used as given (OpenSSL
/// clamps inside the scalar multiplication, like tweetnacl/libsodium).
public enum X25519 {
    public static func publicKey(secret: [UInt8]) -> [UInt8] {
        precondition(secret.count == 32, "X25519.publicKey: secret must be 32 bytes")
        guard let pkey = secret.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, $0.baseAddress, 32)
        }) else { fatalError("OpenSSL: cannot load an X25519 private key") }
        defer { EVP_PKEY_free(pkey) }
        var out = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard out.withUnsafeMutableBufferPointer({ EVP_PKEY_get_raw_public_key(pkey, $0.baseAddress, &len) }) == 1,
              len == 32 else { fatalError("OpenSSL: cannot compute an X25519 public key") }
        return out
    }

    /// Raw X25519 shared secret; nil on wrong sizes or a degenerate (all-zero) result.
    public static func sharedSecret(secret: [UInt8], publicKey: [UInt8]) -> [UInt8]? {
        guard secret.count == 32, publicKey.count == 32 else { return nil }
        // Failures leave entries on OpenSSL's per-thread error queue; never leak them to TLS code.
        defer { ERR_clear_error() }
        guard let priv = secret.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, $0.baseAddress, 32)
        }) else { return nil }
        defer { EVP_PKEY_free(priv) }
        guard let peer = publicKey.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, $0.baseAddress, 32)
        }) else { return nil }
        defer { EVP_PKEY_free(peer) }
        guard let ctx = EVP_PKEY_CTX_new(priv, nil) else { return nil }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_derive_init(ctx) == 1, EVP_PKEY_derive_set_peer(ctx, peer) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard out.withUnsafeMutableBufferPointer({ EVP_PKEY_derive(ctx, $0.baseAddress, &len) }) == 1, len == 32 else {
            return nil
        }
        // OpenSSL already refuses an all-zero result; keep the check explicit.
        if out.allSatisfy({ $0 == 0 }) { return nil }
        return out
    }

    /// A fixed scalar for `isUsablePublicKey`. Any clamped scalar is a multiple of 8, so
    /// it sends every point of order 1, 2, 4 or 8 (on the curve or its twist) to zero,
    /// while a clamped scalar (< 2^255) never is a multiple of a large prime order.
    private static let probeScalar: [UInt8] = [UInt8](repeating: 0x5a, count: 32)

    /// False for a key that is not 32 bytes, all-zero, or any other low-order point
    /// (canonical or not): a key agreement with it gives the all-zero secret, so anything
    /// "encrypted" to it would be readable by anyone.
    public static func isUsablePublicKey(_ publicKey: [UInt8]) -> Bool {
        guard publicKey.count == 32 else { return false }
        guard var s = sharedSecret(secret: probeScalar, publicKey: publicKey) else { return false }
        Wipe.bytes(&s)
        return true
    }
}

/// NaCl `crypto_box`: X25519 → HSalsa20(shared, 16 zero bytes) → secretbox.
public enum Box {
    public static let nonceBytes = 24

    public static func beforeNM(secret: [UInt8], publicKey: [UInt8]) -> [UInt8]? {
        guard var shared = X25519.sharedSecret(secret: secret, publicKey: publicKey) else { return nil }
        defer { Wipe.bytes(&shared) }
        return Salsa20.hsalsa20(key: shared, input: [UInt8](repeating: 0, count: 16))
    }

    public static func seal(_ plain: [UInt8], nonce: [UInt8], recipientPublicKey: [UInt8], senderSecret: [UInt8]) -> [UInt8]? {
        guard nonce.count == nonceBytes,
              var k = beforeNM(secret: senderSecret, publicKey: recipientPublicKey) else { return nil }
        defer { Wipe.bytes(&k) }
        return SecretBox.seal(plain, nonce: nonce, key: k)
    }

    public static func open(_ boxed: [UInt8], nonce: [UInt8], senderPublicKey: [UInt8], recipientSecret: [UInt8]) -> [UInt8]? {
        guard nonce.count == nonceBytes, boxed.count >= SecretBox.tagBytes,
              var k = beforeNM(secret: recipientSecret, publicKey: senderPublicKey) else { return nil }
        defer { Wipe.bytes(&k) }
        return SecretBox.open(boxed, nonce: nonce, key: k)
    }

    /// libsodium `crypto_box_seed_keypair`: secret = SHA-512(seed)[0..<32], public = X25519 base point.
    public static func seedKeyPair(seed: [UInt8]) -> (publicKey: [UInt8], secretKey: [UInt8]) {
        var h = Digest.sha512(seed)
        defer { Wipe.bytes(&h) }
        let sk = Array(h[0..<32])
        return (X25519.publicKey(secret: sk), sk)
    }

    /// A fresh random X25519 keypair (secret used as the raw scalar, like tweetnacl).
    public static func randomKeyPair() -> (publicKey: [UInt8], secretKey: [UInt8]) {
        let sk = SecureRandom.bytes(32)
        return (X25519.publicKey(secret: sk), sk)
    }
}

/// Ed25519 (RFC 8032) through OpenSSL; keys from a 32-byte seed, detached signatures.
public enum Ed25519 {
    private static func privateKey(_ seed: [UInt8]) -> OpaquePointer {
        precondition(seed.count == 32, "Ed25519: seed must be 32 bytes")
        guard let pkey = seed.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
        }) else { fatalError("OpenSSL: cannot load an Ed25519 private key") }
        return pkey
    }

    public static func publicKey(seed: [UInt8]) -> [UInt8] {
        let pkey = privateKey(seed)
        defer { EVP_PKEY_free(pkey) }
        var out = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard out.withUnsafeMutableBufferPointer({ EVP_PKEY_get_raw_public_key(pkey, $0.baseAddress, &len) }) == 1,
              len == 32 else { fatalError("OpenSSL: cannot compute an Ed25519 public key") }
        return out
    }

    /// 64-byte detached signature.
    public static func sign(_ message: [UInt8], seed: [UInt8]) -> [UInt8] {
        let pkey = privateKey(seed)
        defer { EVP_PKEY_free(pkey) }
        guard let md = EVP_MD_CTX_new() else { fatalError("OpenSSL: out of memory") }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestSignInit(md, nil, nil, nil, pkey) == 1 else { fatalError("OpenSSL: Ed25519 sign init failed") }
        var sig = [UInt8](repeating: 0, count: 64)
        var len = 64
        let msg = message.isEmpty ? [0] : message
        let rc = sig.withUnsafeMutableBufferPointer { s in
            msg.withUnsafeBufferPointer { m in
                EVP_DigestSign(md, s.baseAddress, &len, m.baseAddress, message.count)
            }
        }
        guard rc == 1, len == 64 else { fatalError("OpenSSL: Ed25519 signing failed") }
        return sig
    }

    public static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == 64, publicKey.count == 32 else { return false }
        guard let pkey = publicKey.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
        }) else { return false }
        defer { EVP_PKEY_free(pkey) }
        guard let md = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestVerifyInit(md, nil, nil, nil, pkey) == 1 else { return false }
        let msg = message.isEmpty ? [0] : message
        let rc = signature.withUnsafeBufferPointer { s in
            msg.withUnsafeBufferPointer { m in
                EVP_DigestVerify(md, s.baseAddress, 64, m.baseAddress, message.count)
            }
        }
        ERR_clear_error()
        return rc == 1
    }
}
