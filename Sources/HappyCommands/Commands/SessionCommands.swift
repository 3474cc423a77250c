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
        .command(New.self), .command(List.self), .command(Stop.self), .command(Send.self), .command(Logs.self),
        .command(Approve.self), .command(Deny.self))

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
                       "happy session new /tmp/x --create-dir --env DEBUG=1",
                       "happy session new --permission-mode acceptEdits --model opus",
                       "happy session new ~/code/app --resume 0b9c7e1e-... --prompt 'go on'"])

        public struct Options: CommandOptions {
            public var directory: String?
            public var prompt: String?
            public var createDir: Bool
            public var env: [String: String]
            public var permissionMode: PermissionMode?
            public var model: String?
            public var resume: String?
            public init(_ r: inout OptionReader) {
                directory = r.optionalArgument("DIRECTORY", completion: .directories,
                                               help: "working directory (default: the current directory)")
                prompt = r.option("prompt", metavar: "TEXT", help: "first message sent to the session")
                createDir = r.flag("create-dir", help: "create DIRECTORY when it does not exist")
                env = r.keyValues("env", help: "extra environment variable for the session (repeatable)")
                permissionMode = r.optionalChoice("permission-mode", as: PermissionMode.self,
                                                  help: "how claude asks before using tools (default: sessions.permissionMode)")
                model = r.option("model", metavar: "NAME", help: "the model claude uses (claude --model)")
                resume = r.option("resume", metavar: "CLAUDE_SESSION_ID", help: "continue an earlier claude session (claude --resume)")
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
            var req = SpawnRequest(directory: dir, prompt: o.prompt, createDirectory: o.createDir, environmentVariables: o.env)
            req.permissionMode = o.permissionMode
            req.model = o.model
            req.resume = o.resume
            let s = try client.spawn(req)
            if ctx.json { ctx.out.json(["session": s.json]) } else { ctx.out.line(s.id) }
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
            if ctx.json { ctx.out.json(["sessions": .array(sessions.map(\.json))]); return 0 }
            if sessions.isEmpty {
                ctx.out.line(o.all ? "no sessions" : "no running sessions (--all shows finished ones)")
                return 0
            }
            let rows: [[String]] = sessions.map { s in
                let last = s.lastEventType.map { "\($0) \(time(s.lastEventAt.map { .number(Double($0)) }))" } ?? "-"
                let cost = s.costUsd.map { "$" + Format.fixed($0, 4) } ?? "-"
                // `!`: waiting on a permission (SPEC §7.7).
                let waiting = s.pendingPermissions.isEmpty ? "" : "!"
                let sync = s.serverSessionId.map { "\(s.sync.rawValue) \($0)" } ?? s.sync.rawValue
                return [waiting + s.id, String(s.pid), s.status.rawValue, s.directory, time(.number(Double(s.startedAt))),
                        s.startedBy, last, cost, sync]
            }
            ctx.out.table(["ID", "PID", "STATUS", "DIRECTORY", "STARTED", "STARTED BY", "LAST EVENT", "COST", "SYNC"], rows)
            if sessions.contains(where: { !$0.pendingPermissions.isEmpty }) {
                ctx.out.line("! waiting for a permission answer: happy session approve|deny ID")
            }
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
            let s = try client.stop(id)
            if ctx.json { ctx.out.json(["session": s.json]) } else { ctx.out.line("session \(s.id) \(s.status.rawValue)") }
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
            try client.send(id, text: o.text)
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
                // A server session id or a prefix: the daemon resolves it.
                guard let c = try? DaemonControl.client(home, timeout: 3), let s = try? c.session(id) else {
                    throw SessionError.notFound(id)
                }
                stdoutPath = s.stdoutPath
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

    /// The pending request to answer: the given id, else the oldest one.
    static func pendingRequest(_ s: SessionRecord, _ requestId: String?) throws -> PermissionRequest {
        let pending = s.pendingPermissions.sorted { $0.createdAt < $1.createdAt }
        if let requestId {
            guard let p = pending.first(where: { $0.id == requestId || $0.id.hasPrefix(requestId) || $0.requestId == requestId }) else {
                throw SessionError.noSuchPermission(session: s.id, request: requestId)
            }
            return p
        }
        guard let p = pending.first else { throw SessionError.noSuchPermission(session: s.id, request: nil) }
        return p
    }

    static func answer(_ ctx: CommandContext, session: String, request: String?, _ make: (PermissionRequest) -> PermissionAnswer) throws -> Int32 {
        let client = try DaemonControl.client(try ctx.home())
        let s = try client.session(session)
        let p = try pendingRequest(s, request)
        let a = make(p)
        let after = try client.answer(s.id, requestId: p.id, a)
        if ctx.json {
            ctx.out.json(["session": after.json, "request": p.json, "approved": .bool(a.approved)])
        } else {
            let what = p.arguments["command"]?.string ?? p.arguments["file_path"]?.string ?? ""
            ctx.out.line("\(a.approved ? "approved" : "denied") \(p.tool)\(what.isEmpty ? "" : " \(what)") (\(p.id))"
                         + (a.allowTools.isEmpty ? "" : "; always allowed: \(a.allowTools.joined(separator: ", "))"))
        }
        return 0
    }

    public enum Approve: Command {
        public static let info = CommandInfo(
            "approve", summary: "Allow a tool use a session waits on (default: the oldest request)",
            examples: ["happy session approve 3f2a...", "happy session approve 3f2a... toolu_01ABC --always"])

        public struct Options: CommandOptions {
            public var sessionId: String
            public var requestId: String?
            public var always: Bool
            public init(_ r: inout OptionReader) {
                sessionId = sessionIdArgument(&r, help: "the session")
                requestId = r.optionalArgument("REQUEST_ID", help: "the request (default: the oldest pending one)")
                always = r.flag("always", help: "also allow it from now on (Bash: that exact command; other tools: the tool)")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            try answer(ctx, session: o.sessionId, request: o.requestId) { p in
                PermissionAnswer(approved: true, allowTools: o.always ? [PermissionRules.rule(for: p)] : [], source: "local")
            }
        }
    }

    public enum Deny: Command {
        public static let info = CommandInfo(
            "deny", summary: "Refuse a tool use a session waits on (default: the oldest request)",
            examples: ["happy session deny 3f2a...", "happy session deny 3f2a... --reason 'use the staging database'"])

        public struct Options: CommandOptions {
            public var sessionId: String
            public var requestId: String?
            public var reason: String?
            public init(_ r: inout OptionReader) {
                sessionId = sessionIdArgument(&r, help: "the session")
                requestId = r.optionalArgument("REQUEST_ID", help: "the request (default: the oldest pending one)")
                reason = r.option("reason", metavar: "TEXT", help: "what claude is told instead of the standard refusal")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            try answer(ctx, session: o.sessionId, request: o.requestId) { _ in
                PermissionAnswer(approved: false, reason: o.reason, source: "local")
            }
        }
    }
}
