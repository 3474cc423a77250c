import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// Where one resolved setting came from (`profile show`).
public struct SettingSource: Sendable, Equatable {
    public enum Kind: String, Sendable { case flag, env, profile, `default` }
    public var kind: Kind
    /// The flag (`--server-url`), variable name (`HAPPY_SERVER_URL`), profile file path,
    /// or `built-in` (built-in profiles and built-in defaults).
    public var from: String
    public init(_ kind: Kind, _ from: String) {
        self.kind = kind
        self.from = from
    }
}

/// The resolved configuration plus the provenance of every value.
public struct ResolvedConfig: Sendable, Equatable {
    public var config: HappyConfig
    /// By dotted key (`daemon.httpPort`), for every key of `ProfileSchema.keys`.
    public var sources: [String: SettingSource]
    public var profile: ProfileData
    /// Unknown-key warnings (the CLI prints them on stderr as `warning: ...`).
    public var warnings: [String] { profile.warnings }

    /// The value of a dotted key as JSON (as shown by `profile show --json`).
    public func value(_ key: String) -> JSON { ProfileSchema.setting(key)?.get(config) ?? .null }

    /// `{"profile": NAME, "settings": {KEY: {"value", "source", "from"}}}`
    public var showJSON: JSON {
        var s: [String: JSON] = [:]
        for (k, _) in ProfileSchema.keys {
            let src = sources[k] ?? SettingSource(.default, "built-in")
            s[k] = ["value": value(k), "source": .string(src.kind.rawValue), "from": .string(src.from)]
        }
        return ["profile": .string(config.profile), "settings": .object(s)]
    }
}

/// Resolves the configuration: flag > environment > selected profile > built-in defaults.
public struct ConfigLoader: Sendable {
    public var env: [String: String]
    public var cwd: String

    public init(env: [String: String] = ProcessInfo.processInfo.environment, cwd: String? = nil) {
        self.env = env
        self.cwd = cwd ?? Paths.currentDirectory()
    }

    public var locator: ProfileLocator { ProfileLocator(env: env) }

    /// `--profile` > `HAPPY_PROFILE` > `default`.
    public func selectedProfileName(flag: String?) -> String {
        if let f = flag { return f }
        if let e = env["HAPPY_PROFILE"], !e.isEmpty { return e }
        return "default"
    }

    /// `profile`: the `--profile` flag value (nil: `HAPPY_PROFILE`, else `default`).
    public func resolve(profile flagProfile: String? = nil, serverUrl flagServer: String? = nil,
                        homeDir flagHome: String? = nil) throws -> ResolvedConfig {
        let name = selectedProfileName(flag: flagProfile)
        let data = try locator.load(name)
        let profileFrom = data.origin.label

        var cfg = HappyConfig(homeDir: "~/.happy")
        cfg.profile = name
        var sources: [String: SettingSource] = [:]
        for (k, _) in ProfileSchema.keys { sources[k] = SettingSource(.default, "built-in") }

        // Profile values.
        for (k, v) in data.values {
            apply(k, v, to: &cfg)
            sources[k] = SettingSource(.profile, profileFrom)
        }
        // Environment.
        func envValue(_ n: String) -> String? { env[n].flatMap { $0.isEmpty ? nil : $0 } }
        if let v = envValue("HAPPY_SERVER_URL") {
            try checkURL(v, key: "serverUrl", from: "HAPPY_SERVER_URL", usage: false)
            cfg.serverUrl = v
            sources["serverUrl"] = SettingSource(.env, "HAPPY_SERVER_URL")
        }
        if let v = envValue("HAPPY_WEBAPP_URL") {
            try checkURL(v, key: "webappUrl", from: "HAPPY_WEBAPP_URL", usage: false)
            cfg.webappUrl = v
            sources["webappUrl"] = SettingSource(.env, "HAPPY_WEBAPP_URL")
        }
        if let v = envValue("HAPPY_HOME_DIR") {
            cfg.homeDir = v
            sources["homeDir"] = SettingSource(.env, "HAPPY_HOME_DIR")
        }
        // Flags.
        if let v = flagServer {
            try checkURL(v, key: "serverUrl", from: "--server-url", usage: true)
            cfg.serverUrl = v
            sources["serverUrl"] = SettingSource(.flag, "--server-url")
        }
        if let v = flagHome {
            guard !v.isEmpty else {
                throw ConfigError.invalidSetting(key: "homeDir", value: v, expected: "a path", from: "--home-dir", usage: true)
            }
            cfg.homeDir = v
            sources["homeDir"] = SettingSource(.flag, "--home-dir")
        }
        cfg.serverUrl = trimSlash(cfg.serverUrl)
        cfg.webappUrl = trimSlash(cfg.webappUrl)
        cfg.homeDir = Paths.absolute(cfg.homeDir, env: env, cwd: cwd)
        cfg.claude.command = Paths.expandTilde(cfg.claude.command, env: env)
        return ResolvedConfig(config: cfg, sources: sources, profile: data)
    }

    func trimSlash(_ s: String) -> String {
        var s = s
        while s.hasSuffix("/") && s.count > 1 { s.removeLast() }
        return s
    }

    func checkURL(_ v: String, key: String, from: String, usage: Bool) throws {
        let l = v.lowercased()
        guard (l.hasPrefix("http://") || l.hasPrefix("https://")) && v.count > 8 else {
            throw ConfigError.invalidSetting(key: key, value: v, expected: "an http:// or https:// URL", from: from, usage: usage)
        }
    }

    /// The largest duration (seconds, minutes) or size (MiB) a setting takes: "any positive
    /// number" is accepted, but the daemon turns these into nanoseconds and bytes, and a
    /// value like 1e300 would overflow there (a trap with the checks that release builds
    /// keep). 1e9 is over 31 years or a petabyte.
    public static let largestAmount = 1e9

    func apply(_ key: String, _ v: JSON, to c: inout HappyConfig) {
        // Numbers are capped at `largestAmount` (ports and counts are far below it).
        let capped: JSON = v.double.map { .number(Swift.min($0, Self.largestAmount)) } ?? v
        ProfileSchema.setting(key)?.set(&c, capped)
    }

    /// `profile list`: every visible profile with its description (nil when the file
    /// cannot be read or parsed — `profile show NAME` reports that error).
    public func listProfiles() -> [(name: String, origin: ProfileOrigin, description: String?)] {
        locator.available().map { (name, origin) in
            let d = (try? locator.load(name))?.description
            return (name, origin, d)
        }
    }
}
