import FoundationEssentials
import Dispatch
import CPosix
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// What the control server asks of the application (routing, validation).
public protocol ControlRequestHandler: Sendable {
    /// Runs on the event-loop thread; must be quick. A response, or nil to go async.
    func immediate(_ request: HTTPRequest) -> HTTPResponse?
    /// Runs on the cooperative pool for requests `immediate` left.
    func handle(_ request: HTTPRequest) async -> HTTPResponse
    /// The answer to a request that could not be parsed (431, 413, 400). `head` is the
    /// request head when it was complete (lets the handler apply its check order).
    func parseErrorResponse(_ error: HTTPParseError, head: (startLine: [Substring], headers: HTTPHeaders)?) -> HTTPResponse
}

/// HTTP/1.1 server on 127.0.0.1 over POSIX sockets: one dedicated thread runs an epoll
/// loop with non-blocking sockets; complete requests go to the handler, responses come
/// back through a queue + eventfd. Keep-alive, pipelining (one request in flight per
/// connection), bounded buffers. Input never crashes it.
///
/// Slow or hostile local clients cannot starve it:
/// - every connection has a deadline that more bytes do not push back: `idleTimeout`
///   between requests, `requestTimeout` for a whole request (head and body) from its
///   first byte, and again for a response to be taken; it is dropped when it passes
///   (never while its handler runs);
/// - at most `maxConnections` at once, kept below the process's descriptor limit; a new
///   connection beyond it evicts the connection that has waited longest without a
///   request in its handler, so the owner's CLI is still served by a full server;
/// - out of descriptors (`EMFILE`/`ENFILE`), it evicts one waiting connection and stops
///   polling the listening socket for `acceptPause` seconds instead of spinning.
public final class ControlServer: @unchecked Sendable {
    public let requestedPort: Int
    public let idleTimeout: Double
    public let requestTimeout: Double
    /// Connections served at once: the requested number, lowered to leave descriptors
    /// for everything else the process holds (`connectionCap`).
    public let maxConnections: Int
    public let acceptPause: Double
    private let handler: ControlRequestHandler
    private let maxHeaderBytes: Int
    private let maxBodyBytes: Int

    private var listenFd: Int32 = -1
    private var epfd: Int32 = -1
    private var wakeFd: Int32 = -1
    private(set) public var port: Int = 0

    private enum Phase { case fresh, idle, request, busy, writing }
    private final class Conn {
        let id: UInt64
        let fd: Int32
        var parser: HTTPMessageParser
        var out: [UInt8] = []
        var outOff = 0
        var phase: Phase = .fresh
        /// Dropped at this time unless busy; never moved by more bytes of the same phase.
        var deadline: Double
        /// When the current wait began (eviction picks the oldest).
        var since: Double
        var busy = false
        var closeAfterWrite = false
        var readClosed = false
        var wantWrite = false
        init(id: UInt64, fd: Int32, parser: HTTPMessageParser, now: Double, deadline: Double) {
            self.id = id; self.fd = fd; self.parser = parser; self.since = now; self.deadline = deadline
        }
        var pending: Int { out.count - outOff }
    }
    private var conns: [UInt64: Conn] = [:]
    private var nextId: UInt64 = 2
    /// While set, the listening socket is out of the epoll set (descriptor exhaustion).
    private var acceptPausedUntil: Double?

    private let qLock = Lock()
    private var completions: [(UInt64, HTTPResponse, Bool)] = []
    private var stopRequested = false
    private let stopped = DispatchSemaphore(value: 0)
    private var running = false

    /// Counters for tests and diagnostics.
    public struct Stats: Sendable {
        public var accepted = 0, rejected = 0, requests = 0, open = 0
        /// Dropped at their deadline (idle, slow request, response not taken).
        public var timedOut = 0
        /// Closed to make room for a new connection (at the cap or out of descriptors).
        public var evicted = 0
        /// `accept` failed with EMFILE/ENFILE (each pauses the listening socket).
        public var acceptPauses = 0
    }
    private var _stats = Stats()
    public var stats: Stats { qLock.lock(); defer { qLock.unlock() }; return _stats }

    /// - requestTimeout: defaults to `idleTimeout`.
    /// - maxConnections: an upper bound; the effective value also respects the
    ///   descriptor limit (`fdLimit`, default the soft RLIMIT_NOFILE).
    public init(port: Int, handler: ControlRequestHandler, idleTimeout: Double = 10, requestTimeout: Double? = nil,
                maxConnections: Int = 1024, fdLimit: Int? = nil, acceptPause: Double = 0.1,
                maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 1 << 20) {
        self.requestedPort = port
        self.handler = handler
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout ?? idleTimeout
        self.maxConnections = Self.connectionCap(requested: maxConnections, fdLimit: fdLimit ?? Int(cposix_fd_limit()))
        self.acceptPause = acceptPause
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Keeps a quarter of the descriptors (at least 64) for the rest of the process:
    /// session files and pipes, the log, server connections, files being read.
    public static func connectionCap(requested: Int, fdLimit: Int) -> Int {
        let reserve = max(64, fdLimit / 4)
        return max(8, min(requested, fdLimit - reserve))
    }

    /// Binds 127.0.0.1:port; returns the port actually used. Throws `listenFailed`
    /// (EADDRINUSE is reported by the caller as a busy port).
    @discardableResult
    public func bind() throws -> Int {
        let fd = cposix_listen_loopback(Int32(requestedPort), 1024)
        if fd < 0 {
            throw ControlServerError.bindFailed(port: requestedPort, errno: -fd)
        }
        listenFd = fd
        port = Int(cposix_local_port(fd))
        return port
    }

    /// Starts the loop thread (after `bind`).
    public func start() throws {
        if listenFd < 0 { try bind() }
        epfd = cposix_epoll_create()
        wakeFd = cposix_eventfd()
        guard epfd >= 0, wakeFd >= 0 else { throw ControlServerError.setupFailed(errnoString()) }
        _ = cposix_epoll_ctl(epfd, 0, listenFd, 1, 0)
        _ = cposix_epoll_ctl(epfd, 0, wakeFd, 1, 1)
        running = true
        OSThread.start(name: "happy-http-server") { [self] in self.loop() }
    }

    /// Stops accepting, flushes pending responses (≤ 1 s), closes everything. Waits ≤ `timeout`.
    public func stop(timeout: Double = 2) {
        qLock.lock()
        let wasRunning = running
        stopRequested = true
        qLock.unlock()
        guard wasRunning else {
            if listenFd >= 0 { close(listenFd); listenFd = -1 }
            return
        }
        _ = cposix_eventfd_signal(wakeFd)
        _ = stopped.wait(timeout: .now() + timeout)
    }

    private func now() -> Double { MonotonicClock.now() }

    private func loop() {
        var datas = [UInt64](repeating: 0, count: 256)
        var evs = [Int32](repeating: 0, count: 256)
        var lastSweep = now()
        var stopDeadline: Double?
        while true {
            qLock.lock()
            let stopping = stopRequested
            qLock.unlock()
            if stopping && stopDeadline == nil {
                stopDeadline = now() + 1
                if listenFd >= 0 {
                    if acceptPausedUntil == nil { _ = cposix_epoll_ctl(epfd, 2, listenFd, 0, 0) }
                    close(listenFd)
                    listenFd = -1
                    acceptPausedUntil = nil
                }
            }
            if let d = stopDeadline {
                if now() > d || conns.values.allSatisfy({ $0.pending == 0 }) { break }
            }
            if let until = acceptPausedUntil, now() >= until, listenFd >= 0 {
                acceptPausedUntil = nil
                _ = cposix_epoll_ctl(epfd, 0, listenFd, 1, 0)
            }
            var timeoutMs: Int32 = stopDeadline != nil ? 20 : (conns.isEmpty ? 2000 : 250)
            if let until = acceptPausedUntil {
                timeoutMs = min(timeoutMs, Int32(max(1, ((until - now()) * 1000).rounded(.up))))
            }
            let n = cposix_epoll_wait(epfd, &datas, &evs, 256, timeoutMs)
            if n > 0 {
                for i in 0..<Int(n) {
                    let d = datas[i]
                    if d == 0 { acceptAll() } else if d == 1 { _ = cposix_eventfd_drain(wakeFd); drainCompletions() } else if let c = conns[d] {
                        let e = evs[i]
                        if e & 1 != 0 || e & 4 != 0 { readFrom(c) }
                        if let c = conns[d], e & 2 != 0 { flush(c, resume: true) }
                    }
                }
            }
            drainCompletions()
            let t = now()
            if t - lastSweep >= 0.25 {
                lastSweep = t
                sweepDeadlines(t)
            }
        }
        for c in conns.values { closeConn(c) }
        if listenFd >= 0 { close(listenFd); listenFd = -1 }
        close(wakeFd)
        close(epfd)
        qLock.lock(); running = false; qLock.unlock()
        stopped.signal()
    }

    private func acceptAll() {
        var evictedForDescriptors = false
        while listenFd >= 0 && acceptPausedUntil == nil {
            let fd = cposix_accept4_nonblock(listenFd)
            if fd < 0 {
                let e = -fd
                if e == EINTR || e == ECONNABORTED { continue }
                if e == EMFILE || e == ENFILE {
                    qLock.lock(); _stats.acceptPauses += 1; qLock.unlock()
                    // Free one descriptor for the next client (the owner's CLI), once per
                    // round, then stop polling the listening socket for a moment: it stays
                    // readable while the backlog is full, and polling it would spin.
                    if !evictedForDescriptors && evictOldest() { evictedForDescriptors = true; continue }
                    pauseAccepting()
                }
                return  // EAGAIN, or an error to retry on the next readiness
            }
            if conns.count >= maxConnections && !evictOldest() {
                close(fd)
                qLock.lock(); _stats.rejected += 1; qLock.unlock()
                continue
            }
            let id = nextId
            nextId += 1
            let t = now()
            let c = Conn(id: id, fd: fd, parser: HTTPMessageParser(kind: .request, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes),
                         now: t, deadline: t + idleTimeout)
            conns[id] = c
            rearm(c, t)
            _ = cposix_epoll_ctl(epfd, 0, fd, 1, id)
            qLock.lock(); _stats.accepted += 1; _stats.open = conns.count; qLock.unlock()
        }
    }

    private func pauseAccepting() {
        guard acceptPausedUntil == nil, listenFd >= 0 else { return }
        acceptPausedUntil = now() + acceptPause
        _ = cposix_epoll_ctl(epfd, 2, listenFd, 0, 0)
    }

    /// Closes the connection that has waited longest without a request in its handler.
    /// False when every connection is busy.
    @discardableResult
    private func evictOldest() -> Bool {
        var victim: Conn?
        for c in conns.values where !c.busy {
            if victim == nil || c.since < victim!.since || (c.since == victim!.since && c.id < victim!.id) { victim = c }
        }
        guard let victim else { return false }
        closeConn(victim)
        qLock.lock(); _stats.evicted += 1; qLock.unlock()
        return true
    }

    /// Deadline bookkeeping after anything that can change what a connection waits for.
    /// A deadline is set when a phase begins and only then: bytes trickling in one at a
    /// time do not extend it.
    private func rearm(_ c: Conn, _ t: Double) {
        let phase: Phase
        if c.busy { phase = .busy } else if c.pending > 0 { phase = .writing } else if c.parser.isInsideMessage { phase = .request } else { phase = .idle }
        guard phase != c.phase else { return }
        c.phase = phase
        c.since = t
        switch phase {
        case .idle: c.deadline = t + idleTimeout
        case .request, .writing: c.deadline = t + requestTimeout
        case .busy, .fresh: c.deadline = .infinity
        }
    }

    private func readFrom(_ c: Conn) {
        var buf = [UInt8](repeating: 0, count: 16 * 1024)
        var rounds = 0
        while rounds < 8 && !c.readClosed {
            rounds += 1
            let n = buf.withUnsafeMutableBytes { read(c.fd, $0.baseAddress!, $0.count) }
            if n > 0 {
                if !c.closeAfterWrite {
                    buf.withUnsafeBytes { c.parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    rearm(c, now())
                }
                if c.parser.bufferedByteCount > maxHeaderBytes + maxBodyBytes + 64 * 1024 {
                    // Far more than one request can need: an abusive client.
                    closeConn(c)
                    return
                }
                continue
            }
            if n == 0 { c.readClosed = true; break }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
            c.readClosed = true
            break
        }
        if c.readClosed {
            // Peer half-closed: answer what it sent, then close.
            _ = cposix_epoll_ctl(epfd, 1, c.fd, c.wantWrite ? 2 : 0, c.id)
            processBuffered(c)
            if conns[c.id] != nil && !c.busy && c.pending == 0 { closeConn(c) }
            return
        }
        processBuffered(c)
    }

    /// Parses and dispatches buffered requests while the connection is free.
    private func processBuffered(_ c: Conn) {
        defer { if conns[c.id] != nil { rearm(c, now()) } }
        while conns[c.id] != nil && !c.busy && !c.closeAfterWrite && c.pending < (1 << 20) {
            let req: HTTPRequest?
            do {
                req = try c.parser.nextRequest()
            } catch let e as HTTPParseError {
                let head = try? c.parser.peekHead()
                let resp = handler.parseErrorResponse(e, head: head)
                enqueue(c, resp, keepAlive: false)
                shutdown(c.fd, Int32(SHUT_RD))
                return
            } catch {
                enqueue(c, HTTPResponse(status: 400), keepAlive: false)
                return
            }
            guard let req else { return }
            // A new request may already be buffered behind this one: its time starts now.
            c.phase = .fresh
            qLock.lock(); _stats.requests += 1; qLock.unlock()
            let keep = req.keepAlive
            if let r = handler.immediate(req) {
                enqueue(c, r, keepAlive: keep)
                continue
            }
            c.busy = true
            let id = c.id
            let h = handler
            Task { [weak self] in
                let r = await h.handle(req)
                self?.complete(id, r, keepAlive: keep)
            }
        }
    }

    private func complete(_ id: UInt64, _ r: HTTPResponse, keepAlive: Bool) {
        qLock.lock()
        completions.append((id, r, keepAlive))
        qLock.unlock()
        _ = cposix_eventfd_signal(wakeFd)
    }

    private func drainCompletions() {
        qLock.lock()
        let items = completions
        completions.removeAll()
        qLock.unlock()
        for (id, r, keep) in items {
            guard let c = conns[id] else { continue }
            c.busy = false
            enqueue(c, r, keepAlive: keep)
            if conns[id] != nil { processBuffered(c) }
            if conns[id] != nil && c.readClosed && !c.busy && c.pending == 0 { closeConn(c) }
        }
    }

    private func enqueue(_ c: Conn, _ r: HTTPResponse, keepAlive: Bool) {
        var resp = r
        let keep = keepAlive && !c.readClosed
        resp.headers.set("Connection", keep ? "keep-alive" : "close")
        if !keep { c.closeAfterWrite = true }
        if c.outOff > 0 && c.outOff == c.out.count { c.out.removeAll(keepingCapacity: true); c.outOff = 0 }
        c.out.append(contentsOf: resp.serialized())
        flush(c, resume: false)
    }

    private func flush(_ c: Conn, resume: Bool) {
        while c.pending > 0 {
            let n = c.out.withUnsafeBytes { send(c.fd, $0.baseAddress! + c.outOff, c.pending, Int32(MSG_NOSIGNAL)) }
            if n > 0 { c.outOff += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if !c.wantWrite {
                    c.wantWrite = true
                    _ = cposix_epoll_ctl(epfd, 1, c.fd, c.readClosed ? 2 : 3, c.id)
                }
                rearm(c, now())
                return
            }
            closeConn(c)
            return
        }
        c.out.removeAll(keepingCapacity: c.out.capacity <= 64 * 1024)
        c.outOff = 0
        if c.wantWrite {
            c.wantWrite = false
            _ = cposix_epoll_ctl(epfd, 1, c.fd, c.readClosed ? 0 : 1, c.id)
        }
        if c.closeAfterWrite && !c.busy { closeConn(c); return }
        if resume && !c.busy { processBuffered(c) } else { rearm(c, now()) }
    }

    private func sweepDeadlines(_ t: Double) {
        for c in Array(conns.values) where !c.busy && t > c.deadline {
            closeConn(c)
            qLock.lock(); _stats.timedOut += 1; qLock.unlock()
        }
    }

    private func closeConn(_ c: Conn) {
        guard conns.removeValue(forKey: c.id) != nil else { return }
        _ = cposix_epoll_ctl(epfd, 2, c.fd, 0, 0)
        close(c.fd)
        qLock.lock(); _stats.open = conns.count; qLock.unlock()
    }
}

public enum ControlServerError: Error, Equatable {
    case bindFailed(port: Int, errno: Int32)
    case setupFailed(String)
}
