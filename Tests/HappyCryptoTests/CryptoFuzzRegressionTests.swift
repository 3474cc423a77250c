import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyTestSupport

/// Regressions found by scripts/sanitize.sh (see Fuzz/README.md).
@Suite("CryptoFuzzRegression")
struct CryptoFuzzRegressionTests {
    /// ThreadSanitizer: a test changing `CryptoTuning.poly1305OpenSSLThreshold` raced
    /// with seals on other threads. The knob is atomic now; this test changes it while
    /// sealing concurrently (a data race report under `scripts/sanitize.sh thread`
    /// without the fix) and checks both Poly1305 paths give the same bytes.
    @Test func thresholdChangesWhileSealingConcurrently() async {
        let saved = CryptoTuning.poly1305OpenSSLThreshold
        defer { CryptoTuning.poly1305OpenSSLThreshold = saved }
        let key = [UInt8](repeating: 7, count: 32), nonce = [UInt8](repeating: 9, count: 24)
        let plain = [UInt8](repeating: 1, count: 5000)
        let expected = SecretBox.seal(plain, nonce: nonce, key: key)
        await withTaskGroup(of: Bool.self) { g in
            g.addTask {
                for i in 0..<200 { CryptoTuning.poly1305OpenSSLThreshold = i % 2 == 0 ? 0 : Int.max }
                return true
            }
            for _ in 0..<4 {
                g.addTask { (0..<50).allSatisfy { _ in SecretBox.seal(plain, nonce: nonce, key: key) == expected } }
            }
            for await ok in g { #expect(ok) }
        }
    }
}
