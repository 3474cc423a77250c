import HappyCore
import HappyServerAPI

/// "3 min ago" style times.
public enum RelativeTime {
    public static func format(ms: Int, nowMs: Int = Int(ISOTime.nowMs())) -> String {
        guard ms > 0 else { return "-" }
        let d = (nowMs - ms) / 1000
        let future = d < 0
        let s = abs(d)
        let text: String
        if s < 5 { return "just now" }
        else if s < 60 { text = "\(s) s" }
        else if s < 3600 { text = "\(s / 60) min" }
        else if s < 86400 { text = "\(s / 3600) h" }
        else { let days = s / 86400; text = days == 1 ? "1 day" : "\(days) days" }
        return future ? "in \(text)" : "\(text) ago"
    }

    public static func iso(ms: Int) -> String { ISOTime.string(epochMs: Int64(ms)) }
}

/// Human renderings for `machine show` / `machine list`.
public enum MachineText {
    static func str(_ j: JSON?) -> String? {
        guard let j else { return nil }
        switch j {
        case .string(let s): return s
        case .number: return j.serialized()
        case .bool(let b): return b ? "yes" : "no"
        default: return nil
        }
    }

    public static func show(_ m: DecryptedMachine, thisMachineId: String?, nowMs: Int = Int(ISOTime.nowMs())) -> String {
        var rows = [(String, String)]()
        let r = m.record
        rows.append(("Machine", r.id + (r.id == thisMachineId ? " (this machine)" : "")))
        let md = m.metadata
        rows.append(("Host", str(md?["host"]) ?? (md == nil ? "(undecryptable)" : "-")))
        rows.append(("Platform", str(md?["platform"]) ?? "-"))
        rows.append(("CLI version", str(md?["happyCliVersion"]) ?? "-"))
        rows.append(("Home", str(md?["homeDir"]) ?? "-"))
        rows.append(("Happy home", str(md?["happyHomeDir"]) ?? "-"))
        if let p = str(md?["profile"]) { rows.append(("Profile", p)) }
        let ds = m.daemonState
        if r.daemonState == nil {
            rows.append(("Status", "-"))
        } else if ds == nil {
            rows.append(("Status", "(undecryptable)"))
        } else {
            rows.append(("Status", str(ds?["status"]) ?? "-"))
            rows.append(("PID", str(ds?["pid"]) ?? "-"))
            rows.append(("Port", str(ds?["httpPort"]) ?? "-"))
            if let st = ds?["startedAt"]?.int { rows.append(("Started", "\(RelativeTime.format(ms: st, nowMs: nowMs)) (\(RelativeTime.iso(ms: st)))")) }
            if let sd = ds?["shutdownRequestedAt"]?.int {
                let src = str(ds?["shutdownSource"]).map { " by \($0)" } ?? ""
                rows.append(("Shutdown", "requested \(RelativeTime.format(ms: sd, nowMs: nowMs))\(src)"))
            }
        }
        rows.append(("Active", r.active ? "yes" : "no"))
        rows.append(("Last active", "\(RelativeTime.format(ms: r.activeAt, nowMs: nowMs))" + (r.activeAt > 0 ? " (\(RelativeTime.iso(ms: r.activeAt)))" : "")))
        rows.append(("Created", RelativeTime.format(ms: r.createdAt, nowMs: nowMs)))
        rows.append(("Versions", "metadata v\(r.metadataVersion), daemonState v\(r.daemonStateVersion)"))
        rows.append(("Encryption", m.encryption.rawValue))
        let w = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padded(to: w + 2) + $0.1 }.joined(separator: "\n")
    }

    public static func list(_ ms: [DecryptedMachine], thisMachineId: String?, nowMs: Int = Int(ISOTime.nowMs())) -> String {
        if ms.isEmpty { return "No machines." }
        let header = ["", "ID", "HOST", "PLATFORM", "STATUS", "ACTIVE", "LAST ACTIVE"]
        var table = [header]
        for m in ms {
            let status = m.record.daemonState == nil ? "-" : (str(m.daemonState?["status"]) ?? "?")
            table.append([
                m.record.id == thisMachineId ? "*" : "", m.record.id, str(m.metadata?["host"]) ?? "?",
                str(m.metadata?["platform"]) ?? "?", status, m.record.active ? "yes" : "no",
                RelativeTime.format(ms: m.record.activeAt, nowMs: nowMs),
            ])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in table { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        var lines = table.map { row in
            row.enumerated().map { i, c in i == row.count - 1 ? c : c.padded(to: widths[i]) }
                .joined(separator: "  ")
        }
        if ms.contains(where: { $0.record.id == thisMachineId }) { lines.append("* this machine") }
        return lines.map { $0.trimmingTrailingWhitespace }.joined(separator: "\n")
    }
}
