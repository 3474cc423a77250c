import FoundationEssentials
import Dispatch
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

/// Knobs the tests turn; the product uses the defaults.
public struct DaemonOptions: Sendable {
    /// Write log lines to stderr too (start-sync on a terminal).
    public var logToStderr: Bool = false
    /// Install SIGTERM/SIGINT handlers (off in unit tests that run an engine in-process).
    public var handleSignals: Bool = true
    /// Seconds a client may stay silent on the control server.
    public var idleTimeout: Double = 10
    /// Upper bound for the whole shutdown.
    public var shutdownBudget: Double = 10
    /// Upper bound for each of the server link's two shutdown steps.
    public var serverLinkShutdownBudget: Double = 2.1
    /// Install the rotating log sink as the global `Log` sink.
    public var installLogSink: Bool = true
    /// Drop clean read-only file pages (start-up code, tables) from the resident set
    /// after start-up and at each health check; they are re-read on demand.
    public var trimResidentPages: Bool = true
    public init() {}
}

/// Where the engine is in its life. Moves only forward:
/// `starting` → `running` → `shuttingDown(source)` → `stopped` (a shutdown asked for
/// while still starting skips `running`).
public enum DaemonPhase: Sendable, Equatable {
    case starting
    case running
    case shuttingDown(ShutdownSource)
    case stopped

    /// No new work (heartbeats, log-path updates) once a shutdown began.
    public var isWindingDown: Bool {
        switch self {
        case .shuttingDown, .stopped: return true
        case .starting, .running: return false
        }
    }
}

/// The daemon lifecycle of SPEC §4.1: lock, log, state file, control server, server
/// link, health check, signals, shutdown. `start()` then `waitUntilStopped()`.
public final class DaemonEngine: @unchecked Sendable {
    public let config: HappyConfig
    public let sessions: SessionService
    public let options: DaemonOptions
    private let serverLinkFactory: ServerLinkFactory?

    private let lock = Lock()
    private var server: ControlServer?
    private var api: ControlAPI?
    private var serverLink: ServerLink?
    private var logSink: RotatingLogSink?
    private var state: DaemonStateFile?
    private var signalSources: [DispatchSourceSignal] = []
    private var healthTask: Task<Void, Never>?
    private var _phase: DaemonPhase = .starting
    private var lockHeld = false
    private var stoppedWaiters: [CheckedContinuation<Void, Never>] = []
    /// `finish` runs once: the shutdown task and the budget watchdog race for it.
    private let finishOnce = OnceFlag()
    private let pid = getpid()

    public init(config: HappyConfig, sessions: SessionService, serverLinkFactory: ServerLinkFactory? = nil,
                options: DaemonOptions = DaemonOptions()) {
        self.config = config
        self.sessions = sessions
        self.serverLinkFactory = serverLinkFactory
        self.options = options
    }

    public var home: HomeLayout { config.home }

    private func sync<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }
    /// The control server's port once started.
    public var httpPort: Int { lock.lock(); defer { lock.unlock() }; return state?.httpPort ?? 0 }
    public var controlToken: String? { lock.lock(); defer { lock.unlock() }; return state?.controlToken }
    public var logPath: String? { logSink?.path }
    public var phase: DaemonPhase { sync { _phase } }

    /// Steps 1–4 of §4.1. Throws (and cleans up what it took) when the daemon cannot run.
    public func start() async throws {
        // 1. Home folders and the lock.
        let reclaimed: DaemonLockInfo?
        do {
            try FileIO.ensureDirectory(home.root)
            try FileIO.ensureDirectory(home.logsDir)
            (_, reclaimed) = try DaemonLock.acquire(home.daemonLock, pid: pid)
        } catch {
            sync { _phase = .stopped }
            throw error
        }
        sync { lockHeld = true }
        do {
            try await startAfterLock(reclaimedStale: reclaimed)
        } catch {
            Log.error("daemon", "start-up failed: \(errorWhat(error))")
            server?.stop()
            if case .ok(let s) = DaemonStateFile.read(home.daemonState), s.pid == pid { unlink(home.daemonState) }
            DaemonLock.release(home.daemonLock, pid: pid)
            sync { lockHeld = false; _phase = .stopped }
            if options.installLogSink { Log.install(nil) }
            logSink?.close()
            throw error
        }
    }

    private func startAfterLock(reclaimedStale: DaemonLockInfo?) async throws {
        // 2. Log file and state file.
        let sink = try RotatingLogSink(directory: home.logsDir, maxBytes: Int(config.daemon.logMaxMiB * 1024 * 1024),
                                       maxFiles: config.daemon.logFiles, pid: pid, alsoStderr: options.logToStderr)
        logSink = sink
        if options.installLogSink { Log.install(sink) }
        Log.info("daemon", "starting happy \(HappyVersion.current) daemon (pid \(pid), profile \(config.profile), home \(home.root))")
        if let r = reclaimedStale {
            Log.warn("daemon", "reclaimed a stale lock (pid \(r.pid == 0 ? "unreadable" : String(r.pid)))")
        }
        switch DaemonStateFile.read(home.daemonState) {
        case .corrupt(let why):
            let moved = FileIO.moveAside(home.daemonState)
            Log.warn("daemon", "daemon.state.json could not be parsed (\(why)); moved aside to \(moved ?? "?")")
        case .ok(let old) where old.pid != pid:
            Log.info("daemon", "replacing the state file of a previous daemon (pid \(old.pid))")
        default: break
        }

        // 3. Control server (bound before the state file names its port).
        let token = DaemonStateFile.newControlToken()
        let startedAt = ISOTime.nowMs()
        let api = ControlAPI(token: token, sessions: sessions, profile: config.profile, serverUrl: config.serverUrl,
                             pid: pid, startedAtMs: startedAt,
                             statusInfo: { [weak self] in await self?.statusInfo() ?? DaemonStatusInfo(machineId: nil, server: .noCredentials) },
                             onStop: { [weak self] keep in self?.requestShutdown(source: .cli, keepSessions: keep) })
        let server = ControlServer(port: config.daemon.httpPort, handler: api, idleTimeout: options.idleTimeout)
        do {
            let port = try server.bind()
            api.port = port
        } catch ControlServerError.bindFailed(let port, let err) {
            if err == EADDRINUSE { throw DaemonError.portBusy(port: port, profile: config.profile) }
            throw DaemonError.listenFailed(port: port, reason: errnoString(err))
        }
        self.api = api
        self.server = server

        let nowIso = ISOTime.string(epochMs: startedAt)
        let st = DaemonStateFile(pid: pid, httpPort: api.port, controlToken: token, startTime: nowIso,
                                 startedWithCliVersion: HappyVersion.current, lastHeartbeat: nowIso,
                                 daemonLogPath: sink.path, profile: config.profile)
        sync { state = st }

        // Sessions: load records, adopt live ones (before the API can spawn).
        await sessions.start()
        try server.start()
        try st.write(to: home.daemonState)
        sink.setOnRotate { [weak self] newPath in self?.logRotated(to: newPath) }
        Log.info("daemon", "control server listening on 127.0.0.1:\(api.port)")

        // settings.json belongs to the daemon: a corrupt one is moved aside, a machine id created.
        _ = SettingsStore(home: home).ensureMachineIdRepairing()

        // 4. Server link (machine sync), when credentials exist.
        let ctx = DaemonContext(config: config, sessions: sessions, httpPort: api.port, pid: pid, startedAt: startedAt,
                                requestShutdown: { [weak self] src, keep in self?.requestShutdown(source: src, keepSessions: keep) })
        if let link = serverLinkFactory?(ctx) {
            sync { serverLink = link }
            Task { await link.start() }
        } else {
            Log.info("daemon", "no credentials: running offline (local control API and sessions only)")
        }

        if options.handleSignals { installSignalHandlers() }
        startHealthCheck()
        sync { if _phase == .starting { _phase = .running } }
        Log.info("daemon", "daemon ready (pid \(pid), port \(api.port))")
    }

    private func statusInfo() async -> DaemonStatusInfo {
        let link = sync { serverLink }
        let status = await link?.status() ?? .noCredentials
        // Tolerant of a missing or corrupt file: the status just says "no machine id".
        return DaemonStatusInfo(machineId: (try? SettingsStore(home: home).machineId()) ?? nil, server: status)
    }

    private func logRotated(to newPath: String) {
        lock.lock()
        guard var st = state, !_phase.isWindingDown else { lock.unlock(); return }
        st.daemonLogPath = newPath
        state = st
        lock.unlock()
        try? st.write(to: home.daemonState)
    }

    private func installSignalHandlers() {
        for sig in [SIGTERM, SIGINT] {
            _ = cposix_install_noop_handler(sig)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [weak self] in
                Log.info("daemon", "received \(sig == SIGTERM ? "SIGTERM" : "SIGINT")")
                self?.requestShutdown(source: .osSignal, keepSessions: false)
            }
            src.resume()
            signalSources.append(src)
        }
        // SIGPIPE: a no-op handler, not SIG_IGN (children would inherit an ignored SIGPIPE).
        _ = cposix_install_noop_handler(SIGPIPE)
    }

    private func startHealthCheck() {
        let period = max(0.05, config.daemon.healthCheckSeconds)
        if options.trimResidentPages {
            DispatchQueue.global().asyncAfter(deadline: .now() + 2) { _ = cposix_trim_clean_file_pages() }
        }
        healthTask = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(period * 1e9))
                if Task.isCancelled { return }
                guard let self else { return }
                await self.healthCheck()
            }
        }
    }

    /// Step 5: prune sessions, rewrite lastHeartbeat; another pid in the state file → shut down.
    func healthCheck() async {
        if phase.isWindingDown { return }
        await sessions.prune()
        if options.trimResidentPages { _ = cposix_trim_clean_file_pages() }
        switch DaemonStateFile.read(home.daemonState) {
        case .ok(let onDisk) where onDisk.pid != pid:
            Log.warn("daemon", "daemon.state.json now names pid \(onDisk.pid); shutting down")
            requestShutdown(source: .unknown, keepSessions: true)
            return
        default: break
        }
        let updated: DaemonStateFile? = sync {
            guard var st = state, !_phase.isWindingDown else { return nil }
            st.lastHeartbeat = ISOTime.now()
            state = st
            return st
        }
        guard let st = updated else { return }
        do { try st.write(to: home.daemonState) } catch {
            Log.error("daemon", "cannot write daemon.state.json: \(errorWhat(error))")
        }
    }

    /// Starts the shutdown (once). `POST /stop`, signals, the `stop-daemon` RPC.
    public func requestShutdown(source: ShutdownSource, keepSessions: Bool) {
        let first: Bool = sync {
            guard !_phase.isWindingDown else { return false }
            _phase = .shuttingDown(source)
            return true
        }
        guard first else { return }
        Log.info("daemon", "shutdown requested (source \(source.rawValue), keepSessions \(keepSessions))")
        // Watchdog: the whole shutdown finishes within the budget, whatever hangs.
        let budget = options.shutdownBudget
        DispatchQueue.global().asyncAfter(deadline: .now() + budget) { [weak self] in
            self?.finish(reason: "shutdown budget of \(Int(budget)) s exhausted")
        }
        Task { [self] in
            await self.performShutdown(source: source, keepSessions: keepSessions)
        }
    }

    private func performShutdown(source: ShutdownSource, keepSessions: Bool) async {
        healthTask?.cancel()
        let link = sync { serverLink }
        if let link {
            await withTimeLimit(seconds: options.serverLinkShutdownBudget) { await link.beginShutdown(source: source) }
        }
        let sessionBudget = max(0.5, options.shutdownBudget - 2 * options.serverLinkShutdownBudget - 0.5)
        await withTimeLimit(seconds: sessionBudget) { [sessions] in await sessions.shutdown(keepSessions: keepSessions) }
        if let link {
            await withTimeLimit(seconds: options.serverLinkShutdownBudget) { await link.finishShutdown() }
        }
        finish(reason: nil)
    }

    /// Stop the control server, remove the state file, release the lock, wake the waiters.
    private func finish(reason: String?) {
        guard finishOnce.take() else { return }
        let (srv, held): (ControlServer?, Bool) = sync {
            defer { lockHeld = false }
            return (server, lockHeld)
        }
        if let reason { Log.warn("daemon", reason) }
        srv?.stop(timeout: 1.5)
        if case .ok(let s) = DaemonStateFile.read(home.daemonState), s.pid == pid { unlink(home.daemonState) }
        if held { DaemonLock.release(home.daemonLock, pid: pid) }
        Log.info("daemon", "daemon stopped")
        for s in signalSources { s.cancel() }
        if options.installLogSink { Log.install(nil) }
        logSink?.close()
        let waiters: [CheckedContinuation<Void, Never>] = sync {
            _phase = .stopped
            defer { stoppedWaiters = [] }
            return stoppedWaiters
        }
        for w in waiters { w.resume() }
    }

    /// Waits until the daemon has shut down.
    public func waitUntilStopped() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now: Bool = sync {
                if _phase == .stopped { return true }
                stoppedWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// `daemon start-sync`: the product's engine (session manager, machine sync when
    /// credentials exist) in the foreground until it shuts down.
    public static func runForeground(config: HappyConfig, logToStderr: Bool) async throws {
        var opts = DaemonOptions()
        opts.logToStderr = logToStderr
        let engine = DaemonEngine(config: config, sessions: SessionManager(config: config),
                                  serverLinkFactory: ServerSync.factory(), options: opts)
        try await engine.start()
        await engine.waitUntilStopped()
    }
}
