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

/// What `POST /v1/machines` answered (the new or existing, unchanged record).
public struct RegisteredMachine: Sendable, Equatable {
    public var metadata: String?
    public var metadataVersion: Int
    public var daemonState: String?
    public var daemonStateVersion: Int
    /// The record's wrapped key: nil for a legacy record.
    public var dataEncryptionKey: String?
    public init(metadata: String?, metadataVersion: Int, daemonState: String?, daemonStateVersion: Int,
                dataEncryptionKey: String? = nil) {
        self.metadata = metadata
        self.metadataVersion = metadataVersion
        self.daemonState = daemonState
        self.daemonStateVersion = daemonStateVersion
        self.dataEncryptionKey = dataEncryptionKey
    }
}

/// How a registration failed: a rejected token (401/403, retried slowly) or anything
/// else (network, 5xx, ...: retried on the reconnect schedule).
public enum MachineRegistrationError: Error, Sendable, Equatable {
    case tokenRejected
    case failed(String)
}

/// The REST side of machine sync (`POST /v1/machines`). Throws `MachineRegistrationError`.
public protocol MachineRegistry: Sendable {
    func register(id: String, metadata: String, daemonState: String, dataEncryptionKey: String?) async throws -> RegisteredMachine
}

/// Replies to a server-initiated event that asked for an ack.
public typealias SyncAck = @Sendable ([JSON]) async -> Void
public typealias SyncEventHandler = @Sendable (_ args: [JSON], _ ack: SyncAck?) async -> Void

/// The socket side of machine sync: one connection attempt per instance (like
/// `SocketIOClient`). `connect()` throws `SocketIOError.connectError(message)` when the
/// server refuses (see `SocketIOError.isAuthRejection`).
public protocol SyncSocket: AnyObject, Sendable {
    func on(_ event: String, _ handler: @escaping SyncEventHandler)
    func connect() async throws
    func emit(_ event: String, _ payload: JSON) async throws
    func emitWithAck(_ event: String, _ payload: JSON, timeout: Double) async throws -> [JSON]
    /// Closes the connection (no-op when it already ended).
    func disconnect() async
    /// Returns when the connection ended, with the reason.
    func waitUntilDisconnected() async -> String
}

/// `SyncSocket` over the realtime module's Socket.IO client.
public final class SocketIOSyncSocket: SyncSocket, @unchecked Sendable {
    public let client: SocketIOClient
    public init(client: SocketIOClient) { self.client = client }

    public func on(_ event: String, _ handler: @escaping SyncEventHandler) {
        client.on(event) { args, ack in
            if let ack {
                await handler(args, { reply in await ack(reply) })
            } else {
                await handler(args, nil)
            }
        }
    }
    public func connect() async throws { try await client.connect() }
    public func emit(_ event: String, _ payload: JSON) async throws { try await client.emit(event, payload) }
    public func emitWithAck(_ event: String, _ payload: JSON, timeout: Double) async throws -> [JSON] {
        try await client.emitWithAck(event, payload, timeout: timeout)
    }
    public func disconnect() async { await client.disconnect() }
    public func waitUntilDisconnected() async -> String { await client.waitUntilDisconnected() }
}
