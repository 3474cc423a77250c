import Foundation
import Glibc
import Testing
@testable import HappyCore

@Suite("ProcessRunner", .serialized)
struct ProcessRunnerTests {
    static let env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C"]
    static let scale: Double = ProcessInfo.processInfo.environment["HAPPY_TEST_TIME_SCALE"].flatMap(Double.init) ?? 1

    func sh(_ script: String, timeout: Double? = nil, limit: Int = 1 << 20, killGrace: Double = 1,
            cwd: String? = nil) async throws -> ProcessRunner.Output {
        try await ProcessRunner.run(.init(executable: "/bin/sh", arguments: ["-c", script], environment: Self.env,
                                          workingDirectory: cwd, timeout: timeout, outputLimit: limit,
                                          killGrace: killGrace))
    }

    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    static func alive(_ pid: Int32) -> Bool {
        guard let s = ProcessProbe.readStat(pid)?.state else { return false }
        return s != "Z" && s != "X"
    }

    /// Signals are delivered asynchronously: gone within a bound.
    static func goneSoon(_ pid: Int32) async -> Bool {
        let deadline = MonotonicClock.now() + 5 * scale
        while MonotonicClock.now() < deadline {
            if !alive(pid) { return true }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return !alive(pid)
    }

    @Test func capturesBothStreamsAndTheExitCode() async throws {
        let o = try await sh("printf out; printf err >&2; exit 3")
        #expect(text(o.stdout) == "out")
        #expect(text(o.stderr) == "err")
        #expect(o.termination == .exited(3))
        #expect(o.exitCode == 3)
        #expect(!o.timedOut && !o.stdoutTruncated && !o.stderrTruncated)
    }

    @Test func environmentAndWorkingDirectoryAreTheRequests() async throws {
        let o = try await ProcessRunner.run(.init(executable: "/bin/sh", arguments: ["-c", "echo \"$FOO\"; pwd"],
                                                  environment: ["FOO": "bar baz", "PATH": "/bin:/usr/bin"],
                                                  workingDirectory: "/usr"))
        #expect(text(o.stdout) == "bar baz\n/usr\n")
    }

    @Test func stdinIsDevNullAndNoOtherDescriptorIsInherited() async throws {
        let o = try await sh("readlink /proc/self/fd/0; ls /proc/self/fd | wc -l")
        let lines = text(o.stdout).split(separator: "\n").map(String.init)
        #expect(lines.first == "/dev/null")
        // ls sees 0, 1, 2 and its own directory descriptor (wc's pipe is not ls's).
        #expect(Int(lines.last?.trimmed ?? "") == 4)
    }

    @Test func theChildLeadsItsOwnProcessGroup() async throws {
        // Field 5 of /proc/PID/stat is the process group.
        let o = try await sh("echo $$; cut -d' ' -f5 /proc/$$/stat")
        let lines = text(o.stdout).split(separator: "\n").map(String.init)
        #expect(lines.count == 2 && lines[0] == lines[1])
        #expect(Int32(lines[0]) == o.pid)
    }

    @Test func outputPastTheCapIsReadAndDropped() async throws {
        // 3 MiB on each stream: the child would block on a full pipe if we stopped reading.
        let o = try await sh("head -c 3145728 /dev/zero | tr '\\0' a; head -c 3145728 /dev/zero | tr '\\0' b >&2",
                             timeout: 60)
        #expect(o.termination == .exited(0))
        #expect(!o.timedOut)
        #expect(o.stdout.count == 1 << 20 && o.stderr.count == 1 << 20)
        #expect(o.stdoutTruncated && o.stderrTruncated)
        #expect(o.stdoutTotal == 3 << 20 && o.stderrTotal == 3 << 20)
        #expect(o.stdout.allSatisfy { $0 == UInt8(ascii: "a") })
    }

    @Test func timeoutKillsTheWholeGroup() async throws {
        let started = MonotonicClock.now()
        // The background sleep is in the group; it prints its pid first.
        // Long enough for the shell to start the background child on a loaded machine.
        let o = try await sh("sleep 60 & echo $!; sleep 60", timeout: 1 * Self.scale)
        let elapsed = MonotonicClock.now() - started
        #expect(o.timedOut)
        #expect(o.termination == .signaled(SIGTERM))
        #expect(elapsed < 10 * Self.scale)
        let bg = try #require(Int32(text(o.stdout).trimmed))
        #expect(await Self.goneSoon(bg))
        #expect(!Self.alive(o.pid))
    }

    @Test func aGroupIgnoringSIGTERMGetsSIGKILL() async throws {
        let started = MonotonicClock.now()
        let o = try await sh("trap '' TERM; sleep 60 & echo $!; sleep 60; sleep 60", timeout: 1 * Self.scale,
                             killGrace: 0.3)
        #expect(o.timedOut)
        #expect(o.termination == .signaled(SIGKILL))
        #expect(MonotonicClock.now() - started < 10 * Self.scale)
        let bg = try #require(Int32(text(o.stdout).trimmed))
        #expect(await Self.goneSoon(bg))
    }

    @Test func aBackgroundChildHoldingThePipesDoesNotHoldTheAnswer() async throws {
        let started = MonotonicClock.now()
        let o = try await sh("sleep 30 & echo $!; exit 0", timeout: 20)
        #expect(MonotonicClock.now() - started < 5 * Self.scale)
        #expect(o.termination == .exited(0))
        #expect(!o.timedOut)
        if let bg = Int32(text(o.stdout).trimmed) { kill(bg, SIGKILL) }
    }

    @Test func noDescriptorOrZombieIsLeftAfterManyRuns() async throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        var pids: [Int32] = []
        for i in 0..<90 {
            let o = try await sh(i % 3 == 0 ? "echo x; echo y >&2" : (i % 3 == 1 ? "exit 7" : "sleep 5"),
                                 timeout: i % 3 == 2 ? 0.05 : nil)
            pids.append(o.pid)
        }
        // The fewest seen over a quarter of a second: suites running in parallel open and
        // close their own meanwhile; a leak stays. A leak would be 3 descriptors per run (270).
        var after = Int.max
        for _ in 0..<5 {
            after = min(after, try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count)
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(after - before < 40)
        for p in pids { #expect(ProcessProbe.readStat(p)?.state != "Z") }
    }

    @Test func aMissingProgramOrFolderIsAnError() async throws {
        await #expect(throws: ProcessRunnerError.self) {
            _ = try await ProcessRunner.run(.init(executable: "/nonexistent/prog", environment: Self.env))
        }
        await #expect(throws: ProcessRunnerError.self) {
            _ = try await sh("true", cwd: "/nonexistent-folder-xyz")
        }
    }

    @Test func aSignalIsReportedAsSuch() async throws {
        let o = try await sh("kill -KILL $$")
        #expect(o.termination == .signaled(SIGKILL))
        #expect(o.exitCode == nil)
    }
}
