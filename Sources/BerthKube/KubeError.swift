import BerthModel
import BerthNet

/// Every failure BerthKube reports, with the context needed to act on it.
public enum KubeError: Error, CustomStringConvertible, Sendable {
    /// The apiserver answered with an error `Status` (kept whole: code, reason, message, details).
    case status(APIStatus, method: String, path: String)
    /// Eviction refused because a PodDisruptionBudget would be violated (HTTP 429 from
    /// `pods/eviction`); retry later.
    case evictionBlocked(APIStatus, namespace: String, name: String)
    /// The request never got an answer (connection, TLS, timeout).
    case transport(NetError, method: String, path: String)
    /// The apiserver's answer could not be read as what was asked for.
    case decoding(what: String, detail: String)
    /// A kubeconfig or in-cluster configuration problem: the file (or source) and what is wrong.
    case configuration(source: String, message: String)
    /// An exec credential plugin failed: the command and why.
    case credentialPlugin(command: String, message: String)
    /// A watch could not continue (the reason); the informer relists.
    case watch(String)

    public var description: String {
        switch self {
        case .status(let status, let method, let path):
            return "\(method) \(path): \(status.code) \(status.reason.isEmpty ? "" : status.reason + ": ")\(status.message)"
        case .evictionBlocked(let status, let namespace, let name):
            return "eviction of pod \(namespace)/\(name) blocked: \(status.message)"
        case .transport(let error, let method, let path):
            return "\(method) \(path): \(error)"
        case .decoding(let what, let detail):
            return "cannot decode \(what): \(detail)"
        case .configuration(let source, let message):
            return "\(source): \(message)"
        case .credentialPlugin(let command, let message):
            return "credential plugin \(command): \(message)"
        case .watch(let reason):
            return "watch: \(reason)"
        }
    }

    /// The HTTP status code of an apiserver answer, if this is one.
    public var statusCode: Int? {
        switch self {
        case .status(let status, _, _), .evictionBlocked(let status, _, _): status.code
        default: nil
        }
    }

    /// `reason` of the apiserver's Status (`NotFound`, `Conflict`, `AlreadyExists`, ...).
    public var reason: String? {
        switch self {
        case .status(let status, _, _), .evictionBlocked(let status, _, _): status.reason
        default: nil
        }
    }

    public var isNotFound: Bool { statusCode == 404 }
    public var isConflict: Bool { statusCode == 409 && reason == "Conflict" }
    public var isAlreadyExists: Bool { statusCode == 409 && reason == "AlreadyExists" }
    public var isGone: Bool { statusCode == 410 }
}

/// A `meta/v1 Status` as the apiserver sends it with every error.
public struct APIStatus: Sendable, Equatable {
    public var code: Int
    /// `Failure` or `Success`.
    public var status: String
    public var reason: String
    public var message: String
    /// `details.retryAfterSeconds`, when the server asks the client to wait.
    public var retryAfterSeconds: Int?
    /// `details.causes[].message`.
    public var causes: [String]

    public init(code: Int, status: String = "Failure", reason: String, message: String, retryAfterSeconds: Int? = nil, causes: [String] = []) {
        self.code = code
        self.status = status
        self.reason = reason
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.causes = causes
    }

    /// Reads a Status object; nil when `json` is not one (kind must be Status).
    public init?(json: JSON) {
        guard json["kind"]?.stringValue == "Status" else { return nil }
        code = json["code"].flatMap(\.intValue) ?? 0
        status = json["status"]?.stringValue ?? ""
        reason = json["reason"]?.stringValue ?? ""
        message = json["message"]?.stringValue ?? ""
        retryAfterSeconds = json["details"]?["retryAfterSeconds"].flatMap(\.intValue)
        causes = json["details"]?["causes"]?.arrayValue?.compactMap { $0["message"]?.stringValue } ?? []
    }

    /// The Status for an error answer: the body's Status when it is one, otherwise one made from
    /// the HTTP code and an excerpt of the body (a proxy's HTML page, a truncated answer).
    public static func from(httpStatus: Int, body: [UInt8]) -> APIStatus {
        if let json = try? JSONParser.parse(body), var status = APIStatus(json: json) {
            if status.code == 0 { status.code = httpStatus }
            return status
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return APIStatus(code: httpStatus, reason: Self.reason(for: httpStatus),
                         message: text.isEmpty ? "HTTP \(httpStatus) without a body" : "HTTP \(httpStatus): \(text)")
    }

    /// The reason the apiserver uses for a code (k8s.io/apimachinery/pkg/api/errors).
    public static func reason(for code: Int) -> String {
        switch code {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 405: "MethodNotAllowed"
        case 409: "Conflict"
        case 410: "Expired"
        case 415: "UnsupportedMediaType"
        case 422: "Invalid"
        case 429: "TooManyRequests"
        case 500: "InternalError"
        case 503: "ServiceUnavailable"
        case 504: "Timeout"
        default: ""
        }
    }

    public var json: JSON {
        var details = JSONObject()
        if let retryAfterSeconds { details["retryAfterSeconds"] = .number(retryAfterSeconds) }
        if !causes.isEmpty { details["causes"] = .array(causes.map { ["message": .string($0)] }) }
        var object: JSONObject = ["kind": "Status", "apiVersion": "v1", "metadata": [:],
                                  "status": .string(status), "message": .string(message), "reason": .string(reason)]
        if !details.isEmpty { object["details"] = .object(details) }
        object["code"] = .number(code)
        return .object(object)
    }
}

extension JSON {
    /// An integer number (no fraction or exponent), if this is one.
    public var intValue: Int? {
        if case let .number(text) = self { return Int(text) }
        return nil
    }
}
