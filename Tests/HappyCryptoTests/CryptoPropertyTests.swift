import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyTestSupport

/// Random sizes 0…64 KiB, always including the block/tail edges.
private func sampleSizes(count: Int = 40) -> [Int] {
    var sizes = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 287, 288, 289, 1024, 4095, 4096, 4097, 65_536]
    for _ in 0..<count { sizes.append(Int.random(in: 0...65_536)) }
    return sizes
}

@Suite struct CryptoRoundTripTests {
    @Test func secretboxRoundTripsBothPolyPaths() {
        for n in sampleSizes() {
            let key = SecureRandom.bytes(32), nonce = SecureRandom.bytes(24), plain = SecureRandom.bytes(n)
            let a = SecretBox.seal(plain, nonce: nonce, key: key, polyThreshold: Int.max)
            let b = SecretBox.seal(plain, nonce: nonce, key: key, polyThreshold: 0)
            #expect(a == b, "size \(n)")
            #expect(a == SecretBox.seal(plain, nonce: nonce, key: key))
            #expect(a.count == n + 16)
            #expect(SecretBox.open(a, nonce: nonce, key: key) == plain, "size \(n)")
            #expect(SecretBox.open(a, nonce: nonce, key: key, polyThreshold: 0) == plain, "size \(n)")
            #expect(SecretBox.open(a, nonce: nonce, key: key, polyThreshold: Int.max) == plain, "size \(n)")
        }
    }

    /// secretbox = Poly1305(tag over ct) + XSalsa20 keystream from byte 32 on; checked
    /// against the slow, obviously-correct composition of the raw primitives.
    @Test func secretboxMatchesPrimitiveComposition() {
        for n in [0, 5, 32, 100, 1000, 5000] {
            let key = SecureRandom.bytes(32), nonce = SecureRandom.bytes(24), plain = SecureRandom.bytes(n)
            let stream = Salsa20.xsalsa20XOR([UInt8](repeating: 0, count: 32 + n), key: key, nonce: nonce)
            let ct = zip(plain, stream[32...]).map { $0 ^ $1 }
            let tag = Poly1305.tag(ct, key: Array(stream[0..<32]))
            #expect(SecretBox.seal(plain, nonce: nonce, key: key) == tag + ct, "size \(n)")
        }
    }

    /// The 4-block SIMD path equals the scalar block function, including a 32-bit counter carry.
    @Test func salsa20SimdPathMatchesScalar() {
        let key = SecureRandom.bytes(32), nonce8 = SecureRandom.bytes(8)
        for start: UInt64 in [0, 7, 0xFFFF_FFFE, 0xFFFF_FFFF_FFFF_FFFD] {
            let fast = Salsa20.xor([UInt8](repeating: 0, count: 64 * 11 + 13), key: key, nonce8: nonce8, counter: start)
            var slow = [UInt8]()
            var input = nonce8 + [UInt8](repeating: 0, count: 8)
            key.withUnsafeBytes { k in
                input.withUnsafeMutableBytes { i in
                    var st = Salsa20State(key: k.baseAddress!, input: i.baseAddress!)
                    for b in 0..<12 {
                        st.counter = start &+ UInt64(b)
                        var blk = [UInt8](repeating: 0, count: 64)
                        blk.withUnsafeMutableBytes { st.block($0.baseAddress!) }
                        slow += blk
                    }
                }
            }
            #expect(fast == Array(slow.prefix(fast.count)), "counter \(start)")
        }
    }

    /// Salsa20 published vector (eSTREAM set 1, vector 0: key 0x80 00.., IV 0), first 64 bytes.
    @Test func salsa20KnownAnswer() {
        var key = [UInt8](repeating: 0, count: 32); key[0] = 0x80
        let ks = Salsa20.xor([UInt8](repeating: 0, count: 64), key: key, nonce8: [UInt8](repeating: 0, count: 8))
        #expect(Digest.hex(ks) == "e3be8fdd8beca2e3ea8ef9475b29a6e7003951e1097a5c38d23b7a5fad9f6844b22c97559e2723c7cbbd3fe4fc8d9a0744652a83e72a9c461876af4d7ef1a117"
                .lowercased())
    }

    @Test func aesGCMRoundTrips() {
        for n in sampleSizes() {
            let key = SecureRandom.bytes(32), nonce = SecureRandom.bytes(12), plain = SecureRandom.bytes(n)
            let (ct, tag) = AESGCM.seal(plain, key: key, nonce: nonce)
            #expect(ct.count == n && tag.count == 16)
            #expect(AESGCM.open(ciphertext: ct, tag: tag, key: key, nonce: nonce) == plain, "size \(n)")
            var badTag = tag; badTag[0] ^= 0x80
            #expect(AESGCM.open(ciphertext: ct, tag: badTag, key: key, nonce: nonce) == nil)
        }
    }

    /// Pooled AES-GCM contexts (re-keyed only by nonce) give the same bytes as fresh ones,
    /// across interleaved keys, directions and failed decryptions.
    @Test func aesGCMContextReuseIsExact() throws {
        let vectors = try CryptoFixtures.list("datakey_value")
        for round in 0..<6 {
            for v in vectors {
                let key = try v.b64("key"), bundle = try v.b64("bundle")
                let text = Array(try #require(v["json"]?.string).utf8)
                // Same key, other nonces in between.
                for _ in 0..<3 {
                    let other = ValueCipher.sealBytes(SecureRandom.bytes(round * 7), key: key, variant: .dataKey,
                                                      nonce: SecureRandom.bytes(12))
                    #expect(ValueCipher.openBytes(other, key: key, variant: .dataKey) != nil)
                }
                #expect(ValueCipher.sealBytes(text, key: key, variant: .dataKey, nonce: Array(bundle[1..<13])) == bundle)
                var bad = bundle; bad[bad.count - 1] ^= 1
                #expect(ValueCipher.openBytes(bad, key: key, variant: .dataKey) == nil)
                #expect(ValueCipher.openBytes(bundle, key: key, variant: .dataKey) == text)
                // Many distinct keys push entries out of the pool.
                for _ in 0..<round { _ = AESGCM.seal([1, 2, 3], key: SecureRandom.bytes(32), nonce: SecureRandom.bytes(12)) }
            }
        }
    }

    @Test func aesGCMConcurrentUse() async throws {
        let key = SecureRandom.bytes(32)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<200 {
                        let nonce = SecureRandom.bytes(12), plain = SecureRandom.bytes((t * 131 + i) % 2000)
                        let k = i % 3 == 0 ? SecureRandom.bytes(32) : key
                        let (ct, tag) = AESGCM.seal(plain, key: k, nonce: nonce)
                        #expect(AESGCM.open(ciphertext: ct, tag: tag, key: k, nonce: nonce) == plain)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test(arguments: [EncryptionVariant.legacy, .dataKey])
    func valueRoundTripsOnRandomSizes(variant: EncryptionVariant) {
        let key = SecureRandom.bytes(32)
        for n in sampleSizes(count: 12) {
            let value: JSON = .object(["text": .string(Base64.encode(SecureRandom.bytes(n * 3 / 4))), "n": .int(n)])
            let bundle = ValueCipher.encrypt(value, key: key, variant: variant)
            #expect(ValueCipher.decrypt(bundle, key: key, variant: variant) == value)
        }
    }

    @Test func boxRoundTripsBetweenRandomKeyPairs() {
        let alice = Box.randomKeyPair(), bob = Box.randomKeyPair()
        for n in sampleSizes(count: 6) {
            let nonce = SecureRandom.bytes(24), plain = SecureRandom.bytes(n)
            let boxed = Box.seal(plain, nonce: nonce, recipientPublicKey: bob.publicKey, senderSecret: alice.secretKey)
            #expect(Box.open(try! #require(boxed), nonce: nonce, senderPublicKey: alice.publicKey, recipientSecret: bob.secretKey) == plain)
            #expect(Box.beforeNM(secret: alice.secretKey, publicKey: bob.publicKey) == Box.beforeNM(secret: bob.secretKey, publicKey: alice.publicKey))
        }
    }

    @Test func ed25519SignVerifyRandom() {
        for n in [0, 1, 32, 1000] {
            let seed = SecureRandom.bytes(32), msg = SecureRandom.bytes(n)
            let sig = Ed25519.sign(msg, seed: seed)
            #expect(Ed25519.verify(signature: sig, message: msg, publicKey: Ed25519.publicKey(seed: seed)))
            #expect(!Ed25519.verify(signature: sig, message: msg, publicKey: Ed25519.publicKey(seed: SecureRandom.bytes(32))))
        }
    }

    @Test func secureRandom() {
        #expect(SecureRandom.bytes(0).isEmpty)
        let a = SecureRandom.bytes(32), b = SecureRandom.bytes(32)
        #expect(a.count == 32 && a != b)
        #expect(SecureRandom.bytes(1000).count == 1000)
    }

    @Test func variantRawValues() {
        #expect(EncryptionVariant.legacy.rawValue == "legacy")
        #expect(EncryptionVariant.dataKey.rawValue == "dataKey")
        #expect(EncryptionVariant(rawValue: "dataKey") == .dataKey)
        #expect(EncryptionVariant(rawValue: "datakey") == nil)
    }
}

@Suite struct CryptoTamperTests {
    /// Every single-bit flip of every vector value bundle fails to decrypt.
    @Test(arguments: [("legacy_value", EncryptionVariant.legacy), ("datakey_value", EncryptionVariant.dataKey)])
    func everyBitFlipOfAValueBundleFails(group: String, variant: EncryptionVariant) throws {
        for v in try CryptoFixtures.list(group) {
            let key = try v.b64("key"), bundle = try v.b64("bundle")
            #expect(ValueCipher.decrypt(bundle, key: key, variant: variant) != nil)
            for i in 0..<bundle.count {
                for bit in 0..<8 {
                    var t = bundle
                    t[i] ^= UInt8(1 << bit)
                    #expect(ValueCipher.openBytes(t, key: key, variant: variant) == nil, "byte \(i) bit \(bit)")
                }
            }
        }
    }

    @Test func everyBitFlipOfWrappedKeyAndAuthResponseFails() throws {
        for v in try CryptoFixtures.list("data_encryption_key") {
            let secret = try v.b64("accountSecret"), bundle = try v.b64("bundle")
            for i in 0..<bundle.count {
                for bit in 0..<8 {
                    var t = bundle; t[i] ^= UInt8(1 << bit)
                    #expect(DataKeyWrap.unwrap(t, recipientSecret: secret) == nil, "byte \(i) bit \(bit)")
                }
            }
        }
        for v in try CryptoFixtures.list("auth_response") {
            let secret = try v.b64("requestSecret"), bundle = try v.b64("response")
            for i in 0..<bundle.count {
                for bit in 0..<8 {
                    var t = bundle; t[i] ^= UInt8(1 << bit)
                    #expect(TerminalAuthResponse.decrypt(t, ephemeralSecret: secret) == nil, "byte \(i) bit \(bit)")
                }
            }
        }
    }

    @Test func everyBitFlipOfASecretboxFails() throws {
        let v = try #require(try CryptoFixtures.list("secretbox").last)
        let key = try v.b64("key"), nonce = try v.b64("nonce"), boxed = try v.b64("boxed")
        for i in 0..<boxed.count {
            var t = boxed; t[i] ^= 0x01
            #expect(SecretBox.open(t, nonce: nonce, key: key) == nil)
        }
        for i in 0..<24 {
            var n = nonce; n[i] ^= 0x80
            #expect(SecretBox.open(boxed, nonce: n, key: key) == nil)
        }
    }
}

@Suite struct CryptoBadInputTests {
    /// Truncations, empty, garbage and wrong key sizes give nil (never a crash).
    @Test(arguments: [("legacy_value", EncryptionVariant.legacy), ("datakey_value", EncryptionVariant.dataKey)])
    func valueDecryptRejectsBadInput(group: String, variant: EncryptionVariant) throws {
        for v in try CryptoFixtures.list(group) {
            let key = try v.b64("key"), bundle = try v.b64("bundle")
            for n in 0..<bundle.count {
                #expect(ValueCipher.decrypt(Array(bundle.prefix(n)), key: key, variant: variant) == nil, "prefix \(n)")
            }
            #expect(ValueCipher.decrypt(bundle + [0], key: key, variant: variant) == nil)
            #expect(ValueCipher.decrypt(bundle, key: Array(key.prefix(31)), variant: variant) == nil)
            #expect(ValueCipher.decrypt(bundle, key: [], variant: variant) == nil)
            #expect(ValueCipher.decrypt(bundle, key: SecureRandom.bytes(32), variant: variant) == nil)
            #expect(ValueCipher.decryptBase64("not base64!", key: key, variant: variant) == nil)
            #expect(ValueCipher.decryptBase64("", key: key, variant: variant) == nil)
        }
        for n in [0, 1, 12, 28, 29, 39, 40, 41, 100, 5000] {
            #expect(ValueCipher.decrypt(SecureRandom.bytes(n), key: SecureRandom.bytes(32), variant: variant) == nil)
        }
    }

    @Test func dataKeyWrongVersionByteIsRejected() {
        let key = SecureRandom.bytes(32)
        var bundle = ValueCipher.encrypt(["a": 1], key: key, variant: .dataKey)
        #expect(ValueCipher.decrypt(bundle, key: key, variant: .dataKey) == ["a": 1])
        bundle[0] = 1
        #expect(ValueCipher.decrypt(bundle, key: key, variant: .dataKey) == nil)
    }

    /// Authentic ciphertext whose plaintext is not JSON decrypts to nil.
    @Test(arguments: [EncryptionVariant.legacy, .dataKey])
    func nonJSONPlaintextIsRejected(variant: EncryptionVariant) {
        let key = SecureRandom.bytes(32)
        for text in ["not json", "", "{", "[1,]", "\u{FF}"] {
            let nonce = SecureRandom.bytes(variant == .legacy ? 24 : 12)
            let bundle = ValueCipher.sealBytes(Array(text.utf8), key: key, variant: variant, nonce: nonce)
            #expect(ValueCipher.openBytes(bundle, key: key, variant: variant) == Array(text.utf8))
            #expect(ValueCipher.decrypt(bundle, key: key, variant: variant) == nil, "\(text)")
        }
        let invalidUTF8 = ValueCipher.sealBytes([0x22, 0xC3, 0x28, 0x22], key: key, variant: variant,
                                                nonce: SecureRandom.bytes(variant == .legacy ? 24 : 12))
        _ = ValueCipher.decrypt(invalidUTF8, key: key, variant: variant)  // must not crash
    }

    @Test func boxAndSecretboxRejectBadSizes() {
        let key = SecureRandom.bytes(32), nonce = SecureRandom.bytes(24)
        for n in 0..<16 { #expect(SecretBox.open(SecureRandom.bytes(n), nonce: nonce, key: key) == nil) }
        #expect(SecretBox.open(SecureRandom.bytes(40), nonce: Array(nonce.prefix(23)), key: key) == nil)
        #expect(SecretBox.open(SecureRandom.bytes(40), nonce: nonce, key: Array(key.prefix(16))) == nil)
        let kp = Box.randomKeyPair()
        #expect(Box.open([], nonce: nonce, senderPublicKey: kp.publicKey, recipientSecret: kp.secretKey) == nil)
        #expect(Box.open(SecureRandom.bytes(48), nonce: nonce, senderPublicKey: kp.publicKey, recipientSecret: kp.secretKey) == nil)
        #expect(Box.open(SecureRandom.bytes(48), nonce: [], senderPublicKey: kp.publicKey, recipientSecret: kp.secretKey) == nil)
        #expect(Box.seal([1], nonce: [], recipientPublicKey: kp.publicKey, senderSecret: kp.secretKey) == nil)
        #expect(AESGCM.open(ciphertext: [], tag: [], key: key, nonce: SecureRandom.bytes(12)) == nil)
        #expect(AESGCM.open(ciphertext: [1], tag: SecureRandom.bytes(16), key: key, nonce: []) == nil)
        #expect(AESGCM.open(ciphertext: [], tag: SecureRandom.bytes(16), key: key, nonce: SecureRandom.bytes(12)) == nil)
    }

    @Test func wrappedKeyRejectsBadInput() throws {
        let v = try #require(try CryptoFixtures.list("data_encryption_key").first)
        let secret = try v.b64("accountSecret"), bundle = try v.b64("bundle")
        for n in 0..<bundle.count { #expect(DataKeyWrap.unwrap(Array(bundle.prefix(n)), recipientSecret: secret) == nil) }
        #expect(DataKeyWrap.unwrap(bundle + [0], recipientSecret: secret) == nil)
        var v1 = bundle; v1[0] = 1
        #expect(DataKeyWrap.unwrap(v1, recipientSecret: secret) == nil)
        #expect(DataKeyWrap.unwrap(bundle, recipientSecret: []) == nil)
        #expect(DataKeyWrap.unwrap(SecureRandom.bytes(105), recipientSecret: secret) == nil)
    }

    @Test func authResponseRejectsBadInput() throws {
        let v = try #require(try CryptoFixtures.list("auth_response").first)
        let secret = try v.b64("requestSecret"), bundle = try v.b64("response")
        for n in 0..<bundle.count { #expect(TerminalAuthResponse.decrypt(Array(bundle.prefix(n)), ephemeralSecret: secret) == nil) }
        #expect(TerminalAuthResponse.decrypt(bundle, ephemeralSecret: []) == nil)
        #expect(TerminalAuthResponse.decrypt(SecureRandom.bytes(200), ephemeralSecret: secret) == nil)
    }

    /// Plaintext rules: 32 bytes → v1; first byte 0 (and ≥ 33 bytes) → v2; otherwise nil.
    @Test func authResponsePlaintextRules() {
        let request = Box.randomKeyPair()
        func response(_ plain: [UInt8]) -> [UInt8] {
            let eph = Box.randomKeyPair(), nonce = SecureRandom.bytes(24)
            return eph.publicKey + nonce + Box.seal(plain, nonce: nonce, recipientPublicKey: request.publicKey, senderSecret: eph.secretKey)!
        }
        let secret = SecureRandom.bytes(32)
        #expect(TerminalAuthResponse.decrypt(response(secret), ephemeralSecret: request.secretKey) == .legacy(secret: secret))
        var zeroFirst = secret; zeroFirst[0] = 0   // 32 bytes wins even when the first byte is 0
        #expect(TerminalAuthResponse.decrypt(response(zeroFirst), ephemeralSecret: request.secretKey) == .legacy(secret: zeroFirst))
        let pk = SecureRandom.bytes(32)
        #expect(TerminalAuthResponse.decrypt(response([0] + pk), ephemeralSecret: request.secretKey) == .dataKey(publicKey: pk))
        #expect(TerminalAuthResponse.decrypt(response([0] + pk + [9, 9]), ephemeralSecret: request.secretKey) == .dataKey(publicKey: pk))
        #expect(TerminalAuthResponse.decrypt(response([1] + pk), ephemeralSecret: request.secretKey) == nil)
        #expect(TerminalAuthResponse.decrypt(response([]), ephemeralSecret: request.secretKey) == nil)
        #expect(TerminalAuthResponse.decrypt(response([0] + Array(pk.prefix(10))), ephemeralSecret: request.secretKey) == nil)
        #expect(TerminalAuthResponse.decrypt(response(SecureRandom.bytes(31)), ephemeralSecret: request.secretKey) == nil)
    }
}

@Suite struct EncodingTests {
    /// RFC 4648 §10.
    @Test func base64KnownAnswers() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
                     ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        for (plain, b64) in cases {
            #expect(Base64.encode(Array(plain.utf8)) == b64)
            #expect(Base64.decode(b64) == Array(plain.utf8))
            let unpadded = b64.replacingOccurrences(of: "=", with: "")
            #expect(Base64.decode(unpadded) == Array(plain.utf8))
            #expect(Base64.encodeURL(Array(plain.utf8)) == unpadded)
            #expect(Base64.decodeURL(unpadded) == Array(plain.utf8))
            #expect(Base64.decodeURL(b64) == Array(plain.utf8))
            #expect(Base64.decodeAny(b64) == Array(plain.utf8))
        }
    }

    @Test func base64Alphabets() {
        let bytes: [UInt8] = [251, 255, 0, 1, 2, 3]
        #expect(Base64.encode(bytes) == "+/8AAQID")
        #expect(Base64.encodeURL(bytes) == "-_8AAQID")
        #expect(Base64.decode("+/8AAQID") == bytes)
        #expect(Base64.decodeURL("-_8AAQID") == bytes)
        #expect(Base64.decode("-_8AAQID") == nil)
        #expect(Base64.decodeURL("+/8AAQID") == nil)
        #expect(Base64.decodeAny("-_8AAQID") == bytes)
        #expect(Base64.decodeAny("+/8AAQID") == bytes)
        #expect(Base64.decodeAny("+_8AAQID") == bytes)
    }

    @Test(arguments: ["Z", "Zm9v!", "Zg===", "=Zg", "Zm 9v", "Zg=a", "Zg=", "Zm8==", "Zm9v\n", "ÿÿÿÿ", "Zm9vY"])
    func base64RejectsGarbage(_ text: String) {
        #expect(Base64.decode(text) == nil)
        #expect(Base64.decodeAny(text) == nil)
    }

    @Test func base64RandomRoundTrips() {
        for n in 0..<200 {
            let b = SecureRandom.bytes(n)
            #expect(Base64.decode(Base64.encode(b)) == b)
            #expect(Base64.decodeURL(Base64.encodeURL(b)) == b)
            #expect(Base64.encode(b).count == (n + 2) / 3 * 4)
        }
        // Cross-check with Foundation.
        let b = SecureRandom.bytes(1000)
        #expect(Base64.encode(b) == Data(b).base64EncodedString())
    }

    @Test func backupKeyFormat() {
        let zeros = [UInt8](repeating: 0, count: 32)
        #expect(BackupKey.encode(zeros) == "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AA")
        let seq = (0..<32).map { UInt8($0) }
        let text = BackupKey.encode(seq)
        #expect(text == "AAAQE-AYEAU-DAOCA-JBIFQ-YDIOB-4IBCE-QTCQK-RMFYY-DENBW-HA5DY-PQ")
        #expect(BackupKey.decode(text) == seq)
        // Confusable digits are read as letters.
        #expect(BackupKey.decode(text.replacingOccurrences(of: "O", with: "0").replacingOccurrences(of: "I", with: "1")
                                 .replacingOccurrences(of: "B", with: "8")) == seq)
        for _ in 0..<50 {
            let s = SecureRandom.bytes(32)
            #expect(BackupKey.decode(BackupKey.encode(s)) == s)
        }
    }

    @Test(arguments: ["", "AAAAA", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-A",
                      "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AA!",
                      "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA",
                      "ey4PhywdPhOlsD797roHdPrwm2m4iQIDc7tIw2iK1qQ=", "AAAAA_AAAAA"])
    func backupKeyRejectsGarbage(_ text: String) {
        #expect(BackupKey.decode(text) == nil)
    }
}
