import BerthAdmission
import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import BerthTestSupport
import CoreMetrics
import Foundation

let pki: TestPKI = try! TestPKI.make(label: "berthcontroller")

func readBytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

/// A notebook as a user's spawner writes it, then as Berth's webhook leaves it.
func notebookPod(_ name: String, namespace: String = "jhub", annotations: [String: String] = [:], claim: String? = nil) throws -> JSON {
    var meta: JSONObject = [
        "name": .string(name), "namespace": .string(namespace),
        "labels": ["component": "singleuser-server", "app": "jupyterhub", "hub.jupyter.org/username": .string(name)],
    ]
    if !annotations.isEmpty { meta["annotations"] = .object(JSONObject(annotations.sorted { $0.key < $1.key }.map { JSONObject.Member(key: $0.key, value: .string($0.value)) })) }
    var spec: JSONObject = [
        "containers": [[
            "name": "notebook", "image": "quay.io/jupyter/pytorch-notebook:latest",
            "resources": ["limits": ["nvidia.com/gpu": "1", "memory": "16G"], "requests": ["cpu": "2", "memory": "8G"]],
        ]],
    ]
    if let claim { spec["volumes"] = [["name": "home", "persistentVolumeClaim": ["claimName": .string(claim)]]] }
    let pod: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": .object(meta), "spec": .object(spec), "status": ["phase": "Pending"]]
    return try ManifestMutator(policy: MutationPolicy()).mutate(pod).mutated
}

/// A CPU pod bound to `node` (say, scheduled before Berth was installed).
func cpuPod(_ name: String, namespace: String = "airflow", node: String, annotations: [String: String] = [:]) -> JSON {
    var meta: JSONObject = ["name": .string(name), "namespace": .string(namespace), "labels": ["app": "etl"]]
    if !annotations.isEmpty { meta["annotations"] = .object(JSONObject(annotations.sorted { $0.key < $1.key }.map { JSONObject.Member(key: $0.key, value: .string($0.value)) })) }
    return [
        "apiVersion": "v1", "kind": "Pod", "metadata": .object(meta),
        "spec": ["nodeName": .string(node), "containers": [["name": "task", "image": "apache/airflow", "resources": ["requests": ["cpu": "500m", "memory": "1Gi"]]]]],
        "status": ["phase": "Running", "conditions": [["type": "Ready", "status": "True"]]],
    ]
}

/// The whole world of the provisioner's story tests: the fake API server over TLS, the simulated
/// cloud and the simulated kubelet/scheduler on one manual clock, and any number of Berth
/// replicas (a replica is a KubeCluster + Provisioner; a "crash" replaces it with a new one).
final class StoryWorld: @unchecked Sendable {
    let server: FakeKubeAPIServer
    let clock = ManualClock()
    let cloud: SimulatedCloud<ManualClock>
    let nodes: SimulatedNodes<ManualClock>
    let config: ProvisionerConfig
    var replicas: [(cluster: KubeCluster, provisioner: Provisioner<ManualClock>)] = []

    init(config: ProvisionerConfig = ProvisionerConfig(), gpuDelay: ClosedRange<Duration>? = .seconds(20) ... .seconds(20)) throws {
        server = try FakeKubeAPIServer(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        cloud = SimulatedCloud(
            configuration: SimulatedCloudConfiguration(seed: 5, bootDelay: .seconds(60) ... .seconds(60), gpuRegistrationDelay: gpuDelay), clock: clock)
        nodes = SimulatedNodes(server: server, cloud: cloud)
        self.config = config
    }

    deinit {
        for replica in replicas { replica.cluster.stop() }
        server.stop()
    }

    func client() throws -> KubeClient {
        var configuration = KubeClientConfiguration(
            host: "localhost", port: server.port, tls: TLSClientConfiguration(trustedCAPEM: readBytes(pki.caCertificate)), credentials: .bearerToken("test-token"))
        configuration.qps = 0
        configuration.timeout = .seconds(10)
        return try KubeClient(configuration)
    }

    /// A new Berth replica (a fresh process: no memory of the old one).
    @discardableResult
    func startReplica(
        isLeader: @escaping @Sendable () -> Bool = { true }, metrics: (any MetricsFactory)? = nil,
        adjust: (inout Provisioner<ManualClock>.Options) -> Void = { _ in }
    ) throws -> Int {
        let cluster = KubeCluster(client: try client(), identity: "berth-\(replicas.count)")
        cluster.start()
        var options = Provisioner<ManualClock>.Options()
        options.seed = UInt64(replicas.count + 1)
        adjust(&options)
        let provisioner = Provisioner(
            config: config, cluster: cluster, cloud: cloud, wallTime: cloud.wallTime, options: options, isLeader: isLeader, metricsFactory: metrics)
        replicas.append((cluster, provisioner))
        return replicas.count - 1
    }

    func crash(_ replica: Int) {
        replicas[replica].cluster.stop()
    }

    /// Every replica's caches hold exactly what the server holds.
    func caughtUp(_ replica: Int) -> Bool {
        let cluster = replicas[replica].cluster
        guard cluster.hasSynced else { return false }
        func versions(_ objects: [JSON]) -> [String: String] {
            Dictionary(objects.map { ("\($0["metadata"]?["namespace"]?.stringValue ?? "")/\($0["metadata"]?["name"]?.stringValue ?? "")", $0["metadata"]?["resourceVersion"]?.stringValue ?? "") },
                       uniquingKeysWith: { a, _ in a })
        }
        return versions(cluster.pods.list()) == versions(server.objects(.pods)) && versions(cluster.nodes.list()) == versions(server.objects(.nodes))
    }

    /// One second of the world: the clock moves, kubelets and the scheduler act, then each live
    /// replica runs one round once its caches have caught up with the server.
    func tick(_ seconds: Int = 1, replicas active: [Int]? = nil) async throws {
        for _ in 0..<seconds {
            clock.advance(by: .seconds(1))
            await nodes.step()
            for replica in active ?? Array(replicas.indices) {
                guard await waitFor({ self.caughtUp(replica) }) else { throw StoryError.cacheLag(replica) }
                await replicas[replica].provisioner.step()
            }
        }
    }

    /// Ticks until `condition` holds (at most `limit` seconds of simulated time); returns the seconds taken.
    func tick(until condition: () async -> Bool, limit: Int = 1200, replicas active: [Int]? = nil) async throws -> Int? {
        for second in 0..<limit {
            if await condition() { return second }
            try await tick(replicas: active)
        }
        return await condition() ? limit : nil
    }

    func podNode(_ key: String) -> String? {
        let parts = key.split(separator: "/").map(String.init)
        return server.object(.pods, namespace: parts[0], name: parts[1])?["spec"]?["nodeName"]?.stringValue
    }

    func podPhase(_ key: String) -> String? {
        let parts = key.split(separator: "/").map(String.init)
        return server.object(.pods, namespace: parts[0], name: parts[1])?["status"]?["phase"]?.stringValue
    }

    var liveInstances: [CloudInstance] {
        get async { (try? await cloud.list(clusterTag: config.clusterName)) ?? [] }
    }

    func events(reason: String) -> [JSON] {
        server.objects(.events).filter { $0["reason"]?.stringValue == reason }
    }
}

enum StoryError: Error { case cacheLag(Int) }

/// Polls a condition that other threads make true (informer caches), without sleeping blindly.
func waitFor(timeout: Duration = .seconds(10), _ condition: @escaping () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}
