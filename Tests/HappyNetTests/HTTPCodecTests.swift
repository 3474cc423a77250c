import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet

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
