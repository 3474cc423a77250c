import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
public enum DaemonError: HappyError, Equatable {
    case alreadyRunning(pid: Int32)
    case portBusy(port: Int, profile: String)
    case listenFailed(port: Int, reason: String)
    case lockFailed(path: String, reason: String)
    case notRunning
    case notResponding(pid: Int32)
    case startTimedOut(detail: String)
    case startFailed(detail: String)
    case request(String)
    case api(status: Int, message: String)
    case spawnFailed(String)
    /// `logs/daemon-stdio.log` cannot be opened (a symbolic link is refused).
    case stdioLogUnusable(path: String, reason: String)

    public var what: String {
        switch self {
        case .alreadyRunning(let p): return "daemon already running (pid \(p))"
        case .portBusy(let port, let profile): return "port \(port) is already in use (profile \(profile))"
        case .listenFailed(let port, let r): return "cannot listen on 127.0.0.1:\(port): \(r)"
        case .lockFailed(let p, let r): return "cannot take the daemon lock \(p): \(r)"
        case .notRunning: return "the daemon is not running"
        case .notResponding(let p): return "daemon (pid \(p)) is running but not responding"
        case .startTimedOut(let d): return "the daemon did not become ready within 10 s\(d.isEmpty ? "" : ": " + d)"
        case .startFailed(let d):
            // The detail is the tail of daemon-stdio.log, itself often an `error: …` line.
            let detail = d.hasPrefix("error: ") ? String(d.dropFirst(7)) : d
            return "the daemon failed to start\(detail.isEmpty ? "" : ": " + detail)"
        case .request(let r): return "cannot reach the daemon: \(r)"
        case .api(_, let m): return m
        case .spawnFailed(let r): return "cannot start the daemon process: \(r)"
        case .stdioLogUnusable(let p, let r): return "cannot open \(p): \(r)"
        }
    }
    public var hint: String? {
        switch self {
        case .alreadyRunning: return "stop it with `happy daemon stop` first"
        case .portBusy: return "set daemon.httpPort in the profile to a free port (0 = any free port)"
        case .listenFailed: return "set daemon.httpPort in the profile to a free port (0 = any free port)"
        case .lockFailed: return "check the permissions of the home directory"
        case .notRunning: return "start it with `happy daemon start`"
        case .notResponding: return "wait a moment, or restart it with `happy daemon restart`"
        case .startTimedOut, .startFailed: return "see `happy logs tail` and logs/daemon-stdio.log"
        case .request: return "check `happy daemon status`"
        case .api: return nil
        case .spawnFailed: return "check that the happy binary is executable"
        case .stdioLogUnusable: return "remove it (happy recreates it) and check who else can write to the home folder"
        }
    }
}
