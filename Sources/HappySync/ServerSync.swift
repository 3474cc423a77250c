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

/// `MachineRegistry` over the REST client: 401/403 → `.tokenRejected`, anything else
/// (network, 5xx, unexpected answers) → `.failed` (retried on the reconnect schedule).
public struct HappyServerRegistry: MachineRegistry {
    public let api: HappyServerAPI
    public init(api: HappyServerAPI) { self.api = api }

    public func register(id: String, metadata: String, daemonState: String, dataEncryptionKey: String?) async throws -> RegisteredMachine {
        do {
            let rec = try await api.createMachine(id: id, metadata: metadata, daemonState: daemonState, dataEncryptionKey: dataEncryptionKey)
            return RegisteredMachine(metadata: rec.metadata, metadataVersion: rec.metadataVersion,
                                     daemonState: rec.daemonState, daemonStateVersion: rec.daemonStateVersion,
                                     dataEncryptionKey: rec.dataEncryptionKey)
        } catch let e as APIError where e.isTokenRejected {
            throw MachineRegistrationError.tokenRejected
        } catch {
            throw MachineRegistrationError.failed(renderError(error))
        }
    }
}

/// The daemon's whole link with the server: the machine link (registration, machine
/// socket, machine RPCs) and, with `sessions.sync`, the session links (SPEC §7).
public actor ServerSync: ServerLink {
    public let machine: MachineSync
    public let sessionSync: SessionSyncManager?
    /// How long the end of the shutdown gives session links to send their last messages.
    let sessionShutdownSeconds: Double

    public init(machine: MachineSync, sessionSync: SessionSyncManager?, sessionShutdownSeconds: Double = 1) {
        self.machine = machine
        self.sessionSync = sessionSync
        self.sessionShutdownSeconds = sessionShutdownSeconds
    }

    public func start() async {
        await machine.start()
        await sessionSync?.start()
    }

    public func status() async -> ServerLinkStatus { await machine.status() }

    public func shutdown(source: ShutdownSource) async {
        await beginShutdown(source: source)
        await finishShutdown()
    }

    public func beginShutdown(source: ShutdownSource) async { await machine.beginShutdown(source: source) }

    public func finishShutdown() async {
        await sessionSync?.shutdown(seconds: sessionShutdownSeconds)
        await machine.finishShutdown()
    }

    /// The machine metadata this daemon publishes (SPEC §4.4).
    public static func machineMetadata(config: HappyConfig, env: [String: String], now: Int64 = ISOTime.nowMs()) -> JSON {
        let path = env["PATH"]
        func onPath(_ name: String) -> Bool { ExecutableLookup.resolve(name, path: path) != nil }
        return [
            "host": .string(hostName()), "platform": "linux", "happyCliVersion": .string(HappyVersion.current),
            "homeDir": .string(Paths.userHome(env)), "happyHomeDir": .string(config.homeDir),
            "happyLibDir": .string(Paths.dirname(ProcessProbe.executablePath())),
            "cliAvailability": [
                "claude": .bool(ExecutableLookup.resolve(config.claude.command, path: path) != nil),
                "codex": .bool(onPath("codex")), "gemini": .bool(onPath("gemini")), "openclaw": .bool(onPath("openclaw")),
                "detectedAt": .number(Double(now)),
            ],
            "resumeSupport": [
                "rpcAvailable": true, "requiresSameMachine": true, "requiresHappyAgentAuth": false,
                "happyAgentAuthenticated": false, "detectedAt": .number(Double(now)),
            ],
            "profile": .string(config.profile),
        ]
    }

    public static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The `ServerLinkFactory` of `daemon start-sync`: nil (server `no-credentials`)
    /// without usable credentials in `access.key`; otherwise the machine link with the
    /// machine id from settings.json (created if absent) and the session links.
    public static func factory(env: [String: String] = ProcessInfo.processInfo.environment) -> ServerLinkFactory {
        return { ctx in
            let cfg = ctx.config
            let store = CredentialsStore(home: cfg.home)
            let creds: Credentials
            switch store.load() {
            case .ok(let c): creds = c
            case .missing: return nil
            case .invalid(let why):
                Log.warn("sync", "access.key is not usable (\(why)) — run `happy auth login`; running offline")
                return nil
            }
            guard let machineId = SettingsStore(home: cfg.home).ensureMachineIdRepairing() else { return nil }
            let net = NetOptions.environment(env)
            let api = HappyServerAPI(serverUrl: cfg.serverUrl, transport: HTTPClient(options: net), token: creds.token)
            var timing = MachineSync.Timing()
            timing.heartbeatSeconds = cfg.daemon.heartbeatSeconds
            var accountPublicKey: [UInt8]? = nil
            var secret: [UInt8]? = nil
            switch creds {
            case .dataKey(let pk, _, _): accountPublicKey = pk
            case .legacy(let s, _): secret = s
            }
            let variant = creds.variant.cipherVariant
            let identity = MachineSync.Identity(
                machineId: machineId, token: creds.token, key: creds.encryptionKey, variant: variant,
                accountPublicKey: accountPublicKey, pid: ctx.pid, httpPort: ctx.httpPort, startedAt: ctx.startedAt,
                metadata: machineMetadata(config: cfg, env: env))
            let url = cfg.serverUrl
            let sioOptions = SocketIOOptions(net: net)
            let token = creds.token
            let auditor: (any RPCAuditing)? = RPCAuditLog.forConfig(cfg)
            let machineBox = Locked<MachineSync?>(nil)
            var sessionSync: SessionSyncManager? = nil
            if cfg.sessions.sync {
                let account = SyncAccount(serverUrl: url, token: token, variant: variant, secret: secret,
                                          accountPublicKey: accountPublicKey, api: api,
                                          makeSocket: { auth in
                                              SocketIOSyncSocket(client: SocketIOClient(url: url, path: "/v1/updates", auth: auth, options: sioOptions))
                                          })
                let info = SyncMachineInfo(host: hostName(), homeDir: Paths.userHome(env), happyHomeDir: cfg.homeDir,
                                           machineId: { await machineBox.get?.machineId ?? machineId })
                sessionSync = SessionSyncManager(account: account, machine: info, sessions: ctx.sessions, layout: cfg.home,
                                                 audit: auditor, toolMethods: { id, dir in
                                                     RPCMethod.tools(.session(id: id, directory: dir, config: cfg, environment: env))
                                                 })
            }
            let methods = MachineRPC.methods(sessions: ctx.sessions, sessionSync: sessionSync, home: Paths.userHome(env),
                                             requestShutdown: ctx.requestShutdown,
                                             tools: RPCMethod.tools(.machine(config: cfg, environment: env)))
            let home = cfg.home
            let machine = MachineSync(identity: identity, timing: timing, registry: HappyServerRegistry(api: api),
                                      methods: methods, audit: auditor,
                                      saveMachineId: { id in
                                          do { try SettingsStore(home: home).update { $0["machineId"] = .string(id) } } catch {
                                              Log.error("sync", "cannot save the new machine id: \(renderError(error))")
                                          }
                                      },
                                      makeSocket: { mid in
                                          SocketIOSyncSocket(client: SocketIOClient(url: url, path: "/v1/updates",
                                                                                    auth: MachineSync.socketAuth(token: token, machineId: mid),
                                                                                    options: sioOptions))
                                      })
            machineBox.withLock { $0 = machine }
            Log.info("sync", "machine \(machineId), \(creds.variant.rawValue) credentials, server \(url)"
                     + (cfg.sessions.sync ? "" : "; sessions stay local (sessions.sync: false)"))
            return ServerSync(machine: machine, sessionSync: sessionSync)
        }
    }
}
