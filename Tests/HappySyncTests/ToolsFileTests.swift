import Foundation
import Glibc
import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappySync

@Suite("Tools: readFile, writeFile, listDirectory, getDirectoryTree")
struct ToolsFileTests {
    func run(_ ctx: ToolContext, _ method: String, _ params: JSON) async -> ToolOutcome {
        await RPCTools.run(method, params: params, context: ctx)!
    }

    func b64(_ s: String) -> JSON { .string(Base64.encode(Array(s.utf8))) }

    func mode(_ p: String) -> mode_t { FileIO.mode(p) ?? 0 }

    /// Files whose name starts with a dot (temporary files) in a folder.
    func hidden(_ dir: String) -> [String] { FileManagerShim.listDirectory(dir).filter { $0.hasPrefix(".") } }

    // MARK: readFile

    @Test func readFileAnswersBase64() async {
        let s = ToolSandbox()
        s.write("root/a.txt", "héllo\u{0}bytes")
        let o = await run(s.machine(), "readFile", ["path": "a.txt"])
        #expect(toolKeys(o.result) == ["success", "content"])
        #expect(o.result["success"] == true)
        #expect(o.result["content"] == b64("héllo\u{0}bytes"))
        #expect(o.audit == .ok)
    }

    @Test func readFileErrors() async {
        let s = ToolSandbox()
        s.mkdir("root/dir")
        s.write("root/big", String(repeating: "x", count: 11))
        mkfifo(s.root + "/fifo", 0o600)
        var limits = ToolLimits()
        limits.maxFileBytes = 10
        let ctx = s.machine(limits: limits)
        for (path, needle) in [("missing.txt", "No such file"), ("dir", "directory"), ("big", "too large"),
                               ("fifo", "not a regular file")] {
            let o = await run(ctx, "readFile", ["path": .string(path)])
            #expect(toolKeys(o.result) == ["success", "error"], "\(path)")
            #expect(o.result["success"] == false)
            #expect(o.result["error"]?.string?.contains(needle) == true, "\(path): \(o.result)")
            #expect(o.audit == .error)
        }
        let bad = await run(ctx, "readFile", ["path": 1])
        #expect(bad.result == ["success": false, "error": "invalid params: path must be a string"])
    }

    // MARK: writeFile

    @Test func writeFileCreatesANewFile() async {
        let s = ToolSandbox()
        let o = await run(s.machine(), "writeFile", ["path": "new.txt", "content": b64("hello")])
        #expect(toolKeys(o.result) == ["success", "hash"])
        #expect(o.result["success"] == true)
        #expect(o.result["hash"]?.string == toolsSHA256Hex("hello"))
        #expect(s.read("root/new.txt") == "hello")
        // A user's file: 0666 minus the umask, like any file the user creates.
        let ref = open(s.root + "/reference", O_CREAT | O_WRONLY, 0o666)
        close(ref)
        #expect(mode(s.root + "/new.txt") == mode(s.root + "/reference"))
        #expect(hidden(s.root).isEmpty)
        // expectedHash null: the same "must be new" rule.
        let again = await run(s.machine(), "writeFile", ["path": "new.txt", "content": b64("x"), "expectedHash": nil])
        #expect(again.result == ["success": false, "error": "File already exists but was expected to be new"])
        #expect(s.read("root/new.txt") == "hello")
    }

    @Test func writeFileHashRules() async {
        let s = ToolSandbox()
        let p = s.write("root/f.txt", "old")
        chmod(p, 0o640)
        let ctx = s.machine()
        let missing = await run(ctx, "writeFile", ["path": "nope.txt", "content": b64("x"), "expectedHash": "00"])
        #expect(missing.result == ["success": false, "error": "File does not exist but hash was provided"])
        #expect(!FileIO.exists(s.root + "/nope.txt"))

        let wrong = String(repeating: "0", count: 64)
        let mismatch = await run(ctx, "writeFile", ["path": "f.txt", "content": b64("new"), "expectedHash": .string(wrong)])
        #expect(mismatch.result == ["success": false,
                                    "error": .string("File hash mismatch. Expected: \(wrong), Actual: \(toolsSHA256Hex("old"))")])
        #expect(s.read("root/f.txt") == "old")

        let ok = await run(ctx, "writeFile", ["path": "f.txt", "content": b64("new content"),
                                              "expectedHash": .string(toolsSHA256Hex("old"))])
        #expect(ok.result == ["success": true, "hash": .string(toolsSHA256Hex("new content"))])
        #expect(s.read("root/f.txt") == "new content")
        // The mode of the existing file is kept; no temporary file is left.
        #expect(mode(p) == 0o640)
        #expect(hidden(s.root).isEmpty)
    }

    @Test func writeFileTakesTheLongestNames() async {
        let s = ToolSandbox()
        let name = String(repeating: "n", count: 255)
        let o = await run(s.machine(), "writeFile", ["path": .string(name), "content": b64("x")])
        #expect(o.result["success"] == true)
        #expect(s.read("root/" + name) == "x")
        #expect(hidden(s.root).isEmpty)
    }

    @Test func writeFileIsAtomic() async {
        let s = ToolSandbox()
        let p = s.write("root/f.txt", "old")
        var before = stat()
        stat(p, &before)
        // A reader holding the old file keeps the old content: a new inode replaced it.
        let fd = open(p, O_RDONLY)
        defer { close(fd) }
        let o = await run(s.machine(), "writeFile", ["path": .string(p), "content": b64("new"),
                                                     "expectedHash": .string(toolsSHA256Hex("old"))])
        #expect(o.result["success"] == true)
        var after = stat()
        stat(p, &after)
        #expect(before.st_ino != after.st_ino)
        var buf = [UInt8](repeating: 0, count: 8)
        let n = read(fd, &buf, 8)
        #expect(String(decoding: buf[0..<max(0, n)], as: UTF8.self) == "old")
    }

    @Test func writeFileErrors() async {
        let s = ToolSandbox()
        let ctx = s.machine()
        let noFolder = await run(ctx, "writeFile", ["path": "missing/dir/f.txt", "content": b64("x")])
        #expect(noFolder.result["success"] == false && noFolder.audit == .error)
        let badB64 = await run(ctx, "writeFile", ["path": "f.txt", "content": "@@@"])
        #expect(badB64.result == ["success": false, "error": "content is not valid base64"])
        var limits = ToolLimits()
        limits.maxFileBytes = 4
        let big = await run(s.machine(limits: limits), "writeFile", ["path": "f.txt", "content": b64("12345")])
        #expect(big.result["error"]?.string?.contains("too large") == true)
        let params = await run(ctx, "writeFile", ["path": "f.txt"])
        #expect(params.result == ["success": false, "error": "invalid params: content is required"])
        let hashType = await run(ctx, "writeFile", ["path": "f.txt", "content": "", "expectedHash": 5])
        #expect(hashType.result["success"] == false)
        #expect(!FileIO.exists(s.root + "/f.txt"))
        #expect(hidden(s.root).isEmpty)
    }

    // MARK: listDirectory

    @Test func listDirectorySortsAndTypes() async throws {
        let s = ToolSandbox()
        s.write("root/d/b.txt", "12345")
        s.write("root/d/B.txt", "x")
        s.write("root/d/a.txt", "x")
        s.mkdir("root/d/zdir")
        s.mkdir("root/d/Adir")
        s.symlink(s.root + "/d/zdir", at: "root/d/link-to-dir")
        mkfifo(s.root + "/d/pipe", 0o600)
        let startMs = ISOTime.nowMs() - 5_000
        let o = await run(s.machine(), "listDirectory", ["path": "d"])
        #expect(toolKeys(o.result) == ["success", "entries"])
        let entries = try #require(o.result["entries"]?.array)
        #expect(entries.map { $0["name"]?.string ?? "" } == ["Adir", "zdir", "B.txt", "a.txt", "b.txt", "link-to-dir", "pipe"])
        #expect(entries.map { $0["type"]?.string ?? "" } == ["directory", "directory", "file", "file", "file", "other", "other"])
        let b = try #require(entries.first { $0["name"] == "b.txt" })
        #expect(toolKeys(b) == ["name", "type", "size", "modified"])
        #expect(b["size"] == 5)
        #expect((b["modified"]?.int ?? 0) >= Int(startMs))
        #expect((b["modified"]?.int ?? 0) <= Int(ISOTime.nowMs() + 5_000))
    }

    @Test func listDirectoryErrorsAndBound() async {
        let s = ToolSandbox()
        s.write("root/file", "x")
        let missing = await run(s.machine(), "listDirectory", ["path": "nope"])
        #expect(missing.result["success"] == false && toolKeys(missing.result) == ["success", "error"])
        let file = await run(s.machine(), "listDirectory", ["path": "file"])
        #expect(file.result["success"] == false)
        for i in 0..<6 { s.write("root/many/f\(i)", "x") }
        var limits = ToolLimits()
        limits.maxListEntries = 4
        let many = await run(s.machine(limits: limits), "listDirectory", ["path": "many"])
        #expect(many.result["entries"]?.array?.count == 4)
        #expect(many.result["truncated"] == true)
        #expect(many.result["entries"]?.array?.first?["name"] == "f0")
    }

    // MARK: getDirectoryTree

    func tree(_ s: ToolSandbox, _ depth: JSON, limits: ToolLimits = ToolLimits(), path: String = "t") async -> ToolOutcome {
        await run(s.machine(limits: limits), "getDirectoryTree", ["path": .string(path), "maxDepth": depth])
    }

    func makeTree(_ s: ToolSandbox) {
        s.write("root/t/a/deep/x.txt", "x")
        s.write("root/t/a/f.txt", "12")
        s.write("root/t/top.txt", "123")
        s.mkdir("root/t/b")
        s.symlink(s.outside, at: "root/t/escape")
    }

    @Test func treeDepthZeroIsTheNodeAlone() async throws {
        let s = ToolSandbox()
        makeTree(s)
        let o = await tree(s, 0)
        #expect(toolKeys(o.result) == ["success", "tree"])
        let t = try #require(o.result["tree"])
        #expect(toolKeys(t) == ["name", "path", "type", "size", "modified"])
        #expect(t["name"] == "t" && t["type"] == "directory")
        #expect(t["path"]?.string == s.root + "/t")
    }

    @Test func treeListsMaxDepthLevels() async throws {
        let s = ToolSandbox()
        makeTree(s)
        let one = try #require(await tree(s, 1).result["tree"])
        let kids = try #require(one["children"]?.array)
        // Directories first, then files; the symlink is skipped.
        #expect(kids.map { $0["name"]?.string ?? "" } == ["a", "b", "top.txt"])
        #expect(kids.allSatisfy { $0["children"] == nil })
        #expect(kids[2]["size"] == 3 && kids[2]["type"] == "file")
        #expect(kids[0]["path"]?.string == s.root + "/t/a")

        let two = try #require(await tree(s, 2).result["tree"])
        let a = try #require(two["children"]?.array?.first)
        #expect(a["children"]?.array?.map { $0["name"]?.string ?? "" } == ["deep", "f.txt"])
        #expect(a["children"]?.array?.first?["children"] == nil)
        let three = try #require(await tree(s, 3).result["tree"])
        #expect(try TreeNode(json: three).count == 7)
    }

    @Test func treeErrors() async {
        let s = ToolSandbox()
        makeTree(s)
        let neg = await tree(s, -1)
        #expect(neg.result == ["success": false, "error": "maxDepth must be non-negative"])
        let missing = await tree(s, 1, path: "nope")
        #expect(missing.result == ["success": false, "error": "Failed to access the specified path"])
        let noDepth = await run(s.machine(), "getDirectoryTree", ["path": "t"])
        #expect(noDepth.result == ["success": false, "error": "invalid params: maxDepth is required"])
    }

    @Test func treeIsBounded() async throws {
        let s = ToolSandbox()
        for i in 0..<5 { for j in 0..<5 { s.write("root/t/d\(i)/f\(j)", "x") } }
        var limits = ToolLimits()
        limits.maxTreeEntries = 8
        let o = await tree(s, 10, limits: limits)
        #expect(o.result["truncated"] == true)
        let t = try TreeNode(json: try #require(o.result["tree"]))
        #expect(t.count == 8)
        // Breadth first: the first level is complete.
        #expect(t.children?.count == 5)
        // A huge depth is clamped, not recursed into.
        let deep = await tree(s, 1_000_000_000)
        #expect(deep.result["success"] == true)
    }
}
