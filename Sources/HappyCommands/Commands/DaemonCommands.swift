#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig
import HappyDaemon

/// `happy daemon start|start-sync|restart|stop|status|install|uninstall` (SPEC §3.3).
public enum DaemonCommands {
    static let group = CommandSpec.group(
        "daemon", summary: "Run and control the background daemon",
        .command(Start.self), .command(StartSync.self), .command(Restart.self), .command(Stop.self),
        .command(Status.self), .command(Install.self), .command(Uninstall.self))

    /// The global flags the user gave, passed on to a spawned `start-sync` (the
    /// environment is inherited, so HAPPY_* variables carry over by themselves).
    static func childGlobals(_ ctx: CommandContext) -> [String] {
        var a: [String] = []
        if let p = ctx.globals.profile { a += ["--profile", p] }
        if let h = ctx.globals.homeDir { a += ["--home-dir", h] }
        if let s = ctx.globals.serverUrl { a += ["--server-url", s] }
        return a
    }

    static func startJSON(_ r: DaemonStartOutcome) -> JSON {
        ["pid": .int(Int(r.pid)), "httpPort": r.httpPort.map { .int($0) } ?? .null, "profile": .string(r.profile),
         "logPath": .optional(r.logPath), "alreadyRunning": .bool(r.alreadyRunning)]
    }

    static func printStart(_ ctx: CommandContext, _ r: DaemonStartOutcome) {
        if ctx.json { ctx.out.json(startJSON(r)); return }
        if r.alreadyRunning {
            ctx.out.line("daemon already running (pid \(r.pid))")
        } else {
            ctx.out.line("daemon started (pid \(r.pid))")
        }
        var rows: [[String]] = []
        if let p = r.httpPort { rows.append(["port", String(p)]) }
        rows.append(["profile", r.profile])
        if let l = r.logPath { rows.append(["log", l]) }
        for row in rows { ctx.out.line("  " + row[0].padded(to: 9) + row[1]) }
    }

    /// Starts the daemon in the background unless one is running (also used by `session new`).
    static func ensureStarted(_ ctx: CommandContext) throws -> DaemonStartOutcome {
        let cfg = try ctx.config()
        _ = try ctx.preparedHome()
        return try DaemonControl.start(cfg, globalArgs: childGlobals(ctx))
    }

    static func formatDuration(_ ms: Int64) -> String {
        var s = ms / 1000
        let d = s / 86400; s %= 86400
        let h = s / 3600; s %= 3600
        let m = s / 60; s %= 60
        if d > 0 { return "\(d)d \(h)h \(m)m" }
        if h > 0 { return "\(h)h \(m)m \(s)s" }
        if m > 0 { return "\(m)m \(s)s" }
        return "\(s)s"
    }

    public enum Start: Command {
        public static let info = CommandInfo("start", summary: "Start the daemon in the background",
                                             examples: ["happy daemon start"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            printStart(ctx, try ensureStarted(ctx))
            return 0
        }
    }

    public enum StartSync: AsyncCommand {
        public static let info = CommandInfo("start-sync", summary: "Run the daemon in the foreground (for service managers)",
                                             examples: ["happy daemon start-sync"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) async throws -> Int32 {
            let cfg = try ctx.config()
            _ = try ctx.preparedHome()
            try await DaemonEngine.runForeground(config: cfg, logToStderr: isatty(2) == 1)
            return 0
        }
    }

    public enum Restart: Command {
        public static let info = CommandInfo("restart", summary: "Stop then start the daemon, keeping sessions running",
                                             examples: ["happy daemon restart"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.home()
            switch DaemonControl.stop(home, keepSessions: true) {
            case .stopped(let pid, let how):
                if !ctx.json { ctx.out.line("daemon stopped (pid \(pid)\(how == "requested" ? "" : ", \(how)"); sessions kept running)") }
            case .notRunning:
                if !ctx.json { ctx.out.line("daemon was not running") }
            }
            printStart(ctx, try ensureStarted(ctx))
            return 0
        }
    }

    public enum Stop: Command {
        public static let info = CommandInfo("stop", summary: "Stop the daemon",
                                             examples: ["happy daemon stop", "happy daemon stop --keep-sessions"])
        public struct Options: CommandOptions {
            public var keepSessions: Bool
            public init(_ r: inout OptionReader) {
                keepSessions = r.flag("keep-sessions", help: "leave running sessions alive")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.home()
            let keep = o.keepSessions
            switch DaemonControl.stop(home, keepSessions: keep) {
            case .notRunning(let removed):
                if ctx.json {
                    ctx.out.json(["stopped": false, "running": false, "removedStaleFiles": .array(removed.map { .string($0) })])
                } else {
                    for p in removed { ctx.out.line("removed stale \(p)") }
                    ctx.out.line("daemon is not running")
                }
            case .stopped(let pid, let how):
                if ctx.json {
                    ctx.out.json(["stopped": true, "pid": .int(Int(pid)), "method": .string(how), "keepSessions": .bool(keep)])
                } else {
                    ctx.out.line("daemon stopped (pid \(pid)\(how == "requested" ? "" : ", \(how)"))\(keep ? "; sessions kept running" : "")")
                }
            }
            return 0
        }
    }

    public enum Status: Command {
        public static let info = CommandInfo("status", summary: "Show whether the daemon is running",
                                             examples: ["happy daemon status --json"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.home()
            let r = DaemonControl.status(home)
            if ctx.json {
                ctx.out.json(r.json)
                return r.running && r.responding == true ? 0 : 1
            }
            for p in r.removed { ctx.out.line("removed stale \(p)") }
            guard r.running else {
                ctx.out.line("daemon is not running")
                return 1
            }
            guard r.responding == true else {
                ctx.out.line("daemon (pid \(r.pid ?? 0)) is running but not responding")
                if let l = r.logPath { ctx.out.line("  log      \(l)") }
                return 1
            }
            let j = r.json
            func v(_ k: String) -> String {
                guard let x = j[k], !x.isNull else { return "-" }
                if let s = x.string { return s }
                return x.serialized()
            }
            ctx.out.line("daemon is running (pid \(v("pid")))")
            let rows: [[String]] = [
                ["port", v("httpPort")],
                ["uptime", r.uptimeMs.map(formatDuration) ?? "-"],
                ["version", v("version")],
                ["profile", v("profile")],
                ["server", v("server") + " (\(v("serverUrl")))"],
                ["machine", v("machineId")],
                ["sessions", v("sessions")],
                ["log", r.logPath ?? "-"],
            ]
            for row in rows { ctx.out.line("  " + row[0].padded(to: 9) + row[1]) }
            return 0
        }
    }

    public enum Install: Command {
        public static let info = CommandInfo("install", summary: "Write a systemd user unit for this profile",
                                             examples: ["happy --profile dev daemon install"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let rc = try ctx.resolved()
            let cfg = rc.config
            var env: [String: String] = [:]
            // Keep a home or server chosen by flag or variable (the unit sees neither).
            if let src = rc.sources["homeDir"], src.kind == .flag || src.kind == .env { env["HAPPY_HOME_DIR"] = cfg.homeDir }
            if let src = rc.sources["serverUrl"], src.kind == .flag || src.kind == .env { env["HAPPY_SERVER_URL"] = cfg.serverUrl }
            if let d = ctx.env["HAPPY_PROFILES_DIR"] { env["HAPPY_PROFILES_DIR"] = d }
            let path = try SystemdUnit.install(executable: ProcessProbe.executablePath(), profile: cfg.profile,
                                               environment: env, processEnvironment: ctx.env)
            let cmds = SystemdUnit.enableCommands(profile: cfg.profile)
            if ctx.json {
                ctx.out.json(["unitPath": .string(path), "commands": .array(cmds.map { .string($0) })])
                return 0
            }
            ctx.out.line("wrote \(path)")
            ctx.out.line("enable and start it with:")
            for c in cmds { ctx.out.line("  \(c)") }
            ctx.out.line("to keep it running after logout: loginctl enable-linger $USER")
            return 0
        }
    }

    public enum Uninstall: Command {
        public static let info = CommandInfo("uninstall", summary: "Remove the systemd user unit of this profile",
                                             examples: ["happy daemon uninstall"])
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let cfg = try ctx.config()
            let cmds = SystemdUnit.disableCommands(profile: cfg.profile)
            let (path, existed) = try SystemdUnit.uninstall(profile: cfg.profile, processEnvironment: ctx.env)
            if ctx.json {
                ctx.out.json(["unitPath": .string(path), "removed": .bool(existed), "commands": .array(cmds.map { .string($0) })])
                return 0
            }
            ctx.out.line(existed ? "removed \(path)" : "no unit at \(path)")
            ctx.out.line("if it was enabled, also run:")
            for c in cmds { ctx.out.line("  \(c)") }
            return 0
        }
    }
}
