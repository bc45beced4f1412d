@testable import BerthAWS
import BerthAdmission
import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// EC2Cloud with a record of what each launch asked its node to register with: what the kubelet
/// reads from the user data on a real instance.
final class RecordingEC2: CloudProvider {
    let ec2: EC2Cloud
    private let requests = Mutex<[String: LaunchRequest]>([:])

    init(_ ec2: EC2Cloud) { self.ec2 = ec2 }

    func request(of providerID: String) -> LaunchRequest? { requests.withLock { $0[providerID] } }

    func create(_ request: LaunchRequest) async throws(CloudError) -> CloudInstance {
        let instance = try await ec2.create(request)
        requests.withLock { $0[instance.providerID] = request }
        return instance
    }
    func delete(providerID: String) async throws(CloudError) { try await ec2.delete(providerID: providerID) }
    func get(providerID: String) async throws(CloudError) -> CloudInstance { try await ec2.get(providerID: providerID) }
    func list(clusterTag: String) async throws(CloudError) -> [CloudInstance] { try await ec2.list(clusterTag: clusterTag) }
    func stop(providerID: String) async throws(CloudError) { try await ec2.stop(providerID: providerID) }
    func start(providerID: String) async throws(CloudError) { try await ec2.start(providerID: providerID) }
}

/// Plays moto's running instances as Nodes on the fake API server, as kubelets, the device plugin,
/// kube-scheduler and the cloud-controller-manager would: a running instance registers its Node
/// (the launch's labels and taints, no GPUs yet), the next step the device plugin advertises its
/// GPUs, a Node whose instance is gone is deleted; pending pods are bound and started.
struct MotoKubelets {
    let server: FakeKubeAPIServer
    let cloud: RecordingEC2
    let clusterName: String
    let catalog: InstanceCatalog
    var overhead = NodeOverhead()

    static func nodeName(_ providerID: String) -> String { "ip-\(ProviderID(providerID)?.instanceID.suffix(8) ?? "x").ec2.internal" }

    func step() async throws {
        let kubelet = FakeKubelet(server: server)
        let live = try await cloud.list(clusterTag: clusterName).filter { $0.state == .running }
        let liveIDs = Set(live.map(\.providerID))
        var nodes: [String: JSON] = [:]
        for node in server.objects(.nodes) {
            guard let providerID = node["spec"]?["providerID"]?.stringValue, let name = node["metadata"]?["name"]?.stringValue else { continue }
            if liveIDs.contains(providerID) { nodes[providerID] = node } else { server.remove(.nodes, name: name) }
        }
        for instance in live {
            let name = Self.nodeName(instance.providerID)
            guard let type = catalog[instance.instanceType] else { continue }
            if nodes[instance.providerID] == nil {
                guard let request = cloud.request(of: instance.providerID) else { continue }
                var labels = type.labels(for: Offering(zone: instance.zone, capacityType: instance.capacityType, pricePerHour: instance.pricePerHour))
                labels.merge(request.labels) { _, launch in launch }
                var capacity = overhead.allocatable(type) + overhead.daemonSets
                capacity.gpus = 0
                kubelet.registerNode(name: name, providerID: instance.providerID, labels: labels, taints: request.taints, capacity: [
                    "cpu": "\(capacity.cpuMilli)m", "memory": "\(capacity.memory)", "pods": "\(capacity.pods)",
                    "ephemeral-storage": "\(capacity.ephemeralStorage)",
                ])
            } else if nodes[instance.providerID]?["status"]?["allocatable"]?["nvidia.com/gpu"] == nil, type.gpuCount > 0 {
                kubelet.advertise(node: name, quantity: type.gpuCount)
            }
        }
        _ = FakeScheduler(server: server).schedulePendingPods()
        for node in server.objects(.nodes).compactMap({ $0["metadata"]?["name"]?.stringValue }) { _ = kubelet.runPods(on: node) }
    }
}

extension EC2CloudMotoTests {
    /// The provisioner's story with EC2 as the cloud: a GPU notebook → CreateFleet on moto → a Node
    /// → the notebook runs; the notebook stops → the instance is terminated and its Node goes.
    @Test func theProvisionerLaunchesAndRemovesAnEC2Node() async throws {
        let pki = try TestPKI.make(label: "berth-ec2-story")
        defer { pki.remove() }
        let server = try FakeKubeAPIServer(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        defer { server.stop() }
        var kube = KubeClientConfiguration(
            host: "localhost", port: server.port,
            tls: TLSClientConfiguration(trustedCAPEM: Array(FileManager.default.contents(atPath: pki.caCertificate) ?? Data())),
            credentials: .bearerToken("test-token"))
        kube.qps = 0
        let cluster = KubeCluster(client: try KubeClient(kube), identity: "berth-ec2")
        cluster.start()
        defer { cluster.stop() }

        let ec2 = try cloud()
        let catalog = try await ec2.catalog().schedulable
        let cloud = RecordingEC2(ec2)
        var config = ProvisionerConfig()
        config.clusterName = "moto-story"
        let clock = ManualClock()
        let provisioner = Provisioner(config: config, catalog: catalog, cluster: cluster, cloud: cloud, wallTime: WallTime(clock: clock, epoch: Date()))
        let kubelets = MotoKubelets(server: server, cloud: cloud, clusterName: "moto-story", catalog: catalog)

        func caughtUp() -> Bool {
            func versions(_ objects: [JSON]) -> [String: String] {
                Dictionary(objects.map { ("\($0["metadata"]?["namespace"]?.stringValue ?? "")/\($0["metadata"]?["name"]?.stringValue ?? "")",
                                          $0["metadata"]?["resourceVersion"]?.stringValue ?? "") }, uniquingKeysWith: { a, _ in a })
            }
            return cluster.hasSynced && versions(cluster.pods.list()) == versions(server.objects(.pods))
                && versions(cluster.nodes.list()) == versions(server.objects(.nodes))
        }
        /// Simulated seconds until `condition` holds: each one moves the clock, then kubelets, then Berth.
        func tick(until condition: () async throws -> Bool, limit: Int) async throws -> Int? {
            for second in 0..<limit {
                if try await condition() { return second }
                clock.advance(by: .seconds(1))
                try await kubelets.step()
                guard waitUntil(timeout: .seconds(10), caughtUp) else { throw TestFailure("the informer caches did not catch up") }
                _ = await provisioner.step()
            }
            return try await condition() ? limit : nil
        }
        func phase() -> String? { server.object(.pods, namespace: "jhub", name: "alice")?["status"]?["phase"]?.stringValue }

        let notebook: JSON = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "alice", "namespace": "jhub", "labels": ["component": "singleuser-server", "app": "jupyterhub"]],
            "spec": ["containers": [["name": "notebook", "image": "quay.io/jupyter/pytorch-notebook:latest",
                                     "resources": ["limits": ["nvidia.com/gpu": "1", "memory": "16G"], "requests": ["cpu": "2", "memory": "8G"]]]]],
            "status": ["phase": "Pending"],
        ]
        _ = server.write(.pods, try ManifestMutator(policy: MutationPolicy()).mutate(notebook).mutated)

        _ = try #require(try await tick(until: { phase() == "Running" }, limit: 120), "the notebook never ran")
        let instances = try await ec2.list(clusterTag: "moto-story")
        #expect(instances.map(\.instanceType) == ["g4dn.xlarge"])
        let instance = try #require(instances.first)
        #expect(instance.tags["berth.dev/pool"] == "gpu")
        // One CreateFleet carried every offering the notebook takes (EC2 picks the cheapest with capacity).
        let launch = try #require(cloud.request(of: instance.providerID))
        #expect(launch.attempts.count > 10 && launch.attempts.first.map { ($0.type.name, $0.offering.pricePerHour) } ?? ("", 0) == ("g4dn.xlarge", 0.526))
        let nodeName = try #require(server.object(.pods, namespace: "jhub", name: "alice")?["spec"]?["nodeName"]?.stringValue)
        let node = try #require(server.object(.nodes, name: nodeName))
        #expect(node["spec"]?["providerID"]?.stringValue == instance.providerID)
        #expect(node["spec"]?["taints"]?.arrayValue?.contains { $0["key"]?.stringValue == "nvidia.com/gpu" } == true)

        server.remove(.pods, namespace: "jhub", name: "alice")
        let gone = try await tick(until: {
            try await ec2.list(clusterTag: "moto-story").isEmpty && server.object(.nodes, name: nodeName) == nil
        }, limit: 180)
        #expect(gone != nil, "the empty node's instance was never terminated")
        await #expect(throws: CloudError.notFound(providerID: instance.providerID)) { _ = try await ec2.get(providerID: instance.providerID) }
    }
}

extension EC2CloudMotoTests {
    /// A spot interruption warning on the queue: the runtime reads it, the node is cordoned and
    /// drained at once, the instance terminated, and the message deleted.
    @Test func aSpotInterruptionOnTheQueueDrainsTheNode() async throws {
        let pki = try TestPKI.make(label: "berth-ec2-interruption")
        defer { pki.remove() }
        let server = try FakeKubeAPIServer(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        defer { server.stop() }
        var kube = KubeClientConfiguration(
            host: "localhost", port: server.port,
            tls: TLSClientConfiguration(trustedCAPEM: Array(FileManager.default.contents(atPath: pki.caCertificate) ?? Data())),
            credentials: .bearerToken("test-token"))
        kube.qps = 0
        let cluster = KubeCluster(client: try KubeClient(kube), identity: "berth-ec2-interruption")
        cluster.start()
        defer { cluster.stop() }

        let queueURL = try await queue("moto-interrupted", [])
        var configuration = try configuration()
        configuration.interruptionQueue = "moto-interrupted"
        configuration.sqsEndpoint = try AWSEndpoint(url: moto.endpoint, what: "moto")
        let ec2 = try EC2Cloud(configuration: configuration, credentials: credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in })
        let catalog = try await ec2.catalog().schedulable
        let cloud = RecordingEC2(ec2)
        var config = ProvisionerConfig()
        config.clusterName = "moto-interrupted"
        let clock = ManualClock()
        var options = Provisioner<ManualClock>.Options()
        #expect(ec2.interruptions != nil)
        options.interruptionSource = ec2.interruptions
        let provisioner = Provisioner(config: config, catalog: catalog, cluster: cluster, cloud: cloud, wallTime: WallTime(clock: clock, epoch: Date()),
                                      options: options)
        let kubelets = MotoKubelets(server: server, cloud: cloud, clusterName: "moto-interrupted", catalog: catalog)
        func tick(until condition: () async throws -> Bool, limit: Int) async throws -> Bool {
            for _ in 0..<limit {
                if try await condition() { return true }
                clock.advance(by: .seconds(1))
                try await kubelets.step()
                guard waitUntil(timeout: .seconds(10), { cluster.hasSynced && cluster.pods.list().count == server.objects(.pods).count
                    && cluster.nodes.list().count == server.objects(.nodes).count }) else { throw TestFailure("caches did not catch up") }
                _ = await provisioner.step()
            }
            return try await condition()
        }
        let training: JSON = [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "train", "namespace": "ml"],
            "spec": ["containers": [["name": "t", "image": "pytorch", "resources": ["limits": ["nvidia.com/gpu": "1"], "requests": ["cpu": "1", "memory": "4G"]]]]],
            "status": ["phase": "Pending"],
        ]
        _ = server.write(.pods, try ManifestMutator(policy: MutationPolicy()).mutate(training).mutated)
        func phase() -> String? { server.object(.pods, namespace: "ml", name: "train")?["status"]?["phase"]?.stringValue }
        #expect(try await tick(until: { phase() == "Running" }, limit: 120), "the pod never ran")
        let instance = try #require(try await ec2.list(clusterTag: "moto-interrupted").first)
        let nodeName = try #require(server.object(.pods, namespace: "ml", name: "train")?["spec"]?["nodeName"]?.stringValue)

        let sqs = try sqsClient()
        _ = try await sqs.call("SendMessage", ["QueueUrl": .string(queueURL),
                                               "MessageBody": .string(EventBridgeEvents.spotWarning(ProviderID(instance.providerID)!.instanceID))])
        let tainted = try await tick(until: {
            server.object(.nodes, name: nodeName)?["spec"]?["taints"]?.arrayValue?.contains { $0["key"]?.stringValue == "berth.dev/disrupted" } == true
        }, limit: 10)
        #expect(tainted, "cordoned within seconds of the notice, not after emptyAfter")
        #expect(try await tick(until: { try await ec2.list(clusterTag: "moto-interrupted").allSatisfy { $0.providerID != instance.providerID } }, limit: 30),
                "the interrupted instance was terminated once drained")
        let left = try await sqs.call("GetQueueAttributes", ["QueueUrl": .string(queueURL), "AttributeNames": ["All"]])
        #expect(left["Attributes"]?["ApproximateNumberOfMessages"] == "0" && left["Attributes"]?["ApproximateNumberOfMessagesNotVisible"] == "0")
        for remaining in try await ec2.list(clusterTag: "moto-interrupted") { try await ec2.delete(providerID: remaining.providerID) }
    }
}

extension EC2CloudMotoTests {
    /// The whole stack with a node class: a GPU notebook → the scheduler's choice and its
    /// alternatives → one CreateFleet with a template per AMI → a moto instance on the x86 NVIDIA
    /// AMI in the discovery-tagged subnet → a Node with the type's labels → the notebook runs.
    @Test func theProvisionerLaunchesFromANodeClass() async throws {
        let world = try EKSWorld.make(moto, cluster: "moto-class-story", serviceCIDR: "172.20.0.0/16")
        let pki = try TestPKI.make(label: "berth-ec2-class-story")
        defer { pki.remove() }
        let server = try FakeKubeAPIServer(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        defer { server.stop() }
        var kube = KubeClientConfiguration(
            host: "localhost", port: server.port,
            tls: TLSClientConfiguration(trustedCAPEM: Array(FileManager.default.contents(atPath: pki.caCertificate) ?? Data())),
            credentials: .bearerToken("test-token"))
        kube.qps = 0
        let cluster = KubeCluster(client: try KubeClient(kube), identity: "berth-ec2-class-story")
        cluster.start()
        defer { cluster.stop() }

        var gpu = Self.gpuClass()
        gpu.role = world.cluster + "-node"
        let ec2 = try nodeClassCloud(world, classes: [gpu], pools: ["gpu": "gpu"])
        try resolveSigned(ec2)
        _ = try await ec2.resolvedNodeClasses()
        let catalog = try await ec2.catalog().schedulable
        let cloud = RecordingEC2(ec2)
        var config = ProvisionerConfig()
        config.clusterName = "moto-class-story"
        config.pools = [Pool(name: "gpu", requirements: Pool.default.requirements)]
        config.pools[0].nodeClass = "gpu"
        let clock = ManualClock()
        let provisioner = Provisioner(config: config, catalog: catalog, cluster: cluster, cloud: cloud, wallTime: WallTime(clock: clock, epoch: Date()))
        let kubelets = MotoKubelets(server: server, cloud: cloud, clusterName: "moto-class-story", catalog: catalog)
        func tick(until condition: () async throws -> Bool, limit: Int) async throws -> Bool {
            for _ in 0..<limit {
                if try await condition() { return true }
                clock.advance(by: .seconds(1))
                try await kubelets.step()
                guard waitUntil(timeout: .seconds(10), { cluster.hasSynced && cluster.pods.list().count == server.objects(.pods).count
                    && cluster.nodes.list().count == server.objects(.nodes).count }) else { throw TestFailure("caches did not catch up") }
                _ = await provisioner.step()
            }
            return try await condition()
        }
        let notebook: JSON = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "alice", "namespace": "jhub", "labels": ["component": "singleuser-server", "app": "jupyterhub"]],
            "spec": ["containers": [["name": "notebook", "image": "quay.io/jupyter/pytorch-notebook:latest",
                                     "resources": ["limits": ["nvidia.com/gpu": "1"], "requests": ["cpu": "2", "memory": "8G"]]]]],
            "status": ["phase": "Pending"],
        ]
        _ = server.write(.pods, try ManifestMutator(policy: MutationPolicy()).mutate(notebook).mutated)
        #expect(try await tick(until: { server.object(.pods, namespace: "jhub", name: "alice")?["status"]?["phase"]?.stringValue == "Running" }, limit: 120))
        let instance = try #require(try await ec2.list(clusterTag: "moto-class-story").first)
        #expect(instance.instanceType == "g4dn.xlarge" && instance.drift == nil)
        #expect(instance.tags[CloudTag.image] == MotoServer.publicParameters["/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/recommended/image_id"])
        #expect(instance.tags["team"] == "ml", "the node class's tags")
        let launch = try #require(cloud.request(of: instance.providerID))
        #expect(launch.attempts.count > 10, "the notebook's alternatives went with the launch")
        let nodeName = try #require(server.object(.pods, namespace: "jhub", name: "alice")?["spec"]?["nodeName"]?.stringValue)
        #expect(server.object(.nodes, name: nodeName)?["metadata"]?["labels"]?["karpenter.k8s.aws/instance-gpu-name"]?.stringValue == "t4")
        try await ec2.delete(providerID: instance.providerID)
    }
}
