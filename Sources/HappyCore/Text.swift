/// Small string helpers the product needs without Foundation's text APIs.
extension StringProtocol {
    /// Drops the given characters from both ends (default: spaces, tabs, CR, LF).
    public func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = self[...]
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }

    /// Without leading and trailing white space (spaces, tabs, CR, LF, VT, FF).
    public var trimmed: String { trimmingCharacters(in: " \t\r\n\u{0B}\u{0C}") }
}
