import HappyCore
import HappyCrypto

/// `sessions/ID/sync.json` (SPEC §2.2, §7.2): a session's link with its server session.
/// Written atomically, 0600, before the first creation attempt (tag and key), then after
/// every step that must survive a daemon restart. It holds the session key — the daemon
/// cannot unwrap a `dataEncryptionKey` later, so this file is its only copy.
struct SessionSyncFile: Equatable {
    /// An outgoing message that is not a stdout line (a prompt typed here, an abort event):
    /// sent once the stream has been sent up to `afterOffset`.
    struct Pending: Equatable {
        var localId: String
        var afterOffset: Int64
        var content: JSON
    }

    /// The tag of `POST /v1/sessions` (the local id of the session that created it).
    var tag: String
    /// The session key (dataKey); nil for legacy credentials (the account secret is used).
    var key: [UInt8]?
    var variant: EncryptionVariant
    var serverSessionId: String?
    var metadataVersion: Int = 0
    var agentStateVersion: Int = 0
    /// Highest message seq delivered to claude (or skipped as not for it).
    var lastSeq: Int = 0
    /// Stream offset up to which claude's output was acknowledged by the server.
    var sentOffset: Int64 = 0
    var pending: [Pending] = []
    var promptCount: Int = 0
    /// `summary.text` was set (from the first prompt).
    var summarized: Bool = false
    /// The server refused the session for good (a 4xx other than 401).
    var failed: Bool = false
    /// session-end and archive were sent.
    var ended: Bool = false

    init(tag: String, key: [UInt8]?, variant: EncryptionVariant) {
        self.tag = tag
        self.key = key
        self.variant = variant
    }

    var json: JSON {
        var o: [String: JSON] = [
            "tag": .string(tag), "key": key.map { .string(Base64.encode($0)) } ?? .null, "variant": .string(variant.rawValue),
            "serverSessionId": .optional(serverSessionId), "metadataVersion": .int(metadataVersion),
            "agentStateVersion": .int(agentStateVersion), "lastSeq": .int(lastSeq), "sentOffset": .number(Double(sentOffset)),
            "promptCount": .int(promptCount), "summarized": .bool(summarized),
            "pending": .array(pending.map { ["localId": .string($0.localId), "afterOffset": .number(Double($0.afterOffset)), "content": $0.content] }),
        ]
        if failed { o["failed"] = true }
        if ended { o["ended"] = true }
        return .object(o)
    }

    init?(json j: JSON) {
        guard let tag = j["tag"]?.string, let v = j["variant"]?.string.flatMap(EncryptionVariant.init(rawValue:)) else { return nil }
        var key: [UInt8]? = nil
        if let k = j["key"]?.string {
            guard let bytes = Base64.decode(k), bytes.count == 32 else { return nil }
            key = bytes
        }
        if v == .dataKey && key == nil { return nil }
        self.init(tag: tag, key: key, variant: v)
        serverSessionId = j["serverSessionId"]?.string
        metadataVersion = j["metadataVersion"]?.int ?? 0
        agentStateVersion = j["agentStateVersion"]?.int ?? 0
        lastSeq = j["lastSeq"]?.int ?? 0
        sentOffset = j["sentOffset"]?.int.map { Int64($0) } ?? 0
        promptCount = j["promptCount"]?.int ?? 0
        summarized = j["summarized"]?.bool ?? false
        failed = j["failed"]?.bool ?? false
        ended = j["ended"]?.bool ?? false
        pending = (j["pending"]?.array ?? []).compactMap { p in
            guard let id = p["localId"]?.string, let after = p["afterOffset"]?.int, let c = p["content"] else { return nil }
            return Pending(localId: id, afterOffset: Int64(after), content: c)
        }
    }

    static func path(_ sessionDir: String) -> String { sessionDir + "/sync.json" }

    /// nil when there is no file; throws when it cannot be read or parsed (it is never
    /// overwritten then: the key inside may be the only copy).
    static func load(_ sessionDir: String) throws -> SessionSyncFile? {
        let p = path(sessionDir)
        guard let j = try FileIO.readJSON(p, noFollow: true) else { return nil }
        guard let f = SessionSyncFile(json: j) else { throw FileIOError.corrupt(path: p, reason: "not a session sync file") }
        return f
    }

    func save(_ sessionDir: String) throws {
        try FileIO.writeJSON(json, to: Self.path(sessionDir), mode: 0o600)
    }
}
