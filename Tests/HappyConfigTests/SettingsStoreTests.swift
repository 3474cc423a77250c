import Foundation
import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappyTestSupport

@Suite struct SettingsStoreTests {
    @Test func machineIdLifecycleAndUnknownKeysPreserved() throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path + "/h")
        _ = t.write("h/settings.json", #"{"schemaVersion": 1, "custom": {"x": [1, 2]}, "onboarded": true}"#)
        let s = SettingsStore(home: home)
        #expect(try s.machineId() == nil)
        let id = try s.ensureMachineId()
        #expect(id.count == 36 && id == id.lowercased())
        #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(Array(id)[14] == "4")
        #expect(try s.ensureMachineId() == id)
        var j = try s.read()
        #expect(j["custom"] == ["x": [1, 2]] && j["onboarded"] == true && j["schemaVersion"] == 2)
        #expect(FileIO.mode(home.settings) == 0o600)
        try s.removeMachineId()
        j = try s.read()
        #expect(j["machineId"] == nil && j["custom"] == ["x": [1, 2]])
        try s.update { $0["other"] = "v" }
        #expect(try s.read()["other"] == "v")
    }

    @Test func corruptFileIsNeverOverwritten() throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path + "/h")
        for bad in ["{not json", "[1, 2]"] {
            let p = t.write("h/settings.json", bad)
            let s = SettingsStore(home: home)
            #expect(throws: FileIOError.self) { try s.ensureMachineId() }
            #expect(throws: FileIOError.self) { try s.removeMachineId() }
            #expect(try String(contentsOfFile: p, encoding: .utf8) == bad)
            do { _ = try s.read() } catch { #expect(renderError(error).contains(p)) }
        }
    }

    @Test func homeCreatedPrivateAndTightened() throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path + "/a/b/home")
        #expect(try HomeDirectory.prepare(home) == nil)
        #expect(FileIO.mode(home.root) == 0o700)
        chmod(home.root, 0o755)
        let w = try HomeDirectory.prepare(home)
        #expect(w?.contains("tightened") == true)
        #expect(FileIO.mode(home.root) == 0o700)
        // A file where the home should be.
        let f = t.write("file", "x")
        #expect(throws: FileIOError.notADirectory(path: f)) { try HomeDirectory.prepare(HomeLayout(root: f)) }
    }

    @Test func concurrentEnsureAgrees() async throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path + "/h")
        let ids = await withTaskGroup(of: String?.self) { g in
            for _ in 0..<8 { g.addTask { try? SettingsStore(home: home).ensureMachineId() } }
            var out: [String?] = []
            for await v in g { out.append(v) }
            return out
        }
        #expect(Set(ids).count == 1 && ids.first! != nil)
    }

    /// A home that belongs to another (non-root) user is refused, nothing is created in
    /// it. Needs root to hand a folder to `nobody`.
    @Test(.enabled(if: getuid() == 0, "needs root to chown"))
    func homeOwnedByAnotherUserIsRefused() throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path + "/theirs")
        try HomeDirectory.prepare(home)
        #expect(chown(home.root, 65534, 65534) == 0)
        #expect(throws: ConfigError.homeOwnedByAnotherUser(path: home.root, owner: 65534, user: 0)) { try HomeDirectory.prepare(home) }
        #expect(throws: ConfigError.self) { try SettingsStore(home: home).ensureMachineId() }
        #expect(!FileIO.exists(home.settings))
        let e = ConfigError.homeOwnedByAnotherUser(path: home.root, owner: 65534, user: 0)
        #expect(renderError(e).contains("belongs to another user") && e.exitCode == 1)
        // Root's own folders are fine, and a folder handed back is usable again.
        #expect(chown(home.root, 0, 0) == 0)
        #expect(try HomeDirectory.prepare(home) == nil)
    }

    /// `settings.json` is never read through a symbolic link; the daemon moves the link aside.
    @Test func symlinkedSettingsAreNotFollowed() throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path + "/h")
        try HomeDirectory.prepare(home)
        let target = t.write("planted.json", #"{"schemaVersion": 2, "machineId": "planted"}"#)
        #expect(symlink(target, home.settings) == 0)
        #expect(throws: FileIOError.symbolicLink(path: home.settings)) { try SettingsStore(home: home).machineId() }
        let id = try #require(SettingsStore(home: home).ensureMachineIdRepairing())
        #expect(id != "planted")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == #"{"schemaVersion": 2, "machineId": "planted"}"#)
        var st = stat()
        #expect(lstat(home.settings, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG)
    }

    /// root bypasses permission bits, so this runs for ordinary users only.
    @Test(.disabled(if: getuid() == 0, "root can write anywhere"))
    func homeWithoutWritePermission() throws {
        let t = TempDir()
        let home = HomeLayout(root: t.path + "/ro")
        try HomeDirectory.prepare(home)
        chmod(home.root, 0o500)
        defer { chmod(home.root, 0o700) }
        #expect(throws: ConfigError.homeNotWritable(path: home.root)) { try HomeDirectory.prepare(home) }
    }
}
