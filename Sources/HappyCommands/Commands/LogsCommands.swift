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

public enum LogsCommands {
    public static let handlers: [String: CommandHandler] = [
        "logs tail": tail,
        "logs list": list,
        "logs path": path,
    ]

    struct NoLogs: HappyError {
        let dir: String
        var what: String { "no daemon logs in \(dir)" }
        var hint: String? { "start the daemon with `happy daemon start`" }
    }

    static let tail: CommandHandler = { ctx in
        let home = try ctx.home()
        let n = ctx.int("lines") ?? 50
        let follow = ctx.flag("follow")
        guard let newest = DaemonLogs.newest(home) else {
            if !follow { throw NoLogs(dir: home.logsDir) }
            ctx.out.errorLine("waiting for a daemon log in \(home.logsDir)")
            return try await followLoop(ctx, home, startAtEnd: false)
        }
        let lines = DaemonLogs.lastLines(newest, n)
        if ctx.json && !follow {
            ctx.out.json(["path": .string(newest), "lines": .array(lines.map { .string($0) })])
            return 0
        }
        for l in lines { emit(ctx, l, path: newest) }
        guard follow else { return 0 }
        return try await followLoop(ctx, home, startAtEnd: true)
    }

    /// A followed line: as is, or with `--json` one `{"path", "line"}` object per line.
    static func emit(_ ctx: CommandContext, _ line: String, path: String) {
        if ctx.json { ctx.out.jsonLine(["path": .string(path), "line": .string(line)]) } else { ctx.out.line(line) }
    }

    static func followLoop(_ ctx: CommandContext, _ home: HomeLayout, startAtEnd: Bool) async throws -> Int32 {
        let f = FileFollower(resolve: { DaemonLogs.newest(home) }, startAtEnd: startAtEnd)
        var asm = LineAssembler()
        while true {
            let (bytes, switched) = f.poll()
            if switched != nil { asm.reset() }
            for l in asm.feed(bytes) { emit(ctx, l, path: f.path ?? "") }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    static let list: CommandHandler = { ctx in
        let home = try ctx.home()
        let logs = DaemonLogs.list(home)
        if ctx.json { ctx.out.json(["logs": .array(logs.map(\.json))]); return 0 }
        if logs.isEmpty { ctx.out.line("no daemon logs in \(home.logsDir)"); return 0 }
        ctx.out.table(["PATH", "SIZE", "MODIFIED"], logs.map {
            [$0.path, Doctor.formatBytes($0.sizeBytes), SessionCommands.time(.number(Double($0.modifiedAt)))]
        })
        return 0
    }

    static let path: CommandHandler = { ctx in
        let home = try ctx.home()
        guard let p = DaemonLogs.newest(home) else { throw NoLogs(dir: home.logsDir) }
        if ctx.json { ctx.out.json(["path": .string(p)]) } else { ctx.out.line(p) }
        return 0
    }
}
