import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyNet
import HappyConfig
import HappySessions
import HappyDaemon

/// `happy session new|list|stop|send|logs` (SPEC §3.4), through the daemon's control API.
public enum SessionCommands {
    static let group = CommandSpec.group(
        "session", summary: "Start and control Claude Code sessions",
        .command(New.self), .command(List.self), .command(Stop.self), .command(Send.self), .command(Logs.self))

    static func apiError(_ r: ControlResponse) -> DaemonError { .api(status: r.status, message: r.errorMessage) }

    /// Local time `YYYY-MM-DD HH:MM:SS` of an epoch-ms value; `-` when absent.
    static func time(_ ms: JSON?) -> String {
        guard let d = ms?.double else { return "-" }
        var t = time_t((d / 1000).rounded(.down))
        var tmv = tm()
        localtime_r(&t, &tmv)
        func p(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tmv.tm_year + 1900)-\(p(tmv.tm_mon + 1))-\(p(tmv.tm_mday)) \(p(tmv.tm_hour)):\(p(tmv.tm_min)):\(p(tmv.tm_sec))"
    }

    static func sessionIdArgument(_ r: inout OptionReader, help: String) -> String {
        r.argument("SESSION_ID", completion: .sessions, help: help)
    }

    public enum New: Command {
        public static let info = CommandInfo(
            "new", summary: "Start a session in a directory",
            examples: ["happy session new ~/code/app --prompt 'run the tests'",
                       "happy session new /tmp/x --create-dir --env DEBUG=1"])

        public struct Options: CommandOptions {
            public var directory: String?
            public var prompt: String?
            public var createDir: Bool
            public var env: [String: String]
            public init(_ r: inout OptionReader) {
                directory = r.optionalArgument("DIRECTORY", completion: .directories,
                                               help: "working directory (default: the current directory)")
                prompt = r.option("prompt", metavar: "TEXT", help: "first message sent to the session")
                createDir = r.flag("create-dir", help: "create DIRECTORY when it does not exist")
                env = r.keyValues("env", help: "extra environment variable for the session (repeatable)")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let dir = Paths.absolute(o.directory ?? FileManager.default.currentDirectoryPath, env: ctx.env)
            if !o.createDir && !FileIO.isDirectory(dir) {
                throw SessionError.directoryMissing(dir)
            }
            let home = try ctx.home()
            var client: ControlClient
            do {
                client = try DaemonControl.client(home, timeout: 5)
            } catch DaemonError.notRunning {
                let started = try DaemonCommands.ensureStarted(ctx)
                if !ctx.json { ctx.out.errorLine("started the daemon (pid \(started.pid))") }
                client = try DaemonControl.client(home, timeout: 5)
            }
            let r = try client.spawnSession(directory: dir, prompt: o.prompt, createDirectory: o.createDir, env: o.env)
            guard r.status == 201, let s = r.json?["session"] else {
                if r.status == 404, r.json?["actionRequired"] == "CREATE_DIRECTORY" { throw SessionError.directoryMissing(dir) }
                throw apiError(r)
            }
            if ctx.json { ctx.out.json(["session": s]) } else { ctx.out.line(s["id"]?.string ?? "") }
            return 0
        }
    }

    public enum List: Command {
        public static let info = CommandInfo(
            "list", summary: "List sessions", examples: ["happy session list", "happy session list --all --json"])

        public struct Options: CommandOptions {
            public var all: Bool
            public init(_ r: inout OptionReader) {
                all = r.flag("all", help: "include finished sessions")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let client = try DaemonControl.client(try ctx.home())
            let sessions = try client.listSessions(all: o.all)
            if ctx.json { ctx.out.json(["sessions": .array(sessions)]); return 0 }
            if sessions.isEmpty {
                ctx.out.line(o.all ? "no sessions" : "no running sessions (--all shows finished ones)")
                return 0
            }
            let rows: [[String]] = sessions.map { s in
                let last = s["lastEventType"]?.string.map { "\($0) \(time(s["lastEventAt"]))" } ?? "-"
                let cost = s["costUsd"]?.double.map { "$" + Format.fixed($0, 4) } ?? "-"
                return [s["id"]?.string ?? "?", s["pid"].map { $0.serialized() } ?? "-", s["status"]?.string ?? "?",
                        s["directory"]?.string ?? "", time(s["startedAt"]), s["startedBy"]?.string ?? "-", last, cost]
            }
            ctx.out.table(["ID", "PID", "STATUS", "DIRECTORY", "STARTED", "STARTED BY", "LAST EVENT", "COST"], rows)
            return 0
        }
    }

    public enum Stop: Command {
        public static let info = CommandInfo("stop", summary: "Stop a session", examples: ["happy session stop 3f2a..."])

        public struct Options: CommandOptions {
            public var sessionId: String
            public init(_ r: inout OptionReader) {
                sessionId = sessionIdArgument(&r, help: "the session to stop")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let id = o.sessionId
            let client = try DaemonControl.client(try ctx.home())
            let r = try client.request("DELETE", "/sessions/" + HTTPCodec.percentEncode(id), timeout: 15)
            guard r.status == 200, let s = r.json?["session"] else {
                if r.status == 404 { throw SessionError.notFound(id) }
                throw apiError(r)
            }
            if ctx.json { ctx.out.json(["session": s]) } else { ctx.out.line("session \(id) \(s["status"]?.string ?? "stopped")") }
            return 0
        }
    }

    public enum Send: Command {
        public static let info = CommandInfo("send", summary: "Send a message to a running session",
                                             examples: ["happy session send 3f2a... 'now fix the lint errors'"])

        public struct Options: CommandOptions {
            public var sessionId: String
            public var text: String
            public init(_ r: inout OptionReader) {
                sessionId = sessionIdArgument(&r, help: "the session")
                text = r.argument("TEXT", help: "the message")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let id = o.sessionId
            let client = try DaemonControl.client(try ctx.home())
            let r = try client.request("POST", "/sessions/" + HTTPCodec.percentEncode(id) + "/messages",
                                       body: ["text": .string(o.text)])
            switch r.status {
            case 202: break
            case 404: throw SessionError.notFound(id)
            case 409: throw SessionError.notRunning(id)
            default: throw apiError(r)
            }
            if ctx.json { ctx.out.json(["sent": true, "sessionId": .string(id)]) } else { ctx.out.line("sent to session \(id)") }
            return 0
        }
    }

    public enum Logs: Command {
        public static let info = CommandInfo("logs", summary: "Print a session's events",
                                             examples: ["happy session logs 3f2a... -f"])

        public struct Options: CommandOptions {
            public var sessionId: String
            public var follow: Bool
            public var raw: Bool
            public init(_ r: inout OptionReader) {
                sessionId = sessionIdArgument(&r, help: "the session")
                follow = r.flag("follow", short: "f", help: "keep printing new events")
                raw = r.flag("raw", help: "print the stream-json lines as written")
            }
        }

        /// A stream-json line as a JSON value; a line that is not JSON stays a string.
        static func event(_ line: String) -> JSON { (try? JSON.parse(line)) ?? .string(line) }

        /// One output line of the session: readable text, the line as written (`--raw`), or
        /// with `--json` (following) one compact JSON value per line.
        static func emit(_ ctx: CommandContext, _ line: String, raw: Bool) {
            if ctx.json { ctx.out.jsonLine(event(line)); return }
            if raw { ctx.out.line(line); return }
            for l in SessionLogFormatter.render(line) { ctx.out.line(l) }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let id = o.sessionId
            let home = try ctx.home()
            guard !id.isEmpty, !id.contains("/"), id != ".", id != ".." else { throw SessionError.notFound(id) }
            var stdoutPath = home.sessionDir(id) + "/stdout.jsonl"
            if !FileIO.exists(stdoutPath) {
                // Ask the daemon (a record may name another path).
                guard let c = try? DaemonControl.client(home, timeout: 3), let s = try? c.session(id),
                      let p = s["stdoutPath"]?.string else {
                    throw SessionError.notFound(id)
                }
                stdoutPath = p
            }
            let rotated = Paths.dirname(stdoutPath) + "/stdout.1.jsonl"
            var assembler = LineAssembler()
            var lines: [String] = []
            if let b = try FileIO.read(rotated, limit: 1 << 30) {
                lines = assembler.feed(b)
                assembler.reset()
            }
            let path = stdoutPath
            let follower = FileFollower(resolve: { path }, startAtEnd: false)
            while case let bytes = follower.poll().bytes, !bytes.isEmpty { lines += assembler.feed(bytes) }
            if ctx.json && !o.follow {
                ctx.out.json(["session": .string(id), "events": .array(lines.map(event))])
                return 0
            }
            for l in lines { emit(ctx, l, raw: o.raw) }
            guard o.follow else { return 0 }
            while true {
                usleep(100_000)
                let bytes = follower.poll().bytes
                if !bytes.isEmpty { for l in assembler.feed(bytes) { emit(ctx, l, raw: o.raw) } }
            }
        }
    }
}
