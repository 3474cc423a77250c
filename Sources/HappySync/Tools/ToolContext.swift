import HappyCore
import HappyConfig

/// Bounds of the phone's file and shell tools.
public struct ToolLimits: Sendable, Equatable {
    /// Bytes of stdout and of stderr kept per run (the rest is read and dropped).
    public var outputCap: Int = 1 << 20
    /// `bash` without `timeout`, milliseconds.
    public var bashDefaultTimeoutMs: Double = 30_000
    /// `ripgrep` / `difftastic`, seconds.
    public var externalToolTimeout: Double = 30
    /// Seconds between SIGTERM and SIGKILL to the process group after a timeout.
    public var killGrace: Double = 1
    /// Seconds the pipes are still read after the direct child exited (a background
    /// grandchild holding them does not hold the answer).
    public var drainAfterExit: Double = 0.2
    /// `readFile` / `writeFile` size limit, bytes.
    public var maxFileBytes: Int = 16 << 20
    /// Entries of one `listDirectory` answer.
    public var maxListEntries: Int = 10_000
    /// Nodes of one `getDirectoryTree` answer (the root included).
    public var maxTreeEntries: Int = 10_000
    /// Levels of one `getDirectoryTree` answer (a larger `maxDepth` is clamped).
    public var maxTreeDepth: Int = 100

    public init() {}
}

/// Where a tool call comes from and what it may touch.
public struct ToolContext: Sendable {
    public enum Scope: Sendable, Equatable {
        /// `<machineId>:<method>`: paths inside `rpc.roots`.
        case machine
        /// `<sessionId>:<method>`: paths inside the session directory **and** `rpc.roots`.
        case session(id: String, directory: String)
    }

    public var scope: Scope
    /// `rpc.roots` as configured (a leading `~` is expanded with `environment["HOME"]`).
    public var roots: [String]
    /// The environment of child processes (`bash`, `rg`, `difft`); its `PATH` finds `rg`
    /// and `difft`, its `HOME` expands `~`.
    public var environment: [String: String]
    public var limits: ToolLimits

    public init(scope: Scope, roots: [String], environment: [String: String], limits: ToolLimits = ToolLimits()) {
        self.scope = scope
        self.roots = roots
        self.environment = environment
        self.limits = limits
    }

    /// The machine scope of a profile.
    public static func machine(config: HappyConfig, environment: [String: String],
                               limits: ToolLimits = ToolLimits()) -> ToolContext {
        ToolContext(scope: .machine, roots: config.rpc.roots, environment: environment, limits: limits)
    }

    /// The scope of one session (`directory`: the session's working directory).
    public static func session(id: String, directory: String, config: HappyConfig, environment: [String: String],
                               limits: ToolLimits = ToolLimits()) -> ToolContext {
        ToolContext(scope: .session(id: id, directory: directory), roots: config.rpc.roots,
                    environment: environment, limits: limits)
    }

    /// For the audit line.
    public var auditScope: AuditScope {
        if case .session = scope { return .session }
        return .machine
    }

    public var sessionId: String? {
        if case .session(let id, _) = scope { return id }
        return nil
    }

    /// The roots and session directory resolved now (symlinks followed).
    public func confinement() -> PathConfinement { PathConfinement(self) }
}
