import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon
/// Usage errors (exit 2).
public enum CLIError: HappyError, Equatable {
    case unknownCommand(name: String, parent: String, suggestion: String?, available: [String])
    case unknownFlag(flag: String, command: String, suggestion: String?)
    case missingCommand(parent: String, available: [String])
    case missingArgument(name: String, command: String)
    case unexpectedArgument(value: String, command: String)
    case missingFlagValue(flag: String)
    case flagTakesNoValue(flag: String)
    case invalidValue(flag: String, value: String, expected: String)
    case repeatedFlag(flag: String)

    public var what: String {
        switch self {
        case .unknownCommand(let n, let p, _, _): return "unknown command '\(n)'" + (p.isEmpty ? "" : " for '\(p)'")
        case .unknownFlag(let f, let c, _): return "unknown flag '\(f)' for '\(c)'"
        case .missingCommand(let p, _): return "'\(p)' needs a subcommand"
        case .missingArgument(let n, let c): return "missing argument \(n) for '\(c)'"
        case .unexpectedArgument(let v, let c): return "unexpected argument '\(v)' for '\(c)'"
        case .missingFlagValue(let f): return "flag \(f) needs a value"
        case .flagTakesNoValue(let f): return "flag \(f) does not take a value"
        case .invalidValue(let f, let v, let e): return "invalid value '\(v)' for \(f): expected \(e)"
        case .repeatedFlag(let f): return "flag \(f) given more than once"
        }
    }

    public var hint: String? {
        switch self {
        case .unknownCommand(_, let p, let s, let a):
            if let s { return "did you mean '\(s)'? (see '\(p.isEmpty ? "happy" : p) --help')" }
            return "available: \(a.joined(separator: ", "))"
        case .unknownFlag(_, let c, let s):
            if let s { return "did you mean '\(s)'? (see '\(c) --help')" }
            return "see '\(c) --help'"
        case .missingCommand(_, let a): return "available: \(a.joined(separator: ", "))"
        case .missingArgument(_, let c), .unexpectedArgument(_, let c): return "see '\(c) --help'"
        case .missingFlagValue(let f): return "write \(f) VALUE or \(f)=VALUE"
        case .flagTakesNoValue(let f): return "write \(f) alone"
        case .invalidValue: return nil
        case .repeatedFlag(let f): return "give \(f) once"
        }
    }

    public var exitCode: Int32 { 2 }
}

/// The global options, parsed wherever they appear.
public struct GlobalOptions: Sendable, Equatable {
    public var profile: String?
    public var serverUrl: String?
    public var homeDir: String?
    public var json = false
    public var verbose = false
    public init() {}
}

/// The result of a successful parse of a runnable command.
public struct ParsedCommand: Sendable, Equatable {
    /// ["daemon", "start"]
    public var path: [String]
    /// Positional values by argument name (variadic arguments collect several).
    public var arguments: [String: [String]] = [:]
    /// Positionals in order.
    public var positionals: [String] = []
    /// Flag values by long name; a switch holds one empty string per occurrence.
    public var flags: [String: [String]] = [:]
    public var globals = GlobalOptions()

    public var pathString: String { path.joined(separator: " ") }

    public init(path: [String]) { self.path = path }

    public func argument(_ name: String) -> String? { arguments[name]?.first }
    public func flag(_ name: String) -> Bool { flags[name] != nil }
    public func value(_ name: String) -> String? { flags[name]?.last }
    public func values(_ name: String) -> [String] { flags[name] ?? [] }
}

public enum ParseOutcome: Sendable, Equatable {
    case run(ParsedCommand)
    /// `-h/--help` (or a bare `happy`): print help for this command path.
    case help(path: [String], globals: GlobalOptions)
    case version
}

public enum ArgumentParser {
    public static func parse(_ args: [String], tree: CommandSpec = CommandTree.root,
                             globalFlags: [FlagSpec] = CommandTree.globalFlags) throws -> ParseOutcome {
        var node = tree
        var path: [String] = []
        var parsed = ParsedCommand(path: [])
        var wantHelp = false
        var wantVersion = false
        var positionals: [String] = []
        var onlyPositionals = false
        var i = 0

        func display(_ p: [String]) -> String { (["happy"] + p).joined(separator: " ") }

        while i < args.count {
            let tok = args[i]
            i += 1
            if !onlyPositionals && tok == "--" { onlyPositionals = true; continue }
            if !onlyPositionals && tok.count > 1 && tok.hasPrefix("-") {
                var name = tok
                var inline: String?
                if let eq = tok.firstIndex(of: "=") {
                    name = String(tok[..<eq])
                    inline = String(tok[tok.index(after: eq)...])
                }
                let isLong = name.hasPrefix("--")
                var bare = isLong ? String(name.dropFirst(2)) : String(name.dropFirst())
                // `-n5`: a short flag that takes a value, with the value attached.
                if !isLong, inline == nil, bare.count > 1, let c = bare.first,
                   (node.flags + globalFlags).contains(where: { $0.short == c && $0.takesValue }) {
                    inline = String(bare.dropFirst())
                    bare = String(c)
                    name = "-" + bare
                }
                func match(_ f: FlagSpec) -> Bool {
                    isLong ? f.long == bare : (bare.count == 1 && f.short == bare.first)
                }
                let local = node.flags.first(where: match)
                let global = local == nil ? globalFlags.first(where: match) : nil
                guard let spec = local ?? global else {
                    let candidates = (node.flags + globalFlags).map { "--" + $0.long }
                    throw CLIError.unknownFlag(flag: name, command: display(path),
                                               suggestion: suggest(isLong ? name : "--" + bare, among: candidates))
                }
                var value = ""
                if spec.takesValue {
                    if let inline {
                        value = inline
                    } else if i < args.count {
                        value = args[i]
                        i += 1
                    } else {
                        throw CLIError.missingFlagValue(flag: name)
                    }
                    try validate(value, kind: spec.value!, flag: name)
                } else if inline != nil {
                    throw CLIError.flagTakesNoValue(flag: name)
                }
                if global != nil {
                    switch spec.long {
                    case "profile": parsed.globals.profile = value
                    case "server-url": parsed.globals.serverUrl = value
                    case "home-dir": parsed.globals.homeDir = value
                    case "json": parsed.globals.json = true
                    case "verbose": parsed.globals.verbose = true
                    case "help": wantHelp = true
                    case "version": wantVersion = true
                    default: break
                    }
                } else {
                    if spec.takesValue && !spec.repeatable && parsed.flags[spec.long] != nil {
                        throw CLIError.repeatedFlag(flag: "--" + spec.long)
                    }
                    parsed.flags[spec.long, default: []].append(value)
                }
                continue
            }
            // A word: a subcommand while the node is a group, else a positional.
            if node.isGroup && positionals.isEmpty {
                if let c = node.child(named: tok) {
                    node = c
                    path.append(c.name)
                    continue
                }
                if wantHelp || wantVersion { continue }
                let names = node.children.filter { !$0.hidden }.map(\.name)
                throw CLIError.unknownCommand(name: tok, parent: display(path), suggestion: suggest(tok, among: names),
                                              available: names)
            }
            positionals.append(tok)
        }

        if wantVersion && !wantHelp { return .version }
        if wantHelp { return .help(path: path, globals: parsed.globals) }
        if node.isGroup {
            if path.isEmpty { return .help(path: [], globals: parsed.globals) }
            throw CLIError.missingCommand(parent: display(path), available: node.children.filter { !$0.hidden }.map(\.name))
        }
        // Bind positionals to the argument specs.
        var k = 0
        for a in node.args {
            if a.variadic {
                let rest = Array(positionals[min(k, positionals.count)...])
                if rest.isEmpty && !a.optional { throw CLIError.missingArgument(name: a.name, command: display(path)) }
                for v in rest { try validate(v, arg: a) }
                if !rest.isEmpty { parsed.arguments[a.name] = rest }
                k = positionals.count
                continue
            }
            if k < positionals.count {
                try validate(positionals[k], arg: a)
                parsed.arguments[a.name] = [positionals[k]]
                k += 1
            } else if !a.optional {
                throw CLIError.missingArgument(name: a.name, command: display(path))
            }
        }
        if k < positionals.count {
            throw CLIError.unexpectedArgument(value: positionals[k], command: display(path))
        }
        parsed.positionals = positionals
        parsed.path = path
        return .run(parsed)
    }

    static func validate(_ v: String, arg: ArgSpec) throws {
        if let c = arg.choices, !c.contains(v) {
            throw CLIError.invalidValue(flag: arg.name, value: v, expected: "one of " + c.joined(separator: ", "))
        }
    }

    static func validate(_ v: String, kind: ValueKind, flag: String) throws {
        switch kind {
        case .text: return
        case .integer:
            guard let n = Int(v), n >= 0 else {
                throw CLIError.invalidValue(flag: flag, value: v, expected: "a non-negative integer")
            }
        case .choices(let c):
            guard c.contains(v) else {
                throw CLIError.invalidValue(flag: flag, value: v, expected: "one of " + c.joined(separator: ", "))
            }
        case .keyValue:
            guard let eq = v.firstIndex(of: "="), eq != v.startIndex else {
                throw CLIError.invalidValue(flag: flag, value: v, expected: "KEY=VALUE")
            }
        }
    }

    /// The closest candidate within a small edit distance, or one that starts with the word.
    public static func suggest(_ word: String, among candidates: [String]) -> String? {
        var best: (String, Int)?
        for c in candidates {
            let d = editDistance(word.lowercased(), c.lowercased())
            if best == nil || d < best!.1 { best = (c, d) }
        }
        let limit = max(2, word.count / 3)
        if let best, best.1 <= limit { return best.0 }
        let stripped = word.drop { $0 == "-" }
        if stripped.count >= 2, let p = candidates.first(where: { $0.drop { $0 == "-" }.hasPrefix(stripped) }) { return p }
        return nil
    }

    /// Levenshtein distance (with adjacent transpositions counted as one edit).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[x.count][y.count]
    }
}
