import HappyCore
/// Which of the two Happy value encodings a record uses (`encryptionVariant` on the wire).
public enum EncryptionVariant: String, Sendable, Codable {
    /// `nonce(24) | secretbox(JSON)` under the account master secret.
    case legacy
    /// `0x00 | nonce(12) | AES-256-GCM ciphertext | tag(16)` under a 32-byte data key.
    case dataKey
}

/// Encryption of JSON values ("value encryption", protocol sheet §3.2/§3.3).
/// The plaintext is the compact JSON text (`JSON.serialized()`) as UTF-8.
public enum ValueCipher {
    /// Smallest valid bundle per variant.
    static func minimumBundle(_ variant: EncryptionVariant) -> Int {
        switch variant {
        case .legacy: return SecretBox.nonceBytes + SecretBox.tagBytes          // 40
        case .dataKey: return 1 + AESGCM.nonceBytes + AESGCM.tagBytes          // 29
        }
    }

    static func nonceBytes(_ variant: EncryptionVariant) -> Int {
        variant == .legacy ? SecretBox.nonceBytes : AESGCM.nonceBytes
    }

    public static func encrypt(_ value: JSON, key: [UInt8], variant: EncryptionVariant) -> [UInt8] {
        encrypt(value, key: key, variant: variant, nonce: SecureRandom.bytes(nonceBytes(variant)))
    }

    /// Deterministic form (given nonce: 24 bytes for legacy, 12 for dataKey). For vectors and tests.
    public static func encrypt(_ value: JSON, key: [UInt8], variant: EncryptionVariant, nonce: [UInt8]) -> [UInt8] {
        sealBytes(Array(value.serialized().utf8), key: key, variant: variant, nonce: nonce)
    }

    public static func decrypt(_ bundle: [UInt8], key: [UInt8], variant: EncryptionVariant) -> JSON? {
        guard let plain = openBytes(bundle, key: key, variant: variant) else { return nil }
        return try? JSON.parse(plain)
    }

    public static func encryptToBase64(_ value: JSON, key: [UInt8], variant: EncryptionVariant) -> String {
        Base64.encode(encrypt(value, key: key, variant: variant))
    }

    public static func decryptBase64(_ b64: String, key: [UInt8], variant: EncryptionVariant) -> JSON? {
        guard let bundle = Base64.decode(b64) else { return nil }
        return decrypt(bundle, key: key, variant: variant)
    }

    /// Raw-bytes layer under the JSON API (exact plaintext bytes in and out).
    static func sealBytes(_ plain: [UInt8], key: [UInt8], variant: EncryptionVariant, nonce: [UInt8]) -> [UInt8] {
        precondition(key.count == 32, "ValueCipher: key must be 32 bytes")
        precondition(nonce.count == nonceBytes(variant), "ValueCipher: wrong nonce length for \(variant.rawValue)")
        switch variant {
        case .legacy:
            return nonce + SecretBox.seal(plain, nonce: nonce, key: key)
        case .dataKey:
            let total = 1 + AESGCM.nonceBytes + plain.count + AESGCM.tagBytes
            return [UInt8](unsafeUninitializedCapacity: total) { out, n in
                let base = UnsafeMutableRawPointer(out.baseAddress!)
                base.storeBytes(of: 0, as: UInt8.self)
                nonce.withUnsafeBytes { (base + 1).copyMemory(from: $0.baseAddress!, byteCount: AESGCM.nonceBytes) }
                let ok = key.withUnsafeBytes { k in
                    plain.withUnsafeBytes { p in
                        AESGCM.sealRaw(out: base + 13, plain: p.baseAddress, count: p.count, key: k.baseAddress!,
                                       nonce: base + 1, tag: base + 13 + plain.count)
                    }
                }
                guard ok else { fatalError("OpenSSL AES-256-GCM encryption failed") }
                n = total
            }
        }
    }

    static func openBytes(_ bundle: [UInt8], key: [UInt8], variant: EncryptionVariant) -> [UInt8]? {
        guard key.count == 32, bundle.count >= minimumBundle(variant) else { return nil }
        switch variant {
        case .legacy:
            let nonce = Array(bundle[0..<SecretBox.nonceBytes])
            return SecretBox.open(Array(bundle[SecretBox.nonceBytes...]), nonce: nonce, key: key)
        case .dataKey:
            guard bundle[0] == 0 else { return nil }
            let count = bundle.count - 1 - AESGCM.nonceBytes - AESGCM.tagBytes
            var ok = false
            let plain = [UInt8](unsafeUninitializedCapacity: count) { out, n in
                ok = key.withUnsafeBytes { k in
                    bundle.withUnsafeBytes { b in
                        let base = b.baseAddress!
                        return AESGCM.openRaw(out: out.baseAddress.map(UnsafeMutableRawPointer.init), ciphertext: base + 13,
                                              count: count, key: k.baseAddress!, nonce: base + 1, tag: base + 13 + count)
                    }
                }
                n = ok ? count : 0
            }
            return ok ? plain : nil
        }
    }
}

/// `dataEncryptionKey`: `0x00 | ephemeralPublic(32) | nonce(24) | box(key32)` = 105 bytes.
public enum DataKeyWrap {
    public static let bundleBytes = 105

    /// Wraps `key` for the account's content public key. Throws `unusablePublicKey` for a
    /// key that is all-zero or another low-order point (a server can send one in a v2
    /// login; credentials are checked when loaded, and this check stands behind that).
    public static func wrap(_ key: [UInt8], recipientPublicKey: [UInt8]) throws -> [UInt8] {
        var eph = SecureRandom.bytes(32)
        defer { Wipe.bytes(&eph) }
        return try wrap(key, recipientPublicKey: recipientPublicKey, ephemeralSecret: eph, nonce: SecureRandom.bytes(24))
    }

    /// Deterministic form (for vectors and tests). Throws on wrong sizes or an unusable
    /// recipient key; never traps.
    public static func wrap(_ key: [UInt8], recipientPublicKey: [UInt8], ephemeralSecret: [UInt8], nonce: [UInt8]) throws -> [UInt8] {
        guard key.count == 32 else { throw CryptoError.wrongLength(what: "the wrapped key", expected: 32, got: key.count) }
        guard recipientPublicKey.count == 32 else {
            throw CryptoError.wrongLength(what: "the recipient public key", expected: 32, got: recipientPublicKey.count)
        }
        guard ephemeralSecret.count == 32 else {
            throw CryptoError.wrongLength(what: "the ephemeral secret", expected: 32, got: ephemeralSecret.count)
        }
        guard nonce.count == 24 else { throw CryptoError.wrongLength(what: "the nonce", expected: 24, got: nonce.count) }
        guard X25519.isUsablePublicKey(recipientPublicKey),
              let boxed = Box.seal(key, nonce: nonce, recipientPublicKey: recipientPublicKey, senderSecret: ephemeralSecret)
        else { throw CryptoError.unusablePublicKey }
        let ephPublic = X25519.publicKey(secret: ephemeralSecret)
        return [0] + ephPublic + nonce + boxed
    }

    /// The wrapped 32-byte key, or nil (wrong version/length, bad tag, wrong key).
    public static func unwrap(_ bundle: [UInt8], recipientSecret: [UInt8]) -> [UInt8]? {
        guard bundle.count == bundleBytes, bundle[0] == 0, recipientSecret.count == 32,
              isCanonicalPublicKey(bundle, at: 1) else { return nil }
        let ephPublic = Array(bundle[1..<33])
        let nonce = Array(bundle[33..<57])
        guard var key = Box.open(Array(bundle[57...]), nonce: nonce, senderPublicKey: ephPublic,
                                 recipientSecret: recipientSecret) else { return nil }
        guard key.count == 32 else { Wipe.bytes(&key); return nil }
        return key
    }
}

/// Terminal-auth response (`response` once authorized): `ephemeralPublic(32) | nonce(24) | box(plain)`.
/// The caller generates a fresh random 32-byte `machineKey` for `.dataKey` credentials.
public enum TerminalAuthResponse: Equatable {
    /// v1: the 32-byte account master secret.
    case legacy(secret: [UInt8])
    /// v2: `0x00 | publicKey(32)`, the account content public key.
    case dataKey(publicKey: [UInt8])

    public static func decrypt(_ bundle: [UInt8], ephemeralSecret: [UInt8]) -> TerminalAuthResponse? {
        guard bundle.count >= 32 + 24 + SecretBox.tagBytes, ephemeralSecret.count == 32,
              isCanonicalPublicKey(bundle, at: 0) else { return nil }
        let peer = Array(bundle[0..<32])
        let nonce = Array(bundle[32..<56])
        guard var plain = Box.open(Array(bundle[56...]), nonce: nonce, senderPublicKey: peer,
                                   recipientSecret: ephemeralSecret) else { return nil }
        defer { Wipe.bytes(&plain) }
        if plain.count == 32 { return .legacy(secret: Array(plain)) }
        if plain.count >= 33, plain[0] == 0 { return .dataKey(publicKey: Array(plain[1..<33])) }
        return nil
    }
}

/// X25519 ignores bit 255 of a peer key (RFC 7748), so flipping it would go unnoticed.
/// A key produced by scalar multiplication never has it set, so the bundle parsers
/// treat a set bit as tampering.
@inline(__always) func isCanonicalPublicKey(_ bundle: [UInt8], at offset: Int) -> Bool {
    bundle[offset + 31] & 0x80 == 0
}
