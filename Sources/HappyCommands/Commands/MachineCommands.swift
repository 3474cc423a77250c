import HappyCore
import HappyConfig
import HappyServerAPI

/// `happy machine show|list` (SPEC §3.2).
public enum MachineCommands {
    static let group = CommandSpec.group(
        "machine", summary: "Show machines registered with the server",
        .command(Show.self), .command(List.self))

    /// The API client with this home's token, the credentials and this machine's id.
    static func setup(_ ctx: CommandContext) throws -> (HappyServerAPI, Credentials, String?) {
        let config = try ctx.config()
        let creds = try CredentialsStore(home: config.home).require()
        let api = HappyServerAPI(serverUrl: config.serverUrl, transport: ctx.transport, token: creds.token)
        let thisId = try? SettingsStore(home: config.home).machineId()
        return (api, creds, thisId ?? nil)
    }

    public enum Show: AsyncCommand {
        public static let info = CommandInfo(
            "show", summary: "Show one machine (default: this one)",
            examples: ["happy machine show", "happy machine show 0b7c... --json"])

        public struct Options: CommandOptions {
            public var machineId: String?
            public init(_ r: inout OptionReader) {
                machineId = r.optionalArgument("MACHINE_ID", help: "machine id (default: this machine)")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) async throws -> Int32 {
            let (api, creds, thisId) = try setup(ctx)
            guard let mid = o.machineId ?? thisId else { throw APIError.noMachineId }
            let rec = try await api.getMachine(id: mid)
            let m = MachineDecryption.decrypt(rec, credentials: creds)
            for w in m.warnings { ctx.out.warn(w) }
            if ctx.json { ctx.out.json(m.json) } else { ctx.out.line(MachineText.show(m, thisMachineId: thisId)) }
            return 0
        }
    }

    public enum List: AsyncCommand {
        public static let info = CommandInfo(
            "list", summary: "List this account's machines", examples: ["happy machine list"])

        public static func run(_ o: NoOptions, _ ctx: CommandContext) async throws -> Int32 {
            let (api, creds, thisId) = try setup(ctx)
            let ms = try await api.listMachines().map { MachineDecryption.decrypt($0, credentials: creds) }
            for m in ms { for w in m.warnings { ctx.out.warn(w) } }
            if ctx.json {
                let arr = ms.map { $0.json.setting("thisMachine", .bool($0.record.id == thisId)) }
                ctx.out.json(["machines": .array(arr)])
            } else {
                ctx.out.line(MachineText.list(ms, thisMachineId: thisId))
            }
            return 0
        }
    }
}
