// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "happy",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "happy", targets: ["happy"]),
        .library(name: "HappyKit", targets: ["HappyKit"]),
    ],
    targets: [
        // System libraries (no SwiftPM package dependencies).
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CYaml", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        // Tiny C shims for POSIX calls that Glibc's Swift module hides.
        .target(name: "CPosix", path: "Sources/CPosix"),
        // All logic.
        .target(
            name: "HappyKit",
            dependencies: ["COpenSSL", "CYaml", "CPosix"],
            path: "Sources/HappyKit",
            resources: [],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // Thin executable: parses arguments and prints.
        .executableTarget(name: "happy", dependencies: ["HappyKit"], path: "Sources/happy"),
        // Crypto throughput benchmark (Benchmarks/crypto/run.sh); not part of the product.
        .executableTarget(name: "happy-bench-crypto", dependencies: ["HappyKit"], path: "Benchmarks/crypto",
                          exclude: ["run.sh", "bench.py"]),
        .testTarget(name: "HappyKitTests", dependencies: ["HappyKit"], path: "Tests/HappyKitTests"),
    ],
    swiftLanguageModes: [.v6]
)
