import FoundationEssentials
import Dispatch
import HappyCore
import HappyNet
import HappyConfig

/// The top of the executable: parse, run the command, render errors once.
public enum CLI {
    /// What to do after parsing: done already (version, help, usage error), or run.
    enum Step {
        case done(Int32)
        case sync(() -> Int32)
        case async(@Sendable () async -> Int32)
    }

    /// The entry point of `main.swift`: runs `happy` with `arguments` (without the program
    /// name) and returns the exit code. Synchronous commands, help, version and usage
    /// errors run on this thread without starting the concurrency runtime; an
    /// `AsyncCommand` runs on a detached task while this thread waits (nothing may need
    /// the main actor).
    public static func main(arguments: [String], tree: CommandSpec = CommandTree.root,
                            env: [String: String] = ProcessInfo.processInfo.environment,
                            out: Output? = nil, input: Input = .standard,
                            transport: (any HTTPTransport)? = nil) -> Int32 {
        switch prepare(arguments, tree: tree, env: env, out: out, input: input, transport: transport) {
        case .done(let code): return code
        case .sync(let run): return run()
        case .async(let run): return waitFor(run)
        }
    }

    /// The same from async code (tests).
    public static func run(arguments: [String], tree: CommandSpec = CommandTree.root,
                           env: [String: String] = ProcessInfo.processInfo.environment,
                           out: Output? = nil, input: Input = .standard,
                           transport: (any HTTPTransport)? = nil) async -> Int32 {
        switch prepare(arguments, tree: tree, env: env, out: out, input: input, transport: transport) {
        case .done(let code): return code
        case .sync(let run): return run()
        case .async(let run): return await run()
        }
    }

    static func prepare(_ arguments: [String], tree: CommandSpec, env: [String: String], out: Output?,
                        input: Input, transport: (any HTTPTransport)?) -> Step {
        let out = out ?? Output(env: env)
        let fail: @Sendable (Error) -> Int32 = { error in
            out.errorLine(renderError(error))
            return exitCode(for: error)
        }
        let outcome: ParseOutcome
        do {
            outcome = try ArgumentParser.parse(arguments, tree: tree)
        } catch {
            return .done(fail(error))
        }
        switch outcome {
        case .version:
            out.line("happy \(HappyVersion.current)")
            return .done(0)
        case .help(let path, _):
            out.write(HelpText.render(path: path, tree: tree))
            return .done(0)
        case .run(let cmd):
            // The parser returns `.run` only for a leaf, and every leaf has a runner.
            guard let node = tree.find(cmd.path), let runner = node.runner else {
                preconditionFailure("parser returned a group: \(cmd.pathString)")
            }
            let ctx = CommandContext(globals: cmd.globals, env: env, out: out, input: input, transport: transport)
            if cmd.globals.verbose { Log.install(OutputLogSink(out: out), minLevel: .debug) }
            if node.loadsConfig {
                do {
                    let home = try ctx.config().homeDir
                    if FileIO.exists(home) && !FileIO.isDirectory(home) { throw FileIOError.notADirectory(path: home) }
                } catch {
                    return .done(fail(error))
                }
            }
            switch runner {
            case .sync(let run):
                return .sync {
                    do { return try run(cmd, ctx) } catch { return fail(error) }
                }
            case .async(let run):
                return .async {
                    do { return try await run(cmd, ctx) } catch { return fail(error) }
                }
            }
        }
    }

    /// Runs `body` on a detached task and blocks this (non-pool) thread until it ends.
    static func waitFor(_ body: @escaping @Sendable () async -> Int32) -> Int32 {
        final class Box: @unchecked Sendable { var code: Int32 = 1 }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            box.code = await body()
            done.signal()
        }
        done.wait()
        return box.code
    }
}

/// `--verbose`: log lines on stderr through `Output` (filtered on a terminal).
struct OutputLogSink: LogSink {
    let out: Output
    func write(level: LogLevel, component: String, message: String) {
        out.errorLine(Log.formatLine(level: level, component: component, message: message))
    }
}
