import HappyCore
import HappyConfig
/// The seam between the daemon (control API, RPCs) and the session manager.
/// `SessionManager` (Sessions module) implements it; daemon tests may fake it.

public enum SessionStatus: String, Sendable, Equatable, Codable {
    case starting, running, exited, failed, stopped
    public var isLive: Bool { self == .starting || self == .running }
}

public enum StopReason: String, Sendable, Equatable, Codable {
    case requested, idle
    case daemonShutdown = "daemon-shutdown"
}

/// SPEC §4.2 `Session`. Times are epoch milliseconds.
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
    /// Field 22 of /proc/PID/stat at spawn (for adoption after a daemon restart).
    public var processStartTime: UInt64?
    /// `is_error` of the last `result` line (persisted; not part of the wire shape).
    public var isError: Bool?
    /// Output lines that were not valid stream-json objects (persisted; not on the wire).
    public var malformedLines: Int = 0

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

    /// The wire shape of SPEC §4.2 (`exitCode` is present, possibly null, once the session ended).
    public var json: JSON {
        var o: [String: JSON] = [
            "id": .string(id), "pid": .int(Int(pid)), "directory": .string(directory),
            "status": .string(status.rawValue), "startedBy": .string(startedBy),
            "startedAt": .number(Double(startedAt)), "stdoutPath": .string(stdoutPath), "stderrPath": .string(stderrPath),
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
}

public struct SpawnRequest: Sendable, Equatable {
    public var directory: String
    public var prompt: String?
    public var createDirectory: Bool
    public var environmentVariables: [String: String]
    public var startedBy: String

    public init(directory: String, prompt: String? = nil, createDirectory: Bool = false,
                environmentVariables: [String: String] = [:], startedBy: String = "cli") {
        self.directory = directory
        self.prompt = prompt
        self.createDirectory = createDirectory
        self.environmentVariables = environmentVariables
        self.startedBy = startedBy
    }
}

public enum SessionError: HappyError, Equatable {
    /// → control API 404 `{"error","directory","actionRequired":"CREATE_DIRECTORY"}`
    case directoryMissing(String)
    /// → 429; message `session limit reached (N, sessions.max)`
    case limitReached(Int)
    /// `${VAR}` that cannot be resolved → 400
    case unresolvedVariable(String)
    case cannotCreateDirectory(path: String, reason: String)
    case spawnFailed(String)
    /// → 404
    case notFound(String)
    /// → 409
    case notRunning(String)

    public var what: String {
        switch self {
        case .directoryMissing(let d): return "directory \(d) does not exist"
        case .limitReached(let n): return "session limit reached (\(n), sessions.max)"
        case .unresolvedVariable(let v): return "environment variable \(v) is not set in the daemon's environment"
        case .cannotCreateDirectory(let p, let r): return "cannot create directory \(p): \(r)"
        // A reason that carries its own fix ("… — …") is one sentence on its own.
        case .spawnFailed(let r): return r.contains(" — ") ? r : "failed to spawn session: \(r)"
        case .notFound(let id): return "session \(id) not found"
        case .notRunning(let id): return "session \(id) is not running"
        }
    }
    public var hint: String? {
        switch self {
        case .directoryMissing: return "create it, or pass --create-dir"
        case .limitReached: return "stop a session or raise sessions.max in the profile"
        case .unresolvedVariable: return "set it before starting the daemon or use ${VAR:-default}"
        case .cannotCreateDirectory: return "check the path and its permissions"
        case .spawnFailed(let r): return r.contains(" — ") ? nil : "check claude.command in the profile (happy doctor)"
        case .notFound: return "list sessions with `happy session list --all`"
        case .notRunning: return nil
        }
    }
}

public protocol SessionService: Sendable {
    /// Loads persisted records, re-adopts live sessions, starts watching output.
    func start() async
    func spawn(_ request: SpawnRequest) async throws -> SessionRecord
    func list(includeFinished: Bool) async -> [SessionRecord]
    func get(_ id: String) async -> SessionRecord?
    /// SIGTERM to the process group, SIGKILL after 5 s; returns the final record.
    func stop(_ id: String, reason: StopReason) async throws -> SessionRecord
    /// Writes a stream-json user message to the session's stdin FIFO.
    func send(_ id: String, text: String) async throws
    /// Daemon shutdown: stop every live session (unless keepSessions), persist records.
    func shutdown(keepSessions: Bool) async
    /// Health check: reap/prune sessions whose process is gone.
    func prune() async
    func liveCount() async -> Int
}
