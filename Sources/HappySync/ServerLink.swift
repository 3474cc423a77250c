import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
/// Seams between the daemon engine and the parts built elsewhere (machine sync).

/// The server connection as shown by `daemon status` / `GET /status`.
public enum ServerLinkStatus: String, Sendable, Equatable {
    case connected, connecting, offline
    case noCredentials = "no-credentials"
    case tokenRejected = "token-rejected"
}

/// Who asked the daemon to shut down (SPEC §4.1 step 6): the values the app parses.
public enum ShutdownSource: String, Sendable, Equatable {
    case cli = "happy-cli"
    case mobileApp = "happy-app"
    case osSignal = "os-signal"
    case unknown
}

/// The machine-sync link with the Happy Server (registration, socket, RPC). Built by
/// the machine-sync module; the engine only starts it, asks its status and tells it
/// about a shutdown (it reports `shutting-down` / `offline` to the server, bounded).
public protocol ServerLink: Sendable {
    func start() async
    func status() async -> ServerLinkStatus
    func shutdown(source: ShutdownSource) async
    /// Two-phase shutdown (SPEC §4.1 step 6): `beginShutdown` before the sessions stop
    /// (state `shutting-down`), `finishShutdown` after (final `offline`, socket closed).
    func beginShutdown(source: ShutdownSource) async
    func finishShutdown() async
}

extension ServerLink {
    public func beginShutdown(source: ShutdownSource) async { await shutdown(source: source) }
    public func finishShutdown() async {}
}

/// What a `ServerLink` gets from the engine.
public struct DaemonContext: Sendable {
    public let config: HappyConfig
    public let sessions: SessionService
    /// The port the control server actually listens on.
    public let httpPort: Int
    public let pid: Int32
    /// Epoch ms of the daemon start.
    public let startedAt: Int64
    /// Asks the engine to shut down (e.g. the `stop-daemon` RPC with source `.mobileApp`).
    public let requestShutdown: @Sendable (ShutdownSource, Bool) -> Void

    public init(config: HappyConfig, sessions: SessionService, httpPort: Int, pid: Int32, startedAt: Int64,
                requestShutdown: @escaping @Sendable (ShutdownSource, Bool) -> Void) {
        self.config = config
        self.sessions = sessions
        self.httpPort = httpPort
        self.pid = pid
        self.startedAt = startedAt
        self.requestShutdown = requestShutdown
    }
}

public typealias ServerLinkFactory = @Sendable (DaemonContext) -> ServerLink?
