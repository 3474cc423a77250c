import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappySessions
@testable import HappySync
@testable import HappyDaemon
@testable import HappyTestSupport

@Suite struct DaemonLockTests {
    @Test func acquireWritesPidAndStartTimeAndRelease() throws {
        let home = makeTempHome("lock"); defer { removeTree(home) }
        let path = home + "/daemon.state.json.lock"
        let (info, reclaimed) = try DaemonLock.acquire(path)
        #expect(reclaimed == nil)
        #expect(info.pid == getpid())
        #expect(info.startTime != nil && info.startTime == ProcessProbe.startTime(getpid()))
        let text = String(decoding: try #require(try FileIO.read(path)), as: UTF8.self)
        #expect(text == "\(getpid())\n\(info.startTime!)\n")
        #expect(FileIO.mode(path) == 0o600)
        // No temp files left behind.
        #expect(FileManagerShim.listDirectory(home) == ["daemon.state.json.lock"])
        DaemonLock.release(path)
        #expect(!FileIO.exists(path))
    }

    @Test func liveHappyDaemonHoldsTheLock() throws {
        let home = makeTempHome("lock"); defer { removeTree(home) }
        let path = home + "/daemon.state.json.lock"
        let other = spawnFakeDaemonProcess(); defer { killAndReap(other) }
        usleep(50_000)
        try FileIO.atomicWrite(DaemonLockInfo(pid: other, startTime: ProcessProbe.startTime(other)).text, to: path)
        #expect(throws: DaemonError.alreadyRunning(pid: other)) { try DaemonLock.acquire(path) }
        #expect(DaemonError.alreadyRunning(pid: other).what == "daemon already running (pid \(other))")
        // Release by someone else never removes it.
        DaemonLock.release(path)
        #expect(FileIO.exists(path))
    }

    @Test func deadPidIsStale() throws {
        let home = makeTempHome("lock"); defer { removeTree(home) }
        let path = home + "/daemon.state.json.lock"
        let dead = spawnProcess(["/bin/true"]); killAndReap(dead)
        try FileIO.atomicWrite("\(dead)\n12345\n", to: path)
        let (info, reclaimed) = try DaemonLock.acquire(path)
        #expect(reclaimed?.pid == dead)
        #expect(DaemonLock.read(path) == info)
    }

    @Test func foreignLivePidIsStale() throws {
        let home = makeTempHome("lock"); defer { removeTree(home) }
        let path = home + "/daemon.state.json.lock"
        let sleeper = spawnProcess(["/bin/sleep", "30"]); defer { killAndReap(sleeper) }
        usleep(50_000)
        try FileIO.atomicWrite("\(sleeper)\n", to: path)  // pid only: unknown start time
        let (_, reclaimed) = try DaemonLock.acquire(path)
        #expect(reclaimed?.pid == sleeper)
        #expect(DaemonLock.read(path)?.pid == getpid())
    }

    @Test func reusedPidWithOtherStartTimeIsStale() throws {
        let home = makeTempHome("lock"); defer { removeTree(home) }
        let path = home + "/daemon.state.json.lock"
        let other = spawnFakeDaemonProcess(); defer { killAndReap(other) }
        usleep(50_000)
        let st = try #require(ProcessProbe.startTime(other))
        try FileIO.atomicWrite("\(other)\n\(st + 1)\n", to: path)
        let (_, reclaimed) = try DaemonLock.acquire(path)
        #expect(reclaimed?.pid == other)
    }

    @Test(arguments: ["", "garbage\n", "-5\n", "\n\n"])
    func unreadableLockIsStale(_ content: String) throws {
        let home = makeTempHome("lock"); defer { removeTree(home) }
        let path = home + "/daemon.state.json.lock"
        try FileIO.atomicWrite(content, to: path)
        let (info, reclaimed) = try DaemonLock.acquire(path)
        #expect(reclaimed != nil)
        #expect(DaemonLock.read(path) == info)
    }

    @Test func cmdlineRecognition() {
        #expect(ProcessProbe.looksLikeHappyDaemon(["/usr/bin/happy", "--profile", "dev", "daemon", "start-sync"]))
        #expect(ProcessProbe.looksLikeHappyDaemon(["/opt/happy", "daemon", "start-sync"]))
        #expect(!ProcessProbe.looksLikeHappyDaemon(["/bin/sleep", "30"]))
        #expect(!ProcessProbe.looksLikeHappyDaemon(["/usr/bin/happy", "session", "list"]))
        #expect(!ProcessProbe.looksLikeHappyDaemon(["/usr/sbin/sshd", "daemon"]))
    }

    @Test func stateFileRoundTripModeAndToken() throws {
        let home = makeTempHome("state"); defer { removeTree(home) }
        let path = home + "/daemon.state.json"
        let t1 = DaemonStateFile.newControlToken(), t2 = DaemonStateFile.newControlToken()
        #expect(t1.count >= 32 && t1 != t2 && t1.allSatisfy { $0.isHexDigit })
        let s = DaemonStateFile(pid: 12, httpPort: 345, controlToken: t1, startTime: "2026-01-01T00:00:00.000Z",
                                startedWithCliVersion: HappyVersion.current, lastHeartbeat: "2026-01-01T00:00:00.000Z",
                                daemonLogPath: "/x.log", profile: "dev")
        try s.write(to: path)
        #expect(FileIO.mode(path) == 0o600)
        #expect(DaemonStateFile.read(path) == .ok(s))
        let keys = Set(try #require(try FileIO.readJSON(path)?.object).keys)
        #expect(keys == ["pid", "httpPort", "controlToken", "startTime", "startedWithCliVersion", "lastHeartbeat", "daemonLogPath", "profile"])
        try FileIO.atomicWrite("{not json", to: path)
        guard case .corrupt = DaemonStateFile.read(path) else { Issue.record("expected corrupt"); return }
        unlink(path)
        #expect(DaemonStateFile.read(path) == .missing)
    }
}
