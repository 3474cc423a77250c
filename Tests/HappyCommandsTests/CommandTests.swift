import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappyDaemon
@testable import HappyCommands
@testable import HappyTestSupport

/// Collects what an `Output` writes, per stream.
final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private var out = "", err = ""
    var stdout: String { lock.withLock { out } }
    var stderr: String { lock.withLock { err } }

    func output(tty: Bool = false, color: Bool = false) -> Output {
        Output(stdoutIsTTY: tty, stderrIsTTY: tty, colorEnabled: color) { stream, s in
            self.lock.withLock { if stream == .stdout { self.out += s } else { self.err += s } }
        }
    }
}

/// An environment without user profiles.
let isolatedEnv = ["HAPPY_PROFILES_DIR": "/nonexistent-happy-test", "XDG_CONFIG_HOME": "/nonexistent-happy-test",
                   "HOME": "/tmp", "NO_COLOR": "1"]

// Commands of a test tree.
final class Seen: @unchecked Sendable {
    let lock = NSLock()
    var values: [String] = []
    func add(_ s: String) { lock.withLock { values.append(s) } }
}
let seen = Seen()

enum Probe: Command {
    static let info = CommandInfo("probe", summary: "records its options", loadsConfig: false)
    enum Mode: String, CaseIterable, Sendable { case fast, slow }
    struct Options: CommandOptions {
        var target: String
        var count: Int
        var mode: Mode
        var dry: Bool
        var env: [String: String]
        var rest: [String]
        init(_ r: inout OptionReader) {
            target = r.argument("TARGET", help: "what")
            count = r.count("count", short: "n", default: 3, help: "how many")
            mode = r.choice("mode", default: .fast, help: "how")
            dry = r.flag("dry-run", help: "pretend")
            env = r.keyValues("env", help: "variables")
            rest = r.remainingArguments("REST", help: "more")
        }
    }
    static func run(_ o: Options, _ ctx: CommandContext) throws -> Int32 {
        seen.add("\(o.target) \(o.count) \(o.mode) \(o.dry) \(o.env.sorted { $0.key < $1.key }) \(o.rest) json=\(ctx.json)")
        return 7
    }
}

enum AsyncProbe: AsyncCommand {
    static let info = CommandInfo("async-probe", summary: "runs async")
    static func run(_ o: NoOptions, _ ctx: CommandContext) async throws -> Int32 {
        try await Task.sleep(nanoseconds: 1_000_000)
        throw ConfigError.homeNotWritable(path: "/x")
    }
}

let testTree = CommandSpec.group("happy", summary: "test",
                                 .group("g", summary: "a group", .command(Probe.self), .command(AsyncProbe.self)))

@Suite struct CommandTests {
    @Test func specComesFromTheOptionsDeclaration() throws {
        let probe = try #require(testTree.find(["g", "probe"]))
        #expect(probe.args.map(\.name) == ["TARGET", "REST"])
        #expect(probe.args[1].variadic && probe.args[1].optional)
        #expect(probe.flags.map(\.long) == ["count", "mode", "dry-run", "env"])
        #expect(probe.flags[0].short == "n" && probe.flags[0].value == .integer)
        #expect(probe.flags[1].value == .choices(["fast", "slow"]))
        #expect(probe.flags[3].repeatable && probe.flags[3].value == .keyValue)
        #expect(HelpText.usage(path: ["g", "probe"], tree: testTree)
                == "happy g probe TARGET [REST...] [--count N] [--mode fast|slow] [--dry-run] [--env KEY=VALUE]... [options]")
        // The real tree: a command's flags are the ones its Options declare.
        #expect(CommandTree.root.find(["daemon", "stop"])?.flags.map(\.long) == ["keep-sessions"])
        #expect(CommandTree.root.find(["logs", "audit"])?.flags.map(\.long) == ["lines", "follow"])
    }

    @Test func everyLeafRuns() {
        for (path, spec) in CommandTree.root.walk() where !spec.isGroup {
            #expect(spec.runner != nil, "\(path) has no runner")
        }
        for (path, spec) in CommandTree.root.walk() where spec.isGroup {
            #expect(!spec.children.isEmpty, "\(path) is an empty group")
        }
    }

    @Test func readmeTableHasEveryCommandWithAnExample() throws {
        let readme = try String(contentsOfFile: RepoPaths.root.path + "/README.md", encoding: .utf8)
        let rows = readme.split(separator: "\n").filter { $0.hasPrefix("| `") }.map { row in
            row.split(separator: "|", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        for (path, spec) in CommandTree.root.walk() where !spec.isGroup && !spec.hidden {
            let name = path.joined(separator: " ")
            let row = rows.first { $0.first?.hasPrefix("`\(name)") == true && $0.first?.dropFirst(name.count + 1).first.map { $0 == "`" || $0 == " " } == true }
            #expect(row != nil, "README's command table lacks `\(name)`")
            #expect(row.map { $0.count >= 2 && $0.last!.contains("happy ") } ?? false, "no example for `\(name)`")
        }
    }

    @Test func typedOptionsReachRun() async {
        let c = Captured()
        let code = await CLI.run(arguments: ["g", "probe", "x", "-n5", "--mode=slow", "--env", "A=1", "--env=B=2=3",
                                             "--json", "r1", "r2"], tree: testTree, env: isolatedEnv, out: c.output())
        #expect(code == 7)
        #expect(seen.values.contains(#"x 5 slow false [(key: "A", value: "1"), (key: "B", value: "2=3")] ["r1", "r2"] json=true"#))
        // Defaults when absent.
        #expect(await CLI.run(arguments: ["g", "probe", "y", "--dry-run"], tree: testTree, env: isolatedEnv, out: c.output()) == 7)
        #expect(seen.values.contains("y 3 fast true [] [] json=false"))
    }

    @Test func errorsMapToExitCodesAndRenderOnce() async {
        let c = Captured()
        // A thrown HappyError: exit 1, one line on stderr (async command through the sync entry too).
        #expect(await CLI.run(arguments: ["g", "async-probe"], tree: testTree, env: isolatedEnv, out: c.output()) == 1)
        #expect(await off { CLI.main(arguments: ["g", "async-probe"], tree: testTree, env: isolatedEnv, out: c.output()) } == 1)
        #expect(c.stderr.split(separator: "\n").count == 2 && c.stderr.hasPrefix("error: "))
        // Usage errors: exit 2.
        #expect(await CLI.run(arguments: ["g", "prob"], tree: testTree, env: isolatedEnv, out: c.output()) == 2)
        #expect(await CLI.run(arguments: ["g", "probe"], tree: testTree, env: isolatedEnv, out: c.output()) == 2)
        #expect(c.stderr.contains("did you mean 'probe'?") && c.stderr.contains("missing argument TARGET"))
        // Unknown profile: exit 2 before a configuration-loading command runs.
        #expect(await CLI.run(arguments: ["--profile", "nope", "g", "async-probe"], tree: testTree, env: isolatedEnv,
                              out: c.output()) == 2)
        #expect(c.stderr.contains("unknown profile 'nope'"))
        #expect(c.stdout.isEmpty)
    }

    @Test func helpAndVersionDoNotRun() async {
        let c = Captured()
        #expect(await CLI.run(arguments: ["g", "probe", "--help"], tree: testTree, env: isolatedEnv, out: c.output()) == 0)
        #expect(c.stdout.contains("Usage: happy g probe TARGET"))
        #expect(CLI.main(arguments: ["--version"], env: isolatedEnv, out: c.output()) == 0)
        #expect(c.stdout.contains("happy \(HappyVersion.current)\n"))
    }
}

@Suite struct OutputTests {
    @Test func terminalSafeStripsControlsAndSequences() {
        let cases: [(String, String)] = [
            ("plain text — ünïcode ✓", "plain text — ünïcode ✓"),
            ("a\tb\nc", "a\tb\nc"),
            ("box\u{1B}]0;evil\u{07}-1", "box-1"),                  // OSC title, BEL-terminated
            ("x\u{1B}]8;;http://e\u{1B}\\link\u{1B}]8;;\u{1B}\\y", "xlinky"),  // OSC 8, ST-terminated
            ("\u{1B}[31mred\u{1B}[0m", "red"),                       // CSI
            ("\u{1B}[2J\u{1B}[1;1Hclear", "clear"),
            ("a\u{1B}Pdcs data\u{1B}\\b", "ab"),                     // DCS
            ("a\u{1B}(Bb\u{1B}7c\u{1B}c", "abc"),                    // charset, save cursor, reset
            ("bell\u{07} bs\u{08} cr\r nul\u{0} del\u{7F}", "bell bs cr nul del"),
            ("c1\u{9B}31mcsi \u{9D}0;t\u{9C}osc \u{85}nel", "c1csi osc nel"),
            ("unterminated \u{1B}]0;forever", "unterminated "),
            ("trailing esc\u{1B}", "trailing esc"),
        ]
        for (input, expected) in cases {
            #expect(Output.terminalSafe(input) == expected, "\(input.debugDescription)")
        }
    }

    @Test func everyTextPathIsFilteredOnATerminalOnly() {
        let evil = "m\u{1B}]0;evil\u{07}\u{1B}[2J"
        for tty in [true, false] {
            let c = Captured()
            let out = c.output(tty: tty, color: tty)
            out.line(evil)
            out.write(evil + "\n")
            out.table(["ID"], [[evil]])
            out.styledLine(.colored(evil, .green), .plain(evil))
            out.errorLine(evil)
            out.warn(evil)
            out.prompt(evil)
            out.status(evil)
            if tty {
                #expect(!c.stdout.contains("evil") && !c.stdout.contains("[2J"))
                #expect(!c.stderr.contains("evil") && !c.stderr.contains("[2J"))
                // Output's own colour and the status line's erase survive.
                #expect(c.stdout.contains("\u{1B}[32mm\u{1B}[0m") && c.stdout.contains("\u{1B}[1mID\u{1B}[0m"))
                #expect(c.stderr.contains("\r\u{1B}[Km"))
            } else {
                // Pipes and files get the bytes as they are.
                #expect(c.stdout.components(separatedBy: "evil").count == 6)
                #expect(c.stderr.components(separatedBy: "evil").count == 4)  // the status line is for terminals only
            }
        }
    }

    @Test func oneJSONStyle() {
        let c = Captured()
        let out = c.output(tty: true)
        out.json(["b": 1, "a": ["x": "\u{1B}]0;t\u{07}"]])
        #expect(c.stdout == "{\n  \"a\": {\n    \"x\": \"\\u001b]0;t\\u0007\"\n  },\n  \"b\": 1\n}\n")
        let l = Captured()
        l.output().jsonLine(["b": 1, "a": 2])
        #expect(l.stdout == "{\"a\":2,\"b\":1}\n")
    }

    @Test func tableColoursAColumnWithoutBreakingAlignment() {
        let c = Captured()
        c.output(tty: true, color: true).table(["", "NAME"], [["*", "a"], [" ", "bb"]], colors: [0: .green])
        #expect(c.stdout == "\u{1B}[1m   NAME\u{1B}[0m\n\u{1B}[32m*\u{1B}[0m  a\n   bb\n")
    }
}

/// A transport that answers from a closure.
final class StubTransport: HTTPTransport, @unchecked Sendable {
    let handler: @Sendable (HTTPClientRequest) -> HTTPResponse
    init(_ handler: @escaping @Sendable (HTTPClientRequest) -> HTTPResponse) { self.handler = handler }
    func send(_ request: HTTPClientRequest) async throws -> HTTPResponse { handler(request) }
}

@Suite struct CommandOutputTests {
    /// A home logged in with legacy credentials whose machine record carries escape
    /// sequences in its metadata, served by a stub server.
    func machineFixture() throws -> (home: String, env: [String: String], transport: StubTransport) {
        let home = makeTempHome("cmd")
        let secret = SecureRandom.bytes(32)
        try CredentialsStore(home: HomeLayout(root: home)).write(.legacy(secret: secret, token: "tok"))
        let mid = try SettingsStore(home: HomeLayout(root: home)).ensureMachineId()
        let meta: JSON = ["host": "box\u{1B}]0;evil\u{07}\u{1B}[2J-1", "platform": "linux\u{9B}31m"]
        let record: JSON = [
            "id": .string(mid), "metadata": .string(Base64.encode(ValueCipher.encrypt(meta, key: secret, variant: .legacy))),
            "metadataVersion": 1, "daemonState": .null, "daemonStateVersion": 0, "dataEncryptionKey": .null,
            "seq": 1, "active": true, "activeAt": 1, "createdAt": 1, "updatedAt": 1,
        ]
        let t = StubTransport { req in
            let body: JSON = req.url.hasSuffix("/v1/machines") ? [record] : ["machine": record]
            return HTTPResponse(status: 200, body: body.bytes)
        }
        var env = isolatedEnv
        env["HAPPY_HOME_DIR"] = home
        env["HAPPY_SERVER_URL"] = "http://127.0.0.1:9"
        return (home, env, t)
    }

    @Test func machineMetadataCannotReachATerminal() async throws {
        let (home, env, t) = try machineFixture()
        defer { removeTree(home) }
        for args in [["machine", "show"], ["machine", "list"]] {
            let tty = Captured()
            #expect(await CLI.run(arguments: args, env: env, out: tty.output(tty: true), transport: t) == 0)
            #expect(tty.stdout.contains("box-1") && tty.stdout.contains("linux"), "\(tty.stdout)")
            #expect(!tty.stdout.contains("\u{1B}") && !tty.stdout.contains("\u{07}") && !tty.stdout.contains("\u{9B}")
                    && !tty.stdout.contains("evil"))
            // Piped: as is; --json: escaped by JSON.
            let pipe = Captured()
            #expect(await CLI.run(arguments: args, env: env, out: pipe.output(), transport: t) == 0)
            #expect(pipe.stdout.contains("box\u{1B}]0;evil\u{07}"))
            let json = Captured()
            #expect(await CLI.run(arguments: args + ["--json"], env: env, out: json.output(tty: true), transport: t) == 0)
            #expect(json.stdout.contains(#"box\u001b]0;evil\u0007"#) && json.stdout.hasPrefix("{\n  "))
        }
    }

    @Test func authStatusJSONIsPretty() async throws {
        let home = makeTempHome("cmd")
        defer { removeTree(home) }
        var env = isolatedEnv
        env["HAPPY_HOME_DIR"] = home
        let c = Captured()
        #expect(await CLI.run(arguments: ["auth", "status", "--offline", "--json"], env: env, out: c.output()) == 1)
        #expect(c.stdout == JSON.object(["authenticated": false, "encryption": .null, "machineId": .null,
                                         "serverUrl": "https://api.cluster-fluster.com", "tokenAccepted": .null])
            .serialized(pretty: true) + "\n")
    }

    @Test func logoutStopsNothingItDoesNotOwnAndKeepsOtherKeys() throws {
        let home = makeTempHome("cmd")
        defer { removeTree(home) }
        let layout = HomeLayout(root: home)
        try CredentialsStore(home: layout).write(.legacy(secret: SecureRandom.bytes(32), token: "tok"))
        try SettingsStore(home: layout).update { $0["machineId"] = "m"; $0["custom"] = true }
        var env = isolatedEnv
        env["HAPPY_HOME_DIR"] = home
        let c = Captured()
        let noTTY = Input(isTTY: false, readAll: { "" }, readLine: { nil })
        #expect(CLI.main(arguments: ["auth", "logout"], env: env, out: c.output(), input: noTTY) == 1)
        #expect(FileIO.exists(layout.accessKey))
        let yes = Input(isTTY: true, readAll: { "" }, readLine: { "y" })
        #expect(CLI.main(arguments: ["auth", "logout"], env: env, out: c.output(), input: yes) == 0)
        #expect(!FileIO.exists(layout.accessKey))
        let s = try SettingsStore(home: layout).read()
        #expect(s["machineId"] == nil && s["custom"] == true)
        #expect(c.stderr.contains("[y/N]") && c.stdout.contains("Logged out"))
    }
}
