import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// `happy machine show|list` (SPEC §3.2); logic in HappyKit's `MachineCommandsKit`.
public enum MachineCommands {
    public static let handlers: [String: CommandHandler] = [
        "machine show": { ctx in
            let config = try ctx.config()
            return try await MachineCommandsKit.show(config: config, transport: HTTPClient(options: .environment(ctx.env)),
                                                     id: ctx.argument("MACHINE_ID"), json: ctx.json)
        },
        "machine list": { ctx in
            let config = try ctx.config()
            return try await MachineCommandsKit.list(config: config, transport: HTTPClient(options: .environment(ctx.env)),
                                                     json: ctx.json)
        },
    ]
}
