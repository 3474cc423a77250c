import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappyTestSupport

/// A transport that records requests and answers from a closure.
final class StubTransport: HTTPTransport, @unchecked Sendable {
    let lock = NSLock()
    var requests: [HTTPClientRequest] = []
    let handler: @Sendable (HTTPClientRequest) throws -> HTTPResponse

    init(_ handler: @escaping @Sendable (HTTPClientRequest) throws -> HTTPResponse) { self.handler = handler }

    static func json(_ status: Int, _ body: String) -> StubTransport {
        StubTransport { _ in HTTPResponse(status: status, body: Array(body.utf8)) }
    }

    func send(_ request: HTTPClientRequest) async throws -> HTTPResponse {
        lock.withLock { requests.append(request) }
        return try handler(request)
    }
}

struct FakeNetError: HappyError { var what: String { "connection refused" } }

let machineJSON = #"{"id":"m1","metadata":"AAAA","metadataVersion":3,"daemonState":null,"daemonStateVersion":0,"dataEncryptionKey":null,"seq":7,"active":true,"activeAt":1724520000000,"createdAt":1724510000000,"updatedAt":1724520000001}"#

@Suite struct HappyServerAPITests {
    let server = "http://127.0.0.1:9"

    @Test func listMachinesSendsBearerAndClientHeader() async throws {
        let t = StubTransport.json(200, "[\(machineJSON)]")
        let api = HappyServerAPI(serverUrl: server + "/", transport: t, token: "tok")
        let ms = try await api.listMachines()
        #expect(ms.count == 1)
        #expect(ms[0].id == "m1" && ms[0].seq == 7 && ms[0].metadataVersion == 3 && ms[0].daemonState == nil)
        #expect(ms[0].activeAt == 1724520000000 && ms[0].active)
        let r = try #require(t.requests.first)
        #expect(r.method == "GET")
        #expect(r.url == "http://127.0.0.1:9/v1/machines")
        #expect(r.headers["Authorization"] == "Bearer tok")
        #expect(r.headers["X-Happy-Client"] == "cli-coding-session/\(HappyVersion.current)")
        #expect(r.timeout == 15)
    }

    @Test func getMachineUnwrapsAndMaps404() async throws {
        let ok = StubTransport.json(200, #"{"machine":\#(machineJSON)}"#)
        let m = try await HappyServerAPI(serverUrl: server, transport: ok, token: "t").getMachine(id: "m1")
        #expect(m.id == "m1")
        #expect(ok.requests[0].url == server + "/v1/machines/m1")
        let nf = StubTransport.json(404, #"{"error":"Machine not found"}"#)
        await #expect(throws: APIError.machineNotFound(id: "m1", server: server)) {
            _ = try await HappyServerAPI(serverUrl: server, transport: nf, token: "t").getMachine(id: "m1")
        }
        // A bare record (not wrapped) is an unexpected answer.
        let bare = StubTransport.json(200, machineJSON)
        await #expect(throws: APIError.self) {
            _ = try await HappyServerAPI(serverUrl: server, transport: bare, token: "t").getMachine(id: "m1")
        }
    }

    @Test func createMachineBodyAndTimeout() async throws {
        let t = StubTransport.json(200, #"{"machine":{"id":"m2","metadata":"x","metadataVersion":1,"daemonState":"y","daemonStateVersion":1,"dataEncryptionKey":null,"active":false,"activeAt":1,"createdAt":1,"updatedAt":1}}"#)
        let m = try await HappyServerAPI(serverUrl: server, transport: t, token: "t")
            .createMachine(id: "m2", metadata: "x", daemonState: "y")
        #expect(m.seq == nil && m.daemonStateVersion == 1)
        let r = t.requests[0]
        #expect(r.method == "POST" && r.timeout == 60)
        #expect(r.headers["Content-Type"] == "application/json")
        let body = try JSON.parse(r.body)
        #expect(body == ["id": "m2", "metadata": "x", "daemonState": "y"])
    }

    @Test func authRequestStatesAndHeader() async throws {
        let t = StubTransport.json(200, #"{"state":"requested"}"#)
        let api = HappyServerAPI(serverUrl: server, transport: t)
        #expect(try await api.authRequest(publicKey: [UInt8](repeating: 1, count: 32)) == .requested)
        let r = t.requests[0]
        #expect(r.headers["X-Happy-Client"] == "cli/\(HappyVersion.current)")
        #expect(r.headers["Authorization"] == nil)
        let body = try JSON.parse(r.body)
        #expect(body["supportsV2"] == .bool(true))
        #expect(body["publicKey"]?.string == Data(repeating: 1, count: 32).base64EncodedString())
        let a = StubTransport.json(200, #"{"state":"authorized","token":"T","response":"AQID"}"#)
        #expect(try await HappyServerAPI(serverUrl: server, transport: a).authRequest(publicKey: [1]) == .authorized(token: "T", response: [1, 2, 3]))
    }

    @Test func authChallengeReturnsToken() async throws {
        let t = StubTransport.json(200, #"{"success":true,"token":"tok123"}"#)
        let token = try await HappyServerAPI(serverUrl: server, transport: t)
            .authChallenge(publicKey: [1, 2], challenge: [3], signature: [4])
        #expect(token == "tok123")
        let body = try JSON.parse(t.requests[0].body)
        #expect(body == ["publicKey": "AQI=", "challenge": "Aw==", "signature": "BA=="])
        let bad = StubTransport.json(401, #"{"error":"Invalid signature"}"#)
        await #expect(throws: APIError.signatureRejected(server: server)) {
            _ = try await HappyServerAPI(serverUrl: server, transport: bad).authChallenge(publicKey: [1], challenge: [1], signature: [1])
        }
    }

    @Test(arguments: [
        (401, APIError.tokenRejected(server: "http://127.0.0.1:9")),
        (403, APIError.tokenRejected(server: "http://127.0.0.1:9")),
        (404, APIError.notFound(what: "/v1/machines", server: "http://127.0.0.1:9")),
        (500, APIError.serverError(status: 500, server: "http://127.0.0.1:9")),
        (503, APIError.serverError(status: 503, server: "http://127.0.0.1:9")),
        (400, APIError.httpStatus(status: 400, server: "http://127.0.0.1:9", message: "bad")),
    ])
    func statusMapping(status: Int, expected: APIError) async {
        let t = StubTransport.json(status, #"{"error":"Bad","message":"bad"}"#)
        await #expect(throws: expected) {
            _ = try await HappyServerAPI(serverUrl: server, transport: t, token: "t").listMachines()
        }
    }

    @Test func networkAndGarbageErrors() async throws {
        let down = StubTransport { _ in throw FakeNetError() }
        do {
            _ = try await HappyServerAPI(serverUrl: server, transport: down, token: "t").listMachines()
            Issue.record("no error")
        } catch let e as APIError {
            #expect(e == .unreachable(url: server + "/v1/machines", reason: "connection refused"))
            #expect(renderError(e).contains(server))
        }
        let garbage = StubTransport.json(200, "<html>oops")
        do {
            _ = try await HappyServerAPI(serverUrl: server, transport: garbage, token: "t").listMachines()
            Issue.record("no error")
        } catch let e as APIError {
            #expect(renderError(e).contains("unexpected response from \(server)"))
        }
    }

    @Test func notAuthenticatedWithoutToken() async {
        let t = StubTransport.json(200, "[]")
        await #expect(throws: APIError.notAuthenticated) {
            _ = try await HappyServerAPI(serverUrl: server, transport: t).listMachines()
        }
        #expect(t.requests.isEmpty)
        #expect(APIError.notAuthenticated.hint?.contains("happy auth login") == true)
        #expect(APIError.tokenRejected(server: "s").hint?.contains("happy auth login") == true)
    }

    @Test func checkTokenTriState() async {
        #expect(await HappyServerAPI(serverUrl: server, transport: StubTransport.json(200, "[]"), token: "t").checkToken() == true)
        #expect(await HappyServerAPI(serverUrl: server, transport: StubTransport.json(401, "{}"), token: "t").checkToken() == false)
        #expect(await HappyServerAPI(serverUrl: server, transport: StubTransport.json(403, "{}"), token: "t").checkToken() == false)
        #expect(await HappyServerAPI(serverUrl: server, transport: StubTransport.json(500, "{}"), token: "t").checkToken() == nil)
        #expect(await HappyServerAPI(serverUrl: server, transport: StubTransport { _ in throw FakeNetError() }, token: "t").checkToken() == nil)
    }

    @Test func healthIsUnauthenticated() async throws {
        let t = StubTransport.json(200, #"{"status":"ok","service":"happy-server"}"#)
        let h = try await HappyServerAPI(serverUrl: server, transport: t, token: "t").health()
        #expect(h["status"]?.string == "ok")
        #expect(t.requests[0].headers["Authorization"] == nil)
        #expect(t.requests[0].url == server + "/health")
    }
}

/// An `http://` server that is not loopback gets the token in clear: the REST client
/// raises the one-time notice before such a request (issue 15 item 9).
@Suite struct InsecureServerNoticeTests {
    @Test func tokenRequestsToACleartextRemoteServerWarn() async throws {
        let port = Int.random(in: 20000...60000)
        let remote = "http://api-notice-\(port).invalid:\(port)"
        let api = HappyServerAPI(serverUrl: remote, transport: StubTransport.json(200, "[]"), token: "tok")
        _ = try await api.listMachines()
        // Already warned by the request above: a second check for the origin is silent.
        #expect(!InsecureTransportNotice.check(remote))
        // No token involved (GET /health): no notice.
        let other = "http://health-notice-\(port).invalid:\(port)"
        _ = try? await HappyServerAPI(serverUrl: other, transport: StubTransport.json(200, "{}")).health()
        #expect(InsecureTransportNotice.check(other))
    }
}
