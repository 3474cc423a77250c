import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyServerAPI
@testable import HappyCommands
@testable import HappyTestSupport

@Suite struct MachineTextTests {
    let meta: JSON = ["host": "h", "platform": "linux"]
    let state: JSON = ["status": "running", "pid": 12]

    @Test func listAndShowText() {
        let secret = SecureRandom.bytes(32)
        let now = 1_724_520_000_000
        var r = machineRecordFixture(ValueCipher.encrypt(meta, key: secret, variant: .legacy), ValueCipher.encrypt(state, key: secret, variant: .legacy))
        r.activeAt = now - 180_000
        let d = MachineDecryption.decrypt(r, credentials: .legacy(secret: secret, token: "t"))
        let show = MachineText.show(d, thisMachineId: "m", nowMs: now)
        #expect(show.contains("(this machine)") && show.contains("3 min ago") && show.contains("running") && show.contains("linux"))
        let list = MachineText.list([d], thisMachineId: "m", nowMs: now)
        #expect(list.split(separator: "\n")[1].hasPrefix("*"))
        #expect(MachineText.list([], thisMachineId: nil) == "No machines.")
    }
}

@Suite struct RelativeTimeTests {
    @Test func formats() {
        let now = 1_724_520_000_000
        #expect(RelativeTime.format(ms: now - 2_000, nowMs: now) == "just now")
        #expect(RelativeTime.format(ms: now - 30_000, nowMs: now) == "30 s ago")
        #expect(RelativeTime.format(ms: now - 180_000, nowMs: now) == "3 min ago")
        #expect(RelativeTime.format(ms: now - 7_200_000, nowMs: now) == "2 h ago")
        #expect(RelativeTime.format(ms: now - 86_400_000, nowMs: now) == "1 day ago")
        #expect(RelativeTime.format(ms: now - 3 * 86_400_000, nowMs: now) == "3 days ago")
        #expect(RelativeTime.format(ms: now + 120_000, nowMs: now) == "in 2 min")
        #expect(RelativeTime.format(ms: 0, nowMs: now) == "-")
    }
}
