import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation

/// One policy replaying one trace in virtual time: a discrete-event simulation (an event queue,
/// never a sleep) of the pods, the nodes, kube-scheduler, the kubelets, the CPU node group and the
/// policy's GPU autoscaler. `run()` returns what it cost and how long pods waited.
///
/// The scheduler model is kube-scheduler's default profile reduced to what the trace exercises:
/// filters NodeResourcesFit (CPU, memory, ephemeral storage, pod slots, GPUs), TaintToleration
/// (NoSchedule/NoExecute), NodeAffinity (nodeSelector + required terms) and node readiness; score
/// NodeResourcesFit's default `LeastAllocated` strategy (CPU and memory, weight 1 each, upstream's
/// integer arithmetic and non-zero defaults), ties to the oldest node (upstream picks at random).
/// Pods are tried in creation order; a pod that did not fit is retried only after something that
/// can make room happened (a pod left, a node appeared or changed), as the scheduling queue does.
///
/// The kubelet's image pull: a GPU pod bound to a node that has not pulled the notebook image
/// yet waits `imagePullDelay` (drawn once per node, when the first GPU pod lands there, which is
/// after the GPUs are allocatable) before it is Running; pods bound while that pull runs wait for
/// the same pull (the kubelet pulls an image once), later pods start at once. Until then the pod
/// holds its requests on the node and its phase is Pending, as in ContainerCreating.
final class ClusterSimulation {
    enum Event {
        case arrival(Int)
        case finish(pod: Int, generation: Int)
        case nodeReady(Int)
        case nodeGPUs(Int)
        /// A started instance's kubelet is back (power cycle `cycle`): Ready, GPUs when `gpus`.
        case powerUp(Int, cycle: Int, gpus: Bool)
        /// The image puller's pod on the node is Running (images pulled).
        case pullDone(Int)
        case berthWake
        case berthList
        case autoscalerScan
        case cpuScan
    }

    struct Pod {
        let trace: Int
        let key: String
        var requirements: PodRequirements
        let requests: Resources
        let gpus: Int64
        let doNotDisrupt: Bool
        /// A Jupyter notebook (the trace's kind), not a job or a service.
        let isNotebook: Bool
        let createdAt: Double
        var remaining: Double
        var state: State = .future
        var node = -1
        /// When the current run starts (Running): the bind, or the end of the node's image pull.
        var startedAt = 0.0
        var firstRunning: Double?
        var firstNode = -1
        /// Of the first run's wait, the part spent waiting for the node's image pull.
        var firstPull = 0.0
        var unschedulable = false
        var triedAt = -1
        var generation = 0
        var evictions = 0

        enum State { case future, pending, running, done }
        var isGPU: Bool { gpus > 0 }
    }

    struct Node {
        let name: String
        let providerID: String
        let isGPU: Bool
        let instanceType: String
        let gpuCount: Int64
        let price: Double
        var labels: [String: String]
        var taints: [Taint]
        let fullAllocatable: Resources
        var allocatable: Resources
        var requested = Resources.zero
        var pods: [Int] = []
        var gpuPods = 0
        let launchedAt: Double
        let gpusAt: Double
        var registered = false
        var terminatedAt: Double?
        var deleted = false
        var lastAccounted: Double
        /// Cluster-autoscaler: unneeded since; CPU group: empty since.
        var unneededSince: Double?
        /// When the notebook image is (or will be) on the node: nil until a GPU pod first lands
        /// there and starts the pull. A node prepared in advance (the static pool's, whose image a
        /// puller fetched before any pod) is created with it set.
        var imageReadyAt: Double?
        /// Stopped or stopping (warm capacity): NotReady, billed for its volume only.
        var down = false
        /// Bumped at each stop, so a start's events for an earlier cycle are ignored.
        var cycle = 0
        /// Warm capacity's accounting: seconds up with a `berth.dev/warm` label. (Stopped time is
        /// the simulated cloud's: it bills the instance, `stopping` as running, as EC2 does.)
        var warmSeconds = 0.0
        var warmSince: Double?

        var boot: Double { gpusAt - launchedAt }
        /// Registered, up, and neither terminated nor deleted: what its kubelet would report.
        var ready: Bool { registered && terminatedAt == nil && !deleted && !down }
    }

    let policy: PolicyName
    let trace: Trace
    let options: SimulationOptions
    let lowerBound: LowerBound
    var queue = EventQueue<Event>()
    var pods: [Pod] = []
    var podIndex: [String: Int] = [:]
    var nodes: [Node] = []
    var nodeByName: [String: Int] = [:]
    /// Registered, not deleted.
    var liveNodes: [Int] = []
    /// Created, not done (unordered: a finished pod is swapped with the last; `livePosition` finds it).
    var live: [Int] = []
    var livePosition: [Int] = []
    var pending: [Int] = []
    var now = 0.0
    var dirty = false
    /// Bumped whenever room can appear; a pod that failed at this version is not retried.
    var capacityVersion = 0
    var done = 0
    var random: SeededGenerator
    /// Image pulls draw from their own stream, so `--image-pull-delay` leaves every other draw alone.
    var pullRandom: SeededGenerator
    var metrics = Accumulator()
    var berth: BerthRuntime?
    var autoscaler: AutoscalerState
    var pendingGroupLaunches: [Int] = []
    var gpuDemand: Int64 = 0
    var gpuNodesUp = 0
    var gpusUp: Int64 = 0
    /// Berth's configuration for this policy (``SimulationOptions/berthConfig(_:)``).
    let berthConfig: ProvisionerConfig
    /// Berth's image puller runs on its GPU nodes (warm capacity).
    let imagePuller: Bool

    struct Accumulator {
        var idle = 0.0
        var squatted = 0.0
        var evictions = 0
        var warnings: [String: Int] = [:]
        var series: [(time: Double, gpus: Int64, nodes: Int, demand: Int64)] = []
    }

    init(policy: PolicyName, trace: Trace, options: SimulationOptions, lowerBound: LowerBound) throws {
        self.policy = policy
        self.trace = trace
        self.lowerBound = lowerBound
        self.options = options
        self.random = SeededGenerator(seed: options.seed, key: policy.rawValue)
        self.pullRandom = SeededGenerator(seed: options.seed, key: policy.rawValue + "/image-pull")
        self.autoscaler = AutoscalerState(catalog: options.catalog, seed: options.seed)
        self.berthConfig = options.berthConfig(policy)
        self.imagePuller = policy.kind == .berth && berthConfig.warm.imagePuller
        var factory = PodFactory(mutate: policy.kind == .berth, config: options.webhook)
        pods.reserveCapacity(trace.pods.count)
        for (index, row) in trace.pods.enumerated() {
            let admitted = try factory.admit(row)
            pods.append(Pod(
                trace: index, key: row.key, requirements: admitted.requirements, requests: admitted.requirements.requests,
                gpus: admitted.requirements.requests.gpus, doNotDisrupt: admitted.doNotDisrupt, isNotebook: row.kind == .notebook, createdAt: row.arrival, remaining: row.duration))
            podIndex[row.key] = index
        }
        livePosition = Array(repeating: -1, count: pods.count)
    }

    // MARK: - The loop

    func run(progress: ((Double) -> Void)? = nil) async -> PolicyResult {
        for (index, pod) in pods.enumerated() { queue.push(.arrival(index), at: pod.createdAt) }
        queue.push(.cpuScan, at: 0)
        switch policy.kind {
        case .berth:
            berth = BerthRuntime(options: options, config: berthConfig)
            queue.push(.berthList, at: 0)
        case .clusterAutoscaler:
            queue.push(.autoscalerScan, at: 0)
        case .static:
            startStaticPool()
        }
        var stop = trace.horizon + options.overrun
        var nextProgress = 86_400.0
        progress?(0)
        var tail = false
        while let time = queue.nextTime, time <= stop {
            if done == pods.count {
                // Every pod ran: a static pool is billed to here; autoscalers get up to an hour
                // more to remove their GPU nodes, and are billed until they do.
                if policy.kind == .static || gpuNodesUp == 0 { break }
                if !tail {
                    tail = true
                    stop = min(stop, now + 3_600)
                    continue
                }
            }
            now = time
            while queue.nextTime == time, let event = queue.pop() { await handle(event.kind) }
            await settle()
            if now >= nextProgress {
                progress?(now)
                nextProgress = (now / 86_400).rounded(.down) * 86_400 + 86_400
            }
        }
        // The cloud bills stopped instances (its own record of every stop); the simulation does not
        // keep a second count.
        var stopped: [String: Double] = [:]
        if let runtime = berth {
            bringToNow(runtime.clock)
            for record in await runtime.cloud.allRecords() {
                let seconds = record.stoppedDuration(until: runtime.clock.now).seconds
                if seconds > 0 { stopped[record.instance.providerID] = seconds }
            }
        }
        return finish(stoppedSeconds: stopped)
    }

    /// Until nothing more happens at this instant: scheduling passes, then controller rounds.
    func settle() async {
        for _ in 0..<100 {
            if dirty { schedulePass() }
            // A listing rides on the next round; alone it forces one only after a quiet spell
            // (rounds are driven by cluster events and the core's own `nextWakeup`).
            guard let runtime = berth, runtime.poked || (runtime.listDue && now - runtime.lastRound >= BerthRuntime.resync) else { break }
            await berthRound()
            if !dirty { break }
        }
    }

    func handle(_ event: Event) async {
        switch event {
        case let .arrival(index):
            pods[index].state = .pending
            livePosition[index] = live.count
            live.append(index)
            pending.append(index)
            dirty = true
            gpuDemand += pods[index].gpus
            if pods[index].isGPU { sample() }
        case let .finish(index, generation):
            guard pods[index].generation == generation, pods[index].state == .running else { return }
            let wasGPU = pods[index].isGPU
            unbind(index)
            pods[index].state = .done
            done += 1
            let position = livePosition[index]
            let last = live.removeLast()
            if last != index {
                live[position] = last
                livePosition[last] = position
            }
            livePosition[index] = -1
            gpuDemand -= pods[index].gpus
            if wasGPU {
                sample()
                berth?.poked = true
            }
        case let .nodeReady(id):
            guard nodes[id].terminatedAt == nil, !nodes[id].registered else { return }
            register(id)
            if nodes[id].isGPU { berth?.poked = true }
        case let .nodeGPUs(id):
            guard nodes[id].registered, nodes[id].terminatedAt == nil, !nodes[id].deleted, !nodes[id].down else { return }
            nodes[id].allocatable = nodes[id].fullAllocatable
            roomAppeared()
            berth?.poked = true
        case let .powerUp(id, cycle, gpus):
            guard nodes[id].cycle == cycle, nodes[id].terminatedAt == nil, !nodes[id].deleted, gpus ? !nodes[id].down : nodes[id].down else { return }
            if gpus {
                nodes[id].allocatable = nodes[id].fullAllocatable
            } else {
                account(id)
                nodes[id].down = false
                accountWarm(id)
            }
            roomAppeared()
            berth?.poked = true
        case let .pullDone(id):
            if nodes[id].terminatedAt == nil { berth?.poked = true }
        case .berthWake:
            if let runtime = berth, let wake = runtime.wakeAt, wake <= now {
                runtime.wakeAt = nil
                runtime.poked = true
            }
        case .berthList:
            berth?.listDue = true
            queue.push(.berthList, at: now + options.listingInterval)
        case .autoscalerScan:
            await clusterAutoscalerScan()
            queue.push(.autoscalerScan, at: now + AutoscalerState.scanInterval)
        case .cpuScan:
            cpuGroupScan()
            queue.push(.cpuScan, at: now + AutoscalerState.scanInterval)
        }
    }

    func roomAppeared() {
        capacityVersion += 1
        dirty = true
    }

    // MARK: - kube-scheduler

    func schedulePass() {
        dirty = false
        var waiting: [Int] = []
        waiting.reserveCapacity(pending.count)
        for index in pending {
            guard pods[index].state == .pending else { continue }
            if pods[index].triedAt == capacityVersion {
                waiting.append(index)
                continue
            }
            if let node = bestNode(for: index) {
                bind(index, to: node)
            } else {
                pods[index].triedAt = capacityVersion
                if !pods[index].unschedulable {
                    pods[index].unschedulable = true
                    if pods[index].isGPU { berth?.poked = true }
                }
                waiting.append(index)
            }
        }
        pending = waiting
    }

    func bestNode(for index: Int) -> Int? {
        let pod = pods[index]
        var best: Int?
        var bestScore = Int64.min
        for id in liveNodes {
            let node = nodes[id]
            guard node.ready, Self.fits(pod.requirements, requests: pod.requests, labels: node.labels, taints: node.taints, free: node.allocatable - node.requested)
            else { continue }
            let score = Self.leastAllocated(pod.requests, node: node)
            if score > bestScore {
                best = id
                bestScore = score
            }
        }
        return best
    }

    /// NodeResourcesFit, TaintToleration and NodeAffinity.
    static func fits(_ requirements: PodRequirements, requests: Resources, labels: [String: String], taints: [Taint], free: Resources) -> Bool {
        guard requests.fits(in: free) else { return false }
        let constraints = requirements.constraints
        if !taints.isEmpty && constraints.tolerates(taints) != nil { return false }
        return constraints.matches { labels[$0] }
    }

    /// kube-scheduler's NodeResourcesFit `LeastAllocated` score (0–100): for CPU and memory,
    /// `(allocatable - requested) * 100 / allocatable` with the pod included, averaged with equal
    /// weights; pods without a request count upstream's non-zero defaults (100m, 200 MiB).
    static func leastAllocated(_ requests: Resources, node: Node) -> Int64 {
        func score(_ requested: Int64, _ allocatable: Int64) -> Int64 {
            guard allocatable > 0, requested <= allocatable else { return 0 }
            return (allocatable - requested) * 100 / allocatable
        }
        let cpu = node.requested.cpuMilli + (requests.cpuMilli == 0 ? 100 : requests.cpuMilli)
        let memory = node.requested.memory + (requests.memory == 0 ? 200 * 1024 * 1024 : requests.memory)
        return (score(cpu, node.allocatable.cpuMilli) + score(memory, node.allocatable.memory)) / 2
    }

    func bind(_ index: Int, to id: Int) {
        account(id)
        nodes[id].requested += pods[index].requests
        nodes[id].pods.append(index)
        if pods[index].isGPU { nodes[id].gpuPods += 1 }
        nodes[id].unneededSince = nil
        let start = pods[index].isGPU ? imageReady(on: id) : now
        pods[index].state = .running
        pods[index].node = id
        pods[index].startedAt = start
        pods[index].unschedulable = false
        if pods[index].firstRunning == nil {
            pods[index].firstRunning = start
            pods[index].firstNode = id
            pods[index].firstPull = start - now
        }
        queue.push(.finish(pod: index, generation: pods[index].generation), at: start + pods[index].remaining)
    }

    /// When the notebook image is on the node: now if pulled, the end of the pull under way, or
    /// the end of a pull started now.
    func imageReady(on id: Int) -> Double {
        if let ready = nodes[id].imageReadyAt { return max(now, ready) }
        let ready = now + Self.uniform(options.imagePullDelay, &pullRandom)
        nodes[id].imageReadyAt = ready
        return ready
    }

    /// Takes a running pod off its node.
    func unbind(_ index: Int) {
        let id = pods[index].node
        guard id >= 0 else { return }
        account(id)
        nodes[id].requested -= pods[index].requests
        if let position = nodes[id].pods.firstIndex(of: index) { nodes[id].pods.remove(at: position) }
        if pods[index].isGPU { nodes[id].gpuPods -= 1 }
        pods[index].node = -1
        let started = pods[index].startedAt
        // Taken off while its image was still pulling: it never ran, its first run is still to come.
        if started > now && pods[index].firstRunning == started && pods[index].firstNode == id {
            pods[index].firstRunning = nil
            pods[index].firstNode = -1
            pods[index].firstPull = 0
        }
        pods[index].remaining = max(0, pods[index].remaining - max(0, now - started))
        roomAppeared()
    }

    /// Evicted (or its node went away): its controller recreates it, pending again, with the
    /// run time it had left.
    func evict(_ index: Int) {
        guard pods[index].state == .running else { return }
        unbind(index)
        pods[index].state = .pending
        pods[index].generation += 1
        pods[index].evictions += 1
        pods[index].triedAt = -1
        metrics.evictions += 1
        pending.append(index)
        dirty = true
        if pods[index].isGPU { berth?.poked = true }
    }

    // MARK: - Nodes and the kubelet

    /// A new instance: its Node registers Ready at `readyAt`, its GPUs become allocatable at `gpusAt`.
    /// `imagePulled`: prepared in advance, the notebook image already on it (no pull for its pods).
    @discardableResult
    func addNode(type: InstanceType, price: Double, providerID: String, labels: [String: String], taints: [Taint],
                 readyAt: Double, gpusAt: Double, imagePulled: Bool = false) -> Int {
        let id = nodes.count
        let allocatable = options.provisioner.overhead.allocatable(type)
        var initial = allocatable
        if type.gpuCount > 0 { initial.gpus = 0 }
        nodes.append(Node(
            name: "ip-10-0-\(id / 250)-\(id % 250 + 1).ec2.internal", providerID: providerID, isGPU: type.gpuCount > 0,
            instanceType: type.name, gpuCount: Int64(type.gpuCount), price: price, labels: labels, taints: taints, fullAllocatable: allocatable,
            allocatable: initial, launchedAt: now, gpusAt: gpusAt, lastAccounted: now, imageReadyAt: imagePulled ? now : nil))
        if readyAt <= now {
            register(id)
        } else {
            queue.push(.nodeReady(id), at: readyAt)
        }
        if type.gpuCount > 0 {
            if gpusAt <= now && readyAt <= now { nodes[id].allocatable = allocatable } else { queue.push(.nodeGPUs(id), at: gpusAt) }
            gpuNodesUp += 1
            gpusUp += Int64(type.gpuCount)
            sample()
        }
        return id
    }

    /// A node for an instance a policy's simulated cloud launched: Ready and GPUs when its boot says.
    @discardableResult
    func addNode(launched instance: CloudInstance, boot: SimulatedCloud<ManualClock>.Boot) -> Int {
        addNode(type: boot.instanceType, price: instance.pricePerHour, providerID: instance.providerID, labels: boot.labels, taints: boot.taints,
                readyAt: boot.readyAt.offset.seconds, gpusAt: boot.gpusAt.map { $0.offset.seconds } ?? .infinity)
    }

    /// A policy's cloud clock brought to the simulation's time (milliseconds).
    func bringToNow(_ clock: ManualClock) {
        clock.advance(to: ManualClock.Instant(offset: .milliseconds(Int64((now * 1000).rounded()))))
    }

    /// The Node registers Ready: pods can land on it.
    private func register(_ id: Int) {
        nodes[id].registered = true
        nodeByName[nodes[id].name] = id
        liveNodes.append(id)
        // The image puller (a DaemonSet on Berth's GPU nodes, deployed with warm capacity) starts
        // pulling as soon as the node is Ready, before any GPU pod.
        if imagePuller && nodes[id].isGPU && nodes[id].labels[ProvisionerCore.poolLabel] != nil && nodes[id].imageReadyAt == nil {
            let ready = imageReady(on: id)
            queue.push(.pullDone(id), at: ready)
        }
        accountWarm(id)
        roomAppeared()
    }

    /// Closes the node's warm interval, if open, and opens it again if the node is warm now.
    func accountWarm(_ id: Int) {
        let node = nodes[id]
        if let since = node.warmSince { nodes[id].warmSeconds += now - since }
        let alive = node.terminatedAt == nil && !node.deleted
        nodes[id].warmSince = alive && !node.down && node.labels[ProvisionerCore.warmLabel] != nil ? now : nil
    }

    /// The instance is gone: billing stops, the Node turns NotReady, its pods are lost (recreated).
    func terminate(_ id: Int) {
        guard nodes[id].terminatedAt == nil else { return }
        account(id)
        nodes[id].terminatedAt = now
        accountWarm(id)
        for index in nodes[id].pods { evict(index) }
        if nodes[id].isGPU {
            gpuNodesUp -= 1
            gpusUp -= nodes[id].gpuCount
            sample()
        }
    }

    /// The Node object is deleted.
    func deleteNode(_ id: Int) {
        guard !nodes[id].deleted else { return }
        for index in nodes[id].pods { evict(index) }
        nodes[id].deleted = true
        accountWarm(id)
        if nodes[id].registered, let position = liveNodes.firstIndex(of: id) { liveNodes.remove(at: position) }
        nodeByName[nodes[id].name] = nil
        roomAppeared()
    }

    /// Adds the time since the last change to the idle and squatted totals of a GPU node.
    func account(_ id: Int) {
        guard nodes[id].isGPU, nodes[id].terminatedAt == nil else { return }
        let elapsed = now - nodes[id].lastAccounted
        if elapsed > 0 && nodes[id].gpuPods == 0 && !nodes[id].down {  // a stopped node is not an idle GPU
            metrics.idle += elapsed
            if !nodes[id].pods.isEmpty { metrics.squatted += elapsed }
        }
        nodes[id].lastAccounted = now
    }

    func sample() {
        let point = (time: now, gpus: gpusUp, nodes: gpuNodesUp, demand: gpuDemand)
        if let last = metrics.series.last, last.time == now {
            metrics.series[metrics.series.count - 1] = point
        } else if metrics.series.last.map({ $0.gpus != point.gpus || $0.nodes != point.nodes || $0.demand != point.demand }) ?? true {
            metrics.series.append(point)
        }
    }


    static func uniform(_ range: ClosedRange<Double>, _ random: inout SeededGenerator) -> Double {
        range.upperBound > range.lowerBound ? Double.random(in: range, using: &random) : range.lowerBound
    }
}
