import FoundationEssentials
import CPosix
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

/// What the CLI knows about this home's daemon, from the lock and state file.
public enum DaemonProbe: Sendable, Equatable {
    /// No daemon. `removed`: stale files cleaned up (paths; moved-aside corrupt ones included).
    case notRunning(removed: [String])
    /// A live happy daemon (pid, command line and start time match). `state` is nil
    /// while it is starting or when its state file is missing/unreadable.
    case running(pid: Int32, state: DaemonStateFile?)
}

public struct DaemonStartOutcome: Sendable, Equatable {
    public var alreadyRunning: Bool
    public var pid: Int32
    public var httpPort: Int?
    public var profile: String
    public var logPath: String?
}

public enum DaemonStopOutcome: Sendable, Equatable {
    case notRunning(removed: [String])
    /// `how`: "requested" (POST /stop), "SIGTERM" or "SIGKILL".
    case stopped(pid: Int32, how: String)
}

/// `daemon status` data (SPEC §3.3).
public struct DaemonStatusReport: Sendable {
    public var running: Bool
    /// nil when not running; false for a live daemon that did not answer.
    public var responding: Bool?
    public var pid: Int32?
    public var status: JSON?
    public var logPath: String?
    public var uptimeMs: Int64?
    public var removed: [String]
    public var state: DaemonStateFile?

    /// The `--json` document.
    public var json: JSON {
        var o: [String: JSON] = [:]
        for k in DaemonStatus.keys { o[k] = .null }
        o["running"] = .bool(running)
        o["logPath"] = .null
        o["uptimeMs"] = .null
        guard running else { return .object(o) }
        if let status, case .object(let s) = status {
            for k in DaemonStatus.keys { o[k] = s[k] ?? .null }
        } else if let state {
            o["pid"] = .int(Int(state.pid))
            o["httpPort"] = .int(state.httpPort)
            o["version"] = state.startedWithCliVersion.isEmpty ? .null : .string(state.startedWithCliVersion)
            o["profile"] = state.profile.isEmpty ? .null : .string(state.profile)
            o["startedAt"] = ISOTime.parse(state.startTime).map { .number(Double($0)) } ?? .null
        }
        if o["pid"]?.isNull ?? true, let pid { o["pid"] = .int(Int(pid)) }
        o["logPath"] = .optional(logPath)
        o["uptimeMs"] = uptimeMs.map { .number(Double($0)) } ?? .null
        if responding == false { o["responding"] = .bool(false) }
        return .object(o)
    }
}

/// The CLI side of the daemon: probe, start (detached), stop, status, client.
public enum DaemonControl {
    /// Reads lock + state; with `clean`, removes stale ones (dead or foreign pid) under
    /// the same folder flock the daemon takes its lock with.
    public static func probe(_ home: HomeLayout, clean: Bool = true) -> DaemonProbe {
        let lockExists = FileIO.exists(home.daemonLock)
        let lockInfo = DaemonLock.read(home.daemonLock)
        let stateRead = DaemonStateFile.read(home.daemonState)
        var state: DaemonStateFile?
        if case .ok(let s) = stateRead { state = s }
        if let l = lockInfo, l.isLiveDaemon {
            return .running(pid: l.pid, state: state?.pid == l.pid ? state : nil)
        }
        if !lockExists, let s = state, ProcessProbe.isHappyDaemon(pid: s.pid, expectedStartTime: nil) {
            return .running(pid: s.pid, state: s)
        }
        guard clean else { return .notRunning(removed: []) }
        return withHomeFlock(home) {
            var removed: [String] = []
            // Re-read under the flock: a daemon may have started since.
            let lock = DaemonLock.read(home.daemonLock)
            if let l = lock, l.isLiveDaemon {
                return .running(pid: l.pid, state: { if case .ok(let s) = DaemonStateFile.read(home.daemonState), s.pid == l.pid { return s }; return nil }())
            }
            if FileIO.exists(home.daemonLock), unlink(home.daemonLock) == 0 { removed.append(home.daemonLock) }
            switch DaemonStateFile.read(home.daemonState) {
            case .ok(let s):
                // A state file naming the pid of the stale lock belongs to the same dead
                // daemon, even when that pid now runs a look-alike command line (the lock's
                // start time is what told them apart): stale too (SPEC §3.3).
                let sameAsStaleLock = lock?.pid == s.pid
                if sameAsStaleLock || !ProcessProbe.isHappyDaemon(pid: s.pid, expectedStartTime: nil) || s.pid == getpid() {
                    if unlink(home.daemonState) == 0 { removed.append(home.daemonState) }
                } else {
                    return .running(pid: s.pid, state: s)
                }
            case .corrupt:
                if let moved = FileIO.moveAside(home.daemonState) { removed.append(moved) }
            case .missing: break
            }
            return .notRunning(removed: removed)
        }
    }

    static func withHomeFlock<T>(_ home: HomeLayout, _ body: () -> T) -> T {
        let dfd = open(home.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = cposix_flock_ex(dfd) }
        defer { if dfd >= 0 { _ = cposix_flock_un(dfd); close(dfd) } }
        return body()
    }

    /// A client for the running daemon; throws `notRunning` otherwise.
    public static func client(_ home: HomeLayout, timeout: Double = 5) throws -> ControlClient {
        for attempt in 0..<50 {
            switch probe(home) {
            case .notRunning: throw DaemonError.notRunning
            case .running(_, let state?): return ControlClient(state: state, timeout: timeout)
            case .running(let pid, nil):
                // Starting: the state file appears within moments.
                if attempt == 49 { throw DaemonError.notResponding(pid: pid) }
                usleep(100_000)
            }
        }
        throw DaemonError.notRunning
    }

    /// Arguments that make a child resolve the same configuration as this command.
    public static func childGlobalArgs(_ config: HappyConfig) -> [String] {
        ["--profile", config.profile, "--home-dir", config.homeDir, "--server-url", config.serverUrl]
    }

    /// `daemon start`: spawn `happy daemon start-sync` detached and wait ≤ `timeout` until
    /// the state file names a live pid and `GET /health` answers.
    public static func start(_ config: HappyConfig, executable: String = ProcessProbe.executablePath(),
                             globalArgs: [String]? = nil, timeout: Double = 10) throws -> DaemonStartOutcome {
        let home = config.home
        if case .running(let pid, let st) = probe(home) {
            return DaemonStartOutcome(alreadyRunning: true, pid: pid, httpPort: st?.httpPort, profile: config.profile, logPath: st?.daemonLogPath)
        }
        try FileIO.ensureDirectory(home.root)
        try FileIO.ensureDirectory(home.logsDir)
        // Empty daemon-stdio.log before the spawn (never through a planted symbolic link:
        // that would truncate, then append to, whatever it points at).
        let sfd = open(home.daemonStdioLog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if sfd < 0 {
            let reason = errno == ELOOP ? "it is a symbolic link (refused)" : errnoString()
            throw DaemonError.stdioLogUnusable(path: home.daemonStdioLog, reason: reason)
        }
        _ = fchmod(sfd, 0o600)
        close(sfd)
        let args = [executable] + (globalArgs ?? childGlobalArgs(config)) + ["daemon", "start-sync"]
        let pid = spawnDetached(executable, args: args, stdioPath: home.daemonStdioLog)
        if pid < 0 { throw DaemonError.spawnFailed(errnoString(-pid)) }
        let deadline = MonotonicClock.now() + timeout
        var childExited = false
        while MonotonicClock.now() < deadline {
            if !childExited {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { childExited = true }
            }
            switch probe(home, clean: false) {
            case .running(let p, let st?) where p != pid:
                // Another start won the race. Our own child is bound to lose the lock; wait for
                // it (and reap it) so that, once every `daemon start` has returned, exactly
                // one daemon process is left.
                if !childExited { retireLoser(pid, home: home) }
                return DaemonStartOutcome(alreadyRunning: true, pid: p, httpPort: st.httpPort, profile: config.profile, logPath: st.daemonLogPath)
            case .running(let p, nil) where p != pid && childExited:
                return DaemonStartOutcome(alreadyRunning: true, pid: p, httpPort: nil, profile: config.profile, logPath: nil)
            case .running(let p, let st?) where p == pid:
                if let r = try? ControlClient(state: st, timeout: 1).request("GET", "/health"), r.status == 200 {
                    return DaemonStartOutcome(alreadyRunning: false, pid: pid, httpPort: st.httpPort, profile: config.profile, logPath: st.daemonLogPath)
                }
            default:
                if childExited {
                    if case .running(let p, let st) = probe(home, clean: false) {
                        return DaemonStartOutcome(alreadyRunning: true, pid: p, httpPort: st?.httpPort, profile: config.profile, logPath: st?.daemonLogPath)
                    }
                    throw DaemonError.startFailed(detail: stdioTail(home))
                }
            }
            usleep(20_000)
        }
        throw DaemonError.startTimedOut(detail: stdioTail(home))
    }

    /// Waits for a spawned `start-sync` that lost the lock race to exit; one that is still
    /// there after 10 s is stopped, unless it holds the lock by then (the winner died
    /// meanwhile and it took over: it is the daemon now).
    static func retireLoser(_ pid: Int32, home: HomeLayout) {
        defer { var st: Int32 = 0; _ = waitpid(pid, &st, WNOHANG) }
        if waitExit(pid, seconds: 10) { return }
        if DaemonLock.read(home.daemonLock)?.pid == pid { return }
        kill(pid, SIGTERM)
        if waitExit(pid, seconds: 2) { return }
        kill(pid, SIGKILL)
        _ = waitExit(pid, seconds: 2)
    }

    static func stdioTail(_ home: HomeLayout) -> String {
        guard let b = try? FileIO.read(home.daemonStdioLog, noFollow: true, limit: 1 << 20) else { return "" }
        let lines = String(decoding: b, as: UTF8.self).split(separator: "\n").suffix(3)
        return lines.joined(separator: " | ")
    }

    static func spawnDetached(_ path: String, args: [String], stdioPath: String) -> Int32 {
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        var env: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cargs { free(p) }
            for p in env { free(p) }
        }
        return cargs.withUnsafeMutableBufferPointer { a in
            env.withUnsafeMutableBufferPointer { e in
                cposix_spawn_detached(path, a.baseAddress, e.baseAddress, stdioPath)
            }
        }
    }

    /// `daemon stop`: POST /stop, wait ≤ `timeout` for the pid to exit, then SIGTERM, then SIGKILL.
    public static func stop(_ home: HomeLayout, keepSessions: Bool, timeout: Double = 10) -> DaemonStopOutcome {
        guard case .running(let pid, let state) = probe(home) else {
            if case .notRunning(let removed) = probe(home) { return .notRunning(removed: removed) }
            return .notRunning(removed: [])
        }
        var how = "requested"
        var asked = false
        if let state {
            asked = (try? ControlClient(state: state, timeout: 2).stopDaemon(keepSessions: keepSessions)) != nil
        }
        if !asked { how = "SIGTERM"; kill(pid, SIGTERM) }
        if !waitExit(pid, seconds: timeout) {
            if asked { how = "SIGTERM"; kill(pid, SIGTERM) }
            if !waitExit(pid, seconds: asked ? 2 : 0.01) {
                how = "SIGKILL"
                kill(pid, SIGKILL)
                _ = waitExit(pid, seconds: 2)
            }
        }
        _ = probe(home)  // cleans what a killed daemon left
        return .stopped(pid: pid, how: how)
    }

    public static func waitExit(_ pid: Int32, seconds: Double) -> Bool {
        let deadline = MonotonicClock.now() + seconds
        while ProcessProbe.isAlive(pid) {
            var st: Int32 = 0
            _ = waitpid(pid, &st, WNOHANG)  // reap when it is our child
            if MonotonicClock.now() >= deadline { return !ProcessProbe.isAlive(pid) }
            usleep(20_000)
        }
        return true
    }

    /// `daemon status`: 3 tries of `tryTimeout` s each before "running but not responding".
    public static func status(_ home: HomeLayout, tries: Int = 3, tryTimeout: Double = 2) -> DaemonStatusReport {
        var last: (Int32, DaemonStateFile?) = (0, nil)
        for attempt in 0..<max(1, tries) {
            switch probe(home) {
            case .notRunning(let removed):
                return DaemonStatusReport(running: false, responding: nil, pid: nil, status: nil, logPath: nil, uptimeMs: nil, removed: removed, state: nil)
            case .running(let pid, let state):
                last = (pid, state)
                if let state {
                    let start = MonotonicClock.now()
                    if let r = try? ControlClient(state: state, timeout: tryTimeout).request("GET", "/status"), r.status == 200, let j = r.json {
                        let startedAt = j["startedAt"]?.double.map { Int64($0) }
                        let fresh: DaemonStateFile? = { if case .ok(let s) = DaemonStateFile.read(home.daemonState) { return s }; return nil }()
                        return DaemonStatusReport(running: true, responding: true, pid: pid, status: j,
                                                  logPath: fresh?.daemonLogPath ?? state.daemonLogPath,
                                                  uptimeMs: startedAt.map { max(0, ISOTime.nowMs() - $0) }, removed: [], state: state)
                    }
                    // A fast failure (refused) still waits a little before the next try.
                    let spent = MonotonicClock.now() - start
                    if attempt < tries - 1 && spent < 0.2 { usleep(UInt32((0.2 - spent) * 1e6)) }
                } else if attempt < tries - 1 {
                    usleep(UInt32(min(tryTimeout, 0.5) * 1e6))
                }
            }
        }
        let (pid, state) = last
        let uptime = state.flatMap { ISOTime.parse($0.startTime) }.map { max(0, ISOTime.nowMs() - $0) }
        return DaemonStatusReport(running: true, responding: false, pid: pid, status: nil, logPath: state?.daemonLogPath,
                                  uptimeMs: uptime, removed: [], state: state)
    }
}
