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
import HappyDaemon

/// A command handler: returns the process exit code; throw a `HappyError` to fail
/// (rendered once by `CLI.run` as `error: <what> — <hint>` with its exit code).
public typealias CommandHandler = @Sendable (CommandContext) async throws -> Int32

/// Everything a handler gets: parsed arguments (typed getters), the lazily resolved
/// configuration with per-setting sources, global options and output helpers.
public final class CommandContext: @unchecked Sendable {
    public let command: ParsedCommand
    public let env: [String: String]
    public let out: Output
    private let lock = Lock()
    private var cached: Result<ResolvedConfig, Error>?
    private let loaderOverride: ConfigLoader?

    public init(command: ParsedCommand, env: [String: String], out: Output? = nil, loader: ConfigLoader? = nil) {
        self.command = command
        self.env = env
        self.out = out ?? Output(env: env)
        self.loaderOverride = loader
    }

    // MARK: globals
    public var json: Bool { command.globals.json }
    public var verbose: Bool { command.globals.verbose }
    public var globals: GlobalOptions { command.globals }
    /// "daemon start"
    public var commandPath: String { command.pathString }

    // MARK: arguments
    /// A positional argument by its spec name (`SESSION_ID`).
    public func argument(_ name: String) -> String? { command.argument(name) }
    /// A variadic positional argument's values.
    public func arguments(_ name: String) -> [String] { command.arguments[name] ?? [] }
    /// A switch (`--force`) by long name.
    public func flag(_ name: String) -> Bool { command.flag(name) }
    /// The value of `--name VALUE` (last one wins).
    public func value(_ name: String) -> String? { command.value(name) }
    /// Every value of a repeatable flag (`--env`).
    public func values(_ name: String) -> [String] { command.values(name) }
    /// An integer flag (validated by the parser).
    public func int(_ name: String) -> Int? { value(name).flatMap { Int($0) } }
    /// `--env KEY=VALUE ...` as a dictionary.
    public func keyValues(_ name: String) -> [String: String] {
        var d: [String: String] = [:]
        for kv in values(name) {
            guard let eq = kv.firstIndex(of: "=") else { continue }
            d[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
        }
        return d
    }

    // MARK: configuration
    public var loader: ConfigLoader { loaderOverride ?? ConfigLoader(env: env) }

    /// The resolved configuration with sources (computed once; profile warnings are
    /// printed on stderr the first time).
    public func resolved() throws -> ResolvedConfig {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return try cached.get() }
        let r = Result { try loader.resolve(globals: command.globals) }
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

    /// `settings.json` of the resolved home.
    public func settings() throws -> SettingsStore { SettingsStore(home: try home()) }
}

extension ConfigLoader {
    /// The configuration for the global options of a command line.
    public func resolve(globals: GlobalOptions) throws -> ResolvedConfig {
        try resolve(profile: globals.profile, serverUrl: globals.serverUrl, homeDir: globals.homeDir)
    }
}
