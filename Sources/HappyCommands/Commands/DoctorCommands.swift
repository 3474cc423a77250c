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

public enum DoctorCommands {
    public static let handlers: [String: CommandHandler] = [
        "doctor": doctor,
    ]

    static let doctor: CommandHandler = { ctx in
        let rc = try ctx.resolved()
        let keys = ["serverUrl", "homeDir", "daemon.httpPort", "claude.command"]
        let sources: [Doctor.Source] = keys.map { k in
            let s = rc.sources[k] ?? SettingSource(.default, "built-in")
            let v = rc.value(k)
            return (k, v.string ?? v.serialized(), s.kind.rawValue, s.from)
        }
        let server = await ServerCheck.run(config: rc.config, transport: HTTPClient(options: .environment(ctx.env)))
        let checks = Doctor.run(config: rc.config, sources: sources, environment: ctx.env, serverCheck: { server })
        let failed = checks.contains { $0.level == .fail }
        if ctx.json {
            ctx.out.json(Doctor.json(checks))
            return failed ? 1 : 0
        }
        for c in checks {
            let tag: String
            switch c.level {
            case .ok: tag = ctx.out.color("ok  ", .green)
            case .warn: tag = ctx.out.color("warn", .yellow)
            case .fail: tag = ctx.out.color("fail", .red)
            case .skip: tag = ctx.out.color("skip", .dim)
            }
            ctx.out.line("\(tag)  \(c.name.padded(to: 12))\(c.message)")
        }
        return failed ? 1 : 0
    }
}
