import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// Where a profile comes from.
public enum ProfileOrigin: Sendable, Equatable {
    case builtIn
    case file(String)
    /// `built-in` or the file path (the `source` of `profile list --json`, the `from` of
    /// `profile show --json`).
    public var label: String {
        switch self {
        case .builtIn: return "built-in"
        case .file(let p): return p
        }
    }
}

/// A parsed, type-checked profile. `values` holds only the keys the profile sets, by
/// dotted name (`daemon.httpPort`), as JSON (numbers, strings, string lists, string maps).
public struct ProfileData: Sendable, Equatable {
    public var name: String
    public var origin: ProfileOrigin
    public var description: String?
    public var values: [String: JSON]
    /// Unknown keys (printed on stderr as warnings by the CLI).
    public var warnings: [String]
}

/// The profile keys of SPEC §2.1 and what each must hold.
public enum ProfileSchema {
    public enum ValueType: Sendable, Equatable {
        case string, url, port, positiveNumber, nonNegativeNumber, positiveInt, bool, stringList, stringMap
        case choice([String])
        public var expected: String {
            switch self {
            case .string: return "a string"
            case .url: return "an http:// or https:// URL"
            case .port: return "an integer between 0 and 65535"
            case .positiveNumber: return "a positive number"
            case .nonNegativeNumber: return "a number ≥ 0"
            case .positiveInt: return "a positive integer"
            case .bool: return "true or false"
            case .stringList: return "a list of strings"
            case .stringMap: return "a mapping of names to strings"
            case .choice(let c): return "one of " + c.joined(separator: ", ")
            }
        }
    }

    /// One setting: its dotted YAML name, what it must hold, and where it lives in
    /// `HappyConfig`. The one list of settings: profile parsing, resolution, `profile show`
    /// and the completions all read it.
    public struct Setting: Sendable {
        public let key: String
        public let type: ValueType
        public let get: @Sendable (HappyConfig) -> JSON
        public let set: @Sendable (inout HappyConfig, JSON) -> Void

        init(_ key: String, _ type: ValueType, _ path: WritableKeyPath<HappyConfig, String> & Sendable) {
            self.key = key; self.type = type
            get = { .string($0[keyPath: path]) }
            set = { c, v in if let s = v.string { c[keyPath: path] = s } }
        }
        init(_ key: String, _ type: ValueType, _ path: WritableKeyPath<HappyConfig, Int> & Sendable) {
            self.key = key; self.type = type
            get = { .int($0[keyPath: path]) }
            set = { c, v in if let i = v.int { c[keyPath: path] = i } }
        }
        init(_ key: String, _ type: ValueType, _ path: WritableKeyPath<HappyConfig, Double> & Sendable) {
            self.key = key; self.type = type
            get = { .number($0[keyPath: path]) }
            set = { c, v in if let d = v.double { c[keyPath: path] = d } }
        }
        init(_ key: String, _ type: ValueType, _ path: WritableKeyPath<HappyConfig, Bool> & Sendable) {
            self.key = key; self.type = type
            get = { .bool($0[keyPath: path]) }
            set = { c, v in if let b = v.bool { c[keyPath: path] = b } }
        }
        init(_ key: String, _ type: ValueType, _ path: WritableKeyPath<HappyConfig, [String]> & Sendable) {
            self.key = key; self.type = type
            get = { .array($0[keyPath: path].map { .string($0) }) }
            set = { c, v in if let a = v.array { c[keyPath: path] = a.compactMap(\.string) } }
        }
        init(_ key: String, _ type: ValueType, _ path: WritableKeyPath<HappyConfig, [String: String]> & Sendable) {
            self.key = key; self.type = type
            get = { .object($0[keyPath: path].mapValues { .string($0) }) }
            set = { c, v in if let o = v.object { c[keyPath: path] = o.compactMapValues(\.string) } }
        }
    }

    /// The permission modes a session can run in (SPEC §7.6).
    public static let permissionModes = ["default", "acceptEdits", "bypassPermissions", "plan"]

    /// Every setting, in display order (`description` is not a setting).
    public static let settings: [Setting] = [
        Setting("serverUrl", .url, \.serverUrl), Setting("webappUrl", .url, \.webappUrl),
        Setting("homeDir", .string, \.homeDir),
        Setting("daemon.httpPort", .port, \.daemon.httpPort),
        Setting("daemon.heartbeatSeconds", .positiveNumber, \.daemon.heartbeatSeconds),
        Setting("daemon.healthCheckSeconds", .positiveNumber, \.daemon.healthCheckSeconds),
        Setting("daemon.logMaxMiB", .positiveNumber, \.daemon.logMaxMiB),
        Setting("daemon.logFiles", .positiveInt, \.daemon.logFiles),
        Setting("sessions.max", .positiveInt, \.sessions.max),
        Setting("sessions.idleTimeoutMinutes", .nonNegativeNumber, \.sessions.idleTimeoutMinutes),
        Setting("sessions.maxOutputMiB", .positiveNumber, \.sessions.maxOutputMiB),
        Setting("sessions.sync", .bool, \.sessions.sync),
        Setting("sessions.permissionMode", .choice(permissionModes), \.sessions.permissionMode),
        Setting("rpc.roots", .stringList, \.rpc.roots),
        Setting("rpc.audit", .bool, \.rpc.audit),
        Setting("claude.command", .string, \.claude.command), Setting("claude.args", .stringList, \.claude.args),
        Setting("env", .stringMap, \.env),
    ]

    /// (key, type) of every setting, in display order.
    public static var keys: [(String, ValueType)] { settings.map { ($0.key, $0.type) } }
    public static func setting(_ key: String) -> Setting? { settings.first { $0.key == key } }
    static let sections: Set<String> = ["daemon", "sessions", "rpc", "claude"]

    public static func type(of key: String) -> ValueType? { setting(key)?.type }

    /// Type-checks one YAML value. Throws `ConfigError.wrongType` naming the key.
    static func convert(_ node: YAMLNode, key: String, type: ValueType, file: String) throws -> JSON {
        func bad() -> ConfigError {
            let got: String
            if let s = node.scalar, !node.isNull { got = "'\(s)'" } else { got = node.typeName }
            return .wrongType(file: file, line: node.line, column: node.column, key: key, expected: type.expected, got: got)
        }
        func number() -> Double? {
            guard case .scalar(let s, true) = node.kind else { return nil }
            guard !s.isEmpty, s.allSatisfy({ "0123456789.+-eE_".contains($0) }) else { return nil }
            guard let d = Double(s.replacing("_", with: "")), d.isFinite else { return nil }
            return d
        }
        switch type {
        case .bool:
            guard case .scalar(let s, true) = node.kind else { throw bad() }
            switch s.lowercased() {
            case "true", "yes", "on": return .bool(true)
            case "false", "no", "off": return .bool(false)
            default: throw bad()
            }
        case .choice(let options):
            guard let s = node.scalar, !node.isNull, options.contains(s) else { throw bad() }
            return .string(s)
        case .string, .url:
            guard let s = node.scalar, !node.isNull else { throw bad() }
            if type == .url {
                let l = s.lowercased()
                guard (l.hasPrefix("http://") || l.hasPrefix("https://")) && s.count > 8 else { throw bad() }
            }
            return .string(s)
        case .port:
            guard let d = number(), d.rounded() == d, d >= 0, d <= 65535 else { throw bad() }
            return .number(d)
        case .positiveNumber:
            guard let d = number(), d > 0 else { throw bad() }
            return .number(d)
        case .nonNegativeNumber:
            guard let d = number(), d >= 0 else { throw bad() }
            return .number(d)
        case .positiveInt:
            guard let d = number(), d.rounded() == d, d >= 1, d < 1e9 else { throw bad() }
            return .number(d)
        case .stringList:
            if node.isNull { return .array([]) }
            guard case .sequence(let items) = node.kind else { throw bad() }
            return .array(try items.map { item in
                guard let s = item.scalar, !item.isNull else {
                    throw ConfigError.wrongType(file: file, line: item.line, column: item.column, key: key,
                                                expected: "a string (in \(type.expected))", got: item.typeName)
                }
                return .string(s)
            })
        case .stringMap:
            if node.isNull { return .object([:]) }
            guard case .mapping(let pairs) = node.kind else { throw bad() }
            var o: [String: JSON] = [:]
            for (k, v) in pairs {
                guard let name = k.scalar, !name.isEmpty else {
                    throw ConfigError.wrongType(file: file, line: k.line, column: k.column, key: key,
                                                expected: "variable names as keys", got: k.typeName)
                }
                guard let s = v.scalar else {
                    throw ConfigError.wrongType(file: file, line: v.line, column: v.column, key: "\(key).\(name)",
                                                expected: "a string", got: v.typeName)
                }
                o[name] = .string(v.isNull ? "" : s)
            }
            return .object(o)
        }
    }

    /// Parses and type-checks profile text.
    public static func load(name: String, origin: ProfileOrigin, text: String) throws -> ProfileData {
        let file = origin.label == "built-in" ? "built-in profile \(name)" : origin.label
        let root = try YAMLReader.parse(text, file: file)
        var data = ProfileData(name: name, origin: origin, description: nil, values: [:], warnings: [])
        if root.isNull { return data }
        guard case .mapping(let pairs) = root.kind else {
            throw ConfigError.wrongType(file: file, line: root.line, column: root.column, key: "the profile",
                                        expected: "a mapping of keys", got: root.typeName)
        }
        func unknown(_ k: YAMLNode, _ full: String) {
            data.warnings.append("\(file):\(k.line):\(k.column): unknown key '\(full)' (ignored)")
        }
        for (k, v) in pairs {
            guard let key = k.scalar else { unknown(k, "?"); continue }
            if key == "description" {
                if v.isNull { continue }
                guard let s = v.scalar else {
                    throw ConfigError.wrongType(file: file, line: v.line, column: v.column, key: "description",
                                                expected: "a string", got: v.typeName)
                }
                data.description = s
            } else if sections.contains(key) {
                if v.isNull { continue }
                guard case .mapping(let inner) = v.kind else {
                    throw ConfigError.wrongType(file: file, line: v.line, column: v.column, key: key,
                                                expected: "a mapping", got: v.typeName)
                }
                for (ik, iv) in inner {
                    let full = "\(key).\(ik.scalar ?? "?")"
                    guard let t = type(of: full) else { unknown(ik, full); continue }
                    if iv.isNull && t != .stringList { continue }
                    data.values[full] = try convert(iv, key: full, type: t, file: file)
                }
            } else if let t = type(of: key) {
                if v.isNull && t != .stringMap { continue }
                data.values[key] = try convert(v, key: key, type: t, file: file)
            } else {
                unknown(k, key)
            }
        }
        return data
    }
}

/// Finds profiles: `$HAPPY_PROFILES_DIR`, then `$XDG_CONFIG_HOME/happy/profiles`
/// (default `~/.config/happy/profiles`), then the built-ins.
public struct ProfileLocator: Sendable {
    public var env: [String: String]

    public init(env: [String: String]) { self.env = env }

    /// `$XDG_CONFIG_HOME/happy/profiles` (default `~/.config/happy/profiles`).
    public var xdgProfilesDir: String {
        let xdg = env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (Paths.userHome(env) + "/.config")
        return xdg + "/happy/profiles"
    }

    /// The folders searched, first match wins.
    public var searchDirs: [String] {
        var d: [String] = []
        if let p = env["HAPPY_PROFILES_DIR"], !p.isEmpty { d.append(Paths.expandTilde(p, env: env)) }
        d.append(xdgProfilesDir)
        return d
    }

    /// The user profile folder (`happy profile path`): `$HAPPY_PROFILES_DIR` when set.
    public var userProfileDir: String { searchDirs[0] }

    public static func isValidName(_ n: String) -> Bool {
        !n.isEmpty && !n.contains("/") && !n.hasPrefix(".") && !n.contains("\0")
    }

    /// Reads the first matching profile's text (nil: no such profile).
    public func locate(_ name: String) throws -> (ProfileOrigin, String)? {
        guard Self.isValidName(name) else { return nil }
        for dir in searchDirs {
            let path = dir + "/" + name + ".yaml"
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw ConfigError.profileUnreadable(path: path, reason: "it is a directory") }
            let bytes: [UInt8]
            do {
                bytes = try FileIO.read(path, limit: 1 << 20) ?? []
            } catch let e as FileIOError {
                if case .cannotRead(_, let r) = e { throw ConfigError.profileUnreadable(path: path, reason: r) }
                throw e
            }
            guard let text = String(validating: bytes, as: UTF8.self) else { throw ConfigError.profileNotUTF8(path: path) }
            return (.file(path), text)
        }
        if let t = BuiltinProfiles.all[name] { return (.builtIn, t) }
        return nil
    }

    /// Every profile name visible, sorted, with its origin (first match wins).
    public func available() -> [(String, ProfileOrigin)] {
        var seen: [String: ProfileOrigin] = [:]
        for dir in searchDirs {
            for f in FileManagerShim.listDirectory(dir) where f.hasSuffix(".yaml") {
                let n = String(f.dropLast(5))
                if Self.isValidName(n) && seen[n] == nil { seen[n] = .file(dir + "/" + f) }
            }
        }
        for n in BuiltinProfiles.all.keys where seen[n] == nil { seen[n] = .builtIn }
        return seen.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public func load(_ name: String) throws -> ProfileData {
        guard let (origin, text) = try locate(name) else {
            throw ConfigError.unknownProfile(name: name, available: available().map(\.0))
        }
        return try ProfileSchema.load(name: name, origin: origin, text: text)
    }
}
