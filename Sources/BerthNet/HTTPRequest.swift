// Pure value type: no imports, so the parser files compile standalone for fuzzing.

public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public init(major: Int, minor: Int) { self.major = major; self.minor = minor }
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// One complete request: head plus the whole (de-chunked) body.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target as sent, e.g. "/mutate?timeout=10s".
    public var target: String
    /// The target before '?'.
    public var path: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Whether the client wants the connection kept open after the answer
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool

    public init(
        method: String, target: String, version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = .init(), body: [UInt8] = [], keepAlive: Bool = true
    ) {
        self.method = method
        self.target = target
        if let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            self.path = String(target[..<question])
        } else {
            self.path = target
        }
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }
}
