import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

public enum CompletionsCommands {
    public static let handlers: [String: CommandHandler] = [
        "completions": CompletionCommandsKit.script,
        "__complete": CompletionCommandsKit.dynamic,
    ]
}
