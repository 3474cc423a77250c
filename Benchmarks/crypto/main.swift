// happy-bench-crypto: throughput of HappyCrypto's secretbox and AES-256-GCM.
// Output, one line per measurement: `<name> <bytes> <MB/s>` (MB = 10^6 bytes).
// Run through Benchmarks/crypto/run.sh, which also measures libsodium (PyNaCl)
// and Python `cryptography` in the same run and prints ratios.
// Flags: `--poly` prints the Poly1305 Swift/OpenSSL crossover table instead;
// `--gcm1k` runs only AES-GCM on 1 KiB (for profiling).
import Foundation
import HappyCore
import HappyCrypto

@inline(never) func blackHole(_ x: [UInt8]) { if x.count == -1 { print(x) } }

/// Best of `rounds` runs, each at least `minSeconds` long.
func measure(bytes: Int, rounds: Int = 3, minSeconds: Double = 0.3, _ body: () -> Void) -> Double {
    var best = 0.0
    for _ in 0..<rounds {
        var iterations = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0
        repeat {
            body()
            iterations += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < minSeconds
        best = max(best, Double(iterations * bytes) / elapsed / 1e6)
    }
    return best
}

let key = SecureRandom.bytes(32)
let nonce24 = SecureRandom.bytes(24)
let nonce12 = SecureRandom.bytes(12)
let defaultThreshold = CryptoTuning.poly1305OpenSSLThreshold

for size in (CommandLine.arguments.count > 1 ? [] : [64, 256, 1024, 1 << 20]) {
    let msg = SecureRandom.bytes(size)
    let variants: [(String, Int)] = [("secretbox", defaultThreshold), ("secretbox-poly-swift", Int.max),
                                     ("secretbox-poly-openssl", 0)]
    for (name, threshold) in variants {
        CryptoTuning.poly1305OpenSSLThreshold = threshold
        let mbs = measure(bytes: size) { blackHole(SecretBox.seal(msg, nonce: nonce24, key: key)) }
        print("\(name) \(size) \(String(format: "%.1f", mbs))")
    }
    CryptoTuning.poly1305OpenSSLThreshold = defaultThreshold
    let boxed = SecretBox.seal(msg, nonce: nonce24, key: key)
    let open = measure(bytes: size) { blackHole(SecretBox.open(boxed, nonce: nonce24, key: key)!) }
    print("secretbox-open \(size) \(String(format: "%.1f", open))")
    let gcm = measure(bytes: size) { blackHole(AESGCM.seal(msg, key: key, nonce: nonce12).ciphertext) }
    print("aesgcm \(size) \(String(format: "%.1f", gcm))")
}
if CommandLine.arguments.contains("--poly") {
    for size in [64, 128, 192, 256, 384, 512, 768, 1024, 2048] {
        let msg = SecureRandom.bytes(size)
        var r: [Int: Double] = [:]
        for _ in 0..<3 { for t in [0, Int.max] {
            CryptoTuning.poly1305OpenSSLThreshold = t
            r[t] = max(r[t] ?? 0, measure(bytes: size, rounds: 2, minSeconds: 0.15) { blackHole(SecretBox.seal(msg, nonce: nonce24, key: key)) })
        } }
        print("poly \(size) openssl \(Int(r[0]!)) swift \(Int(r[Int.max]!))")
    }
}
if CommandLine.arguments.contains("--gcm1k") {
    let msg = SecureRandom.bytes(1024)
    print("aesgcm 1024 \(String(format: "%.1f", measure(bytes: 1024, rounds: 3, minSeconds: 1) { blackHole(AESGCM.seal(msg, key: key, nonce: nonce12).ciphertext) }))")
}
