import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A JSON value. Our own parser and serializer: exact control over number and
/// boolean handling (Foundation's JSONSerialization blurs them on Linux), bounded
/// nesting depth, and no crash on any input.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    // MARK: accessors
    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var double: Double? { if case .number(let d) = self { return d }; return nil }
    /// The value as an integer, if it is a number with no fractional part.
    public var int: Int? {
        if case .number(let d) = self, d.rounded() == d, abs(d) < 9.2e18 { return Int(d) }
        return nil
    }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    public static func int(_ v: Int) -> JSON { .number(Double(v)) }
    public static func optional(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
    public static func optional(_ v: Int?) -> JSON { v.map { .number(Double($0)) } ?? .null }
    public static func optional(_ v: Double?) -> JSON { v.map { .number($0) } ?? .null }
    public static func optional(_ v: Bool?) -> JSON { v.map { .bool($0) } ?? .null }

    /// Returns a copy with `key` set (objects only; other values are returned unchanged).
    public func setting(_ key: String, _ value: JSON?) -> JSON {
        guard case .object(var o) = self else { return self }
        o[key] = value
        return .object(o)
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        var o: [String: JSON] = [:]
        for (k, v) in elements { o[k] = v }
        self = .object(o)
    }
    public init(nilLiteral: ()) { self = .null }
}

// MARK: - Parsing

public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSON {
    public static let maxDepth = 256

    public static func parse(_ text: String) throws -> JSON {
        try parse(Array(text.utf8))
    }
    public static func parse(_ data: Data) throws -> JSON {
        try parse([UInt8](data))
    }
    public static func parse<C: Collection>(_ bytes: C) throws -> JSON where C.Element == UInt8 {
        if let a = bytes as? [UInt8] {
            return try a.withUnsafeBufferPointer { try parseBuffer($0) }
        }
        let a = Array(bytes)
        return try a.withUnsafeBufferPointer { try parseBuffer($0) }
    }

    static func parseBuffer(_ buf: UnsafeBufferPointer<UInt8>) throws -> JSON {
        var p = JSONByteParser(buf: buf)
        p.skipWS()
        let v = try p.value(depth: 0)
        p.skipWS()
        if p.i != buf.count { throw p.err("unexpected trailing data") }
        return v
    }
}

struct JSONByteParser {
    let buf: UnsafeBufferPointer<UInt8>
    var i = 0

    init(buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    func err(_ r: String) -> JSONParseError { JSONParseError(offset: i, reason: r) }

    mutating func skipWS() {
        while i < buf.count {
            let c = buf[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
    }

    mutating func value(depth: Int) throws -> JSON {
        guard depth < JSON.maxDepth else { throw err("nesting too deep") }
        guard i < buf.count else { throw err("unexpected end of input") }
        switch buf[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw err("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= buf.count else { throw err("unexpected end of input") }
        let w = word.utf8Start
        for k in 0..<n where buf[i + k] != w[k] { throw err("invalid literal") }
        i += n
    }

    mutating func object(depth: Int) throws -> JSON {
        i += 1
        var o: [String: JSON] = [:]
        skipWS()
        if i < buf.count, buf[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
        while true {
            skipWS()
            guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { throw err("expected object key") }
            let k = try string()
            skipWS()
            guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw err("expected ':'") }
            i += 1
            skipWS()
            o[k] = try value(depth: depth + 1)
            skipWS()
            guard i < buf.count else { throw err("unexpected end of input") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
            throw err("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws -> JSON {
        i += 1
        var a: [JSON] = []
        skipWS()
        if i < buf.count, buf[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
        while true {
            skipWS()
            a.append(try value(depth: depth + 1))
            skipWS()
            guard i < buf.count else { throw err("unexpected end of input") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
            throw err("expected ',' or ']'")
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= buf.count else { throw err("bad \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - 48)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - 87)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - 55)
            default: throw err("bad \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func string() throws -> String {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < buf.count {
            let c = buf[i]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw err("control character in string") }
            i += 1
        }
        var out = [UInt8](buf[start..<i])
        while i < buf.count {
            let c = buf[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c < 0x20 { throw err("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < buf.count else { break }
            let e = buf[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if cp >= 0xD800 && cp < 0xDC00 {
                    // high surrogate: expect a low one
                    if i + 6 <= buf.count, buf[i] == UInt8(ascii: "\\"), buf[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let lo = try hex4()
                        if lo >= 0xDC00 && lo < 0xE000 {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                        } else {
                            cp = 0xFFFD
                        }
                    } else {
                        cp = 0xFFFD
                    }
                } else if cp >= 0xDC00 && cp < 0xE000 {
                    cp = 0xFFFD
                }
                let scalar = Unicode.Scalar(cp) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw err("bad escape")
            }
        }
        throw err("unterminated string")
    }

    mutating func number() throws -> Double {
        let start = i
        if buf[i] == UInt8(ascii: "-") { i += 1 }
        guard i < buf.count else { throw err("bad number") }
        if buf[i] == UInt8(ascii: "0") {
            i += 1
        } else if buf[i] >= UInt8(ascii: "1") && buf[i] <= UInt8(ascii: "9") {
            while i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 { i += 1 }
        } else {
            throw err("bad number")
        }
        if i < buf.count, buf[i] == UInt8(ascii: ".") {
            i += 1
            let f = i
            while i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 { i += 1 }
            if i == f { throw err("bad number") }
        }
        if i < buf.count, buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E") {
            i += 1
            if i < buf.count, buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
            let f = i
            while i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 { i += 1 }
            if i == f { throw err("bad number") }
        }
        let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
        guard let d = Double(s), d.isFinite else { throw err("bad number") }
        return d
    }
}

// MARK: - Serializing

extension JSON {
    /// Compact serialization with sorted keys (deterministic output).
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(64)
        write(into: &out, pretty: pretty, indent: 0)
        return out
    }

    public var data: Data { Data(serialized().utf8) }
    public var bytes: [UInt8] { Array(serialized().utf8) }

    func write(into out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let d): out += JSON.formatNumber(d)
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (k, v) in a.enumerated() {
                if k > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                v.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{"
            for (k, key) in o.keys.sorted().enumerated() {
                if k > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                JSON.writeString(key, into: &out)
                out += pretty ? ": " : ":"
                o[key]!.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    static func formatNumber(_ d: Double) -> String {
        if !d.isFinite { return "null" }
        if d.rounded() == d && abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    public static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

extension JSON: CustomStringConvertible {
    public var description: String { serialized() }
}
