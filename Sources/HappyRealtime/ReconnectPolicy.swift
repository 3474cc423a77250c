import HappyCore
import HappyNet
/// Reconnect schedule (SPEC §4.4): retries after 0.5 s, 1 s, 2 s, then every 3 s,
/// each ±20 % jitter, forever; the schedule restarts after a connection that stayed
/// up 30 s. A pure value: the caller owns timing and randomness.
public struct ReconnectPolicy: Sendable, Equatable {
    public var schedule: [Double]
    public var steadyDelay: Double
    /// Relative jitter: each delay is drawn from base × [1 − jitter, 1 + jitter].
    public var jitter: Double
    /// A connection that lasted at least this long resets the schedule.
    public var stableAfter: Double
    /// Attempts made since the last reset.
    public private(set) var attempt: Int = 0

    /// Wait after a rejected token (`Invalid authentication token`, 401).
    public static let tokenRejectedDelay: Double = 60

    public init(schedule: [Double] = [0.5, 1, 2], steadyDelay: Double = 3, jitter: Double = 0.2, stableAfter: Double = 30) {
        self.schedule = schedule
        self.steadyDelay = steadyDelay
        self.jitter = jitter
        self.stableAfter = stableAfter
    }

    /// The un-jittered delay of the next attempt.
    public var nextBaseDelay: Double { attempt < schedule.count ? schedule[attempt] : steadyDelay }

    /// Delay before the next attempt, advancing the schedule. `unit` is uniform in [0, 1).
    public mutating func nextDelay(unit: Double) -> Double {
        let base = nextBaseDelay
        if attempt < Int.max { attempt += 1 }
        let u = min(max(unit, 0), 1)
        return base * (1 + jitter * (2 * u - 1))
    }

    public mutating func nextDelay<G: RandomNumberGenerator>(using rng: inout G) -> Double {
        nextDelay(unit: Double.random(in: 0..<1, using: &rng))
    }

    public mutating func nextDelay() -> Double {
        var g = SystemRandomNumberGenerator()
        return nextDelay(using: &g)
    }

    /// The jittered delay after `failures` consecutive failures of one operation (a retry
    /// of its own, outside the connection's schedule): the schedule's entry `failures`.
    public func delay(afterFailures failures: Int) -> Double {
        var p = self
        p.attempt = max(0, failures)
        return p.nextDelay()
    }

    /// Reports how long the connection that just ended stayed up.
    public mutating func connectionEnded(uptime: Double) {
        if uptime >= stableAfter { attempt = 0 }
    }

    public mutating func reset() { attempt = 0 }
}
