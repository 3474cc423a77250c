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

/// What every session link shares: the account, the server, the machine.
public struct SyncAccount: Sendable {
    public var serverUrl: String
    public var token: String
    public var variant: EncryptionVariant
    /// Legacy credentials: the account secret (the session content key).
    public var secret: [UInt8]?
    /// dataKey credentials: the account content public key session keys are wrapped to.
    public var accountPublicKey: [UInt8]?
    public var api: HappyServerAPI
    /// A socket with this Socket.IO auth object (one connection attempt per socket).
    public var makeSocket: @Sendable (_ auth: JSON) -> SyncSocket

    public init(serverUrl: String, token: String, variant: EncryptionVariant, secret: [UInt8]?, accountPublicKey: [UInt8]?,
                api: HappyServerAPI, makeSocket: @escaping @Sendable (_ auth: JSON) -> SyncSocket) {
        self.serverUrl = serverUrl
        self.token = token
        self.variant = variant
        self.secret = secret
        self.accountPublicKey = accountPublicKey
        self.api = api
        self.makeSocket = makeSocket
    }
}

/// Facts about this machine that go into session metadata.
public struct SyncMachineInfo: Sendable {
    public var host: String
    public var homeDir: String
    public var happyHomeDir: String
    /// The machine id now (it can change when the server's record is not ours).
    public var machineId: @Sendable () async -> String

    public init(host: String, homeDir: String, happyHomeDir: String, machineId: @escaping @Sendable () async -> String) {
        self.host = host
        self.homeDir = homeDir
        self.happyHomeDir = happyHomeDir
        self.machineId = machineId
    }
}

/// Timings of session links (tests shorten them).
public struct SessionLinkTiming: Sendable {
    /// `session-alive` period (SPEC §7.3: 2 s).
    public var aliveSeconds: Double = 2
    public var policy = ReconnectPolicy()
    public var tokenRejectedDelay: Double = ReconnectPolicy.tokenRejectedDelay
    /// Ack wait of a metadata/agentState write (the server never acks some failures).
    public var ackTimeout: Double = 5
    public var maxTries = 10
    public init() {}
}

/// Why a session has no server session.
public enum SessionSyncError: HappyError, Equatable {
    case refused(String)
    case notCreated(String)
    case off(String)

    public var what: String {
        switch self {
        case .refused(let why): return "the server refused the session: \(why)"
        case .notCreated(let why): return "the session could not be created on the server: \(why)"
        case .off(let why): return why
        }
    }
}

/// One local session mirrored to its Happy server session (SPEC §7): creation with the
/// tag and key of `sync.json`, the session-scoped socket (RPCs, catch-up, `session-alive`),
/// claude's output as messages (the stdout file is the outbox: `sentOffset` advances only
/// when the server acknowledged), the app's messages to claude's stdin exactly once,
/// metadata and agentState, and the end (`session-end`, archive).
actor SessionLink {
    let localId: String
    let dir: String
    let account: SyncAccount
    let machine: SyncMachineInfo
    let timing: SessionLinkTiming
    let sessions: SessionService
    let encoder: SessionOutputEncoder
    let toolMethods: @Sendable (_ sessionId: String, _ sessionDirectory: String) -> [RPCMethod]
    let audit: (any RPCAuditing)?
    let onFinished: @Sendable (String) async -> Void

    private(set) var file: SessionSyncFile
    private var record: SessionRecord
    let key: [UInt8]
    /// The session key's value cipher (messages, metadata, agentState, RPC params).
    let encrypt: @Sendable (JSON) -> String
    let decrypt: @Sendable (String) -> JSON?
    let metadata: VersionedValue
    let agentState: VersionedValue

    private var socket: SyncSocket?
    private var connected = false
    private var stopping = false
    private var loopTask: Task<Void, Never>?
    private var aliveTask: Task<Void, Never>?
    private var pumpTask: Task<Void, Never>?
    private var pumpAgain = false
    private var inbound: Task<Void, Never>?
    private var thinking = false
    /// Sent through the socket `message` event: the server has no `/v3` routes.
    private var legacyTransport = false
    /// The session ended; what is left: send everything, then end it on the server.
    private var ending: SessionRecord?
    private var endDone = false
    private var waiters: [CheckedContinuation<Result<String, SessionSyncError>, Never>] = []
    /// Metadata keys this daemon sets (merged into the server's value on every write).
    private var metadataPatch: [String: JSON] = [:]
    private var completed: [String: CompletedPermission] = [:]
    private var seenIds: [String] = []
    private var pumpFailures = 0
    private var writeRetries = 0

    init(record: SessionRecord, dir: String, file: SessionSyncFile, account: SyncAccount, machine: SyncMachineInfo,
         timing: SessionLinkTiming, sessions: SessionService, encoder: SessionOutputEncoder = LegacyOutputEncoder(),
         audit: (any RPCAuditing)?, toolMethods: @escaping @Sendable (_ sessionId: String, _ sessionDirectory: String) -> [RPCMethod],
         onFinished: @escaping @Sendable (String) async -> Void) {
        self.localId = record.id
        self.record = record
        self.dir = dir
        self.file = file
        self.account = account
        self.machine = machine
        self.timing = timing
        self.sessions = sessions
        self.encoder = encoder
        self.audit = audit
        self.toolMethods = toolMethods
        self.onFinished = onFinished
        let variant = file.variant
        let key = file.key ?? account.secret ?? []
        self.key = key
        let enc: @Sendable (JSON) -> String = { ValueCipher.encryptToBase64($0, key: key, variant: variant) }
        let dec: @Sendable (String) -> JSON? = { ValueCipher.decryptBase64($0, key: key, variant: variant) }
        encrypt = enc
        decrypt = dec
        metadata = VersionedValue(name: "update-metadata", version: file.metadataVersion, maxTries: timing.maxTries,
                                  encrypt: enc, decrypt: dec)
        agentState = VersionedValue(name: "update-state", version: file.agentStateVersion, maxTries: timing.maxTries,
                                    encrypt: enc, decrypt: dec)
        thinking = record.thinking
    }

    var serverSessionId: String? { file.serverSessionId }

    // MARK: - life

    func start() {
        guard loopTask == nil, !stopping else { return }
        if file.failed { return }
        if record.status.isLive || file.serverSessionId == nil { setPatchFromRecord() }
        loopTask = Task { await self.runLoop() }
    }

    private func runLoop() async {
        var loop = LinkLoop(name: "session \(localId)", policy: timing.policy, tokenRejectedDelay: timing.tokenRejectedDelay)
        await loop.run(stopping: { await self.isStopping() },
                       setStatus: { await self.linkStatus($0) },
                       needsPrepare: { await self.serverSessionId == nil },
                       prepare: { await self.create() },
                       serve: { await self.connectAndServe() })
    }

    private func isStopping() -> Bool { stopping }

    private func linkStatus(_ s: ServerLinkStatus) async {
        // `synced` once created (a drop does not make it pending again: it is created).
        if file.serverSessionId == nil && !file.failed {
            await sessions.setSync(localId, serverSessionId: nil, state: .pending)
        }
    }

    /// Waits until the server session exists (the spawn RPC answers its id), at most
    /// `timeout` seconds.
    func waitForServerSession(timeout: Double) async -> Result<String, SessionSyncError> {
        if let sid = file.serverSessionId { return .success(sid) }
        if file.failed { return .failure(.refused("the server refused to create the session")) }
        return await withCheckedContinuation { c in
            waiters.append(c)
            Task {
                try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
                self.timeoutWaiters()
            }
        }
    }

    private func timeoutWaiters() {
        guard file.serverSessionId == nil else { return }
        let w = waiters
        waiters = []
        for c in w { c.resume(returning: .failure(.notCreated("the server did not answer in time"))) }
    }

    private func resolveWaiters(_ r: Result<String, SessionSyncError>) {
        let w = waiters
        waiters = []
        for c in w { c.resume(returning: r) }
    }

    /// Stops without ending the server session (daemon shutdown with sessions kept, or
    /// the daemon giving up waiting): everything needed to resume is in `sync.json`.
    func close() async {
        stopping = true
        loopTask?.cancel()
        aliveTask?.cancel()
        aliveTask = nil
        pumpTask?.cancel()
        let s = socket
        socket = nil
        connected = false
        persist()
        if let s { await s.disconnect() }
        resolveWaiters(.failure(.notCreated("the daemon is stopping")))
    }

    // MARK: - creation (SPEC §7.2)

    private func create() async -> LinkLoop.Prepared {
        if file.failed || stopping { stopping = true; return .retry("stopped") }
        if file.serverSessionId != nil { return .ready }
        var dek: String? = nil
        if file.variant == .dataKey {
            guard let pk = account.accountPublicKey, let wrapped = try? DataKeyWrap.wrap(key, recipientPublicKey: pk) else {
                fail("the account key in access.key cannot wrap the session key — run `happy auth login`")
                return .retry("stopped")
            }
            dek = Base64.encode(wrapped)
        }
        let meta = Self.merged(nil, metadataPatch, machineId: await machine.machineId())
        do {
            let s = try await account.api.createSession(tag: file.tag, metadata: encrypt(meta), dataEncryptionKey: dek)
            file.serverSessionId = s.id
            await metadata.adopt(version: s.metadataVersion, ciphertext: s.metadata)
            await agentState.adopt(version: s.agentStateVersion, ciphertext: s.agentState)
            file.metadataVersion = s.metadataVersion
            file.agentStateVersion = s.agentStateVersion
            persist()
            await sessions.setSync(localId, serverSessionId: s.id, state: .synced)
            Log.info("sync", "session \(localId) is server session \(s.id)")
            resolveWaiters(.success(s.id))
            return .ready
        } catch let e as APIError {
            switch e {
            case .tokenRejected: return .tokenRejected
            case .unreachable, .serverError: return .retry("creating the session failed: \(e.what)")
            default:
                fail(e.what)
                return .retry("stopped")
            }
        } catch {
            return .retry("creating the session failed: \(renderError(error))")
        }
    }

    /// The server refused the session for good: local only from now on.
    private func fail(_ why: String) {
        Log.error("sync", "session \(localId): \(why); it stays local")
        file.failed = true
        persist()
        stopping = true
        resolveWaiters(.failure(.refused(why)))
        let sessions = self.sessions, id = localId
        Task { await sessions.setSync(id, serverSessionId: nil, state: .failed) }
    }

    private func persist() {
        do { try file.save(dir) } catch {
            Log.error("sync", "session \(localId): cannot write sync.json: \(renderError(error))")
        }
    }

    // MARK: - metadata (SPEC §7.2)

    private func setPatchFromRecord() {
        metadataPatch["path"] = .string(record.directory)
        metadataPatch["host"] = .string(machine.host)
        metadataPatch["version"] = .string(HappyVersion.current)
        metadataPatch["os"] = "linux"
        metadataPatch["homeDir"] = .string(machine.homeDir)
        metadataPatch["happyHomeDir"] = .string(machine.happyHomeDir)
        metadataPatch["startedFromDaemon"] = true
        metadataPatch["hostPid"] = .int(Int(record.pid))
        metadataPatch["startedBy"] = "daemon"
        metadataPatch["flavor"] = "claude"
        if record.status.isLive {
            metadataPatch["lifecycleState"] = "running"
            metadataPatch["lifecycleStateSince"] = .number(Double(ISOTime.nowMs()))
        }
        if let c = record.claudeSessionId { metadataPatch["claudeSessionId"] = .string(c) }
    }

    /// The server's metadata with our keys set; keys the app writes (`permissionMode`,
    /// `modelMode`, `effortLevel`, ...) survive.
    private static func merged(_ current: JSON?, _ patch: [String: JSON], machineId: String) -> JSON {
        var o = current?.object ?? [:]
        for (k, v) in patch { o[k] = v }
        o["machineId"] = .string(machineId)
        return .object(o)
    }

    /// Writes the metadata patch (when connected; otherwise on the next connect).
    private func pushMetadata() async {
        guard connected, file.serverSessionId != nil else { return }
        let mid = await machine.machineId()
        let patch = metadataPatch
        let outcome = await metadata.update(send: sender("update-metadata", field: "metadata")) { current in
            Self.merged(current, patch, machineId: mid)
        }
        await noteVersions()
        report(outcome, "update-metadata")
        retryIfUnanswered(outcome) { await $0.pushMetadata() }
    }

    private func patchMetadata(_ changes: [String: JSON]) async {
        var changed = false
        for (k, v) in changes where metadataPatch[k] != v {
            metadataPatch[k] = v
            changed = true
        }
        if changed { await pushMetadata() }
    }

    /// agentState (SPEC §7.5): pending requests, completed ones, `controlledByUser: false`.
    private func pushAgentState() async {
        guard connected, file.serverSessionId != nil else { return }
        let pending = await sessions.get(localId)?.pendingPermissions ?? []
        let done = completed
        let outcome = await agentState.update(send: sender("update-state", field: "agentState")) { current in
            var o = current?.object ?? [:]
            o["controlledByUser"] = false
            var requests: [String: JSON] = [:]
            for p in pending {
                requests[p.id] = ["tool": .string(p.tool), "arguments": p.arguments, "createdAt": .number(Double(p.createdAt))]
            }
            o["requests"] = .object(requests)
            var comp = current?["completedRequests"]?.object ?? [:]
            for (id, c) in done where requests[id] == nil { comp[id] = c.agentStateJSON }
            o["completedRequests"] = .object(comp)
            return .object(o)
        }
        await noteVersions()
        report(outcome, "update-state")
        retryIfUnanswered(outcome) { await $0.pushAgentState() }
    }

    /// A write the server did not answer (it never acks some failures) is tried again on
    /// the reconnect schedule while connected (a reconnect writes everything anyway).
    private func retryIfUnanswered(_ outcome: VersionedValue.Outcome, _ again: @escaping @Sendable (SessionLink) async -> Void) {
        guard case .notSent = outcome, connected, !stopping else { writeRetries = 0; return }
        writeRetries += 1
        guard writeRetries <= 10 else { writeRetries = 0; return }
        let d = timing.policy.delay(afterFailures: writeRetries)
        Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(d * 1e9))
            guard let self else { return }
            await again(self)
        }
    }

    private func noteVersions() async {
        let mv = await metadata.version, av = await agentState.version
        if mv != file.metadataVersion || av != file.agentStateVersion {
            file.metadataVersion = mv
            file.agentStateVersion = av
            persist()
        }
    }

    private func report(_ o: VersionedValue.Outcome, _ event: String) {
        switch o {
        case .written: break
        case .gaveUp: Log.warn("sync", "session \(localId): \(event) gave up after \(timing.maxTries) version conflicts")
        case .refused(let m): Log.warn("sync", "session \(localId): \(event) failed: \(m)")
        case .notSent(let m): Log.warn("sync", "session \(localId): \(event) not written (\(m)); it is written again on the next connect")
        }
    }

    private func sender(_ event: String, field: String) -> VersionedValue.Send {
        let timeout = timing.ackTimeout
        return { [weak self] expected, ciphertext in
            guard let self, let (client, sid) = await self.liveSocket() else { throw SyncError.notConnected }
            let payload: JSON = ["sid": .string(sid), field: .optional(ciphertext), "expectedVersion": .int(expected)]
            let ack = try await client.emitWithAck(event, payload, timeout: timeout)
            guard let a = VersionedValue.parseAck(ack, field: field) else { throw SyncError.badAck(event) }
            return a
        }
    }

    private func liveSocket() -> (SyncSocket, String)? {
        guard connected, let s = socket, let sid = file.serverSessionId else { return nil }
        return (s, sid)
    }

    // MARK: - the socket (SPEC §7.3)

    private func connectAndServe() async -> LinkLoop.Served {
        guard let sid = file.serverSessionId else { return .lost("not created", uptime: 0) }
        let auth: JSON = ["token": .string(account.token), "clientType": "session-scoped", "sessionId": .string(sid),
                          "happyClient": .string(HappyServerAPI.sessionClient)]
        let client = account.makeSocket(auth)
        let registry = rpcRegistry(sid: sid)
        client.on("rpc-request") { [weak self] args, ack in
            guard self != nil else { return }
            Task {
                let (reply, then) = await registry.handle(args.first ?? .null)
                await ack?([.string(reply)])
                if let then { await then() }
            }
        }
        client.on("update") { [weak self] args, _ in
            guard let self, let u = args.first else { return }
            await self.applyUpdate(u)
        }
        socket = client
        let outcome = await LinkLoop.serve(client, stopping: { await self.isStopping() }) {
            await self.onConnected(client, registry: registry)
        }
        connected = false
        aliveTask?.cancel()
        aliveTask = nil
        if socket === client { socket = nil }
        return outcome
    }

    private func onConnected(_ client: SyncSocket, registry: RPCRegistry) async {
        connected = true
        pumpFailures = 0
        Log.info("sync", "session \(localId): connected (server session \(file.serverSessionId ?? "?"))")
        for m in registry.registrations {
            do { try await client.emit("rpc-register", ["method": .string(m)]) } catch {
                Log.warn("sync", "session \(localId): rpc-register \(m) failed: \(renderError(error))")
            }
        }
        startAlive(client)
        scheduleInbound { await $0.fetchMissed() }
        Task { await self.pushAgentState() }
        if !metadataPatch.isEmpty { Task { await self.pushMetadata() } }
        kickPump()
    }

    private func startAlive(_ client: SyncSocket) {
        aliveTask?.cancel()
        let period = max(0.05, timing.aliveSeconds)
        aliveTask = Task { [weak self] in
            while !Task.isCancelled {
                await self?.sendAlive()
                try? await Task.sleep(nanoseconds: UInt64(period * 1e9))
            }
        }
    }

    /// `session-alive {sid, time, thinking, mode: "remote"}`.
    private func sendAlive() async {
        guard let (client, sid) = liveSocket(), ending == nil else { return }
        try? await client.emit("session-alive", ["sid": .string(sid), "time": .number(Double(ISOTime.nowMs())),
                                                 "thinking": .bool(thinking), "mode": "remote"])
    }

    /// `update` events: new messages for this session, versioned value changes.
    private func applyUpdate(_ u: JSON) async {
        guard let body = u["body"], let sid = file.serverSessionId else { return }
        switch body["t"]?.string {
        case "new-message" where body["sid"]?.string == sid:
            guard let m = body["message"].flatMap(ServerMessage.init(json:)) else { return }
            scheduleInbound { await $0.receive(m) }
        case "update-session" where body["id"]?.string == sid:
            if let m = body["metadata"], let v = m["version"]?.int { await metadata.adopt(version: v, ciphertext: m["value"]?.string) }
            if let s = body["agentState"], let v = s["version"]?.int { await agentState.adopt(version: v, ciphertext: s["value"]?.string) }
        default:
            break
        }
    }

    // MARK: - inbound: the app's messages → claude (SPEC §7.4)

    /// Runs inbound work one at a time, in order.
    private func scheduleInbound(_ work: @escaping @Sendable (SessionLink) async -> Void) {
        let previous = inbound
        inbound = Task { [weak self] in
            await previous?.value
            guard let self else { return }
            await work(self)
        }
    }

    /// Everything after `lastSeq` (on every connect, and when a gap shows).
    private func fetchMissed() async {
        guard let sid = file.serverSessionId else { return }
        var rounds = 0
        while rounds < 1000 {
            rounds += 1
            let batch: [ServerMessage]
            var more = false
            do {
                let r = try await account.api.fetchMessages(sid: sid, afterSeq: file.lastSeq, limit: 100)
                batch = r.messages
                more = r.hasMore
            } catch APIError.routeMissing {
                do {
                    batch = try await account.api.fetchMessagesV1(sid: sid).filter { $0.seq > file.lastSeq }.sorted { $0.seq < $1.seq }
                } catch {
                    Log.warn("sync", "session \(localId): fetching messages failed: \(renderError(error))")
                    return
                }
            } catch {
                Log.warn("sync", "session \(localId): fetching messages failed: \(renderError(error))")
                return
            }
            for m in batch.sorted(by: { $0.seq < $1.seq }) { await deliver(m) }
            if !more || batch.isEmpty { return }
        }
    }

    /// A `new-message` update: delivered at once when it is the next one, else the gap is fetched.
    private func receive(_ m: ServerMessage) async {
        if m.seq <= file.lastSeq || seenIds.contains(m.id) { return }
        if m.seq > file.lastSeq + 1 && !legacyTransport {
            await fetchMissed()
            if m.seq > file.lastSeq { await deliver(m) }
            return
        }
        await deliver(m)
    }

    /// One message, exactly once: a user text goes to claude's stdin; anything else
    /// (our own records, unreadable ones) is skipped. `lastSeq` advances after the write.
    private func deliver(_ m: ServerMessage) async {
        guard m.seq > file.lastSeq, !seenIds.contains(m.id) else { return }
        remember(m.id)
        defer {
            if m.seq > file.lastSeq { file.lastSeq = m.seq; persist() }
        }
        if let l = m.localId, l.hasPrefix(localId + ":") || l.hasPrefix(file.tag + ":") { return }
        guard let c = m.ciphertext else { return }
        guard let msg = decrypt(c) else {
            Log.warn("sync", "session \(localId): message \(m.id) (seq \(m.seq)) could not be decrypted; ignored")
            return
        }
        if msg["meta"]?["sentFrom"]?.string == "cli" { return }
        guard msg["role"]?.string == "user", msg["content"]?["type"]?.string == "text",
              let text = msg["content"]?["text"]?.string else {
            // Another client's record that is not a user text (an image, an agent record,
            // a malformed one): nothing for claude's stdin.
            let kind = [msg["role"]?.string ?? "no role", msg["content"]?["type"]?.string ?? "no content type"]
                .map { String($0.prefix(40)) }
            Log.info("sync", "session \(localId): message \(m.id) (seq \(m.seq)) is not a user text (\(kind.joined(separator: ", "))); ignored")
            return
        }
        if let raw = msg["meta"]?["permissionMode"]?.string, let mode = PermissionMode(appValue: raw),
           mode != (await sessions.get(localId))?.permissionMode {
            try? await sessions.setPermissionMode(localId, mode)
        }
        do {
            try await sessions.send(localId, text: text, local: false)
        } catch {
            Log.warn("sync", "session \(localId): message \(m.id) not delivered to claude: \(renderError(error))")
        }
    }

    private func remember(_ id: String) {
        seenIds.append(id)
        if seenIds.count > 512 { seenIds.removeFirst(seenIds.count - 512) }
    }

    // MARK: - outbound: claude's output → messages (SPEC §7.4)

    func kickPump() {
        if pumpTask != nil { pumpAgain = true; return }
        pumpTask = Task { [weak self] in
            guard let self else { return }
            await self.pumpLoop()
        }
    }

    private func pumpLoop() async {
        while true {
            pumpAgain = false
            let progressed = await pumpOnce()
            if stopping && ending == nil { break }
            if progressed { continue }
            if pumpAgain { continue }
            break
        }
        pumpTask = nil
        if pumpAgain { kickPump() }
    }

    /// Sends one batch (≤ 100 messages). True when it made progress and should run again.
    private func pumpOnce() async -> Bool {
        guard file.serverSessionId != nil, !stopping || ending != nil else { return false }
        if legacyTransport && !connected { return false }
        guard let chunk = await sessions.readStream(localId, from: file.sentOffset, limit: 512 * 1024) else { return false }
        if chunk.start > file.sentOffset {
            Log.warn("sync", "session \(localId): \(chunk.start - file.sentOffset) bytes of output were rotated away before they could be sent")
            file.sentOffset = chunk.start
        }
        // Complete lines (a cut line at the end of a rotated file is final).
        var lines: [(offset: Int64, end: Int64, bytes: ArraySlice<UInt8>)] = []
        var start = 0
        let b = chunk.bytes
        while let nl = b[start...].firstIndex(of: 0x0A) {
            lines.append((chunk.start + Int64(start), chunk.start + Int64(nl + 1), b[start..<nl]))
            start = nl + 1
        }
        if chunk.sealed && start < b.count {
            lines.append((chunk.start + Int64(start), chunk.start + Int64(b.count), b[start...]))
        }
        var batch: [OutgoingMessage] = []
        var consumedTo = file.sentOffset
        var pendingUsed = 0
        let pending = file.pending.sorted { $0.afterOffset < $1.afterOffset }
        func takePending(upTo offset: Int64) {
            while pendingUsed < pending.count, pending[pendingUsed].afterOffset <= offset, batch.count < 100 {
                batch.append(OutgoingMessage(localId: pending[pendingUsed].localId, content: pending[pendingUsed].content))
                pendingUsed += 1
            }
        }
        for line in lines {
            takePending(upTo: line.offset)
            let msgs: [OutgoingMessage]
            if let j = try? JSON.parse(line.bytes), case .object = j {
                msgs = encoder.messages(for: j, localId: "\(localId):\(line.offset)")
            } else {
                msgs = []
            }
            if batch.count + msgs.count > 100 && !batch.isEmpty { break }
            batch += msgs
            consumedTo = line.end
        }
        if lines.isEmpty || consumedTo == lines.last?.end { takePending(upTo: consumedTo) }
        if batch.isEmpty {
            if consumedTo > file.sentOffset {
                file.sentOffset = consumedTo
                persist()
                return true
            }
            await maybeCompleteEnd(lines: lines)
            return false
        }
        do {
            try await send(batch)
        } catch {
            pumpFailures += 1
            let d: Double
            if let e = error as? APIError, e.isTokenRejected {
                d = timing.tokenRejectedDelay
            } else {
                d = timing.policy.delay(afterFailures: pumpFailures)
            }
            Log.warn("sync", "session \(localId): sending \(batch.count) messages failed: \(renderError(error)); retrying in \(Format.fixed(d, 1)) s")
            try? await Task.sleep(nanoseconds: UInt64(d * 1e9))
            return !stopping || ending != nil
        }
        pumpFailures = 0
        let sentIds = Set(pending.prefix(pendingUsed).map(\.localId))
        file.pending.removeAll { sentIds.contains($0.localId) }
        file.sentOffset = consumedTo
        persist()
        return true
    }

    private func send(_ batch: [OutgoingMessage]) async throws {
        guard let sid = file.serverSessionId else { throw SyncError.notConnected }
        if !legacyTransport {
            do {
                _ = try await account.api.postMessages(sid: sid, batch.map { (encrypt($0.content), $0.localId) })
                return
            } catch APIError.routeMissing {
                Log.info("sync", "session \(localId): the server has no /v3 routes; sending through the socket")
                legacyTransport = true
            }
        }
        guard let (client, sid2) = liveSocket() else { throw SyncError.notConnected }
        for m in batch {
            try await client.emit("message", ["sid": .string(sid2), "message": .string(encrypt(m.content)), "localId": .string(m.localId)])
        }
    }

    // MARK: - session events (from the session manager)

    func handle(_ e: SessionEvent) async {
        switch e {
        case .output:
            kickPump()
        case .initialized(_, let info):
            var p: [String: JSON] = [:]
            if let s = info["session_id"]?.string { p["claudeSessionId"] = .string(s) }
            if let t = info["tools"], t.array != nil { p["tools"] = t }
            if let c = info["slash_commands"], c.array != nil { p["slashCommands"] = c }
            if let m = info["mcp_servers"]?.array {
                p["mcpServers"] = .array(m.map { ["name": $0["name"] ?? .null, "status": $0["status"] ?? .null] })
            }
            await patchMetadata(p)
        case .promptSent(_, let text, let local, let offset):
            if !file.summarized {
                file.summarized = true
                persist()
                let firstLine = text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? text
                let t = String(firstLine.trimmed.prefix(80))
                if !t.isEmpty {
                    await patchMetadata(["summary": ["text": .string(t), "updatedAt": .number(Double(ISOTime.nowMs()))]])
                }
            }
            if local {
                file.promptCount += 1
                file.pending.append(.init(localId: "\(localId):p\(file.promptCount)", afterOffset: offset,
                                          content: LegacyOutputEncoder.userText(text)))
                persist()
                kickPump()
            }
            await setThinking(true)
        case .thinking(_, let on):
            await setThinking(on)
        case .permissionRequested:
            await pushAgentState()
        case .permissionResolved(_, let c):
            completed[c.request.id] = c
            await pushAgentState()
        case .modeChanged(_, let m):
            await patchMetadata(["permissionMode": .string(m.rawValue)])
        case .aborted(_, let offset):
            file.promptCount += 1
            let id = "\(localId):a\(file.promptCount)"
            file.pending.append(.init(localId: id, afterOffset: offset,
                                      content: LegacyOutputEncoder.event(["type": "message", "message": "Aborted by user"], id: id)))
            persist()
            kickPump()
            await setThinking(false)
        case .ended(let rec):
            await end(rec)
        case .detached:
            await close()
        case .started, .adopted:
            break
        }
    }

    private func setThinking(_ on: Bool) async {
        guard thinking != on else { return }
        thinking = on
        await sendAlive()
    }

    // MARK: - the end (SPEC §7.3)

    /// The session ended: send what is left, then end the server session.
    func end(_ rec: SessionRecord) async {
        guard ending == nil, !endDone else { return }
        record = rec
        ending = rec
        thinking = false
        if file.ended || file.failed { await finished(); return }
        kickPump()
    }

    /// Called when the pump found nothing left to send.
    private func maybeCompleteEnd(lines: [(offset: Int64, end: Int64, bytes: ArraySlice<UInt8>)]) async {
        guard let rec = ending, !endDone, connected, file.serverSessionId != nil, file.pending.isEmpty else { return }
        endDone = true
        let sid = file.serverSessionId!
        if rec.stopReason == .requested || rec.stopReason == .idle {
            let reason = rec.stopReason == .idle ? "Idle timeout" : "User terminated"
            metadataPatch["lifecycleState"] = "archived"
            metadataPatch["lifecycleStateSince"] = .number(Double(ISOTime.nowMs()))
            metadataPatch["archivedBy"] = "cli"
            metadataPatch["archiveReason"] = .string(reason)
            await pushMetadata()
        }
        if let (client, _) = liveSocket() {
            try? await client.emit("session-end", ["sid": .string(sid), "time": .number(Double(ISOTime.nowMs()))])
        }
        do { try await account.api.archiveSession(sid: sid) } catch {
            Log.warn("sync", "session \(localId): archive failed: \(renderError(error))")
        }
        file.ended = true
        persist()
        Log.info("sync", "session \(localId): ended on the server (\(sid))")
        await finished()
    }

    private func finished() async {
        await close()
        await onFinished(localId)
    }

    /// Waits (at most `seconds`) for the end to be sent; true when it was.
    func waitEnded(seconds: Double) async -> Bool {
        let deadline = MonotonicClock.now() + seconds
        while MonotonicClock.now() < deadline {
            if endDone || file.ended || file.failed { return true }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return endDone || file.ended
    }

    // MARK: - session RPCs (SPEC §7.5)

    private func rpcRegistry(sid: String) -> RPCRegistry {
        let sessions = self.sessions, id = localId
        var methods: [RPCMethod] = [
            RPCMethod("permission") { p in
                guard let rid = p["id"]?.string else { return .error("id is required", outcome: .refused) }
                var answer = PermissionAnswer(approved: p["approved"]?.bool == true || p["decision"]?.string == "approved"
                                              || p["decision"]?.string == "approved_for_session", source: "app")
                answer.reason = p["reason"]?.string
                answer.mode = p["mode"]?.string.flatMap(PermissionMode.init(appValue:))
                answer.allowTools = p["allowTools"]?.array?.compactMap(\.string) ?? []
                if case .object? = p["updatedInput"] { answer.updatedInput = p["updatedInput"] }
                do {
                    _ = try await sessions.answerPermission(id, requestId: rid, answer)
                    return RPCResult(.null)
                } catch SessionError.noSuchPermission {
                    // No such pending request: nothing to do (SESSIONS.md §6.4 step 1).
                    Log.info("sync", "session \(id): permission answer for unknown request \(rid) ignored")
                    return RPCResult(.null, outcome: .refused)
                } catch {
                    return .error(errorWhat(error))
                }
            },
            RPCMethod("abort") { _ in
                do {
                    try await sessions.interrupt(id)
                    return RPCResult(.null)
                } catch {
                    return .error(errorWhat(error))
                }
            },
            RPCMethod("killSession") { _ in
                RPCResult(["success": true, "message": "Killing happy-cli process"]) {
                    _ = try? await sessions.stop(id, reason: .requested)
                }
            },
            RPCMethod("switch") { _ in RPCResult(false) },
        ]
        methods += toolMethods(localId, record.directory)
        return RPCRegistry(scope: .session, sessionId: localId, prefix: sid, methods: methods,
                           encrypt: encrypt, decrypt: decrypt,
                           audit: audit)
    }
}
