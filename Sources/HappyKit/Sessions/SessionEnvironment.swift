/// Environment of a spawned session: the daemon's environment + the profile's `env` +
/// the request's `environmentVariables`, with `${VAR}` / `${VAR:-default}` expanded from
/// the daemon's environment (SPEC §2.1, §4.3).
public enum SessionEnvironment {
    /// Expands `${NAME}` and `${NAME:-default}` in `value` from `from`.
    /// `${NAME:-default}` uses `default` when NAME is unset or empty (shell rule);
    /// `${NAME}` with NAME unset throws `SessionError.unresolvedVariable(NAME)`.
    /// A `$` not followed by `{`, or an unterminated `${`, is kept literally.
    public static func expand(_ value: String, from env: [String: String]) throws -> String {
        let chars = Array(value.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "$", i + 1 < chars.count, chars[i + 1] == "{",
               let close = chars[(i + 2)...].firstIndex(of: "}") {
                let inner = String(String.UnicodeScalarView(chars[(i + 2)..<close]))
                let name: String
                var fallback: String? = nil
                if let r = inner.range(of: ":-") {
                    name = String(inner[..<r.lowerBound])
                    fallback = String(inner[r.upperBound...])
                } else {
                    name = inner
                }
                if isName(name) {
                    if let fallback {
                        let v = env[name] ?? ""
                        out.append(contentsOf: (v.isEmpty ? fallback : v).unicodeScalars)
                    } else if let v = env[name] {
                        out.append(contentsOf: v.unicodeScalars)
                    } else {
                        throw SessionError.unresolvedVariable(name)
                    }
                    i = close + 1
                    continue
                }
            }
            out.append(c)
            i += 1
        }
        return String(out)
    }

    /// The merged, expanded environment for a session.
    public static func merge(daemon: [String: String], profile: [String: String],
                             request: [String: String]) throws -> [String: String] {
        var result = daemon
        for key in profile.keys.sorted() { result[key] = try expand(profile[key]!, from: daemon) }
        for key in request.keys.sorted() { result[key] = try expand(request[key]!, from: daemon) }
        return result
    }

    static func isName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f == "_" || ("A"..."Z").contains(f) || ("a"..."z").contains(f) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }
}
