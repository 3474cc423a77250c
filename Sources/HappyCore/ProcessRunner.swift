import CPosix
#if canImport(Glibc)
import Glibc
#endif

/// Why a child process could not be run (it never started).
public enum ProcessRunnerError: HappyError, Equatable {
    /// posix_spawn failed: missing executable, no permission, bad working directory…
    case cannotStart(executable: String, reason: String)
    /// A pipe or /dev/null could not be opened (descriptor exhaustion).
    case resources(reason: String)

    public var what: String {
        switch self {
        case .cannotStart(let e, let r): return "cannot run \(e): \(r)"
        case .resources(let r): return "cannot start a process: \(r)"
        }
    }
}

/// Runs one child process to completion and captures its output: the shell and search
/// tools the phone's RPCs run. The child gets stdin `/dev/null`, stdout and stderr pipes,
/// its own session and process group (pgid == pid), default signal dispositions and no
/// other descriptor. Output is captured up to `outputLimit` bytes per stream; past the cap
/// it is still read and discarded, so the child never blocks on a full pipe.
///
/// On `timeout` the whole process group gets SIGTERM, then SIGKILL `killGrace` seconds
/// later; once the direct child has exited after a timeout the group gets SIGKILL too
/// (before the child is reaped, so the group id cannot have been reused). After the direct
/// child exits, the pipes are drained until EOF or for at most `drainAfterExit` seconds
/// (a background grandchild that keeps them open does not hold the caller). The child is
/// always reaped (by pid, never `waitpid(-1)`) and every descriptor is closed.
public enum ProcessRunner {
    public struct Request: Sendable {
        /// Absolute path of the program (no PATH search).
        public var executable: String
        /// argv[1...].
        public var arguments: [String]
        /// The complete environment of the child.
        public var environment: [String: String]
        /// Working directory of the child; nil = ours.
        public var workingDirectory: String?
        /// Seconds until the group is terminated; nil = no limit.
        public var timeout: Double?
        /// Bytes kept per stream.
        public var outputLimit: Int
        /// Seconds between SIGTERM and SIGKILL after a timeout.
        public var killGrace: Double
        /// Seconds the pipes are still read after the direct child exited.
        public var drainAfterExit: Double

        public init(executable: String, arguments: [String] = [], environment: [String: String],
                    workingDirectory: String? = nil, timeout: Double? = nil, outputLimit: Int = 1 << 20,
                    killGrace: Double = 1.0, drainAfterExit: Double = 0.2) {
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.workingDirectory = workingDirectory
            self.timeout = timeout
            self.outputLimit = max(0, outputLimit)
            self.killGrace = max(0, killGrace)
            self.drainAfterExit = max(0, drainAfterExit)
        }
    }

    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    public struct Output: Sendable {
        public var pid: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        /// More than `outputLimit` bytes were written to the stream (the rest was dropped).
        public var stdoutTruncated: Bool
        public var stderrTruncated: Bool
        /// Total bytes the child wrote to each stream (kept or not).
        public var stdoutTotal: Int
        public var stderrTotal: Int
        public var termination: Termination
        /// The timeout fired (the group was signalled).
        public var timedOut: Bool
        /// Wall time from spawn to reaping, seconds.
        public var duration: Double

        /// The exit code, or nil when a signal ended the child.
        public var exitCode: Int32? {
            if case .exited(let c) = termination { return c }
            return nil
        }
    }

    /// Runs the child on the calling thread (it blocks until the child is reaped). Call it
    /// from a dedicated thread, or use `run(_:)`.
    public static func runBlocking(_ request: Request) throws(ProcessRunnerError) -> Output {
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        var owned: [Int32] = []
        func closeAll() { for fd in owned where fd >= 0 { close(fd) }; owned = [] }

        if cposix_pipe_cloexec(&outPipe) != 0 { throw .resources(reason: errnoString()) }
        owned += outPipe
        if cposix_pipe_cloexec(&errPipe) != 0 { let r = errnoString(); closeAll(); throw .resources(reason: r) }
        owned += errPipe
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if devNull < 0 { let r = errnoString(); closeAll(); throw .resources(reason: r) }
        owned.append(devNull)

        let argv = [request.executable] + request.arguments
        let envList = request.environment.keys.sorted().map { "\($0)=\(request.environment[$0]!)" }
        var pid: pid_t = 0
        let started = MonotonicClock.now()
        let rc = withCStrings(argv) { cargv in
            withCStrings(envList) { cenv in
                cposix_spawn(request.executable, cargv, cenv, request.workingDirectory,
                             devNull, outPipe[1], errPipe[1], &pid)
            }
        }
        // Our copies of the child's ends.
        close(devNull); close(outPipe[1]); close(errPipe[1])
        owned = [outPipe[0], errPipe[0]]
        if rc != 0 {
            closeAll()
            throw .cannotStart(executable: request.executable, reason: errnoString(rc))
        }
        // Our unreaped child: the pid cannot be reused while we hold it, so the pidfd is exact.
        let pidfd = cposix_pidfd_open(pid)
        if pidfd >= 0 { owned.append(pidfd) }
        defer { closeAll() }

        let limit = request.outputLimit
        var out = Capture(limit: limit), err = Capture(limit: limit)
        var outFD: Int32 = outPipe[0], errFD: Int32 = errPipe[0]
        var exited = false
        var exitedAt = 0.0
        var status: Int32 = 0
        var timedOut = false
        var termSentAt = 0.0
        var killSent = false
        let deadline = request.timeout.map { started + max(0, $0) }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)

        func closeFD(_ fd: inout Int32) {
            if fd >= 0 { close(fd); owned.removeAll { $0 == fd }; fd = -1 }
        }
        func reap() {
            var st: Int32 = 0
            var r: pid_t
            repeat { r = waitpid(pid, &st, 0) } while r < 0 && errno == EINTR
            status = st
            exited = true
            exitedAt = MonotonicClock.now()
        }
        func childExitedUnreaped() -> Bool {
            // With a pidfd: readable == exited, still a zombie. Without: reap now.
            if pidfd >= 0 { return cposix_poll1(pidfd, Int32(POLLIN), 0) > 0 }
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { status = st; exited = true; exitedAt = MonotonicClock.now() }
            return r == pid
        }

        while true {
            let now = MonotonicClock.now()
            // Timeout: TERM to the group, KILL after the grace.
            if !exited, let deadline, now >= deadline, !timedOut {
                timedOut = true
                termSentAt = now
                kill(-pid, SIGTERM)
            }
            if timedOut, !killSent, !exited, now >= termSentAt + request.killGrace {
                killSent = true
                kill(-pid, SIGKILL)
            }
            if !exited, childExitedUnreaped() {
                // After a timeout, nothing of the group may survive; the zombie still holds
                // the group id, so this cannot reach a reused pgid.
                if timedOut { kill(-pid, SIGKILL) }
                if !exited { reap() }
            }
            if exited && outFD < 0 && errFD < 0 { break }
            if exited && MonotonicClock.now() >= exitedAt + request.drainAfterExit { break }

            // Wait for output, the child's exit or the next deadline.
            var wait = 1.0
            if !exited {
                if let deadline, !timedOut { wait = min(wait, deadline - now) }
                if timedOut && !killSent { wait = min(wait, termSentAt + request.killGrace - now) }
                if pidfd < 0 { wait = min(wait, 0.01) }
            } else {
                wait = min(wait, exitedAt + request.drainAfterExit - now)
            }
            let ms = Int32(max(0, min(1000, (wait * 1000).rounded(.up))))
            var pfds: [pollfd] = []
            if outFD >= 0 { pfds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
            if errFD >= 0 { pfds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
            if !exited && pidfd >= 0 { pfds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            let n = pfds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), ms) }
            if n < 0 && errno != EINTR { break }
            if n <= 0 { continue }
            for p in pfds where p.revents != 0 && (p.fd == outFD || p.fd == errFD) {
                let r = chunk.withUnsafeMutableBytes { read(p.fd, $0.baseAddress!, $0.count) }
                if r < 0 && errno == EINTR { continue }
                if r <= 0 {
                    if p.fd == outFD { closeFD(&outFD) } else { closeFD(&errFD) }
                    continue
                }
                if p.fd == outFD { out.append(chunk, r) } else { err.append(chunk, r) }
            }
        }
        if !exited { reap() }  // only after a poll failure: block until the child is gone

        let term: Termination = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        return Output(pid: pid, stdout: out.bytes, stderr: err.bytes,
                      stdoutTruncated: out.total > limit, stderrTruncated: err.total > limit,
                      stdoutTotal: out.total, stderrTotal: err.total,
                      termination: term, timedOut: timedOut, duration: MonotonicClock.now() - started)
    }

    /// Runs the child on a dedicated OS thread (never on the cooperative pool).
    public static func run(_ request: Request) async throws(ProcessRunnerError) -> Output {
        let result: Result<Output, ProcessRunnerError> = await withCheckedContinuation { c in
            OSThread.start(name: "happy-proc") {
                c.resume(returning: Result { () throws(ProcessRunnerError) -> Output in try runBlocking(request) })
            }
        }
        return try result.get()
    }

    private struct Capture {
        let limit: Int
        var bytes: [UInt8] = []
        var total = 0
        init(limit: Int) { self.limit = limit }
        mutating func append(_ chunk: [UInt8], _ n: Int) {
            total += n
            let room = limit - bytes.count
            if room > 0 { bytes.append(contentsOf: chunk[0..<min(n, room)]) }
        }
    }

    /// A NULL-terminated `char *[]` for the duration of `body`.
    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        ptrs.append(nil)
        defer { for p in ptrs { free(p) } }
        return body(ptrs)
    }
}
