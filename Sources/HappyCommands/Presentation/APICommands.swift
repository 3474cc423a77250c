import FoundationEssentials
import Dispatch
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

/// What the `auth` and `machine` commands read from and write to. The executable
/// passes `.standard`; tests can capture.
public struct APICommandIO: Sendable {
    public var out: @Sendable (String) -> Void
    public var err: @Sendable (String) -> Void
    /// Raw write to stderr without a newline (waiting indicator).
    public var errRaw: @Sendable (String) -> Void
    public var stdinIsTTY: Bool
    public var stderrIsTTY: Bool
    /// Reads all of stdin (bounded).
    public var readStdin: @Sendable () -> String
    /// Reads one line from stdin (prompts); nil at EOF.
    public var readLine: @Sendable () -> String?

    public init(out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void,
                errRaw: @escaping @Sendable (String) -> Void, stdinIsTTY: Bool, stderrIsTTY: Bool,
                readStdin: @escaping @Sendable () -> String, readLine: @escaping @Sendable () -> String?) {
        self.out = out
        self.err = err
        self.errRaw = errRaw
        self.stdinIsTTY = stdinIsTTY
        self.stderrIsTTY = stderrIsTTY
        self.readStdin = readStdin
        self.readLine = readLine
    }

    public static var standard: APICommandIO {
        APICommandIO(
            out: { s in writeAll(1, s + "\n") },
            err: { s in writeAll(2, s + "\n") },
            errRaw: { s in writeAll(2, s) },
            stdinIsTTY: isatty(0) == 1,
            stderrIsTTY: isatty(2) == 1,
            readStdin: {
                var out = [UInt8]()
                var buf = [UInt8](repeating: 0, count: 4096)
                while out.count < 64 * 1024 {
                    let n = buf.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress!, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    out.append(contentsOf: buf[0..<n])
                }
                return String(decoding: out, as: UTF8.self)
            },
            readLine: { Swift.readLine(strippingNewline: true) }
        )
    }

    static func writeAll(_ fd: Int32, _ s: String) {
        let bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 { if errno == EINTR { continue }; return }
            off += n
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

public enum AuthCommandsKit {
    public enum Method: String, Sendable { case mobile, web }

    public struct LoginOptions: Sendable {
        public var method: Method = .mobile
        public var force = false
        public var secretStdin = false
        /// Poll period (1 s; tests may shorten).
        public var pollInterval: Double = 1
        public init(method: Method = .mobile, force: Bool = false, secretStdin: Bool = false) {
            self.method = method
            self.force = force
            self.secretStdin = secretStdin
        }
    }

    /// `happy auth login` (SPEC §3.1). Returns the exit code; throws `HappyError`s.
    public static func login(config: HappyConfig, transport: any HTTPTransport, options: LoginOptions,
                             io: APICommandIO = .standard) async throws -> Int32 {
        let home = config.home
        let store = CredentialsStore(home: home)
        let loaded = store.load()
        if case .ok(let c) = loaded, !options.force {
            io.out("Already authenticated (\(c.variant.rawValue) encryption) with \(config.serverUrl). Use `happy auth login --force` to log in again.")
            return 0
        }
        let guardian = LoginInterruptGuard(onInterrupt: { io.errRaw("\n"); io.err("interrupted: nothing was written") })
        defer { guardian.cancel() }
        // A settings.json that cannot be parsed stops the login before any request, so
        // credentials are never written without a machine id (SPEC §2.2).
        _ = try MachineIdentity.read(home: home)
        let api = HappyServerAPI(serverUrl: config.serverUrl, transport: transport)

        let creds: Credentials
        if options.secretStdin {
            let text = await readOffPool(io.readStdin)
            let secret = try SecretInput.parse(text)  // exits 1 before any request
            creds = try await SecretLogin.login(api: api, secret: secret)
        } else {
            let flow = TerminalAuth(api: api, webappUrl: config.webappUrl)
            do {
                _ = try await flow.poll()
            } catch let e as APIError {
                io.err("Failed to create authentication request.")
                throw e
            }
            if options.method == .mobile {
                io.out("Scan this QR code with the Happy app (Settings → Link terminal):\n")
                if let qr = try? QRCode(text: flow.mobileLink) { io.out(qr.renderHalfBlocks()) }
                io.out("Or open this link in a browser: \(flow.webLink)")
                io.out("Mobile link: \(flow.mobileLink)")
            } else {
                io.out("Open this link in a browser to connect this terminal:\n\n  \(flow.webLink)\n")
                io.out("Mobile link: \(flow.mobileLink)")
            }
            let tty = io.stderrIsTTY
            if !tty { io.err("Waiting for approval (Ctrl-C to cancel)...") }
            let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
            let interval = options.pollInterval
            do {
                creds = try await flow.waitForApproval(interval: interval) { n in
                    if tty {
                        let secs = Int(Double(n) * interval)
                        io.errRaw("\r\u{1B}[K\(frames[n % frames.count]) Waiting for approval in the Happy app… \(secs) s (Ctrl-C to cancel)")
                    }
                }
            } catch {
                if tty { io.errRaw("\r\u{1B}[K") }
                throw error
            }
            if tty { io.errRaw("\r\u{1B}[K") }
        }

        let machineId: String = try guardian.protectedWrite {
            if case .invalid = loaded, let moved = FileIO.moveAside(store.path) {
                io.err("warning: the unreadable \(store.path) was moved to \(moved)")
            }
            try store.write(creds)
            return try MachineIdentity.ensure(home: home, replace: options.force)
        }
        io.out("Authenticated with \(api.serverUrl) (\(creds.variant.rawValue) encryption). Machine id: \(machineId)")
        return 0
    }

    /// `happy auth status [--json] [--offline]`.
    public static func status(config: HappyConfig, transport: any HTTPTransport, json: Bool, offline: Bool,
                              io: APICommandIO = .standard) async -> Int32 {
        let r = await AuthStatusReport.gather(home: config.home, serverUrl: config.serverUrl, transport: transport,
                                              offline: offline)
        for w in r.warnings { io.err("warning: \(w)") }
        io.out(json ? r.json.serialized() : r.humanText)
        return r.exitCode
    }

    /// `happy auth logout [--yes]`. `stopDaemon` stops this profile's daemon (the
    /// daemon module's control client when available); default: `DaemonControl.stop` (POST /stop, then SIGTERM/SIGKILL).
    public static func logout(config: HappyConfig, yes: Bool, io: APICommandIO = .standard,
                              stopDaemon: (() -> Int32?)? = nil) throws -> Int32 {
        let home = config.home
        if !yes {
            guard io.stdinIsTTY else { throw APIError.confirmationRequired(action: "logout") }
            io.errRaw("Log out: stop the daemon, delete \(home.accessKey) and forget this machine's id? [y/N] ")
            let answer = (io.readLine() ?? "").trimmingCharacters(in: " \t").lowercased()
            guard answer == "y" || answer == "yes" else {
                io.err("Cancelled; nothing changed.")
                return 1
            }
        }
        let r = try Logout.run(home: home, stopDaemon: stopDaemon ?? {
            if case .stopped(let pid, _) = DaemonControl.stop(home, keepSessions: false) { return pid }
            return nil
        })
        if let pid = r.stoppedDaemonPid { io.out("Stopped the daemon (pid \(pid)).") }
        io.out(r.removedCredentials ? "Logged out: removed \(home.accessKey) and the machine id." : "Not logged in; removed the machine id if there was one.")
        return 0
    }

    static func readOffPool(_ f: @escaping @Sendable () -> String) async -> String {
        await withCheckedContinuation { c in
            OSThread.start(name: "happy-blocking") { c.resume(returning: f()) }
        }
    }
}

public enum MachineCommandsKit {
    static func setup(config: HappyConfig, transport: any HTTPTransport) throws -> (HappyServerAPI, Credentials, String?) {
        let creds = try CredentialsStore(home: config.home).require()
        let api = HappyServerAPI(serverUrl: config.serverUrl, transport: transport, token: creds.token)
        let thisId = try? MachineIdentity.read(home: config.home)
        return (api, creds, thisId ?? nil)
    }

    /// `happy machine show [ID] [--json]`.
    public static func show(config: HappyConfig, transport: any HTTPTransport, id: String?, json: Bool,
                            io: APICommandIO = .standard) async throws -> Int32 {
        let (api, creds, thisId) = try setup(config: config, transport: transport)
        guard let mid = id ?? thisId else { throw APIError.noMachineId }
        let rec = try await api.getMachine(id: mid)
        let m = MachineDecryption.decrypt(rec, credentials: creds)
        for w in m.warnings { io.err("warning: \(w)") }
        io.out(json ? m.json.serialized() : MachineText.show(m, thisMachineId: thisId))
        return 0
    }

    /// `happy machine list [--json]`.
    public static func list(config: HappyConfig, transport: any HTTPTransport, json: Bool,
                            io: APICommandIO = .standard) async throws -> Int32 {
        let (api, creds, thisId) = try setup(config: config, transport: transport)
        let recs = try await api.listMachines()
        let ms = recs.map { MachineDecryption.decrypt($0, credentials: creds) }
        for m in ms { for w in m.warnings { io.err("warning: \(w)") } }
        if json {
            let arr = ms.map { $0.json.setting("thisMachine", .bool($0.record.id == thisId)) }
            io.out(JSON.object(["machines": .array(arr)]).serialized())
        } else {
            io.out(MachineText.list(ms, thisMachineId: thisId))
        }
        return 0
    }
}
