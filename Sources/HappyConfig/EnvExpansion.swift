import HappyCore
/// Expands `${VAR}` and `${VAR:-default}` in `value` from `env` (SPEC §2.1 `env`,
/// applied at spawn time by the sessions module). `${VAR:-default}` uses the default
/// when VAR is unset or empty; `${VAR}` with VAR unset throws
/// `ConfigError.unresolvedVariable(VAR)`. `$$` is a literal `$`; any other `$` is kept.
public func expandEnvReferences(_ value: String, env: [String: String]) throws -> String {
    guard value.contains("$") else { return value }
    var out = ""
    var i = value.startIndex
    while i < value.endIndex {
        let c = value[i]
        guard c == "$" else { out.append(c); i = value.index(after: i); continue }
        let next = value.index(after: i)
        if next < value.endIndex, value[next] == "$" {
            out.append("$")
            i = value.index(after: next)
            continue
        }
        guard next < value.endIndex, value[next] == "{",
              let close = value[next...].firstIndex(of: "}") else {
            out.append(c)
            i = next
            continue
        }
        let body = String(value[value.index(after: next)..<close])
        var name = body
        var fallback: String?
        if let r = body.firstRange(of: ":-") {
            name = String(body[..<r.lowerBound])
            fallback = String(body[r.upperBound...])
        }
        guard isEnvName(name) else {
            // `${not a name}` is not a reference: kept as written.
            out.append(c)
            i = next
            continue
        }
        if let v = env[name], !(fallback != nil && v.isEmpty) {
            out += v
        } else if let fallback {
            out += fallback
        } else {
            throw ConfigError.unresolvedVariable(name)
        }
        i = value.index(after: close)
    }
    return out
}

/// `[A-Za-z_][A-Za-z0-9_]*`
func isEnvName(_ s: String) -> Bool {
    guard let f = s.unicodeScalars.first, f == "_" || ("A"..."Z").contains(f) || ("a"..."z").contains(f) else { return false }
    return s.unicodeScalars.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
}
