import ArgumentParser
import BerthAWS
import BerthAdmission
import BerthController
import BerthKube
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import BerthWebhook
import Foundation
import Synchronization
import Logging
import Prometheus

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the admission webhook (TLS) and the provisioning loop.",
        discussion: """
            Webhook: POST /mutate answers AdmissionReviews (admission.k8s.io/v1 and v1beta1) on the TLS
            port; GET /healthz and /readyz answer on both ports; GET /metrics (Prometheus: webhook and
            provisioner series) on the metrics port. The certificate files are re-read every few
            seconds: a rotated certificate is served without a restart.

            Provisioner: watches pods that cannot be scheduled and ask for a GPU, launches the cheapest
            instance that fits, and removes GPU nodes that no GPU pod has used for emptyAfter. It reads
            the cluster from --kubeconfig/--context, else in-cluster service-account credentials, else
            $KUBECONFIG or ~/.kube/config. With leader election (the default) only the replica holding
            the Lease acts.

            --simulated runs everything on this machine: an embedded API server, the simulated cloud,
            simulated kubelets with the NVIDIA device plugin, and kube-scheduler; --demo then plays a
            notebook's life through it (make run).

            SIGTERM or SIGINT: stop accepting, finish in-flight requests and the provisioning round,
            release the Lease, exit 0. Logs are JSON lines on stdout.
            """
    )

    enum Cloud: String, ExpressibleByArgument, CaseIterable {
        case simulated, aws
    }

    @Option(help: "PEM certificate chain served on the TLS port (required with the webhook).")
    var tlsCertFile: String?

    @Option(help: "PEM private key of that certificate (required with the webhook).")
    var tlsPrivateKeyFile: String?

    @Option(help: "PEM CA bundle: when set, clients (the apiserver) must present a certificate it signed.")
    var clientCaFile: String?

    @Option(help: "TLS key-exchange groups, in preference order (OpenSSL names). Finite-field groups (ffdhe*) cost the server ~100 ms of CPU per handshake and are off by default.")
    var tlsGroups: String = TLSServerConfiguration.defaultGroups

    @Option(help: "TLS port for /mutate, /healthz, /readyz.")
    var port: Int = 8443

    @Option(help: "Plain-HTTP port for /metrics, /healthz, /readyz.")
    var metricsPort: Int = 8080

    @Option(help: "Address to listen on.")
    var bindAddress: String = "0.0.0.0"

    @Option(help: "A BerthConfig file (defaults apply without one).")
    var config: String?

    @Option(help: "Largest request body accepted, in bytes (at most 7 MiB); larger gets 413.")
    var maxBodyBytes: Int = 3 * 1024 * 1024

    @Option(help: "Memory for request bodies and unsent answers, all connections together, in bytes; past it new bodies get 503 with Retry-After: 1.")
    var maxBufferedBytes: Int = 64 * 1024 * 1024

    @Option(help: "Largest JSON Patch answered, in bytes; a pod that would need more gets a 400 saying so.")
    var maxPatchBytes: Int = MutationPolicy.defaultMaxPatchBytes

    @Option(help: "Connections the TLS port holds; when full, a new connection replaces the one idle longest.")
    var maxConnections: Int = 4096

    @Option(help: "Connections one client address may keep idle (or in the TLS handshake) on the TLS port; more are closed at once.")
    var maxIdleConnectionsPerClient: Int = 256

    @Option(help: "Connections the metrics port holds (its own table, same rules).")
    var metricsMaxConnections: Int = 128

    @Option(help: "Connections one client address may keep idle on the metrics port.")
    var metricsMaxIdleConnectionsPerClient: Int = 16

    @Option(help: "Seconds to keep serving after SIGTERM with /readyz failing (so the endpoints drop this replica first), before no longer accepting connections.")
    var shutdownDelay: Double = 5

    @Option(help: "Seconds to finish in-flight requests after the shutdown delay.")
    var shutdownTimeout: Int = 25

    @Option(help: "Log level: trace (also every connection), debug (one line per review), info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: json (one object per line) or text (for people).")
    var logFormat: JSONLogHandler.Format = .json

    @Option(help: "Run the admission webhook.")
    var webhook: Bool = true

    @Option(help: "Run the provisioning loop.")
    var provisioner: Bool = true

    @Option(help: "The cloud the provisioner launches instances in: aws (EC2; settings in the config's provisioner.aws) or simulated (with --simulated).")
    var cloud: Cloud = .aws

    @Option(name: .customLong("catalog"), help: ArgumentHelp("Instance types laid over the built-in catalog (simulated cloud): a file in `berth catalog -o json`'s shape.", valueName: "file"))
    var catalogFile: String?

    @Option(help: "Kubeconfig file for the provisioner (default: in-cluster, else $KUBECONFIG or ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "Kubeconfig context to use.")
    var context: String?

    @Option(help: "Elect a leader among replicas through a coordination.k8s.io Lease: only the leader provisions.")
    var leaderElect: Bool = true

    @Option(help: "Namespace of the leader-election Lease (default: $POD_NAMESPACE, else berth-system).")
    var leaderElectionNamespace: String?

    @Option(help: "Name of the leader-election Lease.")
    var leaderElectionId: String = "berth-provisioner"

    @Flag(help: "Run against an embedded simulated cluster and cloud (no Kubernetes or AWS needed).")
    var simulated = false

    @Option(help: "With --simulated: the embedded API server's port.")
    var simulatedApiserverPort: Int = 6443

    @Option(help: "With --simulated: seconds from launch to the Node being Ready (±25%).")
    var simulatedBootSeconds: Double = 60

    @Option(help: "With --simulated: seconds from Ready to the GPUs being allocatable (±25%); negative: never (no device plugin).")
    var simulatedGpuSeconds: Double = 20

    @Option(help: "With --simulated: write a kubeconfig for the embedded API server here (for kubectl).")
    var simulatedKubeconfig: String?

    @Option(help: "With --simulated: CA certificate that signed --tls-cert-file (for the kubeconfig written; default: the certificate itself).")
    var simulatedCaFile: String?

    @Flag(help: "With --simulated: create a GPU notebook, let it run for --demo-notebook-seconds, delete it.")
    var demo = false

    @Option(help: "With --demo: how long the notebook runs.")
    var demoNotebookSeconds: Int = 30

    func validate() throws {
        guard (1...WebhookServer.Configuration.maximumBodyBytes).contains(maxBodyBytes) else {
            throw ValidationError("--max-body-bytes must be between 1 and \(WebhookServer.Configuration.maximumBodyBytes) (7 MiB)")
        }
        guard (0...65535).contains(port), (0...65535).contains(metricsPort), (0...65535).contains(simulatedApiserverPort) else {
            throw ValidationError("--port, --metrics-port and --simulated-apiserver-port must be between 0 and 65535")
        }
        guard maxBufferedBytes >= maxBodyBytes else { throw ValidationError("--max-buffered-bytes must be at least --max-body-bytes") }
        guard maxConnections > 0, maxPatchBytes > 0, maxIdleConnectionsPerClient > 0, metricsMaxConnections > 0, metricsMaxIdleConnectionsPerClient > 0 else {
            throw ValidationError("--max-connections, --max-idle-connections-per-client and their --metrics-* twins must be positive")
        }
        guard shutdownTimeout >= 0, shutdownDelay >= 0 else { throw ValidationError("--shutdown-timeout and --shutdown-delay must not be negative") }
        if demo && !simulated { throw ValidationError("--demo needs --simulated") }
        if simulated && (kubeconfig != nil || context != nil) { throw ValidationError("--simulated runs its own cluster: drop --kubeconfig/--context") }
        if simulated && !provisioner && demo { throw ValidationError("--demo needs the provisioner") }
        if catalogFile != nil && !simulated { throw ValidationError("--catalog is for the simulated cloud (--simulated); on AWS the catalog comes from EC2") }
        guard simulatedBootSeconds >= 0, demoNotebookSeconds >= 0 else { throw ValidationError("--simulated-boot-seconds and --demo-notebook-seconds must not be negative") }
    }

    func run() throws {
        // Before any thread starts, so SIGTERM stays pending for the waiter below.
        blockTerminationSignals()
        LoggingSystem.bootstrap { [logFormat] label in JSONLogHandler(label: label, level: logLevel, format: logFormat) }
        let logger = Logger(label: "berth")
        try failing {
            guard webhook || provisioner else { throw CLIError(message: "nothing to run: --webhook=false and --provisioner=false") }
            let (settings, provisionerConfig) = try ConfigFile.load(config)
            let metrics = WebhookMetrics()

            // The webhook, or the metrics port alone.
            var webhookServer: WebhookServer?
            var metricsServer: HTTPServer?
            if webhook {
                guard let tlsCertFile, let tlsPrivateKeyFile else {
                    throw CLIError(message: "serve: the webhook needs --tls-cert-file and --tls-private-key-file (or run with --webhook=false)")
                }
                var tls = TLSServerConfiguration(certificateFile: tlsCertFile, privateKeyFile: tlsPrivateKeyFile)
                tls.clientCAFile = clientCaFile
                tls.groups = tlsGroups
                var configuration = WebhookServer.Configuration(tls: tls)
                configuration.host = bindAddress
                configuration.port = port
                configuration.metricsPort = metricsPort
                configuration.maxBodyBytes = maxBodyBytes
                configuration.maxConnections = maxConnections
                configuration.maxPatchBytes = maxPatchBytes
                configuration.maxBufferedBytes = maxBufferedBytes
                configuration.maxIdleConnectionsPerClient = maxIdleConnectionsPerClient
                configuration.metricsMaxConnections = metricsMaxConnections
                configuration.metricsMaxIdleConnectionsPerClient = metricsMaxIdleConnectionsPerClient
                do {
                    let server = try WebhookServer(configuration: configuration, config: settings, logger: logger, metrics: metrics)
                    let ports = try server.start()
                    webhookServer = server
                    logger.info("berth webhook serving", metadata: [
                        "port": "\(ports.port)", "metricsPort": "\(ports.metricsPort)", "version": "\(BerthVersion.current)",
                        "config": "\(config ?? "defaults")",
                    ])
                } catch {
                    throw CLIError(message: "serve: \(error)")
                }
            } else {
                let plain = WebhookServer.metricsPortConfiguration(
                    host: bindAddress, port: metricsPort, maxConnections: metricsMaxConnections, maxIdlePerClient: metricsMaxIdleConnectionsPerClient)
                let server = HTTPServer(
                    configuration: plain, tls: nil,
                    responder: MetricsResponder(metrics: metrics, health: HealthState()), logger: logger)
                do { _ = try server.start() } catch { throw CLIError(message: "serve: metrics port \(metricsPort): \(error)") }
                metricsServer = server
            }

            // The provisioning loop, against the embedded cluster or a real one.
            var service: ProvisionerService?
            var embedded: EmbeddedCluster?
            var demoTask: Task<Void, Never>?
            if provisioner {
                let client: KubeClient
                let cloudProvider: any CloudProvider
                let catalog: InstanceCatalog
                var catalogSource: (@Sendable () async -> InstanceCatalog?)?
                var interruptionSource: (any InterruptionSource)?
                var cloudWarnings: (@Sendable () async -> [CloudWarning])?
                var leaderElection: LeaderElectionConfiguration?
                let identity = ProcessInfo.processInfo.environment["POD_NAME"] ?? ProcessInfo.processInfo.hostName
                if simulated {
                    guard let tlsCertFile, let tlsPrivateKeyFile else {
                        throw CLIError(message: "serve: --simulated serves its API server with --tls-cert-file and --tls-private-key-file")
                    }
                    var options = EmbeddedCluster.Options(certificateFile: tlsCertFile, privateKeyFile: tlsPrivateKeyFile)
                    options.caFile = simulatedCaFile
                    options.port = simulatedApiserverPort
                    catalog = try CatalogFile.load(catalogFile)
                    options.catalog = catalog
                    options.bootDelay = Self.jittered(simulatedBootSeconds)
                    options.gpuDelay = simulatedGpuSeconds < 0 ? nil : Self.jittered(simulatedGpuSeconds)
                    options.kubeconfigPath = simulatedKubeconfig
                    let cluster: EmbeddedCluster
                    do {
                        cluster = try EmbeddedCluster(options: options, webhook: settings.webhook, logger: logger)
                        client = try KubeClient(try cluster.clientConfiguration())
                    } catch {
                        throw CLIError(message: "serve: the embedded cluster: \(error)")
                    }
                    cluster.start()
                    embedded = cluster
                    cloudProvider = cluster.cloud
                    logger.info("embedded simulated cluster serving", metadata: [
                        "apiserver": "\(cluster.server.serverURL)", "kubeconfig": "\(simulatedKubeconfig ?? "-")",
                    ])
                } else {
                    guard cloud == .aws else {
                        throw CLIError(message: "serve: --cloud simulated needs --simulated (a real cluster has no kubelets for simulated instances)")
                    }
                    do {
                        client = try KubeClient(try Self.clusterConfiguration(kubeconfig: kubeconfig, context: context))
                    } catch {
                        throw CLIError(message: "serve: cluster access: \(error)")
                    }
                    let (ec2, read) = try Self.ec2Cloud(provisionerConfig)
                    let types = read.schedulable
                    cloudProvider = ec2
                    catalog = types
                    interruptionSource = ec2.interruptions
                    // Prices that are not the region's own: said once per catalog read (the runtime logs
                    // it and posts a Warning Event on Berth's pod), the start-up read included.
                    let warned = Atomic<Int>(-1)
                    cloudWarnings = {
                        guard let current = try? await ec2.catalog(), let warning = current.priceWarning else { return [] }
                        let fetches = ec2.catalogFetchCount
                        guard warned.exchange(fetches, ordering: .relaxed) != fetches else { return [] }
                        return [CloudWarning(reason: "BuiltInPrices", message: "region \(ec2.configuration.region): \(warning)")]
                    }
                    // EC2Cloud caches its catalog for an hour; the provisioner re-reads it as often.
                    catalogSource = { try? await ec2.catalog().schedulable }
                    logger.info("EC2 catalog read", metadata: [
                        "types": "\(types.types.count)", "region": "\(ec2.configuration.region)", "prices": "\(read.pricesFrom)",
                    ])
                }
                if leaderElect && !simulated {
                    let namespace = leaderElectionNamespace ?? ProcessInfo.processInfo.environment["POD_NAMESPACE"] ?? "berth-system"
                    leaderElection = LeaderElectionConfiguration(namespace: namespace, name: leaderElectionId, identity: identity)
                }
                var options = ProvisionerService.Options(identity: identity, leaderElection: leaderElection)
                options.provisioner.resyncInterval = .milliseconds(500)
                options.provisioner.catalogSource = catalogSource
                options.provisioner.interruptionSource = interruptionSource
                options.provisioner.cloudWarnings = cloudWarnings
                let environment = ProcessInfo.processInfo.environment
                if let namespace = environment["POD_NAMESPACE"], let name = environment["POD_NAME"], !namespace.isEmpty, !name.isEmpty {
                    options.provisioner.selfPod = "\(namespace)/\(name)"
                }
                try ConfigFile.checkWarm(provisionerConfig, catalog: catalog, source: config)
                let started = ProvisionerService(
                    config: provisionerConfig, webhook: settings.webhook, client: client, cloud: cloudProvider, catalog: catalog,
                    options: options, metricsFactory: Self.provisionerMetricsFactory(metrics.registry), logger: logger)
                started.start()
                service = started
                if demo {
                    let notebook = NotebookDemo(client: client, runFor: .seconds(demoNotebookSeconds), logger: logger)
                    demoTask = Task.detached { await notebook.run() }
                }
            }

            let signal = waitForTerminationSignal()
            let signalled = ContinuousClock.now
            // Readiness fails at once, on both ports: the endpoints controller takes this replica
            // out while it still answers everything that comes (--shutdown-delay).
            webhookServer?.health.beginShutdown()
            logger.info("shutting down", metadata: [
                "signal": "\(signal == 15 ? "SIGTERM" : "SIGINT")", "delay": "\(shutdownDelay)s", "timeout": "\(shutdownTimeout)s",
            ])
            demoTask?.cancel()
            blocking { [service, embedded] in
                await service?.stop()
                await embedded?.stop()
            }
            if let webhookServer {
                let delayEnd = signalled + .milliseconds(Int64(shutdownDelay * 1000))
                if ContinuousClock.now < delayEnd { Thread.sleep(forTimeInterval: (delayEnd - ContinuousClock.now).seconds) }
                logger.info("no longer accepting connections; answering what is under way")
                let finished = webhookServer.shutdown(timeout: .seconds(shutdownTimeout))
                logger.info(finished ? "stopped: every request answered" : "stopped: shutdown timeout reached with requests in flight")
            } else {
                _ = metricsServer?.shutdown(timeout: .seconds(1))
                logger.info("stopped")
            }
        }
    }

    /// --kubeconfig/--context, else in-cluster credentials, else $KUBECONFIG or ~/.kube/config.
    static func clusterConfiguration(kubeconfig: String?, context: String?) throws -> KubeClientConfiguration {
        if kubeconfig == nil && context == nil, let inCluster = try? KubeConfigLoader.inCluster() { return inCluster }
        return try KubeConfigLoader.kubeconfig(explicitPath: kubeconfig, context: context)
    }

    /// The EC2 cloud from `provisioner.aws` and the AWS credential chain, and its catalog (read now:
    /// a wrong region or credentials stop Berth at start, with AWS's code and message).
    static func ec2Cloud(_ config: ProvisionerConfig) throws -> (EC2Cloud, EC2Catalog) {
        guard config.clusterNameIsExplicit else {
            throw CLIError(message: "serve: --cloud aws needs provisioner.clusterName in the config: tagged berth.dev/cluster on every instance, it is this cluster's identity in the account (use the EKS cluster's name; the chart sets the release name)")
        }
        let (configuration, chain) = try EC2Setup.configuration(config, command: "serve: --cloud aws")
        if configuration.launchTemplate == nil, let pool = config.pools.first(where: { $0.nodeClass == nil }) {
            throw CLIError(message: "serve: pool \(pool.name) has no nodeClass, so config provisioner.aws.launchTemplate is required to launch its instances (name, id or managed)")
        }
        return try EC2Setup.start(configuration, chain: chain, command: "serve: --cloud aws")
    }

    /// The provisioner's metrics, on the webhook's registry; the notebooks' time to running gets
    /// buckets in seconds to minutes.
    static func provisionerMetricsFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["berth_notebook_time_to_running_seconds"] = ProvisionerMetrics.timeToRunningBuckets
        return factory
    }

    /// `seconds` ± 25 %.
    static func jittered(_ seconds: Double) -> ClosedRange<Duration> {
        .milliseconds(Int64(seconds * 750)) ... .milliseconds(Int64(seconds * 1250))
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {
}
