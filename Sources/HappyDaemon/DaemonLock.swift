import FoundationEssentials
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

/// `daemon.state.json.lock`: line 1 the pid, line 2 its start time (field 22 of
/// /proc/PID/stat). Created by an atomic hard link of a temp file. Reclaim of a stale
/// lock is serialized with an flock on the home folder, so two daemons starting at
/// once never both win.
public struct DaemonLockInfo: Sendable, Equatable {
    public var pid: Int32
    /// nil: a lock with only a pid (unknown start time).
    public var startTime: UInt64?

    public init(pid: Int32, startTime: UInt64?) { self.pid = pid; self.startTime = startTime }

    public var text: String { "\(pid)\n" + (startTime.map { "\($0)\n" } ?? "") }

    /// nil when the content is not a pid (an unreadable lock is stale).
    public static func parse(_ text: String) -> DaemonLockInfo? {
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmingCharacters(in: " \t") }
        guard let first = lines.first, let pid = Int32(first), pid > 0 else { return nil }
        let st = lines.count > 1 ? UInt64(lines[1]) : nil
        return DaemonLockInfo(pid: pid, startTime: st)
    }

    /// Alive and a happy daemon with the recorded start time.
    public var isLiveDaemon: Bool { ProcessProbe.isHappyDaemon(pid: pid, expectedStartTime: startTime) }
}

public enum DaemonLock {
    public static func read(_ path: String) -> DaemonLockInfo? {
        guard let b = try? FileIO.read(path, noFollow: true, limit: 4096) else { return nil }
        return DaemonLockInfo.parse(String(decoding: b, as: UTF8.self))
    }

    /// Takes the lock for this process. Throws `alreadyRunning` when a live daemon holds it;
    /// a stale lock (dead, unreadable, or foreign pid) is removed and retaken.
    /// Returns the info written and whether a stale lock was reclaimed.
    @discardableResult
    public static func acquire(_ path: String, pid: Int32 = getpid()) throws -> (info: DaemonLockInfo, reclaimed: DaemonLockInfo?) {
        let dir = Paths.dirname(path)
        let info = DaemonLockInfo(pid: pid, startTime: ProcessProbe.startTime(pid))
        let tmp = "\(path).tmp-\(pid)-\(UInt32.random(in: 0...UInt32.max))"
        try FileIO.atomicWrite(info.text, to: tmp)
        defer { unlink(tmp) }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = cposix_flock_ex(dfd) }
        defer { if dfd >= 0 { _ = cposix_flock_un(dfd); close(dfd) } }
        var reclaimed: DaemonLockInfo?
        for _ in 0..<5 {
            if link(tmp, path) == 0 { return (info, reclaimed) }
            let e = errno
            guard e == EEXIST else { throw DaemonError.lockFailed(path: path, reason: errnoString(e)) }
            let holder = read(path)
            if let holder, holder.pid != pid, holder.isLiveDaemon {
                throw DaemonError.alreadyRunning(pid: holder.pid)
            }
            if let holder, holder.pid == pid {
                // Our own pid (a previous run of this process, or a reused pid): take over.
            }
            reclaimed = holder ?? DaemonLockInfo(pid: 0, startTime: nil)
            if unlink(path) != 0 && errno != ENOENT {
                throw DaemonError.lockFailed(path: path, reason: errnoString())
            }
        }
        throw DaemonError.lockFailed(path: path, reason: "the lock kept reappearing")
    }

    /// Removes the lock when it is ours.
    public static func release(_ path: String, pid: Int32 = getpid()) {
        if let held = read(path), held.pid == pid { unlink(path) }
    }
}
