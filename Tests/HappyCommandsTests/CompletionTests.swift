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
@testable import HappyDaemon
@testable import HappyCommands
@testable import HappyTestSupport

@Suite struct CompletionTests {
    static let repo = RepoPaths.root.path
    static let files = ["bash": "completions/happy.bash", "zsh": "completions/_happy", "fish": "completions/happy.fish"]

    @Test(arguments: ["bash", "zsh", "fish"])
    func checkedInScriptsMatchGenerator(_ shell: String) throws {
        let path = Self.repo + "/" + Self.files[shell]!
        let onDisk = try String(contentsOfFile: path, encoding: .utf8)
        #expect(onDisk == CompletionScripts.script(for: shell),
                "\(path) drifted: regenerate with `happy completions \(shell) > \(Self.files[shell]!)`")
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func scriptsParse(_ shell: String) async throws {
        let (status, msg) = try await runTool([shell, "-n", Self.repo + "/" + Self.files[shell]!], capture: .stderr)
        #expect(status == 0, "\(shell) -n failed (is \(shell) installed? scripts/test.sh installs it): \(msg)")
    }

    @Test func scriptsCoverEveryCommandAndFlag() {
        for shell in ["bash", "zsh", "fish"] {
            let s = CompletionScripts.script(for: shell)!
            for (path, spec) in CommandTree.root.walk() where !spec.hidden && !path.isEmpty {
                #expect(s.contains(spec.name), "\(shell) lacks \(path)")
                for f in spec.flags { #expect(s.contains(f.long), "\(shell) lacks --\(f.long)") }
            }
            for f in CommandTree.globalFlags { #expect(s.contains(f.long)) }
            #expect(s.contains("__complete profiles") && s.contains("__complete sessions"))
            #expect(!s.contains("__complete \""), "hidden command offered")
        }
        #expect(CompletionScripts.script(for: "bash")!.contains("complete -F _happy happy"))
        #expect(CompletionScripts.script(for: "tcsh") == nil)
    }

    @Test func sessionIdsFromSessionFiles() throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path)
        _ = t.write("sessions/b/session.json", #"{"id": "bbb", "status": "exited"}"#)
        _ = t.write("sessions/a/session.json", #"{"id": "aaa", "status": "exited"}"#)
        _ = t.write("sessions/z/session.json", #"{"id": "zzz", "status": "running"}"#)
        _ = t.write("sessions/bad/session.json", "{corrupt")
        _ = t.write("sessions/noid/session.json", "{}")
        #expect(CompleteCommand.sessionIds(home: home) == ["zzz", "aaa", "bbb"])
        #expect(CompleteCommand.sessionIds(home: HomeLayout(root: t.path + "/missing")) == [])
    }
}
