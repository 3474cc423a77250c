import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon
/// Help and usage text, generated from the command tree.
public enum HelpText {
    /// `happy session new [DIRECTORY] [--prompt TEXT] [--create-dir] [--env KEY=VALUE]...`
    public static func usage(path: [String], tree: CommandSpec = CommandTree.root) -> String {
        guard let node = tree.find(path) else { return "happy" }
        var parts = ["happy"] + path
        if node.isGroup {
            parts.append("<command>")
        } else {
            for a in node.args { parts.append(a.usage) }
            for f in node.flags { parts.append("[\(f.usage)]" + (f.repeatable ? "..." : "")) }
        }
        parts.append("[options]")
        return parts.joined(separator: " ")
    }

    public static func render(path: [String], tree: CommandSpec = CommandTree.root,
                              globalFlags: [FlagSpec] = CommandTree.globalFlags) -> String {
        guard let node = tree.find(path) else { return "" }
        var out = ""
        let title = (["happy"] + path).joined(separator: " ")
        out += path.isEmpty ? "happy \(HappyVersion.current) — \(node.summary)\n" : "\(title) — \(node.summary)\n"
        if !node.details.isEmpty { out += "\n" + node.details + "\n" }
        out += "\nUsage: " + usage(path: path, tree: tree) + "\n"

        func section(_ name: String, _ rows: [(String, String)]) {
            guard !rows.isEmpty else { return }
            let w = min(28, rows.map { $0.0.count }.max() ?? 0)
            out += "\n\(name):\n"
            for (l, r) in rows {
                let pad = l.count < w ? String(repeating: " ", count: w - l.count) : ""
                out += "  \(l)\(pad)  \(r)\n"
            }
        }
        if node.isGroup {
            section("Commands", node.children.filter { !$0.hidden }.map { c in
                let sub = c.isGroup ? " " + c.children.filter { !$0.hidden }.map(\.name).joined(separator: "|") : ""
                return (path.isEmpty ? c.name : c.name, c.summary + (path.isEmpty && c.isGroup ? " (\(sub.dropFirst()))" : ""))
            })
        }
        section("Arguments", node.args.map { ($0.name, $0.help) })
        section("Options", node.flags.map { ($0.displayNames + ($0.repeatable ? " ..." : ""), $0.help) })
        section("Global options", globalFlags.map { ($0.displayNames, $0.help) })
        if !node.examples.isEmpty {
            out += "\nExamples:\n" + node.examples.map { "  \($0)\n" }.joined()
        }
        if node.isGroup {
            out += "\nRun '\(title) <command> --help' for a command's options.\n"
        }
        return out
    }
}
