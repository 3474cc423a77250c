import Foundation
import CPosix
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// In-memory SessionService for daemon tests.
actor FakeSessions: SessionService {
    var records: [String: SessionRecord] = [:]
    var limit = 3
    var started = false
    var shutdownCalls: [Bool] = []
    var pruneCalls = 0
    var sent: [(String, String)] = []
    var spawnDelay: Double = 0
    var nextId = 1

    func start() async { started = true }
    func setSpawnDelay(_ d: Double) { spawnDelay = d }

    func spawn(_ request: SpawnRequest) async throws -> SessionRecord {
        if spawnDelay > 0 { try? await Task.sleep(nanoseconds: UInt64(spawnDelay * 1e9)) }
        if request.environmentVariables.values.contains(where: { $0.contains("${NOPE}") }) {
            throw SessionError.unresolvedVariable("NOPE")
        }
        if !FileIO.isDirectory(request.directory) {
            guard request.createDirectory else { throw SessionError.directoryMissing(request.directory) }
            try FileIO.ensureDirectory(request.directory, mode: 0o755)
        }
        if records.values.filter({ $0.status.isLive }).count >= limit { throw SessionError.limitReached(limit) }
        let id = "s\(nextId)"
        nextId += 1
        let r = SessionRecord(id: id, pid: 4242, directory: request.directory, status: .running, startedBy: request.startedBy,
                              startedAt: ISOTime.nowMs(), stdoutPath: "/tmp/\(id)/stdout.jsonl", stderrPath: "/tmp/\(id)/stderr.log")
        records[id] = r
        return r
    }
    func list(includeFinished: Bool) async -> [SessionRecord] {
        records.values.filter { includeFinished || $0.status.isLive }.sorted { $0.id < $1.id }
    }
    func get(_ id: String) async -> SessionRecord? { records[id] }
    func stop(_ id: String, reason: StopReason) async throws -> SessionRecord {
        guard var r = records[id] else { throw SessionError.notFound(id) }
        guard r.status.isLive else { throw SessionError.notRunning(id) }
        r.status = .stopped
        r.stopReason = reason
        r.endedAt = ISOTime.nowMs()
        records[id] = r
        return r
    }
    func send(_ id: String, text: String, local: Bool) async throws {
        let r = try await resolve(id)
        guard r.status.isLive else { throw SessionError.notRunning(r.id) }
        sent.append((r.id, text))
    }
    func resolve(_ key: String) async throws -> SessionRecord {
        if let r = records[key] ?? records.values.first(where: { $0.serverSessionId == key }) { return r }
        let m = records.values.filter { key.count >= 6 && ($0.id.hasPrefix(key) || ($0.serverSessionId ?? "").hasPrefix(key)) }
        guard m.count == 1 else { throw m.isEmpty ? SessionError.notFound(key) : SessionError.ambiguous(prefix: key, matches: m.map(\.id)) }
        return m[0]
    }
    var answers: [(String, String?, PermissionAnswer)] = []
    func answerPermission(_ id: String, requestId: String?, _ answer: PermissionAnswer) async throws -> SessionRecord {
        var r = try await resolve(id)
        guard let i = r.pendingPermissions.firstIndex(where: { requestId == nil || $0.id == requestId || $0.requestId == requestId }) else {
            throw SessionError.noSuchPermission(session: r.id, request: requestId)
        }
        r.pendingPermissions.remove(at: i)
        records[r.id] = r
        answers.append((r.id, requestId, answer))
        return r
    }
    var interrupts: [String] = []
    func interrupt(_ id: String) async throws { interrupts.append(try await resolve(id).id) }
    func setPermissionMode(_ id: String, _ mode: PermissionMode) async throws {
        var r = try await resolve(id); r.permissionMode = mode; records[r.id] = r
    }
    func setSync(_ id: String, serverSessionId: String?, state: SyncState) async {
        guard var r = try? await resolve(id) else { return }
        r.serverSessionId = serverSessionId; r.sync = state; records[r.id] = r
    }
    var observer: (@Sendable (SessionEvent) -> Void)?
    func observe(_ handler: (@Sendable (SessionEvent) -> Void)?, mirroring: Bool) async { observer = handler }
    func put(_ r: SessionRecord) { records[r.id] = r }
    func readStream(_ id: String, from: Int64, limit: Int) async -> OutputChunk? {
        records[id] == nil ? nil : OutputChunk(start: from, bytes: [], sealed: false)
    }
    func shutdown(keepSessions: Bool) async {
        shutdownCalls.append(keepSessions)
        if !keepSessions {
            for (k, var r) in records where r.status.isLive {
                r.status = .stopped; r.stopReason = .daemonShutdown; records[k] = r
            }
        }
    }
    func prune() async { pruneCalls += 1 }
    func liveCount() async -> Int { records.values.filter { $0.status.isLive }.count }
}

/// A fresh temporary home folder.
func makeTempHome(_ tag: String = "d") -> String {
    let p = "/tmp/happy-test-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try! FileIO.ensureDirectory(p)
    return p
}

func removeTree(_ p: String) { try? FileManagerShim.removeTree(p) }

/// Raw exchange over one TCP connection: sends `bytes`, reads one response (or until close).
func rawExchange(port: Int, _ bytes: [UInt8], timeout: Double = 3) -> HTTPResponse? {
    let fd = cposix_connect_loopback(Int32(port), Int32(timeout * 1000))
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    return readResponse(fd)
}

func readResponse(_ fd: Int32) -> HTTPResponse? {
    var parser = HTTPMessageParser(kind: .response, maxHeaderBytes: 64 * 1024, maxBodyBytes: 8 << 20)
    var buf = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
        if let r = try? parser.nextResponse() { return r }
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        if n <= 0 { return try? parser.nextResponse(eof: true) }
        buf.withUnsafeBytes { parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
}

/// A process whose command line looks like a happy daemon (`sh -c 'sleep N' happy daemon start-sync`).
func spawnFakeDaemonProcess(seconds: Int = 30) -> Int32 {
    spawnProcess(["/bin/sh", "-c", "sleep \(seconds)", "happy", "daemon", "start-sync"])
}

func spawnProcess(_ args: [String]) -> Int32 {
    var pid: pid_t = 0
    var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    let r = posix_spawn(&pid, args[0], nil, nil, &cargs, environ)
    return r == 0 ? pid : -1
}

func killAndReap(_ pid: Int32) {
    guard pid > 0 else { return }
    kill(pid, SIGKILL)
    var st: Int32 = 0
    waitpid(pid, &st, 0)
}

func monoNow() -> Double { MonotonicClock.now() }

/// Runs blocking work (sockets, the synchronous control client) on its own thread, so a
/// test never starves the cooperative pool that the daemon's route handlers need.
func off<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        Thread.detachNewThread { c.resume(with: Result { try body() }) }
    }
}

func off<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in
        Thread.detachNewThread { c.resume(returning: body()) }
    }
}
