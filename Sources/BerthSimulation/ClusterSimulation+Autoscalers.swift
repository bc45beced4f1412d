import BerthModel
import BerthProvisioner
import BerthScheduling

/// cluster-autoscaler as configured by default (its FAQ and flags): a scan every 10 s; pending
/// pods that fit a node still booting wait for it (a GPU node without allocatable GPUs counts as
/// upcoming); otherwise one expansion per scan, chosen by the `least-waste` expander (least idle
/// CPU + memory fraction on the new nodes, ties at random) among the node groups whose template
/// fits, sized by first-fit-decreasing bin packing; scale-down of GPU nodes judged on GPU requests
/// (utilisation below 0.5), unneeded for 10 min, not within 10 min of a scale-up, whose pods all
/// fit elsewhere; empty nodes are removed up to 10 at a time, others drained one per scan.
/// Not modelled: scale-down of nodes with local storage or unreplicated pods (the trace has none),
/// the CPU group (shared by every policy) and its scale-ups (so they never delay GPU scale-down).
struct AutoscalerState {
    static let scanInterval = 10.0
    static let unneededTime = 600.0
    static let delayAfterAdd = 600.0
    static let utilizationThreshold = 0.5
    static let maxEmptyBulkDelete = 10

    /// One node group per GPU instance type, in the first zone.
    var groups: [(type: InstanceType, offering: Offering, labels: [String: String])]
    var lastScaleUp = -Double.infinity
    var random: SeededGenerator
    var launches = 0
    var cloud: SimulatedCloud<ManualClock>?
    let clock = ManualClock()

    init(catalog: InstanceCatalog, seed: UInt64) {
        groups = catalog.types.compactMap { type in type.offerings.first.map { (type, $0, type.labels(for: $0)) } }
        random = SeededGenerator(seed: seed, key: "cluster-autoscaler")
    }

    static let gpuTaint = Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")
    static let toBeDeleted = Taint(key: "ToBeDeletedByClusterAutoscaler", value: "", effect: "NoSchedule")
}

extension ClusterSimulation {
    // MARK: - cluster-autoscaler

    func clusterAutoscalerScan() async {
        scaleUpGPU()
        await launchPending()
        scaleDownGPU()
    }

    private func scaleUpGPU() {
        let waiting = pending.filter { pods[$0].isGPU && pods[$0].unschedulable && pods[$0].state == .pending }
        guard !waiting.isEmpty else { return }
        // Pods that fit a node still coming up wait for it.
        var upcoming: [(labels: [String: String], taints: [Taint], free: Resources)] = []
        for node in nodes where node.isGPU && node.terminatedAt == nil && !node.deleted && (!node.registered || node.allocatable.gpus == 0) {
            upcoming.append((node.labels, node.taints, node.fullAllocatable - node.requested))
        }
        var left: [Int] = []
        for index in waiting {
            let pod = pods[index]
            if let slot = upcoming.firstIndex(where: { Self.fits(pod.requirements, requests: pod.requests, labels: $0.labels, taints: $0.taints, free: $0.free) }) {
                upcoming[slot].free -= pod.requests
            } else {
                left.append(index)
            }
        }
        guard !left.isEmpty else { return }
        var options: [(group: Int, count: Int, waste: Double)] = []
        for (number, group) in autoscaler.groups.enumerated() {
            let allocatable = allocatable(of: group.type)
            let labels = group.labels
            let taints = [AutoscalerState.gpuTaint]
            let fitting = left.filter { Self.fits(pods[$0].requirements, requests: pods[$0].requests, labels: labels, taints: taints, free: allocatable) }
            guard !fitting.isEmpty else { continue }
            // The binpacking estimator: largest first, first fit.
            let sorted = fitting.sorted { score(pods[$0].requests, allocatable) > score(pods[$1].requests, allocatable) }
            var bins: [Resources] = []
            var requested = Resources.zero
            for index in sorted {
                let requests = pods[index].requests
                requested += requests
                if let bin = bins.firstIndex(where: { requests.fits(in: $0) }) { bins[bin] -= requests } else { bins.append(allocatable - requests) }
            }
            // The expander weighs the template's capacity (upstream: resourcesForNode reads
            // Status.Capacity), not its allocatable.
            let count = Double(bins.count), capacity = group.type.capacity
            let cpu = count * Double(capacity.cpuMilli), memory = count * Double(capacity.memory)
            let waste = (cpu - Double(requested.cpuMilli)) / cpu + (memory - Double(requested.memory)) / memory
            options.append((number, bins.count, waste))
        }
        guard let least = options.map(\.waste).min() else { return }
        let best = options.filter { $0.waste <= least + 1e-9 }
        let chosen = best[Int.random(in: 0..<best.count, using: &autoscaler.random)]
        autoscaler.lastScaleUp = now
        for _ in 0..<chosen.count { pendingGroupLaunches.append(chosen.group) }
    }

    func allocatable(of type: InstanceType) -> Resources { options.provisioner.overhead.allocatable(type) }

    private func score(_ requests: Resources, _ allocatable: Resources) -> Double {
        Double(requests.cpuMilli) / Double(max(1, allocatable.cpuMilli)) + Double(requests.memory) / Double(max(1, allocatable.memory))
    }

    private func launchPending() async {
        guard !pendingGroupLaunches.isEmpty else { return }
        if autoscaler.cloud == nil { autoscaler.cloud = SimulatedCloud(configuration: options.cloudConfiguration, clock: autoscaler.clock) }
        guard let cloud = autoscaler.cloud else { return }
        bringToNow(autoscaler.clock)
        let launches = pendingGroupLaunches
        pendingGroupLaunches = []
        for number in launches {
            let group = autoscaler.groups[number]
            autoscaler.launches += 1
            var candidate = group.type
            candidate.offerings = [group.offering]
            let request = LaunchRequest(
                launchID: "ca-\(autoscaler.launches)", cluster: "cluster-autoscaler", pool: group.type.name, candidates: [candidate],
                labels: [:], taints: [AutoscalerState.gpuTaint])
            do {
                let instance = try await cloud.create(request)
                addNode(launched: instance, boot: try await cloud.boot(of: instance.providerID))
            } catch {
                metrics.warnings["FailedScaleUp", default: 0] += 1
            }
        }
    }

    private func scaleDownGPU() {
        var candidates: [Int] = []
        for id in liveNodes where nodes[id].isGPU && nodes[id].ready && nodes[id].allocatable.gpus > 0 {
            let utilization = Double(nodes[id].requested.gpus) / Double(nodes[id].allocatable.gpus)
            if utilization >= AutoscalerState.utilizationThreshold {
                nodes[id].unneededSince = nil
                continue
            }
            candidates.append(id)
        }
        for id in candidates {
            if podsCanMove(from: id) {
                if nodes[id].unneededSince == nil { nodes[id].unneededSince = now }
            } else {
                nodes[id].unneededSince = nil
            }
        }
        guard now - autoscaler.lastScaleUp >= AutoscalerState.delayAfterAdd else { return }
        let ripe = candidates.filter { nodes[$0].unneededSince.map { now - $0 >= AutoscalerState.unneededTime } ?? false }
        let empty = ripe.filter { nodes[$0].pods.isEmpty }
        if !empty.isEmpty {
            for id in empty.prefix(AutoscalerState.maxEmptyBulkDelete) { removeByAutoscaler(id) }
            return
        }
        // Its pods could move when it was judged unneeded, just above.
        if let id = ripe.first { removeByAutoscaler(id) }
    }

    /// Whether every pod of the node fits on the other ready nodes (the drain simulation).
    func podsCanMove(from id: Int) -> Bool {
        guard !nodes[id].pods.isEmpty else { return true }
        var extra: [Int: Resources] = [:]
        for index in nodes[id].pods {
            let pod = pods[index]
            var placed = false
            for other in liveNodes where other != id && nodes[other].ready {
                let used = nodes[other].requested + (extra[other] ?? .zero)
                if Self.fits(pod.requirements, requests: pod.requests, labels: nodes[other].labels, taints: nodes[other].taints, free: nodes[other].allocatable - used) {
                    extra[other, default: .zero] += pod.requests
                    placed = true
                    break
                }
            }
            if !placed { return false }
        }
        return true
    }

    private func removeByAutoscaler(_ id: Int) {
        nodes[id].taints.append(AutoscalerState.toBeDeleted)
        terminate(id)  // evicts its pods
        deleteNode(id)
    }

    // MARK: - The CPU node group (every policy)

    /// The same simple autoscaler in every policy: every 10 s, CPU pods the scheduler could not
    /// place go to CPU nodes still booting if they fit, else new nodes are launched for them (first
    /// fit decreasing); a CPU node without pods for 10 minutes is removed.
    func cpuGroupScan() {
        let type = options.cpuType
        let waiting = pending.filter { !pods[$0].isGPU && pods[$0].unschedulable && pods[$0].state == .pending }
        if !waiting.isEmpty {
            let allocatable = options.provisioner.overhead.allocatable(type)
            let labels = type.labels(for: type.offerings.first ?? Offering(zone: "us-east-1a", pricePerHour: 0))
            var bins: [Resources] = nodes.filter { !$0.isGPU && !$0.registered && $0.terminatedAt == nil }.map { $0.fullAllocatable - $0.requested }
            let existing = bins.count
            for index in waiting.sorted(by: { pods[$0].requests.cpuMilli > pods[$1].requests.cpuMilli }) {
                let pod = pods[index]
                guard Self.fits(pod.requirements, requests: pod.requests, labels: labels, taints: [], free: allocatable) else { continue }
                if let bin = bins.firstIndex(where: { pod.requests.fits(in: $0) }) { bins[bin] -= pod.requests } else { bins.append(allocatable - pod.requests) }
            }
            for _ in existing..<bins.count {
                let readyAt = now + Self.uniform(options.bootDelay, &random)
                addNode(
                    type: type, price: type.pricePerHour, providerID: "",
                    labels: labels, taints: [], readyAt: readyAt, gpusAt: readyAt)
            }
        }
        for id in liveNodes where !nodes[id].isGPU && nodes[id].ready {
            if !nodes[id].pods.isEmpty {
                nodes[id].unneededSince = nil
            } else if let since = nodes[id].unneededSince {
                if now - since >= AutoscalerState.unneededTime {
                    terminate(id)
                    deleteNode(id)
                }
            } else {
                nodes[id].unneededSince = now
            }
        }
    }

    // MARK: - Static

    /// One node per GPU pod running at the trace's peak, of the pod's cheapest fitting type:
    /// booted before the first pod, never removed, the notebook image already pulled (a platform
    /// team running a fixed pool pre-pulls it, as z2jh's continuous image puller does).
    func startStaticPool() {
        for (name, count) in staticPoolSize() {
            guard let type = options.catalog[name], let offering = type.offerings.first else { continue }
            for _ in 0..<count {
                addNode(
                    type: type, price: offering.pricePerHour, providerID: "",
                    labels: type.labels(for: offering), taints: [AutoscalerState.gpuTaint], readyAt: 0, gpusAt: 0, imagePulled: true)
            }
        }
    }

    func staticPoolSize() -> [(String, Int)] {
        var changes: [String: [(Double, Int)]] = [:]
        for (pod, cheapest) in zip(trace.pods, lowerBound.cheapest) {
            guard let type = cheapest else { continue }
            changes[type.name, default: []].append((pod.arrival, 1))
            changes[type.name, default: []].append((pod.arrival + pod.duration, -1))
        }
        return changes.keys.sorted().map { name in
            var level = 0, peak = 0
            // Ends before starts at the same instant.
            for change in changes[name, default: []].sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
                level += change.1
                peak = max(peak, level)
            }
            return (name, peak)
        }
    }
}
