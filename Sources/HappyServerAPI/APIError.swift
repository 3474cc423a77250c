import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig
/// Errors of the Happy Server REST client, credentials and auth flows.
public enum APIError: HappyError, Equatable {
    /// No usable `access.key`.
    case notAuthenticated
    /// 401/403 from the server.
    case tokenRejected(server: String)
    /// 404 on a route that names a resource.
    case notFound(what: String, server: String)
    /// `GET /v1/machines/:id` answered 404.
    case machineNotFound(id: String, server: String)
    /// Any 5xx.
    case serverError(status: Int, server: String)
    /// Another unexpected status (4xx other than 401/403/404).
    case httpStatus(status: Int, server: String, message: String?)
    /// Network failure (connection refused, DNS, TLS, proxy, timeout): names the URL.
    case unreachable(url: String, reason: String)
    /// The body is not the JSON we expect.
    case unexpectedResponse(server: String, detail: String)
    /// `POST /v1/auth` answered 401 Invalid signature.
    case signatureRejected(server: String)
    /// Secret read with `--secret-stdin` is not 32 bytes.
    case invalidSecret(reason: String)
    /// Terminal auth response does not decrypt / has an unknown layout.
    case authResponseUndecryptable
    /// A v2 login answer whose account content key is all-zero or another low-order point.
    case unusableAccountKey
    /// Asked for confirmation, none possible.
    case confirmationRequired(action: String)
    /// No machine id in settings.json and none given.
    case noMachineId
    /// A session route answered `{"error": "Session not found"}`.
    case sessionNotFound(id: String, server: String)
    /// The server has no such route (404 without the session error): an older server.
    case routeMissing(path: String, server: String)

    public var what: String {
        switch self {
        case .notAuthenticated: return "not authenticated"
        case .tokenRejected(let s): return "the server \(s) rejected the stored token (not authenticated)"
        case .notFound(let w, let s): return "\(w) not found on \(s)"
        case .machineNotFound(let id, let s): return "machine \(id) not found on \(s)"
        case .serverError(let st, let s): return "server error \(st) from \(s)"
        case .httpStatus(let st, let s, let m):
            return "unexpected HTTP status \(st) from \(s)" + (m.map { ": \($0)" } ?? "")
        case .unreachable(let u, let r): return "cannot reach \(u) (\(r))"
        case .unexpectedResponse(let s, let d): return "unexpected response from \(s) (\(d))"
        case .signatureRejected(let s): return "\(s) rejected the login signature"
        case .invalidSecret(let r): return "invalid secret: \(r)"
        case .authResponseUndecryptable: return "failed to decrypt the authentication response"
        case .unusableAccountKey:
            return "the login answer carries an account key that is not a usable X25519 public key (all-zero or a low-order point); nothing was saved"
        case .confirmationRequired(let a): return "\(a) needs confirmation and stdin is not a terminal"
        case .noMachineId: return "this machine has no machine id yet"
        case .sessionNotFound(let id, let s): return "session \(id) not found on \(s)"
        case .routeMissing(let p, let s): return "\(s) has no route \(p) (an older server)"
        }
    }

    public var hint: String? {
        switch self {
        case .notAuthenticated, .tokenRejected: return "run `happy auth login`"
        case .machineNotFound: return "check the id with `happy machine list`"
        case .notFound: return nil
        case .serverError: return "try again later"
        case .httpStatus: return nil
        case .unreachable: return "check the server URL (--server-url, HAPPY_SERVER_URL, profile) and your network"
        case .unexpectedResponse: return "check that the server URL points at a Happy Server"
        case .signatureRejected: return "check the secret"
        case .invalidSecret: return "paste the 32-byte secret as base64/base64url or the backup key (XXXXX-XXXXX-...)"
        case .authResponseUndecryptable: return "run `happy auth login` again"
        case .unusableAccountKey: return "check that the server URL points at a genuine Happy Server, then run `happy auth login` again"
        case .confirmationRequired: return "pass --yes"
        case .noMachineId: return "run `happy auth login` or start the daemon, or pass a machine id"
        case .sessionNotFound, .routeMissing: return nil
        }
    }

    /// True for 401/403 (token rejected).
    public var isTokenRejected: Bool { if case .tokenRejected = self { return true }; return false }
}
