import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import HappyCore
import HappyNet

/// Errors of the realtime link (Socket.IO / Engine.IO).
public enum SocketIOError: HappyError, Equatable {
    /// The server refused the Socket.IO CONNECT (`connect_error`), with its message.
    case connectError(String)
    case connectTimeout(seconds: Double)
    case notConnected
    /// `connect()` was called twice: one connection per client object.
    case alreadyUsed
    case ackTimeout(event: String, seconds: Double)
    case disconnected(reason: String)
    case messageTooLarge(size: Int, limit: Int)
    case protocolError(String)
    case transport(NetError)

    public var what: String {
        switch self {
        case .connectError(let m): return "the server refused the realtime connection: \(m)"
        case .connectTimeout(let s): return "realtime connection not ready after \(NetError.formatSeconds(s))"
        case .notConnected: return "the realtime connection is not connected"
        case .alreadyUsed: return "this realtime client was already used; create a new one to reconnect"
        case .ackTimeout(let e, let s): return "no answer to '\(e)' within \(NetError.formatSeconds(s))"
        case .disconnected(let r): return "realtime connection closed: \(r)"
        case .messageTooLarge(let s, let l): return "message of \(s) bytes exceeds the limit of \(l) bytes"
        case .protocolError(let m): return "unexpected realtime data: \(m)"
        case .transport(let e): return e.what
        }
    }

    public var hint: String? {
        switch self {
        case .connectError(let m) where m.lowercased().contains("token"): return "run `happy auth login`"
        case .transport(let e): return e.hint
        default: return nil
        }
    }

    /// True when the server rejected the credentials (retry slowly, re-login).
    public var isAuthRejection: Bool {
        if case .connectError(let m) = self { return m.contains("authentication token") }
        return false
    }
}

public enum SocketIOState: Sendable, Equatable {
    case connecting
    case connected
    case disconnected(String)
}

public struct SocketIOOptions: Sendable {
    public var net: NetOptions
    /// Engine handshake + Socket.IO CONNECT ack.
    public var connectTimeout: Double
    /// Largest message sent or accepted (the server's default is 1 MB).
    public var maxMessageBytes: Int
    public var headers: HTTPHeaders
    /// Extra query parameters on the Engine.IO URL.
    public var query: [String: String]
    public var writeTimeout: Double
    /// Events received but not yet handled, at most (count and bytes). A server that
    /// floods faster than the handlers keep up gets its connection dropped, instead of
    /// the queue growing without bound.
    public var maxQueuedEvents: Int
    public var maxQueuedBytes: Int

    public init(net: NetOptions = NetOptions(), connectTimeout: Double = 20, maxMessageBytes: Int = 1_000_000,
                headers: HTTPHeaders = HTTPHeaders(), query: [String: String] = [:], writeTimeout: Double = 30,
                maxQueuedEvents: Int = 1000, maxQueuedBytes: Int = 16 << 20) {
        self.net = net
        self.connectTimeout = connectTimeout
        self.maxMessageBytes = maxMessageBytes
        self.headers = headers
        self.query = query
        self.writeTimeout = writeTimeout
        self.maxQueuedEvents = maxQueuedEvents
        self.maxQueuedBytes = maxQueuedBytes
    }
}

/// The server's request for an acknowledgement. Call it once (later calls are
/// ignored). Happy's `rpc-request` must be answered with exactly one argument.
public struct SocketIOAck: Sendable {
    let id: Int
    let client: SocketIOClient
    let used = Locked(false)

    public func callAsFunction(_ args: [JSON]) async {
        let first = used.withLock { u -> Bool in let was = u; u = true; return !was }
        guard first else { return }
        try? await client.sendPacket(SocketIOPacket(type: .ack, id: id, data: .array(args)).encoded())
    }
}

/// Socket.IO v5 packets on the default namespace.
struct SocketIOPacket: Equatable {
    enum Kind: Int { case connect = 0, disconnect, event, ack, connectError, binaryEvent, binaryAck }
    var type: Kind
    var nsp: String = "/"
    var id: Int? = nil
    var data: JSON? = nil

    func encoded() -> String {
        var s = String(type.rawValue)
        if nsp != "/" { s += nsp + "," }
        if let id { s += String(id) }
        if let data { s += data.serialized() }
        return s
    }

    static func decode(_ text: String) throws -> SocketIOPacket {
        let u = Array(text.utf8)
        guard let f = u.first, f >= 0x30, f <= 0x36, let kind = Kind(rawValue: Int(f - 0x30)) else {
            throw SocketIOError.protocolError("bad packet type")
        }
        var i = 1
        if kind == .binaryEvent || kind == .binaryAck {
            while i < u.count, u[i] != UInt8(ascii: "-") { i += 1 }
            i += 1
        }
        var p = SocketIOPacket(type: kind)
        if i < u.count, u[i] == UInt8(ascii: "/") {
            let s = i
            while i < u.count, u[i] != UInt8(ascii: ",") { i += 1 }
            p.nsp = String(decoding: u[s..<i], as: UTF8.self)
            i += 1
        }
        var id = 0, digits = 0
        while i < u.count, u[i] >= 0x30, u[i] <= 0x39, digits < 15 { id = id * 10 + Int(u[i] - 0x30); i += 1; digits += 1 }
        if digits > 0 { p.id = id }
        if i < u.count {
            do { p.data = try JSON.parse(u[i...]) } catch { throw SocketIOError.protocolError("malformed JSON payload") }
        }
        return p
    }
}

/// Socket.IO v5 client over Engine.IO v4 (websocket transport), default namespace.
/// One connection per object: to reconnect, create a new client (with
/// `ReconnectPolicy` for the delays). I/O runs on two dedicated threads per
/// connection (reader, writer); handlers run one at a time, in arrival order, on a
/// task of their own (a handler may await `emitWithAck`).
public final class SocketIOClient: @unchecked Sendable {
    public typealias Handler = @Sendable (_ args: [JSON], _ ack: SocketIOAck?) async -> Void

    public let url: String
    public let path: String
    public let options: SocketIOOptions
    private let auth: JSON

    /// connecting → connected → disconnected(reason); finishes after `disconnected`.
    public let states: AsyncStream<SocketIOState>
    private let stateCont: AsyncStream<SocketIOState>.Continuation

    private enum Phase { case idle, connecting, connected, ended }
    private struct Inbound: Sendable { let event: String; let args: [JSON]; let ackId: Int?; let size: Int }
    private struct State {
        var phase: Phase = .idle
        var engine: EngineIOConnection?
        var writer: SerialIOThread?
        var connectWaiter: CheckedContinuation<Void, Error>?
        var connectFailure: SocketIOError?
        var pendingAcks: [Int: CheckedContinuation<[JSON], Error>] = [:]
        var nextAckId = 0
        var handlers: [String: Handler] = [:]
        var inbound: AsyncStream<Inbound>.Continuation?
        /// Events yielded to the dispatcher and not handled yet.
        var queuedEvents = 0
        var queuedBytes = 0
        var endReasonOverride: String?
        var endReason: String?
        var endWaiters: [CheckedContinuation<String, Never>] = []
        var connectedAt: Date?
        var endedAt: Date?
    }
    private let state = Locked(State())

    public init(url: String, path: String = "/v1/updates", auth: JSON, options: SocketIOOptions = SocketIOOptions()) {
        self.url = url
        self.path = path
        self.auth = auth
        self.options = options
        (states, stateCont) = AsyncStream<SocketIOState>.makeStream(bufferingPolicy: .bufferingNewest(16))
    }

    /// The Engine.IO session id once connected.
    public var engineSid: String? { state.withLock { $0.engine?.sid } }
    public var isConnected: Bool { state.withLock { $0.phase == .connected } }
    /// Server's ping interval / timeout (seconds) once connected.
    public var pingSettings: (interval: Double, timeout: Double)? {
        state.withLock { s in s.engine.map { ($0.pingInterval, $0.pingTimeout) } }
    }

    public func on(_ event: String, _ handler: @escaping Handler) {
        state.withLock { $0.handlers[event] = handler }
    }

    /// Connects and resolves after the Socket.IO CONNECT ack. Throws
    /// `SocketIOError.connectError(message)` when the server refuses.
    public func connect() async throws {
        let ok = state.withLock { s -> Bool in
            guard s.phase == .idle else { return false }
            s.phase = .connecting
            return true
        }
        guard ok else { throw SocketIOError.alreadyUsed }
        stateCont.yield(.connecting)
        let endpoint = EngineIOConnection.endpoint(base: url, path: path, query: options.query)
        let wsOptions = WebSocket.Options(net: options.net, maxMessageBytes: options.maxMessageBytes, headers: options.headers,
                                          handshakeTimeout: options.connectTimeout, writeTimeout: options.writeTimeout)
        let started = Date()
        let engine: EngineIOConnection
        do {
            engine = try await runBlocking("happy-eio-open") { try EngineIOConnection.open(url: endpoint, options: wsOptions) }
        } catch {
            let e = (error as? NetError).map { SocketIOError.transport($0) } ?? (error as? SocketIOError) ?? .protocolError("\(error)")
            finish(reason: "transport error: \(e.what)")
            throw e
        }
        let writer = SerialIOThread(name: "happy-sio-writer")
        let (inbound, inboundCont) = AsyncStream<Inbound>.makeStream()
        state.withLock { s in s.engine = engine; s.writer = writer; s.inbound = inboundCont }
        startDispatcher(inbound)
        let remaining = max(0.1, options.connectTimeout - Date().timeIntervalSince(started))
        let timer = Task { [weak self] in
            try await Task.sleep(nanoseconds: UInt64(remaining * 1e9))
            self?.failConnect(.connectTimeout(seconds: self?.options.connectTimeout ?? remaining))
        }
        defer { timer.cancel() }
        let connectPacket = SocketIOPacket(type: .connect, data: auth.object == nil ? nil : auth).encoded()
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            let early = state.withLock { s -> SocketIOError? in
                if let f = s.connectFailure { return f }
                s.connectWaiter = cont
                return nil
            }
            if let early { cont.resume(throwing: early); return }
            OSThread.start(name: "happy-sio-reader") { [self] in
                let reason = engine.run(onMessage: { self.handleMessage($0) })
                self.finish(reason: reason)
            }
            writer.submit { [self] in
                do { try engine.send("4" + connectPacket) } catch {
                    self.failConnect(.transport((error as? NetError) ?? .connectionLost(target: url, reason: "\(error)")))
                }
            }
        }
    }

    private func failConnect(_ e: SocketIOError) {
        let (waiter, engine) = state.withLock { s -> (CheckedContinuation<Void, Error>?, EngineIOConnection?) in
            guard s.phase == .connecting else { return (nil, nil) }
            if s.connectFailure == nil { s.connectFailure = e }
            if case .connectError = e { s.endReasonOverride = "connect error" }
            let w = s.connectWaiter
            s.connectWaiter = nil
            return (w, s.engine)
        }
        waiter?.resume(throwing: e)
        engine?.close()
    }

    // MARK: inbound (reader thread)

    private func handleMessage(_ text: String) {
        let p: SocketIOPacket
        do { p = try SocketIOPacket.decode(text) } catch {
            Log.warn("realtime", "dropping a malformed Socket.IO packet (\(text.utf8.count) bytes)")
            return
        }
        guard p.nsp == "/" else { return }
        switch p.type {
        case .connect:
            let waiter = state.withLock { s -> CheckedContinuation<Void, Error>? in
                guard s.phase == .connecting else { return nil }
                s.phase = .connected
                s.connectedAt = Date()
                let w = s.connectWaiter
                s.connectWaiter = nil
                return w
            }
            if let waiter {
                stateCont.yield(.connected)
                waiter.resume()
            }
        case .connectError:
            let msg = p.data?["message"]?.string ?? p.data?.string ?? "connection refused"
            failConnect(.connectError(msg))
        case .event, .binaryEvent:
            guard let arr = p.data?.array, let name = arr.first?.string else { return }
            let size = text.utf8.count
            let maxEvents = options.maxQueuedEvents, maxBytes = options.maxQueuedBytes
            let (cont, flooded) = state.withLock { s -> (AsyncStream<Inbound>.Continuation?, EngineIOConnection?) in
                guard s.inbound != nil else { return (nil, nil) }
                if s.queuedEvents + 1 > maxEvents || s.queuedBytes + size > maxBytes {
                    s.endReasonOverride = s.endReasonOverride
                        ?? "inbound queue full: the server sent events faster than they were handled (\(s.queuedEvents) events, \(s.queuedBytes) bytes waiting)"
                    let engine = s.engine
                    s.inbound?.finish()
                    s.inbound = nil
                    return (nil, engine)
                }
                s.queuedEvents += 1
                s.queuedBytes += size
                return (s.inbound, nil)
            }
            if let flooded {
                flooded.close()
                return
            }
            cont?.yield(Inbound(event: name, args: Array(arr.dropFirst()), ackId: p.id, size: size))
        case .ack, .binaryAck:
            guard let id = p.id else { return }
            let c = state.withLock { $0.pendingAcks.removeValue(forKey: id) }
            c?.resume(returning: p.data?.array ?? [])
        case .disconnect:
            let engine = state.withLock { s -> EngineIOConnection? in
                s.endReasonOverride = s.endReasonOverride ?? "io server disconnect"
                return s.engine
            }
            engine?.close()
        }
    }

    private func startDispatcher(_ inbound: AsyncStream<Inbound>) {
        Task { [self] in
            for await ev in inbound {
                let h = state.withLock { $0.handlers[ev.event] }
                let ack = ev.ackId.map { SocketIOAck(id: $0, client: self) }
                if let h { await h(ev.args, ack) }
                state.withLock { s in
                    s.queuedEvents -= 1
                    s.queuedBytes -= ev.size
                }
            }
        }
    }

    /// The connection ended (reader thread finished, or the engine never opened).
    private func finish(reason raw: String) {
        let (reason, waiter, acks, inbound, writer, endWaiters, failure) = state.withLock { s in
            let reason = s.endReasonOverride ?? raw
            s.phase = .ended
            s.endReason = reason
            s.endedAt = Date()
            let r = (reason, s.connectWaiter, s.pendingAcks, s.inbound, s.writer, s.endWaiters, s.connectFailure)
            s.connectWaiter = nil
            s.pendingAcks = [:]
            s.inbound = nil
            s.endWaiters = []
            return r
        }
        waiter?.resume(throwing: failure ?? SocketIOError.disconnected(reason: reason))
        for (_, c) in acks { c.resume(throwing: SocketIOError.disconnected(reason: reason)) }
        inbound?.finish()
        writer?.stop()
        stateCont.yield(.disconnected(reason))
        stateCont.finish()
        for w in endWaiters { w.resume(returning: reason) }
        Log.info("realtime", "disconnected: \(reason)")
    }

    // MARK: outbound

    func sendPacket(_ packet: String) async throws {
        let (engine, writer) = state.withLock { s in (s.phase == .connected ? s.engine : nil, s.writer) }
        guard let engine, let writer else { throw SocketIOError.notConnected }
        let limit = min(options.maxMessageBytes, engine.maxPayload)
        let size = packet.utf8.count + 1
        if size > limit { throw SocketIOError.messageTooLarge(size: size, limit: limit) }
        do {
            try await writer.run { try engine.send("4" + packet) }
        } catch let e as NetError {
            engine.close()
            throw SocketIOError.transport(e)
        }
    }

    public func emit(_ event: String, _ payload: JSON) async throws {
        try await emit(event, args: [payload])
    }

    public func emit(_ event: String, args: [JSON]) async throws {
        try await sendPacket(SocketIOPacket(type: .event, data: .array([.string(event)] + args)).encoded())
    }

    public func emitWithAck(_ event: String, _ payload: JSON, timeout: Double) async throws -> [JSON] {
        try await emitWithAck(event, args: [payload], timeout: timeout)
    }

    /// Emits with an ack id and returns the ack's arguments.
    public func emitWithAck(_ event: String, args: [JSON], timeout: Double) async throws -> [JSON] {
        let id = state.withLock { s -> Int in let i = s.nextAckId; s.nextAckId += 1; return i }
        let packet = SocketIOPacket(type: .event, id: id, data: .array([.string(event)] + args)).encoded()
        let timer = Locked<Task<Void, Never>?>(nil)
        defer { timer.get?.cancel() }
        return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<[JSON], Error>) in
            let ok = state.withLock { s -> Bool in
                guard s.phase == .connected else { return false }
                s.pendingAcks[id] = cont
                return true
            }
            guard ok else { cont.resume(throwing: SocketIOError.notConnected); return }
            timer.withLock {
                $0 = Task { [weak self] in
                    try? await Task.sleep(nanoseconds: UInt64(max(0, timeout) * 1e9))
                    if Task.isCancelled { return }
                    self?.failAck(id, .ackTimeout(event: event, seconds: timeout))
                }
            }
            Task { [self] in
                do { try await self.sendPacket(packet) } catch {
                    self.failAck(id, (error as? SocketIOError) ?? .protocolError("\(error)"))
                }
            }
        }
    }

    private func failAck(_ id: Int, _ e: SocketIOError) {
        let c = state.withLock { $0.pendingAcks.removeValue(forKey: id) }
        c?.resume(throwing: e)
    }

    /// Sends DISCONNECT, closes the transport and waits for the reader to end.
    public func disconnect() async {
        let (engine, phase) = state.withLock { s -> (EngineIOConnection?, Phase) in
            if s.phase == .connected || s.phase == .connecting { s.endReasonOverride = s.endReasonOverride ?? "io client disconnect" }
            return (s.engine, s.phase)
        }
        if phase == .connected { try? await sendPacket(SocketIOPacket(type: .disconnect).encoded()) }
        if phase == .connecting { failConnect(.disconnected(reason: "io client disconnect")) }
        engine?.close()
        if engine != nil { _ = await waitUntilDisconnected() }
    }

    /// Waits until the connection has ended; returns the reason
    /// (`io server disconnect`, `io client disconnect`, `ping timeout`,
    /// `transport close`, `message too large`, `transport error: ...`,
    /// `inbound queue full: ...`).
    public func waitUntilDisconnected() async -> String {
        await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
            let done = state.withLock { s -> String? in
                if let r = s.endReason { return r }
                s.endWaiters.append(c)
                return nil
            }
            if let done { c.resume(returning: done) }
        }
    }

    /// Seconds from the CONNECT ack to the end of the connection (or now), for
    /// `ReconnectPolicy.connectionEnded(uptime:)`; 0 if it never connected.
    public var uptime: Double {
        state.withLock { s in s.connectedAt.map { (s.endedAt ?? Date()).timeIntervalSince($0) } ?? 0 }
    }

    /// Engine.IO pings answered on this connection.
    public var pongsSent: Int { state.withLock { $0.engine }?.pongsSent.get ?? 0 }
}
