import HappyCore
import HappyConfig

/// `happy completions SHELL` (SPEC §3.6): the script generated from the command tree.
public enum CompletionsCommand: Command {
    public static let info = CommandInfo(
        "completions", summary: "Print a shell completion script",
        examples: ["happy completions bash > ~/.local/share/bash-completion/completions/happy"], loadsConfig: false)

    public enum Shell: String, CaseIterable, Sendable { case bash, zsh, fish }

    public struct Options: CommandOptions {
        public var shell: Shell
        public init(_ r: inout OptionReader) {
            shell = r.argument("SHELL", as: Shell.self, help: "the shell")
        }
    }

    public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
        ctx.out.write(CompletionScripts.script(for: o.shell.rawValue) ?? "")
        return 0
    }
}

/// The hidden `happy __complete profiles|sessions`: dynamic values for the completion
/// scripts, one per line, from local files only; never fails (a broken configuration
/// lists nothing).
public enum CompleteCommand: Command {
    public static let info = CommandInfo(
        "__complete", summary: "Dynamic values for shell completion (profiles, sessions)", hidden: true, loadsConfig: false)

    public enum Kind: String, CaseIterable, Sendable { case profiles, sessions }

    public struct Options: CommandOptions {
        public var kind: Kind
        public init(_ r: inout OptionReader) {
            kind = r.argument("KIND", as: Kind.self, help: "what to list")
            _ = r.remainingArguments("WORDS", help: "ignored")
        }
    }

    public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
        switch o.kind {
        case .profiles:
            for (name, _) in ctx.loader.locator.available() { ctx.out.line(name) }
        case .sessions:
            guard let home = try? ctx.loader.resolve(globals: ctx.globals).config.home else { return 0 }
            for id in sessionIds(home: home) { ctx.out.line(id) }
        }
        return 0
    }

    /// Session ids from `<home>/sessions/*/session.json` (field `id`): live sessions
    /// (`starting`/`running`) first, then the others, each group sorted.
    public static func sessionIds(home: HomeLayout) -> [String] {
        var live: [String] = [], other: [String] = []
        for dir in FileManagerShim.listDirectory(home.sessionsDir) {
            let path = home.sessionDir(dir) + "/session.json"
            guard let j = try? FileIO.readJSON(path), let id = j["id"]?.string, !id.isEmpty,
                  !id.contains(where: { $0.isWhitespace }) else { continue }
            let status = j["status"]?.string ?? ""
            if status == "starting" || status == "running" { live.append(id) } else { other.append(id) }
        }
        return live.sorted() + other.sorted()
    }
}
