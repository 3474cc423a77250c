import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// `happy auth login|status|logout` (SPEC §3.1); logic in HappyKit's `AuthCommandsKit`.
public enum AuthCommands {
    public static let handlers: [String: CommandHandler] = [
        "auth login": { ctx in
            let config = try ctx.config()
            var opts = AuthCommandsKit.LoginOptions(
                method: ctx.value("method") == "web" ? .web : .mobile,
                force: ctx.flag("force"), secretStdin: ctx.flag("secret-stdin"))
            if let p = ctx.env["HAPPY_AUTH_POLL_INTERVAL"].flatMap(Double.init), p > 0 { opts.pollInterval = p }
            return try await AuthCommandsKit.login(config: config, transport: HTTPClient(options: .environment(ctx.env)),
                                                   options: opts)
        },
        "auth status": { ctx in
            let config = try ctx.config()
            return await AuthCommandsKit.status(config: config, transport: HTTPClient(options: .environment(ctx.env)),
                                                json: ctx.json, offline: ctx.flag("offline"))
        },
        "auth logout": { ctx in
            let config = try ctx.config()
            return try AuthCommandsKit.logout(config: config, yes: ctx.flag("yes"))
        },
    ]
}
