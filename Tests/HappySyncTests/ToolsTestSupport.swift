import Foundation
import Glibc
import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappySync

/// A temporary folder (its real path) with `root/` (the allowed root) and `outside/`.
final class ToolSandbox: @unchecked Sendable {
    let base: String
    var root: String { base + "/root" }
    var outside: String { base + "/outside" }

    init() {
        var tmpl = Array("/tmp/happy-tools-XXXXXX".utf8CString)
        let p = tmpl.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let made = String(cString: p!)
        let r = realpath(made, nil)!
        base = String(cString: r)
        free(r)
        Glibc.mkdir(base + "/root", 0o755)
        Glibc.mkdir(base + "/outside", 0o755)
    }

    deinit {
        // Folders made unreadable by a test must be opened up first.
        _ = try? Process.run(URL(fileURLWithPath: "/bin/chmod"), arguments: ["-R", "u+rwx", base]).waitUntilExit()
        try? FileManager.default.removeItem(atPath: base)
    }

    /// Writes `text` at `rel` (below `base`), creating folders.
    @discardableResult
    func write(_ rel: String, _ text: String) -> String {
        let p = base + "/" + rel
        try! FileManager.default.createDirectory(atPath: Paths.dirname(p), withIntermediateDirectories: true)
        try! FileIO.atomicWrite(text, to: p, mode: 0o644)
        return p
    }

    @discardableResult
    func mkdir(_ rel: String) -> String {
        let p = base + "/" + rel
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    @discardableResult
    func symlink(_ target: String, at rel: String) -> String {
        let p = base + "/" + rel
        #expect(Glibc.symlink(target, p) == 0)
        return p
    }

    func read(_ rel: String) -> String? {
        (try? FileIO.read(base + "/" + rel)).flatMap { $0.map { String(decoding: $0, as: UTF8.self) } }
    }

    var env: [String: String] { ["HOME": root, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C"] }

    func machine(roots: [String]? = nil, env: [String: String]? = nil, limits: ToolLimits = ToolLimits()) -> ToolContext {
        ToolContext(scope: .machine, roots: roots ?? [root], environment: env ?? self.env, limits: limits)
    }

    func session(_ dir: String, roots: [String]? = nil, env: [String: String]? = nil,
                 limits: ToolLimits = ToolLimits()) -> ToolContext {
        ToolContext(scope: .session(id: "sess-1", directory: dir), roots: roots ?? [root], environment: env ?? self.env,
                    limits: limits)
    }
}

/// Keys of a JSON object.
func toolKeys(_ j: JSON) -> Set<String> { Set(j.object?.keys.map { $0 } ?? []) }

/// Descriptors open in this process.
func toolsOpenFDCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// The lowest descriptor count seen within 30 s (returning as soon as it is below
/// `limit`): other suites run in parallel and hold descriptors for a while; a leak of ours
/// never goes away.
func toolsSettledFDCount(below limit: Int? = nil) async -> Int {
    var best = Int.max
    for _ in 0..<300 {
        best = min(best, toolsOpenFDCount())
        if let limit, best < limit { return best }
        try? await Task.sleep(nanoseconds: 100_000_000)
    }
    return best
}

/// How much longer than usual a test may wait (`HAPPY_TEST_TIME_SCALE`).
let toolsTimeScale: Double = ProcessInfo.processInfo.environment["HAPPY_TEST_TIME_SCALE"].flatMap(Double.init) ?? 1

/// Polls `cond` until it holds or `seconds` pass.
func toolsEventually(_ seconds: Double = 10, _ cond: () -> Bool) async -> Bool {
    let deadline = MonotonicClock.now() + seconds * toolsTimeScale
    while MonotonicClock.now() < deadline {
        if cond() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return cond()
}

func toolsSHA256Hex(_ s: String) -> String {
    // Independent of the product: the coreutils tool.
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["sha256sum"]
    let inp = Pipe(), out = Pipe()
    p.standardInput = inp
    p.standardOutput = out
    try! p.run()
    inp.fileHandleForWriting.write(Data(s.utf8))
    try! inp.fileHandleForWriting.close()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(String(decoding: data, as: UTF8.self).prefix(64))
}
