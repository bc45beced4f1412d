import BerthAdmission
import BerthModel
import BerthScheduling
import Foundation

/// The provisioning loop's decisions, as a pure state machine: given what the cluster and the
/// cloud look like at `now`, it returns what to do (``ProvisionerAction``); the outcome of each
/// action comes back through ``record(_:now:)``. No I/O, no clock: the runtime (`Provisioner`)
/// and the simulation (`berth simulate`) drive the same code, the first in real time, the second
/// in virtual time.
///
/// One round (``reconcile(_:now:)``):
/// 1. Recovery and garbage collection, on rounds that listed the cloud: an instance tagged with
///    this cluster's name that Berth does not know becomes a claim (a restart, another replica's
///    launch), with the pods whose launch intent names it; a claim whose instance disappeared is
///    finished; a Node labelled by Berth whose instance is gone is deleted. Nothing is launched
///    before the first listing.
/// 2. Claims: registration (a Node with the instance's providerID), the pool's labels and taints
///    applied, initialisation (Ready and the GPUs allocatable), the launch, registration and GPU
///    timeouts.
/// 3. Provisioning: pending GPU pods (unschedulable, unbound, not nominated to a launching node)
///    are batched; when the window closes the scheduler (``plan(_:now:)``) places them on nodes
///    that are up or launching — every live node counting against its pool's limits, only
///    schedulable ones taking pods, pod affinity, anti-affinity, spread and host ports honoured —
///    or launches the cheapest instances that fit, the launch intent written on the pods first.
///    A pod left to kube-scheduler gets an Event saying so, and its own node if not bound in time.
/// 4. Removal: a Berth node with no GPU pod for `emptyAfter` is cordoned, drained through the
///    Eviction API (a blocked drain says so every few minutes; after `drainTimeout` the pods left
///    are deleted), its instance terminated and its Node deleted.
public struct ProvisionerCore: Sendable {
    /// The taint a node being drained carries (Karpenter's `karpenter.sh/disrupted` counterpart).
    public static let disruptedTaint = Taint(key: "berth.dev/disrupted", value: "", effect: "NoSchedule")
    /// The taint on a shared node that is winding down: no new pods; it goes when its pods finish.
    public static let windingDownTaint = Taint(key: "berth.dev/winding-down", value: "", effect: "NoSchedule")
    /// The label on every node Berth launches: its pool.
    public static let poolLabel = "berth.dev/pool"
    /// Written on each pod a launch is for, before the launch: the launch id (the cloud's
    /// idempotency token) and when it was decided.
    public static let launchIDAnnotation = "berth.dev/launch-id"
    public static let launchTimeAnnotation = "berth.dev/launch-time"
    /// On a node being drained: when its drain started (Unix seconds), read back after a restart.
    public static let drainStartedLabel = "berth.dev/drain-started"
    static func drainStartLabels(_ date: Date) -> [String: String] {
        [drainStartedLabel: String(Int64(date.timeIntervalSince1970.rounded(.down)))]
    }
    /// The label on a drifted node (its instance no longer matches what its pool launches).
    public static let driftedLabel = "berth.dev/drifted"
    /// How long kube-scheduler has to bind a nominated pod to its initialised node before the pod
    /// is planned again.
    public static let nominationGrace: Duration = .seconds(30)
    /// How often an action that failed (a refused eviction, a throttled launch) is retried.
    public static let retryInterval: Duration = .seconds(5)
    /// How long a pool launches nothing after the cloud refused one of its launches for a reason
    /// no retry fixes (``CloudError/refused(action:code:message:)``: permissions, a missing image
    /// or subnet, a rejected parameter). Other pools go on; after the pause the pods are planned
    /// again, and a launch that is still refused pauses the pool again.
    public static let refusedLaunchPause: Duration = .seconds(300)
    /// How long a claim's instance may be missing from the cloud's listing before it counts as
    /// gone (EC2's listing is eventually consistent right after a launch).
    public static let listingGrace: Duration = .seconds(60)
    /// How long kube-scheduler has to bind a pending pod to a node that is up where Berth found
    /// room for it; after that the pod gets a node of its own (Berth's model of it is wrong).
    public static let schedulerGrace: Duration = .seconds(60)
    /// A pod Terminating on a NotReady node this long past its grace period no longer counts: its
    /// kubelet is gone and will never confirm the kill.
    public static let terminatingMargin: Duration = .seconds(60)
    /// How often a drain that is blocked (refused evictions) says so again.
    public static let blockedReportInterval: Duration = .seconds(300)

    public let config: ProvisionerConfig
    public internal(set) var catalog: InstanceCatalog
    public private(set) var scheduler: Scheduler
    /// The extended resource the catalog's GPUs are advertised as.
    public let gpuResource: String

    public internal(set) var claims: [String: NodeClaim] = [:]
    public internal(set) var draining: [String: DrainState] = [:]
    /// Since when each watched condition has held without a break (a node empty of GPU pods,
    /// under-used, consolidatable): acted on once it has held for `emptyAfter`.
    var since: [Watch: Date] = [:]

    enum Watch: Hashable {
        case empty(String)
        case underused(String)
        case consolidatable(String)

        var node: String {
            switch self {
            case let .empty(name), let .underused(name), let .consolidatable(name): name
            }
        }
    }
    /// True once the cloud has been listed: before that, nothing is launched.
    public private(set) var recovered = false
    var batch: (start: Date, last: Date, keys: Set<String>)?
    var retrySoon = false
    var unavailable: [OfferingKey: Date] = [:]
    /// Pools paused after a refused launch: until when, and the cloud's refusal.
    public private(set) var pausedPools: [String: (until: Date, refusal: String)] = [:]
    /// Events decided while recording an outcome, given out by the next round.
    var pendingActions: [ProvisionerAction] = []
    /// Pod (or node) key → the last message reported about it, so each is reported once.
    var reported: [String: String] = [:]
    /// Pending pods the scheduler placed on a node that is up (nothing launched), and since when.
    private var placedOnExisting: [String: (node: String, since: Date)] = [:]
    /// Launch ids this process gave up (failed, timed out, terminated), and when: a pod's launch
    /// intent naming one is not reused (kept for `launchTimeout`, as long as an intent may be).
    private var retired: [String: Date] = [:]
    var random: SeededGenerator

    // Warm capacity (WarmCapacity.swift).
    /// What Berth has learnt of notebook arrivals and launch times (`warm.mode: auto`).
    public internal(set) var warmPlanner = WarmPlanner()
    /// The warm capacity wanted at the last sizing, per kind.
    public internal(set) var warmTargets: [WarmKind: WarmTarget] = [:]
    var warmSizedAt: Date?
    /// Since when a kind has had more warm nodes than wanted.
    var warmSurplusSince: [WarmKind: Date] = [:]
    /// Why a warm kind could not be launched, as last said.
    var warmReported: [WarmKind: String] = [:]
    /// GPU notebooks seen pending, by uid: when first seen and how they are starting.
    var notebooks: [String: NotebookWatch] = [:]
    var kindCache: [KindKey: WarmKind?] = [:]
    /// The last notebook of each kind seen, and what each kind's warm nodes can take (cached).
    var kindTemplates: [WarmKind: PodRequirements] = [:]
    var warmCandidates: [WarmKind: WarmPlanner.Candidate]?
    /// GPU notebooks' time from first seen pending to Running, by how they started; the runtime
    /// takes them (``takeTimeToRunning()``) for its histogram.
    public internal(set) var timeToRunning: [TimeToRunning] = []
    /// The stopped tier is paused (a stop was refused) until then.
    var stoppedTierPausedUntil: Date?
    /// The first round: notebooks created before it are not counted.
    var watchingSince: Date?

    public init(config: ProvisionerConfig, catalog: InstanceCatalog = .builtIn(), gpuResource: String = "nvidia.com/gpu", seed: UInt64) {
        self.config = config
        self.catalog = catalog
        self.gpuResource = gpuResource
        self.scheduler = Self.scheduler(catalog: catalog, config: config, gpuResource: gpuResource)
        self.random = SeededGenerator(seed: seed)
    }

    /// A fresher catalog (the cloud's, re-read: new prices, spot offerings, zones). Claims keep
    /// what they were launched as; decisions from now on use the new types and prices.
    public mutating func replaceCatalog(_ catalog: InstanceCatalog) {
        guard catalog != self.catalog else { return }
        self.catalog = catalog
        scheduler = Self.scheduler(catalog: catalog, config: config, gpuResource: gpuResource)
        kindCache = [:]
        warmCandidates = nil
    }

    /// The scheduler for `pools` (default: every pool of the config).
    static func scheduler(catalog: InstanceCatalog, config: ProvisionerConfig, gpuResource: String, pools: [Pool]? = nil) -> Scheduler {
        Scheduler(
            catalog: catalog, pools: pools ?? config.pools, overhead: config.overhead, gpuResource: gpuResource,
            notebookSharingRatio: config.effectiveNotebookSharingRatio)
    }

    // MARK: - One round

    public mutating func reconcile(_ cluster: ClusterSnapshot, now: Date) -> [ProvisionerAction] {
        var actions = pendingActions
        pendingActions = []
        pausedPools = pausedPools.filter { $0.value.until > now }
        let index = ClusterIndex(cluster, now: now)
        if let instances = cluster.cloudInstances {
            collectGarbage(instances, index: index, now: now, actions: &actions)
        }
        guard recovered else { return actions }
        for key in claims.keys.sorted() {
            advance(claim: key, index: index, now: now, actions: &actions)
        }
        watchNotebooks(index: index, now: now)
        provision(index: index, now: now, actions: &actions)
        warmCapacity(index: index, now: now, actions: &actions)
        disrupt(index: index, now: now, actions: &actions)
        // Forget what was said about pods and nodes that are gone.
        reported = reported.filter { index.pods[$0.key] != nil || index.nodes[$0.key] != nil }
        placedOnExisting = placedOnExisting.filter { index.pods[$0.key]?.isPendingGPU ?? false }
        retired = retired.filter { now.timeIntervalSince($0.value) < config.launchTimeout.seconds }
        unavailable = unavailable.filter { $0.value > now }
        return actions
    }

    /// Feeds back the outcome of an action this core asked for.
    public mutating func record(_ result: ActionResult, now: Date) {
        switch result {
        case let .launched(launchID, instance):
            guard var claim = claims[launchID] else { return }
            claim.launchInFlight = false
            claim.instance = instance
            claim.instanceType = instance.instanceType
            claim.zone = instance.zone
            claim.capacityType = instance.capacityType
            claim.pricePerHour = instance.pricePerHour
            claims[launchID] = claim
        case let .launchFailed(launchID, error):
            guard var claim = claims[launchID] else { return }
            claim.launchInFlight = false
            switch error {
            case .insufficientCapacity, .invalidRequest:
                // No capacity (or it can never succeed as asked): skip these offerings for a while
                // and re-plan the pods at once; the scheduler picks the next cheapest.
                var offerings: [OfferingKey] = []
                if case let .insufficientCapacity(named) = error { offerings = named }
                if offerings.isEmpty { offerings = [OfferingKey(instanceType: claim.instanceType, zone: claim.zone, capacityType: claim.capacityType)] }
                for offering in offerings { unavailable[offering] = now.addingTimeInterval(config.unavailableOfferingTTL.seconds) }
                claims[launchID] = nil
                retired[launchID] = now
                retrySoon = true
            case let .refused(action, code, message):
                // Retrying cannot help until someone changes the permissions or the configuration:
                // give up this launch, pause its pool, say why on the pods it was for.
                let until = now.addingTimeInterval(Self.refusedLaunchPause.seconds)
                pausedPools[claim.pool] = (until, "\(action): \(code)")
                let text = "\(action) refused: \(code): \(message)"
                for pod in claim.nominated.keys.sorted() {
                    pendingActions.append(.event(.init(
                        regarding: .pod(pod), type: "Warning", reason: "LaunchRefused",
                        message: "launch \(launchID) of \(claim.instanceType) in pool \(claim.pool): \(text); no launch in pool \(claim.pool) for \(GoDuration.format(Self.refusedLaunchPause))")))
                }
                claims[launchID] = nil
                retrySoon = true
            case .throttled, .other, .notFound:
                // The outcome is unknown: retry with the same launch id (never a new one).
                claims[launchID] = claim
            }
        case let .terminated(providerID), let .terminateFailed(providerID, .notFound):
            for (key, claim) in claims where claim.providerID == providerID {
                claims[key]?.terminated = true
            }
        case .terminateFailed:
            break  // retried once the retry interval has passed since the request
        case let .evictionFailed(pod, message):
            // Remembered for the drain's "blocked" report; retried on a timer.
            for (name, drain) in draining where drain.lastEviction[pod] != nil { draining[name]?.refused[pod] = message }
        case let .evicted(pod), let .podDeleted(pod):
            for (name, drain) in draining where drain.refused[pod] != nil { draining[name]?.refused[pod] = nil }
        case .nodeDeleted, .nodeUpdateFailed, .podDeleteFailed:
            break  // the next snapshot shows the outcome; failures are retried on a timer
        case .stopped, .stopFailed, .started, .startFailed:
            recordPower(result, now: now)
        }
    }

    /// The cloud's notice that an instance is going away: its node is tainted and drained at once
    /// (its pods go back to pending and are planned onto other or new nodes now, not after the
    /// instance is gone), then terminated; an instance already stopping or terminated is given up
    /// at once. A rebalance recommendation only puts a Warning on the node. Notices for instances
    /// Berth does not know are ignored (another cluster's, a node Berth does not manage).
    public mutating func interrupted(_ notice: InterruptionNotice, now: Date) {
        guard let key = claims.first(where: { $0.value.providerID.flatMap(ProviderID.init)?.instanceID == notice.instanceID })?.key,
              let claim = claims[key], !claim.terminated else { return }
        let object: ProvisionerEvent.Object = .node(claim.nodeName ?? claim.providerID ?? key)
        guard notice.isInterruption else {
            pendingActions.append(.event(.init(regarding: object, type: "Warning", reason: "RebalanceRecommendation",
                                               message: "\(notice.text) for \(notice.instanceID); not drained")))
            return
        }
        if case .stateChange(let state) = notice.kind, state == "shutting-down" || state == "terminated" {
            claims[key]?.terminated = true
            pendingActions.append(.event(.init(regarding: object, type: "Warning", reason: "Interrupted",
                                               message: "\(notice.text): \(notice.instanceID) is gone; its pods are planned again")))
            retrySoon = true
            return
        }
        guard let name = claim.nodeName, draining[name] == nil else {
            if claim.nodeName == nil {
                // Not registered yet: nothing runs there; terminate it and plan its pods again.
                if claim.terminateRequestedAt == nil, let providerID = claim.providerID {
                    claims[key]?.terminateRequestedAt = now
                    pendingActions.append(.terminate(providerID: providerID, node: nil, reason: notice.text))
                }
                requeue(claim)
                claims[key]?.nominated = [:]
            }
            return
        }
        draining[name] = DrainState(startedAt: now)
        since = since.filter { $0.key.node != name }
        pendingActions.append(.updateNode(name: name, labels: [:], addTaints: [Self.disruptedTaint], removeTaints: []))
        pendingActions.append(.event(.init(regarding: .node(name), type: "Warning", reason: "Interrupted",
                                           message: "\(notice.text) for \(notice.instanceID); cordoned and draining now so its pods start elsewhere")))
        retrySoon = true
    }

    /// When the next round is due at the latest (batch window closing, a timeout, a node's
    /// emptiness expiring, a retry); nil when nothing is waiting on time.
    public func nextWakeup(after now: Date) -> Date? {
        var times: [Date] = []
        if let batch {
            times.append(min(batch.last.addingTimeInterval(config.batchIdle.seconds), batch.start.addingTimeInterval(config.batchMax.seconds)))
        }
        if retrySoon { times.append(now) }
        for start in since.values { times.append(start.addingTimeInterval(config.emptyAfter.seconds)) }
        if !draining.isEmpty { times.append(now.addingTimeInterval(Self.retryInterval.seconds)) }
        for claim in claims.values {
            if claim.terminated || claim.terminateRequestedAt != nil {
                times.append(now.addingTimeInterval(Self.retryInterval.seconds))
            } else if claim.instance == nil {
                times.append(min(claim.createdAt.addingTimeInterval(config.launchTimeout.seconds), (claim.lastLaunchAttempt ?? now).addingTimeInterval(Self.retryInterval.seconds)))
            } else if claim.registeredAt == nil, let instance = claim.instance {
                times.append(instance.launchTime.addingTimeInterval(config.registrationTimeout.seconds))
            } else if let registered = claim.registeredAt, claim.initializedAt == nil, !claim.gpuWarned {
                times.append(registered.addingTimeInterval(config.gpuRegistrationTimeout.seconds))
            }
        }
        if config.warm.mode != .off || claims.values.contains(where: { $0.warm != nil }) {
            times.append(now.addingTimeInterval(Self.warmSizingInterval.seconds))
        }
        for since in warmSurplusSince.values { times.append(since.addingTimeInterval(Self.warmSurplusGrace.seconds)) }
        for claim in claims.values { if let retry = claim.powerRetryAfter { times.append(retry) } }
                times.append(contentsOf: unavailable.values)
        times.append(contentsOf: pausedPools.values.map(\.until))
        // A deadline already past (a round that will act on it is due) means: soon, not in the past,
        // so a virtual-time driver never spins on one instant.
        return times.filter { $0 >= now }.min() ?? (times.isEmpty ? nil : now.addingTimeInterval(1))
    }

    // MARK: - 1. Recovery and garbage collection

    private mutating func collectGarbage(_ instances: [CloudInstance], index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        // The berth.dev/cluster tag is this cluster's identity: an instance tagged for another
        // cluster (or untagged) is never adopted, counted or terminated, whatever the listing returned.
        let instances = instances.filter { $0.tags[CloudTag.cluster] == config.clusterName }
        let listed = Set(instances.map(\.providerID))
        for instance in instances where claims[instance.launchID] == nil && instance.state != .terminated {
            // A launch this process does not remember: adopt it; the usual timeouts apply.
            var claim = NodeClaim(
                launchID: instance.launchID, pool: instance.pool ?? "", instanceType: instance.instanceType, zone: instance.zone,
                capacityType: instance.capacityType, pricePerHour: instance.pricePerHour, request: nil, createdAt: instance.launchTime)
            claim.instance = instance
            let role = instance.tags[WebhookConfig.nodeRoleLabel] ?? index.nodesByProviderID[instance.providerID]?.labels[WebhookConfig.nodeRoleLabel]
            claim.role = role.flatMap(NodeRole.init(rawValue:)) ?? .shared
            // Warm capacity: its tier from the node's label (the launch's tag before it registered),
            // whether it is up from the instance's state.
            let node = index.nodesByProviderID[instance.providerID]
            claim.warm = (node?.labels[Self.warmLabel] ?? instance.tags[Self.warmLabel]).flatMap(WarmTier.init(rawValue:))
            switch instance.state {
            case .stopping: claim.power = .stopping
            case .stopped: claim.power = .stopped
            default: break
            }
            if claim.warm != nil, node?.labels[Self.warmLabel] != nil { claim.preparedAt = now }
            if let node {
                claim.nodeName = node.name
                claim.registeredAt = now
                claim.windingDown = node.taints.contains { $0.key == Self.windingDownTaint.key }
                if node.taints.contains(where: { $0.key == Self.disruptedTaint.key }) {
                    // The drain goes on from when it started (its label), so a restart does not
                    // restart the drain timeout.
                    let started = node.labels[Self.drainStartedLabel].flatMap(Double.init).map(Date.init(timeIntervalSince1970:))
                    draining[node.name] = DrainState(startedAt: min(started ?? now, now))
                }
            }
            // Pods this launch was for (their intent says so) wait for it again.
            for pod in index.snapshot.pods where pod.launchIntent?.launchID == instance.launchID && pod.isPendingGPU {
                claim.nominated[pod.key] = pod.requests
            }
            claims[instance.launchID] = claim
            actions.append(.event(.init(
                regarding: claim.nodeName.map { .node($0) } ?? .node(instance.providerID), reason: "Adopted",
                message: "found \(instance.instanceType) \(instance.providerID) (launch \(instance.launchID)) tagged for cluster \(config.clusterName)")))
        }
        // Drift as the cloud reports it: marked once; the node is handled in `advance`.
        for instance in instances {
            if let drift = instance.drift, claims[instance.launchID]?.drift == nil { claims[instance.launchID]?.drift = drift }
        }
        for (key, claim) in claims where !claim.terminated {
            guard let instance = claim.instance, !listed.contains(instance.providerID) else { continue }
            if now.timeIntervalSince(instance.launchTime) > Self.listingGrace.seconds {
                claims[key]?.terminated = true
            }
        }
        if recovered {
            let held = Set(claims.values.compactMap(\.providerID))
            for node in index.snapshot.nodes where node.labels[Self.poolLabel] != nil && !node.providerID.isEmpty && !listed.contains(node.providerID) {
                if !held.contains(node.providerID) && !node.deleting {
                    actions.append(.deleteNode(name: node.name))
                    actions.append(.event(.init(regarding: .node(node.name), reason: "InstanceGone", message: "instance \(node.providerID) no longer exists; deleting the Node")))
                }
            }
        }
        recovered = true
    }

    // MARK: - 2. Claims

    private mutating func advance(claim key: String, index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        guard var claim = claims[key] else { return }
        var remove = false
        defer {
            claims[key] = remove ? nil : claim
            if remove { retired[key] = now }
        }
        let node = claim.providerID.flatMap { index.nodesByProviderID[$0] } ?? claim.nodeName.flatMap { index.nodes[$0] }

        // Terminated: delete its Node, then forget it.
        if claim.terminated {
            if let node {
                if claim.lastDeleteRequest.map({ now.timeIntervalSince($0) >= Self.retryInterval.seconds }) ?? true {
                    claim.lastDeleteRequest = now
                    actions.append(.deleteNode(name: node.name))
                }
            } else {
                if let name = claim.nodeName {
                    draining[name] = nil
                    since = since.filter { $0.key.node != name }
                }
                requeue(claim)
                remove = true
            }
            return
        }
        if let requested = claim.terminateRequestedAt {
            if now.timeIntervalSince(requested) >= Self.retryInterval.seconds, let providerID = claim.providerID {
                claim.terminateRequestedAt = now
                actions.append(.terminate(providerID: providerID, node: claim.nodeName, reason: "retrying termination"))
            }
            return
        }

        // Not launched yet: retry an unanswered or failed create with the same launch id.
        guard let instance = claim.instance else {
            if claim.launchInFlight { return }
            if now.timeIntervalSince(claim.createdAt) >= config.launchTimeout.seconds {
                actions.append(.event(.init(regarding: .node(key), type: "Warning", reason: "LaunchTimeout",
                                            message: "launch \(key) of \(claim.instanceType) did not succeed within \(GoDuration.format(config.launchTimeout)); retrying the pods")))
                requeue(claim)
                remove = true
                return
            }
            if let request = claim.request, claim.lastLaunchAttempt.map({ now.timeIntervalSince($0) >= Self.retryInterval.seconds }) ?? true {
                claim.launchInFlight = true
                claim.lastLaunchAttempt = now
                actions.append(.launch(request))
            }
            return
        }

        // Launched, waiting for its Node.
        guard let node else {
            if claim.nodeName != nil {
                // Its Node was deleted by someone else: the instance must go too.
                claim.terminateRequestedAt = now
                actions.append(.terminate(providerID: instance.providerID, node: nil, reason: "its Node was deleted"))
                actions.append(.event(.init(regarding: .node(claim.nodeName ?? key), reason: "NodeDeleted", message: "Node deleted; terminating \(instance.providerID)")))
            } else if now.timeIntervalSince(instance.launchTime) >= config.registrationTimeout.seconds {
                claim.terminateRequestedAt = now
                actions.append(.terminate(providerID: instance.providerID, node: nil, reason: "registration timeout"))
                actions.append(.event(.init(regarding: .node(instance.providerID), type: "Warning", reason: "RegistrationTimeout",
                                            message: "\(instance.instanceType) \(instance.providerID) did not register a Node within \(GoDuration.format(config.registrationTimeout)); terminating it and retrying its pods")))
                requeue(claim)
                claim.nominated = [:]
            }
            return
        }

        // Stopped (warm capacity): NotReady by design; nothing to wait for until it is started.
        if claim.power.isDown {
            claim.nodeName = node.name
            return
        }
        if claim.nodeName == nil || claim.registeredAt == nil {
            claim.nodeName = node.name
            claim.registeredAt = now
            actions.append(.event(.init(regarding: .node(node.name), reason: "Registered",
                                        message: "\(claim.instanceType) \(instance.providerID) registered as node \(node.name) (pool \(claim.pool))")))
        }
        // The pool's labels and taints, in case the node did not register with them.
        if draining[node.name] == nil, let pool = config.pools.first(where: { $0.name == claim.pool }) {
            // Computed once per claim (string work on every round showed in berth simulate's profile).
            let desiredLabels = claim.desiredLabels ?? nodeLabels(pool: pool, instanceType: claim.instanceType, zone: claim.zone, capacityType: claim.capacityType, role: claim.role)
            claim.desiredLabels = desiredLabels
            let missingLabels = desiredLabels.filter { node.labels[$0.key] != $0.value }
            let missingTaints = pool.taints.filter { taint in !node.taints.contains { $0.key == taint.key && $0.effect == taint.effect && $0.value == taint.value } }
            if !missingLabels.isEmpty || !missingTaints.isEmpty {
                actions.append(.updateNode(name: node.name, labels: missingLabels, addTaints: missingTaints, removeTaints: []))
            }
        }
        // Drifted: labelled and wound down (no new pods; a running notebook is never disturbed),
        // so it goes once no GPU pod uses it and its pods' successors land on current nodes.
        if let drift = claim.drift, !claim.windingDown, draining[node.name] == nil {
            claim.windingDown = true
            actions.append(.updateNode(name: node.name, labels: [Self.driftedLabel: "true"], addTaints: [Self.windingDownTaint], removeTaints: []))
            actions.append(.event(.init(regarding: .node(node.name), reason: "Drifted",
                                        message: "\(drift); no new pods, replaced once no GPU pod uses it")))
        }
        // Nominations end when the pod is bound, gone or going — or, once the node is initialised,
        // when kube-scheduler has had `nominationGrace` to bind it there and has not (another pod
        // took the room): the pod is planned again instead of waiting for that pod to finish.
        let overdue = claim.initializedAt.map { now.timeIntervalSince(max($0, claim.takenAt ?? $0)) >= Self.nominationGrace.seconds } ?? false
        claim.nominated = claim.nominated.filter { entry in
            guard let pod = index.pods[entry.key], pod.nodeName.isEmpty, !pod.terminating, !pod.finished else { return false }
            if overdue && pod.unschedulable {
                retrySoon = true  // still pending: plan it again now
                return false
            }
            return true
        }
        // Initialisation: Ready, and every GPU allocatable.
        if claim.initializedAt == nil && !claim.gpuWarned {
            let gpus = catalog[claim.instanceType]?.gpuCount ?? 0
            if node.ready && node.allocatable.gpus >= Int64(gpus) {
                claim.initializedAt = now
                if case let .starting(since) = claim.power {
                    claim.power = .on
                    warmPlanner.observeStart(seconds: now.timeIntervalSince(since))
                }
                actions.append(.event(.init(regarding: .node(node.name), reason: "Initialized",
                                            message: gpus > 0 ? "Ready with \(gpus) \(node.gpuResource) allocatable" : "Ready")))
            } else if let registered = claim.registeredAt, now.timeIntervalSince(registered) >= config.gpuRegistrationTimeout.seconds {
                claim.gpuWarned = true
                let what = node.ready
                    ? "\(node.gpuResource) is still not allocatable \(GoDuration.format(config.gpuRegistrationTimeout)) after the node registered (is the NVIDIA device plugin running on it?)"
                    : "the node is still not Ready \(GoDuration.format(config.gpuRegistrationTimeout)) after it registered"
                actions.append(.event(.init(regarding: .node(node.name), type: "Warning", reason: "GPUsNotRegistered", message: what + "; it will be removed once no GPU pod uses it")))
                for pod in claim.nominated.keys.sorted() {
                    actions.append(.event(.init(regarding: .pod(pod), type: "Warning", reason: "GPUsNotRegistered", message: "node \(node.name) launched for this pod: " + what)))
                }
                claim.nominated = [:]
            }
        }
    }

    /// Its nominated pods go back to pending: they are planned again at once.
    private mutating func requeue(_ claim: NodeClaim) {
        if !claim.nominated.isEmpty { retrySoon = true }
    }

    // MARK: - 3. Provisioning

    private mutating func provision(index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        let nominated = Set(claims.values.filter(\.isLive).flatMap(\.nominated.keys))
        var pending: [PodSnapshot] = []
        for pod in index.snapshot.pods where pod.nodeName.isEmpty && pod.unschedulable && !pod.daemon {
            if let invalid = pod.invalid {
                // Unreadable scheduling fields: said on the pod, never placed; the rest goes on.
                report(.pod(pod.key), type: "Warning", reason: "InvalidPod", message: "cannot plan for this pod: \(invalid)", actions: &actions)
                continue
            }
            if pod.isPendingGPU && !nominated.contains(pod.key) { pending.append(pod) }
        }
        guard !pending.isEmpty else {
            batch = nil
            retrySoon = false
            return
        }
        let keys = Set(pending.map(\.key))
        if var open = batch {
            if !keys.isSubset(of: open.keys) { open.last = now }
            open.keys.formUnion(keys)
            batch = open
        } else {
            batch = (now, now, keys)
        }
        guard let open = batch else { return }
        let closes = retrySoon || now.timeIntervalSince(open.last) >= config.batchIdle.seconds || now.timeIntervalSince(open.start) >= config.batchMax.seconds
        guard closes else { return }
        batch = nil
        retrySoon = false
        solve(pending, index: index, now: now, actions: &actions)
    }

    /// The nodes the scheduler sees: every live node Berth launched (launching, running, draining,
    /// winding down, being terminated: all count against their pool's limits, only schedulable
    /// ones take pods) and other Ready, schedulable GPU nodes, each with the pods bound or
    /// nominated there. A registered node is seen as it is: its own taints (a foreign NoSchedule
    /// taint counts) and labels, and cordoned means no new pods. Warm nodes come last, running
    /// then stopped, cheapest first: a pod placed first-fit takes the cheapest warm node it fits.
    func nodeStates(index: ClusterIndex) -> (nodes: [NodeState], claimOfNode: [Int: String]) {
        var nodes: [NodeState] = []
        var claimOfNode: [Int: String] = [:]
        let order = claims.keys.sorted().map { key -> (Int, Double, String) in
            guard let claim = claims[key], let tier = claim.warm else { return (0, 0, key) }
            return (tier == .running ? 1 : 2, claim.pricePerHour, key)
        }.sorted { $0 < $1 }.map(\.2)
        for key in order {
            guard let claim = claims[key], !claim.terminated, let type = catalog[claim.instanceType], let pool = config.pools.first(where: { $0.name == claim.pool }) else { continue }
            let offering = type.offerings.first { $0.zone == claim.zone && $0.capacityType == claim.capacityType }
                ?? Offering(zone: claim.zone, capacityType: claim.capacityType, pricePerHour: claim.pricePerHour)
            let allocatable = config.overhead.allocatable(type)
            var requested = claim.nominated.values.reduce(Resources.zero, +)
            var pods = claim.nominated.keys.sorted().compactMap { index.pods[$0]?.requirements }
            let node = claim.nodeName.flatMap { index.nodes[$0] }
            if let name = claim.nodeName {
                let bound = index.podsOnNode[name, default: []].filter(\.occupies)
                requested += bound.map(\.requests).reduce(Resources.zero, +)
                pods += bound.map(\.requirements)
            }
            if claim.dedicated && !claim.nominated.isEmpty { requested = allocatable }
            if claim.gpuWarned { requested = allocatable }  // its GPUs never came: place nothing more there
            var state = NodeState.launching(name: claim.nodeName ?? "launch/\(key)", type: type, offering: offering, pool: pool, overhead: config.overhead, requested: requested)
            state.labels[WebhookConfig.nodeRoleLabel] = claim.role.rawValue
            if let node {
                state.labels.merge(node.labels) { _, actual in actual }
                // A stopped node is seen as it will be once started: without the taints of being
                // down. (Its warm taint stays: only notebooks are planned onto warm nodes.)
                let own = claim.warm != nil ? node.taints.filter { !Self.downTaintKeys.contains($0.key) || $0.key == Self.warmStoppedTaint.key } : node.taints
                state.taints += own.filter { taint in !state.taints.contains { $0.key == taint.key && $0.effect == taint.effect } }
            }
            state.pricePerHour = claim.pricePerHour
            state.launching = claim.initializedAt == nil || claim.warm != nil
            state.pods = pods
            state.schedulable = claim.isLive && !claim.windingDown && claim.nodeName.map { draining[$0] == nil } ?? true
                && !(node?.unschedulable ?? false) && !(node?.deleting ?? false)
            if claim.power.isDown, unavailable[OfferingKey(instanceType: claim.instanceType, zone: claim.zone, capacityType: claim.capacityType)] != nil {
                state.schedulable = false  // no capacity to start it now
            }
            claimOfNode[nodes.count] = key
            nodes.append(state)
        }
        let managed = Set(claims.values.compactMap(\.nodeName))
        for node in index.snapshot.nodes where !managed.contains(node.name) && !node.deleting {
            // A node labelled with one of Berth's pools that no claim holds (not adopted yet;
            // `berth plan` on a cluster's state): it counts against its pool's limits, as it is.
            let pool = node.labels[Self.poolLabel].flatMap { name in config.pools.first { $0.name == name } }
            let type = node.labels[WellKnownLabel.instanceType].flatMap { catalog[$0] }
            let schedulable = node.ready && !node.unschedulable && node.allocatable.gpus > 0
            guard schedulable || pool != nil else { continue }
            // The kubelet's allocatable: every running pod takes its share, DaemonSet pods included.
            let bound = index.podsOnNode[node.name, default: []].filter { !$0.finished }
            let requested = bound.map(\.requests).reduce(Resources.zero, +)
            let price = type.flatMap { type in
                type.offerings.first { $0.zone == node.labels[WellKnownLabel.zone] && $0.capacityType == node.labels[WellKnownLabel.capacityType] }?.pricePerHour
                    ?? type.offerings.first?.pricePerHour
            }
            nodes.append(NodeState(
                name: node.name, pool: pool?.name ?? "", instanceType: node.labels[WellKnownLabel.instanceType] ?? "", labels: node.labels, taints: node.taints,
                capacity: pool != nil ? type?.capacity ?? node.allocatable : node.allocatable, allocatable: node.allocatable, requested: requested,
                pricePerHour: pool != nil ? price ?? 0 : 0, gpuResource: node.gpuResource, schedulable: schedulable, pods: bound.map(\.requirements)))
        }
        return (nodes, claimOfNode)
    }

    /// What the loop would decide now for the pods of `cluster` that wait for Berth (unbound,
    /// unschedulable GPU pods, valid, not nominated to a launch): placed on nodes that are up or
    /// launching, new nodes, or unschedulable with the reason. Changes nothing; `berth plan` shows it.
    public func plan(_ cluster: ClusterSnapshot, now: Date) -> (pending: [PodSnapshot], plan: SchedulingPlan) {
        let index = ClusterIndex(cluster, now: now)
        let nominated = Set(claims.values.filter(\.isLive).flatMap(\.nominated.keys))
        let pending = cluster.pods.filter { $0.nodeName.isEmpty && $0.unschedulable && $0.invalid == nil && $0.isPendingGPU && !nominated.contains($0.key) }
        return (pending, schedule(pending, index: index, now: now, launching: false).plan)
    }

    /// `launching`: the plan will be launched, so new nodes get their `alternatives` (offerings a
    /// fleet launch falls back to); a plan only shown (`berth plan`) does without them.
    private func schedule(_ pending: [PodSnapshot], index: ClusterIndex, now: Date, launching: Bool) -> (plan: SchedulingPlan, nodes: [NodeState], claimOfNode: [Int: String], requirements: [PodRequirements]) {
        let (nodes, claimOfNode) = nodeStates(index: index)
        var requirements = pending.map(\.requirements)
        for (i, pod) in pending.enumerated() {
            // Warm nodes wait for notebooks: Berth plans a notebook onto one (then takes its taint off).
            if pod.requirements.isNotebook && hasWarmNodes { requirements[i].constraints = Self.toleratingWarm(requirements[i].constraints) }
            // Placed on a node that exists, yet kube-scheduler has not bound it there: Berth's model
            // of it is wrong (a constraint it does not know): it gets a node of its own.
            if let placed = placedOnExisting[pod.key], now.timeIntervalSince(placed.since) >= Self.schedulerGrace.seconds {
                requirements[i].interPod.unmodelled = "placement (kube-scheduler did not bind it to node \(placed.node), where it seemed to fit, within \(GoDuration.format(Self.schedulerGrace)))"
            }
        }
        // A paused pool launches nothing: the pods are planned with the other pools only. (The
        // round began by dropping pauses that have ended.)
        var planner = scheduler
        if !pausedPools.isEmpty {
            planner = Self.scheduler(catalog: catalog, config: config, gpuResource: gpuResource, pools: config.pools.filter { pausedPools[$0.name] == nil })
        }
        planner.computesAlternatives = launching
        let plan = planner.solve(pending: requirements, nodes: nodes, unavailableOfferings: Set(unavailable.filter { $0.value > now }.keys))
        return (plan, nodes, claimOfNode, requirements)
    }

    var hasWarmNodes: Bool { claims.values.contains { $0.warm != nil } }

    static func toleratingWarm(_ constraints: PodConstraints) -> PodConstraints {
        PodConstraints(
            tolerations: constraints.tolerations + [Toleration(key: warmRunningTaint.key, operator: "Exists", effect: warmRunningTaint.effect)],
            nodeSelector: constraints.nodeSelector, requiredTerms: constraints.requiredTerms, zones: constraints.zones)
    }

    private mutating func solve(_ pending: [PodSnapshot], index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        let (plan, nodes, claimOfNode, requirements) = schedule(pending, index: index, now: now, launching: true)

        let nodeIndex = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($0.element.name, $0.offset) })
        for placement in plan.placements {
            let pod = pending[placement.pod]
            if let n = nodeIndex[placement.node], let key = claimOfNode[n], claims[key]?.initializedAt == nil || claims[key]?.warm != nil {
                claims[key]?.nominated[pod.key] = pod.requests
                report(.pod(pod.key), reason: "Nominated", message: "waiting for node \(placement.node), already launching", actions: &actions)
            } else {
                // Berth launches nothing for it: it fits on a node that is up. Said on the pod, never silence.
                if placedOnExisting[pod.key]?.node != placement.node { placedOnExisting[pod.key] = (placement.node, now) }
                report(.pod(pod.key), reason: "NotLaunching", message: "fits on node \(placement.node), which is up; waiting for kube-scheduler to bind it there", actions: &actions)
            }
        }
        for new in plan.nodes {
            guard let type = catalog[new.instanceType], let pool = config.pools.first(where: { $0.name == new.pool }),
                let offering = type.offerings.first(where: { $0.zone == new.zone && $0.capacityType == new.capacityType })
            else { continue }
            // A launch decided for these pods before a restart, still within its launch timeout,
            // whose instance this process does not know: the same id again, so the cloud's
            // idempotency returns that instance rather than launching a second one.
            let earlier = new.pods.lazy.compactMap { pending[$0].launchIntent }.first { intent in
                self.claims[intent.launchID] == nil && self.retired[intent.launchID] == nil
                    && now.timeIntervalSince(intent.at) < self.config.launchTimeout.seconds
            }
            let launchID = earlier?.launchID ?? makeLaunchID()
            // The intent goes on the pods first (the runtime writes it before launching).
            let intent = LaunchIntent(launchID: launchID, at: earlier?.at ?? now)
            for pod in new.pods where pending[pod].launchIntent != intent {
                actions.append(.annotatePod(pod: pending[pod].key, annotations: intent.annotations))
            }
            let candidates = launchCandidates(new, chosen: type, offering: offering)
            let request = LaunchRequest(
                launchID: launchID, cluster: config.clusterName, pool: pool.name, candidates: candidates,
                labels: launchLabels(pool: pool, candidates: candidates, role: new.role), taints: pool.taints,
                extraTags: [WebhookConfig.nodeRoleLabel: new.role.rawValue])
            var nominated: [String: Resources] = [:]
            for pod in new.pods { nominated[pending[pod].key] = pending[pod].requests }
            launch(request, type: type, offering: offering, role: new.role, nominated: nominated, now: now, actions: &actions)
            let why = new.rejected.isEmpty ? "" : "; cheaper types rejected: " + new.rejected.prefix(3).map(\.description).joined(separator: ", ")
            for pod in new.pods {
                let own = requirements[pod].interPod.unmodelled.map { "; a node of its own, as Berth cannot model its \($0)" } ?? ""
                actions.append(.event(.init(regarding: .pod(pending[pod].key), reason: "Nominated",
                                            message: "launching \(type.name) in \(offering.zone) (\(offering.capacityType), $\(offering.pricePerHour)/h, pool \(pool.name), launch \(launchID))\(why)\(own)")))
            }
        }
        let pauses = pausedPools.sorted { $0.key < $1.key }.map { name, pause in
            "pool \(name) is paused until \(RFC3339.string(pause.until)) after a refused launch (\(pause.refusal))"
        }.joined(separator: "; ")
        for failure in plan.unschedulable {
            let pod = pending[failure.pod]
            report(.pod(pod.key), type: "Warning", reason: "FailedProvisioning",
                   message: "no node can be launched: \(failure.reason)\(pauses.isEmpty ? "" : "; " + pauses)", actions: &actions)
        }
        let limited = plan.unschedulable.filter { $0.reason.contains("limit") }.map { pending[$0.pod] }
        if !limited.isEmpty { yieldWarm(limited, nodes: nodes, claimOfNode: claimOfNode, now: now, actions: &actions) }
    }

    /// The labels every candidate offering of a launch shares (the first candidate's first offering
    /// is the chosen one): the node's own type and zone labels come from the kubelet and the cloud,
    /// and are set once the launch says which it got.
    func launchLabels(pool: Pool, candidates: [InstanceType], role: NodeRole) -> [String: String] {
        guard let type = candidates.first, let offering = type.offerings.first else { return [:] }
        var labels = nodeLabels(pool: pool, instanceType: type.name, zone: offering.zone, capacityType: offering.capacityType, role: role)
        for candidate in candidates {
            for other in candidate.offerings where labels.isEmpty == false {
                let theirs = nodeLabels(pool: pool, instanceType: candidate.name, zone: other.zone, capacityType: other.capacityType, role: role)
                labels = labels.filter { theirs[$0.key] == $0.value }
            }
        }
        return labels
    }

    /// A new claim for `request` (its chosen type and offering), its launch sent.
    mutating func launch(
        _ request: LaunchRequest, type: InstanceType, offering: Offering, role: NodeRole, warm: WarmTier? = nil, nominated: [String: Resources] = [:],
        now: Date, actions: inout [ProvisionerAction]
    ) {
        var claim = NodeClaim(
            launchID: request.launchID, pool: request.pool, instanceType: type.name, zone: offering.zone, capacityType: offering.capacityType,
            pricePerHour: offering.pricePerHour, request: request, createdAt: now)
        claim.role = role
        claim.warm = warm
        claim.launchInFlight = true
        claim.lastLaunchAttempt = now
        claim.nominated = nominated
        claims[request.launchID] = claim
        actions.append(.launch(request))
    }

    /// At most this many instance types in one launch (Karpenter's limit for one CreateFleet).
    public static let maxLaunchTypes = 60

    /// What one launch may try, cheapest first: the chosen type and offering, then the plan's
    /// alternatives (other offerings the pods take just as well), grouped by type in the order of
    /// each type's cheapest offering, at most ``maxLaunchTypes`` types.
    func launchCandidates(_ new: SchedulingPlan.NewNode, chosen type: InstanceType, offering: Offering) -> [InstanceType] {
        var order = [type.name]
        var offerings: [String: [Offering]] = [type.name: [offering]]
        for option in new.alternatives {
            if offerings[option.instanceType] == nil {
                guard order.count < Self.maxLaunchTypes, catalog[option.instanceType] != nil else { continue }
                order.append(option.instanceType)
            }
            offerings[option.instanceType, default: []].append(option.offering)
        }
        return order.compactMap { name in
            guard var candidate = catalog[name] else { return nil }
            candidate.offerings = offerings[name] ?? []
            return candidate
        }
    }

    /// The labels a node Berth launches carries: the pool's (`Pool.nodeLabels`), Berth's pool label
    /// and its role.
    public func nodeLabels(pool: Pool, instanceType: String, zone: String, capacityType: String, role: NodeRole) -> [String: String] {
        var labels: [String: String] = [:]
        if let type = catalog[instanceType] {
            let offering = type.offerings.first { $0.zone == zone && $0.capacityType == capacityType }
                ?? Offering(zone: zone, capacityType: capacityType, pricePerHour: 0)
            labels = pool.nodeLabels(type: type, offering: offering)
        } else {
            labels = pool.labels
            labels[WellKnownLabel.nodePool] = pool.name
        }
        labels[Self.poolLabel] = pool.name
        labels[WebhookConfig.nodeRoleLabel] = role.rawValue
        return labels
    }

    mutating func makeLaunchID() -> String {
        let hex = String(random.next(), radix: 16)
        return "\(config.clusterName)-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    // MARK: - 4. Removal

    private mutating func disrupt(index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        var budget = config.maxDisruptedNodes - draining.count
        for key in claims.keys.sorted() {
            guard let claim = claims[key], claim.isLive, let name = claim.nodeName, let node = index.nodes[name], draining[name] == nil else { continue }
            // Warm nodes are empty on purpose; warm capacity's sizing removes them.
            if claim.warm != nil || claim.power != .on {
                since[.empty(name)] = nil
                continue
            }
            let pods = index.podsOnNode[name, default: []]
            let inUse = pods.contains { $0.occupies && $0.requestsGPU } || !claim.nominated.isEmpty
            guard held(.empty(name), (claim.initializedAt != nil || claim.gpuWarned) && !inUse, now: now) else { continue }
            let blockers = pods.filter { $0.occupies && $0.doNotDisrupt }.map(\.key)
            if node.doNotDisrupt || !blockers.isEmpty {
                let who = node.doNotDisrupt ? "the node is" : "pod \(blockers.sorted().joined(separator: ", ")) is"
                report(.node(name), reason: "DisruptionBlocked", message: "no GPU pod left, but \(who) annotated karpenter.sh/do-not-disrupt", actions: &actions)
                continue
            }
            guard budget > 0 else { continue }
            budget -= 1
            let others = pods.filter { $0.occupies && !$0.terminating }.count
            draining[name] = DrainState(startedAt: now)
            since[.empty(name)] = nil
            actions.append(.updateNode(name: name, labels: Self.drainStartLabels(now), addTaints: [Self.disruptedTaint], removeTaints: []))
            actions.append(.event(.init(
                regarding: .node(name), reason: "Disrupting",
                message: "no GPU pod for \(GoDuration.format(config.emptyAfter)); cordoned, draining \(others) pod(s), then terminating \(claim.instanceType) \(claim.providerID ?? "")")))
        }
        if config.windDownSharedNodes {
            windDown(index: index, now: now, actions: &actions)
        }
        if config.consolidation && budget > 0 && batch == nil {
            consolidate(index: index, now: now, actions: &actions)
        }
        for name in draining.keys.sorted() {
            guard var drain = draining[name] else { continue }
            guard let node = index.nodes[name], let key = claims.first(where: { $0.value.nodeName == name })?.key, let claim = claims[key] else {
                if index.nodes[name] == nil { draining[name] = nil }
                continue
            }
            if drain.startedAt < now && !node.taints.contains(where: { $0.key == Self.disruptedTaint.key }) && claim.terminateRequestedAt == nil && !claim.terminated {
                actions.append(.updateNode(name: name, labels: Self.drainStartLabels(drain.startedAt), addTaints: [Self.disruptedTaint], removeTaints: []))
            }
            let remaining = index.podsOnNode[name, default: []].filter(\.occupies)
            if remaining.isEmpty {
                if claim.terminateRequestedAt == nil && !claim.terminated, let providerID = claim.providerID {
                    claims[key]?.terminateRequestedAt = now
                    actions.append(.terminate(providerID: providerID, node: name, reason: "drained"))
                }
                continue
            }
            if now.timeIntervalSince(drain.startedAt) >= config.drainTimeout.seconds {
                // The drain has had its time: what still holds the node is deleted (budgets and
                // do-not-disrupt no longer asked), said on each pod and on the node.
                let deleting = remaining.filter { !$0.terminating && drain.deleted[$0.key].map { now.timeIntervalSince($0) >= Self.retryInterval.seconds } ?? true }
                for pod in deleting {
                    let why = drain.refused[pod.key].map { "its eviction was refused (\($0))" } ?? (pod.doNotDisrupt ? "it is annotated karpenter.sh/do-not-disrupt" : "it was still running")
                    if drain.deleted[pod.key] == nil {
                        actions.append(.event(.init(regarding: .pod(pod.key), type: "Warning", reason: "DrainTimeout",
                                                    message: "deleted: node \(name) has drained for \(GoDuration.format(config.drainTimeout)) (disruption.drainTimeout) and \(why)")))
                    }
                    drain.deleted[pod.key] = now
                    actions.append(.deletePod(pod: pod.key, node: name))
                }
                if !deleting.isEmpty {
                    let names = remaining.filter { !$0.terminating }.map(\.key).sorted().joined(separator: ", ")
                    report(.node(name), type: "Warning", reason: "DrainTimeout",
                           message: "drained for \(GoDuration.format(config.drainTimeout)) (disruption.drainTimeout); deleting the pods still on it: \(names)", actions: &actions)
                }
                draining[name] = drain
                continue
            }
            for pod in remaining where !pod.terminating && !pod.doNotDisrupt {
                if let last = drain.lastEviction[pod.key], now.timeIntervalSince(last) < Self.retryInterval.seconds { continue }
                drain.lastEviction[pod.key] = now
                actions.append(.evict(pod: pod.key, node: name))
            }
            // A blocked drain says so every few minutes, not once.
            let refused = drain.refused.filter { key, _ in remaining.contains { $0.key == key } }
            if !refused.isEmpty, drain.lastBlockedReport.map({ now.timeIntervalSince($0) >= Self.blockedReportInterval.seconds }) ?? true {
                drain.lastBlockedReport = now
                let left = config.drainTimeout.seconds - now.timeIntervalSince(drain.startedAt)
                let pods = refused.keys.sorted().map { "\($0) (\(refused[$0] ?? ""))" }.joined(separator: ", ")
                actions.append(.event(.init(regarding: .node(name), type: "Warning", reason: "DrainBlocked",
                                            message: "eviction refused for \(pods); pods still here are deleted in \(GoDuration.format(.seconds(Int64(left.rounded(.up))))) (disruption.drainTimeout)")))
            }
            draining[name] = drain
        }
    }

    /// Winding down (no eviction): a shared multi-GPU node whose GPU pods use at most half its
    /// GPUs, for `emptyAfter` in a row, is tainted `berth.dev/winding-down:NoSchedule`. New pods go
    /// elsewhere (to nodes sized for them); the node's own pods finish undisturbed, and it is then
    /// removed like any empty node. Without this, kube-scheduler's LeastAllocated keeps sending new
    /// 1-GPU pods to the big node's free GPUs and it never empties (berth simulate measured it).
    private mutating func windDown(index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        for key in claims.keys.sorted() {
            guard let claim = claims[key], claim.isLive, claim.role == .shared, !claim.windingDown, claim.initializedAt != nil,
                claim.nominated.isEmpty, let name = claim.nodeName, draining[name] == nil, let type = catalog[claim.instanceType],
                type.gpuCount >= 2
            else { continue }
            let used = index.podsOnNode[name, default: []].filter { $0.occupies && $0.requestsGPU }.reduce(Int64(0)) { $0 + $1.requests.gpus }
            guard held(.underused(name), used > 0 && used * 2 <= Int64(type.gpuCount), now: now) else { continue }
            since[.underused(name)] = nil
            claims[key]?.windingDown = true
            actions.append(.updateNode(name: name, labels: [:], addTaints: [Self.windingDownTaint], removeTaints: []))
            actions.append(.event(.init(
                regarding: .node(name), reason: "WindingDown",
                message: "its GPU pods use \(used) of \(type.gpuCount) GPUs; no new pods, removed once they finish")))
        }
    }

    /// Consolidation (delete only): a node of non-notebook GPU pods whose pods all fit on other
    /// nodes that exist, continuously for `emptyAfter`, is drained so they move there. Notebook
    /// nodes never are (a notebook's kernel state dies with its pod); nor is a node with a
    /// do-not-disrupt pod. The candidate with the fewest GPUs and pods to move goes first (the
    /// priciest among equals), one per round. Replacing a
    /// node with a cheaper type is not done.
    private mutating func consolidate(index: ClusterIndex, now: Date, actions: inout [ProvisionerAction]) {
        var best: (key: String, name: String, cost: (Int64, Int, Double))?
        // Where pods could go, built once a round; each candidate is taken out of it in turn.
        let nodes = nodeStates(index: index).nodes
        for key in claims.keys.sorted() {
            guard let claim = claims[key], claim.isLive, let name = claim.nodeName else { continue }
            guard held(.consolidatable(name), consolidatable(claim, node: name, index: index, nodes: nodes), now: now) else { continue }
            // Cheapest to disrupt first (fewest GPUs, then fewest pods to move), then the priciest node.
            let pods = index.podsOnNode[name, default: []].filter(\.occupies)
            let cost = (pods.reduce(0) { $0 + $1.requests.gpus }, pods.count, -claim.pricePerHour)
            if best.map({ cost < $0.cost }) ?? true { best = (key, name, cost) }
        }
        guard let best, let claim = claims[best.key] else { return }
        since[.consolidatable(best.name)] = nil
        let moving = index.podsOnNode[best.name, default: []].filter { $0.occupies && !$0.terminating }.count
        draining[best.name] = DrainState(startedAt: now)
        actions.append(.updateNode(name: best.name, labels: Self.drainStartLabels(now), addTaints: [Self.disruptedTaint], removeTaints: []))
        actions.append(.event(.init(
            regarding: .node(best.name), reason: "Consolidating",
            message: "its \(moving) pod(s) fit on other nodes; draining, then terminating \(claim.instanceType) ($\(claim.pricePerHour)/h)")))
    }

    /// Whether the node's pods could all move to other existing nodes (`nodes`, this one left out)
    /// — non-notebook GPU pods, none do-not-disrupt or terminating.
    private func consolidatable(_ claim: NodeClaim, node name: String, index: ClusterIndex, nodes: [NodeState]) -> Bool {
        guard !claim.dedicated, claim.initializedAt != nil, claim.nominated.isEmpty, draining[name] == nil,
            let node = index.nodes[name], !node.doNotDisrupt
        else { return false }
        let pods = index.podsOnNode[name, default: []].filter(\.occupies)
        guard pods.contains(where: \.requestsGPU), !pods.contains(where: { $0.doNotDisrupt || $0.requirements.isNotebook || $0.terminating }) else {
            return false
        }
        let plan = scheduler.solve(pending: pods.map(\.requirements), nodes: nodes.filter { $0.name != name })
        return plan.nodes.isEmpty && plan.unschedulable.isEmpty
    }

    /// Records whether `watch` holds now; true once it has held for `emptyAfter` without a break.
    mutating func held(_ watch: Watch, _ holds: Bool, now: Date) -> Bool {
        guard holds else {
            since[watch] = nil
            return false
        }
        let start = since[watch] ?? now
        since[watch] = start
        return now.timeIntervalSince(start) >= config.emptyAfter.seconds
    }

    // MARK: - Reporting

    /// An event, unless the same message was already reported about this object.
    mutating func report(_ object: ProvisionerEvent.Object, type: String = "Normal", reason: String, message: String, actions: inout [ProvisionerAction]) {
        let key: String
        switch object {
        case let .pod(pod): key = pod
        case let .node(node): key = node
        case .provisioner: key = ""
        }
        let text = reason + ": " + message
        guard reported[key] != text else { return }
        reported[key] = text
        actions.append(.event(.init(regarding: object, type: type, reason: reason, message: message)))
    }
}

/// Lookups built once per round.
struct ClusterIndex {
    let snapshot: ClusterSnapshot
    var pods: [String: PodSnapshot] = [:]
    var nodes: [String: NodeSnapshot] = [:]
    var nodesByProviderID: [String: NodeSnapshot] = [:]
    var podsOnNode: [String: [PodSnapshot]] = [:]

    /// Pods Terminating on a NotReady node past their grace period plus
    /// ``ProvisionerCore/terminatingMargin`` are left out: nothing will ever confirm they stopped,
    /// and they must not hold a node or its drain.
    init(_ snapshot: ClusterSnapshot, now: Date) {
        self.snapshot = snapshot
        pods.reserveCapacity(snapshot.pods.count)
        for node in snapshot.nodes {
            nodes[node.name] = node
            if !node.providerID.isEmpty { nodesByProviderID[node.providerID] = node }
        }
        for pod in snapshot.pods {
            pods[pod.key] = pod
            guard !pod.nodeName.isEmpty else { continue }
            if pod.terminating, let deadline = pod.deletionTimestamp, nodes[pod.nodeName].map({ !$0.ready }) ?? true,
                now.timeIntervalSince(deadline) >= ProvisionerCore.terminatingMargin.seconds
            {
                continue
            }
            podsOnNode[pod.nodeName, default: []].append(pod)
        }
    }
}
