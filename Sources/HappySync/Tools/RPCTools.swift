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
        func outcome(_ json: JSON, _ audit: AuditResult) -> ToolOutcome { ToolOutcome(result: json, audit: audit) }
        do throws(ToolDecodeError) {
            switch method {
            case "bash":
                let r = await bash(try BashParams(json: params), context: context)
                return outcome(r.json, r.auditResult)
            case "readFile":
                let r = await readFile(try ReadFileParams(json: params), context: context)
                return outcome(r.json, r.auditResult)
            case "writeFile":
                let r = await writeFile(try WriteFileParams(json: params), context: context)
                return outcome(r.json, r.auditResult)
            case "listDirectory":
                let r = await listDirectory(try ListDirectoryParams(json: params), context: context)
                return outcome(r.json, r.auditResult)
            case "getDirectoryTree":
                let r = await getDirectoryTree(try GetDirectoryTreeParams(json: params), context: context)
                return outcome(r.json, r.auditResult)
            case "ripgrep":
                let r = await ripgrep(try RipgrepParams(json: params), context: context)
                return outcome(r.json, r.auditResult)
            case "difftastic":
                let r = await difftastic(try DifftasticParams(json: params), context: context)
                return outcome(r.json, r.auditResult)
            default:
                return nil
            }
        } catch {
            let text = error.what
            let json = method == "bash" ? BashResult.failure(text).json : ["success": false, "error": .string(text)]
            return outcome(json, .error)
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
