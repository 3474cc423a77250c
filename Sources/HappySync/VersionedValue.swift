import HappyCore

/// A value the server keeps encrypted with a version — machine `metadata` and
/// `daemonState`, session `metadata` and `agentState` — written by compare-and-swap
/// (protocol sheet §6.2, SESSIONS.md §4.5): send `expectedVersion` + the new value; on
/// `version-mismatch` adopt the server's version and value, apply the change again and
/// retry (at most `maxTries`, with a small random backoff); `error` is not retried.
/// Writes are serialised: each one starts from the value the previous one left.
public actor VersionedValue {
    /// The server's answer to one write.
    public enum Ack: Sendable, Equatable {
        case success(version: Int)
        /// The server has another version; its value (encrypted) comes with it.
        case mismatch(version: Int, ciphertext: String?)
        case error(String)
    }

    /// How a write ended.
    public enum Outcome: Sendable, Equatable {
        case written(version: Int)
        /// `maxTries` version conflicts in a row.
        case gaveUp
        /// `result: error` from the server (its message).
        case refused(String)
        /// Not connected, or no answer in time.
        case notSent(String)
    }

    /// Sends one write: `(expectedVersion, encrypted new value or nil)` → the ack. Throws
    /// when it could not be sent or was not answered.
    public typealias Send = @Sendable (_ expectedVersion: Int, _ ciphertext: String?) async throws -> Ack

    public let name: String
    public private(set) var version: Int
    public private(set) var value: JSON?
    let encrypt: @Sendable (JSON) -> String
    let decrypt: @Sendable (String) -> JSON?
    let maxTries: Int
    private var chain: Task<Outcome, Never>?

    public init(name: String, version: Int = 0, value: JSON? = nil, maxTries: Int = 10,
                encrypt: @escaping @Sendable (JSON) -> String, decrypt: @escaping @Sendable (String) -> JSON?) {
        self.name = name
        self.version = version
        self.value = value
        self.maxTries = maxTries
        self.encrypt = encrypt
        self.decrypt = decrypt
    }

    /// The server told us its current version and value (registration, create, an `update`
    /// broadcast): adopted unless we already know a newer version.
    public func adopt(version v: Int, ciphertext: String?) {
        guard v >= version else { return }
        version = v
        value = ciphertext.flatMap(decrypt)
    }

    /// Like `adopt`, with a decrypted value.
    public func adopt(version v: Int, value j: JSON?) {
        guard v >= version else { return }
        version = v
        value = j
    }

    /// Writes `transform(current value)`, serialised behind earlier writes. `deadline`
    /// bounds how long the caller waits (the write itself goes on within its own timeouts).
    @discardableResult
    public func update(deadline: Double? = nil, send: @escaping Send,
                       _ transform: @escaping @Sendable (JSON?) -> JSON?) async -> Outcome {
        let previous = chain
        let task = Task { () -> Outcome in
            _ = await previous?.value
            return await self.write(send: send, transform)
        }
        chain = task
        guard let deadline else { return await task.value }
        let box = Locked<Outcome?>(nil)
        await withTimeLimit(seconds: deadline) {
            let o = await task.value
            box.withLock { $0 = o }
        }
        return box.get ?? .notSent("no answer within \(Format.fixed(deadline, 1)) s")
    }

    private func write(send: Send, _ transform: @Sendable (JSON?) -> JSON?) async -> Outcome {
        var attempt = 0
        while attempt < maxTries {
            attempt += 1
            let expected = version
            let next = transform(value)
            let ack: Ack
            do {
                ack = try await send(expected, next.map(encrypt))
            } catch {
                return .notSent(renderError(error))
            }
            switch ack {
            case .success(let acked):
                let v = acked < 0 ? expected + 1 : acked
                if v >= version {
                    version = v
                    value = next
                }
                return .written(version: v)
            case .mismatch(let v, let c):
                Log.info("sync", "\(name): version mismatch (sent v\(expected), server v\(v)); adopting the server's value and retrying")
                version = v
                value = c.flatMap(decrypt)
                let cap = 0.025 + 0.015 * Double(min(attempt, 10))
                try? await Task.sleep(nanoseconds: UInt64(Double.random(in: 0...cap) * 1e9))
            case .error(let message):
                return .refused(message)
            }
        }
        Log.warn("sync", "\(name): gave up after \(maxTries) version conflicts")
        return .gaveUp
    }

    /// Parses the ack of a versioned write (`{result, version, <field>}`).
    public static func parseAck(_ args: [JSON], field: String) -> Ack? {
        guard let a = args.first, let result = a["result"]?.string else { return nil }
        switch result {
        case "success": return .success(version: a["version"]?.int ?? -1)
        case "version-mismatch": return .mismatch(version: a["version"]?.int ?? 0, ciphertext: a[field]?.string)
        default: return .error(a["message"]?.string ?? "error")
        }
    }
}
