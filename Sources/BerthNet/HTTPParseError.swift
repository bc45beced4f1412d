// Pure value type: no imports, so the parser files compile standalone for fuzzing.

/// A request the parser refuses, with the status code to answer before closing the connection.
public struct HTTPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    /// Seconds the client should wait before trying again (`Retry-After`), when it may.
    public var retryAfterSeconds: Int?

    public init(status: Int, reason: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.reason = reason
        self.retryAfterSeconds = retryAfterSeconds
    }

    static func badRequest(_ reason: String) -> HTTPParseError { .init(status: 400, reason: reason) }
    static func headersTooLarge(_ reason: String) -> HTTPParseError { .init(status: 431, reason: reason) }
    static func bodyTooLarge(_ reason: String) -> HTTPParseError { .init(status: 413, reason: reason) }
    /// The server's memory for request bodies is spoken for: try again in a second (503, Retry-After: 1).
    static let overBudget = HTTPParseError(
        status: 503, reason: "the server is holding as many request bodies as it has memory for; retry", retryAfterSeconds: 1)

    public var description: String { "\(status): \(reason)" }
}
