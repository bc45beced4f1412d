// swift-tools-version:6.2
import PackageDescription

// One setting for every target: Swift 6 language mode, existential `any` spelled out, and every
// compiler warning in Berth's own code an error (dependencies are built with their own settings).
let settings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
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
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
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
        // Pure: quantities, the instance catalog, pod requirements, pools, the scheduler (decide, not act).
        .target(name: "BerthScheduling", dependencies: ["BerthModel", "BerthAdmission"], swiftSettings: settings),
        .testTarget(name: "BerthSchedulingTests", dependencies: ["BerthScheduling", "BerthAdmission", "BerthModel"], swiftSettings: settings),
        // The thin CLI.
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthModel", "BerthAdmission", "BerthScheduling", "BerthNet", "BerthWebhook", "BerthKube", "BerthProvisioner",
                "BerthController", "BerthAWS", "BerthSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        // System OpenSSL 3 (libssl-dev) plus static inline wrappers for its macros.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // Linux headers Glibc's module does not export (epoll, eventfd) and an accept4 wrapper.
        .systemLibrary(name: "CBerthLinux"),
        // POSIX sockets, epoll event loops, the OpenSSL TLS stream, HTTP/1.1 parser and server.
        // The only module allowed to touch Unsafe*, OpaquePointer and errno.
        .target(
            name: "BerthNet",
            dependencies: ["COpenSSL", "CBerthLinux", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings
        ),
        // Throughput harness for BerthNet (wrk target); not a product.
        .executableTarget(name: "berthnet-bench", dependencies: ["BerthNet", .product(name: "Logging", package: "swift-log")], swiftSettings: settings),
        .testTarget(name: "BerthNetTests", dependencies: ["BerthNet", "BerthTestSupport"], swiftSettings: settings),
        // AWS: Signature V4, the credential chain, the EC2 Query API, and EC2Cloud (the cloud port on EC2).
        .target(name: "BerthAWS", dependencies: ["BerthNet", "BerthModel", "BerthScheduling", "BerthProvisioner"], swiftSettings: settings),
        .testTarget(
            name: "BerthAWSTests",
            dependencies: [
                "BerthAWS", "BerthNet", "BerthProvisioner", "BerthScheduling", "BerthModel", "BerthTestSupport",
                "BerthController", "BerthKube", "BerthKubeSim", "BerthAdmission", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings
        ),
        // HTTP meets admission: /mutate, health, Prometheus metrics, the webhook server wiring.
        .target(
            name: "BerthWebhook",
            dependencies: [
                "BerthNet", "BerthAdmission",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: settings
        ),
        .testTarget(name: "BerthWebhookTests", dependencies: ["BerthWebhook", "BerthNet", "BerthTestSupport"], swiftSettings: settings),
        // Helpers shared by the test targets (processes, certificates, fixtures); not shipped.
        .target(name: "BerthTestSupport", path: "Tests/BerthTestSupport", swiftSettings: settings),
        // `make bench-*`: micro-benchmarks, built in release mode.
        .executableTarget(
            name: "berth-bench",
            dependencies: ["BerthModel", "BerthAdmission", "BerthScheduling", "BerthKube", "BerthKubeSim", "BerthController", "CBerthLinux"],
            swiftSettings: settings
        ),
        .testTarget(name: "BerthModelTests", dependencies: ["BerthModel", "BerthTestSupport"], swiftSettings: settings),
        .testTarget(name: "BerthAdmissionTests", dependencies: ["BerthAdmission", "BerthTestSupport"], swiftSettings: settings),
        // Kubernetes API client over BerthNet: config (kubeconfig, in-cluster, exec plugins), REST,
        // watch, informer cache, leader election.
        .target(
            name: "BerthKube",
            dependencies: [
                "BerthNet", "BerthModel", .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: settings
        ),
        // The embedded simulated cluster: FakeKubeAPIServer (a faithful test double of kube-apiserver
        // over BerthNet's TLS server), FakeKubelet, FakeScheduler. The client's and the provisioner's
        // tests use it, and so does `berth serve --simulated-cluster` (`make run`).
        .target(
            name: "BerthKubeSim",
            dependencies: ["BerthKube", "BerthNet", "BerthModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings
        ),
        .testTarget(
            name: "BerthKubeTests",
            dependencies: [
                "BerthKube", "BerthKubeSim", "BerthNet", "BerthModel", "BerthTestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        // The provisioning loop's parts: the cloud port (CloudProvider), the simulated cloud, the
        // fake cloud and the manual clock its tests and the simulation step time with.
        .target(
            name: "BerthProvisioner",
            dependencies: [
                "BerthModel", "BerthAdmission", "BerthScheduling", .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "BerthProvisionerTests",
            dependencies: ["BerthProvisioner", "BerthScheduling", "BerthModel"],
            swiftSettings: settings
        ),
        // `berth simulate`: traces, the discrete-event cluster and cloud, the policies compared, reports.
        .target(
            name: "BerthSimulation",
            dependencies: ["BerthProvisioner", "BerthScheduling", "BerthAdmission", "BerthModel"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "BerthSimulationTests",
            dependencies: ["BerthSimulation", "BerthProvisioner", "BerthScheduling", "BerthModel"],
            swiftSettings: settings
        ),
        // Wiring: the cluster port over the Kubernetes API (KubeCluster), the simulated kubelet that
        // plays the simulated cloud's instances as Nodes, the provisioner's assembly for `berth serve`.
        .target(
            name: "BerthController",
            dependencies: [
                "BerthProvisioner", "BerthKube", "BerthKubeSim", "BerthNet", "BerthAdmission", "BerthScheduling", "BerthModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "BerthControllerTests",
            dependencies: [
                "BerthController", "BerthProvisioner", "BerthKube", "BerthKubeSim", "BerthScheduling", "BerthModel", "BerthTestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: settings
        ),
        // libFuzzer targets for `make fuzz` (Tests/Fuzz/fuzz.mk builds them with the fuzzer and
        // `-D BERTH_FUZZ`); built plainly, each replays the inputs it is given through its checks.
        .executableTarget(
            name: "berth-fuzz-json", dependencies: ["BerthModel", "BerthAdmission"], path: "Tests/Fuzz/JSONReader", swiftSettings: settings
        ),
        .executableTarget(
            name: "berth-fuzz-config", dependencies: ["BerthModel", "BerthAdmission", "BerthScheduling"], path: "Tests/Fuzz/ConfigReader",
            swiftSettings: settings
        ),
        // Runs the built `berth` binary as a user would.
        .testTarget(name: "BerthCLITests", dependencies: ["BerthTestSupport"], swiftSettings: settings),
    ]
)
