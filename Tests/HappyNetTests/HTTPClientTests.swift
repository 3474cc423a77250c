import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyTestSupport

@Suite struct NetURLTests {
    @Test func parsesURLs() throws {
        let a = try NetURL("https://Example.com/v1/x?y=1")
        #expect(a.host == "example.com" && a.port == 443 && a.target == "/v1/x?y=1" && a.isTLS)
        #expect(a.hostHeader == "example.com" && a.origin == "https://example.com:443")
        let b = try NetURL("http://u:p%40ss@[::1]:8080")
        #expect(b.host == "::1" && b.port == 8080 && b.target == "/" && b.user == "u" && b.password == "p@ss")
        #expect(b.hostPort == "[::1]:8080")
        let c = try NetURL("ws://h:81?q=1")
        #expect(c.target == "/?q=1" && c.port == 81)
        #expect(throws: NetError.self) { try NetURL("ftp://x") }
        #expect(throws: NetError.self) { try NetURL("http://h:99999/") }
        #expect(throws: NetError.self) { try NetURL("nonsense") }
    }

    @Test func errorMessages() {
        #expect(NetError.cannotReach(target: "https://h:1", reason: "connection refused").what == "cannot reach https://h:1: connection refused")
        #expect(NetError.timedOut(target: "https://h:1", seconds: 10).what == "https://h:1: timed out after 10 s")
        #expect(NetError.proxyRefused(proxy: "http://p:3128", statusLine: "HTTP/1.1 407 Proxy Authentication Required").what
            == "proxy http://p:3128 refused CONNECT: HTTP/1.1 407 Proxy Authentication Required")
    }
}

@Suite struct HTTPClientTests {
    @Test func getPostStatusAndHost() async throws {
        let s = try await PyServer.emulator()
        let c = HTTPClient(options: directOptions())
        let base = "http://127.0.0.1:\(s.port)"
        let r = try await c.send(HTTPClientRequest(method: "GET", url: base + "/__test/echo?a=1"))
        #expect(r.status == 200)
        let j = try JSON.parse(r.body)
        #expect(j["method"]?.string == "GET")
        #expect(j["path"]?.string == "/__test/echo?a=1")
        #expect(j["headers"]?["Host"]?.string == "127.0.0.1:\(s.port)")
        let p = try await c.send(.json("POST", base + "/__test/echo", ["k": "v"]))
        let pj = try JSON.parse(p.body)
        #expect(pj["method"]?.string == "POST")
        #expect(pj["body"]?.string == #"{"k":"v"}"#)
        #expect(pj["headers"]?["Content-Type"]?.string == "application/json")
        let nf = try await c.send(HTTPClientRequest(method: "GET", url: base + "/__test/status/418"))
        #expect(nf.status == 418)
        #expect(try JSON.parse(nf.body)["error"]?.string == "teapot")
        await s.stop()
    }

    @Test func keepAliveReusesTheConnection() async throws {
        let s = try await PyServer.emulator()
        let c = HTTPClient(options: directOptions())
        let url = "http://127.0.0.1:\(s.port)/__test/echo"
        _ = try await c.send(HTTPClientRequest(method: "GET", url: url))
        #expect(c.idleConnectionCount == 1)
        _ = try await c.send(HTTPClientRequest(method: "GET", url: url))
        #expect(c.idleConnectionCount == 1)
        #expect(c.maxRequestsServed == 2)
        await s.stop()
        // Server gone: the stale pooled connection is detected and a fresh connect fails cleanly.
        await #expect(throws: NetError.self) { _ = try await c.send(HTTPClientRequest(method: "GET", url: url, timeout: 3)) }
    }

    @Test func chunkedResponse() async throws {
        let s = try await PyServer.emulator()
        let c = HTTPClient(options: directOptions())
        let r = try await c.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(s.port)/__test/chunked"))
        #expect(r.bodyString == "part0;part1;part2;part3;part4;")
        await s.stop()
    }

    @Test func untilCloseBodyAndGarbage() async throws {
        let s = try await PyServer.rawServer()
        let c = HTTPClient(options: directOptions())
        let r = try await c.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(s.port)/until-close"))
        #expect(r.bodyString == "until-close-body")
        await #expect(throws: NetError.self) {
            _ = try await c.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(s.port)/garbage", timeout: 5))
        }
        await s.stop()
    }

    @Test func wholeRequestTimeout() async throws {
        let s = try await PyServer.rawServer()
        let c = HTTPClient(options: directOptions())
        let t0 = Date()
        do {
            _ = try await c.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(s.port)/hang", timeout: 0.5))
            Issue.record("expected a timeout")
        } catch let e as NetError {
            #expect(e.what == "http://127.0.0.1:\(s.port): timed out after 0.5 s")
        }
        #expect(Date().timeIntervalSince(t0) < 10 * testTimeScale)  // the server never answers
        await s.stop()
    }

    @Test func connectionRefused() async throws {
        let port = unusedPort()
        let c = HTTPClient(options: directOptions())
        do {
            _ = try await c.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(port)/x", timeout: 5))
            Issue.record("expected an error")
        } catch let e as NetError {
            #expect(e.what == "cannot reach https://127.0.0.1:\(port): connection refused")
            #expect(renderError(e).hasPrefix("error: cannot reach"))
        }
    }
}
