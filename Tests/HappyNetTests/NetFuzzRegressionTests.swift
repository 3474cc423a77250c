import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyTestSupport

/// Regressions found by the fuzz targets in Fuzz/ (see Fuzz/README.md).
@Suite("NetFuzzRegression")
struct NetFuzzRegressionTests {
    /// Fuzz/ http-response, seed `upgrade`: the upgrade path (`nextResponseHead` then
    /// `takeRemainingBytes` with the result discarded) wrote into freed memory in the
    /// `-O -wmo` build (a Swift 6.3.1 optimizer problem with `Array(buf[start...])`).
    /// The debug test checks the behaviour; the fuzz build (-O -wmo + ASan) checks the memory.
    @Test func takeRemainingBytesAfterHeadReturnsLeftoverAndResets() throws {
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        var p = HTTPMessageParser(kind: .response, maxHeaderBytes: 512, maxBodyBytes: 1024)
        p.append(Array(head.utf8) + [0x81, 0x02, 0x68, 0x69])
        let r = try #require(try p.nextResponseHead())
        #expect(r.status == 101)
        #expect(p.takeRemainingBytes() == [0x81, 0x02, 0x68, 0x69])
        #expect(p.bufferedByteCount == 0)
        #expect(!p.isInsideMessage)
        // Discarding the result (what the fuzz target does) leaves a usable parser.
        p.append(Array(head.utf8) + [1, 2, 3])
        _ = try p.nextResponseHead()
        _ = p.takeRemainingBytes()
        p.append(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
        let next = try #require(try p.nextResponse())
        #expect(next.status == 200)
        #expect(next.body == Array("ok".utf8))
    }

    @Test func takeRemainingBytesWithoutConsumedPrefixReturnsEverything() {
        var p = HTTPMessageParser(kind: .response)
        p.append(Array("HTTP/1.1 101".utf8))
        #expect(p.takeRemainingBytes() == Array("HTTP/1.1 101".utf8))
        #expect(p.bufferedByteCount == 0)
    }
}
