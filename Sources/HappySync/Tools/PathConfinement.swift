#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// A path a tool may use: absolute, symlinks resolved, inside the allowed roots (and the
/// session directory in the session scope).
public struct ConfinedPath: Sendable, Equatable {
    /// The resolved path. When `exists` is false, its folder is resolved and the last
    /// component is the name as given (a file to create).
    public let path: String
    /// The path resolved completely (it existed when it was checked).
    public let exists: Bool
}

/// Why a path cannot be used.
public enum PathFailure: Error, Sendable, Equatable {
    /// Outside the roots (or the session directory): the tool answers
    /// `PathConfinement.refusal` and the audit line says `refused`.
    case refused
    /// Inside, as far as can be told, but unusable (missing folder, no permission...).
    case unusable(String)

    /// The text of the tool's `error`.
    public var message: String {
        switch self {
        case .refused: return PathConfinement.refusal
        case .unusable(let m): return m
        }
    }
}

/// The one path check of the phone's tools (SPEC §4.4, §7.5). A path is made absolute
/// (a leading `~` expanded, a relative path taken from `base`), resolved with
/// `realpath(3)` (symlinks followed, `.`/`..` removed) — for a path that does not exist
/// yet, its folder is resolved and the name appended — and must then lie inside one of
/// the roots, themselves resolved the same way, and in the session scope inside the
/// session directory too. Comparisons are on bytes at component boundaries (`/home/u2`
/// is not inside `/home/u`; no Unicode equivalence).
public struct PathConfinement: Sendable {
    public static let refusal = "path outside the allowed roots (rpc.roots)"

    /// Resolved roots (unresolvable or relative entries dropped).
    public let roots: [String]
    /// Resolved session directory (session scope), nil in the machine scope.
    public let sessionDirectory: String?
    /// Base of relative paths and default working directory: the session directory, or
    /// the first root. nil when it is not allowed (then relative paths are refused).
    public let base: String?
    private let sessionScope: Bool
    private let home: String

    public init(_ context: ToolContext) {
        home = Paths.userHome(context.environment)
        var rs: [String] = []
        for raw in context.roots {
            let p = Paths.expandTilde(raw, env: context.environment)
            guard p.hasPrefix("/"), let r = Self.realPath(p).path else { continue }
            if !rs.contains(where: { Self.bytesEqual($0, r) }) { rs.append(r) }
        }
        roots = rs
        switch context.scope {
        case .machine:
            sessionScope = false
            sessionDirectory = nil
            base = rs.first
        case .session(_, let dir):
            sessionScope = true
            let d = Paths.expandTilde(dir, env: context.environment)
            let resolved = d.hasPrefix("/") ? Self.realPath(d).path : nil
            sessionDirectory = resolved
            base = resolved.flatMap { r in rs.contains { Self.isInside(r, root: $0) } ? r : nil }
        }
    }

    /// True when an already resolved path is allowed.
    public func allows(_ resolved: String) -> Bool {
        guard roots.contains(where: { Self.isInside(resolved, root: $0) }) else { return false }
        if sessionScope {
            guard let s = sessionDirectory, Self.isInside(resolved, root: s) else { return false }
        }
        return true
    }

    /// Resolves a `path`/`cwd` parameter.
    public func resolve(_ raw: String) -> Result<ConfinedPath, PathFailure> {
        if raw.utf8.contains(0) { return .failure(.unusable("invalid path: it contains a NUL byte")) }
        var p = Paths.expandTilde(raw, env: ["HOME": home])
        if !p.hasPrefix("/") {
            guard let base else { return .failure(.refused) }
            p = Paths.join(base, p)
        }
        let full = Self.realPath(p)
        if let r = full.path {
            return allows(r) ? .success(ConfinedPath(path: r, exists: true)) : .failure(.refused)
        }
        // Not there (yet): resolve the folder, append the name.
        let name = Paths.basename(p)
        let dir = Paths.dirname(p)
        if full.errno == ENOENT, !name.isEmpty, name != ".", name != "..", name != "/", !dir.isEmpty,
           let d = Self.realPath(dir).path {
            let candidate = Paths.join(d, name)
            return allows(candidate) ? .success(ConfinedPath(path: candidate, exists: false)) : .failure(.refused)
        }
        // Unresolvable: refuse what is outside even lexically, else say why it failed.
        let lexical = Paths.normalize(p)
        if !allows(lexical) { return .failure(.refused) }
        return .failure(.unusable("\(errnoString(full.errno)): \(raw)"))
    }

    /// The working directory of a child: `cwd` resolved (must be an existing folder), or
    /// `base` when absent.
    public func workingDirectory(_ cwd: String?) -> Result<String, PathFailure> {
        guard let cwd, !cwd.isEmpty else {
            guard let base else { return .failure(.refused) }
            return .success(base)
        }
        switch resolve(cwd) {
        case .failure(let f): return .failure(f)
        case .success(let c):
            guard c.exists else { return .failure(.unusable("\(errnoString(ENOENT)): \(cwd)")) }
            guard FileIO.isDirectory(c.path) else { return .failure(.unusable("\(errnoString(ENOTDIR)): \(cwd)")) }
            return .success(c.path)
        }
    }

    // MARK: helpers

    /// `realpath(3)`: the path, or the errno.
    static func realPath(_ p: String) -> (path: String?, errno: Int32) {
        guard let r = realpath(p, nil) else { return (nil, errno) }
        defer { free(r) }
        return (String(cString: r), 0)
    }

    /// `path` equals `root` or lies below it (byte-wise, at a component boundary).
    static func isInside(_ path: String, root: String) -> Bool {
        var p = path.utf8[...], r = root.utf8[...]
        while r.count > 1, r.last == UInt8(ascii: "/") { r = r.dropLast() }
        if r.elementsEqual("/".utf8) { return p.first == UInt8(ascii: "/") }
        while p.count > 1, p.last == UInt8(ascii: "/") { p = p.dropLast() }
        guard p.count >= r.count, p.starts(with: r) else { return false }
        return p.count == r.count || p[p.index(p.startIndex, offsetBy: r.count)] == UInt8(ascii: "/")
    }

    static func bytesEqual(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }
}
