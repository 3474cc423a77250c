import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Runs `body`, giving up waiting after `seconds` (the body keeps running detached).
/// Bounds the steps of a shutdown that must finish whatever the server does.
public func withTimeLimit(seconds: Double, _ body: @escaping @Sendable () async -> Void) async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        let once = OnceFlag()
        Task {
            await body()
            if once.take() { c.resume() }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            if once.take() { c.resume() }
        }
    }
}

/// A flag that can be taken once, from any thread.
public final class OnceFlag: @unchecked Sendable {
    private let lock = Lock()
    private var taken = false
    public init() {}
    public func take() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if taken { return false }
        taken = true
        return true
    }
}
