import BerthModel
import BerthScheduling
import CoreMetrics
import Foundation
import Logging

/// The provisioning loop at run time: reads the cluster and the cloud, asks ``ProvisionerCore``
/// what to do, does it, and tells the core how it went. Only the leader acts: a replica that is
/// not (or stops being) the leader drops its state, and the next leader rebuilds it from the
/// cloud's tags and the cluster.
///
/// Time comes from the injected clock (a `ManualClock` in tests): ``step()`` runs one round at
/// the clock's `now`; ``run()`` repeats it, sleeping on the clock until the core's next deadline
/// or the resync interval.
public actor Provisioner<C: Clock<Duration>> {
    public struct Options: Sendable {
        /// Longest sleep between rounds (pods arriving are noticed within it).
        public var resyncInterval: Duration = .seconds(1)
        /// How often the cloud is listed for garbage collection (and right after gaining leadership).
        public var listInterval: Duration = .seconds(60)
        /// Seeds launch ids; nil: random.
        public var seed: UInt64?
        /// Where a fresh catalog comes from (the cloud's; nil: the catalog given at init, forever),
        /// and how often it is read. A failed read keeps the current catalog.
        public var catalogSource: (@Sendable () async -> InstanceCatalog?)?
        public var catalogRefreshInterval: Duration = .seconds(3600)
        /// Where the cloud's interruption notices come from (EC2: the SQS queue EventBridge feeds),
        /// read every `interruptionInterval`; each batch is acknowledged (deleted) once the core
        /// has taken it. nil: none.
        public var interruptionSource: (any InterruptionSource)?
        public var interruptionInterval: Duration = .seconds(2)
        /// Berth's own pod (`namespace/name`, from the downward API): where warnings about the
        /// cloud as a whole go as Events.
        public var selfPod: String?
        /// Warnings about the cloud as a whole (EC2: on-demand prices that are not the region's
        /// own), asked after each catalog read; each becomes a Warning Event on `selfPod`.
        public var cloudWarnings: (@Sendable () async -> [CloudWarning])?
        public init() {}
    }

    public nonisolated let cluster: any ClusterPort
    public nonisolated let cloud: any CloudProvider
    public nonisolated let wallTime: WallTime<C>
    private let config: ProvisionerConfig
    private let options: Options
    private let logger: Logger
    private let isLeader: @Sendable () -> Bool
    private let metrics: ProvisionerMetrics
    private var core: ProvisionerCore?
    private var lastListing: Date?
    private var lastCatalogRead: Date?
    private var lastInterruptionRead: Date?
    private var currentCatalog: InstanceCatalog
    public private(set) var rounds = 0
    public private(set) var lastError: String?

    public init(
        config: ProvisionerConfig, catalog: InstanceCatalog = .builtIn(), cluster: any ClusterPort, cloud: any CloudProvider,
        wallTime: WallTime<C>, options: Options = Options(), isLeader: @escaping @Sendable () -> Bool = { true },
        metricsFactory: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "berth.provisioner")
    ) {
        self.config = config
        self.currentCatalog = catalog
        self.cluster = cluster
        self.cloud = cloud
        self.wallTime = wallTime
        self.options = options
        self.isLeader = isLeader
        self.metrics = ProvisionerMetrics(factory: metricsFactory)
        self.logger = logger
    }

    /// The decision state (nil while not leading).
    public var state: ProvisionerCore? { core }

    /// Rounds until the task is cancelled.
    public func run() async {
        logger.info("provisioner started", metadata: ["cluster": "\(config.clusterName)", "pools": "\(config.pools.map(\.name).joined(separator: ","))"])
        while !Task.isCancelled {
            let next = await step()
            let clock = wallTime.clock
            let limit = clock.now.advanced(by: options.resyncInterval)
            let deadline = next.map { min(wallTime.instant(of: $0), limit) } ?? limit
            do { try await clock.sleep(until: max(deadline, clock.now.advanced(by: .milliseconds(10))), tolerance: nil) } catch { break }
        }
        logger.info("provisioner stopped")
    }

    /// One round. Returns when the core wants the next one at the latest.
    @discardableResult
    public func step() async -> Date? {
        rounds += 1
        guard isLeader() else {
            if core != nil { logger.info("not the leader any more: dropping provisioning state") }
            core = nil
            lastListing = nil
            return nil
        }
        if core == nil {
            var seed = options.seed ?? UInt64.random(in: .min ... .max)
            seed &+= UInt64(rounds)
            core = ProvisionerCore(config: config, catalog: currentCatalog, seed: seed)
            logger.info("leading: rebuilding state from the cloud and the cluster")
        }
        let now = wallTime.now
        if let source = options.catalogSource {
            if let last = lastCatalogRead, now.timeIntervalSince(last) < options.catalogRefreshInterval.seconds {
                // fresh enough
            } else {
                lastCatalogRead = now
                if let fresh = await source() {
                    if fresh != currentCatalog { logger.info("instance catalog refreshed", metadata: ["types": "\(fresh.types.count)"]) }
                    currentCatalog = fresh
                    core?.replaceCatalog(fresh)
                } else {
                    note("reading the instance catalog failed; keeping the current one")
                }
                // The cloud's own news about this read (prices not the region's, say): logged, and a
                // Warning Event on Berth's pod when it knows its pod.
                for warning in await options.cloudWarnings?() ?? [] {
                    logger.warning("\(warning.message)", metadata: ["reason": "\(warning.reason)"])
                    metrics.event(warning.reason)
                    if let own = options.selfPod {
                        await cluster.record(ProvisionerEvent(regarding: .pod(own), type: "Warning", reason: warning.reason, message: warning.message))
                    }
                }
            }
        }
        var listing: [CloudInstance]?
        if lastListing.map({ now.timeIntervalSince($0) >= options.listInterval.seconds }) ?? true {
            do {
                listing = try await cloud.list(clusterTag: config.clusterName)
            } catch {
                note("listing the cloud's instances failed: \(error)")
            }
        }
        var snapshot: ClusterSnapshot
        do {
            snapshot = try await cluster.snapshot()
        } catch {
            note("reading the cluster failed: \(error)")
            return now.addingTimeInterval(options.resyncInterval.seconds)
        }
        snapshot.cloudInstances = listing
        if listing != nil { lastListing = now }  // only a listing the core has seen counts
        // Interruption notices, once the cloud has been listed (so the claims they name are known);
        // read before the core is taken, so no other round runs between reading and deciding.
        var notices: [InterruptionNotice] = []
        var receipts: [String] = []
        if let source = options.interruptionSource, core?.recovered == true,
           lastInterruptionRead.map({ now.timeIntervalSince($0) >= options.interruptionInterval.seconds }) ?? true {
            lastInterruptionRead = now
            do {
                (notices, receipts) = try await source.receive()
            } catch {
                note("reading interruption notices failed: \(error)")
            }
        }
        guard var decided = core else { return nil }
        for notice in notices {
            logger.warning("\(notice.text)", metadata: ["instance": "\(notice.instanceID)"])
            decided.interrupted(notice, now: now)
        }
        let actions = decided.reconcile(snapshot, now: now)
        let waits = decided.takeTimeToRunning()
        core = decided
        metrics.timeToRunning(waits)
        if let source = options.interruptionSource, !receipts.isEmpty {
            do { try await source.acknowledge(receipts) } catch { note("deleting interruption notices failed: \(error)") }
        }
        metrics.observe(snapshot: snapshot, core: decided)
        await perform(actions, now: now)
        return core?.nextWakeup(after: wallTime.now)
    }

    private func note(_ message: String) {
        lastError = message
        logger.warning("\(message)")
    }

    private func perform(_ actions: [ProvisionerAction], now: Date) async {
        // Launch intents are written on the pods first: a restart between the launch and the
        // cloud's listing showing it finds them and reuses the launch id.
        let intents = actions.compactMap { action -> (String, [String: String])? in
            if case let .annotatePod(pod, annotations) = action { (pod, annotations) } else { nil }
        }
        if !intents.isEmpty {
            let cluster = self.cluster
            let failures = await withTaskGroup(of: String?.self) { group in
                for (pod, annotations) in intents {
                    group.addTask {
                        do {
                            try await cluster.annotatePod(pod: pod, annotations: annotations)
                            return nil
                        } catch {
                            return "\(pod): \(error)"
                        }
                    }
                }
                var failures: [String] = []
                for await failure in group { if let failure { failures.append(failure) } }
                return failures
            }
            for failure in failures.sorted() { logger.warning("writing the launch intent failed (the launch goes ahead): \(failure)") }
        }
        // Launches go out together (each is one cloud call that may take seconds); the rest in order.
        let launches = actions.compactMap { action -> LaunchRequest? in if case let .launch(request) = action { request } else { nil } }
        for request in launches {
            logger.info("launching \(request.candidates.first?.name ?? "?")", metadata: [
                "launchID": "\(request.launchID)", "pool": "\(request.pool)",
                "zone": "\(request.candidates.first?.offerings.first?.zone ?? "?")",
            ])
        }
        if !launches.isEmpty {
            let cloud = self.cloud
            let results = await withTaskGroup(of: ActionResult.self) { group in
                for request in launches {
                    group.addTask {
                        do throws(CloudError) {
                            return .launched(launchID: request.launchID, try await cloud.create(request))
                        } catch {
                            return .launchFailed(launchID: request.launchID, error)
                        }
                    }
                }
                var results: [ActionResult] = []
                for await result in group { results.append(result) }
                return results
            }
            for result in results.sorted(by: { Self.launchID(of: $0) < Self.launchID(of: $1) }) {
                log(result)
                core?.record(result, now: wallTime.now)
            }
        }
        for action in actions {
            switch action {
            case .launch, .annotatePod:
                break  // done above
            case let .terminate(providerID, node, reason):
                logger.info("terminating \(providerID)", metadata: ["node": "\(node ?? "-")", "reason": "\(reason)"])
                let result: ActionResult
                do throws(CloudError) {
                    try await cloud.delete(providerID: providerID)
                    result = .terminated(providerID: providerID)
                } catch {
                    result = .terminateFailed(providerID: providerID, error)
                    if !error.isNotFound { logger.warning("terminating \(providerID) failed: \(error)") }
                }
                metrics.terminations.increment()
                core?.record(result, now: wallTime.now)
            case let .stop(providerID, node):
                await power(providerID, node: node, on: false)
            case let .start(providerID, node):
                await power(providerID, node: node, on: true)
            case let .updateNode(name, labels, removeLabels, addTaints, removeTaints):
                do {
                    try await cluster.updateNode(name: name, labels: labels, removeLabels: removeLabels, addTaints: addTaints, removeTaints: removeTaints)
                    logger.info("updated node \(name)", metadata: [
                        "labels": "\(labels.keys.sorted().joined(separator: ","))", "taints": "\(addTaints.map(\.description).joined(separator: ","))",
                        "removedLabels": "\(removeLabels.sorted().joined(separator: ","))", "removedTaints": "\(removeTaints.map(\.description).joined(separator: ","))",
                    ])
                } catch {
                    logger.warning("updating node \(name) failed: \(error)")
                    core?.record(.nodeUpdateFailed(name: name, message: "\(error)"), now: wallTime.now)
                }
            case let .evict(pod, node):
                let result = await cluster.evict(pod: pod)
                switch result {
                case .evicted: logger.info("evicted \(pod)", metadata: ["node": "\(node)"])
                case let .evictionFailed(_, message): logger.info("eviction of \(pod) refused; retrying later", metadata: ["node": "\(node)", "reason": "\(message)"])
                default: break
                }
                metrics.evictions.increment()
                core?.record(result, now: wallTime.now)
            case let .deletePod(pod, node):
                do {
                    try await cluster.deletePod(pod: pod)
                    logger.warning("deleted \(pod): the drain timed out", metadata: ["node": "\(node)"])
                    core?.record(.podDeleted(pod: pod), now: wallTime.now)
                } catch {
                    logger.warning("deleting \(pod) failed: \(error)", metadata: ["node": "\(node)"])
                    core?.record(.podDeleteFailed(pod: pod, message: "\(error)"), now: wallTime.now)
                }
            case let .deleteNode(name):
                do {
                    try await cluster.deleteNode(name: name)
                    logger.info("deleted node \(name)")
                    core?.record(.nodeDeleted(name: name), now: wallTime.now)
                } catch {
                    logger.warning("deleting node \(name) failed: \(error)")
                }
            case var .event(event):
                // About Berth itself: on its own pod, when it knows it.
                if event.regarding == .provisioner, let own = options.selfPod { event.regarding = .pod(own) }
                let object: String
                switch event.regarding {
                case let .pod(key): object = "pod/\(key)"
                case let .node(name): object = "node/\(name)"
                case .provisioner: object = "berth"
                }
                let metadata: Logger.Metadata = ["object": "\(object)", "reason": "\(event.reason)"]
                if event.type == "Warning" { logger.warning("\(event.message)", metadata: metadata) } else { logger.info("\(event.message)", metadata: metadata) }
                metrics.event(event.reason)
                await cluster.record(event)
            }
        }
    }

    /// Starts (`on`) or stops a warm node's instance and records the outcome.
    private func power(_ providerID: String, node: String?, on: Bool) async {
        let verb = on ? "starting" : "stopping"
        let result: ActionResult
        do throws(CloudError) {
            if on { try await cloud.start(providerID: providerID) } else { try await cloud.stop(providerID: providerID) }
            logger.info("\(verb) \(providerID) (warm capacity)", metadata: ["node": "\(node ?? "-")"])
            result = on ? .started(providerID: providerID) : .stopped(providerID: providerID)
        } catch {
            logger.warning("\(verb) \(providerID) failed: \(error)", metadata: ["node": "\(node ?? "-")"])
            result = on ? .startFailed(providerID: providerID, error) : .stopFailed(providerID: providerID, error)
        }
        core?.record(result, now: wallTime.now)
    }

    private func log(_ result: ActionResult) {
        switch result {
        case let .launched(launchID, instance):
            metrics.launches(success: true)
            logger.info("launched \(instance.instanceType) \(instance.providerID)", metadata: ["launchID": "\(launchID)", "zone": "\(instance.zone)"])
        case let .launchFailed(launchID, error):
            metrics.launches(success: false)
            logger.warning("launch failed: \(error)", metadata: ["launchID": "\(launchID)"])
        default: break
        }
    }

    private static func launchID(of result: ActionResult) -> String {
        switch result {
        case let .launched(id, _), let .launchFailed(id, _): id
        default: ""
        }
    }
}

/// The provisioner's Prometheus series (through swift-metrics; nothing recorded without a factory).
public struct ProvisionerMetrics: Sendable {
    let factory: (any MetricsFactory)?
    let terminations: CoreMetrics.Counter
    let evictions: CoreMetrics.Counter
    private let launchSuccess: CoreMetrics.Counter
    private let launchFailure: CoreMetrics.Counter
    private let pending: Gauge
    private let nodes: Gauge
    private let claims: Gauge
    private let hourlyCost: Gauge
    private let drifted: Gauge
    private let toRunning: [StartKind: CoreMetrics.Timer]
    private let warmNodes: [(state: String, gauge: Gauge)]
    private let warmPrice: Gauge
    /// The histogram's buckets (seconds): from a warm node's hand-over to a cold launch's image pull.
    public static let timeToRunningBuckets: [Duration] = [1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 600, 1200].map { .seconds($0) }

    init(factory: (any MetricsFactory)?) {
        self.factory = factory
        let f: any MetricsFactory = factory ?? NOOPMetricsHandler.instance
        terminations = CoreMetrics.Counter(label: "berth_provisioner_terminations_total", dimensions: [], factory: f)
        evictions = CoreMetrics.Counter(label: "berth_provisioner_evictions_total", dimensions: [], factory: f)
        launchSuccess = CoreMetrics.Counter(label: "berth_provisioner_launches_total", dimensions: [("result", "success")], factory: f)
        launchFailure = CoreMetrics.Counter(label: "berth_provisioner_launches_total", dimensions: [("result", "failure")], factory: f)
        pending = Gauge(label: "berth_provisioner_pending_gpu_pods", dimensions: [], factory: f)
        nodes = Gauge(label: "berth_provisioner_nodes", dimensions: [], factory: f)
        claims = Gauge(label: "berth_provisioner_launched_instances", dimensions: [], factory: f)
        hourlyCost = Gauge(label: "berth_provisioner_price_per_hour_dollars", dimensions: [], factory: f)
        drifted = Gauge(label: "berth_provisioner_drifted_nodes", dimensions: [], factory: f)
        toRunning = Dictionary(uniqueKeysWithValues: StartKind.allCases.map {
            ($0, CoreMetrics.Timer(label: "berth_notebook_time_to_running_seconds", dimensions: [("start", $0.rawValue)], factory: f))
        })
        warmNodes = ["running", "preparing", "stopped", "starting"].map {
            ($0, Gauge(label: "berth_warm_nodes", dimensions: [("state", $0)], factory: f))
        }
        warmPrice = Gauge(label: "berth_warm_price_per_hour_dollars", dimensions: [], factory: f)
    }

    /// GPU notebooks' waits, from creation to Running, by how they started.
    func timeToRunning(_ waits: [TimeToRunning]) {
        guard factory != nil else { return }
        for wait in waits { toRunning[wait.start]?.recordSeconds(wait.seconds) }
    }

    func launches(success: Bool) { (success ? launchSuccess : launchFailure).increment() }

    /// Events by reason (a fixed set: Nominated, FailedProvisioning, GPUsNotRegistered, ...).
    func event(_ reason: String) {
        guard let factory else { return }
        CoreMetrics.Counter(label: "berth_provisioner_events_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    func observe(snapshot: ClusterSnapshot, core: ProvisionerCore) {
        guard factory != nil else { return }
        pending.record(snapshot.pods.filter(\.isPendingGPU).count)
        let live = core.claims.values.filter(\.isLive)
        claims.record(live.count)
        nodes.record(live.filter { $0.nodeName != nil }.count)
        hourlyCost.record(live.reduce(0) { $0 + $1.pricePerHour })
        drifted.record(live.filter { $0.drift != nil }.count)
        let warm = core.warmSummary
        for (state, gauge) in warmNodes { gauge.record(warm.nodes[state] ?? 0) }
        warmPrice.record(warm.pricePerHour)
    }
}
