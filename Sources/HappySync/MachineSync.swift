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

/// The daemon's link to the Happy Server (SPEC §4.4): registration over REST, the
/// machine-scoped Socket.IO connection, heartbeats, versioned metadata/daemonState,
/// and the phone's RPCs. Never stops the daemon on a server problem (offline mode,
/// rejected token): it keeps retrying until `finishShutdown()`.
public actor MachineSync: ServerLink {
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

    /// What the engine lends the link.
    public struct Hooks: Sendable {
        public var sessions: SessionService
        public var requestShutdown: @Sendable (ShutdownSource) -> Void
        public init(sessions: SessionService, requestShutdown: @escaping @Sendable (ShutdownSource) -> Void) {
            self.sessions = sessions
            self.requestShutdown = requestShutdown
        }
    }

    public static let rpcMethods = ["spawn-happy-session", "stop-session", "stop-daemon"]

    let identity: Identity
    let timing: Timing
    let hooks: Hooks
    let registry: MachineRegistry
    let makeSocket: @Sendable () -> SyncSocket

    private var linkStatus: ServerLinkStatus = .connecting
    private var socket: SyncSocket?
    private var connected = false
    private var loopTask: Task<Void, Never>?
    private var heartbeatTask: Task<Void, Never>?
    private var stopping = false
    private var finished = false

    // Local copies of the server's versioned values.
    private(set) var metadata: JSON?
    private(set) var metadataVersion = 0
    private(set) var daemonState: JSON?
    private(set) var daemonStateVersion = 0
    private(set) var registered = false
    /// Serializes versioned updates: each waits for the previous one.
    private var updateChain: Task<Void, Never>?

    public init(identity: Identity, timing: Timing = Timing(), hooks: Hooks, registry: MachineRegistry,
                makeSocket: @escaping @Sendable () -> SyncSocket) {
        self.identity = identity
        self.timing = timing
        self.hooks = hooks
        self.registry = registry
        self.makeSocket = makeSocket
    }

    /// The `happyClient` value of the socket auth.
    public static var happyClient: String { "cli-daemon/\(HappyVersion.current)" }

    /// Socket.IO auth object (protocol sheet §5.2).
    public static func socketAuth(token: String, machineId: String) -> JSON {
        ["token": .string(token), "clientType": "machine-scoped", "machineId": .string(machineId),
         "happyClient": .string(happyClient)]
    }

    /// Machine metadata (SPEC §4.4): host, platform, CLI version, home dirs, profile.
    public static func localMetadata(homeDir: String, happyHomeDir: String, profile: String) -> JSON {
        ["host": .string(hostName()), "platform": "linux", "happyCliVersion": .string(HappyVersion.current),
         "homeDir": .string(homeDir), "happyHomeDir": .string(happyHomeDir), "profile": .string(profile)]
    }

    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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

    nonisolated func encrypt(_ v: JSON) -> String { ValueCipher.encryptToBase64(v, key: identity.key, variant: identity.variant) }
    nonisolated func decrypt(_ s: String?) -> JSON? {
        s.flatMap { ValueCipher.decryptBase64($0, key: identity.key, variant: identity.variant) }
    }

    // MARK: - ServerLink

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

    // MARK: - main loop

    private func runLoop() async {
        var policy = timing.policy
        var rejectedBefore = false
        while !stopping && !Task.isCancelled {
            if !registered {
                linkStatus = rejectedBefore ? .tokenRejected : .connecting
                switch await register() {
                case .ok:
                    registered = true
                    rejectedBefore = false
                case .tokenRejected:
                    if stopping { return }
                    linkStatus = .tokenRejected
                    rejectedBefore = true
                    Log.error("sync", "the server rejected the token (401) during machine registration — run `happy auth login` to fix it; retrying every \(fmt(timing.tokenRejectedDelay)) s")
                    await sleep(timing.tokenRejectedDelay)
                    continue
                case .retry(let why):
                    if stopping { return }
                    linkStatus = .offline
                    rejectedBefore = false
                    let d = policy.nextDelay()
                    Log.warn("sync", "machine registration failed: \(why); running offline, retrying in \(fmt(d)) s")
                    await sleep(d)
                    continue
                }
            }
            if stopping { return }
            if !rejectedBefore { linkStatus = .connecting }
            let outcome = await connectAndServe()
            if stopping { return }
            switch outcome {
            case .tokenRejected:
                linkStatus = .tokenRejected
                rejectedBefore = true
                Log.error("sync", "the server refused the connection: Invalid authentication token — run `happy auth login` to fix it; retrying every \(fmt(timing.tokenRejectedDelay)) s")
                await sleep(timing.tokenRejectedDelay)
            case .lost(let why, let uptime):
                linkStatus = .offline
                rejectedBefore = false
                policy.connectionEnded(uptime: uptime)
                let d = policy.nextDelay()
                Log.warn("sync", "server connection \(uptime > 0 ? "lost" : "failed"): \(why); reconnecting in \(fmt(d)) s")
                await sleep(d)
            }
        }
    }

    private func fmt(_ d: Double) -> String { Format.fixed(d, 1) }

    private func sleep(_ seconds: Double) async {
        try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
    }

    enum RegisterOutcome { case ok, tokenRejected, retry(String) }

    /// `POST /v1/machines` with our metadata and state `offline`.
    func register() async -> RegisterOutcome {
        do {
            var dek: String? = nil
            if identity.variant == .dataKey, let pk = identity.accountPublicKey {
                dek = Base64.encode(try DataKeyWrap.wrap(identity.key, recipientPublicKey: pk))
            }
            let rec = try await registry.register(id: identity.machineId, metadata: encrypt(identity.metadata),
                                                  daemonState: encrypt(baseDaemonState("offline")), dataEncryptionKey: dek)
            metadataVersion = rec.metadataVersion
            metadata = decrypt(rec.metadata)
            daemonStateVersion = rec.daemonStateVersion
            daemonState = decrypt(rec.daemonState)
            Log.info("sync", "machine \(identity.machineId) registered (metadata v\(metadataVersion), daemonState v\(daemonStateVersion))")
            return .ok
        } catch MachineRegistrationError.tokenRejected {
            return .tokenRejected
        } catch MachineRegistrationError.failed(let why) {
            return .retry(why)
        } catch {
            return .retry(renderError(error))
        }
    }

    enum ServeOutcome { case tokenRejected, lost(String, uptime: Double) }

    private func connectAndServe() async -> ServeOutcome {
        let client = makeSocket()
        installHandlers(client)
        socket = client
        do {
            try await client.connect()
        } catch let e as SocketIOError where e.isAuthRejection {
            socket = nil
            return .tokenRejected
        } catch {
            socket = nil
            return .lost(renderError(error), uptime: 0)
        }
        let connectedAt = Date()
        if stopping {
            await client.disconnect()
            return .lost("stopping", uptime: 0)
        }
        connected = true
        linkStatus = .connected
        Log.info("sync", "connected to the server (machine \(identity.machineId))")
        await onConnected(client)
        let reason = await client.waitUntilDisconnected()
        connected = false
        heartbeatTask?.cancel()
        heartbeatTask = nil
        if socket === client { socket = nil }
        return .lost(reason, uptime: Date().timeIntervalSince(connectedAt))
    }

    /// On every connect: RPC methods, heartbeat, state `running`, metadata when it differs.
    private func onConnected(_ client: SyncSocket) async {
        for m in Self.rpcMethods {
            do { try await client.emit("rpc-register", ["method": .string("\(identity.machineId):\(m)")]) } catch {
                Log.warn("sync", "rpc-register \(m) failed: \(renderError(error))")
            }
        }
        startHeartbeat(client)
        Task { await self.updateDaemonState { current in self.mergedState(current, status: "running") } }
        if metadata != identity.metadata {
            let wanted = identity.metadata
            Task { await self.updateMetadata { _ in wanted } }
        }
    }

    private func startHeartbeat(_ client: SyncSocket) {
        heartbeatTask?.cancel()
        let period = max(0.05, timing.heartbeatSeconds)
        let machineId = identity.machineId
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

    enum Field: String { case metadata, daemonState }

    /// Compare-and-swap update of `daemonState`, serialized behind earlier updates.
    /// `deadline` bounds the whole update (shutdown steps).
    func updateDaemonState(ackTimeout: Double? = nil, deadline: Double? = nil,
                           _ transform: @escaping @Sendable (JSON?) -> JSON) async {
        let t = ackTimeout ?? timing.ackTimeout
        await serialized(deadline: deadline) {
            await self.versionedUpdate(.daemonState, event: "machine-update-state", ackTimeout: t, transform)
        }
    }

    func updateMetadata(ackTimeout: Double? = nil, _ transform: @escaping @Sendable (JSON?) -> JSON) async {
        let t = ackTimeout ?? timing.ackTimeout
        await serialized(deadline: nil) {
            await self.versionedUpdate(.metadata, event: "machine-update-metadata", ackTimeout: t, transform)
        }
    }

    private func serialized(deadline: Double?, _ body: @escaping @Sendable () async -> Void) async {
        let previous = updateChain
        let task = Task {
            await previous?.value
            await body()
        }
        updateChain = task
        if let deadline {
            // Wait at most `deadline` (the update itself keeps its own ack timeout).
            await withTimeLimit(seconds: deadline) { await task.value }
        } else {
            await task.value
        }
    }

    /// One versioned update: send with `expectedVersion`; on version-mismatch adopt the
    /// server's version and value and retry (≤ maxTries, small backoff); `error` → done.
    func versionedUpdate(_ field: Field, event: String, ackTimeout: Double, _ transform: @Sendable (JSON?) -> JSON) async {
        var attempt = 0
        while attempt < timing.maxTries {
            attempt += 1
            guard let client = socket, connected else { return }
            let current = field == .metadata ? metadata : daemonState
            let expected = field == .metadata ? metadataVersion : daemonStateVersion
            let value = transform(current)
            let payload: JSON = ["machineId": .string(identity.machineId), field.rawValue: .string(encrypt(value)),
                                 "expectedVersion": .int(expected)]
            let ack: [JSON]
            do {
                ack = try await client.emitWithAck(event, payload, timeout: ackTimeout)
            } catch {
                Log.warn("sync", "\(event) got no answer: \(renderError(error))")
                return
            }
            guard let a = ack.first, let result = a["result"]?.string else {
                Log.warn("sync", "\(event): unexpected answer")
                return
            }
            switch result {
            case "success":
                let v = a["version"]?.int ?? expected + 1
                if v >= (field == .metadata ? metadataVersion : daemonStateVersion) { setField(field, value: value, version: v) }
                if field == .daemonState { Log.info("sync", "daemon state \(value["status"]?.string ?? "?") (v\(v))") }
                return
            case "version-mismatch":
                let v = a["version"]?.int ?? expected
                let server = decrypt(a[field.rawValue]?.string)
                Log.info("sync", "\(event): version mismatch (sent v\(expected), server v\(v)); adopting the server's value and retrying")
                setField(field, value: server, version: v)
                let cap = 0.025 + 0.015 * Double(min(attempt, 10))
                try? await Task.sleep(nanoseconds: UInt64(Double.random(in: 0...cap) * 1e9))
            default:
                let msg = a["message"]?.string ?? "error"
                Log.warn("sync", "\(event) failed: \(msg)")
                if msg == "Machine not found" && !stopping {
                    // The server lost (or someone deleted) the record: register again.
                    Log.warn("sync", "the server does not know machine \(identity.machineId); registering it again")
                    registered = false
                    Task { await client.disconnect() }
                }
                return
            }
        }
        Log.warn("sync", "\(event): gave up after \(timing.maxTries) version conflicts")
    }

    private func setField(_ field: Field, value: JSON?, version: Int) {
        switch field {
        case .metadata:
            metadata = value
            metadataVersion = version
        case .daemonState:
            daemonState = value
            daemonStateVersion = version
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
                if let then { then() }
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
    func applyUpdate(_ u: JSON) {
        guard let body = u["body"], body["t"]?.string == "update-machine",
              body["machineId"]?.string == identity.machineId else { return }
        if let m = body["metadata"], let v = m["version"]?.int, v >= metadataVersion {
            setField(.metadata, value: decrypt(m["value"]?.string), version: v)
        }
        if let s = body["daemonState"], let v = s["version"]?.int, v >= daemonStateVersion {
            setField(.daemonState, value: decrypt(s["value"]?.string), version: v)
        }
    }

    /// Decrypts, dispatches and encrypts one RPC; the reply is one base64 string. The
    /// second value runs after the ack was sent (stop-daemon starts the shutdown).
    public func handleRPC(_ request: JSON) async -> (String, (@Sendable () -> Void)?) {
        let method = request["method"]?.string ?? ""
        let prefix = identity.machineId + ":"
        let name = method.hasPrefix(prefix) ? String(method.dropFirst(prefix.count)) : ""
        var result: JSON
        var after: (@Sendable () -> Void)? = nil
        if !Self.rpcMethods.contains(name) {
            result = ["error": "Method not found"]
        } else if name == "stop-daemon" {
            // params ignored
            result = ["message": "Daemon stop request acknowledged, starting shutdown sequence..."]
            let stop = hooks.requestShutdown
            after = { stop(.mobileApp) }
        } else if let params = decrypt(request["params"]?.string), params.object != nil {
            result = await dispatchRPC(name, params)
        } else {
            result = ["error": "Invalid params: the request could not be decrypted"]
        }
        Log.info("rpc", "\(name.isEmpty ? "unknown method" : name) → \(result["error"].map { "error: \($0.string ?? "")" } ?? "ok")")
        return (encrypt(result), after)
    }

    func dispatchRPC(_ name: String, _ params: JSON) async -> JSON {
        switch name {
        case "spawn-happy-session":
            return await spawnSession(params)
        case "stop-session":
            return await stopSession(params)
        default:
            return ["error": "Method not found"]
        }
    }

    private func message(_ error: Error) -> String { (error as? HappyError)?.what ?? "\(error)" }

    func spawnSession(_ params: JSON) async -> JSON {
        guard var dir = params["directory"]?.string, !dir.isEmpty else { return ["error": "Directory is required"] }
        if let agent = params["agent"], !agent.isNull, agent.string != "claude" {
            let a = agent.string ?? agent.serialized()
            return ["error": .string("Unsupported agent type: '\(a)'. Only claude is supported by this daemon.")]
        }
        dir = Paths.expandTilde(dir, env: ProcessInfo.processInfo.environment)
        guard dir.hasPrefix("/") else { return ["error": .string("Directory must be an absolute path: '\(dir)'")] }
        let approved = params["approvedNewDirectoryCreation"]?.bool == true
        if !FileIO.isDirectory(dir) && !approved {
            return ["type": "requestToApproveDirectoryCreation", "directory": .string(dir)]
        }
        var env: [String: String] = [:]
        if let vars = params["environmentVariables"], !vars.isNull {
            guard let o = vars.object else { return ["error": "environmentVariables must be an object of strings"] }
            for (k, v) in o {
                guard let s = v.string else { return ["error": .string("environment variable \(k) must be a string")] }
                env[k] = s
            }
        }
        let req = SpawnRequest(directory: dir, prompt: params["prompt"]?.string, createDirectory: approved,
                               environmentVariables: env, startedBy: "mobile-app")
        do {
            let rec = try await hooks.sessions.spawn(req)
            return ["type": "success", "sessionId": .string(rec.id)]
        } catch SessionError.directoryMissing(let d) {
            return ["type": "requestToApproveDirectoryCreation", "directory": .string(d)]
        } catch {
            return ["error": .string(message(error))]
        }
    }

    func stopSession(_ params: JSON) async -> JSON {
        guard var id = params["sessionId"]?.string, !id.isEmpty else { return ["error": "Session ID is required"] }
        if id.hasPrefix("PID-"), let pid = Int32(id.dropFirst(4)) {
            guard let rec = await hooks.sessions.list(includeFinished: false).first(where: { $0.pid == pid }) else {
                return ["error": "Session not found or failed to stop"]
            }
            id = rec.id
        }
        do {
            _ = try await hooks.sessions.stop(id, reason: .requested)
            return ["message": "Session stopped"]
        } catch SessionError.notFound {
            return ["error": "Session not found or failed to stop"]
        } catch {
            return ["error": .string(message(error))]
        }
    }
}
