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
                                     daemonState: rec.daemonState, daemonStateVersion: rec.daemonStateVersion)
        } catch let e as APIError where e.isTokenRejected {
            throw MachineRegistrationError.tokenRejected
        } catch {
            throw MachineRegistrationError.failed(renderError(error))
        }
    }
}

extension MachineSync {
    /// The `ServerLinkFactory` of `daemon start-sync`: nil (server `no-credentials`)
    /// without usable credentials in `access.key`; otherwise a machine-sync link with
    /// the machine id from settings.json (created if absent).
    public static func factory(env: [String: String] = ProcessInfo.processInfo.environment) -> ServerLinkFactory {
        return { ctx in
            let cfg = ctx.config
            let store = CredentialsStore(home: cfg.home)
            let creds: Credentials
            switch store.load() {
            case .ok(let c): creds = c
            case .missing: return nil
            case .invalid(let why):
                Log.warn("sync", "access.key is not usable (\(why)); running offline — run `happy auth login`")
                return nil
            }
            guard let machineId = SettingsStore(home: cfg.home).ensureMachineIdRepairing() else { return nil }
            let net = NetOptions.environment(env)
            let api = HappyServerAPI(serverUrl: cfg.serverUrl, transport: HTTPClient(options: net), token: creds.token)
            var timing = Timing()
            timing.heartbeatSeconds = cfg.daemon.heartbeatSeconds
            var accountPublicKey: [UInt8]? = nil
            if case .dataKey(let pk, _, _) = creds { accountPublicKey = pk }
            let identity = Identity(
                machineId: machineId, token: creds.token, key: creds.encryptionKey, variant: creds.variant.cipherVariant,
                accountPublicKey: accountPublicKey, pid: ctx.pid, httpPort: ctx.httpPort, startedAt: ctx.startedAt,
                metadata: localMetadata(homeDir: Paths.userHome(env), happyHomeDir: cfg.homeDir, profile: cfg.profile))
            let auth = socketAuth(token: creds.token, machineId: machineId)
            let url = cfg.serverUrl
            let sioOptions = SocketIOOptions(net: net)
            let requestShutdown = ctx.requestShutdown
            Log.info("sync", "machine \(machineId), \(creds.variant.rawValue) credentials, server \(url)")
            return MachineSync(identity: identity, timing: timing,
                               hooks: Hooks(sessions: ctx.sessions, requestShutdown: { requestShutdown($0, false) }),
                               registry: HappyServerRegistry(api: api),
                               makeSocket: { SocketIOSyncSocket(client: SocketIOClient(url: url, path: "/v1/updates", auth: auth, options: sioOptions)) })
        }
    }
}
