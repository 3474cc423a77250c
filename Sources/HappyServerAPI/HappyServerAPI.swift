import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig

/// Terminal-auth poll answer (`POST /v1/auth/request`).
public enum TerminalAuthState: Sendable, Equatable {
    case requested
    case authorized(token: String, response: [UInt8])
}

/// Typed REST client for the Happy Server (protocol sheet §1, §4, §10) over an
/// `HTTPTransport`. Value type; `token` is the Bearer token for authenticated routes.
public struct HappyServerAPI: Sendable {
    public let serverUrl: String
    public let transport: any HTTPTransport
    public var token: String?
    /// Timeout of ordinary calls; `POST /v1/machines` uses `registerTimeout`.
    public var timeout: Double = 15
    public var registerTimeout: Double = 60

    public init(serverUrl: String, transport: any HTTPTransport, token: String? = nil) {
        var s = serverUrl
        while s.hasSuffix("/") { s.removeLast() }
        self.serverUrl = s
        self.transport = transport
        self.token = token
    }

    public static var authClient: String { "cli/\(HappyVersion.current)" }
    public static var machineClient: String { "cli-coding-session/\(HappyVersion.current)" }

    // MARK: routes

    /// `GET /health` → the server's JSON answer (status 200 only; 503 → serverError).
    public func health() async throws -> JSON {
        let r = try await send("GET", "/health", body: nil, client: nil, auth: false)
        return try parse(r)
    }

    /// `POST /v1/auth` challenge login → token.
    public func authChallenge(publicKey: [UInt8], challenge: [UInt8], signature: [UInt8]) async throws -> String {
        let body: JSON = [
            "publicKey": .string(Base64.encode(publicKey)), "challenge": .string(Base64.encode(challenge)),
            "signature": .string(Base64.encode(signature)),
        ]
        let r = try await send("POST", "/v1/auth", body: body, client: Self.authClient, auth: false, signatureRoute: true)
        let j = try parse(r)
        guard let t = j["token"]?.string, !t.isEmpty else { throw unexpected("no token in the answer") }
        return t
    }

    /// `POST /v1/auth/request {publicKey, supportsV2}` (create and poll).
    public func authRequest(publicKey: [UInt8], supportsV2: Bool = true) async throws -> TerminalAuthState {
        let body: JSON = ["publicKey": .string(Base64.encode(publicKey)), "supportsV2": .bool(supportsV2)]
        let r = try await send("POST", "/v1/auth/request", body: body, client: Self.authClient, auth: false)
        let j = try parse(r)
        switch j["state"]?.string {
        case "requested": return .requested
        case "authorized":
            guard let t = j["token"]?.string, !t.isEmpty, let resp = j["response"]?.string,
                  let bytes = Base64.decodeAny(resp.trimmed)
            else { throw unexpected("authorized answer without token or response") }
            return .authorized(token: t, response: bytes)
        default: throw unexpected("unknown auth request state")
        }
    }

    /// `GET /v1/machines` (bare array).
    public func listMachines() async throws -> [MachineRecord] {
        let r = try await send("GET", "/v1/machines", body: nil, client: Self.machineClient, auth: true)
        let j = try parse(r)
        guard let arr = j.array else { throw unexpected("expected an array of machines") }
        return try arr.map { e in
            guard let m = MachineRecord(json: e) else { throw unexpected("malformed machine record") }
            return m
        }
    }

    /// `GET /v1/machines/:id` (wrapped in `machine`); 404 → `.machineNotFound`.
    public func getMachine(id: String) async throws -> MachineRecord {
        let path = "/v1/machines/" + HTTPCodec.percentEncode(id)
        do {
            let r = try await send("GET", path, body: nil, client: Self.machineClient, auth: true)
            return try machine(from: parse(r))
        } catch APIError.notFound {
            throw APIError.machineNotFound(id: id, server: serverUrl)
        }
    }

    /// `POST /v1/machines {id, metadata, daemonState?, dataEncryptionKey?}` → the
    /// (new or existing, unchanged) record. 60 s timeout.
    public func createMachine(id: String, metadata: String, daemonState: String? = nil,
                              dataEncryptionKey: String? = nil) async throws -> MachineRecord {
        var o: [String: JSON] = ["id": .string(id), "metadata": .string(metadata)]
        if let daemonState { o["daemonState"] = .string(daemonState) }
        if let dataEncryptionKey { o["dataEncryptionKey"] = .string(dataEncryptionKey) }
        let r = try await send("POST", "/v1/machines", body: .object(o), client: Self.machineClient, auth: true,
                               timeout: registerTimeout)
        return try machine(from: parse(r))
    }

    /// Token check used by `auth status` / doctor: true accepted, false rejected
    /// (401/403), nil unchecked (network error or any other status).
    public func checkToken() async -> Bool? {
        do {
            _ = try await send("GET", "/v1/machines", body: nil, client: Self.machineClient, auth: true)
            return true
        } catch let e as APIError {
            return e.isTokenRejected ? false : nil
        } catch {
            return nil
        }
    }

    // MARK: plumbing

    func machine(from j: JSON) throws -> MachineRecord {
        guard let m = j["machine"], let rec = MachineRecord(json: m) else {
            throw unexpected("expected {\"machine\": {...}}")
        }
        return rec
    }

    func unexpected(_ d: String) -> APIError { .unexpectedResponse(server: serverUrl, detail: d) }

    func parse(_ r: HTTPResponse) throws -> JSON {
        do { return try JSON.parse(r.body) } catch { throw unexpected("not JSON") }
    }

    /// Sends one request; returns only 2xx responses, maps everything else.
    func send(_ method: String, _ path: String, body: JSON?, client: String?, auth: Bool,
              timeout t: Double? = nil, signatureRoute: Bool = false) async throws -> HTTPResponse {
        let resp = try await exchange(method, path, body: body, client: client, auth: auth, timeout: t)
        return try check(resp, path: path, signatureRoute: signatureRoute)
    }

    /// Maps a non-2xx status to its error.
    func check(_ resp: HTTPResponse, path: String, signatureRoute: Bool = false) throws -> HTTPResponse {
        switch resp.status {
        case 200..<300: return resp
        case 401 where signatureRoute: throw APIError.signatureRejected(server: serverUrl)
        case 401, 403: throw APIError.tokenRejected(server: serverUrl)
        case 404: throw APIError.notFound(what: path, server: serverUrl)
        case 500...: throw APIError.serverError(status: resp.status, server: serverUrl)
        default:
            let msg = (try? JSON.parse(resp.body)).flatMap { $0["message"]?.string ?? $0["error"]?.string }
            throw APIError.httpStatus(status: resp.status, server: serverUrl, message: msg.map { String($0.prefix(200)) })
        }
    }

    /// Sends one request and returns the answer whatever its status (network failures throw).
    func exchange(_ method: String, _ path: String, body: JSON?, client: String?, auth: Bool,
                  timeout t: Double? = nil) async throws -> HTTPResponse {
        var h = HTTPHeaders()
        h.set("Accept", "application/json")
        if let client { h.set("X-Happy-Client", client) }
        if auth {
            guard let token else { throw APIError.notAuthenticated }
            h.set("Authorization", "Bearer \(token)")
        }
        let url = serverUrl + path
        // The token goes out (auth) or comes back (the /v1/auth routes): say once when that
        // happens in clear over the network.
        if auth || path.hasPrefix("/v1/auth") { InsecureTransportNotice.check(serverUrl) }
        let req: HTTPClientRequest
        if let body {
            req = .json(method, url, body, headers: h, timeout: t ?? timeout)
        } else {
            req = HTTPClientRequest(method: method, url: url, headers: h, timeout: t ?? timeout)
        }
        do {
            return try await transport.send(req)
        } catch let e as APIError {
            throw e
        } catch let e as HappyError {
            throw APIError.unreachable(url: url, reason: e.what)
        } catch {
            throw APIError.unreachable(url: url, reason: "\(error)")
        }
    }
}
