import FoundationEssentials
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

/// What `GET /status` reports beyond the sessions.
public struct DaemonStatusInfo: Sendable {
    public var machineId: String?
    public var server: ServerLinkStatus
    public init(machineId: String?, server: ServerLinkStatus) { self.machineId = machineId; self.server = server }
}

/// The routes of SPEC §4.2 with its check order: 403 (Host, or a browser: `Origin`,
/// `Sec-Fetch-Site: cross-site|same-site`), 401, 415, 413, 400 (body), 404/405, then
/// per-route field checks (400).
public final class ControlAPI: ControlRequestHandler, @unchecked Sendable {
    public let token: String
    public let sessions: SessionService
    public let profile: String
    public let serverUrl: String
    public let pid: Int32
    public let startedAtMs: Int64
    private let startedMono: Double
    private let lock = Lock()
    private var _port = 0
    private var _hosts: Set<String> = []
    private let statusInfo: @Sendable () async -> DaemonStatusInfo
    private let onStop: @Sendable (Bool) -> Void

    public init(token: String, sessions: SessionService, profile: String, serverUrl: String, pid: Int32 = getpid(),
                startedAtMs: Int64 = ISOTime.nowMs(),
                statusInfo: @escaping @Sendable () async -> DaemonStatusInfo,
                onStop: @escaping @Sendable (Bool) -> Void) {
        self.token = token
        self.sessions = sessions
        self.profile = profile
        self.serverUrl = serverUrl
        self.pid = pid
        self.startedAtMs = startedAtMs
        self.startedMono = MonotonicClock.now()
        self.statusInfo = statusInfo
        self.onStop = onStop
    }

    /// Set once the server is bound (the Host check needs the real port).
    public var port: Int {
        get { lock.lock(); defer { lock.unlock() }; return _port }
        set {
            lock.lock()
            _port = newValue
            _hosts = ["127.0.0.1:\(newValue)", "localhost:\(newValue)"]
            lock.unlock()
        }
    }

    public var uptimeMs: Int64 { Int64((MonotonicClock.now() - startedMono) * 1000) }

    // MARK: responses

    static func json(_ status: Int, _ body: JSON, headers: [(String, String)] = []) -> HTTPResponse {
        var h = HTTPHeaders(headers)
        h.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: h, body: body.bytes)
    }

    static func error(_ status: Int, _ message: String, extra: [String: JSON] = [:], headers: [(String, String)] = []) -> HTTPResponse {
        var o = extra
        o["error"] = .string(message)
        return json(status, .object(o), headers: headers)
    }

    // MARK: checks

    /// 403 / 401 / 415 in that order; nil when the request passes.
    func precheck(method: String, path: String, headers: HTTPHeaders) -> HTTPResponse? {
        lock.lock()
        let hosts = _hosts
        lock.unlock()
        let hostValues = headers.values("Host")
        guard hostValues.count == 1, hosts.contains(hostValues[0].lowercased()) else {
            return Self.error(403, "forbidden: the Host header must be 127.0.0.1:\(port) or localhost:\(port)")
        }
        // Browsers: a web page must never reach the control API, not even /health. Every
        // browser sends Origin on cross-origin requests and Sec-Fetch-Site on all of them;
        // our own clients send neither.
        let fetchSite = headers.values("Sec-Fetch-Site").map { $0.lowercased() }
        if !headers.values("Origin").isEmpty || fetchSite.contains("cross-site") || fetchSite.contains("same-site") {
            return Self.error(403, "forbidden: the control API does not answer browsers (Origin / Sec-Fetch-Site)")
        }
        if !(method == "GET" && normalize(path) == "/health") {
            let auth = headers["Authorization"] ?? ""
            guard auth.hasPrefix("Bearer "), ConstantTime.equal(String(auth.dropFirst(7)).trimmingCharacters(in: " "), token) else {
                return Self.error(401, "unauthorized: a valid Authorization: Bearer <controlToken> header is required")
            }
        }
        if Self.carriesBody(headers) {
            let ct = (headers["Content-Type"] ?? "").lowercased()
            let media = ct.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: " \t") } ?? ""
            guard media == "application/json" else {
                return Self.error(415, "unsupported media type: request bodies must be application/json")
            }
        }
        return nil
    }

    static func carriesBody(_ headers: HTTPHeaders) -> Bool {
        if headers["Transfer-Encoding"] != nil { return true }
        if let cl = headers["Content-Length"], let n = Int(cl.trimmingCharacters(in: " ")), n > 0 { return true }
        return false
    }

    private func normalize(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    public func parseErrorResponse(_ error: HTTPParseError, head: (startLine: [Substring], headers: HTTPHeaders)?) -> HTTPResponse {
        switch error {
        case .headersTooLarge:
            return Self.error(431, "request header fields too large (limit 16 KiB)")
        case .bodyTooLarge:
            if let head, head.startLine.count >= 2 {
                let target = String(head.startLine[1])
                let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
                if let r = precheck(method: String(head.startLine[0]), path: path, headers: head.headers) { return r }
            }
            return Self.error(413, "request body too large (limit 1 MiB)")
        case .malformed(let why):
            return Self.error(400, "bad request: \(why)")
        case .unsupportedTransferEncoding:
            return Self.error(400, "bad request: unsupported Transfer-Encoding")
        }
    }

    // MARK: routing

    enum Route {
        case health, status, sessions, session(String), messages(String), permission(String, String), stop
    }

    func route(_ path: String) -> Route? {
        let p = normalize(path)
        switch p {
        case "/health": return .health
        case "/status": return .status
        case "/sessions": return .sessions
        case "/stop": return .stop
        default: break
        }
        let parts = p.split(separator: "/", omittingEmptySubsequences: false)
        // ["", "sessions", id], ["", "sessions", id, "messages"], ["", "sessions", id, "permissions", rid]
        guard parts.count >= 3, parts[0].isEmpty, parts[1] == "sessions", !parts[2].isEmpty else { return nil }
        let id = HTTPCodec.percentDecode(String(parts[2]))
        if parts.count == 3 { return .session(id) }
        if parts.count == 4 && parts[3] == "messages" { return .messages(id) }
        if parts.count == 5 && parts[3] == "permissions" && !parts[4].isEmpty {
            return .permission(id, HTTPCodec.percentDecode(String(parts[4])))
        }
        return nil
    }

    static func allowed(_ r: Route) -> [String] {
        switch r {
        case .health, .status: return ["GET"]
        case .sessions: return ["GET", "POST"]
        case .session: return ["GET", "DELETE"]
        case .messages, .permission, .stop: return ["POST"]
        }
    }

    /// Everything before the route handler: checks, body parse, routing. Either a final
    /// response or the route + parsed body.
    enum Checked {
        case respond(HTTPResponse)
        case go(Route, JSON?)
    }

    func check(_ req: HTTPRequest) -> Checked {
        let path = req.path
        if let r = precheck(method: req.method, path: path, headers: req.headers) { return .respond(r) }
        if req.body.count > 1 << 20 { return .respond(Self.error(413, "request body too large (limit 1 MiB)")) }
        var body: JSON?
        if !req.body.isEmpty {
            do { body = try JSON.parse(req.body) } catch {
                return .respond(Self.error(400, "invalid JSON body: \(error)"))
            }
        }
        guard let route = route(path) else { return .respond(Self.error(404, "not found: \(req.method) \(path)")) }
        let allowed = Self.allowed(route)
        guard allowed.contains(req.method) else {
            return .respond(Self.error(405, "method \(req.method) not allowed on \(normalize(path))", headers: [("Allow", allowed.joined(separator: ", "))]))
        }
        return .go(route, body)
    }

    public func immediate(_ req: HTTPRequest) -> HTTPResponse? {
        switch check(req) {
        case .respond(let r): return r
        case .go(.health, _):
            return Self.json(200, DaemonHealth(pid: pid, version: HappyVersion.current, uptimeMs: uptimeMs).json)
        case .go(.stop, let body):
            var keep = false
            if let body {
                guard case .object(let o) = body else { return Self.error(400, "the body must be a JSON object") }
                if let k = o["keepSessions"], !k.isNull {
                    guard let b = k.bool else { return Self.error(400, "keepSessions must be a boolean") }
                    keep = b
                }
            }
            onStop(keep)
            return Self.json(202, ["status": "stopping"])
        default:
            return nil
        }
    }

    public func handle(_ req: HTTPRequest) async -> HTTPResponse {
        guard case .go(let route, let body) = check(req) else {
            if case .respond(let r) = check(req) { return r }
            return Self.error(500, "internal error")
        }
        switch route {
        case .health, .stop:
            return immediate(req) ?? Self.error(500, "internal error")
        case .status:
            let info = await statusInfo()
            let n = await sessions.liveCount()
            let st = DaemonStatus(pid: pid, httpPort: port, version: HappyVersion.current, profile: profile,
                                  machineId: info.machineId, serverUrl: serverUrl, server: info.server,
                                  startedAt: startedAtMs, sessions: n)
            return Self.json(200, st.json)
        case .sessions:
            if req.method == "GET" {
                let all = ["true", "1", "yes"].contains((req.query["all"] ?? "").lowercased())
                let list = await sessions.list(includeFinished: all)
                return Self.json(200, ["sessions": .array(list.map(\.json))])
            }
            return await spawn(body)
        case .session(let id):
            if req.method == "GET" {
                do { return Self.json(200, ["session": try await sessions.resolve(id).json]) } catch {
                    return Self.sessionErrorResponse(error)
                }
            }
            do {
                let s = try await sessions.stop(id, reason: .requested)
                return Self.json(200, ["session": s.json])
            } catch SessionError.notRunning(let sid) {
                if let s = await sessions.get(sid) { return Self.json(200, ["session": s.json]) }
                return Self.error(404, SessionError.notFound(sid).what)
            } catch {
                return Self.sessionErrorResponse(error)
            }
        case .permission(let id, let requestId):
            return await answerPermission(id, requestId, body)
        case .messages(let id):
            guard case .object(let o)? = body else {
                return Self.error(400, body == nil ? "a JSON body {\"text\": string} is required" : "the body must be a JSON object")
            }
            guard let text = o["text"]?.string else { return Self.error(400, "text is required and must be a string") }
            do {
                try await sessions.send(id, text: text)
                return Self.json(202, ["status": "sent"])
            } catch {
                return Self.sessionErrorResponse(error)
            }
        }
    }

    private func spawn(_ body: JSON?) async -> HTTPResponse {
        let req: SpawnRequest
        do {
            req = try SpawnRequest.parse(body, origin: .controlAPI, home: Paths.userHome(ProcessInfo.processInfo.environment))
        } catch {
            return Self.error(400, error.what)
        }
        do {
            let s = try await sessions.spawn(req)
            Log.info("control", "session \(s.id) spawned (pid \(s.pid)) in \(s.directory) by \(s.startedBy)")
            return Self.json(201, ["session": s.json])
        } catch {
            return Self.sessionErrorResponse(error)
        }
    }

    /// `POST /sessions/:id/permissions/:requestId {approved, reason?, mode?, allowTools?}` (SPEC §7.7).
    private func answerPermission(_ id: String, _ requestId: String, _ body: JSON?) async -> HTTPResponse {
        switch PermissionAnswerBody.parse(body) {
        case .failure(let e):
            return Self.error(400, e.what)
        case .success(let b):
            do {
                let s = try await sessions.answerPermission(id, requestId: requestId, b.answer)
                return Self.json(200, ["session": s.json])
            } catch {
                return Self.sessionErrorResponse(error)
            }
        }
    }

    static func sessionErrorResponse(_ error: Error) -> HTTPResponse {
        guard let e = error as? SessionError else {
            let msg = errorWhat(error)
            return Self.error(500, msg)
        }
        switch e {
        case .directoryMissing(let d):
            return Self.error(404, e.what, extra: ["directory": .string(d), "actionRequired": "CREATE_DIRECTORY"])
        case .limitReached: return Self.error(429, e.what)
        case .unresolvedVariable, .cannotCreateDirectory: return Self.error(400, e.what)
        case .spawnFailed: return Self.error(500, e.what)
        case .notFound, .noSuchPermission: return Self.error(404, e.what)
        case .notRunning: return Self.error(409, e.what)
        case .ambiguous: return Self.error(400, e.what)
        case .cannotPersist: return Self.error(500, e.what)
        }
    }
}
