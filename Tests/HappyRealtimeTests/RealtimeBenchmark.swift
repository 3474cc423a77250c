import Foundation
import Testing
@testable import HappyCore
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyTestSupport

/// Connect-to-ready time (TCP connect → Socket.IO CONNECT ack) against the local
/// emulator. Runs only with HAPPY_BENCH=1 (Benchmarks/realtime/run.sh).
@Suite struct RealtimeBenchmark {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HAPPY_BENCH"] != nil))
    func connectToReady() async throws {
        let cert = try await TestCert.make()
        let plain = try await PyServer.emulator()
        let tls = try await PyServer.emulator(["--tls-cert", cert.cert, "--tls-key", cert.key])
        let n = Int(ProcessInfo.processInfo.environment["HAPPY_BENCH_N"] ?? "") ?? 30
        func run(_ label: String, _ make: () -> SocketIOClient) async throws {
            var ms: [Double] = []
            for i in 0..<(n + 3) {
                let c = make()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try await c.connect()
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
                if i >= 3 { ms.append(dt) }  // warm-up excluded
                await c.disconnect()
            }
            ms.sort()
            let med = ms[ms.count / 2], p95 = ms[min(ms.count - 1, Int(Double(ms.count) * 0.95))]
            print(String(format: "BENCH %@ n=%d min=%.2fms median=%.2fms p95=%.2fms max=%.2fms", label, ms.count, ms[0], med, p95, ms.last!))
        }
        try await run("ws://127.0.0.1", { Emu.client(plain) })
        let trust = SocketIOOptions(net: NetOptions(proxies: .none, trust: TrustSettings(caFile: cert.cert)), connectTimeout: 10)
        try await run("wss://127.0.0.1", { Emu.client(tls, scheme: "https", options: trust) })
        await plain.stop(); await tls.stop()
    }
}
