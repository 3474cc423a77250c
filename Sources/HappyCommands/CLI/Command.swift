import HappyCore

/// One command = one type: its description (`info`), its typed `Options` (arguments and
/// flags, declared and read in one place) and `run`. The command tree is assembled from
/// these types (`CommandSpec.command(DaemonStop.self)`), so a leaf without `run` does not
/// compile, and help, usage, parsing and the completion scripts all come from the same
/// declarations.
///
///     enum DaemonStop: Command {
///         static let info = CommandInfo("stop", summary: "Stop the daemon")
///         struct Options: CommandOptions {
///             var keepSessions: Bool
///             init(_ r: inout OptionReader) {
///                 keepSessions = r.flag("keep-sessions", help: "leave running sessions alive")
///             }
///         }
///         static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 { ... }
///     }
///
/// `Command.run` is synchronous and never starts the concurrency runtime; a command that
/// needs `await` conforms to `AsyncCommand` instead (run on a task while the main thread
/// waits, see `CLI.main`).
public protocol CommandDefinition: SendableMetatype {
    associatedtype Options: CommandOptions = NoOptions
    static var info: CommandInfo { get }
}

public protocol Command: CommandDefinition {
    /// Returns the exit code; throw a `HappyError` to fail (rendered once by `CLI`).
    static func run(_ options: Options, _ ctx: CommandContext) throws -> Int32
}

public protocol AsyncCommand: CommandDefinition {
    /// Returns the exit code; throw a `HappyError` to fail (rendered once by `CLI`).
    static func run(_ options: Options, _ ctx: CommandContext) async throws -> Int32
}

/// What help shows about a command besides its arguments and flags.
public struct CommandInfo: Sendable {
    public var name: String
    public var summary: String
    /// Longer description shown by `--help` (optional).
    public var details: String
    /// Example invocations shown in help.
    public var examples: [String]
    public var hidden: Bool
    /// The dispatcher resolves the configuration before `run` (so an unknown profile or a
    /// broken profile file fails every such command the same way).
    public var loadsConfig: Bool

    public init(_ name: String, summary: String, details: String = "", examples: [String] = [],
                hidden: Bool = false, loadsConfig: Bool = true) {
        self.name = name
        self.summary = summary
        self.details = details
        self.examples = examples
        self.hidden = hidden
        self.loadsConfig = loadsConfig
    }
}

/// A command's typed options. `init` declares every argument and flag on the reader and
/// takes its value from it, so each one is written once. It runs once to build the spec
/// (the reader then returns defaults) and once with the parsed command line; it must call
/// the same readers every time, whatever the values.
public protocol CommandOptions: Sendable {
    init(_ r: inout OptionReader)
}

/// Options of a command without arguments or flags.
public struct NoOptions: CommandOptions {
    public init(_ r: inout OptionReader) {}
}

/// Declares arguments and flags (collecting their specs) and reads their parsed values.
/// Values were validated by the parser already (integers, choices, `KEY=VALUE`).
public struct OptionReader {
    private let parsed: ParsedCommand?
    public private(set) var args: [ArgSpec] = []
    public private(set) var flags: [FlagSpec] = []

    /// A reader that only collects specs (values are the defaults).
    init() { parsed = nil }
    /// A reader over a parsed command line.
    init(parsed: ParsedCommand) { self.parsed = parsed }

    private mutating func declare(_ f: FlagSpec) {
        precondition(!flags.contains { $0.long == f.long }, "flag --\(f.long) declared twice")
        flags.append(f)
    }

    private mutating func declare(_ a: ArgSpec) {
        precondition(!args.contains { $0.name == a.name }, "argument \(a.name) declared twice")
        precondition(!(args.last?.variadic ?? false), "an argument after the variadic \(args.last!.name)")
        args.append(a)
    }

    // MARK: flags

    /// A switch: `--force`.
    public mutating func flag(_ long: String, short: Character? = nil, help: String) -> Bool {
        declare(FlagSpec(long, short: short, help: help))
        return parsed?.flag(long) ?? false
    }

    /// A text value: `--prompt TEXT` (nil when not given).
    public mutating func option(_ long: String, short: Character? = nil, metavar: String = "VALUE",
                                completion: CompletionKind? = nil, help: String) -> String? {
        declare(FlagSpec(long, short: short, value: .text, metavar: metavar, completion: completion, help: help))
        return parsed?.value(long)
    }

    /// A non-negative integer: `-n N`.
    public mutating func count(_ long: String, short: Character? = nil, metavar: String = "N", default d: Int,
                               help: String) -> Int {
        declare(FlagSpec(long, short: short, value: .integer, metavar: metavar, help: help))
        return parsed?.value(long).flatMap { Int($0) } ?? d
    }

    /// One of an enum's raw values: `--method mobile|web`.
    public mutating func choice<E: CaseIterable & RawRepresentable>(_ long: String, default d: E, help: String) -> E
        where E.RawValue == String {
        declare(FlagSpec(long, value: .choices(E.allCases.map(\.rawValue)), help: help))
        return parsed?.value(long).flatMap { E(rawValue: $0) } ?? d
    }

    /// One of an enum's raw values, or nil when the flag is not given.
    public mutating func optionalChoice<E: CaseIterable & RawRepresentable>(_ long: String, as: E.Type, help: String) -> E?
        where E.RawValue == String {
        declare(FlagSpec(long, value: .choices(E.allCases.map(\.rawValue)), help: help))
        return parsed?.value(long).flatMap { E(rawValue: $0) }
    }

    /// A repeatable `--env KEY=VALUE`, as a dictionary (a later key wins).
    public mutating func keyValues(_ long: String, metavar: String = "KEY=VALUE", help: String) -> [String: String] {
        declare(FlagSpec(long, value: .keyValue, metavar: metavar, repeatable: true, help: help))
        var d: [String: String] = [:]
        for kv in parsed?.values(long) ?? [] {
            guard let eq = kv.firstIndex(of: "=") else { continue }
            d[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
        }
        return d
    }

    // MARK: positional arguments (in declaration order)

    /// A required argument.
    public mutating func argument(_ name: String, completion: CompletionKind? = nil, help: String) -> String {
        declare(ArgSpec(name, completion: completion, help: help))
        return parsed?.argument(name) ?? ""
    }

    /// An optional argument.
    public mutating func optionalArgument(_ name: String, completion: CompletionKind? = nil, help: String) -> String? {
        declare(ArgSpec(name, optional: true, completion: completion, help: help))
        return parsed?.argument(name)
    }

    /// A required argument that is one of an enum's raw values (`bash|zsh|fish`).
    public mutating func argument<E: CaseIterable & RawRepresentable>(_ name: String, as: E.Type, help: String) -> E
        where E.RawValue == String {
        let all = E.allCases.map(\.rawValue)
        declare(ArgSpec(name, choices: all, help: help))
        return parsed?.argument(name).flatMap { E(rawValue: $0) } ?? E.allCases.first!
    }

    /// Every remaining positional value (optional, last).
    public mutating func remainingArguments(_ name: String, help: String) -> [String] {
        declare(ArgSpec(name, optional: true, variadic: true, help: help))
        return parsed?.arguments[name] ?? []
    }
}

/// How a leaf runs: synchronously on the calling thread, or as an async function.
public enum CommandRunner: Sendable {
    case sync(@Sendable (ParsedCommand, CommandContext) throws -> Int32)
    case async(@Sendable (ParsedCommand, CommandContext) async throws -> Int32)
}

/// A node of the command tree: a group of subcommands or a command with its runner.
/// Built only from command types (`command`) and non-empty groups (`group`), so every leaf
/// can run.
public struct CommandSpec: Sendable {
    public enum Kind: Sendable {
        case group([CommandSpec])
        case command(CommandRunner)
    }

    public let name: String
    public let summary: String
    /// Longer description shown by `--help` (optional).
    public let details: String
    public let args: [ArgSpec]
    public let flags: [FlagSpec]
    public let hidden: Bool
    public let loadsConfig: Bool
    /// Example invocations shown in help.
    public let examples: [String]
    public let kind: Kind

    private init(info: CommandInfo, args: [ArgSpec] = [], flags: [FlagSpec] = [], kind: Kind) {
        name = info.name
        summary = info.summary
        details = info.details
        examples = info.examples
        hidden = info.hidden
        loadsConfig = info.loadsConfig
        self.args = args
        self.flags = flags
        self.kind = kind
    }

    /// The leaf of a synchronous command type.
    public static func command<C: Command>(_ type: C.Type) -> CommandSpec {
        let (args, flags) = declared(C.Options.self)
        return CommandSpec(info: C.info, args: args, flags: flags, kind: .command(.sync { parsed, ctx in
            try C.run(bind(C.Options.self, parsed, args, flags), ctx)
        }))
    }

    /// The leaf of an async command type.
    public static func command<C: AsyncCommand>(_ type: C.Type) -> CommandSpec {
        let (args, flags) = declared(C.Options.self)
        return CommandSpec(info: C.info, args: args, flags: flags, kind: .command(.async { parsed, ctx in
            try await C.run(bind(C.Options.self, parsed, args, flags), ctx)
        }))
    }

    private static func declared<O: CommandOptions>(_: O.Type) -> ([ArgSpec], [FlagSpec]) {
        var r = OptionReader()
        _ = O(&r)
        return (r.args, r.flags)
    }

    /// The options of a parsed command line; they must read what they declared.
    private static func bind<O: CommandOptions>(_: O.Type, _ parsed: ParsedCommand, _ args: [ArgSpec],
                                                _ flags: [FlagSpec]) -> O {
        var r = OptionReader(parsed: parsed)
        let o = O(&r)
        precondition(r.args == args && r.flags == flags, "\(O.self) read other options than it declared")
        return o
    }

    /// A group of at least one subcommand.
    public static func group(_ name: String, summary: String, details: String = "",
                             _ first: CommandSpec, _ rest: CommandSpec...) -> CommandSpec {
        let children = [first] + rest
        for (i, c) in children.enumerated() {
            precondition(!children[..<i].contains { $0.name == c.name }, "two subcommands '\(c.name)' in '\(name)'")
        }
        return CommandSpec(info: CommandInfo(name, summary: summary, details: details), kind: .group(children))
    }

    public var isGroup: Bool {
        if case .group = kind { return true }
        return false
    }

    public var children: [CommandSpec] {
        if case .group(let c) = kind { return c }
        return []
    }

    public var runner: CommandRunner? {
        if case .command(let r) = kind { return r }
        return nil
    }

    public func child(named n: String) -> CommandSpec? {
        children.first { $0.name == n }
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
