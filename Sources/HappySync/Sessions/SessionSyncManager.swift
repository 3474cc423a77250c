import FoundationEssentials
import HappyCore
import HappyCrypto
import HappyConfig
import HappyServerAPI
import HappySessions

/// Every session the daemon runs is also a Happy server session (SPEC §7): this keeps one
/// `SessionLink` per synced session — for new sessions, adopted ones, and finished ones
/// whose conversation has not all reached the server yet — and answers the phone's
/// spawn and resume RPCs with the server session id.
public actor SessionSyncManager {
    let account: SyncAccount
    let machine: SyncMachineInfo
    let sessions: SessionService
    let layout: HomeLayout
    let timing: SessionLinkTiming
    let audit: (any RPCAuditing)?
    let toolMethods: @Sendable (_ sessionId: String, _ sessionDirectory: String) -> [RPCMethod]
    /// How long the spawn RPC waits for the server session (SPEC §7.1: 15 s).
    let spawnWait: Double

    private var links: [String: SessionLink] = [:]
    private var consumer: Task<Void, Never>?
    private var started = false
    private var stopping = false

    public init(account: SyncAccount, machine: SyncMachineInfo, sessions: SessionService, layout: HomeLayout,
                timing: SessionLinkTiming = SessionLinkTiming(), spawnWait: Double = 15, audit: (any RPCAuditing)?,
                toolMethods: @escaping @Sendable (_ sessionId: String, _ sessionDirectory: String) -> [RPCMethod] = { _, _ in [] }) {
        self.account = account
        self.machine = machine
        self.sessions = sessions
        self.layout = layout
        self.timing = timing
        self.spawnWait = spawnWait
        self.audit = audit
        self.toolMethods = toolMethods
    }

    /// Observes the session manager, then attaches every session that needs a link.
    public func start() async {
        guard !started else { return }
        started = true
        let (stream, cont) = AsyncStream.makeStream(of: SessionEvent.self)
        await sessions.observe({ cont.yield($0) }, mirroring: true)
        consumer = Task { [weak self] in
            for await e in stream {
                guard let self else { return }
                await self.dispatch(e)
            }
        }
        for rec in await sessions.list(includeFinished: true) { await attach(rec) }
    }

    private func dispatch(_ e: SessionEvent) async {
        switch e {
        case .started(let rec), .adopted(let rec):
            await attach(rec)
        case .output(let id, _), .initialized(let id, _), .promptSent(let id, _, _, _), .thinking(let id, _),
             .permissionRequested(let id, _), .permissionResolved(let id, _), .modeChanged(let id, _),
             .aborted(let id, _), .detached(let id):
            await links[id]?.handle(e)
        case .ended(let rec):
            if let l = links[rec.id] { await l.handle(e) } else if stopping == false { await attach(rec) }
        }
    }

    /// A link for `rec`, from its `sync.json` (created with a fresh tag and key before the
    /// first attempt when there is none and the session is live).
    @discardableResult
    func attach(_ rec: SessionRecord) async -> SessionLink? {
        if let l = links[rec.id] { return l }
        guard !stopping else { return nil }
        let dir = layout.sessionDir(rec.id)
        var file: SessionSyncFile
        do {
            if let f = try SessionSyncFile.load(dir) {
                file = f
                if (f.ended || f.failed) && !rec.status.isLive { return nil }
            } else {
                guard rec.status.isLive else { return nil }
                file = try newFile(for: rec, dir: dir)
            }
        } catch {
            Log.error("sync", "session \(rec.id): \(renderError(error)); it stays local")
            await sessions.setSync(rec.id, serverSessionId: nil, state: .failed)
            return nil
        }
        if file.variant != account.variant {
            Log.error("sync", "session \(rec.id): its server session uses \(file.variant.rawValue) keys and the credentials are \(account.variant.rawValue); it stays local")
            return nil
        }
        let link = SessionLink(record: rec, dir: dir, file: file, account: account, machine: machine, timing: timing,
                               sessions: sessions, audit: audit, toolMethods: toolMethods,
                               onFinished: { [weak self] id in await self?.finished(id) })
        links[rec.id] = link
        await sessions.setSync(rec.id, serverSessionId: file.serverSessionId, state: file.serverSessionId == nil ? .pending : .synced)
        await link.start()
        if !rec.status.isLive { await link.end(rec) }
        return link
    }

    /// `sync.json` for a session that has none: the tag (its local id) and a fresh key —
    /// or, when it continues another session, that session's server session.
    private func newFile(for rec: SessionRecord, dir: String) throws -> SessionSyncFile {
        var file: SessionSyncFile
        if let prev = rec.continues, let old = try SessionSyncFile.load(layout.sessionDir(prev)) {
            file = SessionSyncFile(tag: old.tag, key: old.key, variant: old.variant)
            file.serverSessionId = old.serverSessionId
            file.metadataVersion = old.metadataVersion
            file.agentStateVersion = old.agentStateVersion
            file.lastSeq = old.lastSeq
            file.summarized = old.summarized
        } else {
            file = SessionSyncFile(tag: rec.id, key: account.variant == .dataKey ? SecureRandom.bytes(32) : nil,
                                   variant: account.variant)
        }
        try file.save(dir)
        return file
    }

    private func finished(_ id: String) { links[id] = nil }

    // MARK: - the phone's spawn and resume (SPEC §4.4, §7.1)

    /// Spawns a session for the app and waits (≤ 15 s) for its server session: the answer
    /// carries the server session id; on any failure the session is stopped.
    public func spawnForApp(_ request: SpawnRequest) async -> RPCResult {
        let rec: SessionRecord
        do {
            rec = try await sessions.spawn(request)
        } catch SessionError.directoryMissing(let d) {
            return RPCResult(["type": "requestToApproveDirectoryCreation", "directory": .string(d)])
        } catch {
            return Self.errorAnswer(errorWhat(error))
        }
        guard let link = await attach(rec) else {
            _ = try? await sessions.stop(rec.id, reason: .requested)
            return Self.errorAnswer("the session could not be mirrored to the server (see the daemon log)")
        }
        switch await link.waitForServerSession(timeout: spawnWait) {
        case .success(let sid):
            return RPCResult(["type": "success", "sessionId": .string(sid)])
        case .failure(let e):
            Log.warn("sync", "session \(rec.id): \(e.what); stopping it")
            _ = try? await sessions.stop(rec.id, reason: .requested)
            return Self.errorAnswer(e.what)
        }
    }

    /// `resume-happy-session {sessionId, permissionMode?, model?}`: claude again with
    /// `--resume` in the same directory, attached to the same server session.
    public func resumeForApp(_ params: JSON) async -> RPCResult {
        guard let sid = params["sessionId"]?.string, !sid.isEmpty else { return Self.errorAnswer("Session ID is required") }
        let all = await sessions.list(includeFinished: true)
        guard let old = all.filter({ $0.serverSessionId == sid }).max(by: { $0.startedAt < $1.startedAt }) else {
            return Self.errorAnswer("Session \(sid) is not tracked by this daemon")
        }
        if old.status.isLive { return RPCResult(["type": "success", "sessionId": .string(sid)]) }
        guard let claude = old.claudeSessionId else {
            return Self.errorAnswer("Session \(sid) has no Claude session to resume (it never started a conversation)")
        }
        var req = SpawnRequest(directory: old.directory, startedBy: "mobile-app")
        req.resume = claude
        req.continuing = old.id
        req.permissionMode = params["permissionMode"]?.string.flatMap(PermissionMode.init(appValue:)) ?? old.permissionMode
        if let m = params["model"]?.string, !m.isEmpty, m != "default" { req.model = m }
        return await spawnForApp(req)
    }

    /// `{type: "error", errorMessage}`: what the app shows (never a bare `{error}`).
    static func errorAnswer(_ message: String) -> RPCResult {
        RPCResult(["type": "error", "errorMessage": .string(message)], outcome: .error)
    }

    // MARK: - shutdown

    /// Gives the links that are ending `seconds` to send the rest, then closes every link
    /// (what is left is resumed from `sync.json` by the next daemon).
    public func shutdown(seconds: Double) async {
        let all = Array(links.values)
        let deadline = MonotonicClock.now() + seconds
        for l in all {
            let left = deadline - MonotonicClock.now()
            if left > 0 { _ = await l.waitEnded(seconds: left) }
        }
        stopping = true
        for l in links.values { await l.close() }
        links = [:]
        consumer?.cancel()
        await sessions.observe(nil, mirroring: false)
    }

    /// The links (for tests and `status`).
    public var linkCount: Int { links.count }
}
