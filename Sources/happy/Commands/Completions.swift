import HappyKit

enum CompletionsCommands {
    static let handlers: [String: CommandHandler] = [
        "completions": CompletionCommandsKit.script,
        "__complete": CompletionCommandsKit.dynamic,
    ]
}
