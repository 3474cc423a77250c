import Foundation
import Glibc
import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappySync

@Suite("Tools: path confinement")
struct ToolsConfinementTests {
    let refusal = "path outside the allowed roots (rpc.roots)"

    func resolve(_ ctx: ToolContext, _ p: String) -> Result<ConfinedPath, PathFailure> {
        ctx.confinement().resolve(p)
    }

    @Test func pathsInsideTheRootResolve() {
        let s = ToolSandbox()
        let f = s.write("root/a/file.txt", "x")
        let ctx = s.machine()
        #expect(resolve(ctx, f) == .success(ConfinedPath(path: f, exists: true)))
        #expect(resolve(ctx, s.root) == .success(ConfinedPath(path: s.root, exists: true)))
        // Relative paths start at the first root; `~` is $HOME.
        #expect(resolve(ctx, "a/file.txt") == .success(ConfinedPath(path: f, exists: true)))
        #expect(resolve(ctx, "~/a/file.txt") == .success(ConfinedPath(path: f, exists: true)))
        #expect(resolve(ctx, "./a//./file.txt") == .success(ConfinedPath(path: f, exists: true)))
        // A file to be created: its folder is resolved, the name appended.
        #expect(resolve(ctx, "a/new.txt") == .success(ConfinedPath(path: s.root + "/a/new.txt", exists: false)))
    }

    @Test func dotDotOutOfTheRootIsRefused() {
        let s = ToolSandbox()
        s.write("outside/secret", "s")
        let ctx = s.machine()
        #expect(resolve(ctx, s.root + "/../outside/secret") == .failure(.refused))
        #expect(resolve(ctx, "../outside/secret") == .failure(.refused))
        #expect(resolve(ctx, "../outside/new-file") == .failure(.refused))
        #expect(resolve(ctx, "/etc/passwd") == .failure(.refused))
        #expect(resolve(ctx, "/nonexistent-dir-xyz/file") == .failure(.refused))
        // `..` that stays inside is fine.
        s.mkdir("root/a")
        #expect(resolve(ctx, "a/../a") == .success(ConfinedPath(path: s.root + "/a", exists: true)))
    }

    @Test func symlinkEscapesAreRefused() {
        let s = ToolSandbox()
        s.write("outside/secret", "s")
        s.symlink(s.outside, at: "root/link")
        s.symlink(s.outside + "/secret", at: "root/file-link")
        s.symlink(s.outside + "/not-yet", at: "root/dangling")
        let ctx = s.machine()
        #expect(resolve(ctx, "link/secret") == .failure(.refused))
        #expect(resolve(ctx, "link") == .failure(.refused))
        #expect(resolve(ctx, "file-link") == .failure(.refused))
        #expect(resolve(ctx, "link/new-file") == .failure(.refused))
        // A symlink that stays inside resolves to its target.
        let inner = s.write("root/in/target.txt", "t")
        s.symlink(inner, at: "root/inner-link")
        #expect(resolve(ctx, "inner-link") == .success(ConfinedPath(path: inner, exists: true)))
    }

    @Test func aDanglingSymlinkCannotBeWrittenThrough() async {
        let s = ToolSandbox()
        s.symlink(s.outside + "/created", at: "root/dangling")
        let ctx = s.machine()
        let w = await RPCTools.writeFile(WriteFileParams(path: "dangling", content: Base64.encode(Array("x".utf8))),
                                         context: ctx)
        #expect(!w.success)
        #expect(!FileIO.exists(s.outside + "/created"))
        let r = await RPCTools.readFile(ReadFileParams(path: "dangling"), context: ctx)
        #expect(!r.success)
    }

    @Test func aSiblingWithTheRootAsPrefixIsOutside() {
        let s = ToolSandbox()
        s.mkdir("u")
        let f = s.write("u2/file", "x")
        let ctx = s.machine(roots: [s.base + "/u"])
        #expect(resolve(ctx, f) == .failure(.refused))
        #expect(resolve(ctx, s.base + "/u2") == .failure(.refused))
        #expect(resolve(ctx, s.base + "/u") == .success(ConfinedPath(path: s.base + "/u", exists: true)))
    }

    @Test func unicodeEquivalentNamesAreDifferentFolders() {
        let s = ToolSandbox()
        let nfc = "caf\u{e9}", nfd = "cafe\u{301}"
        s.mkdir(nfc)
        let f = s.write(nfd + "/file", "x")
        // Swift's String == says these are equal; the file system does not.
        #expect(nfc == nfd)
        let ctx = s.machine(roots: [s.base + "/" + nfc])
        #expect(resolve(ctx, f) == .failure(.refused))
    }

    @Test func aRootThatIsASymlinkIsResolved() {
        let s = ToolSandbox()
        let f = s.write("root/file", "x")
        s.symlink(s.root, at: "root-link")
        let ctx = s.machine(roots: [s.base + "/root-link"])
        #expect(resolve(ctx, f) == .success(ConfinedPath(path: f, exists: true)))
        #expect(resolve(ctx, s.base + "/root-link/file") == .success(ConfinedPath(path: f, exists: true)))
        #expect(resolve(ctx, s.outside) == .failure(.refused))
        #expect(ctx.confinement().roots == [s.root])
    }

    @Test func rootSlashAllowsEverything() {
        let s = ToolSandbox()
        let ctx = s.machine(roots: ["/"])
        #expect(resolve(ctx, "/etc") == .success(ConfinedPath(path: "/etc", exists: true)))
        #expect(resolve(ctx, "/") == .success(ConfinedPath(path: "/", exists: true)))
        #expect(resolve(ctx, s.outside) == .success(ConfinedPath(path: s.outside, exists: true)))
    }

    @Test func tildeRootsExpandToHome() {
        let s = ToolSandbox()
        let f = s.write("root/x", "x")
        // HOME is the sandbox root.
        let ctx = s.machine(roots: ["~"])
        #expect(ctx.confinement().roots == [s.root])
        #expect(resolve(ctx, f) == .success(ConfinedPath(path: f, exists: true)))
        #expect(resolve(ctx, s.outside) == .failure(.refused))
        // The default of the configuration is the home folder.
        let machine = ToolContext.machine(config: HappyConfig(homeDir: s.base + "/h"), environment: s.env)
        #expect(machine.confinement().roots == [s.root])
    }

    @Test func missingOrRelativeRootsAllowNothing() {
        let s = ToolSandbox()
        let ctx = s.machine(roots: ["relative/dir", s.base + "/missing"])
        #expect(ctx.confinement().roots.isEmpty)
        #expect(resolve(ctx, s.root) == .failure(.refused))
        #expect(resolve(ctx, "x") == .failure(.refused))
        #expect(s.machine(roots: []).confinement().resolve(s.root) == .failure(.refused))
    }

    @Test func theSessionScopeNeedsBothTheSessionFolderAndARoot() {
        let s = ToolSandbox()
        let proj = s.mkdir("root/proj")
        let inProj = s.write("root/proj/src/main.swift", "x")
        let inRoot = s.write("root/other/file", "x")
        let ctx = s.session(proj)
        #expect(resolve(ctx, inProj) == .success(ConfinedPath(path: inProj, exists: true)))
        // Relative paths start at the session folder.
        #expect(resolve(ctx, "src/main.swift") == .success(ConfinedPath(path: inProj, exists: true)))
        #expect(resolve(ctx, inRoot) == .failure(.refused))
        #expect(resolve(ctx, "../other/file") == .failure(.refused))
        // A session folder outside the roots: nothing, not even inside it.
        let outsideProj = s.mkdir("outside/proj")
        let f = s.write("outside/proj/file", "x")
        let out = s.session(outsideProj)
        #expect(resolve(out, f) == .failure(.refused))
        #expect(resolve(out, "file") == .failure(.refused))
    }

    @Test func everyToolRefusesOutsidePathsWithTheSameAnswer() async {
        let s = ToolSandbox()
        s.write("outside/secret", "s")
        let ctx = s.machine()
        let calls: [(String, JSON)] = [
            ("bash", ["command": "true", "cwd": .string(s.outside)]),
            ("readFile", ["path": .string(s.outside + "/secret")]),
            ("writeFile", ["path": .string(s.outside + "/new"), "content": "eA=="]),
            ("listDirectory", ["path": .string(s.outside)]),
            ("getDirectoryTree", ["path": .string(s.outside), "maxDepth": 1]),
            ("ripgrep", ["args": ["x"], "cwd": .string(s.outside)]),
            ("difftastic", ["args": ["a", "b"], "cwd": .string(s.outside)]),
        ]
        for (method, params) in calls {
            let o = await RPCTools.run(method, params: params, context: ctx)
            #expect(o?.audit == .refused, "\(method)")
            #expect(o?.result["success"] == false, "\(method)")
            #expect(o?.result["error"]?.string == refusal, "\(method)")
        }
        #expect(!FileIO.exists(s.outside + "/new"))
    }

    @Test func unresolvableInsidePathsAreErrorsNotRefusals() {
        let s = ToolSandbox()
        let ctx = s.machine()
        guard case .failure(.unusable(let m)) = resolve(ctx, "missing/dir/file") else {
            Issue.record("expected an error")
            return
        }
        #expect(m.contains("missing/dir/file"))
        guard case .failure(.unusable) = resolve(ctx, "bad\u{0}name") else {
            Issue.record("a NUL byte must be rejected")
            return
        }
    }
}
