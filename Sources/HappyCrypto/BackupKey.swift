import HappyCore

/// The app's backup-key text: RFC 4648 base32 (upper case, no padding) of the
/// 32-byte secret, in groups of five joined by `-`.
public enum BackupKey {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ secret: [UInt8]) -> String {
        var chars = [UInt8]()
        var acc: UInt32 = 0, bits = 0
        for b in secret {
            acc = (acc << 8 | UInt32(b)) & 0xFFFF
            bits += 8
            while bits >= 5 {
                bits -= 5
                chars.append(alphabet[Int(acc >> UInt32(bits) & 31)])
            }
        }
        if bits > 0 { chars.append(alphabet[Int(acc << UInt32(5 - bits) & 31)]) }
        var out = [UInt8]()
        for (i, c) in chars.enumerated() {
            if i > 0 && i % 5 == 0 { out.append(UInt8(ascii: "-")) }
            out.append(c)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Forgiving decode: any case, spaces/tabs/newlines and dashes anywhere (or none),
    /// trailing `=` padding, and the digits 0/1/8 read as O/I/B (not in the alphabet).
    /// Returns nil for any other character or when the result is not 32 bytes.
    public static func decode(_ text: String) -> [UInt8]? {
        var acc: UInt32 = 0, bits = 0
        var out = [UInt8]()
        var sawPad = false
        for var c in text.utf8 {
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                continue
            case UInt8(ascii: "="):
                sawPad = true; continue
            default: break
            }
            if sawPad { return nil }
            if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") { c -= 32 }
            if c == UInt8(ascii: "0") { c = UInt8(ascii: "O") }
            if c == UInt8(ascii: "1") { c = UInt8(ascii: "I") }
            if c == UInt8(ascii: "8") { c = UInt8(ascii: "B") }
            let v: UInt32
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { v = UInt32(c - UInt8(ascii: "A")) }
            else if c >= UInt8(ascii: "2") && c <= UInt8(ascii: "7") { v = UInt32(c - UInt8(ascii: "2")) + 26 }
            else { return nil }
            acc = (acc << 5 | v) & 0xFFFF
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        guard out.count == 32 else {
            Wipe.bytes(&out)
            return nil
        }
        return out
    }
}
