import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyTestSupport

// MARK: - helpers shared by the crypto suites

enum CryptoFixtures {
    /// `Vectors/crypto.json` beside this file: the libsodium/OpenSSL vectors, copied into
    /// the repository (a clone has nothing beside it; see Vectors/README.md).
    static func vectorsURL(file: String = #filePath) -> URL? {
        let url = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Vectors/crypto.json")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    static func vectors() throws -> JSON {
        let url = try #require(vectorsURL(), "Vectors/crypto.json not found beside \(#filePath)")
        return try JSON.parse(try Data(contentsOf: url))
    }

    static func list(_ name: String) throws -> [JSON] {
        let v = try vectors()
        let items = try #require(v[name]?.array, "vector group \(name) missing")
        #expect(!items.isEmpty)
        return items
    }
}

func hexBytes(_ s: String) -> [UInt8] {
    var out = [UInt8]()
    var it = s.utf8.makeIterator()
    func nib(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    while let a = it.next(), let b = it.next() { out.append(nib(a) << 4 | nib(b)) }
    return out
}

extension JSON {
    /// A base64 field of a vector (standard alphabet, padded).
    func b64(_ key: String) throws -> [UInt8] {
        let s = try #require(self[key]?.string, "field \(key) missing")
        return try #require(Base64.decode(s), "field \(key) is not base64")
    }
}

// MARK: - crypto.json, every group

@Suite struct CryptoVectorTests {
    @Test func vectorsFileIsFound() throws {
        let v = try CryptoFixtures.vectors()
        #expect(v["secretbox"]?.array?.isEmpty == false)
    }

    @Test func boxBeforeNM() throws {
        for v in try CryptoFixtures.list("box_beforenm") {
            let k = Box.beforeNM(secret: try v.b64("secret"), publicKey: try v.b64("public"))
            #expect(k == (try v.b64("sharedKey")))
        }
    }

    @Test func secretboxSealAndOpen() throws {
        for v in try CryptoFixtures.list("secretbox") {
            let key = try v.b64("key"), nonce = try v.b64("nonce"), plain = try v.b64("plain"), boxed = try v.b64("boxed")
            #expect(SecretBox.seal(plain, nonce: nonce, key: key) == boxed)
            #expect(SecretBox.open(boxed, nonce: nonce, key: key) == plain)
        }
    }

    /// Both Poly1305 implementations (Swift, OpenSSL) give the same secretbox bytes.
    @Test func secretboxBothPoly1305Paths() throws {
        for threshold in [0, Int.max] {
            for v in try CryptoFixtures.list("secretbox") {
                let key = try v.b64("key"), nonce = try v.b64("nonce"), plain = try v.b64("plain"), boxed = try v.b64("boxed")
                #expect(SecretBox.seal(plain, nonce: nonce, key: key, polyThreshold: threshold) == boxed)
                #expect(SecretBox.open(boxed, nonce: nonce, key: key, polyThreshold: threshold) == plain)
            }
        }
    }

    @Test func x25519() throws {
        for v in try CryptoFixtures.list("x25519") {
            let a = try v.b64("secretA"), b = try v.b64("secretB")
            #expect(X25519.publicKey(secret: a) == (try v.b64("publicA")))
            #expect(X25519.publicKey(secret: b) == (try v.b64("publicB")))
            #expect(X25519.sharedSecret(secret: a, publicKey: try v.b64("publicB")) == (try v.b64("shared")))
            #expect(X25519.sharedSecret(secret: b, publicKey: try v.b64("publicA")) == (try v.b64("shared")))
        }
    }

    @Test func box() throws {
        for v in try CryptoFixtures.list("box") {
            let ss = try v.b64("senderSecret"), rs = try v.b64("recipientSecret")
            let sp = try v.b64("senderPublic"), rp = try v.b64("recipientPublic")
            let nonce = try v.b64("nonce"), plain = try v.b64("plain"), boxed = try v.b64("boxed")
            #expect(X25519.publicKey(secret: ss) == sp)
            #expect(X25519.publicKey(secret: rs) == rp)
            #expect(Box.seal(plain, nonce: nonce, recipientPublicKey: rp, senderSecret: ss) == boxed)
            #expect(Box.open(boxed, nonce: nonce, senderPublicKey: sp, recipientSecret: rs) == plain)
        }
    }

    @Test func ed25519() throws {
        for v in try CryptoFixtures.list("ed25519") {
            let seed = try v.b64("seed"), pk = try v.b64("publicKey")
            let msg = try v.b64("message"), sig = try v.b64("signature")
            #expect(Ed25519.publicKey(seed: seed) == pk)
            #expect(Ed25519.sign(msg, seed: seed) == sig)
            #expect(Ed25519.verify(signature: sig, message: msg, publicKey: pk))
            #expect(!Ed25519.verify(signature: sig, message: msg + [0], publicKey: pk))
        }
    }

    @Test func libsodiumSeedKeyPair() throws {
        for v in try CryptoFixtures.list("libsodium_seed_keypair") {
            let kp = Box.seedKeyPair(seed: try v.b64("seed"))
            #expect(kp.secretKey == (try v.b64("secretKey")))
            #expect(kp.publicKey == (try v.b64("publicKey")))
        }
    }

    @Test(arguments: [("legacy_value", EncryptionVariant.legacy), ("datakey_value", EncryptionVariant.dataKey)])
    func valueEncryption(group: String, variant: EncryptionVariant) throws {
        for v in try CryptoFixtures.list(group) {
            let key = try v.b64("key"), bundle = try v.b64("bundle")
            let text = try #require(v["json"]?.string)
            let expected = try JSON.parse(text)
            // decrypt
            #expect(ValueCipher.decrypt(bundle, key: key, variant: variant) == expected)
            #expect(ValueCipher.decryptBase64(Base64.encode(bundle), key: key, variant: variant) == expected)
            #expect(ValueCipher.openBytes(bundle, key: key, variant: variant) == Array(text.utf8))
            // encrypt with the bundle's nonce reproduces the bundle exactly
            let nonce = variant == .legacy ? Array(bundle[0..<24]) : Array(bundle[1..<13])
            #expect(ValueCipher.sealBytes(Array(text.utf8), key: key, variant: variant, nonce: nonce) == bundle)
            if expected.serialized() == text {
                #expect(ValueCipher.encrypt(expected, key: key, variant: variant, nonce: nonce) == bundle)
            }
            // random-nonce encryption round-trips and has the documented layout
            let fresh = ValueCipher.encrypt(expected, key: key, variant: variant)
            #expect(fresh.count == expected.serialized().utf8.count + (variant == .legacy ? 40 : 29))
            if variant == .dataKey { #expect(fresh[0] == 0) }
            #expect(ValueCipher.decrypt(fresh, key: key, variant: variant) == expected)
            #expect(ValueCipher.decryptBase64(ValueCipher.encryptToBase64(expected, key: key, variant: variant),
                                              key: key, variant: variant) == expected)
            // the other variant does not open it
            let other: EncryptionVariant = variant == .legacy ? .dataKey : .legacy
            #expect(ValueCipher.decrypt(bundle, key: key, variant: other) == nil)
        }
    }

    @Test func dataEncryptionKey() throws {
        for v in try CryptoFixtures.list("data_encryption_key") {
            let accountSecret = try v.b64("accountSecret"), accountPublic = try v.b64("accountPublic")
            let eph = try v.b64("ephemeralSecret"), nonce = try v.b64("nonce")
            let machineKey = try v.b64("machineKey"), bundle = try v.b64("bundle")
            #expect(bundle.count == 105)
            #expect(X25519.publicKey(secret: accountSecret) == accountPublic)
            #expect(DataKeyWrap.unwrap(bundle, recipientSecret: accountSecret) == machineKey)
            #expect(try DataKeyWrap.wrap(machineKey, recipientPublicKey: accountPublic, ephemeralSecret: eph, nonce: nonce) == bundle)
            let fresh = try DataKeyWrap.wrap(machineKey, recipientPublicKey: accountPublic)
            #expect(fresh.count == 105 && fresh[0] == 0 && fresh != bundle)
            #expect(DataKeyWrap.unwrap(fresh, recipientSecret: accountSecret) == machineKey)
            #expect(DataKeyWrap.unwrap(bundle, recipientSecret: eph) == nil)
        }
    }

    @Test func terminalAuthResponse() throws {
        var kinds = Set<String>()
        for v in try CryptoFixtures.list("auth_response") {
            let secret = try v.b64("requestSecret"), response = try v.b64("response"), plain = try v.b64("plain")
            let kind = try #require(v["kind"]?.string)
            kinds.insert(kind)
            #expect(X25519.publicKey(secret: secret) == (try v.b64("requestPublic")))
            #expect(Base64.encodeURL(X25519.publicKey(secret: secret)) == v["requestPublic_b64url"]?.string)
            let got = TerminalAuthResponse.decrypt(response, ephemeralSecret: secret)
            switch kind {
            case "v1": #expect(got == .legacy(secret: plain))
            case "v2": #expect(got == .dataKey(publicKey: Array(plain[1..<33])))
            default: Issue.record("unknown kind \(kind)")
            }
            #expect(TerminalAuthResponse.decrypt(response, ephemeralSecret: SecureRandom.bytes(32)) == nil)
        }
        #expect(kinds == ["v1", "v2"])
    }

    @Test func backupKey() throws {
        for v in try CryptoFixtures.list("backup_key") {
            let secret = try v.b64("secret"), text = try #require(v["text"]?.string)
            #expect(BackupKey.encode(secret) == text)
            #expect(BackupKey.decode(text) == secret)
            #expect(BackupKey.decode(text.lowercased()) == secret)
            #expect(BackupKey.decode(text.replacingOccurrences(of: "-", with: "")) == secret)
            #expect(BackupKey.decode(text.replacingOccurrences(of: "-", with: " ")) == secret)
            #expect(BackupKey.decode("  " + text.replacingOccurrences(of: "-", with: " - ") + "\n") == secret)
        }
    }

    @Test func deriveKey() throws {
        for v in try CryptoFixtures.list("derive_key") {
            let path = try #require(v["path"]?.array).compactMap(\.string)
            let usage = try #require(v["usage"]?.string)
            #expect(KeyDerivation.deriveKey(master: try v.b64("master"), usage: usage, path: path) == (try v.b64("key")))
        }
    }

    @Test func poly1305() throws {
        for v in try CryptoFixtures.list("poly1305") {
            let key = try v.b64("key"), msg = try v.b64("message"), tag = try v.b64("tag")
            #expect(Poly1305.tag(msg, key: key) == tag)
            #expect(Poly1305.openSSLTag(msg, key: key) == tag)
        }
    }
}

// MARK: - RFC vectors

@Suite struct CryptoRFCTests {
    /// RFC 7748 §5.2 (first vector) and §6.1.
    @Test func rfc7748X25519() {
        #expect(X25519.sharedSecret(
            secret: hexBytes("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
            publicKey: hexBytes("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
            == hexBytes("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"))
        let a = hexBytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let b = hexBytes("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        let pa = hexBytes("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        let pb = hexBytes("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = hexBytes("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        #expect(X25519.publicKey(secret: a) == pa)
        #expect(X25519.publicKey(secret: b) == pb)
        #expect(X25519.sharedSecret(secret: a, publicKey: pb) == shared)
        #expect(X25519.sharedSecret(secret: b, publicKey: pa) == shared)
    }

    /// A low-order point gives an all-zero secret: refused.
    @Test func x25519RejectsLowOrderPoint() {
        #expect(X25519.sharedSecret(secret: SecureRandom.bytes(32), publicKey: [UInt8](repeating: 0, count: 32)) == nil)
        #expect(Box.beforeNM(secret: SecureRandom.bytes(32), publicKey: [UInt8](repeating: 0, count: 32)) == nil)
        #expect(X25519.sharedSecret(secret: [1, 2], publicKey: [UInt8](repeating: 9, count: 32)) == nil)
    }

    /// RFC 8032 §7.1 tests 1–3.
    @Test(arguments: [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ])
    func rfc8032Ed25519(seed: String, publicKey: String, message: String, signature: String) {
        let sk = hexBytes(seed), pk = hexBytes(publicKey), msg = hexBytes(message), sig = hexBytes(signature)
        #expect(Ed25519.publicKey(seed: sk) == pk)
        #expect(Ed25519.sign(msg, seed: sk) == sig)
        #expect(Ed25519.verify(signature: sig, message: msg, publicKey: pk))
        var bad = sig; bad[10] ^= 1
        #expect(!Ed25519.verify(signature: bad, message: msg, publicKey: pk))
        #expect(!Ed25519.verify(signature: Array(sig.prefix(63)), message: msg, publicKey: pk))
        #expect(!Ed25519.verify(signature: sig, message: msg, publicKey: Array(pk.prefix(31))))
    }

    /// RFC 8439 §2.5.2.
    @Test func rfc8439Poly1305() {
        let key = hexBytes("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
        let msg = Array("Cryptographic Forum Research Group".utf8)
        let tag = hexBytes("a8061dc1305136c6c22b8baf0c0127a9")
        #expect(Poly1305.tag(msg, key: key) == tag)
        #expect(Poly1305.openSSLTag(msg, key: key) == tag)
    }

    /// Swift and OpenSSL Poly1305 agree on every length 0...300 and some big ones.
    @Test func poly1305ImplementationsAgree() {
        let key = SecureRandom.bytes(32)
        var lengths = Array(0...300)
        lengths += [1023, 4096, 65_537]
        for n in lengths {
            let m = SecureRandom.bytes(n)
            #expect(Poly1305.tag(m, key: key) == Poly1305.openSSLTag(m, key: key), "length \(n)")
        }
        // Edge: all-0xFF message and key stress the carries and the final reduction.
        let ff = [UInt8](repeating: 0xFF, count: 32)
        for n in [16, 64, 1000] {
            let m = [UInt8](repeating: 0xFF, count: n)
            #expect(Poly1305.tag(m, key: ff) == Poly1305.openSSLTag(m, key: ff))
        }
    }

    /// FIPS 180 "abc" and RFC 4231 test case 2.
    @Test func digests() {
        #expect(Digest.hex(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.hex(Digest.sha512(Array("abc".utf8))) == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        #expect(Digest.hex(Digest.hmacSHA512(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8)))
                == "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737")
        #expect(Digest.hex([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff")
        #expect(Digest.sha256([]).count == 32 && Digest.hmacSHA512(key: [], data: []).count == 64)
    }

    /// deriveKey follows the chain literally (root, then one HMAC per path element).
    @Test func deriveKeyChain() {
        let master = SecureRandom.bytes(32)
        let root = Digest.hmacSHA512(key: Array("Happy Blobs Master Seed".utf8), data: master)
        #expect(KeyDerivation.deriveKey(master: master, usage: "Happy Blobs", path: []) == Array(root[0..<32]))
        let step = Digest.hmacSHA512(key: Array(root[32..<64]), data: [0] + Array("session".utf8))
        #expect(KeyDerivation.deriveKey(master: master, usage: "Happy Blobs", path: ["session"]) == Array(step[0..<32]))
        let step2 = Digest.hmacSHA512(key: Array(step[32..<64]), data: [0] + Array("x".utf8))
        #expect(KeyDerivation.deriveKey(master: master, usage: "Happy Blobs", path: ["session", "x"]) == Array(step2[0..<32]))
    }
}
