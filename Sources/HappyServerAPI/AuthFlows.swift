import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig

/// Parsing of a secret given on stdin (`auth login --secret-stdin`).
public enum SecretInput {
    /// base64, base64url (padding optional) or the app's backup-key text (RFC 4648
    /// base32, groups of five, case/spaces/dashes forgiven) → exactly 32 bytes.
    public static func parse(_ text: String) throws -> [UInt8] {
        let t = text.trimmed
        guard !t.isEmpty else { throw APIError.invalidSecret(reason: "nothing was read from stdin") }
        // base64 / base64url: 32 bytes → 43 chars (+ optional "=").
        if let bytes = Base64.decodeAny(t) {
            if bytes.count == 32 { return bytes }
            // A base32 backup key without dashes is also valid base64 text; fall through.
            if !looksLikeBackupKey(t) { throw APIError.invalidSecret(reason: "decodes to \(bytes.count) bytes, expected 32") }
        }
        if looksLikeBackupKey(t) {
            if let bytes = BackupKey.decode(t) { return bytes }
            throw APIError.invalidSecret(reason: "the backup key does not decode to 32 bytes")
        }
        throw APIError.invalidSecret(reason: "not base64, base64url or a backup key")
    }

    /// Only base32 letters and digits, dashes and white space.
    static func looksLikeBackupKey(_ t: String) -> Bool {
        t.utf8.allSatisfy { c in
            (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 50 && c <= 55) || c == 45 || c == 32 || c == 9 || c == 10 || c == 13
        }
    }
}

/// Terminal authentication (protocol sheet §1.3), without any I/O of its own.
public struct TerminalAuth: Sendable {
    public let api: HappyServerAPI
    public let webappUrl: String
    /// Ephemeral X25519 secret: 32 random bytes used directly as the scalar.
    let secret: [UInt8]
    public let publicKey: [UInt8]

    public init(api: HappyServerAPI, webappUrl: String) {
        self.api = api
        var w = webappUrl
        while w.hasSuffix("/") { w.removeLast() }
        self.webappUrl = w
        secret = APICrypto.random(32)
        publicKey = APICrypto.x25519PublicKey(secret: secret)
    }

    public var mobileLink: String { "happy://terminal?" + Base64.encodeURL(publicKey) }
    public var webLink: String { webappUrl + "/terminal/connect#key=" + Base64.encodeURL(publicKey) }

    /// One `POST /v1/auth/request`.
    public func poll() async throws -> TerminalAuthState {
        try await api.authRequest(publicKey: publicKey, supportsV2: true)
    }

    /// Decrypts an authorized answer: v1 → legacy, v2 → dataKey with a fresh random machineKey.
    public func credentials(token: String, response: [UInt8]) throws -> Credentials {
        guard let p = APICrypto.openTerminalResponse(response, secret: secret) else {
            throw APIError.authResponseUndecryptable
        }
        switch p {
        case .legacy(let s): return .legacy(secret: s, token: token)
        case .dataKey(let pk):
            // Everything this machine encrypts is wrapped for this key: an all-zero or other
            // low-order point would make it readable by anyone (and used to crash the daemon).
            guard APICrypto.isUsablePublicKey(pk) else { throw APIError.unusableAccountKey }
            return .dataKey(publicKey: pk, machineKey: APICrypto.random(32), token: token)
        }
    }

    /// Polls every `interval` seconds until authorized. `tick` is called before each
    /// wait (for the waiting indicator); cancellation (Task) stops it.
    public func waitForApproval(interval: Double = 1, tick: @Sendable (Int) -> Void = { _ in }) async throws -> Credentials {
        var n = 0
        while true {
            try Task.checkCancellation()
            switch try await poll() {
            case .authorized(let token, let response):
                return try credentials(token: token, response: response)
            case .requested:
                tick(n)
                n += 1
                try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            }
        }
    }
}

/// Challenge login with an existing account secret (`POST /v1/auth`).
public enum SecretLogin {
    public static func login(api: HappyServerAPI, secret: [UInt8]) async throws -> Credentials {
        guard secret.count == 32 else { throw APIError.invalidSecret(reason: "expected 32 bytes") }
        let pub = APICrypto.ed25519PublicKey(seed: secret)
        let challenge = APICrypto.random(32)
        let sig = APICrypto.ed25519Sign(challenge, seed: secret)
        let token = try await api.authChallenge(publicKey: pub, challenge: challenge, signature: sig)
        return .legacy(secret: secret, token: token)
    }
}

/// `happy auth status` report (SPEC §3.1).
public struct AuthStatusReport: Sendable, Equatable {
    public var authenticated: Bool
    public var encryption: CredentialVariant?
    public var serverUrl: String
    public var machineId: String?
    public var tokenAccepted: Bool?
    /// Notes for stderr (unreadable files, unreachable server).
    public var warnings: [String] = []

    public var json: JSON {
        [
            "authenticated": .bool(authenticated), "encryption": .optional(encryption?.rawValue),
            "serverUrl": .string(serverUrl), "machineId": .optional(machineId),
            "tokenAccepted": .optional(tokenAccepted),
        ]
    }

    /// 0 when authenticated with a token accepted or unchecked; 1 otherwise.
    public var exitCode: Int32 { authenticated && tokenAccepted != false ? 0 : 1 }

    public static func gather(home: HomeLayout, serverUrl: String, transport: any HTTPTransport,
                              offline: Bool) async -> AuthStatusReport {
        let store = CredentialsStore(home: home)
        var warnings = [String]()
        let loaded = store.load()
        if case .invalid(let r) = loaded { warnings.append("\(store.path) is not usable (\(r)): treated as not authenticated") }
        let creds = loaded.credentials
        var machineId: String?
        do { machineId = try SettingsStore(home: home).machineId() } catch {
            warnings.append(errorWhat(error))
        }
        var accepted: Bool?
        if let creds, !offline {
            let api = HappyServerAPI(serverUrl: serverUrl, transport: transport, token: creds.token)
            accepted = await api.checkToken()
            if accepted == nil { warnings.append("could not check the token with \(api.serverUrl)") }
        }
        var s = serverUrl
        while s.hasSuffix("/") { s.removeLast() }
        return AuthStatusReport(authenticated: creds != nil, encryption: creds?.variant, serverUrl: s,
                                machineId: machineId, tokenAccepted: accepted, warnings: warnings)
    }
}
