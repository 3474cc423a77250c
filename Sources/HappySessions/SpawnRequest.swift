import HappyCore

/// What a spawn asks for: from `happy session new` / `POST /sessions` (SPEC §4.2) or the
/// phone's `spawn-happy-session` RPC (§4.4). Parsed once, by `parse`, for both.
public struct SpawnRequest: Sendable, Equatable {
    public var directory: String
    public var prompt: String?
    public var createDirectory: Bool
    public var environmentVariables: [String: String]
    /// "cli", "mobile-app", ...
    public var startedBy: String
    /// → `--permission-mode` (nil: the profile's `sessions.permissionMode`).
    public var permissionMode: PermissionMode?
    /// → `--model`.
    public var model: String?
    /// → `--resume <claude session id>`.
    public var resume: String?
    /// Recorded in the server metadata only.
    public var effortLevel: String?
    /// The local session whose server session this one continues (`resume-happy-session`).
    public var continuing: String?

    public init(directory: String, prompt: String? = nil, createDirectory: Bool = false,
                environmentVariables: [String: String] = [:], startedBy: String = "cli",
                permissionMode: PermissionMode? = nil, model: String? = nil, resume: String? = nil) {
        self.directory = directory
        self.prompt = prompt
        self.createDirectory = createDirectory
        self.environmentVariables = environmentVariables
        self.startedBy = startedBy
        self.permissionMode = permissionMode
        self.model = model
        self.resume = resume
    }

    /// The `POST /sessions` body that `parse(_:origin: .controlAPI)` reads back as this request.
    public var controlAPIBody: JSON {
        var o: [String: JSON] = ["directory": .string(directory), "createDirectory": .bool(createDirectory),
                                 "startedBy": .string(startedBy)]
        if let prompt { o["prompt"] = .string(prompt) }
        if !environmentVariables.isEmpty { o["environmentVariables"] = .object(environmentVariables.mapValues { .string($0) }) }
        if let permissionMode { o["permissionMode"] = .string(permissionMode.rawValue) }
        if let model { o["model"] = .string(model) }
        if let resume { o["resume"] = .string(resume) }
        return .object(o)
    }

    /// Where a request comes from: the local user (control API) or the phone (RPC).
    public enum Origin: Sendable { case controlAPI, phone }

    /// Environment names the phone may not set: they change how any program is loaded.
    public static func isLoaderVariable(_ name: String) -> Bool {
        name.hasPrefix("LD_") || name.hasPrefix("DYLD_") || name == "NODE_OPTIONS"
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`
    public static func isValidVariableName(_ name: String) -> Bool {
        guard let f = name.utf8.first, f == 95 || (f | 0x20 >= 97 && f | 0x20 <= 122) else { return false }
        return name.utf8.allSatisfy { $0 == 95 || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || ($0 >= 48 && $0 <= 57) }
    }

    /// Parses a JSON body / RPC params. Field rules and messages differ by origin only where
    /// the callers differ: the control API wants an absolute directory and exact types
    /// (400); the phone sends `approvedNewDirectoryCreation`, `agent`, `modelMode`,
    /// `resumeClaudeSessionId`, and may not set loader variables. `home` expands `~`.
    public static func parse(_ body: JSON?, origin: Origin, home: String) throws(SpawnRequestError) -> SpawnRequest {
        guard case .object(let o)? = body else {
            throw SpawnRequestError(body == nil ? "a JSON body with \"directory\" is required" : "the body must be a JSON object")
        }
        func string(_ key: String) throws(SpawnRequestError) -> String? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let s = v.string else { throw SpawnRequestError("\(key) must be a string") }
            return s
        }
        func bool(_ key: String) throws(SpawnRequestError) -> Bool? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let b = v.bool else { throw SpawnRequestError("\(key) must be a boolean") }
            return b
        }
        var req: SpawnRequest
        switch origin {
        case .controlAPI:
            guard let dir = o["directory"]?.string, !dir.isEmpty else {
                throw SpawnRequestError("directory is required and must be a string")
            }
            guard dir.hasPrefix("/") else { throw SpawnRequestError("directory must be an absolute path") }
            req = SpawnRequest(directory: dir)
            req.createDirectory = try bool("createDirectory") ?? false
            if let s = try string("startedBy") {
                guard !s.isEmpty else { throw SpawnRequestError("startedBy must be a non-empty string") }
                req.startedBy = s
            }
            if let m = try string("permissionMode") {
                guard let mode = PermissionMode(appValue: m) else {
                    throw SpawnRequestError("permissionMode must be one of \(PermissionMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                req.permissionMode = mode
            }
            req.model = try string("model").flatMap { $0.isEmpty ? nil : $0 }
            req.resume = try string("resume").flatMap { $0.isEmpty ? nil : $0 }
        case .phone:
            guard let raw = o["directory"]?.string, !raw.isEmpty else { throw SpawnRequestError("Directory is required") }
            let dir = Paths.expandTilde(raw, env: ["HOME": home])
            guard dir.hasPrefix("/") else { throw SpawnRequestError("Directory must be an absolute path: '\(raw)'") }
            req = SpawnRequest(directory: Paths.normalize(dir), startedBy: "mobile-app")
            if let agent = o["agent"], !agent.isNull, agent.string != "claude" {
                let a = agent.string ?? agent.serialized()
                throw SpawnRequestError("Unsupported agent type: '\(a)'. Only claude is supported by this daemon.")
            }
            // Absent counts as not approved (unlike the original, SPEC §4.4).
            req.createDirectory = (try? bool("approvedNewDirectoryCreation")) == true
            // An unknown mode from a newer app starts in the profile's mode rather than failing.
            req.permissionMode = (try? string("permissionMode"))?.flatMap { PermissionMode(appValue: $0) }
            if let m = try string("modelMode"), !m.isEmpty, m != "default" { req.model = m }
            req.effortLevel = try string("effortLevel")
            req.resume = try string("resumeClaudeSessionId").flatMap { $0.isEmpty ? nil : $0 }
        }
        req.prompt = try string("prompt")
        if let v = o["environmentVariables"], !v.isNull {
            guard let env = v.object else { throw SpawnRequestError("environmentVariables must be an object of strings") }
            for (k, val) in env {
                guard let s = val.string else { throw SpawnRequestError("environmentVariables.\(k) must be a string") }
                guard isValidVariableName(k) else { throw SpawnRequestError("invalid environment variable name '\(k)'") }
                if origin == .phone && isLoaderVariable(k) {
                    throw SpawnRequestError("environment variable \(k) cannot be set from the app (it changes how programs are loaded)")
                }
                req.environmentVariables[k] = s
            }
        }
        return req
    }
}

/// A spawn request that cannot be parsed (control API 400; RPC `{type: "error"}`).
public struct SpawnRequestError: HappyError, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var what: String { message }
    public var exitCode: Int32 { 2 }
}
