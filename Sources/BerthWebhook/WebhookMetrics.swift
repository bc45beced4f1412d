import BerthAdmission
import CoreMetrics
import Prometheus
import Synchronization

/// The webhook's Prometheus metrics. It owns its registry (rendered at `GET /metrics`), so tests
/// and several servers in one process never share global state; metrics are created through the
/// swift-metrics API with a factory on that registry.
public final class WebhookMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    /// One counter per (path, code) seen: a handful, scanned in order. Per request this was two
    /// String hashes (the known-path set and a dictionary) under the lock.
    private struct RequestSeries {
        var path: String
        var code: Int
        var counter: CoreMetrics.Counter
    }

    private let requests = Mutex<[RequestSeries]>([])
    private let inFlight: Meter
    private let latency: CoreMetrics.Timer
    /// One per kind: a scan of enum values, no hashing.
    private let mutations: [(kind: MutationKind, counter: CoreMetrics.Counter)]
    /// What a review came to: the `result` label, and the counter's index in `reviews`.
    private enum ReviewResult: Int, CaseIterable {
        case gpuNotebook, gpu, nonGPU, exempt, notMutated, invalid

        var label: String {
            switch self {
            case .gpuNotebook: "gpu-notebook"
            case .gpu: "gpu"
            case .nonGPU: "non-gpu"
            case .exempt: "exempt"
            case .notMutated: "not-mutated"
            case .invalid: "invalid"
            }
        }
    }
    /// Indexed by `ReviewResult.rawValue`.
    private let reviews: [CoreMetrics.Counter]
    private let reloadSuccess: CoreMetrics.Counter
    private let reloadFailure: CoreMetrics.Counter
    private let handshakeFailures: CoreMetrics.Counter

    /// Paths with their own series; anything else is counted as "other" (bounded cardinality).
    static let knownPaths = ["/mutate", "/healthz", "/readyz", "/metrics"]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // From 50 µs (Berth's own work) to 1 s (far past any apiserver timeout worth having).
        factory.durationHistogramBuckets["berth_webhook_request_duration_seconds"] = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        self.factory = factory
        inFlight = Meter(label: "berth_webhook_requests_in_flight", dimensions: [], factory: factory)
        latency = CoreMetrics.Timer(label: "berth_webhook_request_duration_seconds", dimensions: [], factory: factory)
        mutations = MutationKind.allCases.map {
            ($0, CoreMetrics.Counter(label: "berth_webhook_mutations_total", dimensions: [("mutation", $0.rawValue)], factory: factory))
        }
        reviews = ReviewResult.allCases.map(\.label).map {
            CoreMetrics.Counter(label: "berth_webhook_admission_reviews_total", dimensions: [("result", $0)], factory: factory)
        }
        reloadSuccess = CoreMetrics.Counter(label: "berth_webhook_certificate_reloads_total", dimensions: [("result", "success")], factory: factory)
        reloadFailure = CoreMetrics.Counter(label: "berth_webhook_certificate_reloads_total", dimensions: [("result", "failure")], factory: factory)
        handshakeFailures = CoreMetrics.Counter(label: "berth_webhook_tls_handshake_failures_total", dimensions: [], factory: factory)
    }

    func requestStarted() { inFlight.increment() }

    func requestFinished(path: String, status: Int, duration: Duration) {
        inFlight.decrement()
        latency.recordNanoseconds(duration.nanoseconds)
        let path = Self.knownPaths.contains(path) ? path : "other"
        let counter = requests.withLock { series in
            if let known = series.first(where: { $0.code == status && $0.path == path }) { return known.counter }
            let counter = CoreMetrics.Counter(
                label: "berth_webhook_requests_total", dimensions: [("path", path), ("code", String(status))], factory: factory)
            series.append(RequestSeries(path: path, code: status, counter: counter))
            return counter
        }
        counter.increment()
    }

    /// One review answered: what Berth decided.
    func reviewed(_ outcome: AdmissionOutcome) {
        let result: ReviewResult
        if outcome.status != 200 {
            result = .invalid
        } else if let mutation = outcome.mutation {
            switch mutation.podClass {
            case .gpuNotebook: result = .gpuNotebook
            case .gpu: result = .gpu
            case .other: result = .nonGPU
            case nil: result = .exempt
            }
            for kind in mutation.kinds {
                mutations.first { $0.kind == kind }?.counter.increment()
            }
        } else {
            result = .notMutated  // not a CREATE, or a subresource
        }
        reviews[result.rawValue].increment()
    }

    public func certificateReloaded(_ result: Result<Void, any Error>) {
        switch result {
        case .success: reloadSuccess.increment()
        case .failure: reloadFailure.increment()
        }
    }

    func handshakeFailed() { handshakeFailures.increment() }

    /// The Prometheus text exposition.
    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
