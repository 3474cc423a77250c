import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon
/// The command tree as data. Help, usage, parsing, "did you mean" suggestions and the
/// bash/zsh/fish completion scripts are all generated from `CommandTree.root`.

/// How a value (flag value or positional argument) completes in the shell.
public enum CompletionKind: Sendable, Equatable {
    case none
    case choices([String])
    /// `happy __complete profiles`
    case profiles
    /// `happy __complete sessions`
    case sessions
    case directories
    case files
}

/// What a flag's value must look like (checked by the parser: exit 2 when invalid).
public enum ValueKind: Sendable, Equatable {
    case text
    case integer
    case choices([String])
    /// `KEY=VALUE`
    case keyValue
}

public struct FlagSpec: Sendable, Equatable {
    /// Long name without dashes (`force`).
    public var long: String
    public var short: Character?
    /// nil: a switch without a value.
    public var value: ValueKind?
    public var metavar: String
    public var repeatable: Bool
    public var help: String
    public var completion: CompletionKind

    public init(_ long: String, short: Character? = nil, value: ValueKind? = nil, metavar: String = "VALUE",
                repeatable: Bool = false, completion: CompletionKind? = nil, help: String) {
        self.long = long
        self.short = short
        self.value = value
        self.metavar = metavar
        self.repeatable = repeatable
        self.help = help
        if let completion {
            self.completion = completion
        } else if case .choices(let c)? = value {
            self.completion = .choices(c)
        } else {
            self.completion = .none
        }
    }

    public var takesValue: Bool { value != nil }
    /// `--method mobile|web`, `-n N`, `--force`
    public var usage: String {
        var s = "--\(long)"
        if let value {
            if case .choices(let c) = value { s += " " + c.joined(separator: "|") } else { s += " " + metavar }
        }
        return s
    }
    public var displayNames: String {
        (short.map { "-\($0), " } ?? "") + usage
    }
}

public struct ArgSpec: Sendable, Equatable {
    public var name: String
    public var optional: Bool
    public var variadic: Bool
    public var choices: [String]?
    public var help: String
    public var completion: CompletionKind

    public init(_ name: String, optional: Bool = false, variadic: Bool = false, choices: [String]? = nil,
                completion: CompletionKind? = nil, help: String) {
        self.name = name
        self.optional = optional
        self.variadic = variadic
        self.choices = choices
        self.help = help
        self.completion = completion ?? (choices.map { .choices($0) } ?? .none)
    }

    public var usage: String {
        let base = choices.map { $0.joined(separator: "|") } ?? name
        let v = variadic ? "\(base)..." : base
        return optional ? "[\(v)]" : v
    }
}

public struct CommandSpec: Sendable, Equatable {
    public var name: String
    public var aliases: [String]
    public var summary: String
    /// Longer description shown by `--help` (optional).
    public var details: String
    public var args: [ArgSpec]
    public var flags: [FlagSpec]
    public var children: [CommandSpec]
    public var hidden: Bool
    /// The dispatcher resolves the configuration before the handler runs (so an unknown
    /// profile or a broken profile file fails every such command the same way).
    public var loadsConfig: Bool
    /// Example invocations shown in help.
    public var examples: [String]

    public init(_ name: String, aliases: [String] = [], summary: String, details: String = "", args: [ArgSpec] = [],
                flags: [FlagSpec] = [], children: [CommandSpec] = [], hidden: Bool = false, loadsConfig: Bool = true,
                examples: [String] = []) {
        self.name = name
        self.aliases = aliases
        self.summary = summary
        self.details = details
        self.args = args
        self.flags = flags
        self.children = children
        self.hidden = hidden
        self.loadsConfig = loadsConfig
        self.examples = examples
    }

    public var isGroup: Bool { !children.isEmpty }

    public func child(named n: String) -> CommandSpec? {
        children.first { $0.name == n || $0.aliases.contains(n) }
    }

    /// Depth-first walk: (path, spec) for every command below and including self.
    public func walk(_ prefix: [String] = []) -> [([String], CommandSpec)] {
        var out: [([String], CommandSpec)] = [(prefix, self)]
        for c in children { out += c.walk(prefix + [c.name]) }
        return out
    }

    public func find(_ path: [String]) -> CommandSpec? {
        var node = self
        for p in path {
            guard let c = node.child(named: p) else { return nil }
            node = c
        }
        return node
    }
}

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

    public static let root = CommandSpec(
        "happy",
        summary: "Control Claude Code sessions on this computer from the Happy apps",
        details: "happy connects this computer to a Happy Server so the Happy mobile and web apps can start and control Claude Code sessions here.",
        children: [
            CommandSpec("auth", summary: "Log in to the Happy Server and manage credentials", children: [
                CommandSpec("login", summary: "Authenticate this computer (QR code, web link or account secret)",
                            flags: [
                                FlagSpec("method", value: .choices(["mobile", "web"]),
                                         help: "show a QR code for the mobile app (default) or a web link"),
                                FlagSpec("force", help: "replace existing credentials and the machine id"),
                                FlagSpec("secret-stdin", help: "read an existing account secret from stdin (non-interactive)"),
                            ],
                            examples: ["happy auth login", "happy auth login --method web",
                                       "happy auth login --secret-stdin < secret.txt"]),
                CommandSpec("status", summary: "Show whether this computer is authenticated",
                            flags: [FlagSpec("offline", help: "do not ask the server whether the token is accepted")],
                            examples: ["happy auth status", "happy auth status --offline --json"]),
                CommandSpec("logout", summary: "Stop the daemon and delete the credentials",
                            flags: [FlagSpec("yes", help: "do not ask for confirmation")],
                            examples: ["happy auth logout --yes"]),
            ]),
            CommandSpec("machine", summary: "Show machines registered with the server", children: [
                CommandSpec("show", summary: "Show one machine (default: this one)",
                            args: [ArgSpec("MACHINE_ID", optional: true, help: "machine id (default: this machine)")],
                            examples: ["happy machine show", "happy machine show 0b7c... --json"]),
                CommandSpec("list", summary: "List this account's machines", examples: ["happy machine list"]),
            ]),
            CommandSpec("daemon", summary: "Run and control the background daemon", children: [
                CommandSpec("start", summary: "Start the daemon in the background", examples: ["happy daemon start"]),
                CommandSpec("start-sync", summary: "Run the daemon in the foreground (for service managers)",
                            examples: ["happy daemon start-sync"]),
                CommandSpec("restart", summary: "Stop then start the daemon, keeping sessions running",
                            examples: ["happy daemon restart"]),
                CommandSpec("stop", summary: "Stop the daemon",
                            flags: [FlagSpec("keep-sessions", help: "leave running sessions alive")],
                            examples: ["happy daemon stop", "happy daemon stop --keep-sessions"]),
                CommandSpec("status", summary: "Show whether the daemon is running", examples: ["happy daemon status --json"]),
                CommandSpec("install", summary: "Write a systemd user unit for this profile",
                            examples: ["happy --profile dev daemon install"]),
                CommandSpec("uninstall", summary: "Remove the systemd user unit of this profile",
                            examples: ["happy daemon uninstall"]),
            ]),
            CommandSpec("session", summary: "Start and control Claude Code sessions", children: [
                CommandSpec("new", summary: "Start a session in a directory",
                            args: [ArgSpec("DIRECTORY", optional: true, completion: .directories,
                                           help: "working directory (default: the current directory)")],
                            flags: [
                                FlagSpec("prompt", value: .text, metavar: "TEXT", help: "first message sent to the session"),
                                FlagSpec("create-dir", help: "create DIRECTORY when it does not exist"),
                                FlagSpec("env", value: .keyValue, metavar: "KEY=VALUE", repeatable: true,
                                         help: "extra environment variable for the session (repeatable)"),
                            ],
                            examples: ["happy session new ~/code/app --prompt 'run the tests'",
                                       "happy session new /tmp/x --create-dir --env DEBUG=1"]),
                CommandSpec("list", summary: "List sessions",
                            flags: [FlagSpec("all", help: "include finished sessions")],
                            examples: ["happy session list", "happy session list --all --json"]),
                CommandSpec("stop", summary: "Stop a session",
                            args: [ArgSpec("SESSION_ID", completion: .sessions, help: "the session to stop")],
                            examples: ["happy session stop 3f2a..."]),
                CommandSpec("send", summary: "Send a message to a running session",
                            args: [ArgSpec("SESSION_ID", completion: .sessions, help: "the session"),
                                   ArgSpec("TEXT", help: "the message")],
                            examples: ["happy session send 3f2a... 'now fix the lint errors'"]),
                CommandSpec("logs", summary: "Print a session's events",
                            args: [ArgSpec("SESSION_ID", completion: .sessions, help: "the session")],
                            flags: [FlagSpec("follow", short: "f", help: "keep printing new events"),
                                    FlagSpec("raw", help: "print the stream-json lines as written")],
                            examples: ["happy session logs 3f2a... -f"]),
            ]),
            CommandSpec("logs", summary: "Read the daemon logs of this profile", children: [
                CommandSpec("tail", summary: "Print the last lines of the newest daemon log",
                            flags: [FlagSpec("lines", short: "n", value: .integer, metavar: "N",
                                             help: "number of lines (default 50)"),
                                    FlagSpec("follow", short: "f", help: "keep printing new lines, across rotation")],
                            examples: ["happy logs tail -n 100 -f"]),
                CommandSpec("list", summary: "List daemon log files, newest first", examples: ["happy logs list"]),
                CommandSpec("path", summary: "Print the newest daemon log's path", examples: ["happy logs path"]),
            ]),
            CommandSpec("profile", summary: "Inspect profiles and the resolved configuration", children: [
                CommandSpec("list", summary: "List every profile and where it comes from", loadsConfig: false,
                            examples: ["happy profile list", "happy profile list --json"]),
                CommandSpec("show", summary: "Print the resolved configuration and where each value came from",
                            args: [ArgSpec("NAME", optional: true, completion: .profiles,
                                           help: "profile to show (default: the active one)")],
                            loadsConfig: false,
                            examples: ["happy profile show", "happy profile show dev --json"]),
                CommandSpec("path", summary: "Print the user profile folder", loadsConfig: false,
                            examples: ["happy profile path"]),
            ], loadsConfig: false),
            CommandSpec("completions", summary: "Print a shell completion script",
                        args: [ArgSpec("SHELL", choices: ["bash", "zsh", "fish"], help: "the shell")],
                        loadsConfig: false,
                        examples: ["happy completions bash > ~/.local/share/bash-completion/completions/happy"]),
            CommandSpec("doctor", summary: "Check configuration, credentials, server and daemon",
                        examples: ["happy doctor", "happy doctor --json"]),
            CommandSpec("__complete", summary: "Dynamic values for shell completion (profiles, sessions)",
                        args: [ArgSpec("KIND", choices: ["profiles", "sessions"], help: "what to list"),
                               ArgSpec("WORDS", optional: true, variadic: true, help: "ignored")],
                        hidden: true, loadsConfig: false),
        ])

    /// Every command path that runs a handler ("daemon start"), hidden ones included.
    public static var leafPaths: [String] {
        root.walk().filter { !$0.1.isGroup && !$0.0.isEmpty }.map { $0.0.joined(separator: " ") }
    }
}
