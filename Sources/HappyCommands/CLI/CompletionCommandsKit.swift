import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// `happy completions SHELL` and the hidden `happy __complete profiles|sessions`.
public enum CompletionCommandsKit {
    public static func script(_ ctx: CommandContext) async throws -> Int32 {
        let shell = ctx.argument("SHELL") ?? ""
        guard let text = CompletionScripts.script(for: shell) else {
            throw CLIError.invalidValue(flag: "SHELL", value: shell, expected: "one of bash, zsh, fish")
        }
        ctx.out.write(text)
        return 0
    }

    /// Prints one value per line; never fails (a broken configuration lists nothing).
    public static func dynamic(_ ctx: CommandContext) async throws -> Int32 {
        switch ctx.argument("KIND") {
        case "profiles":
            for (name, _) in ctx.loader.locator.available() { ctx.out.line(name) }
        case "sessions":
            guard let home = try? ctx.loader.resolve(globals: ctx.globals).config.home else { return 0 }
            for id in sessionIds(home: home) { ctx.out.line(id) }
        default:
            break
        }
        return 0
    }

    /// Session ids from `<home>/sessions/*/session.json` (field `id`): live sessions
    /// (`starting`/`running`) first, then the others, each group sorted.
    public static func sessionIds(home: HomeLayout) -> [String] {
        var live: [String] = [], other: [String] = []
        for dir in FileManagerShim.listDirectory(home.sessionsDir) {
            let path = home.sessionDir(dir) + "/session.json"
            guard let j = try? FileIO.readJSON(path), let id = j["id"]?.string, !id.isEmpty,
                  !id.contains(where: { $0.isWhitespace }) else { continue }
            let status = j["status"]?.string ?? ""
            if status == "starting" || status == "running" { live.append(id) } else { other.append(id) }
        }
        return live.sorted() + other.sorted()
    }
}
