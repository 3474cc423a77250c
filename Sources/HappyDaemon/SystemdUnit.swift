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

/// `daemon install|uninstall`: the systemd user unit that runs
/// `happy --profile P daemon start-sync` (SPEC §3.3). Never runs systemctl.
public enum SystemdUnit {
    public static func unitName(profile: String) -> String { "happy-\(profile).service" }

    /// `$XDG_CONFIG_HOME/systemd/user/happy-<profile>.service` (default `~/.config/systemd/user/`).
    public static func unitPath(profile: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base: String
        if let x = environment["XDG_CONFIG_HOME"], x.hasPrefix("/") {
            base = x
        } else {
            base = Paths.userHome(environment) + "/.config"
        }
        return base + "/systemd/user/" + unitName(profile: profile)
    }

    /// A word for an ExecStart= line (quoted when needed).
    static func quote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+=:@,".contains($0) }) { return s }
        return "\"" + s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }

    /// The unit file. `environment`: extra `Environment=` lines (e.g. HAPPY_HOME_DIR when
    /// the home was chosen by a flag or variable rather than the profile).
    public static func content(executable: String, profile: String, environment: [String: String] = [:]) -> String {
        var s = """
        [Unit]
        Description=happy daemon (profile \(profile))
        Documentation=https://happy.engineering

        [Service]
        Type=simple
        ExecStart=\(quote(executable)) --profile \(quote(profile)) daemon start-sync

        """
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) {
            s += "Environment=\(quote("\(k)=\(v)"))\n"
        }
        s += """
        Restart=on-failure
        RestartSec=5
        KillMode=process
        TimeoutStopSec=15

        [Install]
        WantedBy=default.target

        """
        return s
    }

    public static func enableCommands(profile: String) -> [String] {
        ["systemctl --user daemon-reload", "systemctl --user enable --now \(unitName(profile: profile))"]
    }

    public static func disableCommands(profile: String) -> [String] {
        ["systemctl --user disable --now \(unitName(profile: profile))", "systemctl --user daemon-reload"]
    }

    /// Writes the unit (0644; folders created). Returns its path.
    @discardableResult
    public static func install(executable: String, profile: String, environment: [String: String] = [:],
                               processEnvironment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let path = unitPath(profile: profile, environment: processEnvironment)
        let dir = Paths.dirname(path)
        try FileIO.ensureDirectory(dir, mode: 0o755)
        try FileIO.atomicWrite(content(executable: executable, profile: profile, environment: environment), to: path, mode: 0o644)
        return path
    }

    /// Removes the unit; returns its path and whether it existed.
    public static func uninstall(profile: String, processEnvironment: [String: String] = ProcessInfo.processInfo.environment) throws -> (path: String, existed: Bool) {
        let path = unitPath(profile: profile, environment: processEnvironment)
        if unlink(path) == 0 { return (path, true) }
        if errno == ENOENT { return (path, false) }
        throw FileIOError.cannotWrite(path: path, reason: errnoString())
    }
}
