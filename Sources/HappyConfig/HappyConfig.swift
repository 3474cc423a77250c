import HappyCore
/// The fully resolved configuration every command and the daemon run with.
/// Produced by the profile/config loader (flag > env > profile > default).
public struct HappyConfig: Sendable, Equatable {
    public struct Daemon: Sendable, Equatable {
        public var httpPort: Int = 64875
        public var heartbeatSeconds: Double = 20
        public var healthCheckSeconds: Double = 60
        public var logMaxMiB: Double = 10
        public var logFiles: Int = 10
        public init() {}
    }
    public struct Sessions: Sendable, Equatable {
        public var max: Int = 32
        public var idleTimeoutMinutes: Double = 0
        public var maxOutputMiB: Double = 100
        /// Mirror sessions to the server (SPEC §7); false = local only.
        public var sync: Bool = true
        /// The mode a session starts in when its spawn does not name one (SPEC §7.6):
        /// `default`, `acceptEdits`, `bypassPermissions` or `plan`.
        public var permissionMode: String = "default"
        public init() {}
    }
    /// What the phone's RPCs may touch (SPEC §4.4).
    public struct RPC: Sendable, Equatable {
        /// Folders the bash/file RPCs may use; a leading `~` is expanded to `$HOME` where
        /// they are applied. Default: the user's home folder.
        public var roots: [String] = ["~"]
        /// Append one line per phone-originated action to `logs/rpc-audit.jsonl`.
        public var audit: Bool = true
        public init() {}
    }
    public struct Claude: Sendable, Equatable {
        public var command: String = "claude"
        public var args: [String] = []
        public init() {}
    }

    /// Name of the selected profile (`default`, `dev`, `local`, or a user file).
    public var profile: String = "default"
    public var serverUrl: String = "https://api.cluster-fluster.com"
    public var webappUrl: String = "https://app.happy.engineering"
    /// Absolute path, `~` already expanded.
    public var homeDir: String
    public var daemon = Daemon()
    public var sessions = Sessions()
    public var rpc = RPC()
    public var claude = Claude()
    /// Extra environment for spawned sessions, values still unexpanded (`${VAR}` is
    /// expanded at spawn time from the daemon's environment).
    public var env: [String: String] = [:]

    public init(homeDir: String) { self.homeDir = homeDir }

    public var home: HomeLayout { HomeLayout(root: homeDir) }
}

/// Paths under the home directory (SPEC §2.2). One place names every file.
public struct HomeLayout: Sendable, Equatable {
    public let root: String
    public init(root: String) { self.root = root }

    public var settings: String { root + "/settings.json" }
    public var accessKey: String { root + "/access.key" }
    public var daemonState: String { root + "/daemon.state.json" }
    public var daemonLock: String { root + "/daemon.state.json.lock" }
    public var logsDir: String { root + "/logs" }
    public var daemonStdioLog: String { root + "/logs/daemon-stdio.log" }
    /// One JSON line per phone-originated action (SPEC §4.4), rotated like the daemon logs.
    public var rpcAuditLog: String { root + "/logs/rpc-audit.jsonl" }
    public var sessionsDir: String { root + "/sessions" }
    public func sessionDir(_ id: String) -> String { sessionsDir + "/" + id }
}
