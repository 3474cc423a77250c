import HappyKit

// STUB — replaced by the owner of this command group.
enum AuthCommands {
    static let handlers: [String: CommandHandler] = [
        "auth login": notImplemented("auth login"),
        "auth status": notImplemented("auth status"),
        "auth logout": notImplemented("auth logout"),
    ]
}
