import BerthAdmission
import BerthModel
import BerthScheduling
import Foundation

/// How a GPU notebook got its node.
public enum StartKind: String, Sendable, CaseIterable {
    /// A running warm node was waiting for it.
    case warmRunning = "warm-running"
    /// A stopped warm node was started for it.
    case warmStopped = "warm-stopped"
    /// Anything else: a node launched for it, or one that was up.
    case cold
}

/// One GPU notebook's wait: from its creation to Running.
public struct TimeToRunning: Sendable, Equatable {
    public var start: StartKind
    public var seconds: Double

    public init(start: StartKind, seconds: Double) {
        self.start = start
        self.seconds = seconds
    }
}

struct NotebookWatch {
    var firstSeen: Date
    var start: StartKind?
    var done = false
    /// When it was first seen Running (its run time is measured to when it is gone).
    var runningAt: Date?
}

/// Notebooks that would get the same cold node.
struct KindKey: Hashable {
    var constraints: PodConstraints
    var requests: Resources
    var gpuResource: String?
}

/// Warm capacity (`provisioner.warm`), one step of each round after provisioning:
/// 1. GPU notebooks are watched: first seen pending (an arrival of its kind, for `auto`), then
///    Running (their time to running, by how they started).
/// 2. Warm nodes move through their lives: a running-tier node is prepared once initialised and
///    its images pulled (the image puller's pod Running on it, when `imagePuller`), and is taken as
///    soon as a GPU pod is bound or nominated there — its warm label goes, Berth refills the tier;
///    a stopped-tier node is stopped once prepared, and started when the scheduler nominates a
///    pending pod to it (it is seen as a node that is launching, without its warm taint).
/// 3. Sizing, when no batch of pending pods is open (real pods come first): the targets per kind
///    (``WarmPlanner`` for `auto`, the active schedules for `schedule`) are met by starting stopped
///    nodes to refill the running tier, then launching; a surplus held for ``warmSurplusGrace``
///    goes (a running node moves to the stopped tier when that tier is short). Launches stay within
///    the pool's limits; a pod that cannot be placed because of a limit gets a warm node's room.
extension ProvisionerCore {
    /// The label on warm nodes: `true` (running tier) or `stopped`.
    public static let warmLabel = "berth.dev/warm"
    /// The taint on running-tier nodes: nothing lands on them until Berth hands one to a pending
    /// notebook (taking the taint off), so GPU jobs, and notebooks that would fit a bigger or pricier
    /// warm node better kept for others, do not take them by chance.
    public static let warmRunningTaint = Taint(key: "berth.dev/warm", value: "true", effect: "NoSchedule")
    /// The taint on stopped-tier nodes: nothing lands on them until they are taken.
    public static let warmStoppedTaint = Taint(key: "berth.dev/warm", value: "stopped", effect: "NoSchedule")
    /// Taints a stopped node gets from the control plane (NotReady, shut down): not Berth's model of it.
    static let downTaintKeys: Set<String> = [
        "berth.dev/warm", "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready", "node.cloudprovider.kubernetes.io/shutdown",
    ]
    /// How long more warm nodes than wanted are kept before the surplus goes.
    public static let warmSurplusGrace: Duration = .seconds(300)
    /// How often warm capacity is sized again.
    public static let warmSizingInterval: Duration = .seconds(60)

    /// The notebooks' waits seen since the last call.
    public mutating func takeTimeToRunning() -> [TimeToRunning] {
        defer { timeToRunning = [] }
        return timeToRunning
    }

    /// Warm nodes now, by tier and state: `running` (up and prepared), `preparing`, `stopped`
    /// (stopping or stopped), `starting`; and what they cost per hour (up ones at their price,
    /// stopped ones their volume).
    public var warmSummary: (nodes: [String: Int], pricePerHour: Double) {
        var nodes = ["running": 0, "preparing": 0, "stopped": 0, "starting": 0]
        var price = 0.0
        for claim in claims.values where claim.isLive {
            guard let tier = claim.warm else { continue }
            switch claim.power {
            case .stopping, .stopped:
                nodes["stopped", default: 0] += 1
                price += config.warm.stoppedPricePerHour
            case .starting:
                nodes["starting", default: 0] += 1
                price += claim.pricePerHour
            case .on:
                nodes[tier == .running && claim.preparedAt != nil ? "running" : "preparing", default: 0] += 1
                price += claim.pricePerHour
            }
        }
        return (nodes, price)
    }

    // MARK: - 1. Notebooks

    mutating func watchNotebooks(index: ClusterIndex, now: Date) {
        // What `auto` sizing learns from is kept only when it sizes (the waits are kept always:
        // they are a metric).
        let learning = config.warm.mode == .auto
        if learning { warmPlanner.advance(to: now) }
        let watchingSince = watchingSince ?? now
        self.watchingSince = watchingSince
        var present = Set<String>()
        for pod in index.snapshot.pods where pod.requirements.isNotebook && pod.requestsGPU && !pod.daemon {
            present.insert(pod.uid)
            var watch: NotebookWatch
            if let known = notebooks[pod.uid] {
                watch = known
            } else {
                // First seen: an arrival (when it was created: a watch event may come late). One
                // created before Berth watched is not counted (a restart would count it twice).
                let created = min(pod.createdAt ?? now, now)
                guard created >= watchingSince, !pod.terminating, !pod.finished else {
                    notebooks[pod.uid] = NotebookWatch(firstSeen: created, done: true)
                    continue
                }
                watch = NotebookWatch(firstSeen: created)
                if learning, let kind = kind(of: pod) {
                    warmPlanner.arrival(kind, at: created)
                    if kindTemplates[kind] == nil { warmCandidates = nil }
                    kindTemplates[kind] = pod.requirements
                }
            }
            guard !watch.done else { continue }
            if watch.start == nil, !pod.nodeName.isEmpty {
                // Bound: to a node still waiting warm (kube-scheduler took it), or cold.
                let claim = claims.values.first { $0.nodeName == pod.nodeName }
                watch.start = claim?.warm == .running && claim?.preparedAt != nil ? .warmRunning : .cold
            }
            if pod.phase == .running {
                watch.done = true
                watch.runningAt = now
                if learning { warmPlanner.outcome(missed: now.timeIntervalSince(watch.firstSeen) > config.warm.targetTimeToGPU.seconds) }
                timeToRunning.append(TimeToRunning(start: watch.start ?? .cold, seconds: max(0, now.timeIntervalSince(watch.firstSeen))))
                if timeToRunning.count > 10_000 { timeToRunning.removeFirst(timeToRunning.count - 10_000) }
            }
            notebooks[pod.uid] = watch
        }
        if notebooks.count > present.count {
            for (uid, watch) in notebooks where learning && !present.contains(uid) {
                if let running = watch.runningAt { warmPlanner.notebookEnded(seconds: now.timeIntervalSince(running)) }
            }
            notebooks = notebooks.filter { present.contains($0.key) }
        }
    }

    /// The node a notebook of this kind is launched cold: the scheduler's choice for it alone.
    mutating func kind(of pod: PodSnapshot) -> WarmKind? {
        let key = KindKey(constraints: pod.requirements.constraints, requests: pod.requests, gpuResource: pod.requirements.gpuResource)
        if let known = kindCache[key] { return known }
        let plan = scheduler.solve(pending: [pod.requirements], nodes: [])
        let kind = plan.nodes.first.map { WarmKind(pool: $0.pool, instanceType: $0.instanceType, role: $0.role) }
        if kindCache.count > 1_000 { kindCache = [:] }
        kindCache[key] = kind
        return kind
    }

    // MARK: - 2. Warm nodes' lives

    mutating func warmCapacity(index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        for key in claims.keys.sorted() {
            advanceWarm(claim: key, index: index, now: now, actions: &actions)
        }
        if let until = stoppedTierPausedUntil, until <= now { stoppedTierPausedUntil = nil }
        guard batch == nil else { return }  // pods waiting first
        if config.warm.mode == .off && !claims.values.contains(where: { $0.warm != nil && $0.isLive }) { return }
        size(index: index, now: now, actions: &actions)
    }

    private mutating func advanceWarm(claim key: String, index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        // Warm nodes, and taken ones until their warm marks are gone; nothing else (every round).
        guard var claim = claims[key], claim.isLive, claim.warm != nil || claim.takenAt != nil else { return }
        defer { claims[key] = claim }
        let node = claim.nodeName.flatMap { index.nodes[$0] }
        let gpuPods = claim.nodeName.map { name in index.podsOnNode[name, default: []].filter { $0.occupies && $0.requestsGPU } } ?? []
        let taken = !claim.nominated.isEmpty || !gpuPods.isEmpty

        guard let tier = claim.warm else {
            // Taken: once up, its warm marks go (again, until the Node shows it).
            if let node, claim.initializedAt != nil, !claim.power.isDown { clearWarmMarks(node, actions: &actions) }
            return
        }
        // Taken by a pod, or moved to the running tier: a stopped node is started.
        if taken || (tier == .running && claim.power.isDown) {
            switch claim.power {
            case .stopped, .stopping:
                guard case .stopped = claim.power, let providerID = claim.providerID, claim.powerRetryAfter.map({ $0 <= now }) ?? true else { return }  // started once stopped
                claim.power = .starting(since: now)
                claim.initializedAt = nil
                claim.registeredAt = now
                claim.gpuWarned = false
                for pod in claim.nominated.keys.sorted() {
                    if let uid = index.pods[pod]?.uid { notebooks[uid]?.start = .warmStopped }
                }
                actions.append(.start(providerID: providerID, node: claim.nodeName))
                let why = taken ? "for " + claim.nominated.keys.sorted().joined(separator: ", ") : "to refill the running tier"
                actions.append(.event(.init(regarding: .node(claim.nodeName ?? key), reason: "WarmNodeStarting",
                                            message: "starting stopped warm node \(claim.instanceType) \(providerID) \(why)")))
                return
            case .starting:
                // Taken once it is up; its pods wait for a start.
                for pod in claim.nominated.keys {
                    if let uid = index.pods[pod]?.uid, notebooks[uid]?.start == nil { notebooks[uid]?.start = .warmStopped }
                }
                return
            case .on where !taken:
                break
            case .on:
                // Handed to the pods nominated there: its taint goes, kube-scheduler binds them.
                for pod in claim.nominated.keys {
                    if let uid = index.pods[pod]?.uid, notebooks[uid]?.start == nil {
                        notebooks[uid]?.start = tier == .running && claim.preparedAt != nil ? .warmRunning : .cold
                    }
                }
                claim.warm = nil
                claim.takenAt = now
                if let node, claim.initializedAt != nil { clearWarmMarks(node, actions: &actions) }
                let who = (gpuPods.map(\.key) + claim.nominated.keys).sorted().joined(separator: ", ")
                actions.append(.event(.init(regarding: .node(claim.nodeName ?? key), reason: "WarmNodeTaken",
                                            message: "warm \(tier == .running ? "running" : "stopped-tier") node taken by \(who); warm capacity is refilled")))
                retrySoon = true
                return
            }
        }
        guard claim.power == .on, let node, claim.initializedAt != nil else { return }
        if claim.preparedAt == nil {
            let pulled = !config.warm.imagePuller || index.podsOnNode[node.name, default: []].contains {
                $0.daemon && $0.phase == .running && $0.requirements.labels[WarmConfig.imagePullerLabel] == "true"
            }
            guard pulled else { return }
            claim.preparedAt = now
            warmPlanner.observeCold(seconds: now.timeIntervalSince(claim.createdAt))
            actions.append(.event(.init(regarding: .node(node.name), reason: "WarmNodeReady",
                                        message: "prepared (GPUs allocatable\(config.warm.imagePuller ? ", images pulled" : "")) in \(GoDuration.format(.seconds(Int64(now.timeIntervalSince(claim.createdAt).rounded()))))")))
        }
        switch tier {
        case .running:
            // Refilled from the stopped tier: its stopped marks go, the running ones come.
            if node.labels[Self.warmLabel] != WarmTier.running.rawValue || !node.taints.contains(Self.warmRunningTaint) {
                actions.append(.updateNode(name: node.name, labels: [Self.warmLabel: WarmTier.running.rawValue], removeLabels: [],
                                           addTaints: [Self.warmRunningTaint], removeTaints: [Self.warmStoppedTaint]))
            }
        case .stopped:
            if node.labels[Self.warmLabel] != WarmTier.stopped.rawValue || !node.taints.contains(where: { $0.key == Self.warmStoppedTaint.key }) {
                actions.append(.updateNode(name: node.name, labels: [Self.warmLabel: WarmTier.stopped.rawValue], removeLabels: [], addTaints: [Self.warmStoppedTaint], removeTaints: []))
                return  // stopped once the taint is on: nothing may land on it first
            }
            guard stoppedTierPausedUntil == nil, let providerID = claim.providerID, claim.powerRetryAfter.map({ $0 <= now }) ?? true else { return }
            claim.power = .stopping
            actions.append(.stop(providerID: providerID, node: node.name))
        }
    }

    /// Takes a taken node's warm label and taint (either tier's: same key and effect) off, if on.
    private func clearWarmMarks(_ node: NodeSnapshot, actions: inout [ProvisionerAction]) {
        let tainted = node.taints.contains { $0.key == Self.warmStoppedTaint.key && $0.effect == Self.warmStoppedTaint.effect }
        guard node.labels[Self.warmLabel] != nil || tainted else { return }
        actions.append(.updateNode(name: node.name, labels: [:], removeLabels: [Self.warmLabel], addTaints: [], removeTaints: [Self.warmStoppedTaint]))
    }

    /// The outcome of a stop or start.
    mutating func recordPower(_ result: ActionResult, now: Date) {
        switch result {
        case let .stopped(providerID):
            guard let key = claimKey(providerID: providerID) else { return }
            claims[key]?.power = .stopped
            claims[key]?.initializedAt = nil
        case let .stopFailed(providerID, error):
            guard let key = claimKey(providerID: providerID), let claim = claims[key] else { return }
            switch error {
            case .notFound:
                claims[key]?.terminated = true
            case let .refused(action, code, message):
                // No permission to stop: the stopped tier cannot work; this node goes.
                stoppedTierPausedUntil = now.addingTimeInterval(Self.refusedLaunchPause.seconds)
                claims[key]?.terminateRequestedAt = now
                pendingActions.append(.terminate(providerID: providerID, node: claim.nodeName, reason: "its stop was refused"))
                pendingActions.append(.event(.init(
                    regarding: .node(claim.nodeName ?? providerID), type: "Warning", reason: "WarmStopRefused",
                    message: "\(action) refused: \(code): \(message); terminating it; no stopped warm nodes for \(GoDuration.format(Self.refusedLaunchPause))")))
            default:
                claims[key]?.power = .on  // tried again after the retry interval
                claims[key]?.powerRetryAfter = now.addingTimeInterval(Self.retryInterval.seconds)
            }
        case let .started(providerID):
            guard let key = claimKey(providerID: providerID) else { return }
            if case .starting = claims[key]?.power {} else { claims[key]?.power = .starting(since: now) }
        case let .startFailed(providerID, error):
            guard let key = claimKey(providerID: providerID), let claim = claims[key] else { return }
            switch error {
            case .notFound:
                claims[key]?.terminated = true
                retrySoon = true
            case let .insufficientCapacity(offerings):
                // No capacity to start it now: its pods are planned elsewhere, the offering skipped.
                let skipped = offerings.isEmpty ? [OfferingKey(instanceType: claim.instanceType, zone: claim.zone, capacityType: claim.capacityType)] : offerings
                for offering in skipped { unavailable[offering] = now.addingTimeInterval(config.unavailableOfferingTTL.seconds) }
                claims[key]?.power = .stopped
                if claim.warm == nil { claims[key]?.warm = .stopped }
                claims[key]?.nominated = [:]
                retrySoon = true
                pendingActions.append(.event(.init(regarding: .node(claim.nodeName ?? providerID), type: "Warning", reason: "WarmStartFailed",
                                                   message: "no capacity to start \(claim.instanceType) in \(claim.zone) now; its pods are planned elsewhere")))
            default:
                claims[key]?.power = .stopped  // started again after the retry interval (still nominated)
                claims[key]?.powerRetryAfter = now.addingTimeInterval(Self.retryInterval.seconds)
            }
        default:
            break
        }
    }

    private func claimKey(providerID: String) -> String? {
        claims.first { $0.value.providerID == providerID }?.key
    }

    // MARK: - 3. Sizing

    /// What is wanted now, per kind.
    mutating func warmWanted(now: Date) -> [WarmKind: WarmTarget] {
        switch config.warm.mode {
        case .off:
            return [:]
        case .schedule:
            var wanted: [WarmKind: WarmTarget] = [:]
            for schedule in config.warm.schedules where schedule.isActive(at: now) {
                guard let pool = scheduler.warmPool(for: schedule) else { continue }
                let kind = WarmKind(pool: pool, instanceType: schedule.instanceType, role: .notebook)
                wanted[kind, default: WarmTarget()].running += schedule.running
                wanted[kind, default: WarmTarget()].stopped += schedule.stopped
            }
            return wanted
        case .auto:
            if let sized = warmSizedAt, now.timeIntervalSince(sized) < Self.warmSizingInterval.seconds { return warmTargets }
            warmSizedAt = now
            let candidates = warmCandidates ?? computeWarmCandidates()
            warmCandidates = candidates
            return warmPlanner.targets(
                at: now, target: config.warm.targetTimeToGPU, candidates: candidates, stoppedPrice: config.warm.stoppedPricePerHour, previous: warmTargets)
        }
    }

    private mutating func size(index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        let wanted = warmWanted(now: now)
        if wanted != warmTargets {
            let text = wanted.isEmpty ? "none" : wanted.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
            actions.append(.event(.init(regarding: .provisioner, reason: "WarmCapacity", message: "warm capacity wanted: \(text)")))
        }
        warmTargets = wanted
        var kinds = Set(wanted.keys)
        for claim in claims.values where claim.isLive && claim.warm != nil { kinds.insert(claimKind(claim)) }
        var usage: [String: PoolUsage]?
        for kind in kinds.sorted() {
            let want = wanted[kind] ?? WarmTarget()
            // Nodes a pod was nominated to are taken (a stopped one being started for it).
            let mine = claims.filter { $0.value.isLive && $0.value.warm != nil && $0.value.nominated.isEmpty && claimKind($0.value) == kind }
            var running = mine.filter { $0.value.warm == .running }.map(\.key).sorted()
            var stopped = mine.filter { $0.value.warm == .stopped }.map(\.key).sorted()

            // Running tier short: start stopped nodes (prepared ones first), then launch.
            while running.count < want.running, let key = stopped.first(where: { claims[$0]?.preparedAt != nil && claims[$0]?.power != .on })
                ?? stopped.first(where: { claims[$0]?.power == .on })
            {
                stopped.removeAll { $0 == key }
                running.append(key)
                claims[key]?.warm = .running  // started by the next round if it is down
                retrySoon = true
            }
            if running.count > want.running || stopped.count > want.stopped {
                let since = warmSurplusSince[kind] ?? now
                warmSurplusSince[kind] = since
                if now.timeIntervalSince(since) >= Self.warmSurplusGrace.seconds {
                    // Surplus: running nodes move to a short stopped tier, the rest go.
                    let idle = running.filter { claims[$0]?.nominated.isEmpty ?? false }.reversed()
                    for key in idle.prefix(max(0, running.count - want.running)) {
                        running.removeAll { $0 == key }
                        if stopped.count < want.stopped && stoppedTierPausedUntil == nil && claims[key]?.capacityType == "on-demand" {
                            claims[key]?.warm = .stopped
                            stopped.append(key)
                        } else {
                            retire(key, now: now, actions: &actions)
                        }
                    }
                    let down = stopped.sorted { (claims[$0]?.power.isDown ?? false) && !(claims[$1]?.power.isDown ?? false) }
                    for key in down.prefix(max(0, stopped.count - want.stopped)) {
                        stopped.removeAll { $0 == key }
                        retire(key, now: now, actions: &actions)
                    }
                    warmSurplusSince[kind] = nil
                }
            } else {
                warmSurplusSince[kind] = nil
            }
            // Launches, within the pools' limits (worked out only when something is to be launched).
            let launches = [(WarmTier.running, want.running - running.count), (.stopped, stoppedTierPausedUntil == nil ? want.stopped - stopped.count : 0)]
            for (tier, count) in launches where count > 0 {
                if usage == nil { usage = poolUsage(index: index) }
                for _ in 0..<count {
                    guard launchWarm(kind, tier: tier, usage: &usage!, now: now, actions: &actions) else { break }
                }
            }
        }
    }

    /// Each kind seen as a warm node: its price, and the kinds of notebook it fits (their last
    /// notebook, planned onto a node of its type in its pool).
    func computeWarmCandidates() -> [WarmKind: WarmPlanner.Candidate] {
        var result: [WarmKind: WarmPlanner.Candidate] = [:]
        for kind in kindTemplates.keys.sorted() {
            guard let pool = config.pools.first(where: { $0.name == kind.pool }), let type = catalog[kind.instanceType],
                let offering = scheduler.offerings(pool: pool.name, instanceType: type.name).first
            else { continue }
            let node = NodeState.launching(name: "warm", type: type, offering: offering, pool: pool, overhead: config.overhead)
            var serves: Set<WarmKind> = [kind]
            for other in kindTemplates.keys.sorted() where other != kind {
                guard let template = kindTemplates[other] else { continue }
                if !scheduler.solve(pending: [template], nodes: [node]).placements.isEmpty { serves.insert(other) }
            }
            result[kind] = WarmPlanner.Candidate(price: offering.pricePerHour, serves: serves)
        }
        return result
    }

    func claimKind(_ claim: NodeClaim) -> WarmKind {
        WarmKind(pool: claim.pool, instanceType: claim.instanceType, role: claim.role)
    }

    /// A warm node no longer wanted: terminated (nothing runs there).
    private mutating func retire(_ key: String, now: Date, actions: inout [ProvisionerAction]) {
        guard let claim = claims[key], claim.isLive else { return }
        claims[key]?.warm = nil
        guard let providerID = claim.providerID else { return }  // not launched yet: it goes once it is (empty)
        claims[key]?.terminateRequestedAt = now
        actions.append(.terminate(providerID: providerID, node: claim.nodeName, reason: "warm capacity no longer wanted"))
        actions.append(.event(.init(regarding: .node(claim.nodeName ?? providerID), reason: "WarmNodeRemoved",
                                    message: "warm \(claim.instanceType) no longer wanted; terminating \(providerID)")))
    }

    /// Each pool's nodes, as its limits count them.
    private func poolUsage(index: ClusterIndex) -> [String: PoolUsage] {
        var usage: [String: PoolUsage] = [:]
        for node in nodeStates(index: index).nodes where !node.pool.isEmpty {
            usage[node.pool, default: PoolUsage()].add(capacity: node.capacity, price: node.pricePerHour)
        }
        return usage
    }

    /// Launches one warm node of `kind` in `tier`, within its pool's limits; false when it cannot.
    private mutating func launchWarm(_ kind: WarmKind, tier: WarmTier, usage: inout [String: PoolUsage], now: Date, actions: inout [ProvisionerAction]) -> Bool {
        guard let pool = config.pools.first(where: { $0.name == kind.pool }), let type = catalog[kind.instanceType] else {
            reportWarm(kind, type: "Warning", reason: "WarmCapacityInvalid", message: "warm \(kind): no such pool or instance type", actions: &actions)
            return false
        }
        let offerings = scheduler.warmOfferings(pool: pool.name, instanceType: type.name, stopped: tier == .stopped).filter { offering in
            unavailable[OfferingKey(instanceType: type.name, zone: offering.zone, capacityType: offering.capacityType)].map { $0 <= now } ?? true
        }
        guard let offering = offerings.first else {
            reportWarm(kind, type: "Warning", reason: "WarmCapacityUnavailable", message: "warm \(kind): no offering of it can be launched now", actions: &actions)
            return false
        }
        if let limit = pool.limits.exceeded(by: type.capacity, price: offering.pricePerHour, usage: usage[pool.name] ?? PoolUsage()) {
            reportWarm(kind, reason: "WarmCapacityLimited", message: "warm \(kind) not launched: pool \(pool.name) \(limit)", actions: &actions)
            return false
        }
        usage[pool.name, default: PoolUsage()].add(capacity: type.capacity, price: offering.pricePerHour)
        warmReported[kind] = nil
        var candidate = type
        candidate.offerings = offerings
        var labels = launchLabels(pool: pool, candidates: [candidate], role: kind.role)
        labels[Self.warmLabel] = tier.rawValue
        let launchID = makeLaunchID()
        let request = LaunchRequest(
            launchID: launchID, cluster: config.clusterName, pool: pool.name, candidates: [candidate], labels: labels,
            taints: pool.taints + [tier == .stopped ? Self.warmStoppedTaint : Self.warmRunningTaint],
            extraTags: [WebhookConfig.nodeRoleLabel: kind.role.rawValue, Self.warmLabel: tier.rawValue])
        launch(request, type: type, offering: offering, role: kind.role, warm: tier, now: now, actions: &actions)
        actions.append(.event(.init(regarding: .node(launchID), reason: "WarmLaunch",
                                    message: "launching warm \(tier == .running ? "running" : "stopped-tier") \(type.name) in \(offering.zone) ($\(offering.pricePerHour)/h, pool \(pool.name), launch \(launchID))")))
        return true
    }

    /// A warm kind that cannot be launched is said once (per reason) until it can be again, in an
    /// Event about Berth itself (on its own pod).
    private mutating func reportWarm(_ kind: WarmKind, type: String = "Normal", reason: String, message: String, actions: inout [ProvisionerAction]) {
        guard warmReported[kind] != reason else { return }
        warmReported[kind] = reason
        actions.append(.event(.init(regarding: .provisioner, type: type, reason: reason, message: message)))
    }

    /// Pods that no node can be launched for because of a pool limit get the room of idle warm
    /// nodes: as few as make them fit (stopped tier first) are terminated, and the pods planned
    /// again. Nothing is given up when even that would not make them fit.
    mutating func yieldWarm(_ failing: [PodSnapshot], nodes: [NodeState], claimOfNode: [Int: String], now: Date, actions: inout [ProvisionerAction]) {
        guard !failing.isEmpty, !claims.values.contains(where: { $0.yielded && !$0.terminated }) else { return }
        let idle = nodes.indices.compactMap { i -> (index: Int, key: String)? in
            guard let key = claimOfNode[i], let claim = claims[key], claim.isLive, claim.warm != nil, claim.nominated.isEmpty, claim.providerID != nil else { return nil }
            return (i, key)
        }.sorted { a, b in
            let (x, y) = (claims[a.key]?.warm == .stopped ? 0 : 1, claims[b.key]?.warm == .stopped ? 0 : 1)
            return x != y ? x < y : a.key < b.key
        }
        guard !idle.isEmpty else { return }
        // The fewest (in that order) whose room makes the pods fit; none when even all would not.
        var dropped = Set<Int>()
        var removed: [String] = []
        let unavailableNow = Set(unavailable.filter { $0.value > now }.keys)
        for entry in idle {
            dropped.insert(entry.index)
            removed.append(entry.key)
            let left = nodes.indices.filter { !dropped.contains($0) }.map { nodes[$0] }
            if scheduler.solve(pending: failing.map(\.requirements), nodes: left, unavailableOfferings: unavailableNow).unschedulable.isEmpty { break }
            if removed.count == idle.count { return }
        }
        for key in removed {
            guard let claim = claims[key], let providerID = claim.providerID else { continue }
            actions.append(.event(.init(regarding: .pod(failing[0].key), reason: "WarmCapacityYielded",
                                        message: "a pool limit is reached; warm \(claim.instanceType) \(providerID) makes room")))
            claims[key]?.warm = nil
            claims[key]?.yielded = true
            claims[key]?.terminateRequestedAt = now
            actions.append(.terminate(providerID: providerID, node: claim.nodeName, reason: "a pending pod needs its room under the pool's limits"))
        }
        retrySoon = true
    }
}
