import HappyKit

// STUB — replaced by the owner of this command group.
enum MachineCommands {
    static let handlers: [String: CommandHandler] = [
        "machine show": notImplemented("machine show"),
        "machine list": notImplemented("machine list"),
    ]
}
