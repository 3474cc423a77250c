import HappyCore

/// How claude asks before using a tool (SPEC §7.5–7.6, SESSIONS.md §6).
public enum PermissionMode: String, Sendable, Equatable, CaseIterable {
    case `default`
    case acceptEdits
    case bypassPermissions
    case plan

    /// The app's names for modes: `yolo` → bypassPermissions, `safe-yolo` and `read-only`
    /// → default (SESSIONS.md §5.4); nil for anything unknown.
    public init?(appValue: String) {
        switch appValue {
        case "yolo": self = .bypassPermissions
        case "safe-yolo", "read-only": self = .default
        default:
            guard let m = PermissionMode(rawValue: appValue) else { return nil }
            self = m
        }
    }

    /// The tools `acceptEdits` lets through without asking.
    public static let editTools: Set<String> = ["Edit", "MultiEdit", "Write", "NotebookEdit"]
    /// Tools that always go to the user: they ask a question or end planning.
    public static let alwaysAsk: Set<String> = ["AskUserQuestion", "ExitPlanMode", "exit_plan_mode"]
}

/// A tool use claude waits on (`control_request` `can_use_tool`), as the app sees it:
/// `id` is claude's `tool_use_id` (the app joins the card to the tool call by it),
/// `requestId` the control request to answer.
public struct PermissionRequest: Sendable, Equatable {
    public var id: String
    public var requestId: String
    public var tool: String
    public var arguments: JSON
    /// Epoch ms.
    public var createdAt: Int64

    public init(id: String, requestId: String, tool: String, arguments: JSON, createdAt: Int64) {
        self.id = id
        self.requestId = requestId
        self.tool = tool
        self.arguments = arguments
        self.createdAt = createdAt
    }

    /// `pendingPermissions[]` of the `Session` wire shape (SPEC §7.7).
    public var json: JSON {
        ["id": .string(id), "tool": .string(tool), "arguments": arguments, "createdAt": .number(Double(createdAt))]
    }

    var persistedJSON: JSON { json.setting("requestId", .string(requestId)) }

    init?(persisted j: JSON) {
        guard let id = j["id"]?.string, let rid = j["requestId"]?.string, let tool = j["tool"]?.string,
              let at = j["createdAt"]?.int else { return nil }
        self.init(id: id, requestId: rid, tool: tool, arguments: j["arguments"] ?? .object([:]), createdAt: Int64(at))
    }
}

/// An answer to a pending request (the app's `permission` RPC, `happy session approve|deny`,
/// `POST /sessions/:id/permissions/:requestId`).
public struct PermissionAnswer: Sendable, Equatable {
    public var approved: Bool
    public var reason: String?
    /// Switch the session to this mode (and keep it).
    public var mode: PermissionMode?
    /// Add these rules to the session's allow-set (`Bash(cmd)`, `Bash(prefix:*)`, a tool name).
    public var allowTools: [String]
    /// Merged over the original input when allowing (`AskUserQuestion` answers, edits).
    public var updatedInput: JSON?
    /// Who answered, for the session's log: `app`, `local` (CLI / control API).
    public var source: String

    public init(approved: Bool, reason: String? = nil, mode: PermissionMode? = nil, allowTools: [String] = [],
                updatedInput: JSON? = nil, source: String = "local") {
        self.approved = approved
        self.reason = reason
        self.mode = mode
        self.allowTools = allowTools
        self.updatedInput = updatedInput
        self.source = source
    }
}

/// How a request ended (agentState `completedRequests[id].status`).
public enum PermissionOutcome: String, Sendable, Equatable {
    case approved, denied, canceled
}

/// A request that is no longer pending.
public struct CompletedPermission: Sendable, Equatable {
    public var request: PermissionRequest
    public var outcome: PermissionOutcome
    public var completedAt: Int64
    public var reason: String?
    public var mode: PermissionMode?
    public var allowTools: [String]

    /// agentState `completedRequests[id]` (SESSIONS.md §6.4). The app's schema reads
    /// `allowedTools`; the original CLI writes `allowTools`: both are written.
    public var agentStateJSON: JSON {
        var o: [String: JSON] = [
            "tool": .string(request.tool), "arguments": request.arguments,
            "createdAt": .number(Double(request.createdAt)), "completedAt": .number(Double(completedAt)),
            "status": .string(outcome.rawValue),
        ]
        if let reason { o["reason"] = .string(reason) }
        if let mode { o["mode"] = .string(mode.rawValue) }
        if !allowTools.isEmpty {
            o["allowTools"] = .array(allowTools.map { .string($0) })
            o["allowedTools"] = o["allowTools"]
        }
        return .object(o)
    }
}

/// The session's allow-set: rules added by "always" answers.
public enum PermissionRules {
    /// `Bash(cmd)` matches that exact command, `Bash(prefix:*)` any command starting with
    /// `prefix`, a bare name (`Read`) the tool itself.
    public static func allows(_ rules: [String], tool: String, input: JSON) -> Bool {
        for rule in rules {
            if rule == tool { return true }
            guard rule.hasPrefix(tool + "("), rule.hasSuffix(")") else { continue }
            let inner = String(rule.dropFirst(tool.count + 1).dropLast())
            guard tool == "Bash", let command = input["command"]?.string else { continue }
            if inner.hasSuffix(":*") {
                if command.hasPrefix(String(inner.dropLast(2))) { return true }
            } else if inner == command {
                return true
            }
        }
        return false
    }

    /// The rule `--always` adds: `Bash(<that exact command>)` for Bash, the tool name otherwise.
    public static func rule(for request: PermissionRequest) -> String {
        if request.tool == "Bash", let c = request.arguments["command"]?.string { return "Bash(\(c))" }
        return request.tool
    }

    /// Whether a request is answered without asking (SPEC §7.5): a rule of the allow-set,
    /// mode `bypassPermissions`, or `acceptEdits` with an edit tool. Questions and plan
    /// exits always go to the user.
    public static func autoAllows(mode: PermissionMode, rules: [String], tool: String, input: JSON) -> Bool {
        if PermissionMode.alwaysAsk.contains(tool) { return false }
        if allows(rules, tool: tool, input: input) { return true }
        switch mode {
        case .bypassPermissions: return true
        case .acceptEdits: return PermissionMode.editTools.contains(tool)
        case .default, .plan: return false
        }
    }

    /// What claude is told when a request is denied without a reason (SESSIONS.md §6.4).
    public static let standardRefusal = "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how to proceed."
}

/// The daemon's own lines in a session's `stdout.jsonl` (`type: "happy"`; the sync and the
/// record parser skip them): how a permission request ended, for `happy session logs`.
public enum SessionMarkers {
    /// `decision`: approved, denied, canceled, or allowed (answered without asking);
    /// `by`: app, local, auto (mode or allow-set), claude (its own cancel).
    public static func permission(id: String, tool: String, decision: String, by: String, reason: String? = nil) -> String {
        var o: [String: JSON] = ["type": "happy", "subtype": "permission", "id": .string(id), "tool": .string(tool),
                                 "decision": .string(decision), "by": .string(by), "time": .number(Double(ISOTime.nowMs()))]
        if let reason { o["reason"] = .string(reason) }
        return JSON.object(o).serialized() + "\n"
    }
}

/// The lines the daemon writes on claude's stdin (stream-json input and the stdio
/// control protocol, SESSIONS.md §5.4, §6.1). Always one JSON object and a newline:
/// claude exits on a stdin line that is not JSON.
public enum ClaudeInput {
    /// A user message.
    public static func userMessage(_ text: String) -> String {
        let msg: JSON = ["type": "user", "message": ["role": "user", "content": .string(text)], "parent_tool_use_id": .null]
        return msg.serialized() + "\n"
    }

    /// `control_response` allowing a tool, with the input claude should use.
    public static func allow(requestId: String, input: JSON) -> String {
        let r: JSON = ["type": "control_response", "response": [
            "subtype": "success", "request_id": .string(requestId),
            "response": ["behavior": "allow", "updatedInput": input],
        ]]
        return r.serialized() + "\n"
    }

    /// `control_response` denying a tool.
    public static func deny(requestId: String, message: String) -> String {
        let r: JSON = ["type": "control_response", "response": [
            "subtype": "success", "request_id": .string(requestId),
            "response": ["behavior": "deny", "message": .string(message)],
        ]]
        return r.serialized() + "\n"
    }

    /// `control_response` refusing a request the daemon does not handle.
    public static func error(requestId: String, message: String) -> String {
        let r: JSON = ["type": "control_response", "response": [
            "subtype": "error", "request_id": .string(requestId), "error": .string(message),
        ]]
        return r.serialized() + "\n"
    }

    /// A daemon-initiated `control_request` (`interrupt`, `set_permission_mode`).
    public static func control(requestId: String, _ request: JSON) -> String {
        let r: JSON = ["type": "control_request", "request_id": .string(requestId), "request": request]
        return r.serialized() + "\n"
    }
}
