import HappyCore
import HappyConfig

/// `happy profile list|show|path` (SPEC §2.1): read profiles without loading the
/// configuration first (a broken profile is reported, not fatal).
public enum ProfileCommands {
    static let group = CommandSpec.group(
        "profile", summary: "Inspect profiles and the resolved configuration",
        .command(List.self), .command(Show.self), .command(Path.self))

    public enum List: Command {
        public static let info = CommandInfo("list", summary: "List every profile and where it comes from",
                                             examples: ["happy profile list", "happy profile list --json"],
                                             loadsConfig: false)

        /// `{"active", "profiles": [{"name", "source", "description", "active"}]}`
        public static func listJSON(loader: ConfigLoader, active: String) -> JSON {
            let items: [JSON] = loader.listProfiles().map { p in
                ["name": .string(p.name), "source": .string(p.origin.label), "description": .optional(p.description),
                 "active": .bool(p.name == active)]
            }
            return ["active": .string(active), "profiles": .array(items)]
        }

        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let loader = ctx.loader
            let active = loader.selectedProfileName(flag: ctx.globals.profile)
            if ctx.json {
                ctx.out.json(listJSON(loader: loader, active: active))
                return 0
            }
            let rows = loader.listProfiles().map { p in
                [p.name == active ? "*" : " ", p.name, p.origin.label, p.description ?? ""]
            }
            ctx.out.table(["", "NAME", "SOURCE", "DESCRIPTION"], rows, colors: [0: .green])
            if !rows.contains(where: { $0[1] == active }) {
                ctx.out.warn("the active profile '\(active)' does not exist")
            }
            return 0
        }
    }

    public enum Show: Command {
        public static let info = CommandInfo("show", summary: "Print the resolved configuration and where each value came from",
                                             examples: ["happy profile show", "happy profile show dev --json"],
                                             loadsConfig: false)

        public struct Options: CommandOptions {
            public var name: String?
            public init(_ r: inout OptionReader) {
                name = r.optionalArgument("NAME", completion: .profiles, help: "profile to show (default: the active one)")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            var globals = ctx.globals
            if let name = o.name { globals.profile = name }
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

    public enum Path: Command {
        public static let info = CommandInfo("path", summary: "Print the user profile folder",
                                             examples: ["happy profile path"], loadsConfig: false)
        public static func run(_ o: NoOptions, _ ctx: CommandContext) throws -> Int32 {
            let dir = ctx.loader.locator.userProfileDir
            if ctx.json { ctx.out.json(["path": .string(dir)]) } else { ctx.out.line(dir) }
            return 0
        }
    }
}
