import HappyKit

enum ProfileCommands {
    static let handlers: [String: CommandHandler] = [
        "profile list": ProfileCommandsKit.list,
        "profile show": ProfileCommandsKit.show,
        "profile path": ProfileCommandsKit.path,
    ]
}
