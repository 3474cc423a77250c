import FoundationEssentials
import HappyCore
import HappyNet
import HappyConfig

/// What every command gets besides its typed options: the global options, the
/// environment, the lazily resolved configuration with per-setting sources, the output,
/// stdin and the HTTP transport for the Happy Server.
public final class CommandContext: @unchecked Sendable {
    public let globals: GlobalOptions
    public let env: [String: String]
    public let out: Output
    public let input: Input
    private let lock = Lock()
    private var cached: Result<ResolvedConfig, Error>?
    private let loaderOverride: ConfigLoader?
    private let transportOverride: (any HTTPTransport)?

    public init(globals: GlobalOptions, env: [String: String], out: Output? = nil, input: Input = .standard,
                loader: ConfigLoader? = nil, transport: (any HTTPTransport)? = nil) {
        self.globals = globals
        self.env = env
        self.out = out ?? Output(env: env)
        self.input = input
        self.loaderOverride = loader
        self.transportOverride = transport
    }

    /// `--json`: one JSON document on stdout (JSON Lines for `-f` streams).
    public var json: Bool { globals.json }

    /// The HTTP client for the Happy Server (proxy variables from the environment).
    public var transport: any HTTPTransport { transportOverride ?? HTTPClient(options: .environment(env)) }

    // MARK: configuration
    public var loader: ConfigLoader { loaderOverride ?? ConfigLoader(env: env) }

    /// The resolved configuration with sources (computed once; profile warnings are
    /// printed on stderr the first time).
    public func resolved() throws -> ResolvedConfig {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return try cached.get() }
        let r = Result { try loader.resolve(globals: globals) }
        cached = r
        if case .success(let rc) = r { for w in rc.warnings { out.warn(w) } }
        return try r.get()
    }

    public func config() throws -> HappyConfig { try resolved().config }

    /// The home layout of the resolved configuration.
    public func home() throws -> HomeLayout { try config().home }

    /// The home layout after `HomeDirectory.prepare` (created 0700, a wider mode tightened
    /// with a warning on stderr, not a directory / not writable → error).
    public func preparedHome() throws -> HomeLayout {
        let h = try home()
        if let w = try HomeDirectory.prepare(h) { out.warn(w) }
        return h
    }
}

extension ConfigLoader {
    /// The configuration for the global options of a command line.
    public func resolve(globals: GlobalOptions) throws -> ResolvedConfig {
        try resolve(profile: globals.profile, serverUrl: globals.serverUrl, homeDir: globals.homeDir)
    }
}
