import HappyCore
import HappyConfig
/// The seam between the daemon (control API, RPCs) and the session manager.
/// `SessionManager` (Sessions module) implements it; daemon tests may fake it.

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
    /// A session id prefix that matches more than one session → 400.
    case ambiguous(prefix: String, matches: [String])
    /// The record could not be written: the session is not started (SPEC §2.2) → 500.
    case cannotPersist(path: String, reason: String)
    /// No pending permission request with that id (or none at all) → 404.
    case noSuchPermission(session: String, request: String?)

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
        case .ambiguous(let p, let m): return "session id '\(p)' matches \(m.count) sessions (\(m.prefix(4).joined(separator: ", ")))"
        case .cannotPersist(let path, let r): return "cannot write \(path): \(r); the session was not started"
        case .noSuchPermission(let s, let r):
            return r.map { "session \(s) has no pending permission request \($0)" } ?? "session \(s) has no pending permission request"
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
        case .ambiguous: return "give more characters of the id"
        case .cannotPersist: return "free disk space or fix the permissions of the home folder"
        case .noSuchPermission: return "see `happy session list` (a ! marks sessions waiting on a permission)"
        }
    }
}

/// What the session manager tells its observer (the server sync), in order, from the
/// manager's own executor: the handler must only hand the event on (it must not block).
public enum SessionEvent: Sendable {
    /// A session this daemon spawned (`started`) or re-adopted at start (`adopted`).
    case started(SessionRecord)
    case adopted(SessionRecord)
    /// stdout was read up to this stream offset (see `SessionRecord.outputBase`).
    case output(id: String, streamEnd: Int64)
    /// claude's `system/init` line (`session_id`, `model`, `tools`, `slash_commands`, `mcp_servers`).
    case initialized(id: String, info: JSON)
    /// A user message was written to claude's stdin; `local` when it came from this machine
    /// (`session new --prompt`, `session send`, the control API), not from the app.
    /// `streamOffset`: how far stdout had been read when it was written.
    case promptSent(id: String, text: String, local: Bool, streamOffset: Int64)
    case thinking(id: String, Bool)
    case permissionRequested(id: String, PermissionRequest)
    case permissionResolved(id: String, CompletedPermission)
    case modeChanged(id: String, PermissionMode)
    /// The user interrupted the turn (the app's abort): claude was told to stop.
    case aborted(id: String, streamOffset: Int64)
    /// The session ended (exit, stop, idle, kill): the final record.
    case ended(SessionRecord)
    /// The daemon stops watching a session that keeps running (shutdown with keepSessions).
    case detached(id: String)
}

/// A piece of a session's output stream (`readStream`). `start` > the offset asked for
/// when the bytes between were rotated away before anyone read them; `sealed`: the bytes
/// end where a rotated file ends (a line cut there is never completed).
public struct OutputChunk: Sendable, Equatable {
    public let start: Int64
    public let bytes: [UInt8]
    public let sealed: Bool
    public init(start: Int64, bytes: [UInt8], sealed: Bool) {
        self.start = start
        self.bytes = bytes
        self.sealed = sealed
    }
}

public protocol SessionService: Sendable {
    /// Loads persisted records, re-adopts live sessions, starts watching output.
    func start() async
    func spawn(_ request: SpawnRequest) async throws -> SessionRecord
    func list(includeFinished: Bool) async -> [SessionRecord]
    /// By exact local id.
    func get(_ id: String) async -> SessionRecord?
    /// By local id, server session id, or a unique prefix (≥ 6 characters) of either
    /// (SPEC §7.7). Throws `notFound` / `ambiguous`.
    func resolve(_ idOrPrefix: String) async throws -> SessionRecord
    /// SIGTERM to the process group, SIGKILL after 5 s; returns the final record.
    func stop(_ id: String, reason: StopReason) async throws -> SessionRecord
    /// Writes a stream-json user message to the session's stdin FIFO. `local`: typed on this
    /// machine (mirrored to the app), not received from the app.
    func send(_ id: String, text: String, local: Bool) async throws
    /// Answers a pending permission request (`requestId` nil: the oldest one).
    func answerPermission(_ id: String, requestId: String?, _ answer: PermissionAnswer) async throws -> SessionRecord
    /// Interrupts the current turn (`control_request interrupt`), cancels pending requests.
    func interrupt(_ id: String) async throws
    /// Switches the permission mode of a running session (`set_permission_mode`).
    func setPermissionMode(_ id: String, _ mode: PermissionMode) async throws
    /// Records the session's server link (SPEC §7.7 `serverSessionId`, `sync`).
    func setSync(_ id: String, serverSessionId: String?, state: SyncState) async
    /// A piece of the session's stdout stream from stream offset `from` (SPEC §7.4: the
    /// output file is the sync's outbox); nil for an unknown session.
    func readStream(_ id: String, from: Int64, limit: Int) async -> OutputChunk?
    /// Installs the observer of `SessionEvent`s (nil removes it). With `mirroring`, the
    /// observer mirrors sessions to the server: new sessions start with sync `pending`.
    func observe(_ handler: (@Sendable (SessionEvent) -> Void)?, mirroring: Bool) async
    /// Daemon shutdown: stop every live session (unless keepSessions), persist records.
    func shutdown(keepSessions: Bool) async
    /// Health check: reap/prune sessions whose process is gone.
    func prune() async
    func liveCount() async -> Int
}

extension SessionService {
    /// A message typed on this machine.
    public func send(_ id: String, text: String) async throws { try await send(id, text: text, local: true) }
}
