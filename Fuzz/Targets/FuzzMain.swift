// Fuzz driver: one libFuzzer binary for all targets (the library layers Sources/Happy* are compiled
// into the same module, so `internal` parsers are reachable without @testable).
// The target is chosen by the HAPPY_FUZZ_TARGET environment variable (Fuzz/run.sh sets it).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Every fuzz target: name → body. A body must never crash on any input.
nonisolated(unsafe) let fuzzTargets: [String: ([UInt8]) -> Void] = [
    "http-request": fuzzHTTPRequest,
    "http-response": fuzzHTTPResponse,
    "json": fuzzJSON,
    "websocket": fuzzWebSocketFrames,
    "engineio": fuzzEngineIO,
    "socketio": fuzzSocketIO,
    "yaml": fuzzYAML,
    "stream-json": fuzzStreamJSON,
    "settings": fuzzSettings,
    "daemon-state": fuzzDaemonState,
    "session-record": fuzzSessionRecord,
    "value-cipher": fuzzValueCipher,
    "datakey-unwrap": fuzzDataKeyUnwrap,
    "terminal-auth": fuzzTerminalAuth,
    "base64": fuzzBase64,
]

nonisolated(unsafe) var selectedTarget: (([UInt8]) -> Void)? = nil

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    signal(SIGPIPE, SIG_IGN)
    guard let p = getenv("HAPPY_FUZZ_TARGET"), let t = fuzzTargets[String(cString: p)] else {
        let names = fuzzTargets.keys.sorted().joined(separator: " ")
        FileHandle.standardError.write(Data("set HAPPY_FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    selectedTarget = t
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    selectedTarget!(bytes)
    return 0
}
