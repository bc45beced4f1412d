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
        /// informer key (namespace/name) → the pod as last read. Boxed: a dictionary of 50,000
        /// entries has 131,072 buckets, and a bucket holding a whole snapshot costs ~270 bytes.
        var pods: [String: CachedPod] = [:]
        var nodes: [String: (String, NodeSnapshot)] = [:]
        /// PVC `namespace/name` → zones of its bound volume (nil: unbound or no zone).
        var volumeZones: [String: [String]?] = [:]
        var badObjects: Set<String> = []
        /// One copy of each distinct set of placement constraints: most pods of a cluster share
        /// theirs (the default tolerations, a deployment's affinity), and a snapshot per pod would
        /// otherwise hold its own copy of every toleration string (50,000 pods: tens of MiB).
        var constraints: Set<PodConstraints> = []
    }

    final class CachedPod: Sendable {
        let version: String
        let snapshot: PodSnapshot
        let claims: [String]
        init(version: String, snapshot: PodSnapshot, claims: [String]) {
            self.version = version
            self.snapshot = snapshot
            self.claims = claims
        }
    }

    /// `identity`: this replica's name, the Events' reportingInstance.
    public init(client: KubeClient, webhook: WebhookConfig = WebhookConfig(), gpuResource: String = "nvidia.com/gpu", identity: String,
                metricsFactory: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "berth.kube.cluster")) {
        self.client = client
        self.webhook = webhook
        self.gpuResource = gpuResource
        self.identity = identity
        self.logger = logger
        pods = Informer(client: client, resource: .pods, selecting: Self.podSelection, metricsFactory: metricsFactory, logger: logger)
        nodes = Informer(client: client, resource: .nodes, selecting: Self.nodeSelection, metricsFactory: metricsFactory, logger: logger)
    }

    /// What of a Pod the provisioner reads (its snapshot, the webhook's classification through
    /// `PodRequirements`, inter-pod constraints, Events' `regarding`): the informer keeps this
    /// projection only. Labels are kept whole (other pods' affinity and spread select on them);
    /// managedFields, env, volumes but their claims, probes, container statuses and the rest of
    /// the status are never stored. `ProjectionEquivalenceTests` holds it to the whole object.
    public static let podSelection: JSONSelection = {
        let resources = JSONSelection.members([
            "resources": .members(["limits": .all, "requests": .all]), "restartPolicy": .all,
            "ports": .elements(.members(["containerPort": .all, "hostPort": .all, "hostIP": .all, "protocol": .all])),
        ])
        return .members([
            "metadata": .members([
                "name": .all, "namespace": .all, "uid": .all, "resourceVersion": .all, "deletionTimestamp": .all, "creationTimestamp": .all,
                "labels": .all,
                "annotations": .members([
                    "kubernetes.io/config.mirror": .all, "karpenter.sh/do-not-disrupt": .all,
                    ProvisionerCore.launchIDAnnotation: .all, ProvisionerCore.launchTimeAnnotation: .all,
                ]),
                "ownerReferences": .elements(.members(["kind": .all])),
            ]),
            "spec": .members([
                "nodeName": .all, "tolerations": .all, "nodeSelector": .all, "overhead": .all,
                "affinity": .members([
                    "nodeAffinity": .members(["requiredDuringSchedulingIgnoredDuringExecution": .all]),
                    "podAffinity": .members(["requiredDuringSchedulingIgnoredDuringExecution": .all]),
                    "podAntiAffinity": .members(["requiredDuringSchedulingIgnoredDuringExecution": .all]),
                ]),
                "topologySpreadConstraints": .all, "hostNetwork": .all,
                "containers": .elements(resources), "initContainers": .elements(resources),
                "volumes": .elements(.members(["persistentVolumeClaim": .members(["claimName": .all])])),
            ]),
            "status": .members(["phase": .all, "conditions": .elements(.members(["type": .all, "status": .all, "reason": .all]))]),
        ])
    }()

    /// What of a Node the provisioner reads: its labels, Berth's annotation, providerID, taints,
    /// capacity, allocatable and condition statuses (not images, nodeInfo, addresses, managedFields).
    public static let nodeSelection: JSONSelection = .members([
        "metadata": .members([
            "name": .all, "uid": .all, "resourceVersion": .all, "deletionTimestamp": .all, "labels": .all, "finalizers": .all,
            "annotations": .members(["karpenter.sh/do-not-disrupt": .all]),
        ]),
        "spec": .members(["providerID": .all, "unschedulable": .all, "taints": .all]),
        "status": .members(["capacity": .all, "allocatable": .all, "conditions": .elements(.members(["type": .all, "status": .all]))]),
    ])

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
        // Only pods whose resourceVersion changed are decoded from the cache and read again.
        let podVersions = pods.resourceVersions()
        let nodeObjects = nodes.list()
        var result = ClusterSnapshot()
        result.pods.reserveCapacity(podVersions.count)
        var seenPods = Set<String>()
        seenPods.reserveCapacity(podVersions.count)
        var needZones: [(Int, JSON)] = []
        for (key, version) in podVersions {
            guard let (snapshot, claims) = podSnapshot(key: key, version: version) else { continue }
            seenPods.insert(key)
            if snapshot.isPendingGPU, !claims.isEmpty, let object = pods.get(key) { needZones.append((result.pods.count, object)) }
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
            let before = cache.pods.count
            if cache.pods.count > seenPods.count { cache.pods = cache.pods.filter { seenPods.contains($0.key) } }
            // Pods went away: forget the constraints no pod holds any more.
            if cache.pods.count < before || cache.constraints.count > cache.pods.count {
                cache.constraints = Set(cache.pods.values.map(\.snapshot.requirements.constraints))
            }
        }
        result.pods.sort { $0.key < $1.key }
        result.nodes.sort { $0.name < $1.name }
        return result
    }

    func podSnapshot(key: String, version: String) -> (PodSnapshot, [String])? {
        if let cached = cache.withLock({ $0.pods[key] }), cached.version == version, !version.isEmpty { return (cached.snapshot, cached.claims) }
        guard let object = pods.get(key) else { return nil }
        let snapshot = Self.podSnapshot(object, webhook: webhook)
        let claims = Self.claimNames(object)
        if var snapshot {
            cache.withLock { cache in
                snapshot.requirements.constraints = cache.constraints.insert(snapshot.requirements.constraints).memberAfterInsert
                snapshot.key = key  // the informer's key string, shared rather than copied
                cache.pods[key] = CachedPod(version: version, snapshot: snapshot, claims: claims)
            }
            return (snapshot, claims)
        } else {
            let key = "pod/\(object["metadata"]?["namespace"]?.stringValue ?? "")/\(object["metadata"]?["name"]?.stringValue ?? "?")@\(version)"
            if cache.withLock({ $0.badObjects.insert(key).inserted }) { logger.warning("ignoring a malformed pod", metadata: ["object": "\(key)"]) }
            return nil
        }
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
            unschedulable: unschedulable && nodeName.isEmpty, requirements: requirements, invalid: invalid,
            deletionTimestamp: meta.deletionTimestamp.flatMap(RFC3339.parse), launchIntent: LaunchIntent(annotations: meta.annotations),
            createdAt: meta.creationTimestamp.flatMap(RFC3339.parse))
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
    public func updateNode(name: String, labels: [String: String], removeLabels: [String] = [], addTaints: [Taint], removeTaints: [Taint]) async throws {
        try await Offload.run { [client] () throws(KubeError) -> Void in
            if !labels.isEmpty || !removeLabels.isEmpty {
                var nodeLabels = JSONObject()
                for (key, value) in labels.sorted(by: { $0.key < $1.key }) { nodeLabels[key] = .string(value) }
                for key in removeLabels.sorted() where labels[key] == nil { nodeLabels[key] = .null }
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

    public func annotatePod(pod: String, annotations: [String: String]) async throws {
        let parts = pod.split(separator: "/", maxSplits: 1).map(String.init)
        let namespace = parts.count == 2 ? parts[0] : ""
        let name = parts.last ?? pod
        let values = JSONObject(annotations.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .string($0.value)) })
        let patch: JSON = ["metadata": ["annotations": .object(values)]]
        try await Offload.run { [client] () throws(KubeError) -> Void in
            _ = try client.patch(.pods, namespace: namespace, name: name, patch)
        }
    }

    public func deletePod(pod: String) async throws {
        let parts = pod.split(separator: "/", maxSplits: 1).map(String.init)
        let namespace = parts.count == 2 ? parts[0] : ""
        let name = parts.last ?? pod
        let failure: KubeError? = await Offload.run { [client] () -> KubeError? in
            do throws(KubeError) {
                _ = try client.delete(.pods, namespace: namespace, name: name)
                return nil
            } catch {
                return error.isNotFound ? nil : error
            }
        }
        if let failure { throw failure }
    }

    public func record(_ event: ProvisionerEvent) async {
        let object: JSON?
        // The caches hold projections without apiVersion and kind: the Event's `regarding` names them.
        switch event.regarding {
        case let .pod(key): object = pods.get(key).map { Self.typed($0, apiVersion: "v1", kind: "Pod") }
        case let .node(name): object = nodes.get(name).map { Self.typed($0, apiVersion: "v1", kind: "Node") }
        case .provisioner: object = nil  // no pod of its own known: the log line is all
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

    static func typed(_ object: JSON, apiVersion: String, kind: String) -> JSON {
        guard case .object(var members) = object else { return object }
        members["apiVersion"] = .string(apiVersion)
        members["kind"] = .string(kind)
        return .object(members)
    }

    static func action(for reason: String) -> String {
        switch reason {
        case "Nominated", "FailedProvisioning": "Provisioning"
        case "Disrupting", "DisruptionBlocked": "Disrupting"
        default: "Reconciling"
        }
    }
}
