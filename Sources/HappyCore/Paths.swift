#if canImport(Glibc)
import Glibc
#endif

/// Path strings: the one home for `~` expansion, the user's home folder, absolute paths
/// and the `dirname`/`basename`/normalisation that Foundation's `NSString` used to do.
public enum Paths {
    /// `$HOME` (without a trailing slash), else the password database's entry, else `/`.
    public static func userHome(_ env: [String: String]) -> String {
        if let h = env["HOME"], !h.isEmpty { return h.count > 1 && h.hasSuffix("/") ? String(h.dropLast()) : h }
        if let pw = getpwuid(getuid()), let d = pw.pointee.pw_dir { return String(cString: d) }
        return "/"
    }

    /// `~` and `~/x` → the user's home; anything else unchanged.
    public static func expandTilde(_ path: String, env: [String: String]) -> String {
        if path == "~" { return userHome(env) }
        if path.hasPrefix("~/") { return userHome(env) + String(path.dropFirst(1)) }
        return path
    }

    /// The process's working directory.
    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "/" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `~` expanded, made absolute from `cwd` (default: the working directory) and
    /// normalised (`.`/`..`/`//` removed, no symlinks resolved).
    public static func absolute(_ path: String, env: [String: String], cwd: String? = nil) -> String {
        var p = expandTilde(path, env: env)
        if !p.hasPrefix("/") { p = (cwd ?? currentDirectory()) + "/" + p }
        return normalize(p)
    }

    /// Lexical normalisation of an absolute or relative path: `a//b/./c/../d` → `a/b/d`.
    public static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                if let last = parts.last, last != ".." { parts.removeLast(); continue }
                if absolute { continue }
            }
            parts.append(c)
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// The folder part: `/a/b/c` → `/a/b`, `c` → ``, `/c` → `/`.
    public static func dirname(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        if slash == p.startIndex { return "/" }
        return String(p[..<slash])
    }

    /// The last component: `/a/b/c` → `c`, `/a/b/` → `b`.
    public static func basename(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return String(p) }
        return String(p[p.index(after: slash)...])
    }

    /// `dir` + `/` + `name` without doubling the slash.
    public static func join(_ dir: String, _ name: String) -> String {
        if dir.isEmpty { return name }
        return dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }
}
