/// The one place the API module calls into the Crypto module. Placeholder bodies
/// until the Crypto module lands on main; then each forwards to it.
enum TerminalAuthPayload: Sendable, Equatable {
    case legacy(secret: [UInt8])
    case dataKey(publicKey: [UInt8])
}

enum APICrypto {
    static func random(_ n: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
    static func x25519PublicKey(secret: [UInt8]) -> [UInt8] { fatalError("crypto not merged yet") }
    static func ed25519PublicKey(seed: [UInt8]) -> [UInt8] { fatalError("crypto not merged yet") }
    static func ed25519Sign(_ message: [UInt8], seed: [UInt8]) -> [UInt8] { fatalError("crypto not merged yet") }
    static func openTerminalResponse(_ bundle: [UInt8], secret: [UInt8]) -> TerminalAuthPayload? { nil }
    static func decryptValue(_ bytes: [UInt8], key: [UInt8], variant: CredentialVariant) -> JSON? { nil }
    static func encryptValue(_ value: JSON, key: [UInt8], variant: CredentialVariant) -> [UInt8] { [] }
    /// Account content secret (X25519) derived from the master secret (sheet §1.4).
    static func contentSecretKey(masterSecret: [UInt8]) -> [UInt8] { [] }
    static func unwrapDataKey(_ bundle: [UInt8], recipientSecretKey: [UInt8]) -> [UInt8]? { nil }
    static func backupKeyDecode(_ text: String) -> [UInt8]? { nil }
}
