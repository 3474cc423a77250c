import HappyCore

/// The process tools: `bash`, `ripgrep`, `difftastic`. Children run on a dedicated thread
/// (`ProcessRunner.run`) with stdin `/dev/null`, in their own process group.
enum ShellTools {
    static func bash(_ p: BashParams, _ ctx: ToolContext) async -> BashResult {
        let cwd: String
        // realpath(3) and stat(2) may block (network file systems): off the pool.
        switch await offPool({ ctx.confinement().workingDirectory(p.cwd) }) {
        case .failure(let f): return .failure(f.message)
        case .success(let d): cwd = d
        }
        let ms = (p.timeoutMs ?? 0) > 0 ? p.timeoutMs! : ctx.limits.bashDefaultTimeoutMs
        let req = ProcessRunner.Request(executable: "/bin/sh", arguments: ["-c", p.command],
                                        environment: ctx.environment, workingDirectory: cwd, timeout: ms / 1000,
                                        outputLimit: ctx.limits.outputCap, killGrace: ctx.limits.killGrace,
                                        drainAfterExit: ctx.limits.drainAfterExit)
        let out: ProcessRunner.Output
        do { out = try await ProcessRunner.run(req) } catch {
            return .failure("cannot run the command: \(error.what)")
        }
        var r = BashResult(success: false, stdout: String(decoding: out.stdout, as: UTF8.self),
                           stderr: String(decoding: out.stderr, as: UTF8.self), exitCode: -1,
                           stdoutTruncated: out.stdoutTruncated, stderrTruncated: out.stderrTruncated)
        if out.timedOut {
            r.exitCode = out.exitCode.map(Int.init) ?? -1
            r.error = "Command timed out"
            return r
        }
        switch out.termination {
        case .exited(0):
            r.success = true
            r.exitCode = 0
        case .exited(let c):
            r.exitCode = Int(c)
            r.error = "Command failed with exit code \(c)"
        case .signaled(let s):
            r.exitCode = 128 + Int(s)
            r.error = "Command was terminated by signal \(s)"
        }
        return r
    }

    enum External {
        case ripgrep, difftastic

        var command: String { self == .ripgrep ? "rg" : "difft" }
        var notInstalled: String {
            switch self {
            case .ripgrep:
                return "ripgrep (rg) is not installed on this machine — install it to search files from the app"
            case .difftastic:
                return "difftastic (difft) is not installed on this machine — install it to see diffs from the app"
            }
        }
    }

    static func external(_ tool: External, _ p: ExternalToolParams, _ ctx: ToolContext) async -> ExternalToolResult {
        let cwd: String
        // realpath(3) and stat(2) may block (network file systems): off the pool.
        switch await offPool({ ctx.confinement().workingDirectory(p.cwd) }) {
        case .failure(let f): return .failure(f.message)
        case .success(let d): cwd = d
        }
        let command = tool.command
        guard var exe = await offPool({ ExecutableLookup.resolve(command, path: ctx.environment["PATH"]) }) else {
            return .failure(tool.notInstalled)
        }
        if !exe.hasPrefix("/") { exe = Paths.absolute(exe, env: ctx.environment) }
        var env = ctx.environment
        if tool == .difftastic { env["FORCE_COLOR"] = "1" }  // as the original
        let req = ProcessRunner.Request(executable: exe, arguments: p.args, environment: env, workingDirectory: cwd,
                                        timeout: ctx.limits.externalToolTimeout, outputLimit: ctx.limits.outputCap,
                                        killGrace: ctx.limits.killGrace, drainAfterExit: ctx.limits.drainAfterExit)
        let out: ProcessRunner.Output
        do { out = try await ProcessRunner.run(req) } catch {
            return .failure("cannot run \(tool.command): \(error.what)")
        }
        let code: Int
        switch out.termination {
        case .exited(let c): code = Int(c)
        case .signaled(let s): code = 128 + Int(s)
        }
        var r = ExternalToolResult(success: true, exitCode: code, stdout: String(decoding: out.stdout, as: UTF8.self),
                                   stderr: String(decoding: out.stderr, as: UTF8.self),
                                   stdoutTruncated: out.stdoutTruncated, stderrTruncated: out.stderrTruncated)
        if out.timedOut {
            r.success = false
            r.exitCode = out.exitCode.map(Int.init) ?? -1
            r.error = "Command timed out"
        } else if case .signaled(let s) = out.termination {
            r.success = false
            r.error = "\(tool.command) was terminated by signal \(s)"
        }
        return r
    }
}
