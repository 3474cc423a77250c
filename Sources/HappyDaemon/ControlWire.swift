import HappyCore
import HappySessions
import HappySync

/// `GET /health` (SPEC §4.2).
public struct DaemonHealth: Sendable, Equatable {
    public var pid: Int32
    public var version: String
    public var uptimeMs: Int64

    public init(pid: Int32, version: String, uptimeMs: Int64) {
        self.pid = pid
        self.version = version
        self.uptimeMs = uptimeMs
    }

    public var json: JSON {
        ["status": "ok", "pid": .int(Int(pid)), "version": .string(version), "uptimeMs": .number(Double(uptimeMs))]
    }

    public init?(json j: JSON) {
        guard j["status"]?.string == "ok", let pid = j["pid"]?.int, let v = j["version"]?.string else { return nil }
        self.init(pid: Int32(truncatingIfNeeded: pid), version: v, uptimeMs: Int64(j["uptimeMs"]?.int ?? 0))
    }
}

/// `GET /status` (SPEC §4.2): one type for the control API's answer and its client.
public struct DaemonStatus: Sendable, Equatable {
    public var pid: Int32
    public var httpPort: Int
    public var version: String
    public var profile: String
    public var machineId: String?
    public var serverUrl: String
    public var server: ServerLinkStatus
    /// Epoch ms.
    public var startedAt: Int64
    /// Live sessions.
    public var sessions: Int

    public init(pid: Int32, httpPort: Int, version: String, profile: String, machineId: String?, serverUrl: String,
                server: ServerLinkStatus, startedAt: Int64, sessions: Int) {
        self.pid = pid
        self.httpPort = httpPort
        self.version = version
        self.profile = profile
        self.machineId = machineId
        self.serverUrl = serverUrl
        self.server = server
        self.startedAt = startedAt
        self.sessions = sessions
    }

    /// The keys of the wire shape, in the order `daemon status --json` documents them.
    public static let keys = ["pid", "httpPort", "version", "profile", "machineId", "serverUrl", "server", "startedAt", "sessions"]

    public var json: JSON {
        ["pid": .int(Int(pid)), "httpPort": .int(httpPort), "version": .string(version), "profile": .string(profile),
         "machineId": .optional(machineId), "serverUrl": .string(serverUrl), "server": .string(server.rawValue),
         "startedAt": .number(Double(startedAt)), "sessions": .int(sessions)]
    }

    public init?(json j: JSON) {
        guard let pid = j["pid"]?.int, let port = j["httpPort"]?.int, let v = j["version"]?.string,
              let profile = j["profile"]?.string, let url = j["serverUrl"]?.string,
              let server = j["server"]?.string.flatMap(ServerLinkStatus.init(rawValue:)),
              let started = j["startedAt"]?.int, let n = j["sessions"]?.int else { return nil }
        self.init(pid: Int32(truncatingIfNeeded: pid), httpPort: port, version: v, profile: profile,
                  machineId: j["machineId"]?.string, serverUrl: url, server: server, startedAt: Int64(started), sessions: n)
    }
}

/// `POST /sessions/:id/permissions/:requestId` body (SPEC §7.7).
public struct PermissionAnswerBody: Sendable, Equatable {
    public var answer: PermissionAnswer

    public init(_ answer: PermissionAnswer) { self.answer = answer }

    public var json: JSON {
        var o: [String: JSON] = ["approved": .bool(answer.approved)]
        if let r = answer.reason { o["reason"] = .string(r) }
        if let m = answer.mode { o["mode"] = .string(m.rawValue) }
        if !answer.allowTools.isEmpty { o["allowTools"] = .array(answer.allowTools.map { .string($0) }) }
        return .object(o)
    }

    /// Parses a body; the error text is the 400 answer.
    public static func parse(_ body: JSON?) -> Result<PermissionAnswerBody, SpawnRequestError> {
        guard case .object(let o)? = body else {
            return .failure(SpawnRequestError(body == nil ? "a JSON body {\"approved\": bool} is required" : "the body must be a JSON object"))
        }
        guard let approved = o["approved"]?.bool else { return .failure(SpawnRequestError("approved is required and must be a boolean")) }
        var answer = PermissionAnswer(approved: approved)
        if let v = o["reason"], !v.isNull {
            guard let r = v.string else { return .failure(SpawnRequestError("reason must be a string")) }
            answer.reason = r
        }
        if let v = o["mode"], !v.isNull {
            guard let m = v.string.flatMap(PermissionMode.init(appValue:)) else {
                return .failure(SpawnRequestError("mode must be one of \(PermissionMode.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            answer.mode = m
        }
        if let v = o["allowTools"], !v.isNull {
            guard let a = v.array, a.allSatisfy({ $0.string != nil }) else {
                return .failure(SpawnRequestError("allowTools must be a list of strings"))
            }
            answer.allowTools = a.compactMap(\.string)
        }
        return .success(PermissionAnswerBody(answer))
    }
}
