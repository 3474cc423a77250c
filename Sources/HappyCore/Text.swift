/// Small string helpers the product needs without Foundation's text APIs.
extension StringProtocol {
    /// Drops, from both ends, every character made only of scalars listed in `set`
    /// (scalar-wise, so `"\r\n"` — one Character — is trimmed by a set with CR and LF).
    public func trimmingCharacters(in set: String) -> String {
        let scalars = Set(set.unicodeScalars)
        func drop(_ c: Character) -> Bool { c.unicodeScalars.allSatisfy { scalars.contains($0) } }
        var s = self[...]
        while let f = s.first, drop(f) { s = s.dropFirst() }
        while let l = s.last, drop(l) { s = s.dropLast() }
        return String(s)
    }

    /// Without leading and trailing white space (spaces, tabs, CR, LF, VT, FF).
    public var trimmed: String { trimmingCharacters(in: " \t\r\n\u{0B}\u{0C}") }
}

extension String {
    /// Padded with spaces on the right to `width` characters (never truncated).
    public func padded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

extension StringProtocol {
    /// Without trailing spaces and tabs.
    public var trimmingTrailingWhitespace: String {
        var s = self[...]
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
