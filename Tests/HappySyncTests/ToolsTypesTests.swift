import Testing
@testable import HappyCore
@testable import HappySync

@Suite("Tools: typed params and results")
struct ToolsTypesTests {
    func error(_ body: () throws -> Void) -> String? {
        do { try body() } catch let e as ToolDecodeError { return e.what } catch { return "another error: \(error)" }
        return nil
    }

    @Test func paramsDecode() throws {
        #expect(try BashParams(json: ["command": "ls", "cwd": "/x", "timeout": 1500])
                == BashParams(command: "ls", cwd: "/x", timeoutMs: 1500))
        #expect(try BashParams(json: ["command": "ls", "cwd": nil]) == BashParams(command: "ls"))
        #expect(try ReadFileParams(json: ["path": "a"]).path == "a")
        #expect(try WriteFileParams(json: ["path": "a", "content": "eA==", "expectedHash": nil])
                == WriteFileParams(path: "a", content: "eA==", expectedHash: nil))
        #expect(try WriteFileParams(json: ["path": "a", "content": "", "expectedHash": "ab"]).expectedHash == "ab")
        #expect(try ListDirectoryParams(json: ["path": "."]).path == ".")
        #expect(try GetDirectoryTreeParams(json: ["path": ".", "maxDepth": 2]).maxDepth == 2)
        #expect(try GetDirectoryTreeParams(json: ["path": ".", "maxDepth": 1.5]).maxDepth == 2)
        #expect(try GetDirectoryTreeParams(json: ["path": ".", "maxDepth": -3]).maxDepth == -1)
        #expect(try ExternalToolParams(json: ["args": ["-n", "x"], "cwd": "s"]) == ExternalToolParams(args: ["-n", "x"], cwd: "s"))
    }

    @Test func paramsRejectWrongShapes() {
        #expect(error { _ = try BashParams(json: "x") } == "invalid params: expected an object")
        #expect(error { _ = try BashParams(json: [:]) } == "invalid params: command is required")
        #expect(error { _ = try BashParams(json: ["command": true]) } == "invalid params: command must be a string")
        #expect(error { _ = try BashParams(json: ["command": "x", "timeout": "5"]) } == "invalid params: timeout must be a number")
        #expect(error { _ = try BashParams(json: ["command": "x", "timeout": -1]) } == "invalid params: timeout must not be negative")
        #expect(error { _ = try ReadFileParams(json: ["path": ["a"]]) } == "invalid params: path must be a string")
        #expect(error { _ = try WriteFileParams(json: ["path": "a", "content": "", "expectedHash": 1]) }
                == "invalid params: expectedHash must be a string")
        #expect(error { _ = try GetDirectoryTreeParams(json: ["path": "a", "maxDepth": "2"]) }
                == "invalid params: maxDepth must be a number")
        #expect(error { _ = try ExternalToolParams(json: ["args": ["a", 2]]) } == "invalid params: args must be an array of strings")
        #expect(error { _ = try ExternalToolParams(json: ["cwd": "a"]) } == "invalid params: args is required")
    }

    @Test func paramsRoundTrip() throws {
        let b = BashParams(command: "ls", cwd: "c", timeoutMs: 10)
        #expect(try BashParams(json: b.json) == b)
        let w = WriteFileParams(path: "p", content: "eA==", expectedHash: "h")
        #expect(try WriteFileParams(json: w.json) == w)
        let t = GetDirectoryTreeParams(path: "p", maxDepth: 3)
        #expect(try GetDirectoryTreeParams(json: t.json) == t)
        let e = ExternalToolParams(args: ["a"], cwd: nil)
        #expect(try ExternalToolParams(json: e.json) == e)
        #expect(toolKeys(e.json) == ["args"])
    }

    @Test func resultsRoundTripWithTheWireKeys() throws {
        let bash = BashResult(success: false, stdout: "o", stderr: "e", exitCode: 2, error: "x", stdoutTruncated: true)
        #expect(toolKeys(bash.json) == ["success", "stdout", "stderr", "exitCode", "error", "stdoutTruncated"])
        #expect(try BashResult(json: bash.json) == bash)

        let read = ReadFileResult(success: true, content: "eA==")
        #expect(read.json == ["success": true, "content": "eA=="])
        #expect(try ReadFileResult(json: read.json) == read)

        let write = WriteFileResult(success: true, hash: "ab")
        #expect(write.json == ["success": true, "hash": "ab"])
        #expect(try WriteFileResult(json: write.json) == write)

        let list = ListDirectoryResult(success: true, entries: [DirectoryEntry(name: "a", type: .other, size: 1, modified: 2)])
        #expect(list.json == ["success": true, "entries": [["name": "a", "type": "other", "size": 1, "modified": 2]]])
        #expect(try ListDirectoryResult(json: list.json) == list)

        let tree = GetDirectoryTreeResult(success: true, tree: TreeNode(name: "r", path: "/r", type: .directory, size: 1,
                                                                        modified: 2, children: [TreeNode(name: "f", path: "/r/f", type: .file)]))
        #expect(try GetDirectoryTreeResult(json: tree.json) == tree)
        #expect(toolKeys(tree.json["tree"]?["children"]?.array?.first ?? nil) == ["name", "path", "type"])

        let rg = ExternalToolResult(success: true, exitCode: 1, stdout: "", stderr: "")
        #expect(toolKeys(rg.json) == ["success", "exitCode", "stdout", "stderr"])
        #expect(try ExternalToolResult(json: rg.json) == rg)
        #expect(ExternalToolResult.failure("nope").json == ["success": false, "error": "nope"])
    }

    @Test func auditResultsFollowTheOutcome() {
        #expect(BashResult(success: true, exitCode: 0).auditResult == .ok)
        #expect(BashResult(success: false, exitCode: 1, error: "x").auditResult == .error)
        #expect(BashResult.failure(PathConfinement.refusal).auditResult == .refused)
        #expect(ExternalToolResult(success: true, exitCode: 1).auditResult == .ok)
        #expect(ExternalToolResult(success: true, exitCode: 2).auditResult == .error)
        #expect(ReadFileResult.failure(PathConfinement.refusal).auditResult == .refused)
    }
}
