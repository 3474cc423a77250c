// swift-tools-version:6.0
import PackageDescription

// Layered library targets: each imports only the targets below it, so the compiler keeps
// the architecture (docs/ARCHITECTURE.md). The `happy` executable is main.swift alone.
//
//   HappyCore ─┬─ HappyCrypto ─────────────┐
//              ├─ HappyNet ─ HappyRealtime ─┤
//              └─ HappyConfig ──────────────┴─ HappyServerAPI ─┐
//                          └─ HappySessions ───────────────────┴─ HappySync ─ HappyDaemon ─ HappyCommands ─ happy
let package = Package(
    name: "happy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "happy", targets: ["happy"]),
    ],
    targets: [
        // System libraries (no SwiftPM package dependencies).
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CYaml", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        // Tiny C shims for POSIX calls that Glibc hides.
        .target(name: "CPosix", path: "Sources/CPosix"),

        .target(name: "HappyCore", dependencies: ["CPosix"]),
        .target(name: "HappyCrypto", dependencies: ["HappyCore", "COpenSSL"]),
        .target(name: "HappyNet", dependencies: ["HappyCore", "COpenSSL", "CPosix"]),
        .target(name: "HappyRealtime", dependencies: ["HappyNet"]),
        .target(name: "HappyConfig", dependencies: ["HappyCore", "CYaml"]),
        .target(name: "HappyServerAPI", dependencies: ["HappyConfig", "HappyCrypto", "HappyNet"]),
        .target(name: "HappySessions", dependencies: ["HappyConfig", "CPosix"]),
        .target(name: "HappySync", dependencies: ["HappyServerAPI", "HappyRealtime", "HappySessions"]),
        .target(name: "HappyDaemon", dependencies: ["HappySync"]),
        .target(name: "HappyCommands", dependencies: ["HappyDaemon"]),
        .executableTarget(name: "happy", dependencies: ["HappyCommands"], path: "Sources/happy"),

        // Crypto throughput benchmark (Benchmarks/crypto/run.sh); not part of the product.
        .executableTarget(name: "happy-bench-crypto", dependencies: ["HappyCrypto"], path: "Benchmarks/crypto",
                          exclude: ["run.sh", "bench.py"]),

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
