/// Base64 (RFC 4648). `encode` = standard alphabet with padding (the wire format);
/// `encodeURL` = URL-safe alphabet without padding (auth URLs). Decoders accept
/// missing padding, reject anything outside the alphabet (no whitespace, no stray
/// `=`), and reject impossible lengths.
public enum Base64 {
    private static let std: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let url: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 0...63 for an alphabet symbol, 0xFF otherwise. Flags: 1 = std only, 2 = url only.
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in std.enumerated() { t[Int(c)] = UInt8(i) }
        t[Int(UInt8(ascii: "-"))] = 62
        t[Int(UInt8(ascii: "_"))] = 63
        return t
    }()

    public static func encode(_ data: [UInt8]) -> String { encode(data, alphabet: std, pad: true) }
    public static func encodeURL(_ data: [UInt8]) -> String { encode(data, alphabet: url, pad: false) }

    public static func decode(_ text: String) -> [UInt8]? { decode(text, allowStd: true, allowURL: false) }
    public static func decodeURL(_ text: String) -> [UInt8]? { decode(text, allowStd: false, allowURL: true) }
    /// Accepts either alphabet (also mixed), padded or not.
    public static func decodeAny(_ text: String) -> [UInt8]? { decode(text, allowStd: true, allowURL: true) }

    private static func encode(_ data: [UInt8], alphabet: [UInt8], pad: Bool) -> String {
        let full = data.count / 3, rest = data.count % 3
        var out = [UInt8]()
        out.reserveCapacity((data.count + 2) / 3 * 4)
        alphabet.withUnsafeBufferPointer { a in
            data.withUnsafeBufferPointer { d in
                var i = 0
                for _ in 0..<full {
                    let v = UInt32(d[i]) << 16 | UInt32(d[i + 1]) << 8 | UInt32(d[i + 2])
                    out.append(a[Int(v >> 18)]); out.append(a[Int(v >> 12 & 63)])
                    out.append(a[Int(v >> 6 & 63)]); out.append(a[Int(v & 63)])
                    i += 3
                }
                if rest == 1 {
                    let v = UInt32(d[i]) << 16
                    out.append(a[Int(v >> 18)]); out.append(a[Int(v >> 12 & 63)])
                    if pad { out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "=")) }
                } else if rest == 2 {
                    let v = UInt32(d[i]) << 16 | UInt32(d[i + 1]) << 8
                    out.append(a[Int(v >> 18)]); out.append(a[Int(v >> 12 & 63)]); out.append(a[Int(v >> 6 & 63)])
                    if pad { out.append(UInt8(ascii: "=")) }
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func decode(_ text: String, allowStd: Bool, allowURL: Bool) -> [UInt8]? {
        var s = Array(text.utf8)
        // Strip padding: at most two '=' and only when the padded length is a multiple of 4.
        var pads = 0
        while let last = s.last, last == UInt8(ascii: "=") { s.removeLast(); pads += 1 }
        if pads > 2 { return nil }
        if pads > 0 && (s.count + pads) % 4 != 0 { return nil }
        if s.count % 4 == 1 { return nil }
        var out = [UInt8]()
        out.reserveCapacity(s.count * 3 / 4)
        var acc: UInt32 = 0, bits = 0
        for c in s {
            switch c {
            case UInt8(ascii: "+"), UInt8(ascii: "/"): if !allowStd { return nil }
            case UInt8(ascii: "-"), UInt8(ascii: "_"): if !allowURL { return nil }
            default: break
            }
            let v = table[Int(c)]
            if v == 0xFF { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}
