import HappyKit

// STUB — replaced by the owner of this command group.
enum DaemonCommands {
    static let handlers: [String: CommandHandler] = [
        "daemon start": notImplemented("daemon start"),
        "daemon start-sync": notImplemented("daemon start-sync"),
        "daemon restart": notImplemented("daemon restart"),
        "daemon stop": notImplemented("daemon stop"),
        "daemon status": notImplemented("daemon status"),
        "daemon install": notImplemented("daemon install"),
        "daemon uninstall": notImplemented("daemon uninstall"),
    ]
}
