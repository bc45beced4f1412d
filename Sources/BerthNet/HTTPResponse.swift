public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// When set, `body` is ignored and the body is sent chunked as the stream produces it.
    public var bodyStream: HTTPBodyStream?

    public init(status: Int, headers: HTTPHeaders = .init(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose body another thread writes over time (see `HTTPBodyStream`).
    public static func streaming(status: Int, headers: HTTPHeaders = .init(), stream: HTTPBodyStream) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers)
        response.bodyStream = stream
        return response
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
