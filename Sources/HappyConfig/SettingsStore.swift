import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// The home directory itself (SPEC §2.2).
public enum HomeDirectory {
    /// Creates the home folder with 0700 (parents as needed), tightens a wider existing
    /// mode, and checks that it is a writable directory owned by this user (a folder of
    /// another non-root user is refused). Returns a warning to show when the mode was
    /// tightened.
    @discardableResult
    public static func prepare(_ home: HomeLayout) throws -> String? {
        var st = stat()
        let existed = stat(home.root, &st) == 0
        let oldMode = existed ? st.st_mode & 0o777 : 0
        // A home that belongs to another user is theirs to fill with links and files we
        // would then trust (credentials, state, logs): refuse it. Root-owned folders are
        // left to the permission checks (only root could have planted anything there).
        if existed && st.st_uid != geteuid() && st.st_uid != 0 {
            throw ConfigError.homeOwnedByAnotherUser(path: home.root, owner: st.st_uid, user: geteuid())
        }
        let tightened = try FileIO.ensureDirectory(home.root, mode: 0o700)
        if access(home.root, W_OK | X_OK) != 0 { throw ConfigError.homeNotWritable(path: home.root) }
        if tightened {
            return "home directory \(home.root) had mode \(String(oldMode, radix: 8)); tightened to 700"
        }
        return nil
    }
}

/// `settings.json`: `{schemaVersion: 2, machineId, ...}`. Unknown keys are preserved;
/// a file that cannot be parsed is never overwritten (`FileIOError.corrupt` naming it).
/// Writes are atomic (0600) and serialised across processes with `flock` on the home
/// folder, so two concurrent `ensureMachineId` calls agree on one id.
public struct SettingsStore: Sendable {
    public static let schemaVersion = 2
    public let home: HomeLayout

    public init(home: HomeLayout) { self.home = home }

    /// The whole file as a JSON object (`{}` when the file does not exist).
    public func read() throws -> JSON {
        guard let v = try FileIO.readJSON(home.settings, noFollow: true) else { return .object([:]) }
        guard case .object = v else {
            throw FileIOError.corrupt(path: home.settings, reason: "expected a JSON object")
        }
        return v
    }

    /// Read, change, write back (creating the home folder when needed). The closure sees
    /// every key of the file; `schemaVersion` is set to 2.
    public func update(_ change: (inout [String: JSON]) -> Void) throws {
        try HomeDirectory.prepare(home)
        try withLock {
            var o = try read().object ?? [:]
            change(&o)
            o["schemaVersion"] = .int(Self.schemaVersion)
            try FileIO.writeJSON(.object(o), to: home.settings)
        }
    }

    /// The machine id, or nil when absent (or not a non-empty string).
    public func machineId() throws -> String? {
        guard let s = try read()["machineId"]?.string, !s.isEmpty else { return nil }
        return s
    }

    /// The machine id, created (UUID v4, lowercase) and saved when absent.
    @discardableResult
    public func ensureMachineId() throws -> String {
        if let id = try machineId() { return id }
        var result = ""
        try update { o in
            if let s = o["machineId"]?.string, !s.isEmpty {
                result = s
            } else {
                result = UUID().uuidString.lowercased()
                o["machineId"] = .string(result)
            }
        }
        return result
    }

    /// Writes a fresh machine id (UUID v4, lowercase) whatever was there (`auth login`:
    /// a new login is a new machine record).
    @discardableResult
    public func replaceMachineId() throws -> String {
        let id = UUID().uuidString.lowercased()
        try update { $0["machineId"] = .string(id) }
        return id
    }

    /// The daemon's way (SPEC §2.2: where it must go on): a `settings.json` that cannot be
    /// parsed is moved aside to `NAME.corrupt-TIMESTAMP` (said in the log), then the machine
    /// id is read or created. nil, logged, when the file can still not be read or written.
    public func ensureMachineIdRepairing() -> String? {
        do {
            return try ensureMachineId()
        } catch FileIOError.corrupt(let path, let reason) {
            let moved = FileIO.moveAside(path)
            Log.warn("daemon", "\(path) could not be parsed (\(reason)); moved aside to \(moved ?? "?")")
            return try? ensureMachineId()
        } catch FileIOError.symbolicLink(let path) {
            // Never read or write through it: the link itself is moved aside.
            let moved = FileIO.moveAside(path)
            Log.warn("daemon", "\(path) is a symbolic link (not followed); moved aside to \(moved ?? "?")")
            return try? ensureMachineId()
        } catch {
            Log.error("daemon", "settings.json: \(errorWhat(error))")
            return nil
        }
    }

    /// Removes `machineId` and keeps every other key (`auth logout`). No file → no-op.
    public func removeMachineId() throws {
        guard FileIO.exists(home.settings) else { return }
        try update { $0.removeValue(forKey: "machineId") }
    }

    private func withLock<T>(_ body: () throws -> T) throws -> T {
        let fd = open(home.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return try body() }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }
}
