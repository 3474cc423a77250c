import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyTestSupport

/// RFC 9112 framing rules that close request smuggling / response splitting, on both
/// sides of the codec, and the memory bound of chunked bodies (issue 15, items 7 and 8).
@Suite struct HTTPFramingTests {
    func request(_ s: String) throws -> HTTPRequest? {
        var p = HTTPMessageParser(kind: .request)
        p.append(Array(s.utf8))
        return try p.nextRequest()
    }

    func response(_ s: String, eof: Bool = false) throws -> HTTPResponse? {
        var p = HTTPMessageParser(kind: .response)
        p.append(Array(s.utf8))
        return try p.nextResponse(eof: eof)
    }

    @Test(arguments: ["+5", "-0", "0x5", " 5", "5 x", "", "+0", "ffffffffff", "5\u{0}"])
    func signedOrDecoratedChunkSizesAreRefused(_ size: String) {
        let body = "\(size)\r\nhello\r\n0\r\n\r\n"
        #expect(throws: HTTPParseError.self) {
            try request("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        }
        #expect(throws: HTTPParseError.self) {
            try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        }
    }

    @Test func chunkSizeWithExtensionAndWhitespaceBeforeItIsFine() throws {
        let r = try request("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 ;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n")
        #expect(String(decoding: try #require(r).body, as: UTF8.self) == "hello0123456789")
    }

    @Test func contentLengthTogetherWithTransferEncodingIsRefused() {
        #expect(throws: HTTPParseError.malformed("both Content-Length and Transfer-Encoding")) {
            try request("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        }
        #expect(throws: HTTPParseError.malformed("both Content-Length and Transfer-Encoding")) {
            try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n")
        }
    }

    /// Every Transfer-Encoding field counts, not only the first one.
    @Test func everyTransferEncodingHeaderIsRead() {
        for te in ["Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
                   "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Transfer-Encoding: chunked, chunked",
                   "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: identity", "Transfer-Encoding: "] {
            #expect(throws: HTTPParseError.self, "\(te)") { try request("POST /x HTTP/1.1\r\nHost: h\r\n\(te)\r\n\r\n0\r\n\r\n") }
            #expect(throws: HTTPParseError.self, "\(te)") { try response("HTTP/1.1 200 OK\r\n\(te)\r\n\r\n0\r\n\r\n") }
        }
        // Case and spaces are forgiven for the one coding we decode.
        #expect((try? request("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  Chunked \r\n\r\n0\r\n\r\n")) != nil)
    }

    @Test func transferEncodingInHTTP10IsRefused() {
        #expect(throws: HTTPParseError.self) { try request("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") }
        #expect(throws: HTTPParseError.self) { try response("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") }
    }

    @Test func contentLengthMustBeDigits() {
        for cl in ["+5", "-5", " ", "5, 5", "0x5", "٥"] {
            #expect(throws: HTTPParseError.self, "\(cl)") { try request("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: \(cl)\r\n\r\nhello") }
        }
    }

    /// A chunked body costs its decoded size, not decoded + raw: the framing is dropped as
    /// it is parsed and the decoded bytes are not copied a second time.
    @Test func chunkedBodyIsNotHeldTwice() throws {
        var p = HTTPMessageParser(kind: .response, maxBodyBytes: 1 << 20)
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        p.append(Array(head.utf8))
        #expect(try p.nextResponse() == nil)
        let n = 8192
        // One-byte chunks: 6 wire bytes per body byte.
        for i in 0..<n {
            p.append(Array("1\r\n\(Character(Unicode.Scalar(UInt8(97 + i % 26))))\r\n".utf8))
            if i % 512 == 0 { #expect(try p.nextResponse() == nil) }
        }
        #expect(try p.nextResponse() == nil)
        // Held: the head and the decoded bytes (+ nothing unparsed), far below the 48 KiB on the wire.
        #expect(p.bufferedByteCount <= head.utf8.count + n + 16, "\(p.bufferedByteCount)")
        p.append(Array("0\r\nX-Trailer: 1\r\n\r\n".utf8))
        let r = try #require(try p.nextResponse())
        #expect(r.body.count == n && r.body.prefix(3) == [97, 98, 99] && r.body.last == UInt8(97 + (n - 1) % 26))
        #expect(p.bufferedByteCount == 0)
    }

    @Test func pipelinedMessagesAfterAChunkedBodyStillParse() throws {
        var p = HTTPMessageParser(kind: .request)
        p.append(Array("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(try p.nextRequest()?.body == Array("abcde".utf8))
        #expect(try p.nextRequest()?.path == "/b")
    }

    @Test func endlessTrailersAreBounded() throws {
        var p = HTTPMessageParser(kind: .response, maxHeaderBytes: 1024)
        p.append(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".utf8))
        #expect(throws: HTTPParseError.headersTooLarge) {
            for _ in 0..<200 {
                p.append(Array("X-T: 0123456789\r\n".utf8))
                _ = try p.nextResponse()
            }
        }
    }
}

/// REST responses are capped at 16 MiB by default (they were 64 MiB), whatever the framing.
@Suite struct ResponseCapTests {
    @Test func defaultCapIs16MiB() {
        #expect(NetOptions().maxResponseBytes == 16 << 20)
    }

    @Test func largerBodiesAreRefusedBothFramings() async throws {
        let s = try await PyServer.rawServer()
        let c = HTTPClient(options: directOptions())
        for framing in ["big-length", "big-chunked"] {
            let ok = try await c.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(s.port)/\(framing)/\(15 << 20)", timeout: 60))
            #expect(ok.body.count == 15 << 20)
            do {
                _ = try await c.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(s.port)/\(framing)/\((16 << 20) + 1)", timeout: 60))
                Issue.record("a body over 16 MiB was accepted (\(framing))")
            } catch let e as NetError {
                #expect(e == .responseTooLarge(target: "http://127.0.0.1:\(s.port)", limit: 16 << 20), "\(e)")
            }
        }
        await s.stop()
    }
}
