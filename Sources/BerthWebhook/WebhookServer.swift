import BerthAdmission
import BerthNet
import Logging

/// `berth serve`'s webhook half: the HTTPS port with `/mutate`, the plain metrics port, the
/// certificate store that reloads rotated files, and a graceful shutdown.
public final class WebhookServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "0.0.0.0"
        public var port = 8443
        public var metricsPort = 8080
        public var tls: TLSServerConfiguration
        public var maxBodyBytes = 3 * 1024 * 1024
        /// The TLS port's connection table, and how many of them one client address may keep idle
        /// (or in the handshake): see `HTTPServerConfiguration`. A full table closes the longest
        /// idle connection to let a new one in.
        public var maxConnections = 4096
        public var maxIdleConnectionsPerClient = 256
        /// The metrics port's own, smaller table with the same rules: a flood there cannot starve
        /// the kubelet's probes, and a flood on the TLS port cannot touch it.
        public var metricsMaxConnections = 128
        public var metricsMaxIdleConnectionsPerClient = 16
        /// Memory for request bodies and unsent answers, all connections together: past it, new
        /// bodies get 503 with Retry-After: 1 (the apiserver retries; nothing grows).
        public var maxBufferedBytes = 64 * 1024 * 1024
        /// The largest JSON Patch answered; a pod needing more gets a 400 saying so.
        public var maxPatchBytes = MutationPolicy.defaultMaxPatchBytes
        /// The apiserver allows 3 MiB; controller-runtime reads up to 7 MiB. More is refused.
        public static let maximumBodyBytes = 7 * 1024 * 1024

        public init(tls: TLSServerConfiguration) {
            self.tls = tls
        }
    }

    public let metrics: WebhookMetrics
    public let health: HealthState
    let tlsStore: TLSContextStore
    let server: HTTPServer
    let metricsServer: HTTPServer
    let logger: Logger

    /// Loads the certificate (a missing or mismatched file throws an error naming it).
    public init(configuration: Configuration, config: BerthConfig, logger: Logger, metrics: WebhookMetrics = WebhookMetrics()) throws {
        self.metrics = metrics
        self.logger = logger
        tlsStore = try TLSContextStore(configuration: configuration.tls, logger: logger) { [metrics, logger] result in
            metrics.certificateReloaded(result)
            if case .success = result { logger.info("TLS certificate reloaded") }
        }
        health = HealthState { [tlsStore] in tlsStore.readinessProblem() }
        var http = HTTPServerConfiguration(host: configuration.host, port: configuration.port)
        http.maxBodyBytes = min(configuration.maxBodyBytes, Configuration.maximumBodyBytes)
        http.maxConnections = configuration.maxConnections
        http.maxBufferedBytes = configuration.maxBufferedBytes
        http.maxWaitingConnectionsPerClient = configuration.maxIdleConnectionsPerClient
        let responder = WebhookResponder(
            handler: AdmissionReviewHandler(policy: MutationPolicy(config: config.webhook, maxPatchBytes: configuration.maxPatchBytes)), metrics: metrics, health: health, logger: logger)
        server = HTTPServer(configuration: http, tls: tlsStore, responder: responder, observer: MetricsObserver(metrics: metrics), logger: logger)

        let plain = Self.metricsPortConfiguration(
            host: configuration.host, port: configuration.metricsPort, maxConnections: configuration.metricsMaxConnections,
            maxIdlePerClient: configuration.metricsMaxIdleConnectionsPerClient)
        metricsServer = HTTPServer(configuration: plain, tls: nil, responder: MetricsResponder(metrics: metrics, health: health), logger: logger)
    }

    /// The plain metrics port: one loop, small bodies and buffers, its own connection table (so a
    /// flood on the TLS port cannot starve the kubelet's probes). Also what `serve --webhook=false` serves.
    public static func metricsPortConfiguration(host: String, port: Int, maxConnections: Int, maxIdlePerClient: Int) -> HTTPServerConfiguration {
        var plain = HTTPServerConfiguration(host: host, port: port)
        plain.eventLoopCount = 1
        plain.maxBodyBytes = 64 * 1024
        plain.maxBufferedBytes = 4 * 1024 * 1024
        plain.maxConnections = maxConnections
        plain.maxWaitingConnectionsPerClient = maxIdlePerClient
        return plain
    }

    /// Binds both ports; returns them (useful with port 0).
    public func start() throws -> (port: Int, metricsPort: Int) {
        let port = try server.start()
        let metricsPort: Int
        do {
            metricsPort = try metricsServer.start()
        } catch {
            _ = server.shutdown(timeout: .zero)
            throw error
        }
        return (port, metricsPort)
    }

    /// Readiness goes to 503, no new connections are accepted, in-flight requests are answered.
    /// Returns whether everything finished within `timeout`.
    public func shutdown(timeout: Duration) -> Bool {
        health.beginShutdown()
        let finished = server.shutdown(timeout: timeout)
        _ = metricsServer.shutdown(timeout: .seconds(1))
        return finished
    }

    /// For tests and the reload loop: re-read the certificate files now.
    @discardableResult
    public func reloadCertificateIfChanged() -> Bool { tlsStore.reloadIfChanged() }
}
