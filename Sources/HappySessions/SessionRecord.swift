import HappyCore

public enum SessionStatus: String, Sendable, Equatable, Codable {
    case starting, running, exited, failed, stopped
    public var isLive: Bool { self == .starting || self == .running }
}

public enum StopReason: String, Sendable, Equatable, Codable {
    case requested, idle
    case daemonShutdown = "daemon-shutdown"
}

/// A session's link with the Happy Server (SPEC §7.7): `off` (local only), `pending`
/// (not created on the server yet, or not reachable), `synced`, `failed` (the server
/// refused it for good).
public enum SyncState: String, Sendable, Equatable {
    case off, pending, synced, failed
}

/// SPEC §4.2 + §7.7 `Session`, plus what the daemon keeps about it on disk. Times are
/// epoch milliseconds. One type for the control API's answer (`json`), the client
/// (`init?(json:)`) and `sessions/ID/session.json` (`persistedJSON`).
public struct SessionRecord: Sendable, Equatable {
    public var id: String
    public var pid: Int32
    public var directory: String
    public var status: SessionStatus
    /// "cli", "mobile-app", ...
    public var startedBy: String
    public var startedAt: Int64
    public var endedAt: Int64?
    /// nil while running; for an ended session nil means "unknown" (adopted session).
    public var exitCode: Int32?
    public var claudeSessionId: String?
    public var model: String?
    public var lastEventType: String?
    public var lastEventAt: Int64?
    public var numTurns: Int?
    public var costUsd: Double?
    public var stopReason: StopReason?
    public var stdoutPath: String
    public var stderrPath: String
    /// The server session this one is mirrored to (SPEC §7), and the link's state.
    public var serverSessionId: String?
    public var sync: SyncState = .off
    public var permissionMode: PermissionMode = .default
    /// claude is working on a prompt (from the prompt written until its `result`).
    public var thinking: Bool = false
    public var pendingPermissions: [PermissionRequest] = []

    // Persisted only (not part of the wire shape):
    /// Field 22 of /proc/PID/stat at spawn (for adoption after a daemon restart).
    public var processStartTime: UInt64?
    /// `is_error` of the last `result` line.
    public var isError: Bool?
    /// Output lines that were not valid stream-json objects.
    public var malformedLines: Int = 0
    /// Rules added by "always" answers (`Bash(cmd)`, tool names).
    public var allowTools: [String] = []
    /// Output positions across rotations: `stdout.jsonl` starts at stream offset
    /// `outputBase`, `stdout.1.jsonl` (when there is one) at `previousBase`. A line's
    /// stream offset never changes, so it can name the line for ever (message localIds).
    public var outputBase: Int64 = 0
    public var previousBase: Int64?
    /// The claude session to resume (`--resume`), when the spawn asked for one.
    public var resumedFrom: String?
    /// The local session whose server session this one continues (`resume-happy-session`).
    public var continues: String?

    public init(id: String, pid: Int32, directory: String, status: SessionStatus, startedBy: String, startedAt: Int64,
                stdoutPath: String, stderrPath: String) {
        self.id = id
        self.pid = pid
        self.directory = directory
        self.status = status
        self.startedBy = startedBy
        self.startedAt = startedAt
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    /// The wire shape (`exitCode` is present, possibly null, once the session ended;
    /// `serverSessionId` is always present, null when there is none).
    public var json: JSON {
        var o: [String: JSON] = [
            "id": .string(id), "pid": .int(Int(pid)), "directory": .string(directory),
            "status": .string(status.rawValue), "startedBy": .string(startedBy),
            "startedAt": .number(Double(startedAt)), "stdoutPath": .string(stdoutPath), "stderrPath": .string(stderrPath),
            "serverSessionId": .optional(serverSessionId), "sync": .string(sync.rawValue),
            "permissionMode": .string(permissionMode.rawValue), "thinking": .bool(thinking),
            "pendingPermissions": .array(pendingPermissions.map(\.json)),
        ]
        if let endedAt { o["endedAt"] = .number(Double(endedAt)) }
        if !status.isLive { o["exitCode"] = exitCode.map { .int(Int($0)) } ?? .null }
        if let claudeSessionId { o["claudeSessionId"] = .string(claudeSessionId) }
        if let model { o["model"] = .string(model) }
        if let lastEventType { o["lastEventType"] = .string(lastEventType) }
        if let lastEventAt { o["lastEventAt"] = .number(Double(lastEventAt)) }
        if let numTurns { o["numTurns"] = .int(numTurns) }
        if let costUsd { o["costUsd"] = .number(costUsd) }
        if let stopReason { o["stopReason"] = .string(stopReason.rawValue) }
        return .object(o)
    }

    /// `sessions/ID/session.json`: the wire shape plus what the daemon needs after a restart.
    public var persistedJSON: JSON {
        guard case .object(var o) = json else { return json }
        o["exitCode"] = exitCode.map { .int(Int($0)) } ?? .null
        if let processStartTime { o["processStartTime"] = .number(Double(processStartTime)) }
        if let isError { o["isError"] = .bool(isError) }
        o["malformedLines"] = .int(malformedLines)
        o["pendingPermissions"] = .array(pendingPermissions.map(\.persistedJSON))
        if !allowTools.isEmpty { o["allowTools"] = .array(allowTools.map { .string($0) }) }
        o["outputBase"] = .number(Double(outputBase))
        if let previousBase { o["previousBase"] = .number(Double(previousBase)) }
        if let resumedFrom { o["resumedFrom"] = .string(resumedFrom) }
        if let continues { o["continues"] = .string(continues) }
        return .object(o)
    }

    /// Reads the wire shape or the persisted one; nil when a required field is missing or
    /// has the wrong type. Fields added later default (a record of an older version loads).
    public init?(json j: JSON) {
        guard let id = j["id"]?.string, let pid = j["pid"]?.int, let directory = j["directory"]?.string,
              let statusRaw = j["status"]?.string, let status = SessionStatus(rawValue: statusRaw),
              let startedAt = j["startedAt"]?.int, let stdoutPath = j["stdoutPath"]?.string,
              let stderrPath = j["stderrPath"]?.string, pid >= 0, pid <= Int(Int32.max)
        else { return nil }
        self.init(id: id, pid: Int32(pid), directory: directory, status: status,
                  startedBy: j["startedBy"]?.string ?? "cli", startedAt: Int64(startedAt),
                  stdoutPath: stdoutPath, stderrPath: stderrPath)
        endedAt = j["endedAt"]?.int.map { Int64($0) }
        exitCode = j["exitCode"]?.int.map { Int32(truncatingIfNeeded: $0) }
        claudeSessionId = j["claudeSessionId"]?.string
        model = j["model"]?.string
        lastEventType = j["lastEventType"]?.string
        lastEventAt = j["lastEventAt"]?.int.map { Int64($0) }
        numTurns = j["numTurns"]?.int
        costUsd = j["costUsd"]?.double
        stopReason = j["stopReason"]?.string.flatMap { StopReason(rawValue: $0) }
        serverSessionId = j["serverSessionId"]?.string
        sync = j["sync"]?.string.flatMap { SyncState(rawValue: $0) } ?? .off
        permissionMode = j["permissionMode"]?.string.flatMap { PermissionMode(rawValue: $0) } ?? .default
        thinking = j["thinking"]?.bool ?? false
        pendingPermissions = (j["pendingPermissions"]?.array ?? []).compactMap { p in
            PermissionRequest(persisted: p) ?? {
                guard let id = p["id"]?.string, let tool = p["tool"]?.string, let at = p["createdAt"]?.int else { return nil }
                return PermissionRequest(id: id, requestId: "", tool: tool, arguments: p["arguments"] ?? .object([:]),
                                         createdAt: Int64(at))
            }()
        }
        processStartTime = j["processStartTime"]?.double.flatMap { $0 >= 0 && $0 < 1.8e19 ? UInt64($0) : nil }
        isError = j["isError"]?.bool
        malformedLines = j["malformedLines"]?.int ?? 0
        allowTools = j["allowTools"]?.array?.compactMap(\.string) ?? []
        outputBase = j["outputBase"]?.int.map { Int64($0) } ?? 0
        previousBase = j["previousBase"]?.int.map { Int64($0) }
        resumedFrom = j["resumedFrom"]?.string
        continues = j["continues"]?.string
    }
}
