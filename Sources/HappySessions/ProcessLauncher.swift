import CPosix
import HappyCore
import HappyConfig
#if canImport(Glibc)
import Glibc
#endif

/// Starts one `claude` process for a session (SPEC §4.3): its folder, the stdin FIFO, the
/// output files, the command line, and the spawn itself (own session and process group,
/// fds 0/1/2 only, signal dispositions reset, no shell in between).
enum ProcessLauncher {
    /// What the manager keeps of a started process.
    struct Launched {
        let pid: Int32
        let startTime: UInt64?
        /// stdout.jsonl opened for reading (the daemon parses it).
        let readFD: Int32
        /// stdin.fifo opened O_RDWR|O_NONBLOCK: the daemon's end for writing messages.
        let fifoFD: Int32
    }

    /// `<claude.command> --print --output-format stream-json --verbose --input-format
    /// stream-json --permission-prompt-tool stdio [--permission-mode M] [--model X]
    /// [--resume ID] <claude.args...>`
    static func arguments(executable: String, mode: PermissionMode, model: String?, resume: String?,
                          extra: [String]) -> [String] {
        var a = [executable, "--print", "--output-format", "stream-json", "--verbose",
                 "--input-format", "stream-json", "--permission-prompt-tool", "stdio"]
        if mode != .default { a += ["--permission-mode", mode.rawValue] }
        if let model { a += ["--model", model] }
        if let resume { a += ["--resume", resume] }
        return a + extra
    }

    /// Creates `dir` (stdin.fifo, stdout.jsonl, stderr.log, all 0600) and spawns `argv`.
    /// On any failure nothing is left behind (the folder is removed) and it throws.
    static func launch(dir: String, executable: String, argv: [String], environment: [String: String],
                       workingDirectory: String) throws(SessionError) -> Launched {
        do {
            try FileIO.ensureDirectory(Paths.dirname(dir))
            try FileIO.ensureDirectory(dir)
        } catch {
            throw .spawnFailed("cannot create \(dir): \(renderError(error))")
        }
        let fifoPath = dir + "/stdin.fifo"
        let stdoutPath = dir + "/stdout.jsonl"
        let stderrPath = dir + "/stderr.log"
        var opened: [Int32] = []
        func fail(_ why: String) -> SessionError {
            for fd in opened { close(fd) }
            try? FileManagerShim.removeTree(dir)
            return .spawnFailed(why)
        }
        if cposix_mkfifo(fifoPath, 0o600) != 0 { throw fail("cannot create \(fifoPath): \(errnoString())") }
        _ = chmod(fifoPath, 0o600)
        func openOrFail(_ path: String, _ flags: Int32) throws(SessionError) -> Int32 {
            let fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if fd < 0 { throw fail("cannot open \(path): \(errnoString())") }
            opened.append(fd)
            return fd
        }
        // One O_RDWR descriptor for the child: a daemon that exits never delivers EOF.
        let childIn = try openOrFail(fifoPath, O_RDWR)
        let childOut = try openOrFail(stdoutPath, O_WRONLY | O_CREAT | O_APPEND)
        let childErr = try openOrFail(stderrPath, O_WRONLY | O_CREAT | O_APPEND)
        let readFD = try openOrFail(stdoutPath, O_RDONLY)
        let fifoFD = try openOrFail(fifoPath, O_RDWR | O_NONBLOCK)

        let envList = environment.keys.sorted().map { "\($0)=\(environment[$0]!)" }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cargv in
            withCStrings(envList) { cenv in
                cposix_spawn(executable, cargv, cenv, workingDirectory, childIn, childOut, childErr, &pid)
            }
        }
        for fd in [childIn, childOut, childErr] { close(fd) }
        opened = [readFD, fifoFD]
        if rc != 0 { throw fail("cannot execute \(executable): \(errnoString(rc))") }
        return Launched(pid: pid, startTime: ProcessProbe.startTime(pid), readFD: readFD, fifoFD: fifoFD)
    }

    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        ptrs.append(nil)
        defer { for p in ptrs { free(p) } }
        return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// Writes every byte to a non-blocking descriptor, waiting with poll() when it is
    /// full, for at most `timeoutMs` overall.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], timeoutMs: Int) -> Bool {
        let deadline = MonotonicClock.now() + Double(timeoutMs) / 1000
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n > 0 { off += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                let left = Int32((deadline - MonotonicClock.now()) * 1000)
                if left <= 0 { return false }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, Swift.min(left, 100))
                continue
            }
            return false
        }
        return true
    }
}
