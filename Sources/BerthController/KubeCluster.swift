import BerthAdmission
import BerthKube
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import CoreMetrics
import Foundation
import Logging
import Synchronization

/// The cluster port over the Kubernetes API: informers on Pods and Nodes for reading, the
/// client for acting (node updates, evictions through `pods/eviction`, Node deletion, Events).
/// Pods are read into ``PodSnapshot``s once per resourceVersion, with the webhook's GPU
/// classification (the same `WebhookConfig`), and the zones of their bound volumes.
public final class KubeCluster: ClusterPort {
    public let client: KubeClient
    public let pods: Informer
    public let nodes: Informer
    private let webhook: WebhookConfig
    private let gpuResource: String
    private let identity: String
    private let logger: Logger
    private let cache = Mutex<Cache>(Cache())

    struct Cache {
        /// uid → (resourceVersion, snapshot)
        var pods: [String: (String, PodSnapshot)] = [:]
        var nodes: [String: (String, NodeSnapshot)] = [:]
        /// PVC `namespace/name` → zones of its bound volume (nil: unbound or no zone).
        var volumeZones: [String: [String]?] = [:]
        var badObjects: Set<String> = []
    }

    /// `identity`: this replica's name, the Events' reportingInstance.
    public init(client: KubeClient, webhook: WebhookConfig = WebhookConfig(), gpuResource: String = "nvidia.com/gpu", identity: String,
                metricsFactory: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "berth.kube.cluster")) {
        self.client = client
        self.webhook = webhook
        self.gpuResource = gpuResource
        self.identity = identity
        self.logger = logger
        pods = Informer(client: client, resource: .pods, metricsFactory: metricsFactory, logger: logger)
        nodes = Informer(client: client, resource: .nodes, metricsFactory: metricsFactory, logger: logger)
    }

    public func start() {
        pods.start()
        nodes.start()
    }

    public func stop() {
        pods.stop()
        nodes.stop()
    }

    public var hasSynced: Bool { pods.hasSynced && nodes.hasSynced }

    public struct NotSynced: Error, CustomStringConvertible {
        public var description: String { "the pod and node caches have not synced yet" }
    }

    // MARK: Reading

    public func snapshot() async throws -> ClusterSnapshot {
        // Right after start the first lists are in flight: give them a moment before giving up the round.
        for _ in 0..<100 where !hasSynced { try await Task.sleep(for: .milliseconds(50)) }
        guard hasSynced else { throw NotSynced() }
        let podObjects = pods.list()
        let nodeObjects = nodes.list()
        var result = ClusterSnapshot()
        result.pods.reserveCapacity(podObjects.count)
        var seenPods = Set<String>()
        var needZones: [(Int, JSON)] = []
        for object in podObjects {
            guard let snapshot = podSnapshot(object) else { continue }
            seenPods.insert(snapshot.uid)
            if snapshot.isPendingGPU, Self.claimNames(object).count > 0 { needZones.append((result.pods.count, object)) }
            result.pods.append(snapshot)
        }
        // Claims and volumes are read from the API server (blocking calls): off the concurrency pool.
        let objects = needZones.map(\.1)
        let zones = await Offload.run { [self] in objects.map { volumeZones($0) } }
        for ((index, _), zones) in zip(needZones, zones) {
            guard let zones else { continue }
            result.pods[index].requirements.constraints = result.pods[index].requirements.constraints.withZones(zones)
        }
        for object in nodeObjects {
            if let node = nodeSnapshot(object) { result.nodes.append(node) }
        }
        cache.withLock { cache in
            cache.pods = cache.pods.filter { seenPods.contains($0.key) }
        }
        result.pods.sort { $0.key < $1.key }
        result.nodes.sort { $0.name < $1.name }
        return result
    }

    func podSnapshot(_ object: JSON) -> PodSnapshot? {
        let uid = object["metadata"]?["uid"]?.stringValue ?? ""
        let version = object["metadata"]?["resourceVersion"]?.stringValue ?? ""
        if let cached = cache.withLock({ $0.pods[uid] }), cached.0 == version, !version.isEmpty { return cached.1 }
        let snapshot = Self.podSnapshot(object, webhook: webhook)
        if let snapshot {
            cache.withLock { $0.pods[uid] = (version, snapshot) }
        } else {
            let key = "pod/\(object["metadata"]?["namespace"]?.stringValue ?? "")/\(object["metadata"]?["name"]?.stringValue ?? "?")@\(version)"
            if cache.withLock({ $0.badObjects.insert(key).inserted }) { logger.warning("ignoring a malformed pod", metadata: ["object": "\(key)"]) }
        }
        return snapshot
    }

    /// A Pod's JSON as the provisioner sees it; nil when even its metadata is unreadable. A pod
    /// whose scheduling fields are malformed is returned with `invalid` set (reported on it).
    public static func podSnapshot(_ object: JSON, webhook: WebhookConfig) -> PodSnapshot? {
        // Scheduling fields (requests, tolerations, affinity) are read once, by PodRequirements —
        // the scheduler's own reader; only metadata and status are read here.
        guard let meta = try? ObjectMeta(json: object["metadata"], kind: "Pod") else { return nil }
        let ownerKinds = (object["metadata"]?["ownerReferences"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }
        let daemon = ownerKinds.contains("DaemonSet") || meta.annotations["kubernetes.io/config.mirror"] != nil
        let nodeName = object["spec"]?["nodeName"]?.stringValue ?? ""
        let phaseText = object["status"]?["phase"]?.stringValue ?? ""
        let scheduled = (object["status"]?["conditions"]?.arrayValue ?? []).first { $0["type"]?.stringValue == "PodScheduled" }
        let unschedulable = scheduled?["status"]?.stringValue == "False" && scheduled?["reason"]?.stringValue == "Unschedulable"
        var requirements: PodRequirements
        var invalid: String?
        do {
            requirements = try PodRequirements(pod: object, config: webhook)
        } catch {
            requirements = PodRequirements(namespace: meta.namespace, name: meta.name, requests: .zero)
            invalid = error.description
        }
        return PodSnapshot(
            key: meta.key, uid: meta.uid, nodeName: nodeName,
            phase: PodSnapshot.Phase(rawValue: phaseText) ?? (phaseText.isEmpty ? .pending : .unknown),
            terminating: meta.deletionTimestamp != nil, daemon: daemon, doNotDisrupt: meta.annotations["karpenter.sh/do-not-disrupt"] == "true",
            unschedulable: unschedulable && nodeName.isEmpty, requirements: requirements, invalid: invalid)
    }

    func nodeSnapshot(_ object: JSON) -> NodeSnapshot? {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        let version = object["metadata"]?["resourceVersion"]?.stringValue ?? ""
        if let cached = cache.withLock({ $0.nodes[name] }), cached.0 == version, !version.isEmpty { return cached.1 }
        guard let node = try? Node(json: object) else {
            if cache.withLock({ $0.badObjects.insert("node/\(name)@\(version)").inserted }) { logger.warning("ignoring a malformed node", metadata: ["object": "node/\(name)"]) }
            return nil
        }
        let snapshot = Self.nodeSnapshot(node, gpuResource: gpuResource)
        cache.withLock { $0.nodes[name] = (version, snapshot) }
        return snapshot
    }

    public static func nodeSnapshot(_ node: Node, gpuResource: String) -> NodeSnapshot {
        let a = node.allocatable
        let allocatable = Resources(
            cpuMilli: a["cpu"]?.milli ?? 0, memory: a["memory"]?.value ?? 0, ephemeralStorage: a["ephemeral-storage"]?.value ?? 0,
            gpus: a[gpuResource]?.value ?? 0, pods: a["pods"]?.value ?? 0)
        return NodeSnapshot(
            name: node.metadata.name, providerID: node.providerID, labels: node.metadata.labels, taints: node.taints, ready: node.isReady,
            unschedulable: node.unschedulable, allocatable: allocatable, gpuResource: gpuResource,
            doNotDisrupt: node.metadata.annotations["karpenter.sh/do-not-disrupt"] == "true", deleting: node.metadata.deletionTimestamp != nil)
    }

    static func claimNames(_ pod: JSON) -> [String] {
        (pod["spec"]?["volumes"]?.arrayValue ?? []).compactMap { $0["persistentVolumeClaim"]?["claimName"]?.stringValue }
    }

    /// Zone labels a PersistentVolume's node affinity may name (the EBS CSI driver's, the
    /// well-known one, and the deprecated beta one).
    static let zoneKeys: Set<String> = ["topology.kubernetes.io/zone", "topology.ebs.csi.aws.com/zone", "failure-domain.beta.kubernetes.io/zone"]

    /// The zones the pod's bound volumes allow (intersection), nil when none pins it.
    func volumeZones(_ pod: JSON) -> [String]? {
        let namespace = pod["metadata"]?["namespace"]?.stringValue ?? "default"
        var allowed: Set<String>?
        for claim in Self.claimNames(pod) {
            let key = "\(namespace)/\(claim)"
            let cached = cache.withLock { $0.volumeZones[key] }
            let zones: [String]?
            if let cached {
                zones = cached
            } else {
                zones = lookUpZones(namespace: namespace, claim: claim)
                // Only bound volumes are remembered: an unbound claim may bind later.
                if zones != nil { cache.withLock { $0.volumeZones[key] = .some(zones) } }
            }
            if let zones { allowed = allowed.map { $0.intersection(zones) } ?? Set(zones) }
        }
        return allowed.map { $0.sorted() }
    }

    private func lookUpZones(namespace: String, claim: String) -> [String]? {
        do {
            let pvc = try client.get(.persistentVolumeClaims, namespace: namespace, name: claim)
            guard let volume = pvc["spec"]?["volumeName"]?.stringValue, !volume.isEmpty else { return nil }
            let pv = try client.get(.persistentVolumes, name: volume)
            var zones: [String] = []
            for term in pv["spec"]?["nodeAffinity"]?["required"]?["nodeSelectorTerms"]?.arrayValue ?? [] {
                for expression in term["matchExpressions"]?.arrayValue ?? [] where Self.zoneKeys.contains(expression["key"]?.stringValue ?? "") {
                    zones += (expression["values"]?.arrayValue ?? []).compactMap(\.stringValue)
                }
            }
            if zones.isEmpty, let label = Self.zoneKeys.lazy.compactMap({ pv["metadata"]?["labels"]?[$0]?.stringValue }).first { zones = [label] }
            return zones.isEmpty ? nil : zones
        } catch {
            logger.debug("no zone for claim \(namespace)/\(claim): \(error)")
            return nil
        }
    }

    // MARK: Acting

    /// Labels and taints on a Node the kubelet, the node lifecycle controller, the CNI and the GPU
    /// operator write at the same time: never a read-modify-write of the whole object. Labels go in
    /// a strategic merge patch naming only Berth's keys; taints (a list the apiserver replaces
    /// whole) in a JSON patch that tests the list read is still there (`KubeClient.patchList`).
    public func updateNode(name: String, labels: [String: String], addTaints: [Taint], removeTaints: [Taint]) async throws {
        try await Offload.run { [client] () throws(KubeError) -> Void in
            if !labels.isEmpty {
                var nodeLabels = JSONObject()
                for (key, value) in labels.sorted(by: { $0.key < $1.key }) { nodeLabels[key] = .string(value) }
                _ = try client.patch(.nodes, name: name, ["metadata": ["labels": .object(nodeLabels)]], type: .strategicMerge)
            }
            guard !addTaints.isEmpty || !removeTaints.isEmpty else { return }
            try client.patchList(.nodes, name: name, at: ["spec", "taints"]) { current in
                var taints = current.filter { taint in
                    !removeTaints.contains { $0.key == taint["key"]?.stringValue && $0.effect == taint["effect"]?.stringValue }
                }
                for taint in addTaints where !taints.contains(where: { $0["key"]?.stringValue == taint.key && $0["effect"]?.stringValue == taint.effect }) {
                    taints.append(taint.json)
                }
                return taints
            }
        }
    }

    public func evict(pod: String) async -> ActionResult {
        let parts = pod.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return .evictionFailed(pod: pod, message: "not a namespace/name key") }
        do {
            try await Offload.run { [client] () throws(KubeError) -> Void in try client.evict(namespace: parts[0], name: parts[1]) }
            return .evicted(pod: pod)
        } catch let error where error.isNotFound {
            return .evicted(pod: pod)
        } catch let error {
            if case let .evictionBlocked(status, _, _) = error { return .evictionFailed(pod: pod, message: status.message + (status.causes.first.map { " (\($0))" } ?? "")) }
            return .evictionFailed(pod: pod, message: error.description)
        }
    }

    public func deleteNode(name: String) async throws {
        do {
            try await Offload.run { [client] () throws(KubeError) -> Void in _ = try client.delete(.nodes, name: name) }
        } catch let error where error.isNotFound {
            return
        }
    }

    public func record(_ event: ProvisionerEvent) async {
        let object: JSON?
        switch event.regarding {
        case let .pod(key): object = pods.get(key)
        case let .node(name): object = nodes.get(name)
        }
        guard let object else { return }  // gone already: the log line stays
        do {
            try await Offload.run { [client, identity] () throws(KubeError) -> Void in
                _ = try client.recordEvent(
                    regarding: object, type: event.type, reason: event.reason, action: Self.action(for: event.reason), note: event.message,
                    reportingInstance: identity)
            }
        } catch {
            logger.debug("recording event failed: \(error)", metadata: ["reason": "\(event.reason)"])
        }
    }

    static func action(for reason: String) -> String {
        switch reason {
        case "Nominated", "FailedProvisioning": "Provisioning"
        case "Disrupting", "DisruptionBlocked": "Disrupting"
        default: "Reconciling"
        }
    }
}
