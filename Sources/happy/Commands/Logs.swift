import HappyKit

// STUB — replaced by the owner of this command group.
enum LogsCommands {
    static let handlers: [String: CommandHandler] = [
        "logs tail": notImplemented("logs tail"),
        "logs list": notImplemented("logs list"),
        "logs path": notImplemented("logs path"),
    ]
}
