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

/// Turns stream-json lines of a session's `stdout.jsonl` into readable lines
/// (`happy session logs`): assistant text, tool uses, tool results, result lines.
public enum SessionLogFormatter {
    static func clip(_ s: String, _ n: Int = 200) -> String {
        let one = s.replacing("\n", with: " ⏎ ")
        return one.count > n ? String(one.prefix(n)) + "…" : one
    }

    static func money(_ d: Double) -> String {
        let cents = (d * 10000).rounded() / 10000
        var s = Format.fixed(cents, 4)
        while s.hasSuffix("0") && !s.hasSuffix(".00") { s.removeLast() }
        return "$" + s
    }

    /// Readable lines for one stream-json line (empty for lines with nothing to show).
    public static func render(_ line: String) -> [String] {
        let trimmed = line.trimmingCharacters(in: " \t\r")
        if trimmed.isEmpty { return [] }
        guard let j = try? JSON.parse(trimmed), case .object = j else { return ["[unparsed] " + clip(trimmed)] }
        let type = j["type"]?.string ?? "?"
        switch type {
        case "system":
            if j["subtype"]?.string == "init" {
                var parts = ["session started"]
                if let id = j["session_id"]?.string { parts.append("claude session \(id)") }
                if let m = j["model"]?.string { parts.append("model \(m)") }
                if let cwd = j["cwd"]?.string { parts.append("in \(cwd)") }
                return ["[system] " + parts.joined(separator: ", ")]
            }
            return ["[system] \(j["subtype"]?.string ?? "event")"]
        case "assistant", "user":
            var out: [String] = []
            let content = j["message"]?["content"]
            if let s = content?.string { return ["\(type): " + s] }
            for block in content?.array ?? [] {
                switch block["type"]?.string {
                case "text":
                    if let t = block["text"]?.string { out.append("\(type): " + t) }
                case "tool_use":
                    let name = block["name"]?.string ?? "tool"
                    let input = block["input"].map { clip($0.serialized(), 160) } ?? ""
                    out.append("tool use: \(name) \(input)")
                case "tool_result":
                    var text = ""
                    if let s = block["content"]?.string { text = s } else if let a = block["content"]?.array {
                        text = a.compactMap { $0["text"]?.string }.joined(separator: " ")
                    }
                    let err = block["is_error"]?.bool == true ? " (error)" : ""
                    out.append("tool result\(err): " + clip(text))
                case "thinking":
                    if let t = block["thinking"]?.string { out.append("thinking: " + clip(t)) }
                default: break
                }
            }
            return out
        case "result":
            var parts: [String] = [j["subtype"]?.string ?? (j["is_error"]?.bool == true ? "error" : "success")]
            if let n = j["num_turns"]?.int { parts.append("\(n) turn\(n == 1 ? "" : "s")") }
            if let c = j["total_cost_usd"]?.double { parts.append(money(c)) }
            if let d = j["duration_ms"]?.int { parts.append("\(d) ms") }
            var out = ["result: " + parts.joined(separator: ", ")]
            if let r = j["result"]?.string, !r.isEmpty { out.append("  " + clip(r, 400)) }
            return out
        case "control_request":
            let r = j["request"]
            guard r?["subtype"]?.string == "can_use_tool" else { return ["[control request] \(r?["subtype"]?.string ?? "?")"] }
            let tool = r?["tool_name"]?.string ?? "tool"
            let input = r?["input"].map { clip($0.serialized(), 160) } ?? ""
            let id = r?["tool_use_id"]?.string ?? j["request_id"]?.string ?? "?"
            return ["permission requested: \(tool) \(input) (\(id))"]
        case "control_cancel_request":
            return ["permission request canceled by claude (\(j["request_id"]?.string ?? "?"))"]
        case "happy":
            if j["subtype"]?.string == "permission" {
                let who: String
                switch j["by"]?.string {
                case "app": who = "by the app"
                case "local": who = "on this machine"
                case "auto": who = "by mode or allow-set"
                case "claude": who = "by claude"
                default: who = "by the daemon"
                }
                let reason = j["reason"]?.string.map { ": \($0)" } ?? ""
                return ["permission \(j["decision"]?.string ?? "?") \(who): \(j["tool"]?.string ?? "tool") (\(j["id"]?.string ?? "?"))\(reason)"]
            }
            if j["subtype"]?.string == "output-rotated" {
                return ["[output rotated: \(j["droppedBytes"]?.int ?? 0) bytes moved to stdout.1.jsonl]"]
            }
            return ["[happy] \(j["subtype"]?.string ?? "event")"]
        default:
            return ["[\(type)]"]
        }
    }
}

/// Splits a byte stream into lines, keeping a partial last line for later.
public struct LineAssembler: Sendable {
    private var pending: [UInt8] = []
    public init() {}
    public mutating func feed(_ bytes: [UInt8]) -> [String] {
        pending.append(contentsOf: bytes)
        var out: [String] = []
        var start = 0
        for i in 0..<pending.count where pending[i] == 10 {
            out.append(String(decoding: pending[start..<i], as: UTF8.self))
            start = i + 1
        }
        pending.removeFirst(start)
        return out
    }
    /// Resets (a file switch).
    public mutating func reset() { pending = [] }
}
