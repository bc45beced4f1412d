// swift-tools-version:6.1
import PackageDescription

// One setting for every target: Swift 6 language mode, existential `any` spelled out.
let settings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "berth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // Pure: JSON values, JSON Pointer/Patch, YAML bridge, Kubernetes object helpers.
        .target(
            name: "BerthModel",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: settings
        ),
        // Pure: pod classification, the mutation policy, BerthConfig, AdmissionReview in/out.
        .target(name: "BerthAdmission", dependencies: ["BerthModel"], swiftSettings: settings),
        // The thin CLI.
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthModel", "BerthAdmission",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        // `make bench-*`: micro-benchmarks, built in release mode.
        .executableTarget(name: "berth-bench", dependencies: ["BerthModel", "BerthAdmission"], swiftSettings: settings),
        .testTarget(name: "BerthModelTests", dependencies: ["BerthModel"], swiftSettings: settings),
        .testTarget(name: "BerthAdmissionTests", dependencies: ["BerthAdmission"], swiftSettings: settings),
        // Runs the built `berth` binary as a user would.
        .testTarget(name: "BerthCLITests", dependencies: [], swiftSettings: settings),
    ]
)
