import HappyKit

// STUB — replaced by the owner of this command group.
enum SessionCommands {
    static let handlers: [String: CommandHandler] = [
        "session new": notImplemented("session new"),
        "session list": notImplemented("session list"),
        "session stop": notImplemented("session stop"),
        "session send": notImplemented("session send"),
        "session logs": notImplemented("session logs"),
    ]
}
