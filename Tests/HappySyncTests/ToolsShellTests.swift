import Foundation
import Glibc
import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappySync

@Suite("Tools: bash, ripgrep, difftastic")
struct ToolsShellTests {
    func bash(_ ctx: ToolContext, _ params: JSON) async -> ToolOutcome {
        await RPCTools.run("bash", params: params, context: ctx)!
    }

    // MARK: bash

    @Test func bashSuccessShape() async {
        let s = ToolSandbox()
        let o = await bash(s.machine(), ["command": "echo hello; echo warn >&2"])
        #expect(toolKeys(o.result) == ["success", "stdout", "stderr", "exitCode"])
        #expect(o.result["success"] == true)
        #expect(o.result["stdout"] == "hello\n")
        #expect(o.result["stderr"] == "warn\n")
        #expect(o.result["exitCode"] == 0)
        #expect(o.audit == .ok)
    }

    @Test func bashNonZeroExitIsAFailureWithItsCode() async {
        let s = ToolSandbox()
        let o = await bash(s.machine(), ["command": "echo partial; exit 3"])
        #expect(toolKeys(o.result) == ["success", "stdout", "stderr", "exitCode", "error"])
        #expect(o.result["success"] == false)
        #expect(o.result["exitCode"] == 3)
        #expect(o.result["stdout"] == "partial\n")
        #expect(o.result["error"]?.string?.isEmpty == false)
        #expect(o.audit == .error)
    }

    @Test func bashRunsInTheFirstRootOrTheSessionFolderByDefault() async {
        let s = ToolSandbox()
        let other = s.mkdir("other-root")
        let o = await bash(s.machine(roots: [s.root, other]), ["command": "pwd"])
        #expect(o.result["stdout"]?.string == s.root + "\n")
        let proj = s.mkdir("root/proj")
        let p = await bash(s.session(proj), ["command": "pwd"])
        #expect(p.result["stdout"]?.string == proj + "\n")
        // An explicit, relative cwd starts there too.
        s.mkdir("root/proj/sub")
        let q = await bash(s.session(proj), ["command": "pwd", "cwd": "sub"])
        #expect(q.result["stdout"]?.string == proj + "/sub\n")
        // A cwd that is not a folder is an error, not a refusal.
        s.write("root/proj/f", "x")
        let r = await bash(s.session(proj), ["command": "pwd", "cwd": "f"])
        #expect(r.result["success"] == false && r.audit == .error)
    }

    @Test func bashGetsTheContextsEnvironment() async {
        let s = ToolSandbox()
        var env = s.env
        env["HAPPY_TOOL_TEST"] = "value 1"
        let o = await bash(s.machine(env: env), ["command": "printf '%s' \"$HAPPY_TOOL_TEST\""])
        #expect(o.result["stdout"] == "value 1")
    }

    @Test func bashTimeoutKillsTheGroupAndAnswersInTime() async throws {
        let s = ToolSandbox()
        let started = MonotonicClock.now()
        let o = await bash(s.machine(), ["command": "sleep 60 & echo $!; sleep 60",
                                           "timeout": .number(1000 * toolsTimeScale)])
        // Done vs hung: the answer comes after about 1 s; 30 s holds on a loaded machine.
        #expect(MonotonicClock.now() - started < 30 * toolsTimeScale)
        #expect(o.result["success"] == false)
        #expect(o.result["error"] == "Command timed out")
        #expect(o.result["exitCode"] == -1)
        #expect(o.audit == .error)
        let bg = try #require(Int32(o.result["stdout"]?.string?.trimmed ?? ""))
        #expect(await toolsEventually(5) {
            let st = ProcessProbe.readStat(bg)?.state
            return st == nil || st == "Z"
        })
    }

    @Test func bashOutputIsCappedAtOneMiBPerStream() async {
        let s = ToolSandbox()
        let o = await bash(s.machine(), ["command": "head -c 3145728 /dev/zero | tr '\\0' a; echo done >&2"])
        #expect(o.result["success"] == true)
        #expect(o.result["stdout"]?.string?.utf8.count == 1 << 20)
        #expect(o.result["stdoutTruncated"] == true)
        #expect(o.result["stderr"] == "done\n")
        #expect(o.result["stderrTruncated"] == nil)
    }

    @Test func bashLeavesNoDescriptorOrZombie() async {
        let s = ToolSandbox()
        let ctx = s.machine()
        let before = toolsOpenFDCount()
        for _ in 0..<100 {
            let o = await bash(ctx, ["command": "echo $$"])
            if let pid = Int32(o.result["stdout"]?.string?.trimmed ?? "") {
                #expect(ProcessProbe.readStat(pid)?.state != "Z")
            }
        }
        // A leak would be 3 descriptors per run (300) and permanent. The count is the
        // whole test process's, and other suites run alongside (hundreds of sockets at
        // times): the lowest count seen while they settle, against half a leak.
        #expect(await toolsSettledFDCount(below: before + 150) - before < 150)
    }

    @Test func bashBadParamsAnswerInTheResult() async {
        let s = ToolSandbox()
        for params: JSON in [["command": 5], [:], "text", ["command": "true", "timeout": "1s"], ["command": "true", "cwd": 3]] {
            let o = await bash(s.machine(), params)
            #expect(o.result["success"] == false)
            #expect(o.result["error"]?.string?.hasPrefix("invalid params: ") == true)
            #expect(o.result["stdout"] == "" && o.result["exitCode"] == -1)
            #expect(o.audit == .error)
        }
        // null is absent.
        let o = await bash(s.machine(), ["command": "true", "cwd": nil, "timeout": nil])
        #expect(o.result["success"] == true)
    }

    @Test func bashRefusalKeepsTheBashShape() async {
        let s = ToolSandbox()
        let o = await bash(s.machine(), ["command": "true", "cwd": "/"])
        #expect(o.result["success"] == false)
        #expect(o.result["error"] == "path outside the allowed roots (rpc.roots)")
        #expect(toolKeys(o.result) == ["success", "stdout", "stderr", "exitCode", "error"])
        #expect(o.audit == .refused)
    }

    // MARK: ripgrep / difftastic

    /// A folder on PATH with fake `rg` and `difft` scripts that echo what they got.
    func fakeBin(_ s: ToolSandbox, exit: Int = 0) -> String {
        let bin = s.mkdir("bin")
        for name in ["rg", "difft"] {
            let p = s.write("bin/" + name,
                            "#!/bin/sh\necho \"\(name) args:$*\"\necho \"cwd:$(pwd)\"\necho \"color:$FORCE_COLOR\"\necho err >&2\nexit \(exit)\n")
            chmod(p, 0o755)
        }
        return bin
    }

    @Test func ripgrepRunsTheToolFoundOnPATHWithoutAShell() async {
        let s = ToolSandbox()
        let bin = fakeBin(s, exit: 1)
        s.mkdir("root/src")
        var env = s.env
        env["PATH"] = bin + ":/usr/bin:/bin"
        let o = await RPCTools.run("ripgrep", params: ["args": ["-n", "a b", "$HOME;x"], "cwd": "src"],
                                   context: s.machine(env: env))!
        #expect(toolKeys(o.result) == ["success", "exitCode", "stdout", "stderr"])
        // Exit 1 ("no matches") is still a success, as in the original.
        #expect(o.result["success"] == true)
        #expect(o.result["exitCode"] == 1)
        #expect(o.result["stdout"] == .string("rg args:-n a b $HOME;x\ncwd:\(s.root)/src\ncolor:\n"))
        #expect(o.result["stderr"] == "err\n")
        #expect(o.audit == .ok)
    }

    @Test func difftasticRunsWithForceColor() async {
        let s = ToolSandbox()
        let bin = fakeBin(s)
        var env = s.env
        env["PATH"] = bin
        let o = await RPCTools.run("difftastic", params: ["args": ["a.txt", "b.txt"]], context: s.machine(env: env))!
        #expect(o.result["success"] == true)
        #expect(o.result["exitCode"] == 0)
        #expect(o.result["stdout"] == .string("difft args:a.txt b.txt\ncwd:\(s.root)\ncolor:1\n"))
    }

    @Test func aMissingToolSaysSo() async {
        let s = ToolSandbox()
        var env = s.env
        env["PATH"] = s.mkdir("empty-bin")
        let rg = await RPCTools.run("ripgrep", params: ["args": ["x"]], context: s.machine(env: env))!
        #expect(rg.result == ["success": false,
                              "error": "ripgrep (rg) is not installed on this machine — install it to search files from the app"])
        #expect(rg.audit == .error)
        let d = await RPCTools.run("difftastic", params: ["args": ["a", "b"]], context: s.machine(env: env))!
        #expect(d.result["success"] == false)
        #expect(d.result["error"]?.string?.hasPrefix("difftastic (difft) is not installed on this machine") == true)
    }

    @Test func externalToolBadParams() async {
        let s = ToolSandbox()
        for params: JSON in [["args": [1]], ["args": "x"], [:], ["args": ["x"], "cwd": 1]] {
            let o = await RPCTools.run("ripgrep", params: params, context: s.machine())!
            #expect(o.result["success"] == false)
            #expect(o.result["error"]?.string?.hasPrefix("invalid params: ") == true)
        }
    }

    @Test func aRealRipgrepWhenInstalled() async throws {
        let s = ToolSandbox()
        guard ExecutableLookup.resolve("rg", path: s.env["PATH"]) != nil else { return }
        s.write("root/a.txt", "needle here\nhay\n")
        let hit = await RPCTools.ripgrep(RipgrepParams(args: ["-n", "needle"]), context: s.machine())
        #expect(hit.success && hit.exitCode == 0)
        #expect(hit.stdout?.contains("a.txt:1:needle here") == true)
        let miss = await RPCTools.ripgrep(RipgrepParams(args: ["absent-word"]), context: s.machine())
        #expect(miss.success && miss.exitCode == 1 && miss.stdout == "")
    }
}
