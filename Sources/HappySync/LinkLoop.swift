import HappyCore
import HappyRealtime

/// The life of a server link (SPEC §4.4): prepare (register the machine / create the
/// session over REST), then connect the socket and serve until it drops, again and again
/// on the reconnect schedule, for as long as the daemon runs. A rejected token is retried
/// every `tokenRejectedDelay` (60 s); the link never stops the daemon.
struct LinkLoop {
    enum Prepared { case ready, tokenRejected, retry(String) }
    enum Served { case tokenRejected, lost(String, uptime: Double) }

    let name: String
    var policy: ReconnectPolicy
    let tokenRejectedDelay: Double

    /// Runs until `stopping()` is true. `prepare` runs until it succeeds once (and again
    /// after `needsPrepare()` becomes true).
    mutating func run(stopping: @Sendable () async -> Bool,
                      setStatus: @Sendable (ServerLinkStatus) async -> Void,
                      needsPrepare: @Sendable () async -> Bool,
                      prepare: @Sendable () async -> Prepared,
                      serve: @Sendable () async -> Served) async {
        var rejectedBefore = false
        while !(await stopping()) && !Task.isCancelled {
            if await needsPrepare() {
                await setStatus(rejectedBefore ? .tokenRejected : .connecting)
                switch await prepare() {
                case .ready:
                    rejectedBefore = false
                case .tokenRejected:
                    if await stopping() { return }
                    await setStatus(.tokenRejected)
                    rejectedBefore = true
                    Log.error("sync", "\(name): the server rejected the token (401) — run `happy auth login` to fix it; retrying every \(Format.fixed(tokenRejectedDelay, 1)) s")
                    await Self.sleep(tokenRejectedDelay)
                    continue
                case .retry(let why):
                    if await stopping() { return }
                    await setStatus(.offline)
                    rejectedBefore = false
                    let d = policy.nextDelay()
                    Log.warn("sync", "\(name): \(why); running offline, retrying in \(Format.fixed(d, 1)) s")
                    await Self.sleep(d)
                    continue
                }
            }
            if await stopping() { return }
            if !rejectedBefore { await setStatus(.connecting) }
            let outcome = await serve()
            if await stopping() { return }
            switch outcome {
            case .tokenRejected:
                await setStatus(.tokenRejected)
                rejectedBefore = true
                Log.error("sync", "\(name): the server refused the connection: Invalid authentication token — run `happy auth login` to fix it; retrying every \(Format.fixed(tokenRejectedDelay, 1)) s")
                await Self.sleep(tokenRejectedDelay)
            case .lost(let why, let uptime):
                await setStatus(.offline)
                rejectedBefore = false
                policy.connectionEnded(uptime: uptime)
                let d = policy.nextDelay()
                Log.warn("sync", "\(name): connection \(uptime > 0 ? "lost" : "failed"): \(why); reconnecting in \(Format.fixed(d, 1)) s")
                await Self.sleep(d)
            }
        }
    }

    static func sleep(_ seconds: Double) async {
        try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
    }

    /// Connects `client` and serves until it disconnects: `onConnected` runs once
    /// connected. An auth refusal — `connect_error` "Invalid authentication token", or on
    /// the older standalone server an `error` event with that message followed by a
    /// disconnect — is `.tokenRejected`.
    static func serve(_ client: SyncSocket, stopping: @Sendable () async -> Bool,
                      onConnected: @Sendable () async -> Void) async -> Served {
        let rejected = Locked(false)
        client.on("error") { args, _ in
            let message = args.first?["message"]?.string ?? args.first?.string ?? ""
            if message.lowercased().contains("invalid authentication token") {
                rejected.withLock { $0 = true }
            } else {
                Log.warn("sync", "the server sent an error: \(message.prefix(200))")
            }
        }
        do {
            try await client.connect()
        } catch let e as SocketIOError where e.isAuthRejection {
            return .tokenRejected
        } catch {
            return .lost(renderError(error), uptime: 0)
        }
        let connectedAt = MonotonicClock.now()
        if await stopping() {
            await client.disconnect()
            return .lost("stopping", uptime: 0)
        }
        await onConnected()
        let reason = await client.waitUntilDisconnected()
        if rejected.get { return .tokenRejected }
        return .lost(reason, uptime: MonotonicClock.now() - connectedAt)
    }
}
