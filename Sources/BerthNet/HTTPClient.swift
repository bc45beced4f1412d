import Synchronization

/// An HTTP proxy reached with `CONNECT host:port` (RFC 9110 §9.3.6): the connection to the server
/// is a tunnel through it, TLS end to end with the server.
public struct HTTPProxy: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The `Proxy-Authorization` header value (e.g. `Basic …`), never logged.
    public var authorization: String?

    public init(host: String, port: Int, authorization: String? = nil) {
        self.host = host
        self.port = port
        self.authorization = authorization
    }
}

/// Where a client connects and how.
public struct HTTPClientConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// nil: plain HTTP (tests, local proxies).
    public var tls: TLSClientConfiguration?
    /// Connect through this proxy (CONNECT tunnel); nil: directly.
    public var proxy: HTTPProxy?
    public var connectTimeout: Duration = .seconds(10)
    /// Default limit for a whole request/response exchange between two received bytes.
    public var readTimeout: Duration = .seconds(30)
    /// Idle keep-alive connections kept for reuse.
    public var maxIdleConnections = 4
    /// Largest response body `execute` buffers.
    public var maxBodyBytes = 64 * 1024 * 1024
    public var maxHeaderBytes = 64 * 1024

    public init(host: String, port: Int, tls: TLSClientConfiguration?) {
        self.host = host
        self.port = port
        self.tls = tls
    }
}

public struct HTTPClientRequest: Sendable {
    public var method: String
    /// The request target: path and query, already percent-encoded.
    public var target: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: String, target: String, headers: HTTPHeaders = .init(), body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }
}

public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
}

/// A blocking HTTP/1.1 client (over TLS when configured) with a small keep-alive pool.
/// Each call runs on the calling thread; watches run on their own thread (see `HTTPClientStream`).
public final class HTTPClient: Sendable {
    public let configuration: HTTPClientConfiguration
    private let tls: SSLClientContext?
    private let idle = Mutex<[HTTPClientConnection]>([])
    private let opened = Atomic<Int>(0)

    public init(_ configuration: HTTPClientConfiguration) throws(NetError) {
        self.configuration = configuration
        tls = try configuration.tls.map { config throws(NetError) in try SSLClientContext(config) }
    }

    /// Connections opened so far (tests check reuse with this).
    public var connectionsOpened: Int { opened.load(ordering: .relaxed) }

    /// Sends the request and reads the whole answer.
    public func execute(_ request: HTTPClientRequest, timeout: Duration? = nil) throws(NetError) -> HTTPClientResponse {
        let stream = try self.stream(request, timeout: timeout)
        var body: [UInt8] = []
        while let piece = try stream.read() {
            body.append(contentsOf: piece)
            if body.count > configuration.maxBodyBytes {
                stream.cancel()
                throw .malformedResponse("body larger than \(configuration.maxBodyBytes) bytes")
            }
        }
        return HTTPClientResponse(status: stream.status, headers: stream.headers, body: body)
    }

    /// Sends the request and returns once the response head arrived; the body is read from the
    /// stream as it comes. `timeout` bounds every wait for bytes (a watch passes a long one).
    public func stream(_ request: HTTPClientRequest, timeout: Duration? = nil) throws(NetError) -> HTTPClientStream {
        let timeout = timeout ?? configuration.readTimeout
        let bytes = serialize(request)
        // A pooled connection the server closed meanwhile fails on first use: retry once on a new one.
        // Only when nothing of the answer arrived, so the server cannot have acted twice on
        // a request it answered.
        for attempt in 0..<2 {
            let (connection, reused) = try checkout()
            do throws(NetError) {
                try connection.setTimeout(timeout)
                try connection.write(bytes)
                connection.requestCount += 1
                return try HTTPClientStream(connection: connection, method: request.method, client: self,
                                            maxHeaderBytes: configuration.maxHeaderBytes)
            } catch {
                if reused && attempt == 0, case .connectionClosed = error { continue }
                throw error
            }
        }
        throw .connectionClosed("before answering")
    }

    private func checkout() throws(NetError) -> (HTTPClientConnection, Bool) {
        while let connection = idle.withLock({ $0.popLast() }) {
            if connection.isReusable { return (connection, true) }
        }
        let connection = try HTTPClientConnection(host: configuration.host, port: configuration.port, tls: tls,
                                                  proxy: configuration.proxy, connectTimeout: configuration.connectTimeout)
        opened.wrappingAdd(1, ordering: .relaxed)
        return (connection, false)
    }

    func checkin(_ connection: HTTPClientConnection) {
        idle.withLock { idle in
            if idle.count < configuration.maxIdleConnections { idle.append(connection) }
        }
    }

    /// Drops idle connections (e.g. after the credentials changed).
    public func closeIdleConnections() {
        idle.withLock { $0.removeAll() }
    }

    private func serialize(_ request: HTTPClientRequest) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + request.body.count)
        out.append(contentsOf: "\(request.method) \(request.target) HTTP/1.1\r\n".utf8)
        if !request.headers.contains(name: "Host") {
            let host = configuration.host.contains(":") && !configuration.host.hasPrefix("[") ? "[\(configuration.host)]" : configuration.host
            let defaultPort = configuration.tls == nil ? 80 : 443
            out.append(contentsOf: "Host: \(host)\(configuration.port == defaultPort ? "" : ":\(configuration.port)")\r\n".utf8)
        }
        for field in request.headers {
            let name = field.name.utf8
            if name.asciiCaseInsensitiveEquals("content-length".utf8) || name.asciiCaseInsensitiveEquals("transfer-encoding".utf8) { continue }
            out.append(contentsOf: field.name.utf8.filter { $0 != 13 && $0 != 10 })
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: field.value.utf8.filter { $0 != 13 && $0 != 10 })
            out.append(contentsOf: "\r\n".utf8)
        }
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            out.append(contentsOf: "Content-Length: \(request.body.count)\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: request.body)
        return out
    }
}
