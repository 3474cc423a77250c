import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig

public enum AuditScope: String, Sendable, Equatable {
    case machine, session
}

public enum AuditResult: String, Sendable, Equatable {
    case ok, refused, error
}

/// One line of `logs/rpc-audit.jsonl` (SPEC §4.4): `{time (epoch ms), scope, sessionId?,
/// method (bare name), summary, result, durationMs}`.
public struct AuditEntry: Sendable, Equatable {
    public var time: Int64
    public var scope: AuditScope
    public var sessionId: String?
    public var method: String
    public var summary: String
    public var result: AuditResult
    public var durationMs: Int64

    public init(time: Int64, scope: AuditScope, sessionId: String? = nil, method: String, summary: String,
                result: AuditResult, durationMs: Int64) {
        self.time = time
        self.scope = scope
        self.sessionId = sessionId
        self.method = method
        self.summary = summary
        self.result = result
        self.durationMs = durationMs
    }

    /// An entry for an RPC that started at `startedMs` (epoch ms) and took `durationMs`;
    /// the summary is built from the params (`AuditSummary`).
    public init(scope: AuditScope, sessionId: String? = nil, method: String, params: JSON, result: AuditResult,
                startedMs: Int64, durationMs: Int64, permissionTool: String? = nil) {
        self.init(time: startedMs, scope: scope, sessionId: sessionId, method: method,
                  summary: AuditSummary.of(method: method, params: params, permissionTool: permissionTool),
                  result: result, durationMs: max(0, durationMs))
    }

    public init(json: JSON) throws(ToolDecodeError) {
        let r = try FieldReader(json)
        guard let t = try r.int64("time") else { throw ToolDecodeError("time is required") }
        time = t
        guard let s = AuditScope(rawValue: try r.string("scope")) else { throw ToolDecodeError("scope must be machine or session") }
        scope = s
        sessionId = try r.optionalString("sessionId")
        method = try r.string("method")
        summary = try r.optionalString("summary") ?? ""
        guard let res = AuditResult(rawValue: try r.string("result")) else {
            throw ToolDecodeError("result must be ok, refused or error")
        }
        result = res
        durationMs = try r.int64("durationMs") ?? 0
    }

    public var json: JSON {
        var w = FieldWriter()
        w.set("time", time)
        w.set("scope", scope.rawValue)
        w.set("sessionId", sessionId)
        w.set("method", method)
        w.set("summary", summary)
        w.set("result", result.rawValue)
        w.set("durationMs", durationMs)
        return w.json
    }
}

/// The `summary` of an audit line: what was touched, never file contents, environment
/// values or tokens.
public enum AuditSummary {
    /// Characters kept of a command or an argument list.
    public static let commandLimit = 200
    /// Characters kept of a path or directory.
    public static let pathLimit = 1000

    /// - bash: the command; readFile / writeFile / listDirectory / getDirectoryTree: the
    ///   path; ripgrep / difftastic: the arguments (and ` (in <cwd>)` when given);
    ///   spawn-happy-session: the directory; resume-happy-session / stop-session: the
    ///   session id; permission: `[<tool> ]approved|denied`; anything else: empty.
    public static func of(method: String, params: JSON, permissionTool: String? = nil) -> String {
        func str(_ k: String) -> String? { params[k]?.string }
        switch method {
        case "bash":
            var s = truncate(str("command") ?? "", commandLimit)
            if let cwd = str("cwd"), !cwd.isEmpty { s += " (in \(truncate(cwd, pathLimit)))" }
            return s
        case "readFile", "writeFile", "listDirectory", "getDirectoryTree":
            return truncate(str("path") ?? "", pathLimit)
        case "ripgrep", "difftastic":
            let args = (params["args"]?.array ?? []).map { $0.string ?? $0.serialized() }
            var s = truncate(args.map(quote).joined(separator: " "), commandLimit)
            if let cwd = str("cwd"), !cwd.isEmpty { s += " (in \(truncate(cwd, pathLimit)))" }
            return s
        case "spawn-happy-session":
            return truncate(str("directory") ?? "", pathLimit)
        case "resume-happy-session", "stop-session":
            return truncate(str("sessionId") ?? "", commandLimit)
        case "permission":
            let verdict = params["approved"]?.bool == true ? "approved" : "denied"
            if let t = permissionTool, !t.isEmpty { return truncate(t, commandLimit) + " " + verdict }
            return verdict
        default:
            return ""
        }
    }

    /// At most `limit` characters; a cut one ends with `…`.
    public static func truncate(_ s: String, _ limit: Int) -> String {
        guard s.count > limit else { return s }
        return String(s.prefix(max(0, limit - 1))) + "…"
    }

    static func quote(_ a: String) -> String {
        if !a.isEmpty && !a.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "'" || $0 == "\"" }) {
            return a
        }
        return "'" + a.replacing("'", with: "'\\''") + "'"
    }
}

/// Appends audit lines to `logs/rpc-audit.jsonl` (0600, folder 0700) on its own serial
/// queue: `record` never blocks the RPC and never throws; a failure is logged once
/// (again only after a later success). Each line is one `write(2)` with
/// `O_APPEND|O_NOFOLLOW|O_CLOEXEC`.
///
/// Rotation (like the daemon logs): when the current file reaches `maxBytes`,
/// `rpc-audit.K.jsonl` → `rpc-audit.(K+1).jsonl`, the current file → `rpc-audit.1.jsonl`,
/// and a new empty current file is started; at most `maxFiles` files exist in total (the
/// oldest are deleted; also applied at the first write, for a smaller `logFiles`).
public final class RPCAuditLog: Sendable {
    public let path: String
    public let maxBytes: Int
    public let maxFiles: Int
    private let queue = DispatchQueue(label: "happy.rpc-audit", qos: .utility)
    private let state = State()

    private final class State: @unchecked Sendable {
        // Touched only on `queue`.
        var started = false
        var failing = false
    }

    public init(path: String, maxBytes: Int, maxFiles: Int) {
        self.path = path
        self.maxBytes = max(1, maxBytes)
        self.maxFiles = max(1, maxFiles)
    }

    /// The profile's audit log, or nil when `rpc.audit` is false.
    public static func forConfig(_ config: HappyConfig) -> RPCAuditLog? {
        guard config.rpc.audit else { return nil }
        let bytes = Int((config.daemon.logMaxMiB * 1_048_576).rounded(.up))
        return RPCAuditLog(path: config.home.rpcAuditLog, maxBytes: bytes, maxFiles: config.daemon.logFiles)
    }

    /// `rpc-audit.jsonl` → `rpc-audit.K.jsonl` (K ≥ 1).
    public static func rotatedPath(_ path: String, _ k: Int) -> String {
        if path.hasSuffix(".jsonl") { return String(path.dropLast(6)) + ".\(k).jsonl" }
        return path + ".\(k)"
    }

    /// Queues one line; returns at once.
    public func record(_ entry: AuditEntry) {
        let line = Array((entry.json.serialized() + "\n").utf8)
        queue.async { [self] in append(line) }
    }

    /// Waits until every recorded line has been written (shutdown, tests).
    public func flush() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            queue.async { c.resume() }
        }
    }

    // MARK: on the queue

    private func append(_ line: [UInt8]) {
        let dir = Paths.dirname(path)
        if !state.started {
            do { try FileIO.ensureDirectory(dir, mode: 0o700) } catch { fail("\(error)"); return }
            prune()
            state.started = true
        }
        var fd = openCurrent()
        if fd < 0 {
            // The folder may have been removed since: create it once more.
            if errno == ENOENT { _ = try? FileIO.ensureDirectory(dir, mode: 0o700); fd = openCurrent() }
            if fd < 0 { fail(errnoString()); return }
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            fail("not a regular file")
            return
        }
        if st.st_mode & 0o777 != 0o600 { _ = fchmod(fd, 0o600) }
        var size = Int(st.st_size)
        if size >= maxBytes {
            close(fd)
            rotate()
            fd = openCurrent()
            if fd < 0 { fail(errnoString()); return }
            size = 0
        }
        var off = 0
        var err: Int32 = 0
        while off < line.count {
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress! + off, line.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                err = errno
                break
            }
            off += n
            size += n
        }
        close(fd)
        if err != 0 { fail(errnoString(err)); return }
        if state.failing {
            state.failing = false
            Log.info("audit", "the RPC audit log is written again: \(path)")
        }
        if size >= maxBytes { rotate() }
    }

    private func openCurrent() -> Int32 {
        open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
    }

    private func fail(_ reason: String) {
        if state.failing { return }
        state.failing = true
        Log.warn("audit", "cannot write the RPC audit log \(path): \(reason)")
    }

    /// Rotated files that exist, by index.
    private func rotatedIndices() -> [Int] {
        let dir = Paths.dirname(path)
        let base = Paths.basename(path)
        let stem = base.hasSuffix(".jsonl") ? String(base.dropLast(6)) : base
        let suffix = base.hasSuffix(".jsonl") ? ".jsonl" : ""
        var out: [Int] = []
        for name in FileManagerShim.listDirectory(dir) where name.hasPrefix(stem + ".") && name.hasSuffix(suffix) {
            let mid = name.dropFirst(stem.count + 1).dropLast(suffix.count)
            if let k = Int(mid), k >= 1, String(k) == mid { out.append(k) }
        }
        return out.sorted()
    }

    /// Deletes rotated files beyond the count limit (`maxFiles - 1` rotated + current).
    private func prune() {
        for k in rotatedIndices() where k > maxFiles - 1 { unlink(Self.rotatedPath(path, k)) }
    }

    private func rotate() {
        let keep = maxFiles - 1
        // The files that would be shifted beyond the limit go first.
        for k in rotatedIndices() where k >= keep { unlink(Self.rotatedPath(path, k)) }
        if keep >= 1 {
            var k = keep - 1
            while k >= 1 {
                _ = rename(Self.rotatedPath(path, k), Self.rotatedPath(path, k + 1))
                k -= 1
            }
            if rename(path, Self.rotatedPath(path, 1)) != 0 { unlink(path) }
        } else {
            unlink(path)
        }
        // A new, empty current file (a follower finds it at once).
        let fd = openCurrent()
        if fd >= 0 { close(fd) }
    }
}
