import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappyTestSupport

func tempHome() -> HomeLayout {
    let p = NSTemporaryDirectory() + "happy-api-\(UInt64.random(in: 0...UInt64.max))"
    return HomeLayout(root: p)
}

@Suite struct CredentialsTests {
    let k32 = Data(repeating: 7, count: 32).base64EncodedString()
    let m32 = Data(repeating: 9, count: 32).base64EncodedString()

    @Test func parsesLegacyAndDataKey() throws {
        let l = try #require(Credentials(json: JSON.parse(#"{"secret":"\#(k32)","token":"t1"}"#)))
        #expect(l == .legacy(secret: [UInt8](repeating: 7, count: 32), token: "t1"))
        #expect(l.variant == .legacy && l.encryptionKey == [UInt8](repeating: 7, count: 32))
        let d = try #require(Credentials(json: JSON.parse(#"{"encryption":{"publicKey":"\#(k32)","machineKey":"\#(m32)"},"token":"t2"}"#)))
        #expect(d == .dataKey(publicKey: [UInt8](repeating: 7, count: 32), machineKey: [UInt8](repeating: 9, count: 32), token: "t2"))
        #expect(d.variant == .dataKey && d.encryptionKey == [UInt8](repeating: 9, count: 32))
        #expect(d.machineMetadataKeyAndVariant.variant == .dataKey)
    }

    @Test func secretWinsWhenBothPresent() throws {
        let c = try #require(Credentials(json: JSON.parse(#"{"secret":"\#(k32)","encryption":{"publicKey":"\#(k32)","machineKey":"\#(m32)"},"token":"t"}"#)))
        #expect(c.variant == .legacy)
        // A null secret falls back to the encryption form.
        let d = try #require(Credentials(json: JSON.parse(#"{"secret":null,"encryption":{"publicKey":"\#(k32)","machineKey":"\#(m32)"},"token":"t"}"#)))
        #expect(d.variant == .dataKey)
    }

    @Test(arguments: [
        #"{"secret":"AAAA","token":"t"}"#,
        #"{"secret":"\#(Data(repeating: 1, count: 32).base64EncodedString())"}"#,
        #"{"secret":"\#(Data(repeating: 1, count: 32).base64EncodedString())","token":5}"#,
        #"{"encryption":{"publicKey":"x"},"token":"t"}"#,
        #"{"token":"t"}"#,
        #"[]"#,
    ])
    func invalidMeansNotAuthenticated(_ text: String) throws {
        #expect(Credentials(json: try JSON.parse(text)) == nil)
    }

    @Test func storeWritesPrettyJSON0600AndReads() throws {
        let home = tempHome()
        defer { try? FileManagerShim.removeTree(home.root) }
        let store = CredentialsStore(home: home)
        #expect(store.load() == .missing)
        let c = Credentials.dataKey(publicKey: [UInt8](repeating: 1, count: 32), machineKey: [UInt8](repeating: 2, count: 32), token: "tok")
        try store.write(c)
        #expect(FileIO.mode(home.accessKey) == 0o600)
        #expect(FileIO.mode(home.root) == 0o700)
        let text = String(decoding: try #require(try FileIO.read(home.accessKey)), as: UTF8.self)
        #expect(text.contains("\n  \"encryption\": {\n    \"machineKey\": "))
        #expect(store.read() == c)
        try "garbage".write(toFile: home.accessKey, atomically: false, encoding: .utf8)
        if case .invalid = store.load() {} else { Issue.record("expected invalid") }
        #expect(store.read() == nil)
        #expect(throws: APIError.notAuthenticated) { try store.require() }
        #expect(try store.delete())
        #expect(try !store.delete())
    }

    /// An `access.key` whose account public key is all-zero (or another low-order point)
    /// is not usable: the daemon then runs offline instead of crashing when it wraps its key.
    @Test func lowOrderAccountKeyMakesTheFileInvalid() throws {
        let home = tempHome()
        defer { try? FileManagerShim.removeTree(home.root) }
        let store = CredentialsStore(home: home)
        for pk in [[UInt8](repeating: 0, count: 32), [1] + [UInt8](repeating: 0, count: 31)] {
            try store.write(.dataKey(publicKey: pk, machineKey: [UInt8](repeating: 2, count: 32), token: "tok"))
            guard case .invalid(let reason) = store.load() else { Issue.record("accepted \(pk)"); continue }
            #expect(reason.contains("not a usable X25519 key"))
            #expect(store.read() == nil)
        }
        let good = Credentials.dataKey(publicKey: Box.randomKeyPair().publicKey, machineKey: [UInt8](repeating: 2, count: 32), token: "tok")
        try store.write(good)
        #expect(store.load() == .ok(good))
    }

    @Test func machineIdEnsureReplaceRemoveKeepsOtherKeys() throws {
        let home = tempHome()
        defer { try? FileManagerShim.removeTree(home.root) }
        try FileIO.ensureDirectory(home.root)
        try FileIO.writeJSON(["schemaVersion": 2, "chromeMode": true, "custom": ["a": 1]], to: home.settings)
        let id = try SettingsStore(home: home).ensureMachineId()
        #expect(id == id.lowercased() && UUID(uuidString: id) != nil)
        #expect(Array(id)[14] == "4")
        #expect(try SettingsStore(home: home).ensureMachineId() == id)
        let id2 = try SettingsStore(home: home).replaceMachineId()
        #expect(id2 != id)
        try SettingsStore(home: home).removeMachineId()
        let s = try #require(try FileIO.readJSON(home.settings))
        #expect(s == ["schemaVersion": 2, "chromeMode": true, "custom": ["a": 1]])
        #expect(try SettingsStore(home: home).machineId() == nil)
        // A corrupt settings file is never overwritten.
        try "{bad".write(toFile: home.settings, atomically: false, encoding: .utf8)
        #expect(throws: FileIOError.self) { try SettingsStore(home: home).ensureMachineId() }
        #expect(try String(contentsOfFile: home.settings, encoding: .utf8) == "{bad")
    }

    @Test func machineIdCreatedWithSchemaVersion() throws {
        let home = tempHome()
        defer { try? FileManagerShim.removeTree(home.root) }
        let id = try SettingsStore(home: home).ensureMachineId()
        let s = try #require(try FileIO.readJSON(home.settings))
        #expect(s == ["schemaVersion": 2, "machineId": .string(id)])
        #expect(FileIO.mode(home.settings) == 0o600)
    }
}

@Suite struct SecretInputTests {
    static let bytes: [UInt8] = (0..<32).map { UInt8($0 * 7 + 3) }

    static func base32(_ b: [UInt8]) -> String {
        let a = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var out = "", acc = 0, bits = 0
        for x in b {
            acc = (acc << 8) | Int(x); bits += 8
            while bits >= 5 { bits -= 5; out.append(a[(acc >> bits) & 31]) }
            acc &= (1 << bits) - 1
        }
        if bits > 0 { out.append(a[(acc << (5 - bits)) & 31]) }
        return out
    }

    @Test func acceptsBase64Forms() throws {
        let std = Data(Self.bytes).base64EncodedString()
        #expect(try SecretInput.parse(std + "\n") == Self.bytes)
        #expect(try SecretInput.parse(String(std.dropLast())) == Self.bytes)
        let url = std.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        #expect(try SecretInput.parse(url) == Self.bytes)
    }

    @Test func acceptsBackupKeyForgivingly() throws {
        let b32 = Self.base32(Self.bytes)
        #expect(b32.count == 52)
        var groups = [String]()
        var s = Substring(b32)
        while !s.isEmpty { groups.append(String(s.prefix(5))); s = s.dropFirst(5) }
        let dashed = groups.joined(separator: "-")
        #expect(try SecretInput.parse(dashed) == Self.bytes)
        #expect(try SecretInput.parse(dashed.lowercased()) == Self.bytes)
        #expect(try SecretInput.parse(groups.joined(separator: " ") + "\n") == Self.bytes)
        #expect(try SecretInput.parse(b32) == Self.bytes)
    }

    @Test(arguments: ["", "   \n", "AAAA", Data(repeating: 1, count: 31).base64EncodedString(),
                      Data(repeating: 1, count: 33).base64EncodedString(), "ABCDE-FGHIJ", "not a secret!"])
    func rejectsWrongLengths(_ text: String) {
        #expect(throws: APIError.self) { try SecretInput.parse(text) }
    }
}
