import HappyCore

/// What an RPC handler answers: the value (encrypted for the caller), how the audit log
/// records it, and work to start once the answer was sent (`stop-daemon`, `killSession`).
public struct RPCResult: Sendable {
    public var value: JSON
    public var outcome: AuditResult
    public var after: (@Sendable () async -> Void)?

    public init(_ value: JSON, outcome: AuditResult = .ok, after: (@Sendable () async -> Void)? = nil) {
        self.value = value
        self.outcome = outcome
        self.after = after
    }

    /// `{error: message}` (SPEC §4.4: errors as encrypted `{"error": "..."}`).
    public static func error(_ message: String, outcome: AuditResult = .error) -> RPCResult {
        RPCResult(["error": .string(message)], outcome: outcome)
    }
}

/// One RPC method: its handler and how its call is summarised in the audit log.
public struct RPCMethod: Sendable {
    public let name: String
    public let handler: @Sendable (JSON) async -> RPCResult
    /// The audit summary of a call (command, path or directory; never contents or secrets).
    public let summary: @Sendable (JSON) -> String

    /// `summary` defaults to `AuditSummary` (the one rule for every method).
    public init(_ name: String, summary: (@Sendable (JSON) -> String)? = nil,
                _ handler: @escaping @Sendable (JSON) async -> RPCResult) {
        self.name = name
        self.summary = summary ?? { AuditSummary.of(method: name, params: $0) }
        self.handler = handler
    }

    /// The file and shell tools (`bash`, `readFile`, ...) in `context`.
    public static func tools(_ context: ToolContext) -> [RPCMethod] {
        RPCTools.methods.map { name in
            RPCMethod(name) { params in
                guard let o = await RPCTools.run(name, params: params, context: context) else {
                    return .error("Method not found", outcome: .refused)
                }
                return RPCResult(o.result, outcome: o.audit)
            }
        }
    }
}

/// Receives one line per RPC from the server (SPEC §4.4 audit log).
public protocol RPCAuditing: Sendable {
    func record(_ entry: AuditEntry)
}

extension RPCAuditLog: RPCAuditing {}

/// The RPC methods of one scope — the machine (`<machineId>:<name>`) or a session
/// (`<serverSessionId>:<name>`): strips the prefix, decrypts the params, dispatches to the
/// typed handler, encrypts the result, maps failures to `{error}`, logs and audits.
public struct RPCRegistry: Sendable {
    public let scope: AuditScope
    public let sessionId: String?
    public let prefix: String
    let methods: [String: RPCMethod]
    let encrypt: @Sendable (JSON) -> String
    let decrypt: @Sendable (String) -> JSON?
    let audit: (any RPCAuditing)?

    public init(scope: AuditScope, sessionId: String? = nil, prefix: String, methods: [RPCMethod],
                encrypt: @escaping @Sendable (JSON) -> String, decrypt: @escaping @Sendable (String) -> JSON?,
                audit: (any RPCAuditing)?) {
        self.scope = scope
        self.sessionId = sessionId
        self.prefix = prefix
        var m: [String: RPCMethod] = [:]
        for method in methods { m[method.name] = method }
        self.methods = m
        self.encrypt = encrypt
        self.decrypt = decrypt
        self.audit = audit
    }

    /// The names to register on every connect, as `<prefix>:<name>`, sorted.
    public var registrations: [String] { methods.keys.sorted().map { "\(prefix):\($0)" } }

    /// Handles one `rpc-request {method, params}`: the encrypted reply (one base64 string)
    /// and the work to run after the reply was sent.
    public func handle(_ request: JSON) async -> (reply: String, after: (@Sendable () async -> Void)?) {
        let started = MonotonicClock.now()
        let startedMs = ISOTime.nowMs()
        let full = request["method"]?.string ?? ""
        let name = full.hasPrefix(prefix + ":") ? String(full.dropFirst(prefix.count + 1)) : ""
        let result: RPCResult
        var summary = ""
        if let method = methods[name] {
            if let raw = request["params"]?.string, let params = decrypt(raw) {
                summary = method.summary(params)
                result = await method.handler(params)
            } else {
                result = .error("Invalid params: the request could not be decrypted", outcome: .refused)
            }
        } else {
            result = .error("Method not found", outcome: .refused)
        }
        let ms = Int((MonotonicClock.now() - started) * 1000)
        let shown = name.isEmpty ? "unknown method" : name
        if let e = result.value["error"]?.string {
            Log.info("rpc", "\(scope.rawValue) \(shown) → error: \(e)")
        } else {
            Log.info("rpc", "\(scope.rawValue) \(shown) → \(result.outcome.rawValue) (\(ms) ms)")
        }
        audit?.record(AuditEntry(time: startedMs, scope: scope, sessionId: sessionId, method: name.isEmpty ? full : name,
                                 summary: summary, result: result.outcome, durationMs: Int64(ms)))
        return (encrypt(result.value), result.after)
    }
}
