import Dispatch

/// Keeps Dispatch sources so they are cancelled (closing their descriptors through their
/// cancel handlers) when the owner goes away without stopping them. Cancelled sources are
/// dropped on the next `add`.
public final class DispatchSourceBag: @unchecked Sendable {
    private let lock = Lock()
    private var sources: [any DispatchSourceProtocol] = []

    public init() {}

    public func add(_ source: any DispatchSourceProtocol) {
        lock.withLock {
            sources.removeAll { $0.isCancelled }
            sources.append(source)
        }
    }

    deinit {
        for s in sources where !s.isCancelled { s.cancel() }
    }
}
