// swift-tools-version:6.0
import PackageDescription

// Layered library targets: each imports only the targets below it, so the compiler keeps
// the architecture (docs/ARCHITECTURE.md). The `happy` executable is main.swift alone.
//
//   HappyCore ─┬─ HappyCrypto ─────────────┐
//              ├─ HappyNet ─ HappyRealtime ─┤
//              └─ HappyConfig ──────────────┴─ HappyServerAPI ─┐
//                          └─ HappySessions ───────────────────┴─ HappySync ─ HappyDaemon ─ HappyCommands ─ happy
// OpenSSL and libyaml: debug builds (and the tests) link the shared libraries; release
// builds link the static ones that libssl-dev / libyaml-dev ship. A release binary then
// loads no library at start-up beyond libc/libstdc++ (about 1 ms of the 10 ms budget) and
// runs where OpenSSL 3 is not installed. Rebuild it to pick up an OpenSSL security fix.
func dynamicLinking(_ libs: [String]) -> [LinkerSetting] {
    libs.map { .linkedLibrary($0, .when(configuration: .debug)) }
}
func staticLinking(_ libs: [String]) -> [LinkerSetting] {
    [.unsafeFlags(["-Xlinker", "-Bstatic"] + libs.flatMap { ["-Xlinker", "--library=\($0)"] } + ["-Xlinker", "-Bdynamic"],
                  .when(configuration: .release))]
}

let package = Package(
    name: "happy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "happy", targets: ["happy"]),
    ],
    targets: [
        // System libraries (no SwiftPM package dependencies). Their headers are in the
        // system include path; how they are linked is decided below (`systemLinking`).
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CYaml", providers: [.apt(["libyaml-dev"])]),
        // Tiny C shims for POSIX calls that Glibc hides.
        .target(name: "CPosix", path: "Sources/CPosix"),

        .target(name: "HappyCore", dependencies: ["CPosix"]),
        .target(name: "HappyCrypto", dependencies: ["HappyCore", "COpenSSL"], linkerSettings: dynamicLinking(["crypto"])),
        .target(name: "HappyNet", dependencies: ["HappyCore", "COpenSSL", "CPosix"],
                linkerSettings: dynamicLinking(["ssl", "crypto"])),
        .target(name: "HappyRealtime", dependencies: ["HappyNet"]),
        .target(name: "HappyConfig", dependencies: ["HappyCore", "CYaml"], linkerSettings: dynamicLinking(["yaml"])),
        .target(name: "HappyServerAPI", dependencies: ["HappyConfig", "HappyCrypto", "HappyNet"]),
        .target(name: "HappySessions", dependencies: ["HappyConfig", "CPosix"]),
        .target(name: "HappySync", dependencies: ["HappyServerAPI", "HappyRealtime", "HappySessions"]),
        .target(name: "HappyDaemon", dependencies: ["HappySync"]),
        .target(name: "HappyCommands", dependencies: ["HappyDaemon"]),
        .executableTarget(name: "happy", dependencies: ["HappyCommands"], path: "Sources/happy",
                          linkerSettings: staticLinking(["ssl", "crypto", "yaml"])),

        // Crypto throughput benchmark (Benchmarks/crypto/run.sh); not part of the product.
        .executableTarget(name: "happy-bench-crypto", dependencies: ["HappyCrypto"], path: "Benchmarks/crypto",
                          exclude: ["run.sh", "bench.py"], linkerSettings: staticLinking(["crypto"])),

        // Tests follow the same cut; helpers shared by several suites live in HappyTestSupport.
        .target(name: "HappyTestSupport", dependencies: ["HappyDaemon"], path: "Tests/HappyTestSupport"),
        .testTarget(name: "HappyCoreTests", dependencies: ["HappyCore", "HappyTestSupport"]),
        .testTarget(name: "HappyCryptoTests", dependencies: ["HappyCrypto", "HappyTestSupport"],
                    exclude: ["Vectors"]),
        .testTarget(name: "HappyNetTests", dependencies: ["HappyNet", "HappyTestSupport"]),
        .testTarget(name: "HappyRealtimeTests", dependencies: ["HappyRealtime", "HappyTestSupport"]),
        .testTarget(name: "HappyConfigTests", dependencies: ["HappyConfig", "HappyTestSupport"]),
        .testTarget(name: "HappyServerAPITests", dependencies: ["HappyServerAPI", "HappyTestSupport"]),
        .testTarget(name: "HappySessionsTests", dependencies: ["HappySessions", "HappyTestSupport"]),
        .testTarget(name: "HappySyncTests", dependencies: ["HappySync", "HappyTestSupport"]),
        .testTarget(name: "HappyDaemonTests", dependencies: ["HappyDaemon", "HappyTestSupport"]),
        .testTarget(name: "HappyCommandsTests", dependencies: ["HappyCommands", "HappyTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
