import HappyCore

/// The command tree, assembled from the command types of each group
/// (`Commands/<Group>.swift`). Help, usage, parsing, "did you mean" suggestions and the
/// bash/zsh/fish completion scripts are all generated from `CommandTree.root`.
public enum CommandTree {
    /// Flags accepted on every command, before or after the subcommand.
    public static let globalFlags: [FlagSpec] = [
        FlagSpec("profile", value: .text, metavar: "NAME", completion: .profiles,
                 help: "profile to use (default: $HAPPY_PROFILE, else `default`)"),
        FlagSpec("server-url", value: .text, metavar: "URL", help: "Happy Server URL (overrides env and profile)"),
        FlagSpec("home-dir", value: .text, metavar: "PATH", completion: .directories,
                 help: "data directory (overrides env and profile)"),
        FlagSpec("json", help: "machine-readable output (one JSON document on stdout)"),
        FlagSpec("verbose", help: "print debug logs on stderr"),
        FlagSpec("help", short: "h", help: "show help"),
        FlagSpec("version", help: "print the version"),
    ]

    public static let root = CommandSpec.group(
        "happy",
        summary: "Control Claude Code sessions on this computer from the Happy apps",
        details: "happy connects this computer to a Happy Server so the Happy mobile and web apps can start and control Claude Code sessions here.",
        AuthCommands.group,
        MachineCommands.group,
        DaemonCommands.group,
        SessionCommands.group,
        LogsCommands.group,
        ProfileCommands.group,
        .command(CompletionsCommand.self),
        .command(DoctorCommand.self),
        .command(CompleteCommand.self))

    /// Every command path that runs ("daemon start"), hidden ones included.
    public static var leafPaths: [String] {
        root.walk().filter { !$0.1.isGroup && !$0.0.isEmpty }.map { $0.0.joined(separator: " ") }
    }
}
