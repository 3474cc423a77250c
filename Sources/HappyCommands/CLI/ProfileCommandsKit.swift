import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon
/// `happy profile list|show|path` (the executable's Commands/Profile.swift binds these).
public enum ProfileCommandsKit {
    /// `{"active", "profiles": [{"name", "source", "description", "active"}]}`
    public static func listJSON(loader: ConfigLoader, active: String) -> JSON {
        let items: [JSON] = loader.listProfiles().map { p in
            ["name": .string(p.name), "source": .string(p.origin.label), "description": .optional(p.description),
             "active": .bool(p.name == active)]
        }
        return ["active": .string(active), "profiles": .array(items)]
    }

    public static func list(_ ctx: CommandContext) async throws -> Int32 {
        let loader = ctx.loader
        let active = loader.selectedProfileName(flag: ctx.globals.profile)
        if ctx.json {
            ctx.out.json(listJSON(loader: loader, active: active))
            return 0
        }
        let rows = loader.listProfiles().map { p in
            [p.name == active ? ctx.out.color("*", .green) : " ", p.name, p.origin.label, p.description ?? ""]
        }
        ctx.out.table(["", "NAME", "SOURCE", "DESCRIPTION"], rows)
        if !rows.contains(where: { $0[1] == active }) {
            ctx.out.warn("the active profile '\(active)' does not exist")
        }
        return 0
    }

    public static func show(_ ctx: CommandContext) async throws -> Int32 {
        var globals = ctx.globals
        if let name = ctx.argument("NAME") { globals.profile = name }
        let rc = try ctx.loader.resolve(globals: globals)
        for w in rc.warnings { ctx.out.warn(w) }
        if ctx.json {
            ctx.out.json(rc.showJSON)
            return 0
        }
        let desc = rc.profile.description.map { " — \($0)" } ?? ""
        ctx.out.line("profile: \(rc.config.profile) (\(rc.profile.origin.label))\(desc)")
        let rows: [[String]] = ProfileSchema.keys.map { (k, _) in
            let src = rc.sources[k] ?? SettingSource(.default, "built-in")
            return [k, display(rc.value(k)), src.kind.rawValue, src.from]
        }
        ctx.out.table(["KEY", "VALUE", "SOURCE", "FROM"], rows)
        return 0
    }

    public static func path(_ ctx: CommandContext) async throws -> Int32 {
        let dir = ctx.loader.locator.userProfileDir
        if ctx.json { ctx.out.json(["path": .string(dir)]) } else { ctx.out.line(dir) }
        return 0
    }

    static func display(_ v: JSON) -> String {
        switch v {
        case .string(let s): return s
        case .array(let a): return "[" + a.map { $0.string ?? $0.serialized() }.joined(separator: ", ") + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return o.keys.sorted().map { "\($0)=\(o[$0]!.string ?? o[$0]!.serialized())" }.joined(separator: " ")
        default: return v.serialized()
        }
    }
}
