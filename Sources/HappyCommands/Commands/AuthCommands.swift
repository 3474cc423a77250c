import FoundationEssentials
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig
import HappyServerAPI
import HappyDaemon

/// `happy auth login|status|logout` (SPEC §3.1).
public enum AuthCommands {
    static let group = CommandSpec.group(
        "auth", summary: "Log in to the Happy Server and manage credentials",
        .command(Login.self), .command(Status.self), .command(Logout.self))

    public enum Login: AsyncCommand {
        public static let info = CommandInfo(
            "login", summary: "Authenticate this computer (QR code, web link or account secret)",
            examples: ["happy auth login", "happy auth login --method web", "happy auth login --secret-stdin < secret.txt"])

        public enum Method: String, CaseIterable, Sendable { case mobile, web }

        public struct Options: CommandOptions {
            public var method: Method
            public var force: Bool
            public var secretStdin: Bool
            public init(_ r: inout OptionReader) {
                method = r.choice("method", default: .mobile, help: "show a QR code for the mobile app (default) or a web link")
                force = r.flag("force", help: "log in again even when already authenticated (replaces the credentials)")
                secretStdin = r.flag("secret-stdin", help: "read an existing account secret from stdin (non-interactive)")
            }
        }

        /// Every successful login writes a new machine id (SPEC §3.1): a machine record
        /// keeps the key it was registered with, so a new login must not reuse an old id.
        public static func run(_ o: Options, _ ctx: CommandContext) async throws -> Int32 {
            let config = try ctx.config()
            let out = ctx.out
            let home = config.home
            let store = CredentialsStore(home: home)
            let loaded = store.load()
            if case .ok(let c) = loaded, !o.force {
                out.line("Already authenticated (\(c.variant.rawValue) encryption) with \(config.serverUrl). Use `happy auth login --force` to log in again.")
                return 0
            }
            let guardian = LoginInterruptGuard(onInterrupt: { out.errorLine("\ninterrupted: nothing was written") })
            defer { guardian.cancel() }
            // A settings.json that cannot be parsed stops the login before any request, so
            // credentials are never written without a machine id (SPEC §2.2).
            _ = try SettingsStore(home: home).machineId()
            let api = HappyServerAPI(serverUrl: config.serverUrl, transport: ctx.transport)

            let creds: Credentials
            if o.secretStdin {
                let text = await readOffPool(ctx.input.readAll)
                let secret = try SecretInput.parse(text)  // exits 1 before any request
                creds = try await SecretLogin.login(api: api, secret: secret)
            } else {
                let interval = ctx.env["HAPPY_AUTH_POLL_INTERVAL"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 1
                creds = try await terminalLogin(api: api, webappUrl: config.webappUrl, method: o.method,
                                                interval: interval, out: out)
            }

            let machineId: String = try guardian.protectedWrite {
                if case .invalid = loaded, let moved = FileIO.moveAside(store.path) {
                    out.warn("the unreadable \(store.path) was moved to \(moved)")
                }
                try store.write(creds)
                return try SettingsStore(home: home).replaceMachineId()
            }
            out.line("Authenticated with \(api.serverUrl) (\(creds.variant.rawValue) encryption). Machine id: \(machineId)")
            return 0
        }

        /// The QR code or web link, then polling until the app approves.
        static func terminalLogin(api: HappyServerAPI, webappUrl: String, method: Method, interval: Double,
                                  out: Output) async throws -> Credentials {
            let flow = TerminalAuth(api: api, webappUrl: webappUrl)
            do {
                _ = try await flow.poll()
            } catch let e as APIError {
                out.errorLine("Failed to create authentication request.")
                throw e
            }
            if method == .mobile {
                out.line("Scan this QR code with the Happy app (Settings → Link terminal):\n")
                if let qr = try? QRCode(text: flow.mobileLink) { out.line(qr.renderHalfBlocks()) }
                out.line("Or open this link in a browser: \(flow.webLink)")
                out.line("Mobile link: \(flow.mobileLink)")
            } else {
                out.line("Open this link in a browser to connect this terminal:\n\n  \(flow.webLink)\n")
                out.line("Mobile link: \(flow.mobileLink)")
            }
            let tty = out.stderrIsTTY
            if !tty { out.errorLine("Waiting for approval (Ctrl-C to cancel)...") }
            let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
            defer { if tty { out.status("") } }
            return try await flow.waitForApproval(interval: interval) { n in
                if tty {
                    let secs = Int(Double(n) * interval)
                    out.status("\(frames[n % frames.count]) Waiting for approval in the Happy app… \(secs) s (Ctrl-C to cancel)")
                }
            }
        }

        static func readOffPool(_ f: @escaping @Sendable () -> String) async -> String {
            await withCheckedContinuation { c in
                OSThread.start(name: "happy-blocking") { c.resume(returning: f()) }
            }
        }
    }

    public enum Status: AsyncCommand {
        public static let info = CommandInfo(
            "status", summary: "Show whether this computer is authenticated",
            examples: ["happy auth status", "happy auth status --offline --json"])

        public struct Options: CommandOptions {
            public var offline: Bool
            public init(_ r: inout OptionReader) {
                offline = r.flag("offline", help: "do not ask the server whether the token is accepted")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) async throws -> Int32 {
            let config = try ctx.config()
            let r = await AuthStatusReport.gather(home: config.home, serverUrl: config.serverUrl, transport: ctx.transport,
                                                  offline: o.offline)
            for w in r.warnings { ctx.out.warn(w) }
            if ctx.json { ctx.out.json(r.json) } else { ctx.out.line(text(r)) }
            return r.exitCode
        }

        /// The human form of the report.
        public static func text(_ r: AuthStatusReport) -> String {
            var lines = [String]()
            func row(_ k: String, _ v: String) { lines.append(k.padded(to: 15) + v) }
            row("Authenticated", r.authenticated ? "yes" : "no")
            row("Encryption", r.encryption?.rawValue ?? "-")
            row("Server", r.serverUrl)
            row("Machine ID", r.machineId ?? "-")
            let tok: String
            switch r.tokenAccepted {
            case .some(true): tok = "accepted"
            case .some(false): tok = "rejected — run `happy auth login`"
            case .none: tok = r.authenticated ? "not checked" : "-"
            }
            row("Token", tok)
            return lines.joined(separator: "\n")
        }
    }

    /// Stops this profile's daemon, deletes `access.key` and removes the `machineId` key
    /// of `settings.json` (every other file and key stays).
    public enum Logout: Command {
        public static let info = CommandInfo(
            "logout", summary: "Stop the daemon and delete the credentials", examples: ["happy auth logout --yes"])

        public struct Options: CommandOptions {
            public var yes: Bool
            public init(_ r: inout OptionReader) {
                yes = r.flag("yes", help: "do not ask for confirmation")
            }
        }

        public static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
            let home = try ctx.config().home
            if !o.yes {
                guard ctx.input.isTTY else { throw APIError.confirmationRequired(action: "logout") }
                ctx.out.prompt("Log out: stop the daemon, delete \(home.accessKey) and forget this machine's id? [y/N] ")
                let answer = (ctx.input.readLine() ?? "").trimmingCharacters(in: " \t").lowercased()
                guard answer == "y" || answer == "yes" else {
                    ctx.out.errorLine("Cancelled; nothing changed.")
                    return 1
                }
            }
            if case .stopped(let pid, _) = DaemonControl.stop(home, keepSessions: false) {
                ctx.out.line("Stopped the daemon (pid \(pid)).")
            }
            let removed = try CredentialsStore(home: home).delete()
            try SettingsStore(home: home).removeMachineId()
            ctx.out.line(removed ? "Logged out: removed \(home.accessKey) and the machine id."
                                 : "Not logged in; removed the machine id if there was one.")
            return 0
        }
    }
}

/// Ctrl-C during a login: exit 130 at once, with nothing written — unless the
/// credentials are being written right now, in which case the (atomic) write is
/// finished first and then the process exits 130.
public final class LoginInterruptGuard: @unchecked Sendable {
    private let lock = Lock()
    private var writing = false
    private var pending = false
    private var source: DispatchSourceSignal?
    private let onInterrupt: @Sendable () -> Void

    public init(onInterrupt: @escaping @Sendable () -> Void) {
        self.onInterrupt = onInterrupt
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler { [weak self] in self?.fire() }
        s.resume()
        source = s
    }

    private func fire() {
        lock.lock()
        if writing { pending = true; lock.unlock(); return }
        lock.unlock()
        onInterrupt()
        _exit(130)
    }

    /// Runs `body` (the credential writes) with interrupts deferred.
    public func protectedWrite<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); writing = true; lock.unlock()
        defer {
            lock.lock(); writing = false; let p = pending; lock.unlock()
            if p { onInterrupt(); _exit(130) }
        }
        return try body()
    }

    public func cancel() {
        source?.cancel()
        source = nil
        signal(SIGINT, SIG_DFL)
    }
}
