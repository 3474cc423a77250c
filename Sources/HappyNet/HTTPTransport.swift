import HappyCore
/// The seam between the REST layer (API) and the network stack (Net).
/// `HTTPClient` in Net implements it over TCP/TLS/proxy; tests may stub it.
public struct HTTPClientRequest: Sendable {
    public var method: String
    /// Absolute URL: `http(s)://host[:port]/path?query`.
    public var url: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Whole-request timeout in seconds (connect + send + receive).
    public var timeout: Double

    public init(method: String, url: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], timeout: Double = 30) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    /// JSON body convenience: sets `Content-Type: application/json`.
    public static func json(_ method: String, _ url: String, _ body: JSON, headers: HTTPHeaders = HTTPHeaders(), timeout: Double = 30) -> HTTPClientRequest {
        var h = headers
        h.set("Content-Type", "application/json")
        return HTTPClientRequest(method: method, url: url, headers: h, body: body.bytes, timeout: timeout)
    }
}

public protocol HTTPTransport: Sendable {
    /// Sends one request and returns the whole response (any status). Throws a
    /// `HappyError` (Net module's error enum) for network, TLS, proxy and timeout
    /// failures; the message names the URL's host and the reason, never secrets.
    func send(_ request: HTTPClientRequest) async throws -> HTTPResponse
}
