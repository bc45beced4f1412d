/// Every failure of BerthAWS, with what was asked and where. Messages never carry a secret key or
/// a session token: only access key ids, file paths, URLs, AWS's own codes and messages.
public enum AWSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// AWS answered with an error document.
    case service(AWSServiceError)
    /// No usable credentials from `source` (a variable, a file, a URL): why.
    case credentials(source: String, message: String)
    /// The answer to `action` (or from a credential source) could not be read: what was wrong.
    case malformedResponse(action: String, reason: String)
    /// No answer to `action` from `endpoint`: the network failure.
    case transport(action: String, endpoint: String, reason: String)
    /// A setting that cannot work (an endpoint URL, a region).
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .service(let error): error.description
        case .credentials(let source, let message): "AWS credentials from \(source): \(message)"
        case .malformedResponse(let action, let reason): "\(action): malformed answer: \(reason)"
        case .transport(let action, let endpoint, let reason): "\(action): no answer from \(endpoint): \(reason)"
        case .invalidConfiguration(let message): message
        }
    }

    /// AWS's error code (`AuthFailure`, `RequestLimitExceeded`, ...), when AWS answered with one.
    public var code: String? {
        if case .service(let error) = self { error.code } else { nil }
    }
}

/// An AWS error document: `<Response><Errors><Error><Code>` (EC2) or `<ErrorResponse><Error>` (STS).
public struct AWSServiceError: Sendable, Equatable, CustomStringConvertible {
    public var action: String
    public var code: String
    public var message: String
    public var requestID: String?
    public var status: Int

    public init(action: String, code: String, message: String, requestID: String?, status: Int) {
        self.action = action
        self.code = code
        self.message = message
        self.requestID = requestID
        self.status = status
    }

    /// `DescribeInstances: AuthFailure: AWS was not able to validate the provided access credentials (HTTP 401, request id ...)`
    public var description: String {
        "\(action): \(code): \(message) (HTTP \(status)\(requestID.map { ", request id \($0)" } ?? ""))"
    }

    public static let throttlingCodes: Set<String> = [
        "RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
        "RequestThrottledException", "TooManyRequestsException", "SlowDown", "EC2ThrottledException",
    ]

    public var isThrottling: Bool { Self.throttlingCodes.contains(code) }
}
