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
    /// The target's path, before '?': for an absolute-form target (`https://host:8443/mutate?x`,
    /// RFC 9112 §3.2.2, which a server must accept) the part after the authority, "/" when empty.
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
        let utf8 = target.utf8
        var start = utf8.startIndex
        if let first = utf8.first, first != UInt8(ascii: "/"), let authority = Self.authorityStart(target) {
            // Absolute form: the path starts at the first '/' after the authority (or is empty).
            start = utf8[authority...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? utf8.endIndex
        }
        let end = utf8[start...].firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
        let path = String(target[start..<end])
        self.path = path.isEmpty && start != utf8.startIndex ? "/" : path
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// Where the authority begins if `target` starts with `http://` or `https://` (any case).
    private static func authorityStart(_ target: String) -> String.Index? {
        for scheme in ["http://", "https://"] where target.utf8.count >= scheme.utf8.count {
            let prefix = target.utf8.prefix(scheme.utf8.count)
            if zip(prefix, scheme.utf8).allSatisfy({ ($0 | 0x20) == $1 }) {
                return target.utf8.index(target.utf8.startIndex, offsetBy: scheme.utf8.count)
            }
        }
        return nil
    }
}
