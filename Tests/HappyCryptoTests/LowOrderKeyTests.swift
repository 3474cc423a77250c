import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto

/// The X25519 public keys of small order (1, 2, 4, 8), canonical and not.
enum LowOrderPoints {
    static func hex(_ s: String) -> [UInt8] {
        var out = [UInt8]()
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// libsodium's blocklist (0, 1, the two points of order 8, p - 1, p, p + 1), each also
    /// with bit 255 set (X25519 ignores it). Checked against libsodium: every one gives
    /// the all-zero shared secret.
    static let canonical = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ].map(hex)
    static let all: [[UInt8]] = canonical.flatMap { p -> [[UInt8]] in
        var high = p
        high[31] |= 0x80
        return [p, high]
    }
}

@Suite struct LowOrderKeyTests {
    @Test func lowOrderPointsAreUnusable() {
        for (i, p) in LowOrderPoints.all.enumerated() {
            #expect(!X25519.isUsablePublicKey(p), "point \(i)")
        }
        #expect(!X25519.isUsablePublicKey([]))
        #expect(!X25519.isUsablePublicKey([UInt8](repeating: 9, count: 31)))
    }

    @Test func realKeysAreUsable() {
        for _ in 0..<50 { #expect(X25519.isUsablePublicKey(Box.randomKeyPair().publicKey)) }
        #expect(X25519.isUsablePublicKey([9] + [UInt8](repeating: 0, count: 31)))  // the base point
    }

    @Test func wrapThrowsForAnUnusableRecipientAndNeverTraps() throws {
        let key = SecureRandom.bytes(32)
        for p in LowOrderPoints.all {
            #expect(throws: CryptoError.unusablePublicKey) { try DataKeyWrap.wrap(key, recipientPublicKey: p) }
            #expect(throws: CryptoError.unusablePublicKey) {
                try DataKeyWrap.wrap(key, recipientPublicKey: p, ephemeralSecret: SecureRandom.bytes(32), nonce: SecureRandom.bytes(24))
            }
        }
        let good = Box.randomKeyPair()
        #expect(throws: CryptoError.wrongLength(what: "the recipient public key", expected: 32, got: 31)) {
            try DataKeyWrap.wrap(key, recipientPublicKey: Array(good.publicKey.prefix(31)))
        }
        #expect(throws: CryptoError.wrongLength(what: "the wrapped key", expected: 32, got: 16)) {
            try DataKeyWrap.wrap(Array(key.prefix(16)), recipientPublicKey: good.publicKey)
        }
        #expect(throws: CryptoError.wrongLength(what: "the nonce", expected: 24, got: 12)) {
            try DataKeyWrap.wrap(key, recipientPublicKey: good.publicKey, ephemeralSecret: SecureRandom.bytes(32), nonce: SecureRandom.bytes(12))
        }
        // A usable key still wraps and unwraps.
        let w = try DataKeyWrap.wrap(key, recipientPublicKey: good.publicKey)
        #expect(DataKeyWrap.unwrap(w, recipientSecret: good.secretKey) == key)
    }
}
