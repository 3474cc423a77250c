import HappyCore
import HappyNet

/// A session as `POST /v1/sessions` answers it (SESSIONS.md §2.2): encrypted fields as b64.
public struct ServerSession: Sendable, Equatable {
    public var id: String
    public var metadata: String?
    public var metadataVersion: Int
    public var agentState: String?
    public var agentStateVersion: Int
    public var dataEncryptionKey: String?

    public init?(json j: JSON) {
        guard let id = j["id"]?.string, !id.isEmpty else { return nil }
        self.id = id
        metadata = j["metadata"]?.string
        metadataVersion = j["metadataVersion"]?.int ?? 0
        agentState = j["agentState"]?.string
        agentStateVersion = j["agentStateVersion"]?.int ?? 0
        dataEncryptionKey = j["dataEncryptionKey"]?.string
    }
}

/// One stored message of a session (`GET /v3|v1/sessions/<sid>/messages`, `new-message`).
public struct ServerMessage: Sendable, Equatable {
    public var id: String
    public var seq: Int
    public var localId: String?
    /// The encrypted content (`content.c`), when the content is `{t: "encrypted"}`.
    public var ciphertext: String?

    public init?(json j: JSON) {
        guard let id = j["id"]?.string, let seq = j["seq"]?.int else { return nil }
        self.id = id
        self.seq = seq
        localId = j["localId"]?.string
        ciphertext = j["content"]?["t"]?.string == "encrypted" ? j["content"]?["c"]?.string : nil
    }
}

/// What `POST /v3/sessions/<sid>/messages` acknowledged.
public struct AckedMessage: Sendable, Equatable {
    public var id: String
    public var seq: Int
    public var localId: String?
}

/// The session routes of the Happy Server (SESSIONS.md §2–§5).
extension HappyServerAPI {
    public static var sessionClient: String { "cli-coding-session/\(HappyVersion.current)" }

    func sessionPath(_ sid: String, _ rest: String) -> String { "/" + rest.replacing("{sid}", with: HTTPCodec.percentEncode(sid)) }

    /// `POST /v1/sessions {tag, metadata, agentState: null, dataEncryptionKey}`: the new
    /// session, or the existing one with that tag, unchanged.
    public func createSession(tag: String, metadata: String, dataEncryptionKey: String?) async throws -> ServerSession {
        let body: JSON = ["tag": .string(tag), "metadata": .string(metadata), "agentState": .null,
                          "dataEncryptionKey": .optional(dataEncryptionKey)]
        let r = try await send("POST", "/v1/sessions", body: body, client: Self.sessionClient, auth: true)
        guard let s = try parse(r)["session"], let session = ServerSession(json: s) else {
            throw unexpected("expected {\"session\": {...}}")
        }
        return session
    }

    /// A 404 either names the session (`{"error": "Session not found"}`) or means the route
    /// does not exist (an older server without `/v3`).
    func sessionRoute404(_ resp: HTTPResponse, sid: String, path: String) -> APIError {
        let error = (try? JSON.parse(resp.body))?["error"]?.string
        return error == "Session not found" ? .sessionNotFound(id: sid, server: serverUrl) : .routeMissing(path: path, server: serverUrl)
    }

    /// `POST /v3/sessions/<sid>/messages {messages: [{content, localId}]}` (1–100 at a time):
    /// the stored rows for these localIds, new or already there.
    public func postMessages(sid: String, _ messages: [(content: String, localId: String)]) async throws -> [AckedMessage] {
        let path = sessionPath(sid, "v3/sessions/{sid}/messages")
        let body: JSON = ["messages": .array(messages.map { ["content": .string($0.content), "localId": .string($0.localId)] })]
        let resp = try await exchange("POST", path, body: body, client: Self.sessionClient, auth: true)
        if resp.status == 404 { throw sessionRoute404(resp, sid: sid, path: path) }
        let j = try parse(check(resp, path: path))
        return (j["messages"]?.array ?? []).compactMap { m in
            guard let id = m["id"]?.string, let seq = m["seq"]?.int else { return nil }
            return AckedMessage(id: id, seq: seq, localId: m["localId"]?.string)
        }
    }

    /// `GET /v3/sessions/<sid>/messages?after_seq=N&limit=L` → messages (ascending) and
    /// whether more follow.
    public func fetchMessages(sid: String, afterSeq: Int, limit: Int = 100) async throws -> (messages: [ServerMessage], hasMore: Bool) {
        let path = sessionPath(sid, "v3/sessions/{sid}/messages") + "?after_seq=\(afterSeq)&limit=\(limit)"
        let resp = try await exchange("GET", path, body: nil, client: Self.sessionClient, auth: true)
        if resp.status == 404 { throw sessionRoute404(resp, sid: sid, path: path) }
        let j = try parse(check(resp, path: path))
        return ((j["messages"]?.array ?? []).compactMap(ServerMessage.init(json:)), j["hasMore"]?.bool ?? false)
    }

    /// `GET /v1/sessions/<sid>/messages` (older servers): the last 150, newest first.
    public func fetchMessagesV1(sid: String) async throws -> [ServerMessage] {
        let path = sessionPath(sid, "v1/sessions/{sid}/messages")
        let resp = try await exchange("GET", path, body: nil, client: Self.sessionClient, auth: true)
        if resp.status == 404 { throw sessionRoute404(resp, sid: sid, path: path) }
        let j = try parse(check(resp, path: path))
        return (j["messages"]?.array ?? []).compactMap(ServerMessage.init(json:))
    }

    /// `POST /v1/sessions/<sid>/archive {}`: marks the session inactive.
    public func archiveSession(sid: String) async throws {
        let path = sessionPath(sid, "v1/sessions/{sid}/archive")
        let resp = try await exchange("POST", path, body: .object([:]), client: Self.sessionClient, auth: true)
        if resp.status == 404 { throw sessionRoute404(resp, sid: sid, path: path) }
        _ = try check(resp, path: path)
    }
}
