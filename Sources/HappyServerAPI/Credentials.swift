import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig

/// Which machine-record encryption a credential uses (protocol sheet §3.2–§3.3).
public enum CredentialVariant: String, Sendable, Equatable {
    case legacy
    case dataKey
}

/// The contents of `access.key` (protocol sheet §2.2).
public enum Credentials: Sendable, Equatable {
    /// `{secret, token}`: the 32-byte account master secret.
    case legacy(secret: [UInt8], token: String)
    /// `{encryption: {publicKey, machineKey}, token}`: the account content public key
    /// (X25519) and this machine's own random 32-byte key.
    case dataKey(publicKey: [UInt8], machineKey: [UInt8], token: String)

    public var token: String {
        switch self {
        case .legacy(_, let t), .dataKey(_, _, let t): return t
        }
    }

    public var variant: CredentialVariant {
        switch self {
        case .legacy: return .legacy
        case .dataKey: return .dataKey
        }
    }

    /// The key machine records (metadata, daemonState, RPC payloads) are encrypted
    /// with: legacy → the master secret (secretbox); dataKey → machineKey (AES-GCM).
    public var encryptionKey: [UInt8] {
        switch self {
        case .legacy(let s, _): return s
        case .dataKey(_, let mk, _): return mk
        }
    }

    /// The key and variant for this machine's own record (what the daemon/machine
    /// sync encrypts `metadata`, `daemonState` and RPC payloads with).
    public var machineMetadataKeyAndVariant: (key: [UInt8], variant: CredentialVariant) {
        (encryptionKey, variant)
    }

    /// File form, pretty-printed by the store.
    public var json: JSON {
        switch self {
        case .legacy(let s, let t):
            return ["secret": .string(Base64.encode(s)), "token": .string(t)]
        case .dataKey(let pk, let mk, let t):
            return ["encryption": ["publicKey": .string(Base64.encode(pk)), "machineKey": .string(Base64.encode(mk))], "token": .string(t)]
        }
    }

    /// Reader rules of the original CLI: `token` must be a string; `secret` wins when
    /// both forms are present; anything invalid → nil (not authenticated). Keys must
    /// decode to exactly 32 bytes.
    public init?(json: JSON) {
        guard let token = json["token"]?.string, !token.isEmpty else { return nil }
        if let s = json["secret"], !s.isNull {
            guard let str = s.string, let secret = Base64.decodeAny(str.trimmed), secret.count == 32 else { return nil }
            self = .legacy(secret: secret, token: token)
            return
        }
        guard let enc = json["encryption"], let pks = enc["publicKey"]?.string, let mks = enc["machineKey"]?.string,
              let pk = Base64.decodeAny(pks.trimmed), pk.count == 32, let mk = Base64.decodeAny(mks.trimmed), mk.count == 32
        else { return nil }
        self = .dataKey(publicKey: pk, machineKey: mk, token: token)
    }
}

/// Reads and writes `<home>/access.key` (0600, atomic, pretty JSON).
public struct CredentialsStore: Sendable {
    public enum Loaded: Sendable, Equatable {
        case missing
        /// The file exists but is not a valid credentials file (counts as not authenticated).
        case invalid(reason: String)
        case ok(Credentials)

        public var credentials: Credentials? { if case .ok(let c) = self { return c }; return nil }
    }

    public let path: String

    public init(path: String) { self.path = path }
    public init(home: HomeLayout) { self.path = home.accessKey }

    public func load() -> Loaded {
        let bytes: [UInt8]?
        do { bytes = try FileIO.read(path, noFollow: true) } catch { return .invalid(reason: errorWhat(error)) }
        guard let bytes else { return .missing }
        guard let j = try? JSON.parse(bytes) else { return .invalid(reason: "not JSON") }
        guard let c = Credentials(json: j) else { return .invalid(reason: "not a credentials file") }
        if case .dataKey(let pk, _, _) = c, !APICrypto.isUsablePublicKey(pk) {
            return .invalid(reason: "its account public key is not a usable X25519 key (all-zero or a low-order point)")
        }
        return .ok(c)
    }

    /// The credentials, or nil when missing or invalid.
    public func read() -> Credentials? { load().credentials }

    /// Requires credentials: `.notAuthenticated` otherwise.
    public func require() throws -> Credentials {
        guard let c = read() else { throw APIError.notAuthenticated }
        return c
    }

    public func write(_ c: Credentials) throws {
        let dir = Paths.dirname(path)
        if !dir.isEmpty { try HomeDirectory.prepare(HomeLayout(root: dir)) }
        try FileIO.writeJSON(c.json, to: path, mode: 0o600)
    }

    /// Deletes the file; true when there was one.
    @discardableResult
    public func delete() throws -> Bool {
        if unlink(path) == 0 { return true }
        if errno == ENOENT { return false }
        throw FileIOError.cannotWrite(path: path, reason: errnoString())
    }
}
