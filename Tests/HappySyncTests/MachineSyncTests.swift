import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappySessions
@testable import HappySync
@testable import HappyTestSupport

@Suite("MachineSync", .serialized)
struct MachineSyncTests {
    // MARK: registration and connect

    @Test func registersThenConnectsAndAnnouncesRunning() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { h.server.statesSent.contains { $0["status"]?.string == "running" } })
        let reg = try #require(h.server.state.get.registrations.first)
        #expect(h.server.dec(reg.daemonState)?["status"]?.string == "offline")
        #expect(h.server.dec(reg.metadata)?["happyCliVersion"]?.string == "9.9.9")
        #expect(reg.dek == nil)
        let methods = h.server.events("rpc-register").compactMap { $0.payload["method"]?.string }
        #expect(methods == ["resume-happy-session", "spawn-happy-session", "stop-daemon", "stop-session"].map { "\(h.machineId):\($0)" })
        let running = try #require(h.server.statesSent.first)
        #expect(running["pid"]?.int == 4321)
        #expect(running["httpPort"]?.int == 5555)
        #expect(running["startedAt"]?.int == 1_700_000_000_000)
        let upd = try #require(h.server.events("machine-update-state").first)
        #expect(upd.payload["expectedVersion"]?.int == 1)
        #expect(upd.payload["machineId"]?.string == h.machineId)
        #expect(await h.sync.status() == .connected)
        // Metadata equal to the registered one: no metadata update.
        #expect(h.server.events("machine-update-metadata").isEmpty)
        await h.sync.finishShutdown()
    }

    @Test func pushesMetadataWhenTheServersDiffers() async throws {
        let h = SyncHarness(metadataOnServer: ["host": "old", "happyCliVersion": "0.0.1"])
        await h.sync.start()
        #expect(await eventually { !h.server.events("machine-update-metadata").isEmpty })
        let m = try #require(h.server.events("machine-update-metadata").first)
        #expect(m.payload["expectedVersion"]?.int == 3)
        #expect(h.server.dec(m.payload["metadata"]?.string)?["happyCliVersion"]?.string == "9.9.9")
        #expect(await eventually { await h.sync.metadataVersion == 4 })
        await h.sync.finishShutdown()
    }

    @Test func heartbeatsAtTheConfiguredCadence() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { h.server.events("machine-alive").count >= 5 })
        let a = try #require(h.server.events("machine-alive").first)
        #expect(a.payload["machineId"]?.string == h.machineId)
        #expect(a.payload["time"]?.double != nil)
        await h.sync.finishShutdown()
        let n = h.server.events("machine-alive").count
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(h.server.events("machine-alive").count == n)
    }

    @Test func dataKeyRegistrationSendsAWrappedMachineKey() async throws {
        let account = Box.randomKeyPair()
        let h = SyncHarness(variant: .dataKey, accountPublicKey: account.publicKey)
        await h.sync.start()
        #expect(await eventually { !h.server.state.get.registrations.isEmpty })
        let dek = try #require(h.server.state.get.registrations.first?.dek)
        let bundle = try #require(Base64.decode(dek))
        #expect(bundle.count == 105)
        #expect(DataKeyWrap.unwrap(bundle, recipientSecret: account.secretKey) == h.server.key)
        await h.sync.finishShutdown()
    }

    @Test func registrationFailureKeepsOfflineAndRetriesBeforeAnySocket() async throws {
        let h = SyncHarness { $0.registerFailures = [.failed("server error 500"), .failed("server error 500"), .failed("x")] }
        await h.sync.start()
        #expect(await eventually { await h.sync.status() == .offline })
        #expect(h.server.socketCount == 0)
        #expect(await eventually { await h.sync.status() == .connected })
        #expect(h.server.socketCount == 1)
        #expect(h.server.state.get.registrations.count == 1)
        await h.sync.finishShutdown()
    }

    @Test func rejectedTokenOnRegistrationIsReportedAndRetriedSlowly() async throws {
        // The retry waits 3 s here (60 s in the product): a look 0.1 s in is well before it
        // even on a loaded machine.
        let h = SyncHarness(tokenRejectedDelay: 3) { $0.registerFailures = [.tokenRejected] }
        await h.sync.start()
        #expect(await eventually { await h.sync.status() == .tokenRejected })
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(h.server.socketCount == 0)
        #expect(await h.sync.status() == .tokenRejected)
        #expect(await eventually { await h.sync.status() == .connected })
        await h.sync.finishShutdown()
    }

    @Test func socketAuthRejectionIsTokenRejected() async throws {
        let h = SyncHarness { $0.connectFailures = [.connectError("Invalid authentication token")] }
        await h.sync.start()
        #expect(await eventually { await h.sync.status() == .tokenRejected })
        #expect(await eventually { await h.sync.status() == .connected })
        #expect(h.server.socketCount == 2)
        await h.sync.finishShutdown()
    }

    @Test func reconnectsAndReRegistersAfterADrop() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { h.server.statesSent.count == 1 })
        h.server.current?.drop()
        #expect(await eventually { h.server.socketCount == 2 && h.server.statesSent.count == 2 })
        #expect(await h.sync.status() == .connected)
        #expect(h.server.events("rpc-register").filter { $0.socket == 1 }.count == 4)
        #expect(h.server.statesSent[1]["status"]?.string == "running")
        #expect(h.server.events("machine-update-state").last?.payload["expectedVersion"]?.int == 2)
        await h.sync.finishShutdown()
    }

    // MARK: versioned updates

    @Test func versionMismatchAdoptsTheServerVersionAndRetries() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.daemonStateVersion == 2 })
        // Someone else bumped the state to v7.
        let other = h.server.enc(["status": "running", "note": "external"])
        h.server.state.withLock { $0.daemonState = other; $0.daemonStateVersion = 7 }
        await h.sync.updateDaemonState { cur in (cur ?? [:]).setting("extra", "x") }
        let ups = h.server.events("machine-update-state")
        #expect(ups.suffix(2).map { $0.payload["expectedVersion"]?.int } == [2, 7])
        #expect(await h.sync.daemonStateVersion == 8)
        let stored = try #require(h.server.dec(h.server.state.get.daemonState))
        // The retry re-applied the change on the server's value.
        #expect(stored["note"]?.string == "external")
        #expect(stored["extra"]?.string == "x")
        await h.sync.finishShutdown()
    }

    @Test func versionMismatchGivesUpAfterTenTries() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.daemonStateVersion == 2 })
        h.server.state.withLock { $0.alwaysMismatch = true }
        let before = h.server.events("machine-update-state").count
        await h.sync.updateDaemonState { cur in cur ?? [:] }
        #expect(h.server.events("machine-update-state").count - before == 10)
        await h.sync.finishShutdown()
    }

    @Test func resultErrorIsNotRetried() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.daemonStateVersion == 2 })
        h.server.state.withLock { $0.answerError = true }
        let before = h.server.events("machine-update-state").count
        await h.sync.updateDaemonState { cur in cur ?? [:] }
        #expect(h.server.events("machine-update-state").count - before == 1)
        #expect(await h.sync.daemonStateVersion == 2)
        await h.sync.finishShutdown()
    }

    @Test func machineNotFoundRegistersAgain() async throws {
        let h = SyncHarness { $0.notFoundLeft = 1 }
        await h.sync.start()
        #expect(await eventually { h.server.state.get.registrations.count == 2 })
        #expect(await eventually { await h.sync.status() == .connected && h.server.socketCount == 2 })
        #expect(await eventually { h.server.statesSent.last?["status"]?.string == "running" })
        await h.sync.finishShutdown()
    }

    @Test func updatesAreSerialized() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.daemonStateVersion == 2 })
        await withTaskGroup(of: Void.self) { g in
            for i in 0..<8 {
                g.addTask { await h.sync.updateDaemonState { cur in (cur ?? [:]).setting("n\(i)", .int(i)) } }
            }
        }
        // Never two in flight: every update found the version the previous one produced.
        let expected = h.server.events("machine-update-state").compactMap { $0.payload["expectedVersion"]?.int }
        #expect(expected == Array(1...9))
        #expect(await h.sync.daemonStateVersion == 10)
        let stored = try #require(h.server.dec(h.server.state.get.daemonState)?.object)
        #expect((0..<8).allSatisfy { stored["n\($0)"] != nil })
        await h.sync.finishShutdown()
    }

    @Test func updateEventsForThisMachineAreApplied() async throws {
        let h = SyncHarness()
        let v: JSON = ["status": "running", "from": "elsewhere"]
        await h.sync.applyUpdate(["id": "x", "seq": 5, "body": ["t": "update-machine", "machineId": .string(h.machineId),
                                  "daemonState": ["value": .string(h.server.enc(v)), "version": 12]], "createdAt": 1])
        #expect(await h.sync.daemonStateVersion == 12)
        #expect(await h.sync.daemonState == v)
        // Another machine, another kind, an older version: ignored.
        await h.sync.applyUpdate(["body": ["t": "update-machine", "machineId": "other",
                                  "daemonState": ["value": .string(h.server.enc([:])), "version": 20]]])
        await h.sync.applyUpdate(["body": ["t": "new-machine", "machineId": .string(h.machineId),
                                  "daemonState": ["value": .string(h.server.enc([:])), "version": 30]]])
        await h.sync.applyUpdate(["body": ["t": "update-machine", "machineId": .string(h.machineId),
                                  "daemonState": ["value": .string(h.server.enc([:])), "version": 11]]])
        #expect(await h.sync.daemonStateVersion == 12)
        #expect(await h.sync.daemonState == v)
        let m: JSON = ["host": "z"]
        await h.sync.applyUpdate(["body": ["t": "update-machine", "machineId": .string(h.machineId),
                                  "metadata": ["value": .string(h.server.enc(m)), "version": 4]]])
        #expect(await h.sync.metadataVersion == 4)
        #expect(await h.sync.metadata == m)
    }

    @Test func updateEventsArriveThroughTheSocket() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.daemonStateVersion == 2 })
        let v: JSON = ["status": "running", "x": 1]
        _ = await h.server.current?.deliver("update", [["body": ["t": "update-machine", "machineId": .string(h.machineId),
                                                          "daemonState": ["value": .string(h.server.enc(v)), "version": 9]]]])
        #expect(await h.sync.daemonStateVersion == 9)
        await h.sync.finishShutdown()
    }

    // MARK: RPC

    @Test func unknownMethodAndForeignPrefix() async throws {
        let h = SyncHarness()
        #expect(await h.call("bash", ["command": "ls"]) == ["error": "Method not found"])
        let (reply, _) = await h.sync.handleRPC(["method": "other-machine:stop-daemon", "params": .string(h.server.enc([:]))])
        #expect(h.server.dec(reply) == ["error": "Method not found"])
    }

    @Test func undecryptableParamsAreAnErrorResult() async throws {
        let h = SyncHarness()
        let r = try #require(await h.call("spawn-happy-session", nil, rawParams: "bm90IGVuY3J5cHRlZA=="))
        #expect(r["error"]?.string?.contains("decrypt") == true)
        let wrongKey = ValueCipher.encryptToBase64(["directory": "/tmp"], key: SecureRandom.bytes(32), variant: .legacy)
        let r2 = try #require(await h.call("stop-session", nil, rawParams: wrongKey))
        #expect(r2["error"] != nil)
        #expect(await h.sessions.records.isEmpty)
    }

    @Test func spawnApprovalFlow() async throws {
        let h = SyncHarness()
        let dir = makeTempHome("spawn") + "/new/project"
        let ask = await h.call("spawn-happy-session", ["directory": .string(dir)])
        #expect(ask == ["type": "requestToApproveDirectoryCreation", "directory": .string(dir)])
        #expect(!FileIO.isDirectory(dir))
        let no = await h.call("spawn-happy-session", ["directory": .string(dir), "approvedNewDirectoryCreation": false])
        #expect(no?["type"]?.string == "requestToApproveDirectoryCreation")
        // Approved, but this harness has no session sync: an error the app shows, nothing spawned.
        let off = try #require(await h.call("spawn-happy-session", ["directory": .string(dir), "approvedNewDirectoryCreation": true]))
        #expect(off["type"] == "error" && off["errorMessage"]?.string?.contains("sessions.sync") == true)
        #expect(await h.sessions.records.isEmpty)
    }

    @Test func spawnErrorsAreTypedErrorAnswers() async throws {
        let h = SyncHarness()
        #expect(await h.call("spawn-happy-session", [:]) == ["type": "error", "errorMessage": "Directory is required"])
        let codex = try #require(await h.call("spawn-happy-session", ["directory": "/tmp", "agent": "codex"]))
        #expect(codex["type"] == "error" && codex["errorMessage"]?.string?.contains("Unsupported agent type: 'codex'") == true)
        let relative = try #require(await h.call("spawn-happy-session", ["directory": "tmp"]))
        #expect(relative["type"] == "error")
        for name in ["LD_PRELOAD", "LD_LIBRARY_PATH", "NODE_OPTIONS"] {
            let r = try #require(await h.call("spawn-happy-session", ["directory": "/tmp", "environmentVariables": [name: "x"]]))
            #expect(r["type"] == "error" && r["errorMessage"]?.string?.contains(name) == true, "\(name) must be refused")
        }
        let badName = try #require(await h.call("spawn-happy-session", ["directory": "/tmp", "environmentVariables": ["A=B": "x"]]))
        #expect(badName["type"] == "error")
        let badValue = try #require(await h.call("spawn-happy-session", ["directory": "/tmp", "environmentVariables": ["A": 1]]))
        #expect(badValue["type"] == "error")
        let file = makeTempHome("f") + "/plain"
        FileManager.default.createFile(atPath: file, contents: Data())
        let notDir = try #require(await h.call("spawn-happy-session", ["directory": .string(file)]))
        #expect(notDir["type"] == "error")
        #expect(await h.sessions.records.isEmpty)
    }

    @Test func stopSession() async throws {
        let h = SyncHarness()
        let r = SessionRecord(id: "s-local-1", pid: 4242, directory: "/tmp", status: .running, startedBy: "mobile-app",
                              startedAt: 1, stdoutPath: "/tmp/x", stderrPath: "/tmp/y")
        await h.sessions.put(r)
        #expect(await h.call("stop-session", ["sessionId": "s-local-1"]) == ["message": "Session stopped"])
        #expect(await h.sessions.records["s-local-1"]?.status == .stopped)
        #expect(await h.call("stop-session", ["sessionId": "nope"]) == ["error": "Session not found or failed to stop"])
        #expect(await h.call("stop-session", [:]) == ["error": "Session ID is required"])
    }

    @Test func stopDaemonAcksThenRequestsShutdown() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.status() == .connected })
        let sock = try #require(h.server.current)
        // Undecryptable params are refused for every method, stop-daemon included (SPEC §4.4).
        let refused = try #require(await sock.deliver("rpc-request", [h.rpc("stop-daemon", nil, rawParams: "garbage")], wantsAck: true))
        #expect(h.server.dec(refused.first?.string)?["error"] != nil)
        #expect(h.shutdowns.calls.get.isEmpty)
        let ack = try #require(await sock.deliver("rpc-request", [h.rpc("stop-daemon", [:])], wantsAck: true))
        #expect(ack.count == 1)
        #expect(h.server.dec(ack.first?.string) == ["message": "Daemon stop request acknowledged, starting shutdown sequence..."])
        #expect(await eventually { h.shutdowns.calls.get == [.mobileApp] })
        // The phone's stop-daemon leaves the sessions running for the next daemon.
        #expect(h.shutdowns.keeps.get == [true])
        await h.sync.finishShutdown()
    }

    // MARK: shutdown

    @Test func twoStepShutdown() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.daemonStateVersion == 2 })
        await h.sync.beginShutdown(source: .mobileApp)
        let s1 = try #require(h.server.statesSent.last)
        #expect(s1["status"]?.string == "shutting-down")
        #expect(s1["shutdownSource"]?.string == "happy-app")
        #expect(s1["shutdownRequestedAt"]?.double != nil)
        #expect(h.server.current?.isConnected == true)
        await h.sync.finishShutdown()
        let s2 = try #require(h.server.statesSent.last)
        #expect(s2["status"]?.string == "offline")
        #expect(s2["shutdownSource"]?.string == "happy-app")
        #expect(h.server.current?.isConnected == false)
        #expect(await h.sync.status() == .offline)
        try await Task.sleep(nanoseconds: 150_000_000)
        #expect(h.server.socketCount == 1)  // no reconnect after shutdown
    }

    @Test func shutdownIsBoundedWhenTheServerDoesNotAnswer() async throws {
        let h = SyncHarness()
        await h.sync.start()
        #expect(await eventually { await h.sync.daemonStateVersion == 2 })
        h.server.state.withLock { $0.silent = true }
        let t0 = Date()
        await h.sync.shutdown(source: .cli)
        let took = Date().timeIntervalSince(t0)
        #expect(took >= 0.5 && took < 20)  // two steps of shutdownAckTimeout (0.3 s) each, not a hang
        #expect(h.server.statesSent.suffix(2).map { $0["status"]?.string } == ["shutting-down", "offline"])
    }

    @Test func shutdownWhileOfflineDoesNotWait() async throws {
        // Waiting for an ack would take 30 s here; not waiting is far below that on any machine.
        let h = SyncHarness(shutdownAckTimeout: 30) { $0.registerFailures = Array(repeating: .failed("down"), count: 1000) }
        await h.sync.start()
        #expect(await eventually { await h.sync.status() == .offline })
        let t0 = Date()
        await h.sync.shutdown(source: .osSignal)
        #expect(Date().timeIntervalSince(t0) < 15)
        #expect(h.server.socketCount == 0)
    }

    @Test func mergedStateDropsStaleShutdownFieldsOnRunning() async throws {
        let h = SyncHarness()
        let old: JSON = ["status": "offline", "pid": 1, "httpPort": 2, "shutdownSource": "cli", "shutdownRequestedAt": 5, "custom": true]
        let s = h.sync.mergedState(old, status: "running")
        #expect(s["status"]?.string == "running")
        #expect(s["pid"]?.int == 4321)
        #expect(s["httpPort"]?.int == 5555)
        #expect(s["shutdownSource"] == nil)
        #expect(s["custom"] == true)
    }
}
