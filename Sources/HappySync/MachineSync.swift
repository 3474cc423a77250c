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

/// The daemon's machine link with the Happy Server (SPEC §4.4): registration over REST,
/// the machine-scoped Socket.IO connection, heartbeats, the versioned `metadata` and
/// `daemonState`, and the machine RPCs. Never stops the daemon on a server problem
/// (offline, rejected token): it keeps retrying until `finishShutdown()`.
public actor MachineSync {
    /// Who we are and what we publish.
    public struct Identity: Sendable {
        public var machineId: String
        public var token: String
        /// Machine-record key: legacy → account secret; dataKey → machineKey.
        public var key: [UInt8]
        public var variant: EncryptionVariant
        /// dataKey credentials: the account content public key the machineKey is
        /// wrapped to (`dataEncryptionKey`, fresh wrap on every registration).
        public var accountPublicKey: [UInt8]?
        public var pid: Int32
        public var httpPort: Int
        public var startedAt: Int64
        /// The keys the daemon owns; merged into the server's value (others survive).
        public var metadata: JSON
        public init(machineId: String, token: String, key: [UInt8], variant: EncryptionVariant, accountPublicKey: [UInt8]?,
                    pid: Int32, httpPort: Int, startedAt: Int64, metadata: JSON) {
            self.machineId = machineId
            self.token = token
            self.key = key
            self.variant = variant
            self.accountPublicKey = accountPublicKey
            self.pid = pid
            self.httpPort = httpPort
            self.startedAt = startedAt
            self.metadata = metadata
        }
    }

    /// Timings (tests shorten them).
    public struct Timing: Sendable {
        public var heartbeatSeconds: Double = 20
        public var tokenRejectedDelay: Double = ReconnectPolicy.tokenRejectedDelay
        public var policy = ReconnectPolicy()
        /// Ack wait of ordinary versioned updates.
        public var ackTimeout: Double = 10
        /// Ack wait of each shutdown update (SPEC §4.1 step 6).
        public var shutdownAckTimeout: Double = 2
        public var maxTries: Int = 10
        public init() {}
    }

    /// Who we are (its `machineId` is the one we started with: see `machineId`).
    nonisolated let identity: Identity
    /// The machine id now: it changes when the server's record is not ours.
    private var currentMachineId: String
    let timing: Timing
    let registry: MachineRegistry
    let makeSocket: @Sendable (_ machineId: String) -> SyncSocket
    /// The machine RPC methods (built by `MachineRPC`), registered on every connect.
    let methods: [RPCMethod]
    let audit: (any RPCAuditing)?
    /// Saves a new machine id (settings.json) when the server's record is not ours.
    let saveMachineId: @Sendable (String) -> Void

    private var linkStatus: ServerLinkStatus = .connecting
    private var socket: SyncSocket?
    private var connected = false
    private var loopTask: Task<Void, Never>?
    private var heartbeatTask: Task<Void, Never>?
    private var stopping = false
    private var finished = false
    private(set) var registered = false

    // The server's versioned values (local copies).
    let metadataValue: VersionedValue
    let daemonStateValue: VersionedValue

    public init(identity: Identity, timing: Timing = Timing(), registry: MachineRegistry,
                methods: [RPCMethod], audit: (any RPCAuditing)? = nil,
                saveMachineId: @escaping @Sendable (String) -> Void = { _ in },
                makeSocket: @escaping @Sendable (_ machineId: String) -> SyncSocket) {
        self.identity = identity
        self.currentMachineId = identity.machineId
        self.timing = timing
        self.registry = registry
        self.methods = methods
        self.audit = audit
        self.saveMachineId = saveMachineId
        self.makeSocket = makeSocket
        let key = identity.key, variant = identity.variant
        let enc: @Sendable (JSON) -> String = { ValueCipher.encryptToBase64($0, key: key, variant: variant) }
        let dec: @Sendable (String) -> JSON? = { ValueCipher.decryptBase64($0, key: key, variant: variant) }
        metadataValue = VersionedValue(name: "machine-update-metadata", maxTries: timing.maxTries, encrypt: enc, decrypt: dec)
        daemonStateValue = VersionedValue(name: "machine-update-state", maxTries: timing.maxTries, encrypt: enc, decrypt: dec)
    }

    /// The `happyClient` value of the socket auth.
    public static var happyClient: String { "cli-daemon/\(HappyVersion.current)" }

    /// Socket.IO auth object (protocol sheet §5.2).
    public static func socketAuth(token: String, machineId: String) -> JSON {
        ["token": .string(token), "clientType": "machine-scoped", "machineId": .string(machineId),
         "happyClient": .string(happyClient)]
    }

    public var machineId: String { currentMachineId }
    public var metadata: JSON? { get async { await metadataValue.value } }
    public var metadataVersion: Int { get async { await metadataValue.version } }
    public var daemonState: JSON? { get async { await daemonStateValue.value } }
    public var daemonStateVersion: Int { get async { await daemonStateValue.version } }

    /// The machine RPC registry for the current machine id.
    var rpc: RPCRegistry {
        let key = identity.key, variant = identity.variant
        return RPCRegistry(scope: .machine, prefix: currentMachineId, methods: methods,
                           encrypt: { ValueCipher.encryptToBase64($0, key: key, variant: variant) },
                           decrypt: { ValueCipher.decryptBase64($0, key: key, variant: variant) }, audit: audit)
    }

    nonisolated func baseDaemonState(_ status: String) -> JSON {
        ["status": .string(status), "pid": .int(Int(identity.pid)), "httpPort": .int(identity.httpPort),
         "startedAt": .number(Double(identity.startedAt))]
    }

    /// Previous state + this run's `{status, pid, httpPort, startedAt}`; a state other
    /// than shutting-down drops stale shutdown fields of an earlier run.
    nonisolated func mergedState(_ current: JSON?, status: String) -> JSON {
        var o = current?.object ?? [:]
        for (k, v) in baseDaemonState(status).object! { o[k] = v }
        if status == "running" {
            o["shutdownRequestedAt"] = nil
            o["shutdownSource"] = nil
        }
        return .object(o)
    }

    /// The server's metadata with our keys set (keys we do not own, such as the
    /// `displayName` the app writes, survive).
    nonisolated func mergedMetadata(_ current: JSON?) -> JSON {
        var o = current?.object ?? [:]
        for (k, v) in identity.metadata.object ?? [:] { o[k] = v }
        return .object(o)
    }

    nonisolated func encrypt(_ v: JSON) -> String { ValueCipher.encryptToBase64(v, key: identity.key, variant: identity.variant) }
    nonisolated func decrypt(_ s: String?) -> JSON? {
        s.flatMap { ValueCipher.decryptBase64($0, key: identity.key, variant: identity.variant) }
    }

    // MARK: - life

    public func start() {
        guard loopTask == nil, !stopping else { return }
        loopTask = Task { await self.runLoop() }
    }

    public func status() -> ServerLinkStatus { linkStatus }

    public func shutdown(source: ShutdownSource) async {
        await beginShutdown(source: source)
        await finishShutdown()
    }

    /// Step 1 of the shutdown: daemon state `shutting-down` (≤ 2 s for the ack).
    public func beginShutdown(source: ShutdownSource) async {
        if stopping { return }
        stopping = true
        guard connected else { return }
        let now = ISOTime.nowMs()
        let src = source.rawValue
        await updateDaemonState(ackTimeout: timing.shutdownAckTimeout, deadline: timing.shutdownAckTimeout) { current in
            self.mergedState(current, status: "shutting-down")
                .setting("shutdownRequestedAt", .number(Double(now)))
                .setting("shutdownSource", .string(src))
        }
    }

    /// Step 2 (after the sessions stopped): final `offline` state, then the socket closes.
    public func finishShutdown() async {
        if finished { return }
        stopping = true
        finished = true
        heartbeatTask?.cancel()
        heartbeatTask = nil
        if connected {
            await updateDaemonState(ackTimeout: timing.shutdownAckTimeout, deadline: timing.shutdownAckTimeout) { current in
                var s = self.mergedState(current, status: "offline")
                // keep shutdownRequestedAt / shutdownSource from step 1
                if let o = current?.object {
                    for k in ["shutdownRequestedAt", "shutdownSource"] where o[k] != nil { s = s.setting(k, o[k]) }
                }
                return s
            }
        }
        loopTask?.cancel()
        let s = socket
        socket = nil
        connected = false
        linkStatus = .offline
        if let s { await s.disconnect() }
    }

    private func runLoop() async {
        var loop = LinkLoop(name: "machine \(currentMachineId)", policy: timing.policy,
                            tokenRejectedDelay: timing.tokenRejectedDelay)
        await loop.run(stopping: { await self.isStopping() },
                       setStatus: { await self.setStatus($0) },
                       needsPrepare: { await !self.registered },
                       prepare: { await self.register() },
                       serve: { await self.connectAndServe() })
    }

    private func isStopping() -> Bool { stopping }
    private func setStatus(_ s: ServerLinkStatus) { linkStatus = s }

    // MARK: - registration

    /// `POST /v1/machines` with our metadata and state `offline`. A returned record that
    /// does not belong to these credentials (an older login's) gets a new machine id.
    func register() async -> LinkLoop.Prepared {
        for attempt in 0..<2 {
            var dek: String? = nil
            if identity.variant == .dataKey, let pk = identity.accountPublicKey {
                guard let wrapped = try? DataKeyWrap.wrap(identity.key, recipientPublicKey: pk) else {
                    return .retry("access.key is not usable (the account key cannot wrap the machine key) — run `happy auth login`")
                }
                dek = Base64.encode(wrapped)
            }
            let rec: RegisteredMachine
            do {
                rec = try await registry.register(id: currentMachineId, metadata: encrypt(identity.metadata),
                                                  daemonState: encrypt(baseDaemonState("offline")), dataEncryptionKey: dek)
            } catch MachineRegistrationError.tokenRejected {
                return .tokenRejected
            } catch MachineRegistrationError.failed(let why) {
                return .retry("machine registration failed: \(why)")
            } catch {
                return .retry("machine registration failed: \(renderError(error))")
            }
            if belongsToUs(rec) || attempt == 1 {
                await metadataValue.adopt(version: rec.metadataVersion, ciphertext: rec.metadata)
                await daemonStateValue.adopt(version: rec.daemonStateVersion, ciphertext: rec.daemonState)
                registered = true
                Log.info("sync", "machine \(currentMachineId) registered (metadata v\(rec.metadataVersion), daemonState v\(rec.daemonStateVersion))")
                return .ready
            }
            let old = currentMachineId
            let fresh = UUID().uuidString.lowercased()
            Log.warn("sync", "the server's record of machine \(old) was made by an older login (it does not open with these credentials); registering as machine \(fresh)")
            currentMachineId = fresh
            saveMachineId(fresh)
        }
        return .retry("machine registration failed")
    }

    /// The record opens with our key and variant: its metadata decrypts, and it is a
    /// dataKey record (`dataEncryptionKey` set) exactly when our credentials are.
    nonisolated func belongsToUs(_ rec: RegisteredMachine) -> Bool {
        guard (rec.dataEncryptionKey != nil) == (identity.variant == .dataKey) else { return false }
        guard let m = rec.metadata else { return false }
        return decrypt(m) != nil
    }

    // MARK: - the socket

    private func connectAndServe() async -> LinkLoop.Served {
        let client = makeSocket(currentMachineId)
        installHandlers(client)
        socket = client
        let outcome = await LinkLoop.serve(client, stopping: { await self.isStopping() }) {
            await self.onConnected(client)
        }
        connected = false
        heartbeatTask?.cancel()
        heartbeatTask = nil
        if socket === client { socket = nil }
        return outcome
    }

    /// On every connect: RPC methods, heartbeat, state `running`, metadata when it differs.
    private func onConnected(_ client: SyncSocket) async {
        connected = true
        linkStatus = .connected
        Log.info("sync", "connected to the server (machine \(currentMachineId))")
        for m in rpc.registrations {
            do { try await client.emit("rpc-register", ["method": .string(m)]) } catch {
                Log.warn("sync", "rpc-register \(m) failed: \(renderError(error))")
            }
        }
        startHeartbeat(client)
        Task { await self.updateDaemonState { current in self.mergedState(current, status: "running") } }
        let current = await metadataValue.value
        if current != mergedMetadata(current) {
            Task { await self.updateMetadata { self.mergedMetadata($0) } }
        }
    }

    private func startHeartbeat(_ client: SyncSocket) {
        heartbeatTask?.cancel()
        let period = max(0.05, timing.heartbeatSeconds)
        let machineId = currentMachineId
        heartbeatTask = Task {
            while !Task.isCancelled {
                do {
                    try await client.emit("machine-alive", ["machineId": .string(machineId), "time": .number(Double(ISOTime.nowMs()))])
                } catch { return }
                try? await Task.sleep(nanoseconds: UInt64(period * 1e9))
            }
        }
    }

    // MARK: - versioned updates

    /// Compare-and-swap update of `daemonState`, serialized behind earlier updates.
    /// `deadline` bounds the whole update (shutdown steps).
    func updateDaemonState(ackTimeout: Double? = nil, deadline: Double? = nil,
                           _ transform: @escaping @Sendable (JSON?) -> JSON) async {
        let outcome = await daemonStateValue.update(deadline: deadline, send: sender("machine-update-state", field: "daemonState",
                                                                                      ackTimeout: ackTimeout)) { transform($0) }
        if case .written(let v) = outcome {
            let status = await daemonStateValue.value?["status"]?.string ?? "?"
            Log.info("sync", "daemon state \(status) (v\(v))")
        }
        await handle(outcome, event: "machine-update-state")
    }

    func updateMetadata(ackTimeout: Double? = nil, _ transform: @escaping @Sendable (JSON?) -> JSON) async {
        let outcome = await metadataValue.update(send: sender("machine-update-metadata", field: "metadata", ackTimeout: ackTimeout)) {
            transform($0)
        }
        await handle(outcome, event: "machine-update-metadata")
    }

    private func sender(_ event: String, field: String, ackTimeout: Double?) -> VersionedValue.Send {
        let timeout = ackTimeout ?? timing.ackTimeout
        let machineId = currentMachineId
        return { [weak self] expected, ciphertext in
            guard let self, let client = await self.liveSocket() else { throw SyncError.notConnected }
            let payload: JSON = ["machineId": .string(machineId), field: .optional(ciphertext), "expectedVersion": .int(expected)]
            let ack = try await client.emitWithAck(event, payload, timeout: timeout)
            guard let a = VersionedValue.parseAck(ack, field: field) else { throw SyncError.badAck(event) }
            return a
        }
    }

    private func liveSocket() -> SyncSocket? { connected ? socket : nil }

    private func handle(_ outcome: VersionedValue.Outcome, event: String) async {
        switch outcome {
        case .written: break
        case .gaveUp: Log.warn("sync", "\(event): gave up after \(timing.maxTries) version conflicts")
        case .notSent(let why): Log.warn("sync", "\(event) got no answer: \(why)")
        case .refused(let msg):
            Log.warn("sync", "\(event) failed: \(msg)")
            if msg == "Machine not found" && !stopping {
                // The server lost (or someone deleted) the record: register again.
                Log.warn("sync", "the server does not know machine \(currentMachineId); registering it again")
                registered = false
                if let s = socket { Task { await s.disconnect() } }
            }
        }
    }

    // MARK: - incoming events

    private nonisolated func installHandlers(_ client: SyncSocket) {
        client.on("rpc-request") { [weak self] args, ack in
            guard let self else { return }
            // Handled off the event loop so a slow spawn never delays `update` events.
            Task {
                let (reply, then) = await self.handleRPC(args.first ?? .null)
                await ack?([.string(reply)])
                if let then { await then() }
            }
        }
        client.on("update") { [weak self] args, _ in
            guard let self, let u = args.first else { return }
            await self.applyUpdate(u)
        }
        client.on("rpc-error") { args, _ in
            Log.warn("sync", "the server refused an RPC registration: \(args.first?["error"]?.string ?? "?")")
        }
    }

    /// `update` with body `t: update-machine` for our id: adopt value and version.
    func applyUpdate(_ u: JSON) async {
        guard let body = u["body"], body["t"]?.string == "update-machine",
              body["machineId"]?.string == currentMachineId else { return }
        if let m = body["metadata"], let v = m["version"]?.int {
            await metadataValue.adopt(version: v, ciphertext: m["value"]?.string)
        }
        if let s = body["daemonState"], let v = s["version"]?.int {
            await daemonStateValue.adopt(version: v, ciphertext: s["value"]?.string)
        }
    }

    /// Decrypts, dispatches and encrypts one RPC; the reply is one base64 string. The
    /// second value runs after the ack was sent (stop-daemon starts the shutdown).
    public func handleRPC(_ request: JSON) async -> (String, (@Sendable () async -> Void)?) {
        let r = rpc
        return await r.handle(request)
    }
}

/// Failures of the sync layer's own plumbing.
public enum SyncError: HappyError, Equatable {
    case notConnected
    case badAck(String)
    case timedOut(String)

    public var what: String {
        switch self {
        case .notConnected: return "not connected to the server"
        case .badAck(let e): return "\(e): unexpected answer from the server"
        case .timedOut(let what): return "\(what) timed out"
        }
    }
}

extension MachineSync: ServerLink {}
