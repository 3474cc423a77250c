import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappyTestSupport

@Suite struct MachineDecryptionTests {
    let meta: JSON = ["host": "h", "platform": "linux"]
    let state: JSON = ["status": "running", "pid": 12]

    @Test func legacyUsesSecretAndSecretbox() {
        let secret = SecureRandom.bytes(32)
        let c = Credentials.legacy(secret: secret, token: "t")
        let r = machineRecordFixture(ValueCipher.encrypt(meta, key: secret, variant: .legacy), ValueCipher.encrypt(state, key: secret, variant: .legacy))
        let d = MachineDecryption.decrypt(r, credentials: c)
        #expect(d.metadata == meta && d.daemonState == state && d.encryption == .legacy && d.warnings.isEmpty)
        #expect(d.json["encryption"] == "legacy" && d.json["metadataVersion"] == 2 && d.json["daemonStateVersion"] == 4)
        #expect(d.json.object?.keys.sorted() == ["active", "activeAt", "createdAt", "daemonState", "daemonStateVersion",
                                                 "encryption", "id", "metadata", "metadataVersion", "updatedAt"])
    }

    @Test func dataKeyUsesMachineKeyAndAESGCM() throws {
        let mk = SecureRandom.bytes(32)
        let c = Credentials.dataKey(publicKey: SecureRandom.bytes(32), machineKey: mk, token: "t")
        // A dataEncryptionKey we cannot open (wrapped to the account key) is ignored.
        let dek = try DataKeyWrap.wrap(mk, recipientPublicKey: Box.randomKeyPair().publicKey)
        let r = machineRecordFixture(ValueCipher.encrypt(meta, key: mk, variant: .dataKey), nil, dek: dek)
        let d = MachineDecryption.decrypt(r, credentials: c)
        #expect(d.metadata == meta && d.daemonState == nil && d.encryption == .dataKey && d.warnings.isEmpty)
        #expect(d.json["daemonState"] == .null)
    }

    @Test func legacyCredentialsOpenDataEncryptionKeyRecords() throws {
        let secret = SecureRandom.bytes(32)
        let content = Box.seedKeyPair(seed: KeyDerivation.deriveKey(master: secret, usage: "Happy EnCoder", path: ["content"]))
        let key = SecureRandom.bytes(32)
        let dek = try DataKeyWrap.wrap(key, recipientPublicKey: content.publicKey)
        let r = machineRecordFixture(ValueCipher.encrypt(meta, key: key, variant: .dataKey), ValueCipher.encrypt(state, key: key, variant: .dataKey), dek: dek)
        let d = MachineDecryption.decrypt(r, credentials: .legacy(secret: secret, token: "t"))
        #expect(d.metadata == meta && d.daemonState == state && d.encryption == .dataKey)
    }

    @Test func undecryptableIsNilWithWarning() {
        let c = Credentials.legacy(secret: SecureRandom.bytes(32), token: "t")
        let other = SecureRandom.bytes(32)
        var r = machineRecordFixture(ValueCipher.encrypt(meta, key: other, variant: .legacy), ValueCipher.encrypt(state, key: other, variant: .legacy))
        var d = MachineDecryption.decrypt(r, credentials: c)
        #expect(d.metadata == nil && d.daemonState == nil && d.warnings.count == 2)
        #expect(d.warnings.allSatisfy { !$0.contains(Base64.encode(other)) })
        r.metadata = "%%% not base64"
        d = MachineDecryption.decrypt(r, credentials: c)
        #expect(d.metadata == nil && d.warnings.count == 2)
    }
}

@Suite struct TerminalAuthTests {
    /// The app's side: box(plaintext) from a fresh ephemeral key to the CLI's key.
    func appBundle(_ plain: [UInt8], to cliPublic: [UInt8]) -> [UInt8] {
        let eph = Box.randomKeyPair()
        let nonce = SecureRandom.bytes(24)
        let ct = Box.seal(plain, nonce: nonce, recipientPublicKey: cliPublic, senderSecret: eph.secretKey)!
        return eph.publicKey + nonce + ct
    }

    let api = HappyServerAPI(serverUrl: "http://127.0.0.1:9", transport: StubTransport.json(200, "{}"))

    @Test func linksUseBase64URLOfTheEphemeralKey() {
        let f = TerminalAuth(api: api, webappUrl: "https://app.example/")
        #expect(f.publicKey == X25519.publicKey(secret: f.secret))
        #expect(f.mobileLink == "happy://terminal?" + Base64.encodeURL(f.publicKey))
        #expect(f.webLink == "https://app.example/terminal/connect#key=" + Base64.encodeURL(f.publicKey))
        let key = f.mobileLink.dropFirst("happy://terminal?".count)
        #expect(key.count == 43 && !key.contains("=") && !key.contains("+") && !key.contains("/"))
    }

    @Test func v1GivesLegacyV2GivesDataKeyWithRandomMachineKey() throws {
        let f = TerminalAuth(api: api, webappUrl: "x")
        let secret = SecureRandom.bytes(32)
        #expect(try f.credentials(token: "t", response: appBundle(secret, to: f.publicKey)) == .legacy(secret: secret, token: "t"))
        let pk = SecureRandom.bytes(32)
        let c1 = try f.credentials(token: "t", response: appBundle([0] + pk, to: f.publicKey))
        let c2 = try f.credentials(token: "t", response: appBundle([0] + pk, to: f.publicKey))
        guard case .dataKey(let p1, let mk1, _) = c1, case .dataKey(_, let mk2, _) = c2 else { Issue.record("not dataKey"); return }
        #expect(p1 == pk && mk1.count == 32 && mk1 != mk2)
        // Wrong recipient or garbage → error.
        let other = Box.randomKeyPair().publicKey
        #expect(throws: APIError.authResponseUndecryptable) { try f.credentials(token: "t", response: appBundle(secret, to: other)) }
        #expect(throws: APIError.authResponseUndecryptable) { try f.credentials(token: "t", response: [1, 2, 3]) }
    }

    /// A v2 answer whose content key is all-zero or another low-order point is refused
    /// (it used to reach a preconditionFailure when the daemon wrapped its machine key).
    @Test func v2WithALowOrderContentKeyIsRefused() throws {
        let f = TerminalAuth(api: api, webappUrl: "x")
        let order8: [UInt8] = [0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
                               0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00]
        var one = [UInt8](repeating: 0, count: 32); one[0] = 1
        for pk in [[UInt8](repeating: 0, count: 32), one, order8] {
            #expect(throws: APIError.unusableAccountKey) { try f.credentials(token: "t", response: appBundle([0] + pk, to: f.publicKey)) }
        }
        #expect(renderError(APIError.unusableAccountKey).contains("nothing was saved"))
    }

    @Test func secretLoginSignsChallengeWithSeed() async throws {
        let t = StubTransport.json(200, #"{"success":true,"token":"tok"}"#)
        let secret = SecureRandom.bytes(32)
        let c = try await SecretLogin.login(api: HappyServerAPI(serverUrl: "http://h", transport: t), secret: secret)
        #expect(c == .legacy(secret: secret, token: "tok"))
        let body = try JSON.parse(t.requests[0].body)
        let pub = try #require(Base64.decode(body["publicKey"]!.string!))
        let ch = try #require(Base64.decode(body["challenge"]!.string!))
        let sig = try #require(Base64.decode(body["signature"]!.string!))
        #expect(pub == Ed25519.publicKey(seed: secret) && ch.count == 32)
        #expect(Ed25519.verify(signature: sig, message: ch, publicKey: pub))
    }
}
