import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig
/// A machine as the server stores it (protocol sheet §4): encrypted fields are b64.
public struct MachineRecord: Sendable, Equatable {
    public var id: String
    public var metadata: String
    public var metadataVersion: Int
    public var daemonState: String?
    public var daemonStateVersion: Int
    public var dataEncryptionKey: String?
    public var active: Bool
    public var activeAt: Int
    public var createdAt: Int
    public var updatedAt: Int
    /// Present in GET answers, absent in the POST answer.
    public var seq: Int?

    public init(id: String, metadata: String, metadataVersion: Int, daemonState: String?, daemonStateVersion: Int,
                dataEncryptionKey: String?, active: Bool, activeAt: Int, createdAt: Int, updatedAt: Int, seq: Int? = nil) {
        self.id = id
        self.metadata = metadata
        self.metadataVersion = metadataVersion
        self.daemonState = daemonState
        self.daemonStateVersion = daemonStateVersion
        self.dataEncryptionKey = dataEncryptionKey
        self.active = active
        self.activeAt = activeAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.seq = seq
    }

    /// Parses one record; nil when a required field is missing or mistyped.
    public init?(json: JSON) {
        guard let id = json["id"]?.string,
              let metadata = json["metadata"]?.string,
              let mv = json["metadataVersion"]?.int
        else { return nil }
        self.id = id
        self.metadata = metadata
        self.metadataVersion = mv
        daemonState = json["daemonState"]?.string
        daemonStateVersion = json["daemonStateVersion"]?.int ?? 0
        dataEncryptionKey = json["dataEncryptionKey"]?.string
        active = json["active"]?.bool ?? false
        activeAt = json["activeAt"]?.int ?? 0
        createdAt = json["createdAt"]?.int ?? 0
        updatedAt = json["updatedAt"]?.int ?? 0
        seq = json["seq"]?.int
    }

    public var json: JSON {
        var o: [String: JSON] = [
            "id": .string(id), "metadata": .string(metadata), "metadataVersion": .int(metadataVersion),
            "daemonState": .optional(daemonState), "daemonStateVersion": .int(daemonStateVersion),
            "dataEncryptionKey": .optional(dataEncryptionKey), "active": .bool(active),
            "activeAt": .int(activeAt), "createdAt": .int(createdAt), "updatedAt": .int(updatedAt),
        ]
        if let seq { o["seq"] = .int(seq) }
        return .object(o)
    }
}
