import HappyCore
import HappyServerAPI

/// A machine record as the server returns it (id "m", versions 2 and 4, active), with the
/// given encrypted metadata, daemon state and optional wrapped data key.
func machineRecordFixture(_ metadata: [UInt8], _ daemonState: [UInt8]?, dek: [UInt8]? = nil) -> MachineRecord {
    MachineRecord(id: "m", metadata: Base64.encode(metadata), metadataVersion: 2,
                  daemonState: daemonState.map { Base64.encode($0) }, daemonStateVersion: 4,
                  dataEncryptionKey: dek.map { Base64.encode($0) }, active: true, activeAt: 5, createdAt: 1,
                  updatedAt: 6, seq: 3)
}
