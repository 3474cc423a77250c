import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon
/// The pieces of the command tree that the parser, help and completion generators read:
/// argument and flag specs, and `CommandSpec` nodes built from command types
/// (`CommandSpec.command(DaemonStop.self)`, see Command.swift).

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

