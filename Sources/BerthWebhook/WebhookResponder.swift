import BerthAdmission
import BerthNet
import Logging
import Synchronization

/// Routes the webhook's HTTPS port: `POST /mutate` (AdmissionReview), `GET /healthz`,
/// `GET /readyz`. It is the only place where HTTP meets admission: the review handler sees bytes,
/// the server sees requests and responses.
public final class WebhookResponder: HTTPResponder {
    let handler: AdmissionReviewHandler
    let metrics: WebhookMetrics
    let logger: Logger
    let health: HealthState

    public init(handler: AdmissionReviewHandler, metrics: WebhookMetrics, health: HealthState, logger: Logger) {
        self.handler = handler
        self.metrics = metrics
        self.health = health
        self.logger = logger
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case "/mutate":
            guard request.method == "POST" else { return .methodNotAllowed(allow: "POST") }
            return mutate(request)
        case "/healthz", "/readyz":
            return health.respond(to: request)
        default:
            return .text(status: 404, "not found: Berth serves POST /mutate, GET /healthz and GET /readyz here\n")
        }
    }

    func mutate(_ request: HTTPRequest) -> HTTPResponse {
        if let contentType = request.headers["Content-Type"], !Self.isJSON(contentType) {
            return .text(status: 415, "Content-Type must be application/json, found \(contentType)\n")
        }
        let outcome = handler.handle(body: request.body)
        metrics.reviewed(outcome)
        if logger.logLevel <= .debug {
            // Never the pod itself: env values, tokens and keys stay out of logs.
            var metadata: Logger.Metadata = ["uid": "\(outcome.uid ?? "-")", "status": "\(outcome.status)"]
            if let operation = outcome.operation { metadata["operation"] = "\(operation)" }
            if let mutation = outcome.mutation {
                metadata["class"] = "\(mutation.podClass?.rawValue ?? "exempt")"
                if let reason = mutation.exemptReason { metadata["exempt"] = "\(reason)" }
                metadata["mutations"] = "\(mutation.kinds.map(\.rawValue).joined(separator: ","))"
            }
            if let error = outcome.error { metadata["error"] = "\(error)" }
            logger.debug("admission review", metadata: metadata)
        } else if let error = outcome.error {
            logger.warning("admission review rejected", metadata: ["uid": "\(outcome.uid ?? "-")", "error": "\(error)"])
        }
        return HTTPResponse(status: outcome.status, headers: Self.jsonHeaders, body: outcome.body)
    }

    /// Built once: a header literal per answer was two allocations.
    static let jsonHeaders: HTTPHeaders = ["Content-Type": "application/json"]

    /// `application/json`, any case, parameters (`; charset=utf-8`) and spaces allowed.
    static func isJSON(_ contentType: String) -> Bool {
        // A StaticString's bytes: an array here was an allocation per request.
        let literal: StaticString = "application/json"
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        var matched = 0
        for byte in contentType.utf8 {
            if byte == UInt8(ascii: ";") { break }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                if matched == 0 || matched == expected.count { continue }
                return false
            }
            let lower = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
            guard matched < expected.count, lower == expected[matched] else { return false }
            matched += 1
        }
        return matched == expected.count
    }
}

/// `/healthz` (the process answers) and `/readyz` (the TLS port serves a certificate that has not
/// expired, and Berth is not shutting down), shared by the TLS port and the plain metrics port.
/// The metrics port's `/readyz` is the one probes use: with `--client-ca-file` the TLS port
/// requires a client certificate the kubelet does not have.
public final class HealthState: Sendable {
    private let shuttingDown = Atomic<Bool>(false)
    /// Why the TLS side cannot serve (nil: it can).
    private let tlsProblem: @Sendable () -> String?

    public init(tlsProblem: @escaping @Sendable () -> String? = { nil }) {
        self.tlsProblem = tlsProblem
    }

    public func beginShutdown() { shuttingDown.store(true, ordering: .relaxed) }
    public var isReady: Bool { !shuttingDown.load(ordering: .relaxed) && tlsProblem() == nil }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else { return .methodNotAllowed(allow: "GET, HEAD") }
        if request.path == "/readyz" {
            if shuttingDown.load(ordering: .relaxed) { return .text(status: 503, "shutting down\n") }
            if let problem = tlsProblem() { return .text(status: 503, "TLS not ready: \(problem)\n") }
        }
        return .text(status: 200, "ok\n")
    }
}

/// The plain-HTTP port: `/metrics` (Prometheus text), `/healthz`, `/readyz`.
public struct MetricsResponder: HTTPResponder {
    let metrics: WebhookMetrics
    let health: HealthState

    public init(metrics: WebhookMetrics, health: HealthState) {
        self.metrics = metrics
        self.health = health
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case "/metrics":
            guard request.method == "GET" else { return .methodNotAllowed(allow: "GET") }
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: metrics.render())
        case "/healthz", "/readyz":
            return health.respond(to: request)
        default:
            return .text(status: 404, "not found: this port serves /metrics, /healthz and /readyz\n")
        }
    }
}

/// Feeds the server's per-request events into the metrics.
struct MetricsObserver: HTTPServerObserver {
    let metrics: WebhookMetrics
    func requestStarted() { metrics.requestStarted() }
    func requestFinished(method: String, path: String, status: Int, duration: Duration) {
        metrics.requestFinished(path: path, status: status, duration: duration)
    }
    func tlsHandshakeFailed() { metrics.handshakeFailed() }
}

extension HTTPResponse {
    static func methodNotAllowed(allow: String) -> HTTPResponse {
        var response = HTTPResponse.text(status: 405, "method not allowed; use \(allow)\n")
        response.headers.add(name: "Allow", value: allow)
        return response
    }
}
