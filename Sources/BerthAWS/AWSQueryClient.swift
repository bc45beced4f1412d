import BerthNet
import Foundation

/// How failed calls are retried: throttling (`RequestLimitExceeded`, `Throttling`, ...), 5xx and
/// lost connections, with exponential backoff and full jitter (the AWS SDKs' "standard" mode).
public struct AWSRetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(20)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The wait before retry number `retry` (0 for the first retry): `random` (in [0, 1)) times
    /// min(maxDelay, baseDelay × 2^retry).
    public func delay(retry: Int, random: Double) -> Duration {
        let ceiling = min(maxDelay, baseDelay * (1 << min(retry, 30)))
        return ceiling * min(max(random, 0), 1)
    }
}

/// A client of one AWS Query API (EC2, STS): `POST` of `Action=...&Version=...` form-encoded,
/// SigV4-signed (unsigned when there are no credentials: STS AssumeRoleWithWebIdentity), XML back.
public final class AWSQueryClient: Sendable {
    public let endpoint: AWSEndpoint
    public let region: String
    public let service: String
    public let version: String
    private let credentials: (any AWSCredentialProvider)?
    private let http: AWSHTTP
    private let retry: AWSRetryPolicy
    private let sleep: @Sendable (Duration) async -> Void
    private let random: @Sendable () -> Double
    private let now: @Sendable () -> Date
    private let recorder: AWSCallRecorder?

    /// `sleep` waits between retries (tests record the delays instead of waiting); `random` gives
    /// the jitter in [0, 1); `now` the signing time; `recorder` notes every action sent.
    public init(
        endpoint: AWSEndpoint, region: String, service: String, version: String, credentials: (any AWSCredentialProvider)?,
        retry: AWSRetryPolicy = AWSRetryPolicy(),
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        now: @escaping @Sendable () -> Date = { Date() }, recorder: AWSCallRecorder? = nil
    ) throws(AWSError) {
        self.recorder = recorder
        self.endpoint = endpoint
        self.region = region
        self.service = service
        self.version = version
        self.credentials = credentials
        self.retry = retry
        self.sleep = sleep
        self.random = random
        self.now = now
        http = try AWSHTTP(endpoint: endpoint)
    }

    /// Calls `action` with `parameters` (decoded names and values; `Action` and `Version` added)
    /// and returns the answer's root element. Retries as `AWSRetryPolicy` says; every other AWS
    /// error is thrown at once as `AWSError.service` with its code, message and request id.
    public func call(_ action: String, _ parameters: [(String, String)] = []) async throws(AWSError) -> XMLNode {
        let body = Array(FormEncoding.encode([("Action", action), ("Version", version)] + parameters).utf8)
        recorder?.record(service: service, action: action)
        return try await AWSRetries.run(retry: retry, credentials: credentials, sleep: sleep, random: random) { () async throws(AWSError) -> XMLNode in
            try await once(action: action, body: body)
        }
    }

    private func once(action: String, body: [UInt8]) async throws(AWSError) -> XMLNode {
        var headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        if let credentials {
            let current = try await credentials.fetch()
            let signer = SigV4Signer(region: region, service: service)
            let request = SigV4Signer.Request(method: "POST", host: endpoint.hostHeader, path: endpoint.path, headers: headers, body: body)
            headers = signer.sign(request, credentials: current, timestamp: SigV4Signer.timestamp(epochSeconds: Int64(now().timeIntervalSince1970))).headers
        } else {
            headers.append(("Host", endpoint.hostHeader))
        }
        let response = try await http.send(action: action, method: "POST", target: endpoint.path, headers: headers, body: body)
        if (200..<300).contains(response.status) {
            return try XMLNode.parse(response.body, what: action)
        }
        throw Self.serviceError(action: action, status: response.status, body: response.body)
    }

    /// The error document's code, message and request id; a body that is not one still gives a
    /// service error (code `HTTP <status>`), so 5xx pages from a proxy are retried like AWS's own.
    static func serviceError(action: String, status: Int, body: [UInt8]) -> AWSError {
        guard let root = try? XMLNode.parse(body, what: action), let error = root.first("Error"), let code = error.string("Code"), !code.isEmpty else {
            return .service(AWSServiceError(
                action: action, code: "HTTP \(status)", message: "answer is not an AWS error document: \(XMLNode.preview(body))",
                requestID: nil, status: status))
        }
        let requestID = root.first("RequestID")?.text ?? root.first("RequestId")?.text
        return .service(AWSServiceError(
            action: action, code: code, message: error.string("Message") ?? "", requestID: requestID?.trimmingCharacters(in: .whitespacesAndNewlines),
            status: status))
    }
}

/// The AWS SDKs' "standard" retry rules, for every protocol: throttling, 5xx and lost connections
/// retried with backoff and jitter; temporary credentials AWS calls expired renewed once, at once;
/// every other error thrown at once.
enum AWSRetries {
    static let expiredCodes: Set<String> = ["ExpiredToken", "ExpiredTokenException", "RequestExpired"]

    static func run<T: Sendable>(
        retry: AWSRetryPolicy, credentials: (any AWSCredentialProvider)?, sleep: @Sendable (Duration) async -> Void,
        random: @Sendable () -> Double, _ attemptOnce: () async throws(AWSError) -> T
    ) async throws(AWSError) -> T {
        var attempt = 0
        var renewed = false
        while true {
            let outcome: Result<T, AWSError>
            var retryable = false
            do throws(AWSError) {
                outcome = .success(try await attemptOnce())
            } catch {
                outcome = .failure(error)
                switch error {
                case .service(let failure): retryable = failure.isThrottling || failure.status >= 500
                case .transport: retryable = true
                default: retryable = false
                }
            }
            switch outcome {
            case .success(let value): return value
            case .failure(.service(let failure)) where expiredCodes.contains(failure.code) && !renewed:
                // Temporary credentials AWS says are expired (a clock skew, a revoked session):
                // fetch new ones once, at once.
                guard credentials?.invalidate() == true else { throw .service(failure) }
                renewed = true
            case .failure(let error):
                attempt += 1
                guard retryable, attempt < retry.maxAttempts else { throw error }
                await sleep(retry.delay(retry: attempt - 1, random: random()))
            }
        }
    }
}
