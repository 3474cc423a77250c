import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig
/// The one place the API module calls into the Crypto module.
enum TerminalAuthPayload: Sendable, Equatable {
    case legacy(secret: [UInt8])
    case dataKey(publicKey: [UInt8])
}

extension CredentialVariant {
    /// The Crypto module's variant for value encryption.
    public var cipherVariant: EncryptionVariant { self == .legacy ? .legacy : .dataKey }
}

enum APICrypto {
    static func random(_ n: Int) -> [UInt8] { SecureRandom.bytes(n) }
    static func x25519PublicKey(secret: [UInt8]) -> [UInt8] { X25519.publicKey(secret: secret) }
    /// False for an all-zero or other low-order X25519 public key.
    static func isUsablePublicKey(_ key: [UInt8]) -> Bool { X25519.isUsablePublicKey(key) }
    static func ed25519PublicKey(seed: [UInt8]) -> [UInt8] { Ed25519.publicKey(seed: seed) }
    static func ed25519Sign(_ message: [UInt8], seed: [UInt8]) -> [UInt8] { Ed25519.sign(message, seed: seed) }
    static func openTerminalResponse(_ bundle: [UInt8], secret: [UInt8]) -> TerminalAuthPayload? {
        switch TerminalAuthResponse.decrypt(bundle, ephemeralSecret: secret) {
        case .legacy(let s)?: return .legacy(secret: s)
        case .dataKey(let pk)?: return .dataKey(publicKey: pk)
        case nil: return nil
        }
    }
    static func decryptValue(_ bytes: [UInt8], key: [UInt8], variant: CredentialVariant) -> JSON? {
        ValueCipher.decrypt(bytes, key: key, variant: variant.cipherVariant)
    }
    /// Account content secret (X25519) derived from the master secret (sheet §1.4).
    static func contentSecretKey(masterSecret: [UInt8]) -> [UInt8] {
        let seed = KeyDerivation.deriveKey(master: masterSecret, usage: "Happy EnCoder", path: ["content"])
        return Box.seedKeyPair(seed: seed).secretKey
    }
    static func unwrapDataKey(_ bundle: [UInt8], recipientSecretKey: [UInt8]) -> [UInt8]? {
        DataKeyWrap.unwrap(bundle, recipientSecret: recipientSecretKey)
    }
    static func backupKeyDecode(_ text: String) -> [UInt8]? { BackupKey.decode(text) }
}
