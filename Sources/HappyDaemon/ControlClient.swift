import FoundationEssentials
import CPosix
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync

public enum ControlClientError: Error, Equatable, CustomStringConvertible {
    case connect(Int32)
    case timeout
    case closed
    case badResponse(String)

    public var description: String {
        switch self {
        case .connect(let e): return "connect to 127.0.0.1 failed: \(errnoString(e))"
        case .timeout: return "the daemon did not answer in time"
        case .closed: return "the daemon closed the connection"
        case .badResponse(let r): return "bad response from the daemon: \(r)"
        }
    }
}

/// A response from the control API: status + parsed JSON body (nil when not JSON).
public struct ControlResponse: Sendable {
    public var status: Int
    public var json: JSON?
    /// `error` of an error body, or a generic message.
    public var errorMessage: String { json?["error"]?.string ?? "the daemon answered \(status)" }
}

/// Small synchronous client for the local control API: one blocking loopback TCP
/// connection per request with a timeout. Never goes through a proxy.
public struct ControlClient: Sendable {
    public let port: Int
    public let token: String?
    public var timeout: Double

    public init(port: Int, token: String?, timeout: Double = 5) {
        self.port = port
        self.token = token
        self.timeout = timeout
    }

    public init(state: DaemonStateFile, timeout: Double = 5) {
        self.init(port: state.httpPort, token: state.controlToken, timeout: timeout)
    }

    public func request(_ method: String, _ target: String, body: JSON? = nil, timeout: Double? = nil) throws -> ControlResponse {
        let t = timeout ?? self.timeout
        let deadline = MonotonicClock.now() + t
        let fd = cposix_connect_loopback(Int32(port), Int32(max(1, t * 1000)))
        if fd < 0 { throw -fd == ETIMEDOUT ? ControlClientError.timeout : ControlClientError.connect(-fd) }
        defer { close(fd) }
        var headers = HTTPHeaders()
        headers.add("Host", "127.0.0.1:\(port)")
        if let token { headers.add("Authorization", "Bearer \(token)") }
        headers.add("Connection", "close")
        var bodyBytes: [UInt8] = []
        if let body {
            bodyBytes = body.bytes
            headers.add("Content-Type", "application/json")
        }
        let req = HTTPRequest(method: method, target: target, headers: headers, body: bodyBytes)
        let out = req.serialized()
        var off = 0
        while off < out.count {
            let n = out.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw ControlClientError.timeout }
                throw ControlClientError.connect(errno)
            }
            off += n
        }
        var parser = HTTPMessageParser(kind: .response, maxHeaderBytes: 64 * 1024, maxBodyBytes: 64 << 20)
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let r = try? parser.nextResponse() { return Self.wrap(r) }
            let remaining = deadline - MonotonicClock.now()
            if remaining <= 0 { throw ControlClientError.timeout }
            _ = cposix_set_timeouts(fd, Int32(max(1, remaining * 1000)))
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                buf.withUnsafeBytes { parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                continue
            }
            if n == 0 {
                do {
                    if let r = try parser.nextResponse(eof: true) { return Self.wrap(r) }
                } catch { throw ControlClientError.badResponse("\(error)") }
                throw ControlClientError.closed
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw ControlClientError.timeout }
            throw ControlClientError.connect(errno)
        }
    }

    static func wrap(_ r: HTTPResponse) -> ControlResponse {
        ControlResponse(status: r.status, json: r.body.isEmpty ? nil : try? JSON.parse(r.body))
    }

    // MARK: typed calls (the wire shapes of ControlWire.swift and HappySessions)

    /// The JSON of an answer with one of `codes`; any other status becomes the error the
    /// command shows (404 → session not found, 409 → not running for session routes).
    func expect(_ r: ControlResponse, _ codes: Set<Int>, session id: String? = nil) throws -> JSON {
        guard codes.contains(r.status) else {
            if let id {
                if r.status == 404 { throw SessionError.notFound(id) }
                if r.status == 409 { throw SessionError.notRunning(id) }
            }
            throw DaemonError.api(status: r.status, message: r.errorMessage)
        }
        return r.json ?? .object([:])
    }

    func record(_ j: JSON) throws -> SessionRecord {
        guard let s = j["session"], let rec = SessionRecord(json: s) else { throw ControlClientError.badResponse("no session in the answer") }
        return rec
    }

    static func sessionPath(_ id: String, _ rest: String = "") -> String { "/sessions/" + HTTPCodec.percentEncode(id) + rest }

    public func health() throws -> DaemonHealth {
        guard let h = DaemonHealth(json: try expect(request("GET", "/health"), [200])) else {
            throw ControlClientError.badResponse("GET /health")
        }
        return h
    }

    public func status() throws -> DaemonStatus {
        guard let s = DaemonStatus(json: try expect(request("GET", "/status"), [200])) else {
            throw ControlClientError.badResponse("GET /status")
        }
        return s
    }

    public func listSessions(all: Bool) throws -> [SessionRecord] {
        let j = try expect(request("GET", all ? "/sessions?all=true" : "/sessions"), [200])
        return (j["sessions"]?.array ?? []).compactMap(SessionRecord.init(json:))
    }

    /// By local id, server session id or unique prefix.
    public func session(_ id: String) throws -> SessionRecord {
        try record(expect(request("GET", Self.sessionPath(id)), [200], session: id))
    }

    /// `POST /sessions`: the new session. A missing directory is `SessionError.directoryMissing`.
    public func spawn(_ req: SpawnRequest) throws -> SessionRecord {
        let r = try request("POST", "/sessions", body: req.controlAPIBody, timeout: max(timeout, 15))
        if r.status == 404, r.json?["actionRequired"] == "CREATE_DIRECTORY" {
            throw SessionError.directoryMissing(r.json?["directory"]?.string ?? req.directory)
        }
        return try record(expect(r, [201]))
    }

    public func stop(_ id: String) throws -> SessionRecord {
        try record(expect(request("DELETE", Self.sessionPath(id), timeout: max(timeout, 15)), [200], session: id))
    }

    public func send(_ id: String, text: String) throws {
        _ = try expect(request("POST", Self.sessionPath(id, "/messages"), body: ["text": .string(text)]), [202], session: id)
    }

    /// `POST /sessions/:id/permissions/:requestId`.
    public func answer(_ id: String, requestId: String, _ answer: PermissionAnswer) throws -> SessionRecord {
        let path = Self.sessionPath(id, "/permissions/" + HTTPCodec.percentEncode(requestId))
        let r = try request("POST", path, body: PermissionAnswerBody(answer).json)
        if r.status == 404, r.json?["error"]?.string?.contains("permission") == true {
            throw DaemonError.api(status: 404, message: r.errorMessage)
        }
        return try record(expect(r, [200], session: id))
    }

    public func stopDaemon(keepSessions: Bool) throws {
        _ = try expect(request("POST", "/stop", body: ["keepSessions": .bool(keepSessions)]), [202])
    }
}
