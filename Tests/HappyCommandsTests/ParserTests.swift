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

@Suite struct ParserTests {
    func run(_ a: [String]) throws -> ParsedCommand {
        guard case .run(let p) = try ArgumentParser.parse(a) else {
            Issue.record("expected a runnable command for \(a)")
            return ParsedCommand(path: [])
        }
        return p
    }

    func usageError(_ a: [String]) -> CLIError? {
        do {
            _ = try ArgumentParser.parse(a)
            return nil
        } catch let e as CLIError {
            return e
        } catch {
            return nil
        }
    }

    @Test func globalsBeforeAndAfterSubcommand() throws {
        let a = try run(["--profile", "dev", "--json", "daemon", "status", "--home-dir", "/tmp/h", "--verbose"])
        #expect(a.path == ["daemon", "status"])
        #expect(a.globals.profile == "dev" && a.globals.homeDir == "/tmp/h" && a.globals.json && a.globals.verbose)
        let b = try run(["daemon", "--server-url=http://x:1", "status"])
        #expect(b.globals.serverUrl == "http://x:1" && b.path == ["daemon", "status"])
    }

    @Test func equalsFormAndSpaceForm() throws {
        let a = try run(["auth", "login", "--method=web", "--force"])
        #expect(a.value("method") == "web" && a.flag("force") && !a.flag("secret-stdin"))
        let b = try run(["auth", "login", "--method", "mobile"])
        #expect(b.value("method") == "mobile")
        let c = try run(["--profile=", "profile", "list"])
        #expect(c.globals.profile == "")
    }

    @Test func positionalsRepeatableAndShortFlags() throws {
        let a = try run(["session", "new", "/tmp/x", "--env", "A=1", "--env=B=2=3", "--prompt", "hi there", "--create-dir"])
        #expect(a.argument("DIRECTORY") == "/tmp/x")
        #expect(a.values("env") == ["A=1", "B=2=3"] && a.value("prompt") == "hi there" && a.flag("create-dir"))
        let b = try run(["logs", "tail", "-n", "5", "-f"])
        #expect(b.value("lines") == "5" && b.flag("follow"))
        let c = try run(["session", "send", "abc", "--", "--not-a-flag"])
        #expect(c.argument("SESSION_ID") == "abc" && c.argument("TEXT") == "--not-a-flag")
        let d = try run(["session", "new"])
        #expect(d.argument("DIRECTORY") == nil)
    }

    @Test func shortFlagWithAttachedValue() throws {
        let a = try run(["logs", "tail", "-n5", "-f"])
        #expect(a.value("lines") == "5" && a.flag("follow"))
        #expect(usageError(["logs", "tail", "-nx"]) != nil)
        #expect(usageError(["logs", "tail", "-fx"]) != nil)
    }

    @Test func didYouMeanCommandsAndFlags() {
        guard case .unknownCommand(let n, _, let s, _)? = usageError(["sesion", "list"]) else {
            Issue.record("expected unknown command"); return
        }
        #expect(n == "sesion" && s == "session")
        guard case .unknownCommand(_, _, let s2, _)? = usageError(["daemon", "stpo"]) else {
            Issue.record("expected unknown command"); return
        }
        #expect(s2 == "stop")
        guard case .unknownFlag(let f, _, let s3)? = usageError(["auth", "login", "--forse"]) else {
            Issue.record("expected unknown flag"); return
        }
        #expect(f == "--forse" && s3 == "--force")
        guard case .unknownFlag(_, _, let s4)? = usageError(["profile", "list", "--jsno"]) else {
            Issue.record("expected unknown flag"); return
        }
        #expect(s4 == "--json")
        guard case .unknownCommand(_, _, let none, _)? = usageError(["zzzzzzzz"]) else {
            Issue.record("expected unknown command"); return
        }
        #expect(none == nil)
        #expect(renderError(usageError(["sesion"])!).contains("did you mean 'session'?"))
    }

    @Test func usageErrorsExitTwo() {
        let cases: [[String]] = [
            ["nope"], ["daemon"], ["daemon", "start", "--bogus"], ["session", "stop"], ["session", "send", "id"],
            ["auth", "login", "--method"], ["auth", "login", "--method", "fax"], ["--profile"],
            ["logs", "tail", "-n", "x"], ["session", "new", "--env", "NOEQUALS"], ["completions", "tcsh"],
            ["auth", "login", "--force=yes"], ["machine", "show", "a", "b"], ["session", "new", "--prompt", "a", "--prompt", "b"],
        ]
        for c in cases {
            let e = usageError(c)
            #expect(e != nil, "\(c) should be a usage error")
            #expect(e?.exitCode == 2, "\(c)")
        }
    }

    @Test func helpAndVersion() throws {
        #expect(try ArgumentParser.parse(["--version"]) == .version)
        #expect(try ArgumentParser.parse(["daemon", "status", "--version"]) == .version)
        #expect(try ArgumentParser.parse([]) == .help(path: [], globals: GlobalOptions()))
        guard case .help(let p, _) = try ArgumentParser.parse(["session", "stop", "-h"]) else {
            Issue.record("expected help"); return
        }
        #expect(p == ["session", "stop"])
        guard case .help(let p2, _) = try ArgumentParser.parse(["daemon", "--help"]) else {
            Issue.record("expected help"); return
        }
        #expect(p2 == ["daemon"])
    }

    @Test func editDistance() {
        #expect(ArgumentParser.editDistance("kitten", "sitting") == 3)
        #expect(ArgumentParser.editDistance("stpo", "stop") == 1)
        #expect(ArgumentParser.editDistance("", "abc") == 3)
    }

    @Test func everySpecCommandExists() {
        let paths = Set(CommandTree.leafPaths)
        for p in ["auth login", "auth status", "auth logout", "machine show", "machine list", "daemon start",
                  "daemon start-sync", "daemon restart", "daemon stop", "daemon status", "daemon install",
                  "daemon uninstall", "session new", "session list", "session stop", "session send", "session logs",
                  "logs tail", "logs list", "logs path", "profile list", "profile show", "profile path",
                  "completions", "doctor", "__complete"] {
            #expect(paths.contains(p), "missing \(p)")
        }
        #expect(CommandTree.root.find(["__complete"])?.hidden == true)
    }
}

@Suite struct HelpTests {
    @Test func rootHelpListsVisibleCommandsOnly() {
        let h = HelpText.render(path: [])
        for c in ["auth", "machine", "daemon", "session", "logs", "profile", "completions", "doctor", "--profile NAME",
                  "--version", "-h, --help"] {
            #expect(h.contains(c), "root help lacks \(c)")
        }
        #expect(!h.contains("__complete"))
    }

    @Test func commandHelpShowsUsageArgsAndFlags() {
        let h = HelpText.render(path: ["session", "logs"])
        #expect(h.contains("Usage: happy session logs SESSION_ID [--follow] [--raw] [options]"))
        #expect(h.contains("-f, --follow"))
        #expect(h.contains("SESSION_ID"))
        let l = HelpText.render(path: ["auth", "login"])
        #expect(l.contains("--method mobile|web"))
    }

    @Test func tableIsAligned() {
        let t = Output.formatTable(["A", "LONGER"], [["xxxx", "y"], ["z", ""]])
        #expect(t == "A     LONGER\nxxxx  y\nz\n")
    }
}

