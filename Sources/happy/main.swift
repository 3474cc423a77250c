import HappyCommands
#if canImport(Glibc)
import Glibc
#endif

// Each command group lives in Commands/<Group>.swift as `enum <Group>Commands { static let
// handlers: [String: CommandHandler] }`, keyed by command path ("daemon start").
let handlers = CLI.merge(
    AuthCommands.handlers,
    MachineCommands.handlers,
    DaemonCommands.handlers,
    SessionCommands.handlers,
    LogsCommands.handlers,
    ProfileCommands.handlers,
    CompletionsCommands.handlers,
    DoctorCommands.handlers
)
let code = await CLI.run(arguments: Array(CommandLine.arguments.dropFirst()), handlers: handlers)
exit(code)
