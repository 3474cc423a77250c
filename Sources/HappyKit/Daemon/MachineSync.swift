import Foundation

/// The daemon's link to the Happy Server (SPEC §4.4): registration over REST, the
/// machine-scoped Socket.IO connection, heartbeats, versioned metadata/daemonState,
/// and the phone's RPCs. Runs until `finishShutdown()`; never stops the daemon on a
/// server problem (offline mode, token rejected), it keeps retrying.
public actor MachineSync {
    public struct Identity: Sendable {
        public var machineId: String
        public var credentials: Credentials
        public var pid: Int32
        public var httpPort: Int
        public var startedAt: Int64
        public init(machineId: String, credentials: Credentials, pid: Int32, httpPort: Int, startedAt: Int64) {
            self.machineId = machineId
            self.credentials = credentials
            self.pid = pid
            self.httpPort = httpPort
            self.startedAt = startedAt
        }
    }

    /// What the engine lends the link: the session manager and a way to stop the daemon.
    public struct Hooks: Sendable {
        public var sessions: SessionService
        public var requestShutdown: @Sendable (ShutdownSource) async -> Void
        public init(sessions: SessionService, requestShutdown: @escaping @Sendable (ShutdownSource) async -> Void) {
            self.sessions = sessions
            self.requestShutdown = requestShutdown
        }
    }

    let config: HappyConfig
    let identity: Identity
    let hooks: Hooks
    let api: HappyServerAPI
    let key: [UInt8]
    let variant: EncryptionVariant

    private(set) var linkStatus: ServerLinkStatus = .connecting
    private var socket: SocketIOClient?
    private var loopTask: Task<Void, Never>?
    private var heartbeatTask: Task<Void, Never>?
    private var stopping = false
    private var wake: CheckedContinuation<Void, Never>?

    // Local copies of the server's versioned values.
    private(set) var metadata: JSON?
    private(set) var metadataVersion = 0
    private(set) var daemonState: JSON?
    private(set) var daemonStateVersion = 0
    /// Serializes versioned updates: each waits for the previous one.
    private var updateChain: Task<Void, Never>?

    static let rpcMethods = ["spawn-happy-session", "stop-session", "stop-daemon"]

    public init(config: HappyConfig, identity: Identity, hooks: Hooks, transport: HTTPTransport) {
        self.config = config
        self.identity = identity
        self.hooks = hooks
        self.api = HappyServerAPI(serverUrl: config.serverUrl, transport: transport)
        let kv = identity.credentials.machineEncryption
        self.key = kv.key
        self.variant = kv.variant
    }

    // MARK: - values we publish

    /// Machine metadata (SPEC §4.4): host, platform, CLI version, home dirs, profile.
    public nonisolated var localMetadata: JSON {
        var host = ProcessInfo.processInfo.hostName
        if let dot = host.firstIndex(of: "."), host.hasSuffix(".local") { host = String(host[..<dot]) }
        return [
            "host": .string(host),
            "platform": "linux",
            "happyCliVersion": .string(HappyVersion.current),
            "homeDir": .string(NSHomeDirectory()),
            "happyHomeDir": .string(config.homeDir),
            "profile": .string(config.profile),
        ]
    }

    nonisolated func baseDaemonState(_ status: String) -> JSON {
        [
            "status": .string(status),
            "pid": .int(Int(identity.pid)),
            "httpPort": .int(identity.httpPort),
            "startedAt": .number(Double(identity.startedAt)),
        ]
    }

    // MARK: - ServerLink surface

    public func start() {
        guard loopTask == nil else { return }
        loopTask = Task { await self.runLoop() }
    }

    public func status() -> ServerLinkStatus { linkStatus }

    /// Step 1 of shutdown: daemon state `shutting-down` (≤ 2 s for the ack).
    public func beginShutdown(source: ShutdownSource) async {
        stopping = true
        guard socket != nil, linkStatus == .connected else { return }
        let now = ISOTime.nowMs()
        await updateDaemonState(ackTimeout: 2, maxTries: 2) { current in
            var s = self.mergedState(current, status: "shutting-down")
            s = s.setting("shutdownRequestedAt", .number(Double(now)))
            return s.setting("shutdownSource", .string(source.rawValue))
        }
    }

    /// Step 2 of shutdown (after sessions stopped): final `offline` state, close the socket.
    public func finishShutdown() async {
        stopping = true
        heartbeatTask?.cancel()
        if socket != nil, linkStatus == .connected {
            await updateDaemonState(ackTimeout: 2, maxTries: 2) { current in
                self.mergedState(current, status: "offline")
            }
        }
        loopTask?.cancel()
        wake?.resume()
        wake = nil
        if let s = socket { await s.disconnect() }
        socket = nil
        linkStatus = .offline
    }

    nonisolated func mergedState(_ current: JSON?, status: String) -> JSON {
        var o = current?.object ?? [:]
        for (k, v) in baseDaemonState(status).object! { o[k] = v }
        return .object(o)
    }

    // MARK: - main loop

    private func runLoop() async {
        var policy = ReconnectPolicy()
        var registered = false
        while !stopping && !Task.isCancelled {
            if !registered {
                switch await register() {
                case .ok:
                    registered = true
                case .tokenRejected:
                    linkStatus = .tokenRejected
                    Log.error("sync", "the server rejected the token (401) — run `happy auth login`; retrying in 60 s")
                    await sleep(seconds: 60)
                    continue
                case .retry(let why):
                    linkStatus = .offline
                    let d = policy.nextDelay()
                    Log.warn("sync", "registration failed: \(why); retrying in \(String(format: "%.1f", d)) s")
                    await sleep(seconds: d)
                    continue
                }
            }
            linkStatus = linkStatus == .tokenRejected ? .tokenRejected : .connecting
            let connectedAt = Date()
            let outcome = await connectAndServe()
            if stopping { break }
            switch outcome {
            case .tokenRejected:
                linkStatus = .tokenRejected
                Log.error("sync", "the server refused the socket: Invalid authentication token — run `happy auth login`; retrying in 60 s")
                await sleep(seconds: 60)
            case .lost(let why, let wasConnected):
                linkStatus = .offline
                if wasConnected && Date().timeIntervalSince(connectedAt) >= 30 { policy.reset() }
                let d = policy.nextDelay()
                Log.warn("sync", "server link lost: \(why); reconnecting in \(String(format: "%.1f", d)) s")
                await sleep(seconds: d)
            }
        }
    }

    private func sleep(seconds: Double) async {
        try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
    }

    enum RegisterOutcome { case ok, tokenRejected, retry(String) }

    /// `POST /v1/machines`; then push our metadata when the server's differs.
    private func register() async -> RegisterOutcome {
        let meta = localMetadata
        var dek: String? = nil
        if case .dataKey(let publicKey, let machineKey, _) = identity.credentials {
            dek = Base64.encode(DataKeyWrap.wrap(machineKey, recipientPublicKey: publicKey))
        }
        do {
            let rec = try await api.registerMachine(
                token: identity.credentials.token, id: identity.machineId,
                metadata: ValueCipher.encryptToBase64(meta, key: key, variant: variant),
                daemonState: ValueCipher.encryptToBase64(baseDaemonState("offline"), key: key, variant: variant),
                dataEncryptionKey: dek)
            metadataVersion = rec.metadataVersion
            metadata = rec.metadata.flatMap { ValueCipher.decryptBase64($0, key: key, variant: variant) }
            daemonStateVersion = rec.daemonStateVersion
            daemonState = rec.daemonState.flatMap { ValueCipher.decryptBase64($0, key: key, variant: variant) }
            Log.info("sync", "machine \(identity.machineId) registered (metadata v\(metadataVersion), state v\(daemonStateVersion))")
            return .ok
        } catch let e as APIError where e.isAuthRejection {
            return .tokenRejected
        } catch {
            return .retry(renderError(error))
        }
    }

    enum ServeOutcome { case tokenRejected, lost(String, wasConnected: Bool) }

    private func connectAndServe() async -> ServeOutcome {
        let auth: JSON = [
            "token": .string(identity.credentials.token),
            "clientType": "machine-scoped",
            "machineId": .string(identity.machineId),
            "happyClient": .string("cli-daemon/\(HappyVersion.current)"),
        ]
        let client = SocketIOClient(url: config.serverUrl, path: "/v1/updates", auth: auth, options: SocketIOOptions())
        installHandlers(client)
        socket = client
        do {
            try await client.connect()
        } catch let e as SocketIOError where e.isAuthRejection {
            socket = nil
            return .tokenRejected
        } catch {
            socket = nil
            return .lost(renderError(error), wasConnected: false)
        }
        if stopping { await client.disconnect(); return .lost("stopping", wasConnected: true) }
        linkStatus = .connected
        Log.info("sync", "connected to \(config.serverUrl)")
        await onConnected(client)
        // Wait until the connection ends.
        var reason = "disconnected"
        for await state in client.states {
            if case .disconnected(let why) = state { reason = why; break }
        }
        heartbeatTask?.cancel()
        heartbeatTask = nil
        socket = nil
        return .lost(reason, wasConnected: true)
    }

    private func onConnected(_ client: SocketIOClient) async {
        // RPC methods first, so the phone can reach us as soon as the server shows us online.
        for m in Self.rpcMethods {
            try? await client.emit("rpc-register", ["method": .string("\(identity.machineId):\(m)")])
        }
        if let meta = metadata, meta == localMetadata {
            // nothing to push
        } else {
            let wanted = localMetadata
            Task { await self.updateMetadata { _ in wanted } }
        }
        Task { await self.updateDaemonState(ackTimeout: 10, maxTries: 10) { current in self.mergedState(current, status: "running") } }
        startHeartbeat(client)
    }

    private func startHeartbeat(_ client: SocketIOClient) {
        heartbeatTask?.cancel()
        let period = max(0.05, config.daemon.heartbeatSeconds)
        let machineId = identity.machineId
        heartbeatTask = Task {
            while !Task.isCancelled {
                try? await client.emit("machine-alive", ["machineId": .string(machineId), "time": .number(Double(ISOTime.nowMs()))])
                try? await Task.sleep(nanoseconds: UInt64(period * 1e9))
            }
        }
    }

    // MARK: - versioned updates

    /// Compare-and-swap update of `daemonState`, serialized behind earlier updates.
    func updateDaemonState(ackTimeout: Double = 10, maxTries: Int = 10, _ transform: @escaping @Sendable (JSON?) -> JSON) async {
        await serialized {
            await self.versionedUpdate(field: "daemonState", event: "machine-update-state", ackTimeout: ackTimeout, maxTries: maxTries, transform)
        }
    }

    func updateMetadata(ackTimeout: Double = 10, maxTries: Int = 10, _ transform: @escaping @Sendable (JSON?) -> JSON) async {
        await serialized {
            await self.versionedUpdate(field: "metadata", event: "machine-update-metadata", ackTimeout: ackTimeout, maxTries: maxTries, transform)
        }
    }

    private func serialized(_ body: @escaping @Sendable () async -> Void) async {
        let previous = updateChain
        let task = Task {
            await previous?.value
            await body()
        }
        updateChain = task
        await task.value
    }

    private func versionedUpdate(field: String, event: String, ackTimeout: Double, maxTries: Int,
                                 _ transform: @Sendable (JSON?) -> JSON) async {
        var attempt = 0
        while attempt < maxTries {
            attempt += 1
            guard let client = socket else { return }
            let current = field == "metadata" ? metadata : daemonState
            let expected = field == "metadata" ? metadataVersion : daemonStateVersion
            let value = transform(current)
            let payload: JSON = [
                "machineId": .string(identity.machineId),
                field: .string(ValueCipher.encryptToBase64(value, key: key, variant: variant)),
                "expectedVersion": .int(expected),
            ]
            let ack: [JSON]
            do {
                ack = try await client.emitWithAck(event, payload, timeout: ackTimeout)
            } catch {
                Log.warn("sync", "\(event) got no answer: \(renderError(error))")
                return
            }
            guard let a = ack.first, let result = a["result"]?.string else {
                Log.warn("sync", "\(event): unexpected ack")
                return
            }
            switch result {
            case "success":
                let v = a["version"]?.int ?? expected + 1
                setField(field, value: value, version: v)
                return
            case "version-mismatch":
                let v = a["version"]?.int ?? expected
                let server = a[field]?.string.flatMap { ValueCipher.decryptBase64($0, key: key, variant: variant) }
                Log.info("sync", "\(event): version mismatch (expected \(expected), server \(v)); adopting and retrying")
                setField(field, value: server, version: v)
                let backoff = Double.random(in: 0...(0.05 * Double(min(attempt, 10))))
                try? await Task.sleep(nanoseconds: UInt64(backoff * 1e9))
            default:
                Log.warn("sync", "\(event) failed: \(a["message"]?.string ?? "error")")
                return
            }
        }
        Log.warn("sync", "\(event): gave up after \(maxTries) version conflicts")
    }

    private func setField(_ field: String, value: JSON?, version: Int) {
        if field == "metadata" {
            metadata = value
            metadataVersion = version
        } else {
            daemonState = value
            daemonStateVersion = version
        }
    }

    // MARK: - incoming events

    private nonisolated func installHandlers(_ client: SocketIOClient) {
        client.on("rpc-request") { [weak self] args, ack in
            guard let self else { return }
            let reply = await self.handleRPC(args.first ?? .null)
            await ack?([.string(reply)])
        }
        client.on("update") { [weak self] args, _ in
            guard let self, let u = args.first else { return }
            await self.applyUpdate(u)
        }
    }

    func applyUpdate(_ u: JSON) {
        guard let body = u["body"], body["t"]?.string == "update-machine",
              body["machineId"]?.string == identity.machineId else { return }
        if let m = body["metadata"], let v = m["version"]?.int {
            let value = m["value"]?.string.flatMap { ValueCipher.decryptBase64($0, key: key, variant: variant) }
            if v >= metadataVersion { setField("metadata", value: value, version: v) }
        }
        if let s = body["daemonState"], let v = s["version"]?.int {
            let value = s["value"]?.string.flatMap { ValueCipher.decryptBase64($0, key: key, variant: variant) }
            if v >= daemonStateVersion { setField("daemonState", value: value, version: v) }
        }
    }

    /// Decrypts, dispatches and encrypts one RPC; always returns one base64 string.
    func handleRPC(_ request: JSON) async -> String {
        let method = request["method"]?.string ?? ""
        let prefix = identity.machineId + ":"
        let name = method.hasPrefix(prefix) ? String(method.dropFirst(prefix.count)) : ""
        let result: JSON
        if !Self.rpcMethods.contains(name) {
            result = ["error": "Method not found"]
        } else {
            let params = request["params"]?.string.flatMap { ValueCipher.decryptBase64($0, key: key, variant: variant) }
            if params == nil && name != "stop-daemon" {
                result = ["error": "Invalid params: could not decrypt"]
            } else {
                result = await dispatchRPC(name, params ?? .null)
            }
        }
        Log.info("rpc", "\(name.isEmpty ? method : name) → \(result["error"] != nil ? "error" : "ok")")
        return ValueCipher.encryptToBase64(result, key: key, variant: variant)
    }

    func dispatchRPC(_ name: String, _ params: JSON) async -> JSON {
        switch name {
        case "spawn-happy-session":
            guard let dir = params["directory"]?.string, !dir.isEmpty else { return ["error": "Directory is required"] }
            if let agent = params["agent"]?.string, agent != "claude" {
                return ["error": .string("Unsupported agent type: '\(agent)'. Only claude is supported by this daemon.")]
            }
            let approved = params["approvedNewDirectoryCreation"]?.bool == true
            if !FileIO.isDirectory(dir) && !approved {
                return ["type": "requestToApproveDirectoryCreation", "directory": .string(dir)]
            }
            var env: [String: String] = [:]
            for (k, v) in params["environmentVariables"]?.object ?? [:] {
                if let s = v.string { env[k] = s }
            }
            let req = SpawnRequest(directory: dir, prompt: params["prompt"]?.string, createDirectory: approved,
                                   environmentVariables: env, startedBy: "mobile-app")
            do {
                let rec = try await hooks.sessions.spawn(req)
                return ["type": "success", "sessionId": .string(rec.id)]
            } catch {
                return ["error": .string((error as? HappyError)?.what ?? "\(error)")]
            }
        case "stop-session":
            guard let id = params["sessionId"]?.string, !id.isEmpty else { return ["error": "Session ID is required"] }
            do {
                _ = try await hooks.sessions.stop(id, reason: .requested)
                return ["message": "Session stopped"]
            } catch {
                return ["error": .string((error as? HappyError)?.what ?? "Session not found or failed to stop")]
            }
        case "stop-daemon":
            let shutdown = hooks.requestShutdown
            Task {
                try? await Task.sleep(nanoseconds: 100_000_000)
                await shutdown(.mobileApp)
            }
            return ["message": "Daemon stop request acknowledged, starting shutdown sequence..."]
        default:
            return ["error": "Method not found"]
        }
    }
}
