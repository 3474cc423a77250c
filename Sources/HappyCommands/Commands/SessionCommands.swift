import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

public enum SessionCommands {
    public static let handlers: [String: CommandHandler] = [
        "session new": new,
        "session list": list,
        "session stop": stop,
        "session send": send,
        "session logs": logs,
    ]

    static func absolute(_ path: String) -> String { Paths.absolute(path, env: ProcessInfo.processInfo.environment) }

    static func apiError(_ r: ControlResponse) -> DaemonError { .api(status: r.status, message: r.errorMessage) }

    static let new: CommandHandler = { ctx in
        let dir = absolute(ctx.argument("DIRECTORY") ?? FileManager.default.currentDirectoryPath)
        let create = ctx.flag("create-dir")
        if !create && !FileIO.isDirectory(dir) {
            throw SessionError.directoryMissing(dir)
        }
        let env = ctx.keyValues("env")
        for kv in ctx.values("env") where !kv.contains("=") || kv.hasPrefix("=") {
            throw DaemonError.api(status: 400, message: "--env expects KEY=VALUE, got \(kv)")
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
        let r = try client.spawnSession(directory: dir, prompt: ctx.value("prompt"), createDirectory: create, env: env)
        guard r.status == 201, let s = r.json?["session"] else {
            if r.status == 404, r.json?["actionRequired"] == "CREATE_DIRECTORY" { throw SessionError.directoryMissing(dir) }
            throw apiError(r)
        }
        if ctx.json { ctx.out.json(["session": s]) } else { ctx.out.line(s["id"]?.string ?? "") }
        return 0
    }

    static func time(_ ms: JSON?) -> String {
        guard let d = ms?.double else { return "-" }
        var t = time_t((d / 1000).rounded(.down))
        var tmv = tm()
        localtime_r(&t, &tmv)
        func p(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tmv.tm_year + 1900)-\(p(tmv.tm_mon + 1))-\(p(tmv.tm_mday)) \(p(tmv.tm_hour)):\(p(tmv.tm_min)):\(p(tmv.tm_sec))"
    }

    static let list: CommandHandler = { ctx in
        let client = try DaemonControl.client(try ctx.home())
        let sessions = try client.listSessions(all: ctx.flag("all"))
        if ctx.json { ctx.out.json(["sessions": .array(sessions)]); return 0 }
        if sessions.isEmpty {
            ctx.out.line(ctx.flag("all") ? "no sessions" : "no running sessions (--all shows finished ones)")
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

    static let stop: CommandHandler = { ctx in
        let id = ctx.argument("SESSION_ID") ?? ""
        let client = try DaemonControl.client(try ctx.home())
        let r = try client.request("DELETE", "/sessions/" + HTTPCodec.percentEncode(id), timeout: 15)
        guard r.status == 200, let s = r.json?["session"] else {
            if r.status == 404 { throw SessionError.notFound(id) }
            throw apiError(r)
        }
        if ctx.json { ctx.out.json(["session": s]) } else { ctx.out.line("session \(id) \(s["status"]?.string ?? "stopped")") }
        return 0
    }

    static let send: CommandHandler = { ctx in
        let id = ctx.argument("SESSION_ID") ?? ""
        let text = ctx.argument("TEXT") ?? ""
        let client = try DaemonControl.client(try ctx.home())
        let r = try client.request("POST", "/sessions/" + HTTPCodec.percentEncode(id) + "/messages", body: ["text": .string(text)])
        switch r.status {
        case 202: break
        case 404: throw SessionError.notFound(id)
        case 409: throw SessionError.notRunning(id)
        default: throw apiError(r)
        }
        if ctx.json { ctx.out.json(["sent": true, "sessionId": .string(id)]) } else { ctx.out.line("sent to session \(id)") }
        return 0
    }

    /// One output line of the session: readable text, the line as written (`--raw`), or
    /// with `--json` (following) one compact JSON value per line.
    static func emit(_ ctx: CommandContext, _ line: String, raw: Bool) {
        if ctx.json { ctx.out.jsonLine(event(line)); return }
        if raw { ctx.out.line(line); return }
        for l in SessionLogFormatter.render(line) { ctx.out.line(l) }
    }

    /// A stream-json line as a JSON value; a line that is not JSON stays a string.
    static func event(_ line: String) -> JSON { (try? JSON.parse(line)) ?? .string(line) }

    static let logs: CommandHandler = { ctx in
        let id = ctx.argument("SESSION_ID") ?? ""
        let home = try ctx.home()
        guard !id.isEmpty, !id.contains("/"), id != ".", id != ".." else { throw SessionError.notFound(id) }
        var stdoutPath = home.sessionDir(id) + "/stdout.jsonl"
        if !FileIO.exists(stdoutPath) {
            // Ask the daemon (a record may name another path).
            guard let c = try? DaemonControl.client(home, timeout: 3), let s = try? c.session(id), let p = s["stdoutPath"]?.string else {
                throw SessionError.notFound(id)
            }
            stdoutPath = p
        }
        let raw = ctx.flag("raw")
        let follow = ctx.flag("follow")
        let rotated = Paths.dirname(stdoutPath) + "/stdout.1.jsonl"
        var assembler = LineAssembler()
        var lines: [String] = []
        if let b = try FileIO.read(rotated, limit: 1 << 30) {
            lines = assembler.feed(b)
            assembler.reset()
        }
        let path = stdoutPath
        let follower = FileFollower(resolve: { path }, startAtEnd: false)
        lines += assembler.feed(follower.poll().bytes)
        if ctx.json && !follow {
            ctx.out.json(["session": .string(id), "events": .array(lines.map(event))])
            return 0
        }
        for l in lines { emit(ctx, l, raw: raw) }
        guard follow else { return 0 }
        while true {
            try await Task.sleep(nanoseconds: 100_000_000)
            let (bytes, _) = follower.poll()
            if !bytes.isEmpty { for l in assembler.feed(bytes) { emit(ctx, l, raw: raw) } }
        }
    }
}
