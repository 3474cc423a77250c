import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyTestSupport

/// Regressions found by the fuzz targets in Fuzz/ (see Fuzz/README.md).
@Suite("RealtimeFuzzRegression")
struct RealtimeFuzzRegressionTests {
    /// Fuzz/ engineio, corpus `regress-huge-ping` / `regress-negative-ping`: an open
    /// packet with pingInterval 1e300 or -5000 trapped (UInt64 conversion of the read
    /// deadline in `run`). Such packets are now refused at `open`.
    @Test func unusablePingTimingIsRefused() {
        #expect(EngineIOConnection.pingTiming(intervalMs: 1e300, timeoutMs: 1) == nil)
        #expect(EngineIOConnection.pingTiming(intervalMs: -5000, timeoutMs: 1) == nil)
        #expect(EngineIOConnection.pingTiming(intervalMs: 25000, timeoutMs: .nan) == nil)
        #expect(EngineIOConnection.pingTiming(intervalMs: 25000, timeoutMs: .infinity) == nil)
        #expect(EngineIOConnection.pingTiming(intervalMs: Double(Int32.max) + 1, timeoutMs: 0) == nil)
    }

    @Test func usualPingTimingIsKept() throws {
        let t = try #require(EngineIOConnection.pingTiming(intervalMs: 25000, timeoutMs: 20000))
        #expect(t.interval == 25 && t.timeout == 20)
        let z = try #require(EngineIOConnection.pingTiming(intervalMs: 0, timeoutMs: Double(Int32.max)))
        #expect(z.interval == 0)
    }
}
