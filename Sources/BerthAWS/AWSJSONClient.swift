import BerthModel
import BerthNet
import Foundation

/// A client of one AWS JSON-protocol API (Price List `AWSPriceListService`, SSM `AmazonSSM`, SQS
/// `AmazonSQS`): `POST /` with `X-Amz-Target: <prefix>.<Operation>` and a JSON body,
/// SigV4-signed, JSON back. Retries, expired-credential renewal and error codes as
/// ``AWSQueryClient``; an error is `{"__type": "...#Code", "message": "..."}`.
public final class AWSJSONClient: Sendable {
    public let endpoint: AWSEndpoint
    public let region: String
    public let service: String
    /// The `X-Amz-Target` prefix, e.g. `AWSPriceListService`.
    public let targetPrefix: String
    /// `1.1` (Price List, SSM) or `1.0` (SQS).
    public let jsonVersion: String
    private let credentials: any AWSCredentialProvider
    private let http: AWSHTTP
    private let retry: AWSRetryPolicy
    private let sleep: @Sendable (Duration) async -> Void
    private let random: @Sendable () -> Double
    private let now: @Sendable () -> Date
    private let recorder: AWSCallRecorder?

    public init(
        endpoint: AWSEndpoint, region: String, service: String, targetPrefix: String, jsonVersion: String = "1.1",
        credentials: any AWSCredentialProvider, retry: AWSRetryPolicy = AWSRetryPolicy(),
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        now: @escaping @Sendable () -> Date = { Date() }, recorder: AWSCallRecorder? = nil
    ) throws(AWSError) {
        self.endpoint = endpoint
        self.region = region
        self.service = service
        self.targetPrefix = targetPrefix
        self.jsonVersion = jsonVersion
        self.credentials = credentials
        self.retry = retry
        self.sleep = sleep
        self.random = random
        self.now = now
        self.recorder = recorder
        http = try AWSHTTP(endpoint: endpoint)
    }

    /// Calls `operation` with `input` and returns the answer's JSON object.
    public func call(_ operation: String, _ input: JSON) async throws(AWSError) -> JSON {
        let body = Array(JSONWriter.string(input).utf8)
        recorder?.record(service: service, action: operation)
        return try await AWSRetries.run(retry: retry, credentials: credentials, sleep: sleep, random: random) { () async throws(AWSError) -> JSON in
            try await once(operation: operation, body: body)
        }
    }

    private func once(operation: String, body: [UInt8]) async throws(AWSError) -> JSON {
        let current = try await credentials.fetch()
        let unsigned = [("Content-Type", "application/x-amz-json-\(jsonVersion)"), ("X-Amz-Target", "\(targetPrefix).\(operation)")]
        let request = SigV4Signer.Request(method: "POST", host: endpoint.hostHeader, path: endpoint.path, headers: unsigned, body: body)
        let signed = SigV4Signer(region: region, service: service)
            .sign(request, credentials: current, timestamp: SigV4Signer.timestamp(epochSeconds: Int64(now().timeIntervalSince1970)))
        let response = try await http.send(action: operation, method: "POST", target: endpoint.path, headers: signed.headers, body: body)
        guard (200..<300).contains(response.status) else {
            throw Self.serviceError(operation: operation, status: response.status, body: response.body, requestID: response.headers["x-amzn-RequestId"],
                                    errorType: response.headers["x-amzn-ErrorType"])
        }
        do {
            return try JSONParser.parse(response.body)
        } catch {
            throw .malformedResponse(action: operation, reason: "not JSON: \(error)")
        }
    }

    /// `{"__type": "com.amazonaws...#ThrottlingException", "message": "..."}` (also `Message`), or
    /// REST-JSON's `x-amzn-ErrorType` header with a `message` body; a body that is not one still
    /// gives a service error (`HTTP <status>`), so proxies' 5xx retry.
    static func serviceError(operation: String, status: Int, body: [UInt8], requestID: String?, errorType: String? = nil) -> AWSError {
        let document: JSON? = (try? JSONParser.parse(body)) ?? (errorType != nil ? .object([:]) : nil)
        guard let document, let type = errorType ?? document["__type"]?.stringValue ?? document["code"]?.stringValue, !type.isEmpty else {
            return .service(AWSServiceError(
                action: operation, code: "HTTP \(status)", message: "answer is not an AWS error document: \(XMLNode.preview(body))",
                requestID: requestID, status: status))
        }
        // `prefix#Code`, sometimes with `:http://...` after the code.
        var code = Substring(type)
        if let hash = code.lastIndex(of: "#") { code = code[code.index(after: hash)...] }
        if let colon = code.firstIndex(of: ":") { code = code[..<colon] }
        let message = document["message"]?.stringValue ?? document["Message"]?.stringValue ?? ""
        return .service(AWSServiceError(action: operation, code: String(code), message: message, requestID: requestID, status: status))
    }
}
