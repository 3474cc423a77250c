/// Every error the product shows a user conforms to `HappyError`: one enum per
/// module, rendered once at the top as `error: <what> — <what to do>`.
public protocol HappyError: Error, CustomStringConvertible {
    /// What happened (one line, no secrets).
    var what: String { get }
    /// What to do about it (one line), if anything useful can be said.
    var hint: String? { get }
    /// Process exit code for commands: 1 failure (default), 2 usage error.
    var exitCode: Int32 { get }
}

extension HappyError {
    public var hint: String? { nil }
    public var exitCode: Int32 { 1 }
    public var description: String { renderError(self) }
}

/// `error: <what> — <what to do>`
public func renderError(_ e: Error) -> String {
    if let h = e as? HappyError {
        if let hint = h.hint, !hint.isEmpty { return "error: \(h.what) — \(hint)" }
        return "error: \(h.what)"
    }
    return "error: \(e)"
}

/// What happened, without the hint (for logs and answers that add their own context).
public func errorWhat(_ e: Error) -> String {
    (e as? HappyError)?.what ?? "\(e)"
}

public func exitCode(for e: Error) -> Int32 {
    (e as? HappyError)?.exitCode ?? 1
}
