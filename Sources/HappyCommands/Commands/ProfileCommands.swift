import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

public enum ProfileCommands {
    public static let handlers: [String: CommandHandler] = [
        "profile list": ProfileCommandsKit.list,
        "profile show": ProfileCommandsKit.show,
        "profile path": ProfileCommandsKit.path,
    ]
}
