import Foundation
import Glibc
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// Paths inside the repository (from this file's location).
enum RepoPaths {
    /// The repository root: Tests/HappyTestSupport/<this file> → ../..
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var completions: String { root.appendingPathComponent("completions").path }
    static var profiles: String { root.appendingPathComponent("profiles").path }
    static var fakeClaude: String { root.appendingPathComponent("Tests/fake_claude/claude").path }
    static var emulator: String { root.appendingPathComponent("Tests/emulator").path }
    static var proxyScript: String { root.appendingPathComponent("Tests/emulator/connect_proxy.py").path }
    static var rawServer: String { root.appendingPathComponent("Tests/emulator/raw_server.py").path }
}

/// A Python helper process that prints its port on the first stdout line. Stopped
/// by pid (SIGTERM, then SIGKILL) in `stop()`.
final class PyServer: @unchecked Sendable {
    let process: Process
    let port: Int
    /// Kept open: the helper exits when it closes (test process gone).
    let stdin: Pipe

    private init(process: Process, port: Int, stdin: Pipe) { self.process = process; self.port = port; self.stdin = stdin }

    static func start(_ args: [String], cwd: String? = nil) async throws -> PyServer {
        try await runBlocking("py-start") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-u"] + args + ["--watch-stdin"]
            if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
            var env = ProcessInfo.processInfo.environment
            env["PYTHONPATH"] = RepoPaths.emulator
            for k in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] { env[k] = nil }
            p.environment = env
            let out = Pipe()
            let input = Pipe()
            p.standardOutput = out
            p.standardInput = input
            p.standardError = ProcessInfo.processInfo.environment["HAPPY_TEST_DEBUG"] != nil ? FileHandle.standardError : FileHandle.nullDevice
            try p.run()
            // First line = port (bounded: EOF when the process dies).
            let fd = out.fileHandleForReading.fileDescriptor
            var line = [UInt8]()
            var b: UInt8 = 0
            while line.count < 64 {
                let n = Glibc.read(fd, &b, 1)
                if n <= 0 || b == 10 { break }
                line.append(b)
            }
            guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)) else {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                throw TestFailure("python helper \(args.first ?? "") did not print a port")
            }
            return PyServer(process: p, port: port, stdin: input)
        }
    }

    /// The Happy Server emulator (`python3 -m happy_emulator`).
    static func emulator(_ extra: [String] = []) async throws -> PyServer {
        try await start(["-m", "happy_emulator", "--port", "0"] + extra)
    }

    static func rawServer(_ extra: [String] = []) async throws -> PyServer { try await start([RepoPaths.rawServer] + extra) }

    static func proxy(_ extra: [String] = []) async throws -> PyServer {
        try await start([RepoPaths.proxyScript, "--port", "0"] + extra)
    }

    var pid: Int32 { process.processIdentifier }

    func stop() async {
        let p = process
        _ = try? await runBlocking("py-stop") {
            if p.isRunning {
                kill(p.processIdentifier, SIGTERM)
                var waited = 0
                while p.isRunning && waited < 300 { usleep(10_000); waited += 1 }
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            }
            p.waitUntilExit()
            return 0
        }
    }

    /// SIGKILL (simulates a crash).
    func kill9() async {
        let p = process
        _ = try? await runBlocking("py-kill") {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return 0
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A port on 127.0.0.1 where nothing listens (bound then released).
func unusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Runs a command (found on PATH) to completion on a thread of its own, never on the test
/// runner's cooperative pool. Returns its exit status and the one stream asked for as text;
/// the other stream goes to /dev/null.
enum ToolStream { case stdout, stderr }
func runTool(_ args: [String], capture: ToolStream = .stdout) async throws -> (status: Int32, output: String) {
    try await runBlocking("tool") {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = capture == .stdout ? pipe : FileHandle.nullDevice
        p.standardError = capture == .stderr ? pipe : FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A self-signed certificate for 127.0.0.1 / localhost (or another name), made with
/// the openssl command line in a temporary folder.
struct TestCert: Sendable {
    let dir: String
    var cert: String { dir + "/cert.pem" }
    var key: String { dir + "/key.pem" }

    static func make(name: String = "localhost", san: String = "DNS:localhost,IP:127.0.0.1") async throws -> TestCert {
        let dir = NSTemporaryDirectory() + "happy-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try await runTool(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                   "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem", "-days", "2",
                                   "-subj", "/CN=\(name)", "-addext", "subjectAltName=\(san)"])
        guard r.status == 0 else { throw TestFailure("openssl req failed") }
        return TestCert(dir: dir)
    }
}

/// Options with no proxy and the system trust store only (independent of the
/// environment the tests run in).
func directOptions(caFile: String? = nil) -> NetOptions {
    NetOptions(proxies: .none, trust: TrustSettings(caFile: caFile))
}

/// `GET /__count` of the CONNECT proxy: how many tunnels it opened.
func proxyTunnelCount(_ proxy: PyServer) async throws -> JSON {
    let c = HTTPClient(options: directOptions())
    let r = try await c.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(proxy.port)/__count"))
    return try JSON.parse(r.body)
}

final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "happy-test-" + UUID().uuidString.lowercased()
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ rel: String, _ text: String) -> String {
        let p = path + "/" + rel
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        try! text.write(toFile: p, atomically: false, encoding: .utf8)
        return p
    }
    /// An environment isolated from the real user's profiles.
    var env: [String: String] {
        ["HOME": path + "/home", "XDG_CONFIG_HOME": path + "/xdg", "HAPPY_PROFILES_DIR": path + "/profiles"]
    }
}

final class TestBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _v: String
    init(_ v: String) { _v = v }
    var value: String {
        get { lock.lock(); defer { lock.unlock() }; return _v }
        set { lock.lock(); _v = newValue; lock.unlock() }
    }
}
