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
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
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

    // MARK: typed calls

    func expect(_ r: ControlResponse, _ codes: Set<Int>) throws -> JSON {
        guard codes.contains(r.status) else { throw DaemonError.api(status: r.status, message: r.errorMessage) }
        return r.json ?? .object([:])
    }

    public func health() throws -> JSON { try expect(request("GET", "/health"), [200]) }
    public func status() throws -> JSON { try expect(request("GET", "/status"), [200]) }
    public func listSessions(all: Bool) throws -> [JSON] {
        try expect(request("GET", all ? "/sessions?all=true" : "/sessions"), [200])["sessions"]?.array ?? []
    }
    public func session(_ id: String) throws -> JSON {
        try expect(request("GET", "/sessions/" + HTTPCodec.percentEncode(id)), [200])["session"] ?? .null
    }
    /// Raw response so the caller can show `CREATE_DIRECTORY` / 429 answers its own way.
    public func spawnSession(directory: String, prompt: String?, createDirectory: Bool, env: [String: String],
                             startedBy: String = "cli") throws -> ControlResponse {
        var o: [String: JSON] = ["directory": .string(directory), "createDirectory": .bool(createDirectory), "startedBy": .string(startedBy)]
        if let prompt { o["prompt"] = .string(prompt) }
        if !env.isEmpty { o["environmentVariables"] = .object(env.mapValues { .string($0) }) }
        return try request("POST", "/sessions", body: .object(o), timeout: max(timeout, 15))
    }
    public func stopSession(_ id: String) throws -> JSON {
        try expect(request("DELETE", "/sessions/" + HTTPCodec.percentEncode(id), timeout: max(timeout, 10)), [200])["session"] ?? .null
    }
    public func sendMessage(_ id: String, text: String) throws {
        _ = try expect(request("POST", "/sessions/" + HTTPCodec.percentEncode(id) + "/messages", body: ["text": .string(text)]), [202])
    }
    public func stopDaemon(keepSessions: Bool) throws {
        _ = try expect(request("POST", "/stop", body: ["keepSessions": .bool(keepSessions)]), [202])
    }
}
