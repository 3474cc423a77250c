import HappyCore

/// What a tool answered: the result to encrypt and send, and its audit outcome.
public struct ToolOutcome: Sendable, Equatable {
    public var result: JSON
    public var audit: AuditResult
    public init(result: JSON, audit: AuditResult) {
        self.result = result
        self.audit = audit
    }
}

/// The phone's file and shell tools (SPEC §4.4, §7.5), for the machine scope and the
/// session scope alike. Every tool answers inside its result (`success: false` +
/// `error`), never by throwing: params of the wrong shape too (`error: "invalid params:
/// …"`), and a path outside the roots (`PathConfinement.refusal`, audit `refused`).
public enum RPCTools {
    /// The method names (bare, without the `<id>:` prefix).
    public static let methods = ["bash", "readFile", "writeFile", "listDirectory", "getDirectoryTree", "ripgrep",
                                 "difftastic"]

    public static func isTool(_ method: String) -> Bool { methods.contains(method) }

    /// Runs the tool `method` with decrypted `params`; nil when `method` is not a tool.
    public static func run(_ method: String, params: JSON, context: ToolContext) async -> ToolOutcome? {
        func call<P: ToolParams, R: ToolAnswer>(_ tool: (P, ToolContext) async -> R) async throws(ToolDecodeError) -> ToolOutcome {
            let r = await tool(try P(json: params), context)
            return ToolOutcome(result: r.json, audit: r.auditResult)
        }
        do throws(ToolDecodeError) {
            switch method {
            case "bash": return try await call(bash)
            case "readFile": return try await call(readFile)
            case "writeFile": return try await call(writeFile)
            case "listDirectory": return try await call(listDirectory)
            case "getDirectoryTree": return try await call(getDirectoryTree)
            case "ripgrep": return try await call(ripgrep)
            case "difftastic": return try await call(difftastic)
            default:
                return nil
            }
        } catch {
            let text = error.what
            let json = method == "bash" ? BashResult.failure(text).json : ["success": false, "error": .string(text)]
            return ToolOutcome(result: json, audit: .error)
        }
    }

    public static func bash(_ params: BashParams, context: ToolContext) async -> BashResult {
        await ShellTools.bash(params, context)
    }

    public static func readFile(_ params: ReadFileParams, context: ToolContext) async -> ReadFileResult {
        await offPool { FileTools.readFile(params, context) }
    }

    public static func writeFile(_ params: WriteFileParams, context: ToolContext) async -> WriteFileResult {
        await offPool { FileTools.writeFile(params, context) }
    }

    public static func listDirectory(_ params: ListDirectoryParams, context: ToolContext) async -> ListDirectoryResult {
        await offPool { FileTools.listDirectory(params, context) }
    }

    public static func getDirectoryTree(_ params: GetDirectoryTreeParams,
                                        context: ToolContext) async -> GetDirectoryTreeResult {
        await offPool { FileTools.getDirectoryTree(params, context) }
    }

    public static func ripgrep(_ params: RipgrepParams, context: ToolContext) async -> RipgrepResult {
        await ShellTools.external(.ripgrep, params, context)
    }

    public static func difftastic(_ params: DifftasticParams, context: ToolContext) async -> DifftasticResult {
        await ShellTools.external(.difftastic, params, context)
    }
}
