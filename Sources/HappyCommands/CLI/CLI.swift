import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// The top of the executable: parse, dispatch to a handler, render errors once.
public enum CLI {
    /// Runs `happy` with `arguments` (without the program name). Returns the exit code.
    public static func run(arguments: [String], handlers: [String: CommandHandler],
                           env: [String: String] = ProcessInfo.processInfo.environment) async -> Int32 {
        let out = Output(env: env)
        let outcome: ParseOutcome
        do {
            outcome = try ArgumentParser.parse(arguments)
        } catch {
            out.errorLine(renderError(error))
            return exitCode(for: error)
        }
        switch outcome {
        case .version:
            out.line("happy \(HappyVersion.current)")
            return 0
        case .help(let path, _):
            out.write(HelpText.render(path: path))
            return 0
        case .run(let cmd):
            let ctx = CommandContext(command: cmd, env: env, out: out)
            if cmd.globals.verbose { Log.install(StderrLogSink(), minLevel: .debug) }
            do {
                guard let handler = handlers[cmd.pathString] else {
                    throw CLIError.notImplemented(command: cmd.pathString)
                }
                if CommandTree.root.find(cmd.path)?.loadsConfig ?? true {
                    let home = try ctx.resolved().config.homeDir
                    if FileIO.exists(home) && !FileIO.isDirectory(home) { throw FileIOError.notADirectory(path: home) }
                }
                return try await handler(ctx)
            } catch {
                out.errorLine(renderError(error))
                return exitCode(for: error)
            }
        }
    }

    /// Merges handler tables (one per command group); a duplicate key is a programming error.
    public static func merge(_ groups: [String: CommandHandler]...) -> [String: CommandHandler] {
        var all: [String: CommandHandler] = [:]
        for g in groups {
            for (k, v) in g {
                precondition(all[k] == nil, "two handlers for '\(k)'")
                all[k] = v
            }
        }
        return all
    }
}

/// A handler that fails with `CLIError.notImplemented` (exit 1): for stub group files.
public func notImplemented(_ path: String) -> CommandHandler {
    { _ in throw CLIError.notImplemented(command: path) }
}
