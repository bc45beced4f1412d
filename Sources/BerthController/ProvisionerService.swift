import BerthAdmission
import BerthKube
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Logging
import CoreMetrics
import Synchronization

/// The provisioning loop as `berth serve` runs it: the cluster port (informers), leader election
/// (optional) and the ``Provisioner`` on the continuous clock. One place wires it all, like
/// Karpenter's controllers.go.
public final class ProvisionerService: Sendable {
    public struct Options: Sendable {
        public var identity: String
        /// nil: no leader election (a single replica, or the embedded simulation).
        public var leaderElection: LeaderElectionConfiguration?
        public var provisioner = Provisioner<ContinuousClock>.Options()
        public init(identity: String, leaderElection: LeaderElectionConfiguration? = nil) {
            self.identity = identity
            self.leaderElection = leaderElection
        }
    }

    public let cluster: KubeCluster
    public let provisioner: Provisioner<ContinuousClock>
    private let elector: LeaderElector?
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let logger: Logger

    public init(
        config: ProvisionerConfig, webhook: WebhookConfig, client: KubeClient, cloud: any CloudProvider, catalog: InstanceCatalog = .builtIn(),
        options: Options, metricsFactory: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "berth.provisioner")
    ) {
        self.logger = logger
        cluster = KubeCluster(client: client, webhook: webhook, identity: options.identity, metricsFactory: metricsFactory, logger: logger)
        let elector = options.leaderElection.map { LeaderElector(client: client, configuration: $0, logger: logger) }
        self.elector = elector
        // The elector's own answer: false as soon as the renew deadline passes, even while its
        // loop is still blocked renewing (a flag set by its callbacks stayed true until then).
        provisioner = Provisioner(
            config: config, catalog: catalog, cluster: cluster, cloud: cloud,
            wallTime: WallTime(clock: ContinuousClock(), epoch: Date()), options: options.provisioner,
            isLeader: { elector?.isLeader(at: .now) ?? true }, metricsFactory: metricsFactory, logger: logger)
    }

    public var isLeading: Bool { elector?.isLeader(at: .now) ?? true }

    public func start() {
        cluster.start()
        if let elector {
            let logger = self.logger
            elector.start(
                onStartedLeading: { logger.info("became the leader") },
                onStoppedLeading: { logger.warning("lost the leadership") })
        }
        let provisioner = self.provisioner
        task.withLock { $0 = Task.detached { await provisioner.run() } }
    }

    /// Stops the loop (waiting for the round in progress), releases the lease, stops the informers.
    public func stop() async {
        let running = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        running?.cancel()
        await running?.value
        elector?.stop()
        cluster.stop()
    }
}
