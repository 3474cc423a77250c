import HappyKit

// STUB — replaced by the owner of this command group.
enum DoctorCommands {
    static let handlers: [String: CommandHandler] = [
        "doctor": notImplemented("doctor"),
    ]
}
