#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig

/// `happy logs tail|list|path|audit` (SPEC §3.5): the daemon logs `logs/*-daemon.log` of
/// the profile's home, and the audit of phone-originated actions `logs/rpc-audit.jsonl`.
public enum LogsCommands {
    static let group = CommandSpec.group(
        "logs", summary: "Read the daemon logs of this profile",
        .command(Tail.self), .command(List.self), .command(Path.self), .command(Audit.self))

    struct NoLogs: HappyError {
        let dir: String
        var what: String { "no daemon logs in \(dir)" }
        var hint: String? { "start the daemon with `happy daemon start`" }
    }

    /// How often a follow looks for new bytes.
    static let followInterval: useconds_t = 200_000

    public enum Tail: Command {
        public static let info = CommandInfo("tail", summary: "Print the last lines of the newest daemon log",
                                             examples: ["happy logs tail -n 100 -f"])

        public struct Options: CommandOptions {
            public var lines: Int
            public var follow: Bool
            public init(_ r: inout OptionReader) {
                lines = r.count("lines", short: "n", default: 50, help: "number of lines (default 50)")
                follow = r.flag("follow", short: "f", help: "keep printing new lines, across rotation")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.home()
            guard let newest = DaemonLogs.newest(home) else {
                if !o.follow { throw NoLogs(dir: home.logsDir) }
                ctx.out.errorLine("waiting for a daemon log in \(home.logsDir)")
                follow(ctx, FileFollower(resolve: { DaemonLogs.newest(home) }, startAtEnd: false))
            }
            let follower = o.follow ? FileFollower(resolve: { DaemonLogs.newest(home) }, startAtEnd: true) : nil
            let lines = DaemonLogs.lastLines(newest, o.lines, end: follower?.path == newest ? follower?.offset : nil)
            if ctx.json && !o.follow {
                ctx.out.json(["path": .string(newest), "lines": .array(lines.map { .string($0) })])
                return 0
            }
            for l in lines { emit(ctx, l, path: newest) }
            guard let follower else { return 0 }
            follow(ctx, follower)
        }

        /// A followed line: as is, or with `--json` one `{"path", "line"}` object per line.
        static func emit(_ ctx: CommandContext, _ line: String, path: String) {
            if ctx.json { ctx.out.jsonLine(["path": .string(path), "line": .string(line)]) } else { ctx.out.line(line) }
        }

        static func follow(_ ctx: CommandContext, _ f: FileFollower) -> Never {
            var asm = LineAssembler()
            while true {
                for l in asm.feed(f.poll().bytes) { emit(ctx, l, path: f.path ?? "") }
                usleep(followInterval)
            }
        }
    }

    public enum List: Command {
        public static let info = CommandInfo("list", summary: "List daemon log files, newest first",
                                             examples: ["happy logs list"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.home()
            let logs = DaemonLogs.list(home)
            if ctx.json { ctx.out.json(["logs": .array(logs.map(\.json))]); return 0 }
            if logs.isEmpty { ctx.out.line("no daemon logs in \(home.logsDir)"); return 0 }
            ctx.out.table(["PATH", "SIZE", "MODIFIED"], logs.map {
                [$0.path, Format.bytes($0.sizeBytes), SessionCommands.time(.number(Double($0.modifiedAt)))]
            })
            return 0
        }
    }

    public enum Path: Command {
        public static let info = CommandInfo("path", summary: "Print the newest daemon log's path",
                                             examples: ["happy logs path"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.home()
            guard let p = DaemonLogs.newest(home) else { throw NoLogs(dir: home.logsDir) }
            if ctx.json { ctx.out.json(["path": .string(p)]) } else { ctx.out.line(p) }
            return 0
        }
    }

    /// `logs audit`: the phone-originated actions the daemon records in
    /// `logs/rpc-audit.jsonl`, one JSON object per line: `{time (epoch ms), scope:
    /// "machine"|"session", sessionId?, method, summary, result: "ok"|"refused"|"error",
    /// durationMs}`. The file rotates to `rpc-audit.1.jsonl`.
    public enum Audit: Command {
        public static let info = CommandInfo(
            "audit", summary: "Print the actions the phone asked of this machine (RPC audit log)",
            examples: ["happy logs audit", "happy logs audit -n 200 -f", "happy logs audit --json"])

        public struct Options: CommandOptions {
            public var lines: Int
            public var follow: Bool
            public init(_ r: inout OptionReader) {
                lines = r.count("lines", short: "n", default: 50, help: "number of entries (default 50)")
                follow = r.flag("follow", short: "f", help: "keep printing new entries, across rotation")
            }
        }

        public static func path(_ home: HomeLayout) -> String { home.logsDir + "/rpc-audit.jsonl" }
        public static func rotatedPath(_ home: HomeLayout) -> String { home.logsDir + "/rpc-audit.1.jsonl" }

        /// A line of the file as an entry; nil when it is not a JSON object.
        static func entry(_ line: String) -> JSON? {
            guard let j = try? JSON.parse(line), case .object = j else { return nil }
            return j
        }

        /// One readable line: `time  scope [sessionId]  method  summary  → result (N ms)`.
        static func printEntry(_ e: JSON, _ out: Output) {
            var head = SessionCommands.time(e["time"]) + "  " + (e["scope"]?.string ?? "-")
            if let s = e["sessionId"]?.string, !s.isEmpty { head += " " + s }
            head += "  " + (e["method"]?.string ?? "-")
            if let s = e["summary"]?.string, !s.isEmpty { head += "  " + s }
            let result = e["result"]?.string ?? "-"
            let color: Output.Color? = ["ok": .green, "refused": .yellow, "error": .red][result]
            let duration = e["durationMs"].map { " (\($0.int.map(String.init) ?? $0.serialized()) ms)" } ?? ""
            if let color {
                out.styledLine(.plain(head + "  → "), .colored(result, color), .plain(duration))
            } else {
                out.styledLine(.plain(head + "  → " + result + duration))
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.home()
            let path = path(home), rotated = rotatedPath(home)
            let follower = o.follow ? FileFollower(resolve: { path }, startAtEnd: true) : nil
            var lines: [String] = []
            if FileIO.exists(path) || FileIO.exists(rotated) {
                lines = DaemonLogs.lastLines(path, o.lines, end: follower?.path == path ? follower?.offset : nil)
                if lines.count < o.lines { lines = DaemonLogs.lastLines(rotated, o.lines - lines.count) + lines }
            } else if o.follow {
                ctx.out.errorLine("waiting for \(path)")
            } else if !ctx.json {
                ctx.out.errorLine("no audit log at \(path) yet (the daemon writes one line per action the phone asks for)")
            }
            lines.removeAll { $0.trimmed.isEmpty }
            var skipped = 0
            if ctx.json && !o.follow {
                var entries: [JSON] = []
                for l in lines {
                    if let e = entry(l) { entries.append(e) } else { skipped += 1 }
                }
                ctx.out.json(["entries": .array(entries)])
                if skipped > 0 {
                    ctx.out.warn("skipped \(skipped) line\(skipped == 1 ? "" : "s") of \(path) that \(skipped == 1 ? "is" : "are") not a JSON object")
                }
                return 0
            }
            func emit(_ l: String) {
                guard !l.trimmed.isEmpty else { return }
                if let e = entry(l) {
                    if ctx.json { ctx.out.jsonLine(e) } else { printEntry(e, ctx.out) }
                } else if ctx.json {
                    skipped += 1
                    ctx.out.warn("skipped a line of \(path) that is not a JSON object (\(skipped) so far)")
                } else {
                    ctx.out.line(l)
                }
            }
            for l in lines { emit(l) }
            guard let follower else { return 0 }
            var asm = LineAssembler()
            while true {
                for l in asm.feed(follower.poll().bytes) { emit(l) }
                usleep(followInterval)
            }
        }
    }
}
