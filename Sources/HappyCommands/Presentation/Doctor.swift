import FoundationEssentials
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

/// `happy doctor` (SPEC §3.7): one ok/warn/fail line per check.
public struct DoctorCheck: Sendable, Equatable {
    public enum Level: String, Sendable { case ok, warn, fail, skip }
    public var name: String
    public var level: Level
    public var message: String
    public init(_ name: String, _ level: Level, _ message: String) { self.name = name; self.level = level; self.message = message }
    public var json: JSON { ["name": .string(name), "status": .string(level.rawValue), "message": .string(message)] }
}

public enum Doctor {
    /// Where each setting came from, as the config loader reports it: (key, value, source, from).
    public typealias Source = (key: String, value: String, source: String, from: String)

    /// Runs every check. `serverCheck`: the server reachability + token check
    /// (`ServerCheck.run`, API module); nil → reported as skipped.
    public static func run(config: HappyConfig, sources: [Source] = [], environment: [String: String] = ProcessInfo.processInfo.environment,
                           serverCheck: (() -> [DoctorCheck])? = nil) -> [DoctorCheck] {
        var out: [DoctorCheck] = []
        let home = config.home
        // Configuration.
        if sources.isEmpty {
            out.append(DoctorCheck("config", .ok, "profile \(config.profile), server \(config.serverUrl), home \(config.homeDir)"))
        } else {
            let detail = sources.map { "\($0.key)=\($0.value) (\($0.source): \($0.from))" }.joined(separator: "; ")
            out.append(DoctorCheck("config", .ok, "profile \(config.profile): " + detail))
        }
        // Home directory.
        if let m = FileIO.mode(home.root) {
            if !FileIO.isDirectory(home.root) {
                out.append(DoctorCheck("home", .fail, "\(home.root) is not a directory"))
            } else if m & 0o077 != 0 {
                out.append(DoctorCheck("home", .warn, "\(home.root) has mode \(String(m & 0o777, radix: 8)); it should be 700 (the daemon tightens it)"))
            } else {
                out.append(DoctorCheck("home", .ok, "\(home.root) (mode \(String(m & 0o777, radix: 8)))"))
            }
        } else {
            out.append(DoctorCheck("home", .warn, "\(home.root) does not exist yet (created on first use)"))
        }
        // Credentials.
        out.append(credentialsCheck(home.accessKey))
        // Server.
        if let serverCheck { out.append(contentsOf: serverCheck()) } else {
            out.append(DoctorCheck("server", .skip, "server reachability not checked (\(config.serverUrl))"))
        }
        // Daemon + stale files.
        let lockExists = FileIO.exists(home.daemonLock)
        let stateExists = FileIO.exists(home.daemonState)
        switch DaemonControl.probe(home, clean: false) {
        case .running(let pid, let st?):
            if let r = try? ControlClient(state: st, timeout: 2).request("GET", "/health"), r.status == 200 {
                out.append(DoctorCheck("daemon", .ok, "running (pid \(pid), port \(st.httpPort)) and answering"))
            } else {
                out.append(DoctorCheck("daemon", .warn, "daemon (pid \(pid)) is running but not responding"))
            }
            out.append(DoctorCheck("stale-state", .ok, "no stale state or lock files"))
        case .running(let pid, nil):
            out.append(DoctorCheck("daemon", .warn, "daemon (pid \(pid)) holds the lock but its state file is missing or unreadable"))
            out.append(DoctorCheck("stale-state", .ok, "no stale lock"))
        case .notRunning:
            out.append(DoctorCheck("daemon", .warn, "not running (start it with `happy daemon start`)"))
            if lockExists || stateExists {
                let which = [lockExists ? "daemon.state.json.lock" : nil, stateExists ? "daemon.state.json" : nil].compactMap { $0 }.joined(separator: " and ")
                out.append(DoctorCheck("stale-state", .warn, "stale \(which) from a daemon that is gone (`happy daemon status` removes them)"))
            } else {
                out.append(DoctorCheck("stale-state", .ok, "no stale state or lock files"))
            }
        }
        // claude.
        out.append(claudeCheck(config.claude.command, environment: environment))
        // Logs.
        let logs = DaemonLogs.list(home)
        let total = directorySize(home.logsDir)
        let bound = Int64(Double(config.daemon.logFiles) * config.daemon.logMaxMiB * 1024 * 1024 * 1.2) + 16 << 20
        let level: DoctorCheck.Level = total > bound ? .warn : .ok
        out.append(DoctorCheck("logs", level, "\(home.logsDir): \(logs.count) daemon log file\(logs.count == 1 ? "" : "s"), \(formatBytes(total)) in total"))
        return out
    }

    static func credentialsCheck(_ path: String) -> DoctorCheck {
        do {
            guard let bytes = try FileIO.read(path, limit: 1 << 20) else {
                return DoctorCheck("credentials", .warn, "not logged in (\(path) missing; run `happy auth login`)")
            }
            guard let j = try? JSON.parse(bytes), j["token"]?.string?.isEmpty == false else {
                return DoctorCheck("credentials", .fail, "\(path) cannot be parsed (a JSON object with a string token is expected)")
            }
            if let m = FileIO.mode(path), m & 0o077 != 0 {
                return DoctorCheck("credentials", .warn, "\(path) is readable by others (mode \(String(m & 0o777, radix: 8))); chmod 600 it")
            }
            return DoctorCheck("credentials", .ok, "\(path) readable")
        } catch {
            return DoctorCheck("credentials", .fail, errorWhat(error))
        }
    }

    /// The configured claude command: an absolute/relative path, or a name on PATH.
    public static func findExecutable(_ command: String, environment: [String: String]) -> String? {
        ExecutableLookup.resolve(command, path: environment["PATH"])
    }

    static func claudeCheck(_ command: String, environment: [String: String]) -> DoctorCheck {
        if let p = findExecutable(command, environment: environment) {
            return DoctorCheck("claude", .ok, "\(command) found at \(p)")
        }
        return DoctorCheck("claude", .fail, "\(command) not found on PATH (set claude.command in the profile)")
    }

    static func directorySize(_ dir: String) -> Int64 {
        var total: Int64 = 0
        for name in FileManagerShim.listDirectory(dir) {
            var st = stat()
            if lstat(dir + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
        }
        return total
    }

    public static func formatBytes(_ n: Int64) -> String { Format.bytes(n) }

    public static func json(_ checks: [DoctorCheck]) -> JSON {
        ["ok": .bool(!checks.contains { $0.level == .fail }), "checks": .array(checks.map(\.json))]
    }
}
