import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyTestSupport

/// The peer identity check can never be skipped (issue 15 item 2) and a TLS stream cut
/// without close_notify is not a complete response (item 9).
@Suite struct TLSHardeningTests {
    @Test func zoneScopedIPv6URLsAreParsed() throws {
        let u = try NetURL("https://[fe80::1%25eth0]:443/v1")
        #expect(u.host == "fe80::1" && u.zoneId == "eth0" && u.connectHost == "fe80::1%eth0")
        #expect(u.hostPort == "[fe80::1%25eth0]:443")
        let bare = try NetURL("https://[FE80::1%eth0]/")
        #expect(bare.host == "fe80::1" && bare.zoneId == "eth0")
        #expect(try NetURL("https://[::1]:8443/").zoneId == nil)
        for bad in ["https://[zz::1]/", "https://[fe80::1%25]/", "https://[127.0.0.1]/", "https://[fe80::1%25a%2520b]/", "https://[]/"] {
            #expect(throws: NetError.self, "\(bad)") { try NetURL(bad) }
        }
    }

    @Test func peerIdentityKinds() {
        #expect(TLSPeerIdentity(host: "127.0.0.1") == .ip("127.0.0.1"))
        #expect(TLSPeerIdentity(host: "fe80::1") == .ip("fe80::1"))
        #expect(TLSPeerIdentity(host: "api.example.com") == .dns("api.example.com"))
        // Not an IPv4 literal to inet_pton: checked as a name (and so fails against an IP SAN).
        #expect(TLSPeerIdentity(host: "127.1") == .dns("127.1"))
        for h in ["", "fe80::1%eth0", "zz::1", "a\u{0}b", "[::1]"] { #expect(TLSPeerIdentity(host: h) == .invalid, "\(h)") }
    }

    /// The review's probe: a zone-scoped IPv6 URL made the expected-IP setter fail, its
    /// result was ignored, and a certificate for another name was accepted. The proxy
    /// forwards the tunnel to a local TLS server whose certificate names other.example.
    @Test func zoneScopedIPv6URLStillChecksTheCertificate() async throws {
        let cert = try await TestCert.make(name: "other.example", san: "DNS:other.example")
        let s = try await PyServer.emulator(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let p = try await PyServer.proxy(["--forward", "127.0.0.1:\(s.port)"])
        let env = ["HTTPS_PROXY": "http://127.0.0.1:\(p.port)", "SSL_CERT_FILE": cert.cert]
        let c = HTTPClient(options: .environment(env))
        // Control: through the same path, the right name is accepted.
        let good = try await c.send(HTTPClientRequest(method: "GET", url: "https://other.example:443/__test/echo", timeout: 10))
        #expect(good.status == 200)
        for url in ["https://[fe80::1%25eth0]:443/__test/echo", "https://[fe80::1]:443/__test/echo", "https://10.1.2.3/__test/echo"] {
            do {
                let r = try await c.send(HTTPClientRequest(method: "GET", url: url, timeout: 10))
                Issue.record("\(url): a certificate for other.example was accepted (status \(r.status))")
            } catch let e as NetError {
                #expect(e.what.contains("certificate verify failed: IP address mismatch"), "\(url): \(e.what)")
            }
        }
        await p.stop(); await s.stop()
    }

    @Test func truncatedTLSBodyIsAnError() async throws {
        let cert = try await TestCert.make()
        let s = try await PyServer.rawServer(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let c = HTTPClient(options: directOptions(caFile: cert.cert))
        // With close_notify, a body that ends at the close is complete.
        let clean = try await c.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(s.port)/until-close", timeout: 10))
        #expect(clean.bodyString == "until-close-body")
        // Cut without close_notify: nothing says the body is whole.
        do {
            let r = try await c.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(s.port)/abort-until-close", timeout: 10))
            Issue.record("a truncated body was accepted: \(r.bodyString)")
        } catch let e as NetError {
            guard case .connectionLost(_, let reason) = e else { Issue.record("\(e)"); return }
            #expect(reason.contains("close_notify"), "\(reason)")
        }
        // Plain HTTP has no close_notify: an until-close body stays complete there.
        let plain = try await PyServer.rawServer()
        let r = try await HTTPClient(options: directOptions()).send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(plain.port)/abort-until-close", timeout: 10))
        #expect(r.bodyString == "until-close-body")
        await plain.stop(); await s.stop()
    }
}

/// `http://` to a host that is not loopback sends the token in clear: warned once.
@Suite struct InsecureTransportNoticeTests {
    @Test func loopbackAndSchemes() throws {
        for h in ["localhost", "LOCALHOST", "app.localhost", "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            #expect(InsecureTransportNotice.isLoopback(h), "\(h)")
        }
        for h in ["example.com", "10.0.0.1", "128.0.0.1", "::2", "fe80::1", "localhost.example.com", "::ffff:10.0.0.1"] {
            #expect(!InsecureTransportNotice.isLoopback(h), "\(h)")
        }
        #expect(InsecureTransportNotice.isCleartextToRemote(try NetURL("http://api.example.com")))
        #expect(InsecureTransportNotice.isCleartextToRemote(try NetURL("ws://10.0.0.5:3005")))
        #expect(!InsecureTransportNotice.isCleartextToRemote(try NetURL("https://api.example.com")))
        #expect(!InsecureTransportNotice.isCleartextToRemote(try NetURL("http://127.0.0.1:3005")))
        #expect(!InsecureTransportNotice.isCleartextToRemote(try NetURL("http://[::1]:3005")))
    }

    @Test func warnsOncePerOrigin() {
        // A made-up origin of this test only (the registry of warned origins is per process).
        let port = Int.random(in: 20000...60000)
        let url = "http://notice-test-\(port).invalid:\(port)"
        #expect(InsecureTransportNotice.check(url + "/v1/machines"))
        #expect(!InsecureTransportNotice.check(url + "/v1/auth"))
        #expect(!InsecureTransportNotice.check("http://127.0.0.1:\(port)/v1/machines"))
        #expect(!InsecureTransportNotice.check("https://notice-test-\(port).invalid:\(port)/v1/machines"))
        #expect(InsecureTransportNotice.message(origin: "http://h:1").contains("clear text"))
    }
}
