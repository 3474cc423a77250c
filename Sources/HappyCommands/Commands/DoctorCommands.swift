import HappyCore
import HappyConfig

/// `happy doctor` (SPEC §3.7): one ok/warn/fail line per check.
public enum DoctorCommand: AsyncCommand {
    public static let info = CommandInfo("doctor", summary: "Check configuration, credentials, server and daemon",
                                         examples: ["happy doctor", "happy doctor --json"])

    public static func run(_ o: NoOptions, _ ctx: CommandContext) async throws -> Int32 {
        let rc = try ctx.resolved()
        let keys = ["serverUrl", "homeDir", "daemon.httpPort", "claude.command"]
        let sources: [Doctor.Source] = keys.map { k in
            let s = rc.sources[k] ?? SettingSource(.default, "built-in")
            let v = rc.value(k)
            return (k, v.string ?? v.serialized(), s.kind.rawValue, s.from)
        }
        let server = await ServerCheck.run(config: rc.config, transport: ctx.transport)
        let checks = Doctor.run(config: rc.config, sources: sources, environment: ctx.env, serverCheck: { server })
        let failed = checks.contains { $0.level == .fail }
        if ctx.json {
            ctx.out.json(Doctor.json(checks))
            return failed ? 1 : 0
        }
        for c in checks {
            let color: Output.Color
            switch c.level {
            case .ok: color = .green
            case .warn: color = .yellow
            case .fail: color = .red
            case .skip: color = .dim
            }
            ctx.out.styledLine(.colored(c.level.rawValue.padded(to: 4), color), .plain("  \(c.name.padded(to: 12))\(c.message)"))
        }
        return failed ? 1 : 0
    }
}
