import HappyCore
import HappyConfig
/// Environment of a spawned session: the daemon's environment + the profile's `env` +
/// the request's `environmentVariables`, with `${VAR}` / `${VAR:-default}` expanded from
/// the daemon's environment (SPEC §2.1, §4.3).
public enum SessionEnvironment {
    /// Expands `${NAME}` / `${NAME:-default}` from `env` (one implementation for the
    /// whole product: `expandEnvReferences` in Config).
    public static func expand(_ value: String, from env: [String: String]) throws -> String {
        do {
            return try expandEnvReferences(value, env: env)
        } catch ConfigError.unresolvedVariable(let name) {
            throw SessionError.unresolvedVariable(name)
        }
    }

    /// The merged, expanded environment for a session.
    public static func merge(daemon: [String: String], profile: [String: String],
                             request: [String: String]) throws -> [String: String] {
        var result = daemon
        for key in profile.keys.sorted() { result[key] = try expand(profile[key]!, from: daemon) }
        for key in request.keys.sorted() { result[key] = try expand(request[key]!, from: daemon) }
        return result
    }
}
