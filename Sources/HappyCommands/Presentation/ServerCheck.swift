import HappyCore
import HappyCrypto
import HappyNet
import HappyConfig
import HappyRealtime
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon
/// `happy doctor`'s server checks (SPEC §3.7): the server answers `GET /health`, and
/// it accepts our token (only 401/403 count as rejected; anything else is unchecked).
public enum ServerCheck {
    public static func run(config: HappyConfig, transport: HTTPTransport = HTTPClient()) async -> [DoctorCheck] {
        var out: [DoctorCheck] = []
        let creds = CredentialsStore(home: config.home).load().credentials
        let api = HappyServerAPI(serverUrl: config.serverUrl, transport: transport, token: creds?.token)
        do {
            _ = try await api.health()
            out.append(DoctorCheck("server", .ok, "\(config.serverUrl) is reachable"))
        } catch {
            out.append(DoctorCheck("server", .warn, "\(config.serverUrl) is not reachable: \(errorWhat(error))"))
            return out
        }
        guard creds != nil else {
            out.append(DoctorCheck("token", .warn, "not authenticated (run `happy auth login`)"))
            return out
        }
        switch await api.checkToken() {
        case true?: out.append(DoctorCheck("token", .ok, "the server accepts the token"))
        case false?: out.append(DoctorCheck("token", .fail, "the server rejected the token — run `happy auth login --force`"))
        case nil: out.append(DoctorCheck("token", .warn, "the token could not be checked"))
        }
        return out
    }
}
