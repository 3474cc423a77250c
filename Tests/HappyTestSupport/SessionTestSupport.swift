import Foundation
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

/// A temporary home + work folder and a SessionManager running the fake claude.
struct SessionFixture {
    let home: String
    let work: String
    var config: HappyConfig

    static var fakeClaude: String { RepoPaths.fakeClaude }

    init(_ tweak: (inout HappyConfig) -> Void = { _ in }) {
        var tmpl = Array("/tmp/happy-sess-XXXXXX".utf8CString)
        let p = tmpl.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        home = String(cString: p!)
        work = home + "/work"
        mkdir(work, 0o755)
        var c = HappyConfig(homeDir: home)
        c.claude.command = SessionFixture.fakeClaude
        tweak(&c)
        config = c
    }

    func manager(environment: [String: String] = ProcessInfo.processInfo.environment) -> SessionManager {
        SessionManager(config: config, environment: environment)
    }

    /// A manager whose idleness is measured on `clock`, which moves only when the test says.
    func manager(clock: ManualClock) -> SessionManager {
        SessionManager(config: config, environment: ProcessInfo.processInfo.environment, killGrace: 5,
                       clock: { clock.now })
    }

    func request(mode: String? = nil, prompt: String? = nil, env: [String: String] = [:]) -> SpawnRequest {
        var e = env
        if let mode { e["FAKE_CLAUDE_MODE"] = mode }
        // Process-handling tests wait for `running` without sending a prompt; the real
        // claude (and the fake by default) writes its init only with the first prompt.
        if e["FAKE_CLAUDE_INIT"] == nil { e["FAKE_CLAUDE_INIT"] = "eager" }
        return SpawnRequest(directory: work, prompt: prompt, environmentVariables: e)
    }

    func cleanup(_ managers: SessionManager...) async {
        for m in managers { await m.shutdown(keepSessions: false) }
        try? FileManager.default.removeItem(atPath: home)
    }
}

/// How much longer than usual a test may wait for something to happen:
/// `HAPPY_TEST_TIME_SCALE` (default 1), which `scripts/sanitize.sh` sets because
/// instrumented builds run several times slower and CPU-heavy tests then hold the
/// cooperative pool's threads for seconds.
let testTimeScale: Double = ProcessInfo.processInfo.environment["HAPPY_TEST_TIME_SCALE"].flatMap(Double.init) ?? 1

/// Polls `cond` every 10 ms until it holds or `timeout` (× `testTimeScale`) seconds pass.
@discardableResult
func eventually(_ timeout: Double = 30, _ cond: () async -> Bool) async -> Bool {
    let deadline = MonotonicClock.now() + timeout * testTimeScale
    while MonotonicClock.now() < deadline {
        if await cond() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return await cond()
}

/// State letter of /proc/PID/stat, nil when the pid is gone.
func procState(_ pid: Int32) -> Character? { ProcessProbe.readStat(pid)?.state }

func readText(_ path: String) -> String {
    (try? FileIO.read(path)).flatMap { $0.map { String(decoding: $0, as: UTF8.self) } } ?? ""
}

/// Descriptors of this process that point into `home`, plus pidfds of `pids`.
func attributableFDs(home: String, pids: Set<Int32>) -> [String] {
    var out: [String] = []
    for name in FileManagerShim.listDirectory("/proc/self/fd") {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/\(name)", &buf, buf.count - 1)
        guard n > 0 else { continue }
        let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix(home) { out.append("\(name)->\(target)"); continue }
        if target.contains("pidfd") {
            let info = readText("/proc/self/fdinfo/\(name)")
            for line in info.split(separator: "\n") where line.hasPrefix("Pid:") {
                if let p = Int32(line.dropFirst(4).trimmingCharacters(in: .whitespaces)), pids.contains(p) {
                    out.append("\(name)->pidfd \(p)")
                }
            }
        }
    }
    return out
}

/// Monotonic seconds that move only by `advance`: idle tests without wall-clock races.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Double = 1000
    var now: Double { lock.withLock { value } }
    func advance(_ seconds: Double) { lock.withLock { value += seconds } }
}
