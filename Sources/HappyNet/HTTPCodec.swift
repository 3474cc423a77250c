import HappyCore
/// One HTTP/1.1 codec for both sides: the REST client (parses responses) and the
/// daemon's control server (parses requests). Incremental: append bytes as they
/// arrive, ask for the next complete message. Bounded: header and body limits are
/// enforced before anything large is buffered.

public struct HTTPHeaders: Sendable, Equatable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}
    public init(_ pairs: [(String, String)]) { for (n, v) in pairs { add(n, v) } }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }
    /// Replaces every field with this name.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        fields.append((name, value))
    }
    public mutating func remove(_ name: String) {
        let l = name.lowercased()
        fields.removeAll { $0.name.lowercased() == l }
    }
    /// First value with this name (case-insensitive).
    public subscript(_ name: String) -> String? {
        let l = name.lowercased()
        for f in fields where f.name.count == l.count && f.name.lowercased() == l { return f.value }
        return nil
    }
    public func values(_ name: String) -> [String] {
        let l = name.lowercased()
        return fields.filter { $0.name.lowercased() == l }.map(\.value)
    }
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target as sent: origin form `/path?q` (or absolute form for proxies).
    public var target: String
    public var version: String = "HTTP/1.1"
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: String, target: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// Path without the query string.
    public var path: String {
        if let q = target.firstIndex(of: "?") { return String(target[..<q]) }
        return target
    }
    /// Query parameters (percent-decoding of `+` and `%XX`).
    public var query: [String: String] {
        guard let q = target.firstIndex(of: "?") else { return [:] }
        var out: [String: String] = [:]
        for part in target[target.index(after: q)...].split(separator: "&") {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = HTTPCodec.percentDecode(String(kv[0]))
            out[k] = kv.count > 1 ? HTTPCodec.percentDecode(String(kv[1])) : ""
        }
        return out
    }
    public var keepAlive: Bool { HTTPCodec.keepAlive(version: version, headers: headers) }

    /// Serializes with `Content-Length` (added when there is a body or the method carries one).
    public func serialized() -> [UInt8] {
        var h = headers
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) {
            if h["Content-Length"] == nil && h["Transfer-Encoding"] == nil { h.set("Content-Length", String(body.count)) }
        }
        return HTTPCodec.message(startLine: "\(method) \(target) \(version)", headers: h, body: body)
    }
}

public struct HTTPResponse: Sendable {
    public var version: String = "HTTP/1.1"
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, reason: String? = nil, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.reason = reason ?? HTTPCodec.reasonPhrase(status)
        self.headers = headers
        self.body = body
    }

    public var bodyString: String { String(decoding: body, as: UTF8.self) }
    public var keepAlive: Bool { HTTPCodec.keepAlive(version: version, headers: headers) }

    /// Serializes with `Content-Length` always set (no chunked responses from us).
    public func serialized() -> [UInt8] {
        var h = headers
        if h["Content-Length"] == nil { h.set("Content-Length", String(body.count)) }
        return HTTPCodec.message(startLine: "\(version) \(status) \(reason)", headers: h, body: body)
    }
}

public enum HTTPParseError: Error, Equatable, Sendable {
    /// The head did not end within the header limit (→ 431).
    case headersTooLarge
    /// Declared or received body over the limit (→ 413).
    case bodyTooLarge
    /// Anything else that is not HTTP/1.x (→ 400).
    case malformed(String)
    /// Transfer codings other than chunked (→ 501 / 400).
    case unsupportedTransferEncoding(String)
}

/// Incremental message parser. `kind` decides whether a start line is a request line
/// or a status line. After `nextRequest()`/`nextResponse()` returns a message, the
/// bytes it used are consumed and the parser is ready for the next one (keep-alive).
public struct HTTPMessageParser: Sendable {
    public enum Kind: Sendable { case request, response }

    public let kind: Kind
    public let maxHeaderBytes: Int
    public let maxBodyBytes: Int

    private var buf: [UInt8] = []
    private var start = 0  // consumed prefix of buf
    private var scanFrom = 0  // where the search for CRLFCRLF resumes
    private var head: Head?
    private var chunk = ChunkState()

    private struct Head: Sendable {
        var startLine: [Substring]
        var headers: HTTPHeaders
        var bodyMode: BodyMode
        var bodyStart: Int
    }
    private enum BodyMode: Sendable {
        case none, length(Int), chunked, untilClose
        var isChunked: Bool { if case .chunked = self { return true }; return false }
    }
    /// Chunked bodies are decoded in place: each chunk's data moves down to `decodedEnd`
    /// (right after the bytes already decoded), and the framing bytes between the decoded
    /// body and the next unparsed byte are dropped whenever more input is needed. So the
    /// body is held once, never as raw + decoded copies.
    private struct ChunkState: Sendable {
        var pos = 0  // absolute index in buf where the next chunk-size line starts
        var decodedEnd = 0  // absolute index in buf where the decoded body ends
        var active = false
    }

    /// Set by the response side when the request was HEAD or the status has no body.
    public var expectNoBody = false

    public init(kind: Kind, maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 1 << 20) {
        self.kind = kind
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    public var bufferedByteCount: Int { buf.count - start }
    /// True once a head has been parsed but its body is not complete yet.
    public var isInsideMessage: Bool { head != nil || bufferedByteCount > 0 }

    public mutating func append(_ bytes: [UInt8]) { buf.append(contentsOf: bytes) }
    public mutating func append(_ bytes: UnsafeRawBufferPointer) { buf.append(contentsOf: bytes) }

    /// The head of the message being parsed, once complete (lets a server reject
    /// early, e.g. a 413 on Content-Length before the body arrives).
    public mutating func peekHead() throws -> (startLine: [Substring], headers: HTTPHeaders)? {
        try parseHeadIfNeeded()
        return head.map { ($0.startLine, $0.headers) }
    }

    public mutating func nextRequest() throws -> HTTPRequest? {
        precondition(kind == .request)
        guard let (h, body) = try nextMessage(eof: false) else { return nil }
        var r = HTTPRequest(method: String(h.startLine[0]), target: String(h.startLine[1]), headers: h.headers, body: body)
        r.version = String(h.startLine[2])
        return r
    }

    /// `eof: true` when the peer closed the connection (completes an until-close body).
    public mutating func nextResponse(eof: Bool = false) throws -> HTTPResponse? {
        precondition(kind == .response)
        guard let (h, body) = try nextMessage(eof: eof) else { return nil }
        let status = Int(h.startLine[1]) ?? 0
        var r = HTTPResponse(status: status, reason: h.startLine.count > 2 ? String(h.startLine[2]) : "", headers: h.headers, body: body)
        r.version = String(h.startLine[0])
        return r
    }

    /// Bytes after a complete head, for protocol upgrades (WebSocket): returns the
    /// remaining buffered bytes and clears the parser.
    /// (Moves the buffer out instead of copying a slice: with Swift 6.3.1 `-O -wmo`, a
    /// caller that discarded the result of `Array(buf[start...])` here wrote into freed
    /// memory — found by Fuzz/ http-response, see Fuzz/README.md.)
    public mutating func takeRemainingBytes() -> [UInt8] {
        var rest: [UInt8] = []
        swap(&rest, &buf)
        rest.removeFirst(start)
        start = 0; scanFrom = 0; head = nil
        return rest
    }

    /// Parses only a response head (for `101 Switching Protocols` and CONNECT answers).
    public mutating func nextResponseHead() throws -> HTTPResponse? {
        try parseHeadIfNeeded()
        guard let h = head else { return nil }
        let status = Int(h.startLine[1]) ?? 0
        var r = HTTPResponse(status: status, reason: h.startLine.count > 2 ? String(h.startLine[2]) : "", headers: h.headers)
        r.version = String(h.startLine[0])
        start = h.bodyStart
        scanFrom = start
        head = nil
        return r
    }

    private mutating func compact() {
        if start > 0 && (start > 64 * 1024 || start == buf.count) {
            buf.removeFirst(start)
            scanFrom -= start
            if scanFrom < 0 { scanFrom = 0 }
            start = 0
        }
    }

    private mutating func parseHeadIfNeeded() throws {
        if head != nil { return }
        // Tolerate empty lines before a request (RFC 9112 §2.2).
        while kind == .request, start + 1 < buf.count, buf[start] == 13, buf[start + 1] == 10 { start += 2 }
        if scanFrom < start { scanFrom = start }
        var end = -1
        var i = max(scanFrom, start)
        while i + 3 < buf.count {
            if buf[i] == 13 && buf[i + 1] == 10 && buf[i + 2] == 13 && buf[i + 3] == 10 { end = i; break }
            i += 1
        }
        if end < 0 {
            scanFrom = max(start, buf.count - 3)
            if buf.count - start > maxHeaderBytes { throw HTTPParseError.headersTooLarge }
            return
        }
        if end - start > maxHeaderBytes { throw HTTPParseError.headersTooLarge }
        let headText = buf[start..<end]
        guard let text = String(validatingUTF8OrLatin1: headText) else { throw HTTPParseError.malformed("header is not text") }
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { throw HTTPParseError.malformed("empty head") }
        let first = lines.removeFirst()
        let parts: [Substring]
        switch kind {
        case .request:
            let p = first.split(separator: " ", omittingEmptySubsequences: false)
            guard p.count == 3, !p[0].isEmpty, !p[1].isEmpty, p[2].hasPrefix("HTTP/1.") else {
                throw HTTPParseError.malformed("bad request line")
            }
            guard p[0].allSatisfy({ $0.isLetter && $0.isUppercase || $0 == "-" }) else { throw HTTPParseError.malformed("bad method") }
            parts = p
        case .response:
            let p = first.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard p.count >= 2, p[0].hasPrefix("HTTP/1."), p[1].count == 3, Int(p[1]) != nil else {
                throw HTTPParseError.malformed("bad status line")
            }
            parts = p
        }
        var headers = HTTPHeaders()
        for line in lines {
            if line.isEmpty { continue }
            if line.first == " " || line.first == "\t" { throw HTTPParseError.malformed("obsolete line folding") }
            guard let colon = line.firstIndex(of: ":") else { throw HTTPParseError.malformed("header without ':'") }
            let name = line[..<colon]
            guard !name.isEmpty, !name.contains(" "), !name.contains("\t") else { throw HTTPParseError.malformed("bad header name") }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            headers.add(String(name), value)
        }
        var mode: BodyMode = .none
        let transferEncodings = headers.values("Transfer-Encoding")
        let contentLengths = headers.values("Content-Length")
        let version = kind == .request ? parts[2] : parts[0]
        if !transferEncodings.isEmpty {
            // RFC 9112 §6.1–6.3: a message with both is a smuggling attempt; Transfer-Encoding
            // in HTTP/1.0 is faulty framing; the codings of every field form one list, and the
            // only coding we decode is a single, final `chunked`.
            if !contentLengths.isEmpty { throw HTTPParseError.malformed("both Content-Length and Transfer-Encoding") }
            if version == "HTTP/1.0" { throw HTTPParseError.malformed("Transfer-Encoding in an HTTP/1.0 message") }
            let codings = transferEncodings.flatMap { $0.split(separator: ",") }
                .map { $0.trimmingCharacters(in: " \t").lowercased() }
            guard codings == ["chunked"] else {
                throw HTTPParseError.unsupportedTransferEncoding(transferEncodings.joined(separator: ", "))
            }
            mode = .chunked
        } else if let cls = contentLengths.first {
            guard contentLengths.allSatisfy({ $0 == cls }), !cls.isEmpty, cls.utf8.count <= 18,
                  cls.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(cls) else {
                throw HTTPParseError.malformed("bad Content-Length")
            }
            if n > maxBodyBytes { 
                head = Head(startLine: parts, headers: headers, bodyMode: .length(n), bodyStart: end + 4)
                throw HTTPParseError.bodyTooLarge 
            }
            mode = n > 0 ? .length(n) : .none
        } else if kind == .response {
            let status = Int(parts[1]) ?? 0
            if expectNoBody || status == 204 || status == 304 || (100..<200).contains(status) {
                mode = .none
            } else {
                mode = .untilClose
            }
        }
        if kind == .response, expectNoBody { mode = .none }
        head = Head(startLine: parts, headers: headers, bodyMode: mode, bodyStart: end + 4)
        chunk = ChunkState(pos: end + 4, decodedEnd: end + 4, active: mode.isChunked)
    }

    private mutating func nextMessage(eof: Bool) throws -> (Head, [UInt8])? {
        try parseHeadIfNeeded()
        guard let h = head else {
            if eof && bufferedByteCount > 0 { throw HTTPParseError.malformed("connection closed inside a message head") }
            return nil
        }
        switch h.bodyMode {
        case .none:
            finish(at: h.bodyStart)
            return (h, [])
        case .length(let n):
            guard buf.count - h.bodyStart >= n else {
                if eof { throw HTTPParseError.malformed("connection closed inside a body") }
                return nil
            }
            return (h, takeBody(h.bodyStart, h.bodyStart + n, next: h.bodyStart + n))
        case .untilClose:
            if buf.count - h.bodyStart > maxBodyBytes { throw HTTPParseError.bodyTooLarge }
            guard eof else { return nil }
            return (h, takeBody(h.bodyStart, buf.count, next: buf.count))
        case .chunked:
            while true {
                // find CRLF after chunk.pos
                guard let lineEnd = findCRLF(from: chunk.pos) else {
                    if buf.count - chunk.pos > 1024 { throw HTTPParseError.malformed("chunk size line too long") }
                    if eof { throw HTTPParseError.malformed("connection closed inside a chunked body") }
                    dropChunkFraming()
                    return nil
                }
                let size = try Self.chunkSize(buf[chunk.pos..<lineEnd])
                if size == 0 {
                    // trailers until an empty line (bounded like a head)
                    var p = lineEnd + 2
                    while true {
                        guard let e = findCRLF(from: p) else {
                            if buf.count - lineEnd > maxHeaderBytes { throw HTTPParseError.headersTooLarge }
                            if eof { throw HTTPParseError.malformed("connection closed inside chunk trailers") }
                            dropChunkFraming()
                            return nil
                        }
                        if e == p { p = e + 2; break }
                        p = e + 2
                        if p - lineEnd > maxHeaderBytes { throw HTTPParseError.headersTooLarge }
                    }
                    return (h, takeBody(h.bodyStart, chunk.decodedEnd, next: p))
                }
                if chunk.decodedEnd - h.bodyStart + size > maxBodyBytes { throw HTTPParseError.bodyTooLarge }
                let dataStart = lineEnd + 2
                guard buf.count >= dataStart + size + 2 else {
                    if eof { throw HTTPParseError.malformed("connection closed inside a chunk") }
                    dropChunkFraming()
                    return nil
                }
                guard buf[dataStart + size] == 13, buf[dataStart + size + 1] == 10 else {
                    throw HTTPParseError.malformed("chunk not followed by CRLF")
                }
                // Move the chunk's data down onto the end of the decoded body (memmove).
                if dataStart != chunk.decodedEnd {
                    let to = chunk.decodedEnd
                    buf.withUnsafeMutableBytes { b in
                        (b.baseAddress! + to).copyMemory(from: b.baseAddress! + dataStart, byteCount: size)
                    }
                }
                chunk.decodedEnd += size
                chunk.pos = dataStart + size + 2
            }
        }
    }

    /// RFC 9112 §7.1: `chunk-size = 1*HEXDIG`, then optional white space and `;ext`.
    /// No sign, no prefix, no leading space (a lenient parser here is a smuggling vector).
    static func chunkSize(_ line: ArraySlice<UInt8>) throws -> Int {
        var size = 0
        var digits = 0
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            let v: Int
            switch c {
            case 0x30...0x39: v = Int(c - 0x30)
            case 0x41...0x46: v = Int(c - 0x41 + 10)
            case 0x61...0x66: v = Int(c - 0x61 + 10)
            default: v = -1
            }
            if v < 0 { break }
            digits += 1
            if digits > 8 { throw HTTPParseError.malformed("bad chunk size") }
            size = size << 4 | v
            i += 1
        }
        guard digits > 0 else { throw HTTPParseError.malformed("bad chunk size") }
        while i < line.endIndex, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
        guard i == line.endIndex || line[i] == UInt8(ascii: ";") else { throw HTTPParseError.malformed("bad chunk size") }
        return size
    }

    /// Drops the framing bytes already parsed (between the decoded body and the next
    /// chunk line) so a chunked body costs its decoded size, not its wire size.
    private mutating func dropChunkFraming() {
        guard chunk.pos > chunk.decodedEnd else { return }
        buf.removeSubrange(chunk.decodedEnd..<chunk.pos)
        chunk.pos = chunk.decodedEnd
    }

    /// The body `buf[from..<to]`, the next message starting at `next`. When nothing
    /// follows (the usual case) the buffer itself becomes the body: no second copy.
    private mutating func takeBody(_ from: Int, _ to: Int, next: Int) -> [UInt8] {
        if next == buf.count {
            var body: [UInt8] = []
            swap(&body, &buf)
            body.removeLast(body.count - to)
            body.removeFirst(from)
            start = 0; scanFrom = 0; head = nil
            chunk = ChunkState()
            return body
        }
        let body = Array(buf[from..<to])
        finish(at: next)
        return body
    }

    private func findCRLF(from: Int) -> Int? {
        var i = from
        while i + 1 < buf.count {
            if buf[i] == 13 && buf[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }

    private mutating func finish(at end: Int) {
        start = end
        scanFrom = end
        head = nil
        chunk = ChunkState()
        compact()
    }
}

extension String {
    /// Header bytes: UTF-8 when valid, else Latin-1 (never fails on arbitrary octets
    /// except NUL, which is refused).
    init?(validatingUTF8OrLatin1 bytes: ArraySlice<UInt8>) {
        if bytes.contains(0) { return nil }
        if let s = String(validating: bytes, as: UTF8.self) { self = s; return }
        self = String(bytes.map { Character(Unicode.Scalar($0)) })
    }
}

public enum HTTPCodec {
    /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only with `keep-alive`.
    static func keepAlive(version: String, headers: HTTPHeaders) -> Bool {
        let c = headers["Connection"]?.lowercased() ?? ""
        if version == "HTTP/1.0" { return c.contains("keep-alive") }
        return !c.contains("close")
    }

    /// One message on the wire: start line, header fields in order, blank line, body.
    static func message(startLine: String, headers: HTTPHeaders, body: [UInt8]) -> [UInt8] {
        var s = startLine + "\r\n"
        for f in headers.fields { s += "\(f.name): \(f.value)\r\n" }
        s += "\r\n"
        var out = Array(s.utf8)
        out.append(contentsOf: body)
        return out
    }

    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status \(status)"
        }
    }

    public static func percentDecode(_ s: String) -> String {
        var out = [UInt8]()
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            let c = u[i]
            if c == UInt8(ascii: "+") { out.append(0x20); i += 1; continue }
            if c == UInt8(ascii: "%"), i + 2 < u.count, let v = UInt8(String(decoding: u[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                out.append(v); i += 3; continue
            }
            out.append(c); i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let h = String(b, radix: 16, uppercase: true)
                out += "%" + (h.count == 1 ? "0" + h : h)
            }
        }
        return out
    }
}
