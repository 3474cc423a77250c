import Testing
@testable import HappyKit

@Suite struct JSONTests {
    @Test func roundTrip() throws {
        let text = #"{"a":[1,2.5,-3e2,true,false,null],"b":"x\"\\\n\u00e9\ud83d\ude00","c":{}}"#
        let v = try JSON.parse(text)
        #expect(v["a"]?.array?.count == 6)
        #expect(v["a"]?.array?[2].int == -300)
        #expect(v["b"]?.string == "x\"\\\n\u{e9}😀")
        #expect(try JSON.parse(v.serialized()) == v)
        #expect(JSON.int(1724520000000).serialized() == "1724520000000")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "1.", "\"\\x\"", "\"a", "[1] x", "-"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
    }

    @Test func depthIsBounded() {
        let deep = String(repeating: "[", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
    }
}

@Suite struct HTTPCodecTests {
    @Test func parsesPipelinedRequests() throws {
        var p = HTTPMessageParser(kind: .request)
        p.append(Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\nPOST /x?a=1&b=c%20d HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".utf8))
        let a = try #require(try p.nextRequest())
        #expect(a.method == "GET" && a.path == "/health" && a.headers["host"] == "127.0.0.1:1")
        let b = try #require(try p.nextRequest())
        #expect(b.body == Array("{}".utf8) && b.query["b"] == "c d" && b.path == "/x")
        #expect(try p.nextRequest() == nil)
    }

    @Test func incrementalAndChunked() throws {
        var p = HTTPMessageParser(kind: .response)
        let raw = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n".utf8)
        var got: HTTPResponse?
        for b in raw {
            #expect(got == nil)
            p.append([b])
            got = try p.nextResponse()
        }
        #expect(got?.bodyString == "Wikipedia")
    }

    @Test func limits() throws {
        var p = HTTPMessageParser(kind: .request, maxHeaderBytes: 100, maxBodyBytes: 10)
        p.append(Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200)).utf8))
        #expect(throws: HTTPParseError.headersTooLarge) { try p.nextRequest() }
        var q = HTTPMessageParser(kind: .request, maxHeaderBytes: 100, maxBodyBytes: 10)
        q.append(Array("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.bodyTooLarge) { try q.nextRequest() }
        var r = HTTPMessageParser(kind: .request)
        r.append(Array("NOT HTTP\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try r.nextRequest() }
    }

    @Test func responseUntilClose() throws {
        var p = HTTPMessageParser(kind: .response)
        p.append(Array("HTTP/1.0 200 OK\r\n\r\nhello".utf8))
        #expect(try p.nextResponse() == nil)
        #expect(try p.nextResponse(eof: true)?.bodyString == "hello")
    }
}

@Suite struct SupportTests {
    @Test func isoTime() {
        #expect(ISOTime.string(epochMs: 1724520000123) == "2024-08-24T17:20:00.123Z")
        #expect(ISOTime.parse("2024-08-24T17:20:00.123Z") == 1724520000123)
    }

    @Test func atomicWriteMode() throws {
        let dir = "/tmp/happy-support-\(UInt32.random(in: 0...UInt32.max))"
        try FileIO.ensureDirectory(dir)
        defer { _ = try? FileManagerShim.removeTree(dir) }
        #expect(FileIO.mode(dir) == 0o700)
        try FileIO.writeJSON(["a": 1], to: dir + "/x.json")
        #expect(FileIO.mode(dir + "/x.json") == 0o600)
        #expect(try FileIO.readJSON(dir + "/x.json")?["a"]?.int == 1)
        try FileIO.atomicWrite("{nope", to: dir + "/bad.json")
        #expect(throws: FileIOError.self) { try FileIO.readJSON(dir + "/bad.json") }
    }
}
