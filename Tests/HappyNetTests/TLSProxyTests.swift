import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyTestSupport

@Suite struct TLSTests {
    @Test func trustedViaSSLCertFileAndRefusedWithout() async throws {
        let cert = try await TestCert.make()
        let s = try await PyServer.emulator(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let url = "https://127.0.0.1:\(s.port)/__test/echo"
        // SSL_CERT_FILE given through the environment dictionary.
        let trusted = HTTPClient(options: NetOptions.environment(["SSL_CERT_FILE": cert.cert]))
        let r = try await trusted.send(HTTPClientRequest(method: "GET", url: url, timeout: 10))
        #expect(r.status == 200)
        // System store only: the self-signed certificate is refused with OpenSSL's reason.
        let plain = HTTPClient(options: directOptions())
        do {
            _ = try await plain.send(HTTPClientRequest(method: "GET", url: url, timeout: 10))
            Issue.record("expected a TLS failure")
        } catch let e as NetError {
            #expect(e.what.contains("certificate verify failed: self-signed certificate"), "\(e.what)")
            #expect(e.what.contains("https://127.0.0.1:\(s.port)"))
        }
        await s.stop()
    }

    @Test func hostNameIsChecked() async throws {
        let cert = try await TestCert.make(name: "other.example", san: "DNS:other.example")
        let s = try await PyServer.emulator(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let c = HTTPClient(options: directOptions(caFile: cert.cert))
        do {
            _ = try await c.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(s.port)/__test/echo", timeout: 10))
            Issue.record("expected a host mismatch")
        } catch let e as NetError {
            #expect(e.what.contains("certificate verify failed: IP address mismatch"), "\(e.what)")
        }
        await s.stop()
    }

    @Test func plainServerOnTLSPortFailsCleanly() async throws {
        let s = try await PyServer.emulator()
        let c = HTTPClient(options: directOptions())
        do {
            _ = try await c.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(s.port)/", timeout: 10))
            Issue.record("expected a TLS failure")
        } catch let e as NetError {
            guard case .tls = e else { Issue.record("not a TLS error: \(e)"); return }
        }
        await s.stop()
    }
}

@Suite struct ProxySettingsTests {
    @Test func environmentNames() {
        let a = ProxySettings.fromEnvironment(["HTTPS_PROXY": "http://p:1", "http_proxy": "http://q:2", "NO_PROXY": "x"])
        #expect(a.httpsProxy == "http://p:1" && a.httpProxy == "http://q:2" && a.noProxy == "x")
        let b = ProxySettings.fromEnvironment(["https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1", "no_proxy": ""])
        #expect(b.httpsProxy == "http://lower:1" && b.noProxy == nil)
    }

    @Test func schemeSelectsProxy() throws {
        let s = ProxySettings(httpsProxy: "http://u:p@sp:3128", httpProxy: "hp:8080")
        let a = try #require(try s.proxy(for: NetURL("wss://api.example.com/v1")))
        #expect(a.host == "sp" && a.port == 3128 && a.authorization == "Basic dTpw")
        #expect(try s.proxy(for: NetURL("http://x"))?.host == "hp")
        #expect(try s.proxy(for: NetURL("ws://x"))?.port == 8080)
        // Loopback goes through the proxy unless NO_PROXY says otherwise.
        #expect(try s.proxy(for: NetURL("https://127.0.0.1:1")) != nil)
        #expect(try ProxySettings.none.proxy(for: NetURL("https://x")) == nil)
        #expect(try ProxySettings(httpProxy: "hp:1").proxy(for: NetURL("https://x")) == nil)
    }

    @Test(arguments: [
        ("example.com", "example.com", 443, true),
        ("example.com", "a.example.com", 443, true),
        (".example.com", "a.b.example.com", 443, true),
        ("*.example.com", "a.example.com", 443, true),
        (".example.com", "example.com", 443, true),
        ("example.com", "notexample.com", 443, false),
        ("127.0.0.1", "127.0.0.1", 80, true),
        ("127.0.0.1", "127.0.0.2", 80, false),
        ("host:8080", "host", 8080, true),
        ("host:8080", "host", 443, false),
        ("*", "anything.at.all", 1, true),
        (" foo , Example.COM ", "x.example.com", 443, true),
        ("::1", "::1", 443, true),
        ("[::1]:443", "::1", 443, true),
        ("", "a", 1, false),
    ])
    func noProxy(_ list: String, _ host: String, _ port: Int, _ bypass: Bool) {
        #expect(ProxySettings(httpsProxy: "p:1", noProxy: list).bypasses(host: host, port: port) == bypass)
    }
}

@Suite struct ProxyTunnelTests {
    @Test func restThroughProxyAndNoProxyBypass() async throws {
        let s = try await PyServer.emulator()
        let p = try await PyServer.proxy()
        let url = "http://127.0.0.1:\(s.port)/__test/echo"
        let env = ["HTTP_PROXY": "http://127.0.0.1:\(p.port)"]
        let c = HTTPClient(options: NetOptions(proxies: .fromEnvironment(env), trust: TrustSettings(), keepAlive: false))
        let r = try await c.send(HTTPClientRequest(method: "GET", url: url))
        #expect(r.status == 200)
        var n = try await proxyTunnelCount(p)
        #expect(n["tunnels"]?.int == 1)
        #expect(n["targets"]?.array?.first?.string == "127.0.0.1:\(s.port)")
        // NO_PROXY bypass.
        let envNo = env.merging(["no_proxy": "localhost,127.0.0.1"]) { $1 }
        let d = HTTPClient(options: NetOptions(proxies: .fromEnvironment(envNo), trust: TrustSettings(), keepAlive: false))
        _ = try await d.send(HTTPClientRequest(method: "GET", url: url))
        n = try await proxyTunnelCount(p)
        #expect(n["tunnels"]?.int == 1)
        // Target names are sent unresolved.
        let viaName = HTTPClient(options: NetOptions(proxies: .fromEnvironment(env), trust: TrustSettings(), keepAlive: false))
        _ = try await viaName.send(HTTPClientRequest(method: "GET", url: "http://localhost:\(s.port)/__test/echo"))
        n = try await proxyTunnelCount(p)
        #expect(n["targets"]?.array?.last?.string == "localhost:\(s.port)")
        await p.stop(); await s.stop()
    }

    @Test func httpsThroughProxyWithCredentials() async throws {
        let cert = try await TestCert.make()
        let s = try await PyServer.emulator(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let p = try await PyServer.proxy(["--auth", "user:s3cret"])
        let url = "https://127.0.0.1:\(s.port)/__test/echo"
        let good = HTTPClient(options: .environment(["HTTPS_PROXY": "http://user:s3cret@127.0.0.1:\(p.port)", "SSL_CERT_FILE": cert.cert]))
        #expect(try await good.send(HTTPClientRequest(method: "GET", url: url)).status == 200)
        #expect(try await proxyTunnelCount(p)["tunnels"]?.int == 1)
        let bad = HTTPClient(options: .environment(["HTTPS_PROXY": "http://127.0.0.1:\(p.port)", "SSL_CERT_FILE": cert.cert]))
        do {
            _ = try await bad.send(HTTPClientRequest(method: "GET", url: url))
            Issue.record("expected a proxy refusal")
        } catch let e as NetError {
            #expect(e.what == "proxy http://127.0.0.1:\(p.port) refused CONNECT: HTTP/1.1 407 Proxy Authentication Required")
            #expect(!e.what.contains("s3cret"))
        }
        await p.stop(); await s.stop()
    }

    @Test func unreachableProxyIsNamed() async throws {
        let port = unusedPort()
        let c = HTTPClient(options: .environment(["HTTPS_PROXY": "http://127.0.0.1:\(port)"]))
        do {
            _ = try await c.send(HTTPClientRequest(method: "GET", url: "https://example.invalid/"))
            Issue.record("expected an error")
        } catch let e as NetError {
            #expect(e.what == "cannot reach proxy http://127.0.0.1:\(port): connection refused")
        }
    }
}
