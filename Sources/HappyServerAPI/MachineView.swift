import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig

/// A machine record with its encrypted values decrypted (nil = absent or undecryptable).
public struct DecryptedMachine: Sendable, Equatable {
    public var record: MachineRecord
    public var metadata: JSON?
    public var daemonState: JSON?
    /// The variant the values were read with.
    public var encryption: CredentialVariant
    /// One line per value that failed to decrypt (for stderr).
    public var warnings: [String]

    /// The `machine show --json` object (SPEC §3.2).
    public var json: JSON {
        [
            "id": .string(record.id), "metadata": metadata ?? .null, "metadataVersion": .int(record.metadataVersion),
            "daemonState": daemonState ?? .null, "daemonStateVersion": .int(record.daemonStateVersion),
            "active": .bool(record.active), "activeAt": .int(record.activeAt), "createdAt": .int(record.createdAt),
            "updatedAt": .int(record.updatedAt), "encryption": .string(encryption.rawValue),
        ]
    }
}

public enum MachineDecryption {
    /// The (key, variant) candidates for a record, best first. The credential's own
    /// key and variant come first. Legacy credentials hold the account secret, so a
    /// record carrying a `dataEncryptionKey` can be unwrapped (content key derived
    /// from the secret) and read as dataKey. DataKey credentials only hold the
    /// account *public* key, so such a bundle cannot be opened: machineKey it is.
    public static func candidates(for record: MachineRecord, credentials: Credentials) -> [(key: [UInt8], variant: CredentialVariant)] {
        var out = [(key: [UInt8], variant: CredentialVariant)]()
        switch credentials {
        case .legacy(let secret, _):
            if let dek = record.dataEncryptionKey, let bundle = Base64.decodeAny(dek.trimmed),
               let key = APICrypto.unwrapDataKey(bundle, recipientSecretKey: APICrypto.contentSecretKey(masterSecret: secret)) {
                out.append((key, .dataKey))
            }
            out.insert((secret, .legacy), at: 0)
        case .dataKey(_, let machineKey, _):
            out.append((machineKey, .dataKey))
        }
        return out
    }

    public static func decrypt(_ record: MachineRecord, credentials: Credentials) -> DecryptedMachine {
        let cands = candidates(for: record, credentials: credentials)
        var warnings = [String]()
        var used = cands[0].variant
        func open(_ b64text: String?, _ name: String) -> JSON? {
            guard let b64text else { return nil }
            guard let bytes = Base64.decodeAny(b64text.trimmed) else {
                warnings.append("machine \(record.id): \(name) is not base64; shown as null")
                return nil
            }
            for c in cands {
                if let v = APICrypto.decryptValue(bytes, key: c.key, variant: c.variant) {
                    used = c.variant
                    return v
                }
            }
            warnings.append("machine \(record.id): \(name) could not be decrypted with this account's key; shown as null")
            return nil
        }
        let meta = open(record.metadata, "metadata")
        let state = open(record.daemonState, "daemonState")
        return DecryptedMachine(record: record, metadata: meta, daemonState: state, encryption: used, warnings: warnings)
    }
}
