import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation

/// A deterministic little world for the decision core: pods, nodes and instances as plain values;
/// every action is carried out at once (the way the runtime would, minus the I/O) and its outcome
/// fed back. Time moves only when a test says so.
struct CoreWorld {
    var core: ProvisionerCore
    var now = Date(timeIntervalSince1970: 1_800_000_000)
    var pods: [String: PodSnapshot] = [:]
    var nodes: [String: NodeSnapshot] = [:]
    var instances: [String: CloudInstance] = [:]
    /// Launch requests, in order (retries included).
    var launches: [LaunchRequest] = []
    var events: [ProvisionerEvent] = []
    var evictions: [String] = []
    var terminations: [String] = []
    var deletedNodes: [String] = []
    var deletedPods: [String] = []
    var stops: [String] = []
    var starts: [String] = []
    /// Instances the cloud's listing does not show yet (EC2's eventual consistency).
    var listingLags: Set<String> = []
    /// Offerings with no capacity.
    var outOfCapacity: Set<OfferingKey> = []
    /// Pods whose eviction a PodDisruptionBudget refuses (429).
    var protectedByBudget: Set<String> = []
    /// Launches the cloud accepts but whose answer is lost (the runtime crashes or times out).
    var loseLaunchAnswers = false
    /// Every create fails with an unknown outcome (a 5xx, a reset connection).
    var launchesFail = false
    /// Creates in these pools are refused by the cloud (permissions, a missing image): this error.
    var refusals: [String: CloudError] = [:]
    var instanceCounter = 0

    init(config: ProvisionerConfig = ProvisionerConfig(), catalog: InstanceCatalog = .builtIn(), seed: UInt64 = 7) {
        core = ProvisionerCore(config: config, catalog: catalog, seed: seed)
    }

    var config: ProvisionerConfig { core.config }

    /// One reconcile, listing the cloud, with every action carried out.
    @discardableResult
    mutating func round(list: Bool = true) -> [ProvisionerAction] {
        let snapshot = ClusterSnapshot(
            pods: pods.values.sorted { $0.key < $1.key }, nodes: nodes.values.sorted { $0.name < $1.name },
            cloudInstances: list ? instances.values.filter { !listingLags.contains($0.providerID) }.sorted { $0.launchTime < $1.launchTime } : nil)
        let actions = core.reconcile(snapshot, now: now)
        for action in actions { perform(action) }
        return actions
    }

    mutating func perform(_ action: ProvisionerAction) {
        switch action {
        case let .launch(request):
            launches.append(request)
            if let existing = instances.values.first(where: { $0.launchID == request.launchID }) {
                if !loseLaunchAnswers { core.record(.launched(launchID: request.launchID, existing), now: now) }
                return
            }
            if launchesFail {
                core.record(.launchFailed(launchID: request.launchID, .other("HTTP 503")), now: now)
                return
            }
            if let refusal = refusals[request.pool] {
                core.record(.launchFailed(launchID: request.launchID, refusal), now: now)
                return
            }
            let type = request.candidates[0]
            let offering = type.offerings[0]
            let key = OfferingKey(instanceType: type.name, zone: offering.zone, capacityType: offering.capacityType)
            if outOfCapacity.contains(key) {
                core.record(.launchFailed(launchID: request.launchID, .insufficientCapacity(offerings: [key])), now: now)
                return
            }
            instanceCounter += 1
            let instance = CloudInstance(
                providerID: "sim:///\(offering.zone)/i-\(instanceCounter)", instanceType: type.name, zone: offering.zone,
                capacityType: offering.capacityType, launchID: request.launchID, tags: request.tags, state: .pending, launchTime: now,
                pricePerHour: offering.pricePerHour)
            instances[instance.providerID] = instance
            if !loseLaunchAnswers { core.record(.launched(launchID: request.launchID, instance), now: now) }
        case let .terminate(providerID, _, _):
            terminations.append(providerID)
            if instances.removeValue(forKey: providerID) != nil {
                core.record(.terminated(providerID: providerID), now: now)
            } else {
                core.record(.terminateFailed(providerID: providerID, .notFound(providerID: providerID)), now: now)
            }
        case let .updateNode(name, labels, removeLabels, addTaints, removeTaints):
            guard var node = nodes[name] else { return }
            node.labels.merge(labels) { _, new in new }
            for key in removeLabels { node.labels[key] = nil }
            node.taints.removeAll { taint in removeTaints.contains { $0.key == taint.key && $0.effect == taint.effect } }
            for taint in addTaints where !node.taints.contains(taint) { node.taints.append(taint) }
            nodes[name] = node
        case let .evict(pod, _):
            evictions.append(pod)
            if protectedByBudget.contains(pod) {
                core.record(.evictionFailed(pod: pod, message: "Cannot evict pod as it would violate the pod's disruption budget."), now: now)
            } else {
                pods[pod] = nil
                core.record(.evicted(pod: pod), now: now)
            }
        case let .annotatePod(pod, annotations):
            if let intent = LaunchIntent(annotations: annotations) { pods[pod]?.launchIntent = intent }
        case let .deletePod(pod, _):
            deletedPods.append(pod)
            pods[pod] = nil
            core.record(.podDeleted(pod: pod), now: now)
        case let .deleteNode(name):
            deletedNodes.append(name)
            nodes[name] = nil
            core.record(.nodeDeleted(name: name), now: now)
        case let .stop(providerID, _):
            stops.append(providerID)
            guard instances[providerID] != nil else {
                core.record(.stopFailed(providerID: providerID, .notFound(providerID: providerID)), now: now)
                return
            }
            instances[providerID]?.state = .stopped
            core.record(.stopped(providerID: providerID), now: now)
        case let .start(providerID, _):
            starts.append(providerID)
            guard let instance = instances[providerID] else {
                core.record(.startFailed(providerID: providerID, .notFound(providerID: providerID)), now: now)
                return
            }
            let key = OfferingKey(instanceType: instance.instanceType, zone: instance.zone, capacityType: instance.capacityType)
            if outOfCapacity.contains(key) {
                core.record(.startFailed(providerID: providerID, .insufficientCapacity(offerings: [key])), now: now)
                return
            }
            instances[providerID]?.state = .pending
            core.record(.started(providerID: providerID), now: now)
        case let .event(event):
            events.append(event)
        }
    }

    mutating func advance(_ seconds: Double) { now = now.addingTimeInterval(seconds) }

    /// Rounds every second for `seconds`.
    mutating func run(for seconds: Int) {
        for _ in 0..<seconds {
            advance(1)
            round()
        }
    }

    /// The kubelet of this instance registers its Node (taints and labels as the launch asked),
    /// Ready, with its GPUs allocatable unless `gpus` is false.
    @discardableResult
    mutating func register(_ instance: CloudInstance, gpus: Bool = true, name: String? = nil) -> String {
        let request = launches.last { $0.launchID == instance.launchID }
        let type = InstanceCatalog.builtIn()[instance.instanceType]!
        var allocatable = config.overhead.allocatable(type)
        if !gpus { allocatable.gpus = 0 }
        let nodeName = name ?? "ip-\(instance.providerID.split(separator: "/").last ?? "x").ec2.internal"
        nodes[nodeName] = NodeSnapshot(
            name: nodeName, providerID: instance.providerID, labels: request?.labels ?? [:], taints: request?.taints ?? [], ready: true,
            allocatable: allocatable)
        return nodeName
    }

    mutating func registerAll(gpus: Bool = true) {
        for instance in instances.values.sorted(by: { $0.providerID < $1.providerID }) where !nodes.values.contains(where: { $0.providerID == instance.providerID }) {
            register(instance, gpus: gpus)
        }
    }

    /// kube-scheduler binds the pod.
    mutating func bind(_ pod: String, to node: String) {
        pods[pod]?.nodeName = node
        pods[pod]?.unschedulable = false
        pods[pod]?.phase = .running
    }

    /// Binds every pending pod nominated (by event) to a node launched for it.
    mutating func bindNominated() {
        for claim in core.claims.values {
            guard let node = claim.nodeName else { continue }
            for pod in claim.nominated.keys.sorted() { bind(pod, to: node) }
        }
    }

    func node(of launch: String) -> String? { core.claims[launch]?.nodeName }

    /// A notebook got its node, and stopped before it was bound: the node is Berth's and empty.
    mutating func nodeThatServedANotebook() throws -> String {
        round()
        add(notebook("alice"))
        run(for: 2)
        guard let instance = instances.values.first else { throw HarnessError.nothingLaunched }
        let node = register(instance)
        pods["jupyter/alice"] = nil
        return node
    }
    func events(_ reason: String) -> [ProvisionerEvent] { events.filter { $0.reason == reason } }
}

enum HarnessError: Error { case nothingLaunched }

// MARK: - Pods

/// A GPU notebook as the webhook leaves it: GPU request, the GPU toleration, the GPU-node affinity.
func notebook(
    _ name: String, namespace: String = "jupyter", gpus: Int64 = 1, cpu: Int64 = 2000, memory: Int64 = 8 << 30, gpuType: String? = nil,
    zones: [String]? = nil, doNotDisrupt: Bool = false
) -> PodSnapshot {
    gpuPod(name, namespace: namespace, gpus: gpus, cpu: cpu, memory: memory, gpuType: gpuType, zones: zones, notebook: true, doNotDisrupt: doNotDisrupt)
}

func gpuPod(
    _ name: String, namespace: String = "jupyter", gpus: Int64 = 1, cpu: Int64 = 2000, memory: Int64 = 8 << 30, gpuType: String? = nil,
    zones: [String]? = nil, notebook: Bool = false, doNotDisrupt: Bool = false
) -> PodSnapshot {
    var terms = [LabelRequirement(key: WellKnownLabel.gpuPresent, operator: .in, values: ["true"])]
    if let gpuType { terms.append(LabelRequirement(key: WellKnownLabel.gpuName, operator: .in, values: [gpuType])) }
    // As the webhook leaves a notebook (keepNotebooksOffSharedNodes).
    if notebook { terms.append(LabelRequirement(key: "berth.dev/node-role", operator: .notIn, values: ["shared"])) }
    let requirements = PodRequirements(
        namespace: namespace, name: name, requests: Resources(cpuMilli: cpu, memory: memory, gpus: gpus), gpuResource: "nvidia.com/gpu",
        isNotebook: notebook,
        constraints: PodConstraints(
            tolerations: [Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule")], requiredTerms: [terms], zones: zones))
    return PodSnapshot(key: "\(namespace)/\(name)", unschedulable: true, requirements: requirements)
}

/// A CPU pod (an Airflow task, say), bound to `node`.
func cpuPod(_ name: String, namespace: String = "airflow", on node: String, daemon: Bool = false, doNotDisrupt: Bool = false) -> PodSnapshot {
    let requirements = PodRequirements(namespace: namespace, name: name, requests: Resources(cpuMilli: 500, memory: 1 << 30))
    return PodSnapshot(key: "\(namespace)/\(name)", nodeName: node, phase: .running, daemon: daemon, doNotDisrupt: doNotDisrupt, requirements: requirements)
}

extension CoreWorld {
    mutating func add(_ pod: PodSnapshot) { pods[pod.key] = pod }
}
