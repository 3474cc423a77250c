import Foundation
import CPosix
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

@Suite(.serialized) struct DaemonControlTests {
    func state(pid: Int32, port: Int) -> DaemonStateFile {
        DaemonStateFile(pid: pid, httpPort: port, controlToken: "t", startTime: "2026-01-01T00:00:00.000Z", startedWithCliVersion: "0.0.9",
                        lastHeartbeat: "2026-01-01T00:00:00.000Z", daemonLogPath: "/x.log", profile: "p")
    }

    @Test func startFailedDoesNotRepeatTheErrorPrefix() {
        let e = DaemonError.startFailed(detail: "error: port 1 is already in use (profile p) — set daemon.httpPort")
        #expect(e.what == "the daemon failed to start: port 1 is already in use (profile p) — set daemon.httpPort")
        #expect(DaemonError.startFailed(detail: "").what == "the daemon failed to start")
    }

    @Test func staleStateAndLockAreRemoved() throws {
        let home = makeTempHome("ctl"); defer { removeTree(home) }
        let h = HomeLayout(root: home)
        let dead = spawnProcess(["/bin/true"]); killAndReap(dead)
        try state(pid: dead, port: 1).write(to: h.daemonState)
        try FileIO.atomicWrite("\(dead)\n1\n", to: h.daemonLock)
        #expect(DaemonControl.probe(h, clean: false) == .notRunning(removed: []))
        #expect(FileIO.exists(h.daemonState))
        #expect(DaemonControl.probe(h) == .notRunning(removed: [h.daemonLock, h.daemonState]))
        #expect(!FileIO.exists(h.daemonState) && !FileIO.exists(h.daemonLock))
        // A foreign live pid is stale too.
        let sleeper = spawnProcess(["/bin/sleep", "30"]); defer { killAndReap(sleeper) }
        usleep(30_000)
        try state(pid: sleeper, port: 1).write(to: h.daemonState)
        try FileIO.atomicWrite("\(sleeper)\n", to: h.daemonLock)
        guard case .notRunning(let removed) = DaemonControl.probe(h) else { Issue.record("foreign pid treated as a daemon"); return }
        #expect(removed.count == 2)
    }

    /// SPEC §3.3: a lock whose pid runs a happy-daemon look-alike with another start time
    /// is stale, and so is the state file naming that pid: both go (the review saw "not
    /// running" with both files left behind).
    @Test func lookAlikeWithAnotherStartTimeLeavesNothingBehind() throws {
        let home = makeTempHome("ctl"); defer { removeTree(home) }
        let h = HomeLayout(root: home)
        let fake = spawnFakeDaemonProcess(); defer { killAndReap(fake) }
        usleep(50_000)
        let actual = try #require(ProcessProbe.startTime(fake))
        #expect(ProcessProbe.isHappyDaemon(pid: fake, expectedStartTime: nil))  // it does look like one
        try state(pid: fake, port: 1).write(to: h.daemonState)
        try FileIO.atomicWrite(DaemonLockInfo(pid: fake, startTime: actual + 12345).text, to: h.daemonLock)
        let r = DaemonControl.status(h, tries: 1, tryTimeout: 0.2)
        #expect(!r.running)
        #expect(Set(r.removed) == [h.daemonLock, h.daemonState])
        #expect(!FileIO.exists(h.daemonLock) && !FileIO.exists(h.daemonState))
        #expect(ProcessProbe.isAlive(fake))  // never signalled
        // The same look-alike with the right start time is a live daemon: left alone.
        try state(pid: fake, port: 1).write(to: h.daemonState)
        try FileIO.atomicWrite(DaemonLockInfo(pid: fake, startTime: actual).text, to: h.daemonLock)
        guard case .running(let pid, _) = DaemonControl.probe(h) else { Issue.record("live look-alike declared stale"); return }
        #expect(pid == fake && FileIO.exists(h.daemonLock) && FileIO.exists(h.daemonState))
    }

    @Test func symlinkedStdioLogIsRefused() throws {
        let home = makeTempHome("ctl"); defer { removeTree(home) }
        var cfg = HappyConfig(homeDir: home)
        cfg.daemon.httpPort = 0
        let h = cfg.home
        try FileIO.ensureDirectory(h.logsDir)
        let target = home + "/precious.txt"
        try FileIO.atomicWrite("precious\n", to: target)
        #expect(symlink(target, h.daemonStdioLog) == 0)
        #expect(throws: DaemonError.stdioLogUnusable(path: h.daemonStdioLog, reason: "it is a symbolic link (refused)")) {
            try DaemonControl.start(cfg, executable: "/bin/true", timeout: 1)
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious\n")
    }

    /// CI saw 6 `start-sync` processes right after 20 parallel `daemon start`s had all
    /// returned: the losers' own children were still on their way to losing the lock. A
    /// start that finds another daemon running waits for (and reaps) its own child.
    @Test func startThatLosesTheRaceWaitsForItsOwnChild() throws {
        let home = makeTempHome("race"); defer { removeTree(home) }
        var cfg = HappyConfig(homeDir: home)
        cfg.daemon.httpPort = 0
        let h = cfg.home
        let winner = spawnFakeDaemonProcess(); defer { killAndReap(winner) }
        usleep(50_000)
        // The child plays "another start won meanwhile": it puts the winner's lock and state
        // in place, then lingers a while before it exits (as a loser that is slow to run).
        try FileIO.ensureDirectory(h.root)
        try state(pid: winner, port: 1).write(to: home + "/state.next")
        try FileIO.atomicWrite(DaemonLockInfo(pid: winner, startTime: ProcessProbe.startTime(winner)).text, to: home + "/lock.next")
        let pidFile = home + "/child.pid"
        let script = "echo $$ > '\(pidFile)'; mv '\(home)/lock.next' '\(h.daemonLock)'; mv '\(home)/state.next' '\(h.daemonState)'; sleep 0.7; exit 1"
        let t0 = monoNow()
        let r = try DaemonControl.start(cfg, executable: "/bin/sh", globalArgs: ["-c", script], timeout: 20)
        #expect(r.alreadyRunning && r.pid == winner)
        let text = String(decoding: try #require(try FileIO.read(pidFile)), as: UTF8.self)
        let child = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(monoNow() - t0 >= 0.6)
        // Gone and reaped: not even a zombie is left.
        #expect(kill(child, 0) == -1 && errno == ESRCH)
    }

    @Test func corruptStateIsMovedAsideNotSilentlyOverwritten() throws {
        let home = makeTempHome("ctl"); defer { removeTree(home) }
        let h = HomeLayout(root: home)
        try FileIO.atomicWrite("{garbage", to: h.daemonState)
        guard case .notRunning(let removed) = DaemonControl.probe(h) else { Issue.record("expected not running"); return }
        #expect(removed.count == 1 && removed[0].hasPrefix(h.daemonState + ".corrupt-"))
        #expect(FileIO.exists(removed[0]))
        let r = DaemonControl.status(h, tries: 1, tryTimeout: 0.2)
        #expect(!r.running)
        let j = r.json
        #expect(j["running"] == false)
        #expect(Set(j.object!.keys) == ["pid", "httpPort", "version", "profile", "machineId", "serverUrl", "server", "startedAt", "sessions", "running", "logPath", "uptimeMs"])
        #expect(j.object!.filter { $0.key != "running" }.allSatisfy { $0.value.isNull })
    }

    @Test func liveButSilentDaemonIsNotStale() throws {
        let home = makeTempHome("ctl"); defer { removeTree(home) }
        let h = HomeLayout(root: home)
        // A listening socket that never answers, and a live happy-looking pid.
        let lfd = cposix_listen_loopback(0, 16); defer { close(lfd) }
        let port = Int(cposix_local_port(lfd))
        let fake = spawnFakeDaemonProcess(); defer { killAndReap(fake) }
        usleep(50_000)
        try state(pid: fake, port: port).write(to: h.daemonState)
        try FileIO.atomicWrite(DaemonLockInfo(pid: fake, startTime: ProcessProbe.startTime(fake)).text, to: h.daemonLock)
        let t0 = monoNow()
        let r = DaemonControl.status(h, tries: 3, tryTimeout: 0.3)
        #expect(monoNow() - t0 >= 0.8)
        #expect(r.running && r.responding == false && r.pid == fake)
        #expect(r.json["responding"] == false && r.json["running"] == true && r.json["pid"]?.int == Int(fake))
        #expect(r.json["httpPort"]?.int == port && r.json["server"] == .null && r.json["sessions"] == .null)
        // State kept.
        #expect(FileIO.exists(h.daemonState) && FileIO.exists(h.daemonLock))
        // A client that needs it reports "not responding", never "not running".
        #expect(throws: (any Error).self) { try DaemonControl.client(h, timeout: 0.2).status() }
        #expect(FileIO.exists(h.daemonState))
    }

    @Test func statusOfARunningEngine() async throws {
        let e = try await EngineHarness()
        let home = e.home
        let r = await off { DaemonControl.status(HomeLayout(root: home)) }
        #expect(r.running && r.responding == true)
        #expect(r.json["pid"]?.int == Int(getpid()) && r.json["httpPort"]?.int == e.port && r.json["logPath"]?.string == e.engine.logPath)
        #expect(r.json["uptimeMs"]?.int != nil && r.json["responding"] == nil && r.json["server"] == "no-credentials")
        await e.stop()
    }

    @Test func systemdUnit() throws {
        let home = makeTempHome("unit"); defer { removeTree(home) }
        let env = ["XDG_CONFIG_HOME": home + "/cfg", "HOME": home]
        let path = try SystemdUnit.install(executable: "/opt/happy bin/happy", profile: "dev", processEnvironment: env)
        #expect(path == home + "/cfg/systemd/user/happy-dev.service")
        let text = String(decoding: try #require(try FileIO.read(path)), as: UTF8.self)
        #expect(text.contains("ExecStart=\"/opt/happy bin/happy\" --profile dev daemon start-sync\n"))
        #expect(text.contains("Restart=on-failure\n") && text.contains("KillMode=process\n") && text.contains("WantedBy=default.target"))
        #expect(SystemdUnit.unitPath(profile: "x", environment: ["HOME": "/h"]) == "/h/.config/systemd/user/happy-x.service")
        #expect(try SystemdUnit.uninstall(profile: "dev", processEnvironment: env) == (path, true))
        #expect(try SystemdUnit.uninstall(profile: "dev", processEnvironment: env).existed == false)
    }
}

