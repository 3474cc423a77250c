import HappyCore

// Typed params and results of the phone's file and shell tools (SPEC §4.4; protocol sheet
// SESSIONS.md §7.2). One style for all: `init(json:) throws(ToolDecodeError)` reads the
// decrypted JSON value, `json` writes it back (key names exactly as on the wire; optional
// fields are left out, never `null`).

/// A params (or result) value that does not have the expected shape.
public struct ToolDecodeError: HappyError, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var what: String { "invalid params: \(message)" }
}

/// Reads the fields of a JSON object with precise type errors. Absent and `null` are the
/// same for optional fields.
struct FieldReader {
    let object: [String: JSON]

    init(_ json: JSON) throws(ToolDecodeError) {
        guard let o = json.object else { throw ToolDecodeError("expected an object") }
        object = o
    }

    private func present(_ key: String) -> JSON? {
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    func string(_ key: String) throws(ToolDecodeError) -> String {
        guard let v = try optionalString(key) else { throw ToolDecodeError("\(key) is required") }
        return v
    }
    func optionalString(_ key: String) throws(ToolDecodeError) -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v.string else { throw ToolDecodeError("\(key) must be a string") }
        return s
    }
    func number(_ key: String) throws(ToolDecodeError) -> Double {
        guard let v = try optionalNumber(key) else { throw ToolDecodeError("\(key) is required") }
        return v
    }
    func optionalNumber(_ key: String) throws(ToolDecodeError) -> Double? {
        guard let v = present(key) else { return nil }
        guard let d = v.double, d.isFinite else { throw ToolDecodeError("\(key) must be a number") }
        return d
    }
    func int64(_ key: String) throws(ToolDecodeError) -> Int64? {
        guard let d = try optionalNumber(key) else { return nil }
        guard d.rounded() == d, abs(d) < 9.0e18 else { throw ToolDecodeError("\(key) must be an integer") }
        return Int64(d)
    }
    func bool(_ key: String) throws(ToolDecodeError) -> Bool {
        guard let v = try optionalBool(key) else { throw ToolDecodeError("\(key) is required") }
        return v
    }
    func optionalBool(_ key: String) throws(ToolDecodeError) -> Bool? {
        guard let v = present(key) else { return nil }
        guard let b = v.bool else { throw ToolDecodeError("\(key) must be a boolean") }
        return b
    }
    func stringArray(_ key: String) throws(ToolDecodeError) -> [String] {
        guard let v = present(key) else { throw ToolDecodeError("\(key) is required") }
        guard let a = v.array else { throw ToolDecodeError("\(key) must be an array of strings") }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let s = e.string else { throw ToolDecodeError("\(key) must be an array of strings") }
            out.append(s)
        }
        return out
    }
    func optionalObject(_ key: String) throws(ToolDecodeError) -> JSON? {
        guard let v = present(key) else { return nil }
        guard v.object != nil else { throw ToolDecodeError("\(key) must be an object") }
        return v
    }
    func optionalArray(_ key: String) throws(ToolDecodeError) -> [JSON]? {
        guard let v = present(key) else { return nil }
        guard let a = v.array else { throw ToolDecodeError("\(key) must be an array") }
        return a
    }
}

/// Builds a JSON object, leaving out nil fields.
struct FieldWriter {
    var object: [String: JSON] = [:]
    mutating func set(_ key: String, _ v: String?) { if let v { object[key] = .string(v) } }
    mutating func set(_ key: String, _ v: Bool?) { if let v { object[key] = .bool(v) } }
    mutating func set(_ key: String, _ v: Int64?) { if let v { object[key] = .number(Double(v)) } }
    mutating func set(_ key: String, _ v: Int?) { if let v { object[key] = .number(Double(v)) } }
    mutating func set(_ key: String, _ v: Double?) { if let v { object[key] = .number(v) } }
    mutating func set(_ key: String, _ v: JSON?) { if let v { object[key] = v } }
    /// Only when true (flags such as `truncated`).
    mutating func flag(_ key: String, _ v: Bool) { if v { object[key] = .bool(true) } }
    var json: JSON { .object(object) }
}

/// Outcome of a tool for the audit line: `ok` on success, `refused` when a path was
/// outside the roots, `error` otherwise.
func toolAuditResult(success: Bool, error: String?) -> AuditResult {
    if success { return .ok }
    return error == PathConfinement.refusal ? .refused : .error
}

/// A tool's params: decoded from the decrypted RPC params.
public protocol ToolParams: Sendable {
    init(json: JSON) throws(ToolDecodeError)
}

/// A tool's answer: what is encrypted back, and how the audit log records it.
public protocol ToolAnswer: Sendable {
    var json: JSON { get }
    var auditResult: AuditResult { get }
}

// MARK: - bash

/// `bash {command, cwd?, timeout?}` (`timeout` in ms; absent, null or 0 → 30000).
public struct BashParams: ToolParams, Equatable {
    public var command: String
    public var cwd: String?
    public var timeoutMs: Double?

    public init(command: String, cwd: String? = nil, timeoutMs: Double? = nil) {
        self.command = command
        self.cwd = cwd
        self.timeoutMs = timeoutMs
    }

    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        command = try r.string("command")
        cwd = try r.optionalString("cwd")
        timeoutMs = try r.optionalNumber("timeout")
        if let t = timeoutMs, t < 0 { throw ToolDecodeError("timeout must not be negative") }
    }

    public var json: JSON {
        var w = FieldWriter()
        w.set("command", command)
        w.set("cwd", cwd)
        w.set("timeout", timeoutMs)
        return w.json
    }
}

/// `{success, stdout, stderr, exitCode, error?}` — the four first fields are always
/// present (a refusal has empty output and exit code -1). `stdoutTruncated` /
/// `stderrTruncated` appear (true) when a stream passed the 1 MiB cap.
public struct BashResult: ToolAnswer, Equatable {
    public var success: Bool
    public var stdout: String
    public var stderr: String
    public var exitCode: Int
    public var error: String?
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool

    public init(success: Bool, stdout: String = "", stderr: String = "", exitCode: Int, error: String? = nil,
                stdoutTruncated: Bool = false, stderrTruncated: Bool = false) {
        self.success = success
        self.stdout = stdout
        self.stderr = stderr
        self.exitCode = exitCode
        self.error = error
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
    }

    /// Did not run (refused path, bad params, cannot start).
    public static func failure(_ error: String) -> BashResult {
        BashResult(success: false, exitCode: -1, error: error)
    }

    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        success = try r.bool("success")
        stdout = try r.optionalString("stdout") ?? ""
        stderr = try r.optionalString("stderr") ?? ""
        exitCode = Int(try r.int64("exitCode") ?? -1)
        error = try r.optionalString("error")
        stdoutTruncated = try r.optionalBool("stdoutTruncated") ?? false
        stderrTruncated = try r.optionalBool("stderrTruncated") ?? false
    }

    public var json: JSON {
        var w = FieldWriter()
        w.set("success", success)
        w.set("stdout", stdout)
        w.set("stderr", stderr)
        w.set("exitCode", exitCode)
        w.set("error", error)
        w.flag("stdoutTruncated", stdoutTruncated)
        w.flag("stderrTruncated", stderrTruncated)
        return w.json
    }

    public var auditResult: AuditResult { toolAuditResult(success: success, error: error) }
}

// MARK: - readFile

/// `readFile {path}`.
public struct ReadFileParams: ToolParams, Equatable {
    public var path: String
    public init(path: String) { self.path = path }
    public init(json: JSON) throws(ToolDecodeError) {
        path = try FieldReader(json).string("path")
    }
    public var json: JSON { ["path": .string(path)] }
}

/// `{success, content?: base64, error?}`.
public struct ReadFileResult: ToolAnswer, Equatable {
    public var success: Bool
    public var content: String?
    public var error: String?

    public init(success: Bool, content: String? = nil, error: String? = nil) {
        self.success = success
        self.content = content
        self.error = error
    }
    public static func failure(_ error: String) -> ReadFileResult { ReadFileResult(success: false, error: error) }

    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        success = try r.bool("success")
        content = try r.optionalString("content")
        error = try r.optionalString("error")
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("success", success)
        w.set("content", content)
        w.set("error", error)
        return w.json
    }
    public var auditResult: AuditResult { toolAuditResult(success: success, error: error) }
}

// MARK: - writeFile

/// `writeFile {path, content: base64, expectedHash?: sha256 hex | null}`; absent and
/// `null` both mean "the file must not exist yet".
public struct WriteFileParams: ToolParams, Equatable {
    public var path: String
    /// Base64 (as sent).
    public var content: String
    public var expectedHash: String?

    public init(path: String, content: String, expectedHash: String? = nil) {
        self.path = path
        self.content = content
        self.expectedHash = expectedHash
    }
    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        path = try r.string("path")
        content = try r.string("content")
        expectedHash = try r.optionalString("expectedHash")
    }
    public var json: JSON {
        ["path": .string(path), "content": .string(content), "expectedHash": .optional(expectedHash)]
    }
}

/// `{success, hash?, error?}` (`hash`: sha256 hex of the written bytes).
public struct WriteFileResult: ToolAnswer, Equatable {
    public var success: Bool
    public var hash: String?
    public var error: String?

    public init(success: Bool, hash: String? = nil, error: String? = nil) {
        self.success = success
        self.hash = hash
        self.error = error
    }
    public static func failure(_ error: String) -> WriteFileResult { WriteFileResult(success: false, error: error) }

    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        success = try r.bool("success")
        hash = try r.optionalString("hash")
        error = try r.optionalString("error")
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("success", success)
        w.set("hash", hash)
        w.set("error", error)
        return w.json
    }
    public var auditResult: AuditResult { toolAuditResult(success: success, error: error) }
}

// MARK: - listDirectory

/// `listDirectory {path}`.
public struct ListDirectoryParams: ToolParams, Equatable {
    public var path: String
    public init(path: String) { self.path = path }
    public init(json: JSON) throws(ToolDecodeError) {
        path = try FieldReader(json).string("path")
    }
    public var json: JSON { ["path": .string(path)] }
}

/// `file` | `directory` | `other` (from `lstat`: a symlink is `other`).
public enum EntryType: String, Sendable, Equatable {
    case file, directory, other
}

/// `{name, type, size?, modified? (epoch ms)}`.
public struct DirectoryEntry: Sendable, Equatable {
    public var name: String
    public var type: EntryType
    public var size: Int64?
    public var modified: Int64?

    public init(name: String, type: EntryType, size: Int64? = nil, modified: Int64? = nil) {
        self.name = name
        self.type = type
        self.size = size
        self.modified = modified
    }
    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        name = try r.string("name")
        let t = try r.string("type")
        guard let et = EntryType(rawValue: t) else { throw ToolDecodeError("type must be file, directory or other") }
        type = et
        size = try r.int64("size")
        modified = try r.int64("modified")
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("name", name)
        w.set("type", type.rawValue)
        w.set("size", size)
        w.set("modified", modified)
        return w.json
    }
}

/// `{success, entries?, error?}` (+ `truncated: true` past `ToolLimits.maxListEntries`).
public struct ListDirectoryResult: ToolAnswer, Equatable {
    public var success: Bool
    public var entries: [DirectoryEntry]?
    public var error: String?
    public var truncated: Bool

    public init(success: Bool, entries: [DirectoryEntry]? = nil, error: String? = nil, truncated: Bool = false) {
        self.success = success
        self.entries = entries
        self.error = error
        self.truncated = truncated
    }
    public static func failure(_ error: String) -> ListDirectoryResult { ListDirectoryResult(success: false, error: error) }

    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        success = try r.bool("success")
        if let a = try r.optionalArray("entries") {
            var es: [DirectoryEntry] = []
            for e in a { es.append(try DirectoryEntry(json: e)) }
            entries = es
        } else {
            entries = nil
        }
        error = try r.optionalString("error")
        truncated = try r.optionalBool("truncated") ?? false
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("success", success)
        w.set("entries", entries.map { JSON.array($0.map(\.json)) })
        w.set("error", error)
        w.flag("truncated", truncated)
        return w.json
    }
    public var auditResult: AuditResult { toolAuditResult(success: success, error: error) }
}

// MARK: - getDirectoryTree

/// `getDirectoryTree {path, maxDepth}` (`maxDepth` N lists N levels below `path`; a
/// fraction is rounded up, as the original's `depth < maxDepth` comparison does).
public struct GetDirectoryTreeParams: ToolParams, Equatable {
    public var path: String
    public var maxDepth: Int

    public init(path: String, maxDepth: Int) {
        self.path = path
        self.maxDepth = maxDepth
    }
    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        path = try r.string("path")
        let d = try r.number("maxDepth")
        maxDepth = d < 0 ? -1 : Int(min(d, 1e9).rounded(.up))
    }
    public var json: JSON { ["path": .string(path), "maxDepth": .int(maxDepth)] }
}

/// `{name, path, type: file|directory, size?, modified?, children?}`; `children` only on
/// directories that were listed.
public struct TreeNode: Sendable, Equatable {
    public var name: String
    public var path: String
    /// `file` or `directory` (the app's tree knows only these two; anything that is not a
    /// directory is a `file`, as in the original).
    public var type: EntryType
    public var size: Int64?
    public var modified: Int64?
    public var children: [TreeNode]?

    public init(name: String, path: String, type: EntryType, size: Int64? = nil, modified: Int64? = nil,
                children: [TreeNode]? = nil) {
        self.name = name
        self.path = path
        self.type = type
        self.size = size
        self.modified = modified
        self.children = children
    }
    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        name = try r.string("name")
        path = try r.string("path")
        guard let t = EntryType(rawValue: try r.string("type")) else {
            throw ToolDecodeError("type must be file, directory or other")
        }
        type = t
        size = try r.int64("size")
        modified = try r.int64("modified")
        if let a = try r.optionalArray("children") {
            var cs: [TreeNode] = []
            for c in a { cs.append(try TreeNode(json: c)) }
            children = cs
        } else {
            children = nil
        }
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("name", name)
        w.set("path", path)
        w.set("type", type.rawValue)
        w.set("size", size)
        w.set("modified", modified)
        w.set("children", children.map { JSON.array($0.map(\.json)) })
        return w.json
    }
    /// Nodes in this subtree, this one included.
    public var count: Int { 1 + (children ?? []).reduce(0) { $0 + $1.count } }
}

/// `{success, tree?, error?}` (+ `truncated: true` past `ToolLimits.maxTreeEntries`).
public struct GetDirectoryTreeResult: ToolAnswer, Equatable {
    public var success: Bool
    public var tree: TreeNode?
    public var error: String?
    public var truncated: Bool

    public init(success: Bool, tree: TreeNode? = nil, error: String? = nil, truncated: Bool = false) {
        self.success = success
        self.tree = tree
        self.error = error
        self.truncated = truncated
    }
    public static func failure(_ error: String) -> GetDirectoryTreeResult {
        GetDirectoryTreeResult(success: false, error: error)
    }
    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        success = try r.bool("success")
        if let t = try r.optionalObject("tree") { tree = try TreeNode(json: t) } else { tree = nil }
        error = try r.optionalString("error")
        truncated = try r.optionalBool("truncated") ?? false
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("success", success)
        w.set("tree", tree?.json)
        w.set("error", error)
        w.flag("truncated", truncated)
        return w.json
    }
    public var auditResult: AuditResult { toolAuditResult(success: success, error: error) }
}

// MARK: - ripgrep / difftastic

/// `ripgrep {args, cwd?}` / `difftastic {args, cwd?}`.
public struct ExternalToolParams: ToolParams, Equatable {
    public var args: [String]
    public var cwd: String?

    public init(args: [String], cwd: String? = nil) {
        self.args = args
        self.cwd = cwd
    }
    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        args = try r.stringArray("args")
        cwd = try r.optionalString("cwd")
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("args", JSON.array(args.map { .string($0) }))
        w.set("cwd", cwd)
        return w.json
    }
}
public typealias RipgrepParams = ExternalToolParams
public typealias DifftasticParams = ExternalToolParams

/// `{success, exitCode?, stdout?, stderr?, error?}`. `success` is true when the tool ran
/// to its end, whatever its exit code (ripgrep exits 1 for "no matches"), as in the
/// original; false when it could not run, was refused, or timed out.
public struct ExternalToolResult: ToolAnswer, Equatable {
    public var success: Bool
    public var exitCode: Int?
    public var stdout: String?
    public var stderr: String?
    public var error: String?
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool

    public init(success: Bool, exitCode: Int? = nil, stdout: String? = nil, stderr: String? = nil,
                error: String? = nil, stdoutTruncated: Bool = false, stderrTruncated: Bool = false) {
        self.success = success
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
        self.error = error
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
    }
    public static func failure(_ error: String) -> ExternalToolResult { ExternalToolResult(success: false, error: error) }

    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        success = try r.bool("success")
        exitCode = try r.int64("exitCode").map { Int($0) }
        stdout = try r.optionalString("stdout")
        stderr = try r.optionalString("stderr")
        error = try r.optionalString("error")
        stdoutTruncated = try r.optionalBool("stdoutTruncated") ?? false
        stderrTruncated = try r.optionalBool("stderrTruncated") ?? false
    }
    public var json: JSON {
        var w = FieldWriter()
        w.set("success", success)
        w.set("exitCode", exitCode)
        w.set("stdout", stdout)
        w.set("stderr", stderr)
        w.set("error", error)
        w.flag("stdoutTruncated", stdoutTruncated)
        w.flag("stderrTruncated", stderrTruncated)
        return w.json
    }
    /// `ok` when it ran and exited 0 or 1 (ripgrep: no match; difftastic `--exit-code`:
    /// differences), `refused` / `error` otherwise.
    public var auditResult: AuditResult {
        if success { return (exitCode == 0 || exitCode == 1) ? .ok : .error }
        return toolAuditResult(success: false, error: error)
    }
}
public typealias RipgrepResult = ExternalToolResult
public typealias DifftasticResult = ExternalToolResult
