/// Number and text formatting without Foundation's `String(format:)`.
public enum Format {
    /// `value` with exactly `decimals` digits after the point (rounded half away from zero).
    public static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        let d = max(0, min(decimals, 12))
        var scale = 1.0
        for _ in 0..<d { scale *= 10 }
        let negative = value < 0
        let scaled = (abs(value) * scale).rounded(.toNearestOrAwayFromZero)
        guard scaled < 9.0e18 else { return "\(value)" }
        let n = UInt64(scaled)
        let p = UInt64(scale)
        var s = String(n / p)
        if d > 0 {
            let frac = String(n % p)
            s += "." + String(repeating: "0", count: d - frac.count) + frac
        }
        return (negative && n != 0 ? "-" : "") + s
    }

    /// `text` padded with spaces on the right to `width` characters (never truncated).
    public static func padRight(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// A byte count as `12.3 KiB` / `4.0 MiB` / `1.2 GiB` (`N B` below 1 KiB).
    public static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) B" }
        if n < 1 << 20 { return fixed(Double(n) / 1024, 1) + " KiB" }
        if n < 1 << 30 { return fixed(Double(n) / 1048576, 1) + " MiB" }
        return fixed(Double(n) / 1073741824, 1) + " GiB"
    }
}
