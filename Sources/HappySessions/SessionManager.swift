import CPosix
import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig

/// Spawns and watches `claude` sessions (SPEC §4.3, §4.5 output cap, §4.6 limits, §7.5
/// permissions, §7.7 local surface).
///
/// - Each session runs claude directly (`ProcessLauncher`), stdin = `sessions/ID/stdin.fifo`
///   opened O_RDWR, stdout/stderr appended to files.
/// - Output is watched with one inotify descriptor (Dispatch read source) and parsed
///   incrementally; exits are noticed with a pidfd per session (works for adopted
///   sessions too) and children are reaped by pid (never `waitpid(-1)`).
/// - claude's stdio control protocol is answered here: `can_use_tool` requests are
///   auto-answered by mode/allow-set or kept pending until someone answers them.
/// - Records are persisted atomically on every status change; counters at most once a
///   second and always at exit. Everything an observer (the server sync) needs is told
///   as a `SessionEvent`.
public actor SessionManager: SessionService {
    public let config: HappyConfig
    let environment: [String: String]
    let layout: HomeLayout
    /// SIGTERM → SIGKILL delay (SPEC: 5 s).
    let killGrace: Double
    /// Finished records are deleted after this long (SPEC: 14 days).
    let retentionMs: Int64 = 14 * 24 * 3600 * 1000
    let capBytes: Int64
    let clock: @Sendable () -> Double

    /// Runtime state of a live session (actor-isolated).
    final class Live {
        var readFD: Int32 = -1
        /// Offset in the current stdout.jsonl up to which output was read.
        var offset: Int64 = 0
        var scanner = StreamJSONScanner()
        var stdoutWD: Int32 = -1
        var stderrWD: Int32 = -1
        var fifoFD: Int32 = -1
        let writeQueue: DispatchQueue
        var exitSource: DispatchSourceRead?
        let isChild: Bool
        var sawOutput: Bool
        var lastActivity: Double
        var stopReason: StopReason?
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// An interrupt was sent and its turn's `result` has not arrived yet.
        var aborting = false
        /// Said once per session: output was dropped because the copy at rotation failed.
        var warnedDrop = false
        var controlSeq = 0

        init(id: String, isChild: Bool, sawOutput: Bool, now: Double) {
            self.isChild = isChild
            self.sawOutput = sawOutput
            self.lastActivity = now
            self.writeQueue = DispatchQueue(label: "happy.session.stdin.\(id)")
        }
    }

    var records: [String: SessionRecord] = [:]
    var live: [String: Live] = [:]
    var watches: [Int32: (id: String, stdout: Bool)] = [:]
    var inotifyFD: Int32 = -1
    var inotifySource: DispatchSourceRead?
    var idleTimer: DispatchSourceTimer?
    var dirty: Set<String> = []
    var flushScheduled = false
    var started = false
    var nextWaiter: UInt64 = 0
    var observer: (@Sendable (SessionEvent) -> Void)?
    /// The observer mirrors sessions to the server (new ones start `pending`).
    var mirrored = false
    /// Writes a session.json (tests replace it to see a failure: a full disk, a broken home).
    var writeRecord: @Sendable (JSON, String) throws -> Void = { try FileIO.writeJSON($0, to: $1) }
    func setRecordWriter(_ w: @escaping @Sendable (JSON, String) throws -> Void) { writeRecord = w }
    let queue = DispatchQueue(label: "happy.sessions.watch")
    /// Every Dispatch source the manager created: a manager dropped without shutdown()
    /// must not leave sources (and their fds) behind. (A bag with its own deinit instead of
    /// an `isolated deinit`, which the 6.3 compiler cannot optimise across modules.)
    nonisolated let sources = DispatchSourceBag()

    public init(config: HappyConfig, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(config: config, environment: environment, killGrace: 5)
    }

    /// `clock` (monotonic seconds) measures idleness; tests pass a manual one.
    public init(config: HappyConfig, environment: [String: String], killGrace: Double,
                clock: @escaping @Sendable () -> Double = MonotonicClock.now) {
        self.config = config
        self.clock = clock
        self.environment = environment
        self.layout = config.home
        self.killGrace = killGrace
        let mib = config.sessions.maxOutputMiB > 0 ? config.sessions.maxOutputMiB : 100
        self.capBytes = max(1024, Int64(mib * 1_048_576))
    }

    // MARK: - SessionService

    public func observe(_ handler: (@Sendable (SessionEvent) -> Void)?, mirroring: Bool) {
        observer = handler
        mirrored = handler != nil && mirroring
    }

    func emit(_ e: SessionEvent) { observer?(e) }

    public func start() async {
        ensureInfrastructure()
        guard !started else { return }
        started = true
        let dir = layout.sessionsDir
        do { try FileIO.ensureDirectory(dir) } catch {
            Log.error("session", "cannot create \(dir): \(renderError(error))")
            return
        }
        let now = ISOTime.nowMs()
        for name in FileManagerShim.listDirectory(dir).sorted() where records[name] == nil {
            let sdir = dir + "/" + name
            guard FileIO.isDirectory(sdir) else { continue }
            let path = sdir + "/session.json"
            var rec: SessionRecord
            do {
                guard let j = try FileIO.readJSON(path, noFollow: true) else { continue }
                guard let r = SessionRecord(json: j), r.id == name, r.pid > 0 else {
                    throw FileIOError.corrupt(path: path, reason: "not a session record")
                }
                rec = r
            } catch {
                let moved = FileIO.moveAside(path)
                Log.warn("session", "corrupt session record \(path) moved aside to \(moved ?? "?"): \(renderError(error))")
                continue
            }
            if !rec.status.isLive {
                if now - (rec.endedAt ?? rec.startedAt) > retentionMs {
                    removeSessionDirectory(rec.id)
                    continue
                }
                records[rec.id] = rec
                continue
            }
            if let st = rec.processStartTime, let cur = ProcessProbe.readStat(rec.pid),
               cur.startTime == st, cur.state != "Z", cur.state != "X" {
                records[rec.id] = rec
                adopt(rec.id)
            } else {
                rec.status = .exited
                rec.exitCode = nil
                rec.endedAt = now
                rec.thinking = false
                let pending = rec.pendingPermissions
                rec.pendingPermissions = []
                records[rec.id] = rec
                persistNow(rec.id)
                for p in pending {
                    emit(.permissionResolved(id: rec.id, CompletedPermission(request: p, outcome: .canceled, completedAt: now,
                                                                             reason: "the session ended", mode: nil, allowTools: [])))
                }
                Log.info("session", "session \(rec.id) (pid \(rec.pid)) ended while the daemon was away")
                emit(.ended(rec))
            }
        }
    }

    public func spawn(_ request: SpawnRequest) async throws -> SessionRecord {
        ensureInfrastructure()
        let max = config.sessions.max
        if liveCountNow() >= max { throw SessionError.limitReached(max) }

        // Directory.
        if request.directory.trimmingCharacters(in: " \t").isEmpty {
            throw SessionError.directoryMissing(request.directory)
        }
        let directory = Paths.absolute(request.directory, env: environment)
        if FileIO.exists(directory) {
            if !FileIO.isDirectory(directory) {
                throw SessionError.cannotCreateDirectory(path: directory, reason: "a file with that name exists")
            }
        } else if request.createDirectory {
            do {
                try FileIO.createDirectories(directory)
            } catch FileIOError.cannotCreateDirectory(_, let reason) {
                throw SessionError.cannotCreateDirectory(path: directory, reason: reason)
            }
        } else {
            throw SessionError.directoryMissing(directory)
        }

        // Environment and executable (no process is started when these fail).
        let env = try SessionEnvironment.merge(daemon: environment, profile: config.env, request: request.environmentVariables)
        let command = config.claude.command
        guard let exe = ExecutableLookup.resolve(command, path: environment["PATH"]) else {
            throw SessionError.spawnFailed(command.contains("/")
                ? "claude.command \(command) is not an executable file"
                : "`\(command)` was not found in PATH — install Claude Code or set claude.command in the profile")
        }
        let mode = request.permissionMode ?? PermissionMode(rawValue: config.sessions.permissionMode) ?? .default
        if mode == .bypassPermissions && getuid() == 0 && env["IS_SANDBOX"] != "1" {
            throw SessionError.spawnFailed("claude refuses --permission-mode bypassPermissions when it runs as root; " +
                                           "set IS_SANDBOX=1 in the profile's env if this machine is a sandbox")
        }
        let argv = ProcessLauncher.arguments(executable: exe, mode: mode, model: request.model, resume: request.resume,
                                             extra: config.claude.args)

        // Session folder, FIFO, output files, process.
        let id = UUID().uuidString.lowercased()
        let sdir = layout.sessionDir(id)
        let p: ProcessLauncher.Launched
        do {
            p = try ProcessLauncher.launch(dir: sdir, executable: exe, argv: argv, environment: env, workingDirectory: directory)
        } catch {
            throw error
        }
        var rec = SessionRecord(id: id, pid: p.pid, directory: directory, status: .starting,
                                startedBy: request.startedBy, startedAt: ISOTime.nowMs(),
                                stdoutPath: sdir + "/stdout.jsonl", stderrPath: sdir + "/stderr.log")
        rec.processStartTime = p.startTime
        rec.permissionMode = mode
        rec.resumedFrom = request.resume
        rec.continues = request.continuing
        if mirrored { rec.sync = .pending }
        if let model = request.model { rec.model = model }
        // A session whose record cannot be written would be lost at the next daemon start:
        // it is not started (SPEC §2.2, issue 15).
        do {
            try writeRecord(rec.persistedJSON, sdir + "/session.json")
        } catch {
            signalGroup(p.pid, SIGKILL)
            var code: Int32 = 0
            _ = cposix_reap_blocking(p.pid, &code)
            close(p.readFD)
            close(p.fifoFD)
            removeSessionDirectory(id)
            throw SessionError.cannotPersist(path: sdir + "/session.json", reason: errorWhat(error))
        }
        records[id] = rec
        let l = Live(id: id, isChild: true, sawOutput: false, now: clock())
        l.readFD = p.readFD
        l.fifoFD = p.fifoFD
        live[id] = l
        watch(id)
        // Output written before the watch existed raises no event: read it now (a claude that
        // asks for a permission at once writes nothing more until it is answered).
        readOutput(id, l)
        Log.info("session", "session \(id) started: pid \(p.pid) in \(directory) by \(request.startedBy)"
                 + (mode != .default ? ", mode \(mode.rawValue)" : "") + (request.resume != nil ? ", resuming" : ""))
        emit(.started(rec))

        if let prompt = request.prompt {
            do { try await send(id, text: prompt, local: request.startedBy != "mobile-app") } catch {
                Log.warn("session", "session \(id): could not deliver the initial prompt: \(renderError(error))")
            }
        }
        return records[id] ?? rec
    }

    public func list(includeFinished: Bool) async -> [SessionRecord] {
        refreshAll()
        return records.values
            .filter { includeFinished || $0.status.isLive }
            .sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
    }

    public func get(_ id: String) async -> SessionRecord? {
        if live[id] != nil { readOutput(id) }
        return records[id]
    }

    public func resolve(_ idOrPrefix: String) async throws -> SessionRecord {
        let id = try resolveId(idOrPrefix)
        if live[id] != nil { readOutput(id) }
        return records[id]!
    }

    /// Local id, server id, or a unique prefix (≥ 6 characters) of either.
    func resolveId(_ key: String) throws(SessionError) -> String {
        if records[key] != nil { return key }
        if let r = records.values.first(where: { $0.serverSessionId == key }) { return r.id }
        guard key.count >= 6 else { throw .notFound(key) }
        let matches = records.values.filter { $0.id.hasPrefix(key) || ($0.serverSessionId?.hasPrefix(key) ?? false) }
        if matches.count == 1 { return matches[0].id }
        if matches.isEmpty { throw .notFound(key) }
        // Prefer live sessions when a prefix matches a live one and finished ones.
        let liveMatches = matches.filter { $0.status.isLive }
        if liveMatches.count == 1 { return liveMatches[0].id }
        throw .ambiguous(prefix: key, matches: matches.map(\.id).sorted())
    }

    public func stop(_ key: String, reason: StopReason) async throws -> SessionRecord {
        let id = try resolveId(key)
        guard let l = live[id] else { throw SessionError.notRunning(id) }
        let pid = records[id]!.pid
        if l.stopReason == nil { l.stopReason = reason }
        Log.info("session", "stopping session \(id) (pid \(pid), reason \(reason.rawValue))")
        signalGroup(pid, SIGTERM)
        if !(await waitForExit(id, timeout: killGrace)) {
            Log.warn("session", "session \(id) ignored SIGTERM for \(killGrace) s: sending SIGKILL")
            signalGroup(pid, SIGKILL)
            if !(await waitForExit(id, timeout: 2)) {
                Log.error("session", "session \(id) (pid \(pid)) did not exit after SIGKILL")
                finalize(id, exitCode: nil)
            }
        }
        return records[id]!
    }

    public func send(_ key: String, text: String, local: Bool) async throws {
        let id = try resolveId(key)
        guard let l = live[id], l.fifoFD >= 0 else { throw SessionError.notRunning(id) }
        l.lastActivity = clock()
        readOutput(id, l)
        let offset = (records[id]?.outputBase ?? 0) + l.offset
        try await write(id, l, ClaudeInput.userMessage(text))
        emit(.promptSent(id: id, text: text, local: local, streamOffset: offset))
        setThinking(id, true)
    }

    public func answerPermission(_ key: String, requestId: String?, _ answer: PermissionAnswer) async throws -> SessionRecord {
        let id = try resolveId(key)
        guard var rec = records[id] else { throw SessionError.notFound(key) }
        guard let l = live[id] else { throw SessionError.notRunning(id) }
        let index: Int?
        if let requestId {
            index = rec.pendingPermissions.firstIndex { $0.id == requestId || $0.requestId == requestId }
        } else {
            index = rec.pendingPermissions.indices.min { rec.pendingPermissions[$0].createdAt < rec.pendingPermissions[$1].createdAt }
        }
        guard let i = index else { throw SessionError.noSuchPermission(session: id, request: requestId) }
        let req = rec.pendingPermissions[i]
        l.lastActivity = clock()
        for rule in answer.allowTools where !rec.allowTools.contains(rule) { rec.allowTools.append(rule) }
        let isPlanExit = req.tool == "ExitPlanMode" || req.tool == "exit_plan_mode"
        var newMode = answer.mode
        if isPlanExit && answer.approved {
            // Leaving plan mode: switch claude first (to the chosen mode when it can take it).
            let next = [PermissionMode.default, .acceptEdits, .bypassPermissions].contains(answer.mode ?? .plan) ? answer.mode! : .default
            newMode = next
        }
        if let m = newMode, m != rec.permissionMode {
            rec.permissionMode = m
            try await write(id, l, ClaudeInput.control(requestId: nextControlId(l), ["subtype": "set_permission_mode", "mode": .string(m.rawValue)]))
            emit(.modeChanged(id: id, m))
        }
        if answer.approved {
            var input = req.arguments
            if case .object(let updates)? = answer.updatedInput, case .object(var o) = input {
                for (k, v) in updates { o[k] = v }
                input = .object(o)
            }
            try await write(id, l, ClaudeInput.allow(requestId: req.requestId, input: input))
        } else {
            let message = answer.reason ?? (isPlanExit ? "Plan rejected" : PermissionRules.standardRefusal)
            try await write(id, l, ClaudeInput.deny(requestId: req.requestId, message: message))
        }
        rec = records[id] ?? rec
        rec.pendingPermissions.removeAll { $0.requestId == req.requestId }
        for rule in answer.allowTools where !rec.allowTools.contains(rule) { rec.allowTools.append(rule) }
        if let m = newMode { rec.permissionMode = m }
        records[id] = rec
        persistNow(id)
        Log.info("session", "session \(id): \(req.tool) request \(req.id) \(answer.approved ? "approved" : "denied") (\(answer.source))")
        mark(id, SessionMarkers.permission(id: req.id, tool: req.tool, decision: answer.approved ? "approved" : "denied",
                                           by: answer.source, reason: answer.reason))
        emit(.permissionResolved(id: id, CompletedPermission(
            request: req, outcome: answer.approved ? .approved : .denied, completedAt: ISOTime.nowMs(),
            reason: answer.reason, mode: answer.mode, allowTools: answer.allowTools)))
        return rec
    }

    public func interrupt(_ key: String) async throws {
        let id = try resolveId(key)
        guard let l = live[id] else { throw SessionError.notRunning(id) }
        l.lastActivity = clock()
        l.aborting = true
        try await write(id, l, ClaudeInput.control(requestId: nextControlId(l), ["subtype": "interrupt"]))
        cancelPending(id, reason: "aborted by the user")
        setThinking(id, false)
        Log.info("session", "session \(id): interrupted")
        readOutput(id, l)
        emit(.aborted(id: id, streamOffset: (records[id]?.outputBase ?? 0) + l.offset))
    }

    public func setPermissionMode(_ key: String, _ mode: PermissionMode) async throws {
        let id = try resolveId(key)
        guard let l = live[id] else { throw SessionError.notRunning(id) }
        guard records[id]?.permissionMode != mode else { return }
        records[id]?.permissionMode = mode
        persistNow(id)
        try await write(id, l, ClaudeInput.control(requestId: nextControlId(l), ["subtype": "set_permission_mode", "mode": .string(mode.rawValue)]))
        Log.info("session", "session \(id): permission mode \(mode.rawValue)")
        emit(.modeChanged(id: id, mode))
    }

    public func setSync(_ key: String, serverSessionId: String?, state: SyncState) async {
        guard let id = try? resolveId(key), var rec = records[id] else { return }
        guard rec.serverSessionId != serverSessionId || rec.sync != state else { return }
        rec.serverSessionId = serverSessionId
        rec.sync = state
        records[id] = rec
        persistNow(id)
    }

    public func shutdown(keepSessions: Bool) async {
        if keepSessions {
            for id in Array(live.keys) { detach(id) }
        } else {
            await withTaskGroup(of: Void.self) { group in
                for id in Array(live.keys) {
                    group.addTask { _ = try? await self.stop(id, reason: .daemonShutdown) }
                }
            }
        }
        flushDirty()
        idleTimer?.cancel()
        idleTimer = nil
        inotifySource?.cancel()
        inotifySource = nil
        inotifyFD = -1
        watches = [:]
    }

    public func prune() async {
        for (id, l) in live {
            guard let rec = records[id] else { continue }
            if l.isChild {
                var code: Int32 = 0
                let r = cposix_reap(rec.pid, &code)
                if r == rec.pid { exited(id, code: code); continue }
                if r < 0 && !ProcessProbe.isAlive(rec.pid) { exited(id, code: nil); continue }
            } else if !ProcessProbe.isAlive(rec.pid) {
                exited(id, code: nil)
            }
        }
        flushDirty()
        let now = ISOTime.nowMs()
        for (id, rec) in records where !rec.status.isLive && now - (rec.endedAt ?? rec.startedAt) > retentionMs {
            records[id] = nil
            removeSessionDirectory(id)
        }
    }

    public func liveCount() async -> Int { liveCountNow() }

    /// The record as the watchers left it (no read on the caller's behalf; for tests).
    func peek(_ id: String) -> SessionRecord? { records[id] }

    // MARK: - Reading the output stream (server sync)


    /// Bytes of the session's stdout from stream offset `from` (see
    /// `SessionRecord.outputBase`), at most `limit`. `start` > `from` when the bytes
    /// between were rotated away before anyone read them. `sealed`: the bytes end where a
    /// rotated file ends (a line cut there is never completed). Serialised with rotation.
    public func readStream(_ id: String, from: Int64, limit: Int) -> OutputChunk? {
        guard records[id] != nil else { return nil }
        if live[id] != nil { readOutput(id) }
        guard let rec = records[id] else { return nil }
        let rotated = Paths.dirname(rec.stdoutPath) + "/stdout.1.jsonl"
        // stdout.1.jsonl holds [previousBase, outputBase), stdout.jsonl [outputBase, end).
        let (start, path, fileOffset): (Int64, String, Int64)
        if from >= rec.outputBase {
            (start, path, fileOffset) = (from, rec.stdoutPath, from - rec.outputBase)
        } else if let prev = rec.previousBase, from >= prev {
            (start, path, fileOffset) = (from, rotated, from - prev)
        } else if let prev = rec.previousBase {
            (start, path, fileOffset) = (prev, rotated, 0)
        } else {
            (start, path, fileOffset) = (rec.outputBase, rec.stdoutPath, 0)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return OutputChunk(start: start, bytes: [], sealed: path == rotated) }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: Swift.max(0, limit))
        var got = 0
        while got < out.count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(fileOffset) + off_t(got)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        out.removeSubrange(got...)
        return OutputChunk(start: start, bytes: out, sealed: path == rotated && got < limit)
    }

    /// The stream offset up to which stdout was written and read.
    public func streamEnd(_ id: String) -> Int64? {
        guard let rec = records[id] else { return nil }
        if let l = live[id] { readOutput(id); return (records[id]?.outputBase ?? rec.outputBase) + l.offset }
        var st = stat()
        let size = stat(rec.stdoutPath, &st) == 0 ? Int64(st.st_size) : 0
        return rec.outputBase + size
    }

    // MARK: - Infrastructure

    func liveCountNow() -> Int { records.values.filter { $0.status.isLive }.count }

    func ensureInfrastructure() {
        if inotifyFD < 0 {
            let fd = cposix_inotify_init()
            if fd < 0 {
                Log.error("session", "inotify_init failed: \(errnoString())")
            } else {
                inotifyFD = fd
                let src = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
                src.setEventHandler { [weak self] in
                    var wds = [Int32](repeating: 0, count: 256)
                    let n = wds.withUnsafeMutableBufferPointer { cposix_inotify_read_wds(fd, $0.baseAddress, Int32($0.count)) }
                    guard n > 0, let self else { return }
                    let list = Array(wds[0..<Int(n)])
                    Task { await self.inotifyFired(list) }
                }
                src.setCancelHandler { close(fd) }
                src.resume()
                inotifySource = src
                sources.add(src)
            }
        }
        if idleTimer == nil, config.sessions.idleTimeoutMinutes > 0 {
            let timeout = config.sessions.idleTimeoutMinutes * 60
            let interval = Swift.max(0.05, Swift.min(1.0, timeout / 4))
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(Int(interval * 100)))
            t.setEventHandler { [weak self] in
                guard let self else { return }
                Task { await self.checkIdle() }
            }
            t.resume()
            idleTimer = t
            sources.add(t)
        }
    }

    func inotifyFired(_ wds: [Int32]) {
        for wd in wds {
            guard let w = watches[wd], live[w.id] != nil else { continue }
            if w.stdout { readOutput(w.id) } else { stderrChanged(w.id) }
        }
    }

    /// Starts watching a live session's output files and its exit.
    func watch(_ id: String) {
        guard let l = live[id], let rec = records[id] else { return }
        if inotifyFD >= 0 {
            let a = cposix_inotify_add_modify(inotifyFD, rec.stdoutPath)
            if a >= 0 { l.stdoutWD = a; watches[a] = (id, true) }
            let b = cposix_inotify_add_modify(inotifyFD, rec.stderrPath)
            if b >= 0 { l.stderrWD = b; watches[b] = (id, false) }
        }
        let pidfd = cposix_pidfd_open(rec.pid)
        if pidfd < 0 {
            // Already gone (or no pidfd support): let prune() decide right away.
            Task { await self.prune() }
            return
        }
        let src = DispatchSource.makeReadSource(fileDescriptor: pidfd, queue: queue)
        src.setEventHandler { [weak self] in
            src.cancel()
            guard let self else { return }
            Task { await self.processExitNotified(id) }
        }
        src.setCancelHandler { close(pidfd) }
        src.resume()
        l.exitSource = src
        sources.add(src)
    }

    /// Re-adopts a live session left by a previous daemon: output from where it stands.
    func adopt(_ id: String) {
        guard let rec = records[id] else { return }
        let l = Live(id: id, isChild: false, sawOutput: true, now: clock())
        let readFD = open(rec.stdoutPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if readFD >= 0 {
            var st = stat()
            if fstat(readFD, &st) == 0 { l.offset = Int64(st.st_size) }
            l.readFD = readFD
        }
        let fifo = layout.sessionDir(id) + "/stdin.fifo"
        l.fifoFD = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        live[id] = l
        if records[id]?.status == .starting, readFD >= 0, l.offset > 0 {
            // Output exists already; init may have been written while nobody watched.
            records[id]?.status = .running
            persistNow(id)
        }
        watch(id)
        Log.info("session", "adopted session \(id) (pid \(rec.pid))")
        emit(.adopted(records[id] ?? rec))
    }

    /// Stops watching a session without touching its process (keepSessions).
    func detach(_ id: String) {
        guard let l = live.removeValue(forKey: id) else { return }
        live[id] = l
        readOutput(id, l)
        live[id] = nil
        closeLive(l)
        persistNow(id)
        for (_, c) in l.waiters { c.resume(returning: false) }
        emit(.detached(id: id))
    }

    func closeLive(_ l: Live) {
        if l.stdoutWD >= 0 { watches[l.stdoutWD] = nil; if inotifyFD >= 0 { _ = cposix_inotify_rm(inotifyFD, l.stdoutWD) } }
        if l.stderrWD >= 0 { watches[l.stderrWD] = nil; if inotifyFD >= 0 { _ = cposix_inotify_rm(inotifyFD, l.stderrWD) } }
        l.stdoutWD = -1; l.stderrWD = -1
        l.exitSource?.cancel()
        l.exitSource = nil
        if l.readFD >= 0 { close(l.readFD); l.readFD = -1 }
        let fifo = l.fifoFD
        l.fifoFD = -1
        // Closed on the write queue so a queued message never writes to a reused fd.
        if fifo >= 0 { l.writeQueue.async { close(fifo) } }
    }

    // MARK: - Writing to claude

    /// One line on the session's stdin (messages and control lines), in order, off the actor.
    func write(_ id: String, _ l: Live, _ line: String) async throws {
        let fd = l.fifoFD
        guard fd >= 0 else { throw SessionError.notRunning(id) }
        let bytes = Array(line.utf8)
        let ok: Bool = await withCheckedContinuation { cont in
            l.writeQueue.async {
                cont.resume(returning: ProcessLauncher.writeAll(fd, bytes, timeoutMs: 5000))
            }
        }
        if !ok {
            Log.warn("session", "session \(id): its stdin did not take a line within 5 s")
            throw SessionError.notRunning(id)
        }
    }

    /// Fire-and-forget write from the output handler (answers to claude's own requests).
    func writeSoon(_ id: String, _ line: String) {
        guard let l = live[id] else { return }
        Task { try? await self.write(id, l, line) }
    }

    func nextControlId(_ l: Live) -> String {
        l.controlSeq += 1
        return "happy-\(l.controlSeq)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    func setThinking(_ id: String, _ on: Bool) {
        guard var rec = records[id], rec.thinking != on else { return }
        rec.thinking = on
        records[id] = rec
        markDirty(id)
        emit(.thinking(id: id, on))
    }

    // MARK: - Output

    /// Reads whatever was appended to stdout.jsonl since the last read and parses it.
    func readOutput(_ id: String) {
        guard let l = live[id] else { return }
        readOutput(id, l)
    }

    func readOutput(_ id: String, _ l: Live) {
        guard l.readFD >= 0 else { return }
        var lines: [[UInt8]] = []
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(l.readFD, $0.baseAddress, $0.count, off_t(l.offset)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            l.offset += Int64(n)
            total += n
            buf.withUnsafeBytes { l.scanner.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n]), into: &lines) }
            if n < buf.count { break }
        }
        if total > 0 {
            l.sawOutput = true
            l.lastActivity = clock()
        }
        handle(id, lines)
        if l.offset > capBytes { rotateStdout(id, l) }
        if total > 0, let base = records[id]?.outputBase { emit(.output(id: id, streamEnd: base + l.offset)) }
    }

    func handle(_ id: String, _ lines: [[UInt8]]) {
        guard !lines.isEmpty, var rec = records[id] else { return }
        let now = ISOTime.nowMs()
        var statusChanged = false
        var changed = false
        var thinkingOff = false
        var after: [() -> Void] = []
        for line in lines {
            switch StreamJSONScanner.interpret(line) {
            case .blank, .marker:
                continue
            case .malformed:
                rec.malformedLines += 1
                changed = true
                Log.warn("session", "session \(id): malformed output line (\(line.count) bytes) ignored")
            case .event(let type, let j):
                changed = true
                if let type { rec.lastEventType = type }
                rec.lastEventAt = now
                switch type {
                case "system" where j["subtype"]?.string == "init":
                    if let s = j["session_id"]?.string { rec.claudeSessionId = s }
                    if let m = j["model"]?.string { rec.model = m }
                    if rec.status == .starting { rec.status = .running; statusChanged = true }
                    after.append { [self] in emit(.initialized(id: id, info: j)) }
                case "result":
                    // num_turns counts this prompt's turns (added up); the cost is a running total.
                    if let n = j["num_turns"]?.int { rec.numTurns = (rec.numTurns ?? 0) + n }
                    if let c = j["total_cost_usd"]?.double { rec.costUsd = c }
                    if let e = j["is_error"]?.bool { rec.isError = e }
                    thinkingOff = true
                    live[id]?.aborting = false
                case "control_request":
                    after.append { [self] in controlRequest(id, j) }
                case "control_cancel_request":
                    if let rid = j["request_id"]?.string {
                        after.append { [self] in cancelPending(id, requestId: rid, reason: "claude canceled the request") }
                    }
                case "control_response":
                    if j["response"]?["subtype"]?.string == "error" {
                        let msg = j["response"]?["error"]?.string ?? "?"
                        Log.warn("session", "session \(id): claude refused a control request: \(msg)")
                    }
                default:
                    break
                }
            }
        }
        guard changed else { return }
        records[id] = rec
        if statusChanged { persistNow(id) } else { markDirty(id) }
        for f in after { f() }
        if thinkingOff { setThinking(id, false) }
    }

    /// claude's stdio control protocol: `can_use_tool` → auto-answer or pending; any other
    /// subtype is refused with an `error` response.
    func controlRequest(_ id: String, _ j: JSON) {
        guard var rec = records[id], let rid = j["request_id"]?.string else {
            Log.warn("session", "session \(id): control_request without request_id ignored")
            return
        }
        let req = j["request"] ?? .null
        guard req["subtype"]?.string == "can_use_tool" else {
            let sub = req["subtype"]?.string ?? "?"
            Log.warn("session", "session \(id): unsupported control request '\(sub)' refused")
            writeSoon(id, ClaudeInput.error(requestId: rid, message: "Unsupported control request subtype: \(sub)"))
            return
        }
        let tool = req["tool_name"]?.string ?? "unknown"
        let input = req["input"] ?? .object([:])
        if PermissionRules.autoAllows(mode: rec.permissionMode, rules: rec.allowTools, tool: tool, input: input) {
            Log.info("session", "session \(id): \(tool) allowed by \(PermissionRules.allows(rec.allowTools, tool: tool, input: input) ? "the allow-set" : "mode \(rec.permissionMode.rawValue)")")
            writeSoon(id, ClaudeInput.allow(requestId: rid, input: input))
            mark(id, SessionMarkers.permission(id: req["tool_use_id"]?.string ?? rid, tool: tool, decision: "allowed", by: "auto"))
            return
        }
        var pid = req["tool_use_id"]?.string ?? rid
        if let agent = req["agent_id"]?.string, !agent.isEmpty { pid = "\(agent):\(pid)" }
        guard !rec.pendingPermissions.contains(where: { $0.requestId == rid }) else { return }
        let p = PermissionRequest(id: pid, requestId: rid, tool: tool, arguments: input, createdAt: ISOTime.nowMs())
        rec.pendingPermissions.append(p)
        records[id] = rec
        persistNow(id)
        Log.info("session", "session \(id): \(tool) waits for permission (request \(pid))")
        emit(.permissionRequested(id: id, p))
    }

    /// Moves pending requests to canceled (one by control request id, or all). Idempotent:
    /// claude's own cancel after an interrupt finds nothing left.
    func cancelPending(_ id: String, requestId: String? = nil, reason: String) {
        guard var rec = records[id], !rec.pendingPermissions.isEmpty else { return }
        let gone = rec.pendingPermissions.filter { requestId == nil || $0.requestId == requestId }
        guard !gone.isEmpty else { return }
        rec.pendingPermissions.removeAll { p in gone.contains { $0.requestId == p.requestId } }
        records[id] = rec
        persistNow(id)
        let now = ISOTime.nowMs()
        for p in gone {
            mark(id, SessionMarkers.permission(id: p.id, tool: p.tool, decision: "canceled", by: requestId == nil ? "daemon" : "claude",
                                               reason: reason))
            emit(.permissionResolved(id: id, CompletedPermission(request: p, outcome: .canceled, completedAt: now,
                                                                 reason: reason, mode: nil, allowTools: [])))
        }
    }

    /// Appends one of the daemon's own lines to the session's stdout.jsonl (O_APPEND: it
    /// lands between claude's lines, which claude writes whole).
    func mark(_ id: String, _ line: String) {
        guard let rec = records[id] else { return }
        let fd = open(rec.stdoutPath, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return }
        _ = ProcessLauncher.writeAll(fd, Array(line.utf8), timeoutMs: 1000)
        close(fd)
    }

    func stderrChanged(_ id: String) {
        guard let l = live[id], let rec = records[id] else { return }
        l.lastActivity = clock()
        var st = stat()
        if stat(rec.stderrPath, &st) == 0, Int64(st.st_size) > capBytes {
            let r = OutputFiles.rotate(path: rec.stderrPath, to: layout.sessionDir(id) + "/stderr.1.log", readOffset: nil)
            if case .rotated(let n, false) = r {
                Log.warn("session", "session \(id): stderr.log passed the cap and \(n) bytes were dropped (stderr.1.log could not be written)")
            }
        }
    }

    func rotateStdout(_ id: String, _ l: Live) {
        guard var rec = records[id] else { return }
        let rotated = layout.sessionDir(id) + "/stdout.1.jsonl"
        var extra: [[UInt8]] = []
        let result = OutputFiles.rotate(path: rec.stdoutPath, to: rotated, readOffset: l.offset) { bytes in
            l.scanner.feed(bytes, into: &extra)
        }
        guard case .rotated(let moved, let kept) = result else { return }
        let base = rec.outputBase
        // The marker line is part of the new file; lines read from now on are at base + moved + offset.
        if kept { rec.previousBase = base }
        rec.outputBase = base + moved
        records[id] = rec
        persistNow(id)
        l.offset = 0
        handle(id, extra)
        if kept {
            Log.info("session", "session \(id): stdout.jsonl passed \(capBytes) bytes, \(moved) bytes moved to stdout.1.jsonl")
        } else if !l.warnedDrop {
            l.warnedDrop = true
            Log.warn("session", "session \(id): stdout.jsonl passed \(capBytes) bytes and stdout.1.jsonl could not be written: \(moved) bytes were dropped to keep the cap (said once)")
        }
        readOutput(id, l)
    }

    // MARK: - Exit

    func processExitNotified(_ id: String) {
        guard let l = live[id], let rec = records[id] else { return }
        var code: Int32 = 0
        let r = cposix_reap(rec.pid, &code)
        if r == rec.pid {
            exited(id, code: l.isChild ? code : nil)
        } else if r == 0 {
            // Exited per pidfd but not reapable yet: look again shortly.
            Task {
                try? await Task.sleep(nanoseconds: 20_000_000)
                self.processExitNotified(id)
            }
        } else {
            exited(id, code: nil)
        }
    }

    func exited(_ id: String, code: Int32?) {
        guard live[id] != nil else { return }
        finalize(id, exitCode: code)
    }

    func finalize(_ id: String, exitCode: Int32?) {
        guard let l = live[id], var rec = records[id] else { return }
        // Drain the last output before deciding.
        readOutput(id, l)
        stderrChanged(id)
        live[id] = nil
        cancelPending(id, reason: "the session ended")
        rec = records[id] ?? rec
        closeLive(l)
        rec.exitCode = exitCode
        rec.endedAt = ISOTime.nowMs()
        rec.thinking = false
        if let reason = l.stopReason {
            rec.status = .stopped
            rec.stopReason = reason
        } else if let c = exitCode, c != 0, !l.sawOutput {
            rec.status = .failed
        } else {
            rec.status = .exited
        }
        records[id] = rec
        dirty.remove(id)
        persistNow(id)
        Log.info("session", "session \(id) \(rec.status.rawValue) (pid \(rec.pid), exit code \(exitCode.map { String($0) } ?? "unknown"))")
        for (_, c) in l.waiters { c.resume(returning: true) }
        l.waiters = [:]
        emit(.ended(rec))
    }

    func waitForExit(_ id: String, timeout: Double) async -> Bool {
        guard let l = live[id] else { return true }
        nextWaiter += 1
        let token = nextWaiter
        return await withCheckedContinuation { (cont: CheckedContinuation<Bool, Never>) in
            l.waiters[token] = cont
            Task {
                try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
                self.waiterTimedOut(l, token)
            }
        }
    }

    func waiterTimedOut(_ l: Live, _ token: UInt64) {
        l.waiters.removeValue(forKey: token)?.resume(returning: false)
    }

    func signalGroup(_ pid: Int32, _ sig: Int32) {
        guard pid > 1 else { return }
        if kill(-pid, sig) != 0 { _ = kill(pid, sig) }
    }

    // MARK: - Idle

    /// Why a live session is being stopped, if it is (the record learns it when the process exits).
    func pendingStopReason(_ id: String) -> StopReason? { live[id]?.stopReason }

    /// Stops every session idle for the configured time; returns the ids it is stopping.
    @discardableResult
    func checkIdle() -> [String] {
        let timeout = config.sessions.idleTimeoutMinutes * 60
        guard timeout > 0 else { return [] }
        let now = clock()
        var stopping: [String] = []
        for (id, l) in live where l.stopReason == nil && now - l.lastActivity >= timeout {
            Log.info("session", "session \(id) idle for \(Int(timeout)) s: stopping it")
            l.stopReason = .idle
            stopping.append(id)
            Task { _ = try? await self.stop(id, reason: .idle) }
        }
        return stopping
    }

    // MARK: - Persistence

    func persistNow(_ id: String) {
        guard let rec = records[id] else { return }
        dirty.remove(id)
        let path = layout.sessionDir(id) + "/session.json"
        guard FileIO.isDirectory(layout.sessionDir(id)) else { return }
        do { try FileIO.writeJSON(rec.persistedJSON, to: path) } catch {
            Log.error("session", "cannot persist session \(id): \(renderError(error))")
        }
    }

    func markDirty(_ id: String) {
        dirty.insert(id)
        guard !flushScheduled else { return }
        flushScheduled = true
        Task {
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            self.flushDirty()
        }
    }

    func flushDirty() {
        flushScheduled = false
        for id in dirty { persistNow(id) }
        dirty = []
    }

    /// Parses pending output of every live session (cheap when nothing changed).
    func refreshAll() {
        for id in live.keys { readOutput(id) }
    }

    func removeSessionDirectory(_ id: String) {
        guard !id.isEmpty, !id.contains("/"), id != ".", id != ".." else { return }
        try? FileManagerShim.removeTree(layout.sessionDir(id))
    }
}
