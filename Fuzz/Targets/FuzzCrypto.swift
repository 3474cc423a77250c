// Decrypt paths (Crypto/ValueCipher.swift): ValueCipher.decrypt (legacy + dataKey),
// DataKeyWrap.unwrap, TerminalAuthResponse.decrypt. The first byte picks a mode:
//   low bits 0: the rest is an attacker-chosen bundle → must not crash;
//            1: the rest is a plaintext → seal, open must give it back;
//            2: seal, flip one bit (position from the input) → open must refuse.

let fuzzKey: [UInt8] = (1...32).map { UInt8($0) }
let fuzzSecret: [UInt8] = (1...32).map { UInt8(100 + $0) }
let fuzzNonce24: [UInt8] = (1...24).map { UInt8(200 + $0) }
let fuzzNonce12: [UInt8] = Array(fuzzNonce24.prefix(12))

@inline(__always) func flipBit(_ b: inout [UInt8], seed: [UInt8]) {
    var h: UInt64 = 1469598103934665603
    for x in seed { h = (h ^ UInt64(x)) &* 1099511628211 }
    let bit = Int(h % UInt64(b.count * 8))
    b[bit / 8] ^= UInt8(1 << (bit % 8))
}

func fuzzValueCipher(_ data: [UInt8]) {
    guard let mode = data.first else { return }
    let rest = Array(data.dropFirst())
    let variant: EncryptionVariant = mode & 4 == 0 ? .legacy : .dataKey
    let nonce = variant == .legacy ? fuzzNonce24 : fuzzNonce12
    switch mode & 3 {
    case 0:
        _ = ValueCipher.decrypt(rest, key: fuzzKey, variant: variant)
        _ = ValueCipher.decryptBase64(String(decoding: rest, as: UTF8.self), key: fuzzKey, variant: variant)
    case 1:
        let value = (try? JSON.parse(rest)) ?? .string(String(decoding: rest, as: UTF8.self))
        let sealed = ValueCipher.encrypt(value, key: fuzzKey, variant: variant, nonce: nonce)
        guard let back = ValueCipher.decrypt(sealed, key: fuzzKey, variant: variant) else { fatalError("seal/open failed") }
        guard back == (try? JSON.parse(value.serialized())) else { fatalError("seal/open changed the value") }
    default:
        var sealed = ValueCipher.sealBytes(rest, key: fuzzKey, variant: variant, nonce: nonce)
        flipBit(&sealed, seed: rest)
        if ValueCipher.openBytes(sealed, key: fuzzKey, variant: variant) != nil { fatalError("tampered bundle accepted") }
    }
}

func fuzzDataKeyUnwrap(_ data: [UInt8]) {
    guard let mode = data.first else { return }
    let rest = Array(data.dropFirst())
    switch mode & 3 {
    case 0:
        _ = DataKeyWrap.unwrap(rest, recipientSecret: fuzzSecret)
    case 3:
        // An arbitrary recipient key (a server-chosen content key): wrap must throw for an
        // unusable one and never trap.
        let pub = Array(rest.prefix(32))
        do {
            let wrapped = try DataKeyWrap.wrap(fuzzNonce24 + fuzzNonce24.prefix(8), recipientPublicKey: pub,
                                               ephemeralSecret: Array(fuzzSecret.reversed()), nonce: fuzzNonce24)
            if wrapped.count != DataKeyWrap.bundleBytes || !X25519.isUsablePublicKey(pub) { fatalError("wrap accepted an unusable key") }
        } catch {
            if X25519.isUsablePublicKey(pub) { fatalError("wrap refused a usable key: \(error)") }
        }
    default:
        var key = Array(rest.prefix(32))
        while key.count < 32 { key.append(UInt8(key.count)) }
        let pub = X25519.publicKey(secret: fuzzSecret)
        var eph = Array(rest.dropFirst(32).prefix(32))
        while eph.count < 32 { eph.append(0x42) }
        guard var wrapped = try? DataKeyWrap.wrap(key, recipientPublicKey: pub, ephemeralSecret: eph, nonce: fuzzNonce24) else {
            fatalError("wrap refused our own public key")
        }
        if mode & 3 == 1 {
            guard DataKeyWrap.unwrap(wrapped, recipientSecret: fuzzSecret) == key else { fatalError("wrap/unwrap failed") }
        } else {
            flipBit(&wrapped, seed: rest)
            if DataKeyWrap.unwrap(wrapped, recipientSecret: fuzzSecret) != nil { fatalError("tampered key bundle accepted") }
        }
    }
}

func fuzzTerminalAuth(_ data: [UInt8]) {
    guard let mode = data.first else { return }
    let rest = Array(data.dropFirst())
    switch mode & 3 {
    case 0:
        _ = TerminalAuthResponse.decrypt(rest, ephemeralSecret: fuzzSecret)
    default:
        // The server side: box(plain) from a server ephemeral key to our public key.
        let serverSecret: [UInt8] = (1...32).map { UInt8(50 + $0) }
        let serverPublic = X25519.publicKey(secret: serverSecret)
        let ours = X25519.publicKey(secret: fuzzSecret)
        guard let boxed = Box.seal(rest, nonce: fuzzNonce24, recipientPublicKey: ours, senderSecret: serverSecret) else { return }
        var bundle = serverPublic + fuzzNonce24 + boxed
        if mode & 3 == 1 {
            let r = TerminalAuthResponse.decrypt(bundle, ephemeralSecret: fuzzSecret)
            let expected: TerminalAuthResponse? = rest.count == 32 ? .legacy(secret: rest)
                : (rest.count >= 33 && rest[0] == 0 ? .dataKey(publicKey: Array(rest[1..<33])) : nil)
            guard r == expected else { fatalError("terminal auth response decoded wrongly") }
        } else {
            flipBit(&bundle, seed: rest)
            if TerminalAuthResponse.decrypt(bundle, ephemeralSecret: fuzzSecret) != nil { fatalError("tampered auth response accepted") }
        }
    }
}
