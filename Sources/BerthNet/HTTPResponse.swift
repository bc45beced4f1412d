public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = .init(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A short text/plain answer, as the server sends for protocol errors.
    public static func text(status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(
            status: status,
            headers: ["Content-Type": "text/plain; charset=utf-8"],
            body: Array(text.utf8)
        )
    }
}

/// The server's side of an HTTP/1.1 exchange.
public protocol HTTPResponder: Sendable {
    /// Called on an event-loop thread; must not block (the admission handler takes microseconds).
    func respond(to request: HTTPRequest) -> HTTPResponse
}

/// A responder from a closure.
public struct HTTPResponderFunction: HTTPResponder {
    let body: @Sendable (HTTPRequest) -> HTTPResponse
    public init(_ body: @escaping @Sendable (HTTPRequest) -> HTTPResponse) { self.body = body }
    public func respond(to request: HTTPRequest) -> HTTPResponse { body(request) }
}
