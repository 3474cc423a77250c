import Foundation
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// An in-memory Happy Server for machine-sync unit tests: compare-and-swap updates
/// with the acks of protocol sheet §6.2, an event log, scripted failures.
final class FakeSyncServer: @unchecked Sendable {
    struct Sent: Sendable { let event: String; let payload: JSON; let socket: Int }
    struct State {
        var metadata: String? = nil
        var metadataVersion = 0
        var daemonState: String? = nil
        var daemonStateVersion = 0
        var registrations: [(metadata: String, daemonState: String, dek: String?)] = []
        var dataEncryptionKey: String? = nil
        var registerFailures: [MachineRegistrationError] = []
        var connectFailures: [SocketIOError] = []
        var sent: [Sent] = []
        var sockets: [FakeSyncSocket] = []
        /// Answer every update with version-mismatch (bumping the version each time).
        var alwaysMismatch = false
        /// Answer updates with `{result: error}`.
        var answerError = false
        /// Answer this many updates with `{result: error, message: Machine not found}`.
        var notFoundLeft = 0
        /// Never ack versioned updates.
        var silent = false
    }
    let state = Locked(State())
    let key: [UInt8]
    let variant: EncryptionVariant

    init(key: [UInt8], variant: EncryptionVariant) {
        self.key = key
        self.variant = variant
    }

    func enc(_ v: JSON) -> String { ValueCipher.encryptToBase64(v, key: key, variant: variant) }
    func dec(_ s: String?) -> JSON? { s.flatMap { ValueCipher.decryptBase64($0, key: key, variant: variant) } }

    var sent: [Sent] { state.get.sent }
    func events(_ name: String) -> [Sent] { sent.filter { $0.event == name } }
    /// Decrypted daemon states sent with machine-update-state, in order.
    var statesSent: [JSON] { events("machine-update-state").compactMap { dec($0.payload["daemonState"]?.string) } }
    var socketCount: Int { state.get.sockets.count }
    var current: FakeSyncSocket? { state.get.sockets.last }

    func makeSocket() -> SyncSocket {
        let s = state.withLock { st -> FakeSyncSocket in
            let s = FakeSyncSocket(server: self, index: st.sockets.count)
            st.sockets.append(s)
            return s
        }
        return s
    }

    /// The server side of one client packet; returns the ack (nil: no ack).
    func handle(_ event: String, _ payload: JSON, socket: Int) -> JSON? {
        state.withLock { st -> JSON? in
            st.sent.append(Sent(event: event, payload: payload, socket: socket))
            guard event == "machine-update-state" || event == "machine-update-metadata" else { return nil }
            if st.silent { return .null }
            if st.answerError { return ["result": "error", "message": "Invalid parameters"] }
            if st.notFoundLeft > 0 {
                st.notFoundLeft -= 1
                return ["result": "error", "message": "Machine not found"]
            }
            let field = event == "machine-update-state" ? "daemonState" : "metadata"
            let expected = payload["expectedVersion"]?.int ?? -1
            let value = payload[field]?.string ?? ""
            var version = field == "metadata" ? st.metadataVersion : st.daemonStateVersion
            let stored = field == "metadata" ? st.metadata : st.daemonState
            if st.alwaysMismatch {
                version += 1
                if field == "metadata" { st.metadataVersion = version } else { st.daemonStateVersion = version }
                return ["result": "version-mismatch", "version": .int(version), field: .optional(stored)]
            }
            guard expected == version else {
                return ["result": "version-mismatch", "version": .int(version), field: .optional(stored)]
            }
            version += 1
            if field == "metadata" { st.metadata = value; st.metadataVersion = version } else { st.daemonState = value; st.daemonStateVersion = version }
            return ["result": "success", "version": .int(version), field: .string(value)]
        }
    }
}

final class FakeSyncSocket: SyncSocket, @unchecked Sendable {
    let server: FakeSyncServer
    let index: Int
    private struct S {
        var handlers: [String: SyncEventHandler] = [:]
        var connected = false
        var ended: String?
        var waiters: [CheckedContinuation<String, Never>] = []
    }
    private let s = Locked(S())

    init(server: FakeSyncServer, index: Int) {
        self.server = server
        self.index = index
    }

    var isConnected: Bool { s.get.connected }

    func on(_ event: String, _ handler: @escaping SyncEventHandler) { s.withLock { $0.handlers[event] = handler } }

    func connect() async throws {
        let failure = server.state.withLock { st -> SocketIOError? in
            st.connectFailures.isEmpty ? nil : st.connectFailures.removeFirst()
        }
        if let failure {
            end("connect error")
            throw failure
        }
        s.withLock { $0.connected = true }
    }

    func emit(_ event: String, _ payload: JSON) async throws {
        guard isConnected else { throw SocketIOError.notConnected }
        _ = server.handle(event, payload, socket: index)
    }

    func emitWithAck(_ event: String, _ payload: JSON, timeout: Double) async throws -> [JSON] {
        guard isConnected else { throw SocketIOError.notConnected }
        let ack = server.handle(event, payload, socket: index)
        if ack == nil || ack == .null {
            try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
            throw SocketIOError.ackTimeout(event: event, seconds: timeout)
        }
        return [ack!]
    }

    func disconnect() async { end("io client disconnect") }

    /// Server-side drop.
    func drop(_ reason: String = "transport close") { end(reason) }

    private func end(_ reason: String) {
        let waiters = s.withLock { st -> [CheckedContinuation<String, Never>] in
            guard st.ended == nil else { return [] }
            st.connected = false
            st.ended = reason
            let w = st.waiters
            st.waiters = []
            return w
        }
        for w in waiters { w.resume(returning: reason) }
    }

    func waitUntilDisconnected() async -> String {
        await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
            let done = s.withLock { st -> String? in
                if let e = st.ended { return e }
                st.waiters.append(c)
                return nil
            }
            if let done { c.resume(returning: done) }
        }
    }

    /// Delivers a server event; returns the client's ack (if `wantsAck`).
    func deliver(_ event: String, _ args: [JSON], wantsAck: Bool = false) async -> [JSON]? {
        guard let h = s.get.handlers[event] else { return nil }
        guard wantsAck else { await h(args, nil); return nil }
        let box = Locked<[JSON]?>(nil)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Task { await h(args, { reply in box.withLock { $0 = reply }; c.resume() }) }
        }
        return box.get
    }
}

struct FakeRegistry: MachineRegistry {
    let server: FakeSyncServer
    func register(id: String, metadata: String, daemonState: String, dataEncryptionKey: String?) async throws -> RegisteredMachine {
        try server.state.withLock { st in
            if !st.registerFailures.isEmpty { throw st.registerFailures.removeFirst() }
            st.registrations.append((metadata, daemonState, dataEncryptionKey))
            if st.metadataVersion == 0 {
                st.metadata = metadata
                st.metadataVersion = 1
                st.daemonState = daemonState
                st.daemonStateVersion = 1
                st.dataEncryptionKey = dataEncryptionKey
            }
            return RegisteredMachine(metadata: st.metadata, metadataVersion: st.metadataVersion,
                                     daemonState: st.daemonState, daemonStateVersion: st.daemonStateVersion,
                                     dataEncryptionKey: st.dataEncryptionKey)
        }
    }
}

final class ShutdownRecorder: @unchecked Sendable {
    let calls = Locked<[ShutdownSource]>([])
    let keeps = Locked<[Bool]>([])
}

struct SyncHarness {
    let server: FakeSyncServer
    let sync: MachineSync
    let sessions: FakeSessions
    let shutdowns: ShutdownRecorder
    let machineId = "11111111-2222-4333-8444-555555555555"

    init(variant: EncryptionVariant = .legacy, metadataOnServer: JSON? = nil, timing: MachineSync.Timing? = nil,
         shutdownAckTimeout: Double = 0.3, tokenRejectedDelay: Double = 0.2, accountPublicKey: [UInt8]? = nil, configure: (inout FakeSyncServer.State) -> Void = { _ in }) {
        let key = SecureRandom.bytes(32)
        let server = FakeSyncServer(key: key, variant: variant)
        if let m = metadataOnServer {
            let e = server.enc(m)
            server.state.withLock { $0.metadata = e; $0.metadataVersion = 3 }
        }
        server.state.withLock { configure(&$0) }
        var t = timing ?? MachineSync.Timing()
        if timing == nil {
            t.heartbeatSeconds = 0.05
            t.tokenRejectedDelay = tokenRejectedDelay
            t.policy = ReconnectPolicy(schedule: [0.02, 0.04], steadyDelay: 0.05)
            t.ackTimeout = 0.5
            t.shutdownAckTimeout = shutdownAckTimeout
        }
        let sessions = FakeSessions()
        let rec = ShutdownRecorder()
        let id = MachineSync.Identity(machineId: machineId, token: "tok", key: key, variant: variant,
                                      accountPublicKey: accountPublicKey, pid: 4321, httpPort: 5555, startedAt: 1_700_000_000_000,
                                      metadata: ["host": "h", "platform": "linux", "happyCliVersion": "9.9.9",
                                                 "homeDir": "/home/u", "happyHomeDir": "/home/u/.happy", "profile": "default"])
        self.server = server
        self.sessions = sessions
        self.shutdowns = rec
        let methods = MachineRPC.methods(sessions: sessions, sessionSync: nil, home: "/home/u",
                                         requestShutdown: { src, keep in rec.calls.withLock { $0.append(src) }; rec.keeps.withLock { $0.append(keep) } })
        self.sync = MachineSync(identity: id, timing: t, registry: FakeRegistry(server: server), methods: methods,
                                makeSocket: { _ in server.makeSocket() })
    }

    /// A request as the phone would send it.
    func rpc(_ name: String, _ params: JSON?, rawParams: String? = nil) -> JSON {
        ["method": .string("\(machineId):\(name)"), "params": .string(rawParams ?? server.enc(params ?? [:]))]
    }

    func call(_ name: String, _ params: JSON?, rawParams: String? = nil) async -> JSON? {
        let (reply, _) = await sync.handleRPC(rpc(name, params, rawParams: rawParams))
        return server.dec(reply)
    }
}

extension FakeSessions {
    func setLimit(_ n: Int) { limit = n }
}
