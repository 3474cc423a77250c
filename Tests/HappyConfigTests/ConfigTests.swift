import Foundation
import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappyTestSupport

/// A temp folder removed at deinit.
@Suite struct YAMLReaderTests {
    @Test func parsesNestedWithPositions() throws {
        let n = try YAMLReader.parse("a: 1\nb:\n  c: [x, 'y']\n  d: \"q\"\n", file: "t.yaml")
        guard case .mapping(let pairs) = n.kind else { Issue.record("not a mapping"); return }
        #expect(pairs.map { $0.key.scalar } == ["a", "b"])
        #expect(pairs[0].value.line == 1 && pairs[0].value.column == 4)
        guard case .mapping(let inner) = pairs[1].value.kind else { Issue.record("not a mapping"); return }
        #expect(inner[0].key.line == 3 && inner[0].key.column == 3)
        guard case .sequence(let items) = inner[0].value.kind else { Issue.record("not a list"); return }
        #expect(items.map { $0.kind } == [.scalar("x", plain: true), .scalar("y", plain: false)])
    }

    @Test func syntaxErrorNamesFileLineColumn() {
        do {
            _ = try YAMLReader.parse("a: 1\nb: [1, 2\nc: 3\n", file: "/p/bad.yaml")
            Issue.record("expected an error")
        } catch let e as YAMLError {
            #expect(e.file == "/p/bad.yaml")
            #expect(e.line == 3)
            #expect(e.column >= 1)
            #expect(renderError(e).hasPrefix("error: /p/bad.yaml:3:"))
        } catch { Issue.record("wrong error \(error)") }
        do {
            _ = try YAMLReader.parse("key: value\n  bad: indent\n", file: "f.yaml")
            Issue.record("expected an error")
        } catch let e as YAMLError {
            #expect(e.line == 2 && e.column == 6)
        } catch { Issue.record("wrong error \(error)") }
        #expect(throws: YAMLError.self) { try YAMLReader.parse("a: 1\na: 2\n", file: "dup.yaml") }
        #expect(throws: YAMLError.self) { try YAMLReader.parse("\t- x", file: "tab.yaml") }
    }

    @Test func emptyDocumentIsEmptyMapping() throws {
        #expect(try YAMLReader.parse("", file: "e").kind == .mapping([]))
        #expect(try YAMLReader.parse("# only a comment\n", file: "e").kind == .mapping([]))
    }
}

@Suite struct ProfileTests {
    @Test func wrongTypeNamesKeyAndExpectedType() {
        func err(_ yaml: String) -> String {
            do {
                _ = try ProfileSchema.load(name: "t", origin: .file("/x/t.yaml"), text: yaml)
                return ""
            } catch { return renderError(error) }
        }
        #expect(err("daemon:\n  httpPort: abc\n").contains("/x/t.yaml:2:13: daemon.httpPort must be an integer between 0 and 65535"))
        #expect(err("daemon:\n  httpPort: 70000\n").contains("daemon.httpPort"))
        #expect(err("daemon: 5\n").contains("daemon must be a mapping"))
        #expect(err("sessions:\n  max: 1.5\n").contains("sessions.max must be a positive integer"))
        #expect(err("daemon:\n  heartbeatSeconds: 0\n").contains("daemon.heartbeatSeconds must be a positive number"))
        #expect(err("claude:\n  args: notalist\n").contains("claude.args must be a list of strings"))
        #expect(err("serverUrl: ftp://x\n").contains("serverUrl must be an http:// or https:// URL"))
        #expect(err("env: [a]\n").contains("env must be a mapping of names to strings"))
        #expect(err("- a\n").contains("must be a mapping"))
    }

    @Test func fractionalNumbersAndUnknownKeyWarnings() throws {
        let p = try ProfileSchema.load(name: "t", origin: .file("/x/t.yaml"), text: """
            daemon:
              logMaxMiB: 0.05
              heartbeatSeconds: 0.5
              bogus: 1
            sessions:
              idleTimeoutMinutes: 0.05
              maxOutputMiB: 0.1
            colour: blue
            """)
        #expect(p.values["daemon.logMaxMiB"] == .number(0.05))
        #expect(p.values["sessions.idleTimeoutMinutes"] == .number(0.05))
        #expect(p.warnings.count == 2)
        #expect(p.warnings[0].contains("/x/t.yaml:4:3: unknown key 'daemon.bogus'"))
        #expect(p.warnings[1].contains("unknown key 'colour'"))
    }

    @Test func builtinsEmbeddedMatchFiles() throws {
        let dir = RepoPaths.profiles
        let files = FileManagerShim.listDirectory(dir).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files == ["default.yaml", "dev.yaml", "local.yaml"])
        #expect(Set(BuiltinProfiles.all.keys) == Set(files.map { String($0.dropLast(5)) }))
        for f in files {
            let text = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            #expect(BuiltinProfiles.all[String(f.dropLast(5))] == text,
                    "profiles/\(f) drifted from BuiltinProfiles.swift: run scripts/gen-builtin-profiles.sh")
            let p = try ProfileSchema.load(name: f, origin: .builtIn, text: text)
            #expect(p.warnings.isEmpty && p.description != nil)
        }
    }

    @Test func builtinValues() throws {
        let t = TempDir()
        let l = ConfigLoader(env: t.env, cwd: "/")
        let d = try l.resolve()
        #expect(d.config.profile == "default" && d.config.serverUrl == "https://api.cluster-fluster.com")
        #expect(d.config.homeDir == t.path + "/home/.happy" && d.config.daemon.httpPort == 64875)
        let dev = try l.resolve(profile: "dev")
        #expect(dev.config.serverUrl == "http://localhost:3005" && dev.config.homeDir == t.path + "/home/.happy-dev")
        #expect(dev.config.daemon.httpPort == 64876)
        #expect(dev.sources["serverUrl"] == SettingSource(.profile, "built-in"))
        #expect(dev.sources["daemon.heartbeatSeconds"] == SettingSource(.default, "built-in"))
        #expect(try l.resolve(profile: "local").config.homeDir.hasSuffix("/.happy-local"))
    }
}

@Suite struct ConfigLoaderTests {
    @Test func searchOrderFirstMatchWins() throws {
        let t = TempDir()
        let xdgFile = t.write("xdg/happy/profiles/dev.yaml", "serverUrl: http://xdg:1\n")
        var l = ConfigLoader(env: t.env, cwd: "/")
        #expect(try l.resolve(profile: "dev").config.serverUrl == "http://xdg:1")
        #expect(try l.resolve(profile: "dev").sources["serverUrl"] == SettingSource(.profile, xdgFile))
        let envFile = t.write("profiles/dev.yaml", "serverUrl: http://envdir:2\n")
        #expect(try l.resolve(profile: "dev").config.serverUrl == "http://envdir:2")
        #expect(try l.resolve(profile: "dev").sources["serverUrl"]?.from == envFile)
        // Default XDG location is ~/.config when XDG_CONFIG_HOME is unset.
        l.env["XDG_CONFIG_HOME"] = nil
        l.env["HAPPY_PROFILES_DIR"] = nil
        _ = t.write("home/.config/happy/profiles/mine.yaml", "description: mine\n")
        #expect(try l.resolve(profile: "mine").profile.description == "mine")
        let names = l.locator.available().map(\.0)
        #expect(names == ["default", "dev", "local", "mine"])
    }

    @Test func selectionAndPrecedence() throws {
        let t = TempDir()
        let file = t.write("profiles/p.yaml", "serverUrl: http://profile:1\nhomeDir: ~/ph\nwebappUrl: http://web:1\n")
        var env = t.env
        env["HAPPY_PROFILE"] = "p"
        var l = ConfigLoader(env: env, cwd: "/work")
        var r = try l.resolve()
        #expect(r.config.profile == "p" && r.config.serverUrl == "http://profile:1")
        #expect(r.config.homeDir == t.path + "/home/ph")
        #expect(r.sources["homeDir"] == SettingSource(.profile, file))
        // env beats profile
        l.env["HAPPY_SERVER_URL"] = "http://env:2"
        l.env["HAPPY_WEBAPP_URL"] = "http://envweb:2"
        l.env["HAPPY_HOME_DIR"] = "rel/home"
        r = try l.resolve()
        #expect(r.config.serverUrl == "http://env:2" && r.sources["serverUrl"] == SettingSource(.env, "HAPPY_SERVER_URL"))
        #expect(r.config.webappUrl == "http://envweb:2" && r.sources["webappUrl"] == SettingSource(.env, "HAPPY_WEBAPP_URL"))
        #expect(r.config.homeDir == "/work/rel/home")
        // flags beat env; --profile beats HAPPY_PROFILE
        r = try l.resolve(profile: "dev", serverUrl: "http://flag:3/", homeDir: "~/flaghome")
        #expect(r.config.profile == "dev")
        #expect(r.config.serverUrl == "http://flag:3" && r.sources["serverUrl"] == SettingSource(.flag, "--server-url"))
        #expect(r.config.homeDir == t.path + "/home/flaghome" && r.sources["homeDir"] == SettingSource(.flag, "--home-dir"))
        #expect(r.sources["webappUrl"] == SettingSource(.env, "HAPPY_WEBAPP_URL"))
        // invalid URL from a flag is a usage error
        #expect(throws: ConfigError.self) { try l.resolve(serverUrl: "nope") }
        do { _ = try l.resolve(serverUrl: "nope") } catch { #expect(exitCode(for: error) == 2) }
    }

    @Test func unknownProfileListsAvailable() {
        let t = TempDir()
        _ = t.write("profiles/zed.yaml", "")
        do {
            _ = try ConfigLoader(env: t.env).resolve(profile: "nope")
            Issue.record("expected an error")
        } catch {
            #expect(exitCode(for: error) == 2)
            #expect(renderError(error) == "error: unknown profile 'nope' — available profiles: default, dev, local, zed")
        }
        #expect(throws: ConfigError.self) { try ConfigLoader(env: t.env).resolve(profile: "../etc/passwd") }
    }

    @Test func badProfileFilesAreClearErrors() throws {
        let t = TempDir()
        try FileManager.default.createDirectory(atPath: t.path + "/profiles/dir.yaml", withIntermediateDirectories: true)
        let bad = t.path + "/profiles/bin.yaml"
        _ = FileManager.default.createFile(atPath: bad, contents: Data([0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]))
        _ = t.write("profiles/syntax.yaml", "a: [1\n")
        let l = ConfigLoader(env: t.env)
        #expect(throws: ConfigError.profileUnreadable(path: t.path + "/profiles/dir.yaml", reason: "it is a directory")) {
            try l.resolve(profile: "dir")
        }
        #expect(throws: ConfigError.profileNotUTF8(path: bad)) { try l.resolve(profile: "bin") }
        #expect(throws: YAMLError.self) { try l.resolve(profile: "syntax") }
    }

    @Test func fullProfileShowJSON() throws {
        let t = TempDir()
        let f = t.write("profiles/full.yaml", """
            description: everything
            serverUrl: http://s:1
            webappUrl: http://w:1
            homeDir: /tmp/fullhome
            daemon:
              httpPort: 0
              heartbeatSeconds: 1.5
              healthCheckSeconds: 2
              logMaxMiB: 0.05
              logFiles: 3
            sessions:
              max: 2
              idleTimeoutMinutes: 0.05
              maxOutputMiB: 0.1
            claude:
              command: ~/bin/fake-claude
              args: [--model, x]
            env:
              A: ${HOME}
              B: "2"
            """)
        let r = try ConfigLoader(env: t.env).resolve(profile: "full")
        let c = r.config
        #expect(c.daemon.httpPort == 0 && c.daemon.heartbeatSeconds == 1.5 && c.daemon.logFiles == 3)
        #expect(c.sessions.max == 2 && c.sessions.maxOutputMiB == 0.1)
        #expect(c.claude.command == t.path + "/home/bin/fake-claude" && c.claude.args == ["--model", "x"])
        #expect(c.env == ["A": "${HOME}", "B": "2"])
        let j = r.showJSON
        #expect(j["profile"] == "full")
        let s = try #require(j["settings"]?.object)
        #expect(Set(s.keys) == Set(ProfileSchema.keys.map(\.0)))
        #expect(s["daemon.logMaxMiB"] == ["value": 0.05, "source": "profile", "from": .string(f)])
        #expect(s["env"]?["value"] == ["A": "${HOME}", "B": "2"])
        #expect(s["claude.args"]?["value"] == ["--model", "x"])
    }
}

@Suite struct ExpansionTests {
    @Test func envReferences() throws {
        let env = ["A": "1", "EMPTY": ""]
        #expect(try expandEnvReferences("x${A}y", env: env) == "x1y")
        #expect(try expandEnvReferences("${B:-dflt}", env: env) == "dflt")
        #expect(try expandEnvReferences("${EMPTY:-d}", env: env) == "d")
        #expect(try expandEnvReferences("${EMPTY}", env: env) == "")
        #expect(try expandEnvReferences("${A:-d}/${B:-}", env: env) == "1/")
        #expect(try expandEnvReferences("$A $$ plain", env: env) == "$A $ plain")
        #expect(throws: ConfigError.unresolvedVariable("MISSING")) { try expandEnvReferences("a${MISSING}", env: env) }
        #expect(renderError(ConfigError.unresolvedVariable("MISSING")).contains("MISSING"))
    }

    @Test func tilde() {
        let env = ["HOME": "/home/u"]
        #expect(Paths.expandTilde("~", env: env) == "/home/u")
        #expect(Paths.expandTilde("~/x", env: env) == "/home/u/x")
        #expect(Paths.expandTilde("/a/~", env: env) == "/a/~")
        #expect(Paths.expandTilde("~other", env: env) == "~other")
    }

    /// "Any positive number" is accepted, but not passed on as is: the daemon turns these
    /// values into nanoseconds and bytes, where 1e300 overflowed (a trap in the shipped -O
    /// build, undefined behaviour under -Ounchecked).
    @Test func hugeAmountsAreClampedNotTrapping() throws {
        let t = TempDir()
        _ = t.write("profiles/huge.yaml", """
            daemon:
              heartbeatSeconds: 1e300
              healthCheckSeconds: 1e20
              logMaxMiB: 1.7e308
            sessions:
              idleTimeoutMinutes: 1e300
              maxOutputMiB: 1e300
            """)
        let c = try ConfigLoader(env: t.env).resolve(profile: "huge").config
        for v in [c.daemon.heartbeatSeconds, c.daemon.healthCheckSeconds, c.daemon.logMaxMiB, c.sessions.idleTimeoutMinutes, c.sessions.maxOutputMiB] {
            #expect(v == ConfigLoader.largestAmount)
        }
        // What the daemon derives from them stays representable.
        #expect(UInt64(c.daemon.heartbeatSeconds * 1e9) > 0)
        #expect(Int(c.daemon.logMaxMiB * 1024 * 1024) > 0 && Int64(c.sessions.maxOutputMiB * 1_048_576) > 0)
    }
}
