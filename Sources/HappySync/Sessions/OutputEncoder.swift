import HappyCore

/// One message the daemon sends for a session: its plaintext record and a `localId` that
/// names it for ever (so a resend is deduplicated by the server).
struct OutgoingMessage: Equatable {
    var localId: String
    var content: JSON
}

/// Turns claude's stdout lines into the records the app renders. One interface, so the
/// newer session-protocol envelope (SESSIONS.md §4.2.3) can be added beside the legacy
/// `output` records without touching the sender.
protocol SessionOutputEncoder: Sendable {
    /// The messages for one stdout line (often none). `localId` is the line's id: each
    /// message's id is derived from it deterministically.
    func messages(for line: JSON, localId: String) -> [OutgoingMessage]
}

/// The legacy `output` records (SESSIONS.md §4.2.1): `assistant` lines and `user` lines
/// that carry `tool_result` blocks, sanitised to the app's schema; a `ready` event (and,
/// for a failed turn that no abort caused, a `message` event) for each `result`.
struct LegacyOutputEncoder: SessionOutputEncoder {
    func messages(for line: JSON, localId: String) -> [OutgoingMessage] {
        switch line["type"]?.string {
        case "assistant":
            guard let data = Self.assistant(line, localId: localId) else { return [] }
            return [OutgoingMessage(localId: localId, content: Self.output(data))]
        case "user":
            guard let data = Self.toolResults(line, localId: localId) else { return [] }
            return [OutgoingMessage(localId: localId, content: Self.output(data))]
        case "result":
            var out = [OutgoingMessage(localId: localId + "-ready", content: Self.event(["type": "ready"], id: localId + "-ready"))]
            if line["is_error"]?.bool == true && !Self.causedByAbort(line) {
                let text = line["result"]?.string.flatMap { $0.isEmpty ? nil : $0 }
                    ?? "Turn failed: \(line["subtype"]?.string ?? "error")"
                out.append(OutgoingMessage(localId: localId + "-error",
                                           content: Self.event(["type": "message", "message": .string(text)], id: localId + "-error")))
            }
            return out
        default:
            return []
        }
    }

    /// An interrupted turn ends with `error_during_execution` and a `terminal_reason` of
    /// `aborted_*` (claude 2.1.337): the abort already said "Aborted by user".
    static func causedByAbort(_ result: JSON) -> Bool {
        if let r = result["terminal_reason"]?.string, r.hasPrefix("aborted") { return true }
        return false
    }

    static func output(_ data: JSON) -> JSON {
        ["role": "agent", "content": ["type": "output", "data": data], "meta": ["sentFrom": "cli"]]
    }

    /// An agent event record (`ready`, `message`).
    static func event(_ data: JSON, id: String) -> JSON {
        ["role": "agent", "content": ["id": .string(uuid(from: id)), "type": "event", "data": data]]
    }

    /// A prompt typed on this machine, mirrored so the app shows both sides.
    static func userText(_ text: String) -> JSON {
        ["role": "user", "content": ["type": "text", "text": .string(text)], "meta": ["sentFrom": "cli"]]
    }

    /// An `assistant` line with content blocks limited to text/thinking/tool_use (any
    /// other block makes the app drop the whole record), a `uuid`, and the fields the
    /// app's schema requires; nil when nothing is left to show.
    static func assistant(_ line: JSON, localId: String) -> JSON? {
        guard case .object(var o) = line, case .object(var msg)? = line["message"] else { return nil }
        let blocks = (msg["content"]?.array ?? []).compactMap { b -> JSON? in
            switch b["type"]?.string {
            case "text": return b["text"]?.string != nil ? b : nil
            case "thinking": return b["thinking"]?.string != nil ? b : nil
            case "tool_use": return b["id"]?.string != nil && b["name"]?.string != nil ? b.setting("input", b["input"] ?? .object([:])) : nil
            default: return nil
            }
        }
        guard !blocks.isEmpty else { return nil }
        msg["content"] = .array(blocks)
        msg["role"] = "assistant"
        if msg["model"]?.string == nil { msg["model"] = "unknown" }
        o["message"] = .object(msg)
        return envelope(o, localId: localId)
    }

    /// A `user` line reduced to its `tool_result` blocks (content: a string or text items);
    /// nil when it has none (claude's echo of a prompt, synthetic lines).
    static func toolResults(_ line: JSON, localId: String) -> JSON? {
        guard case .object(var o) = line, case .object(var msg)? = line["message"], o["isMeta"]?.bool != true,
              let content = msg["content"]?.array else { return nil }
        let blocks = content.compactMap { b -> JSON? in
            guard b["type"]?.string == "tool_result", let id = b["tool_use_id"]?.string else { return nil }
            var r: [String: JSON] = ["type": "tool_result", "tool_use_id": .string(id), "content": toolResultContent(b["content"])]
            if let e = b["is_error"]?.bool { r["is_error"] = .bool(e) }
            return .object(r)
        }
        guard !blocks.isEmpty else { return nil }
        msg["content"] = .array(blocks)
        msg["role"] = "user"
        o["message"] = .object(msg)
        if let r = o["tool_use_result"], o["toolUseResult"] == nil { o["toolUseResult"] = r }
        o["tool_use_result"] = nil
        return envelope(o, localId: localId)
    }

    /// `tool_result.content` as the app accepts it: a string, or only `{type: "text", text}` items.
    static func toolResultContent(_ c: JSON?) -> JSON {
        guard let c else { return "" }
        if c.string != nil { return c }
        if let items = c.array {
            return .array(items.compactMap { i in
                guard i["type"]?.string == "text", let t = i["text"]?.string else { return nil }
                return ["type": "text", "text": .string(t)]
            })
        }
        return .string(c.serialized())
    }

    /// The log-line fields every record gets: `uuid` (claude's, else derived from the
    /// localId), `isSidechain`, and `parent_tool_use_id` kept.
    static func envelope(_ o: [String: JSON], localId: String) -> JSON {
        var r = o
        if r["uuid"]?.string == nil { r["uuid"] = .string(uuid(from: localId)) }
        let parent = r["parent_tool_use_id"]
        r["isSidechain"] = .bool(parent?.string != nil)
        if parent == nil { r["parent_tool_use_id"] = .null }
        return .object(r)
    }

    /// A UUID-shaped id derived from a string (stable across resends).
    static func uuid(from s: String) -> String {
        var h: UInt64 = 0xcbf29ce484222325
        var h2: UInt64 = 0x84222325cbf29ce4
        for b in s.utf8 {
            h = (h ^ UInt64(b)) &* 0x100000001b3
            h2 = (h2 ^ UInt64(b)) &* 0x100000001b3 &+ 0x9e3779b97f4a7c15
        }
        func hex(_ v: UInt64, _ n: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        let a = hex(h, 16), b = hex(h2, 16)
        let all = Array(a + b)
        var out = String(all[0..<8]) + "-" + String(all[8..<12]) + "-4" + String(all[13..<16]) + "-"
        out += "8" + String(all[17..<20]) + "-" + String(all[20..<32])
        return out
    }
}
