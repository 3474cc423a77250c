import CPosix
import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig

/// Spawns and watches `claude` sessions (SPEC §4.3, §4.5 output cap, §4.6 limits).
///
/// - Each session runs `claude --print --output-format stream-json --verbose
///   --input-format stream-json <args>` directly (no shell), in its own session/process
///   group, stdin = `sessions/ID/stdin.fifo` opened O_RDWR, stdout/stderr appended to files.
/// - Output is watched with one inotify descriptor (Dispatch read source) and parsed
///   incrementally; exits are noticed with a pidfd per session (works for adopted
///   sessions too) and children are reaped by pid (never `waitpid(-1)`).
/// - Records are persisted atomically on every status change; counters at most once a
///   second and always at exit.
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
        var exitCheckPending = false

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
    let queue = DispatchQueue(label: "happy.sessions.watch")

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

    /// Every Dispatch source the manager created: a manager dropped without shutdown()
    /// must not leave sources (and their fds) behind. (A bag with its own deinit instead of
    /// an `isolated deinit`, which the 6.3 compiler cannot optimise across modules.)
    nonisolated let sources = DispatchSourceBag()

    // MARK: - SessionService

    public func start() async {
        ensureInfrastructure()
        guard !started else { return }
        started = true
        let dir = layout.sessionsDir
        do { try FileIO.ensureDirectory(dir) } catch {
            Log.error("session", "cannot create \(dir): \(error)")
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
                guard let r = SessionRecord(persisted: j), r.id == name else {
                    throw FileIOError.corrupt(path: path, reason: "not a session record")
                }
                rec = r
            } catch {
                let moved = FileIO.moveAside(path)
                Log.warn("session", "corrupt session record \(path) moved aside to \(moved ?? "?"): \(error)")
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
                records[rec.id] = rec
                persistNow(rec.id)
                Log.info("session", "session \(rec.id) (pid \(rec.pid)) ended while the daemon was away")
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
        let argv = [exe, "--print", "--output-format", "stream-json", "--verbose", "--input-format", "stream-json"]
            + config.claude.args

        // Session folder, FIFO, output files.
        let id = UUID().uuidString.lowercased()
        let sdir = layout.sessionDir(id)
        do {
            try FileIO.ensureDirectory(layout.sessionsDir)
            try FileIO.ensureDirectory(sdir)
        } catch {
            throw SessionError.spawnFailed("cannot create \(sdir): \(error)")
        }
        let fifoPath = sdir + "/stdin.fifo"
        let stdoutPath = sdir + "/stdout.jsonl"
        let stderrPath = sdir + "/stderr.log"
        var opened: [Int32] = []
        func cleanup() {
            for fd in opened { close(fd) }
            removeSessionDirectory(id)
        }
        if cposix_mkfifo(fifoPath, 0o600) != 0 {
            let r = errnoString(); cleanup()
            throw SessionError.spawnFailed("cannot create \(fifoPath): \(r)")
        }
        _ = chmod(fifoPath, 0o600)
        let childIn = open(fifoPath, O_RDWR | O_CLOEXEC)
        if childIn >= 0 { opened.append(childIn) }
        let childOut = open(stdoutPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if childOut >= 0 { opened.append(childOut) }
        let childErr = open(stderrPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if childErr >= 0 { opened.append(childErr) }
        let readFD = open(stdoutPath, O_RDONLY | O_CLOEXEC)
        let fifoFD = open(fifoPath, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        if childIn < 0 || childOut < 0 || childErr < 0 || readFD < 0 || fifoFD < 0 {
            let r = errnoString()
            if readFD >= 0 { close(readFD) }
            if fifoFD >= 0 { close(fifoFD) }
            cleanup()
            throw SessionError.spawnFailed("cannot open the session files in \(sdir): \(r)")
        }

        // Spawn.
        let envList = env.keys.sorted().map { "\($0)=\(env[$0]!)" }
        var pid: pid_t = 0
        let rc = Self.withCStrings(argv) { cargv in
            Self.withCStrings(envList) { cenv in
                cposix_spawn(exe, cargv, cenv, directory, childIn, childOut, childErr, &pid)
            }
        }
        for fd in opened { close(fd) }
        opened = []
        if rc != 0 {
            close(readFD); close(fifoFD)
            removeSessionDirectory(id)
            throw SessionError.spawnFailed("cannot execute \(exe): \(errnoString(rc))")
        }

        var rec = SessionRecord(id: id, pid: pid, directory: directory, status: .starting,
                                startedBy: request.startedBy, startedAt: ISOTime.nowMs(),
                                stdoutPath: stdoutPath, stderrPath: stderrPath)
        rec.processStartTime = ProcessProbe.startTime(pid)
        records[id] = rec
        let l = Live(id: id, isChild: true, sawOutput: false, now: clock())
        l.readFD = readFD
        l.fifoFD = fifoFD
        live[id] = l
        watch(id)
        persistNow(id)
        Log.info("session", "session \(id) started: pid \(pid) in \(directory) by \(request.startedBy)")

        if let prompt = request.prompt {
            do { try await send(id, text: prompt) } catch {
                Log.warn("session", "session \(id): could not deliver the initial prompt: \(error)")
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

    public func stop(_ id: String, reason: StopReason) async throws -> SessionRecord {
        guard records[id] != nil else { throw SessionError.notFound(id) }
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

    public func send(_ id: String, text: String) async throws {
        guard records[id] != nil else { throw SessionError.notFound(id) }
        guard let l = live[id], l.fifoFD >= 0 else { throw SessionError.notRunning(id) }
        l.lastActivity = clock()
        var line = "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":"
        JSON.writeString(text, into: &line)
        line += "}}\n"
        let bytes = Array(line.utf8)
        let fd = l.fifoFD
        let ok: Bool = await withCheckedContinuation { cont in
            l.writeQueue.async {
                cont.resume(returning: Self.writeAll(fd, bytes, timeoutMs: 5000))
            }
        }
        if !ok {
            Log.warn("session", "session \(id): its stdin did not take a message within 5 s")
            throw SessionError.notRunning(id)
        }
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
        let readFD = open(rec.stdoutPath, O_RDONLY | O_CLOEXEC)
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
    }

    /// Stops watching a session without touching its process (keepSessions).
    func detach(_ id: String) {
        guard let l = live.removeValue(forKey: id) else { return }
        readOutput(id, l)
        closeLive(l)
        persistNow(id)
        for (_, c) in l.waiters { c.resume(returning: false) }
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
    }

    func handle(_ id: String, _ lines: [[UInt8]]) {
        guard !lines.isEmpty, var rec = records[id] else { return }
        let now = ISOTime.nowMs()
        var statusChanged = false
        var changed = false
        for line in lines {
            switch StreamJSONScanner.interpret(line) {
            case .blank, .marker:
                continue
            case .malformed:
                rec.malformedLines += 1
                changed = true
                Log.warn("session", "session \(id): malformed output line (\(line.count) bytes) ignored")
            case .event(let type, let initInfo, let result):
                changed = true
                if let type { rec.lastEventType = type }
                rec.lastEventAt = now
                if let initInfo {
                    if let s = initInfo.sessionId { rec.claudeSessionId = s }
                    if let m = initInfo.model { rec.model = m }
                    if rec.status == .starting { rec.status = .running; statusChanged = true }
                }
                if let result {
                    if let n = result.numTurns { rec.numTurns = (rec.numTurns ?? 0) + n }  // per prompt: add up
                    if let c = result.costUsd { rec.costUsd = c }
                    if let e = result.isError { rec.isError = e }
                }
            }
        }
        guard changed else { return }
        records[id] = rec
        if statusChanged { persistNow(id) } else { markDirty(id) }
    }

    func stderrChanged(_ id: String) {
        guard let l = live[id], let rec = records[id] else { return }
        l.lastActivity = clock()
        var st = stat()
        if stat(rec.stderrPath, &st) == 0, Int64(st.st_size) > capBytes {
            _ = Self.rotate(path: rec.stderrPath, to: layout.sessionDir(id) + "/stderr.1.log", readOffset: nil)
        }
    }

    func rotateStdout(_ id: String, _ l: Live) {
        guard let rec = records[id] else { return }
        let rotated = layout.sessionDir(id) + "/stdout.1.jsonl"
        var extra: [[UInt8]] = []
        let dropped = Self.rotate(path: rec.stdoutPath, to: rotated, readOffset: l.offset) { bytes in
            l.scanner.feed(bytes, into: &extra)
        }
        guard dropped >= 0 else { return }
        l.offset = 0
        handle(id, extra)
        Log.info("session", "session \(id): stdout.jsonl passed \(capBytes) bytes, \(dropped) bytes moved to stdout.1.jsonl")
        readOutput(id, l)
    }

    /// Copies `path` to `dest` (atomically replacing it), truncates `path` to 0 and appends
    /// the rotation marker. Bytes beyond `readOffset` that were copied but not yet parsed
    /// are handed to `unread`. Returns the bytes moved, or -1.
    static func rotate(path: String, to dest: String, readOffset: Int64?,
                       unread: (UnsafeRawBufferPointer) -> Void = { _ in }) -> Int64 {
        let src = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard src >= 0 else { return -1 }
        defer { close(src) }
        // Opened before the copy, so the marker follows the truncation with no other call between.
        let app = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        defer { if app >= 0 { close(app) } }
        let tmp = dest + ".tmp-\(getpid())"
        let out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard out >= 0 else { return -1 }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var pos: Int64 = 0
        var failed = false
        while true {
            let n = buf.withUnsafeMutableBytes { pread(src, $0.baseAddress, $0.count, off_t(pos)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var w = 0
            while w < n {
                let k = buf.withUnsafeBytes { write(out, $0.baseAddress! + w, n - w) }
                if k < 0 { if errno == EINTR { continue }; failed = true; break }
                w += k
            }
            if failed { break }
            if let ro = readOffset, pos + Int64(n) > ro {
                let from = Int(Swift.max(0, ro - pos))
                buf.withUnsafeBytes { unread(UnsafeRawBufferPointer(rebasing: $0[from..<n])) }
            }
            pos += Int64(n)
        }
        // Truncate right after reaching the end and write the marker at once: the windows
        // for a lost line (before) and a line ahead of the marker (after) stay tiny.
        if !failed {
            _ = ftruncate(src, 0)
            let marker = "{\"type\":\"happy\",\"subtype\":\"output-rotated\",\"droppedBytes\":\(pos)}\n"
            if app >= 0 { _ = writeAll(app, Array(marker.utf8), timeoutMs: 1000) }
        }
        close(out)
        if failed { unlink(tmp); return -1 }
        _ = chmod(tmp, 0o600)
        if rename(tmp, dest) != 0 { unlink(tmp) }
        return pos
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
        guard let l = live.removeValue(forKey: id), var rec = records[id] else { return }
        // Drain the last output before deciding.
        live[id] = l
        readOutput(id, l)
        stderrChanged(id)
        live[id] = nil
        rec = records[id] ?? rec
        closeLive(l)
        rec.exitCode = exitCode
        rec.endedAt = ISOTime.nowMs()
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
            Log.error("session", "cannot persist session \(id): \(error)")
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

    // MARK: - Helpers

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
