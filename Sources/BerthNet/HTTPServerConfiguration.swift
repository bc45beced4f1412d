import CBerthLinux
import Glibc

public struct HTTPServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    /// 0 = ephemeral; `HTTPServer.start()` returns the bound port.
    public var port = 8443
    /// Request line + headers (and the chunked trailer section) → 431.
    public var maxHeaderBytes = 32 * 1024
    public var maxHeaderCount = 100
    /// Body → 413, answered as soon as the declared length (or the chunks so far) exceed it, then close.
    public var maxBodyBytes = 3 * 1024 * 1024
    /// A started request must be complete within this time → 408 and close.
    public var requestReadTimeout: Duration = .seconds(10)
    /// Keep-alive connections without a request in progress are closed after this.
    public var idleTimeout: Duration = .seconds(90)
    public var handshakeTimeout: Duration = .seconds(10)
    /// Shutting down: how long a keep-alive connection must have been quiet to be closed between
    /// requests; a busier one is closed after its next answer (`Connection: close`).
    public var drainIdleGrace: Duration = .seconds(1)
    /// CPU one event loop spends on TLS handshakes between two rounds of answers on established
    /// connections (at least one handshake step runs each round).
    public var handshakeBudgetPerTurn: Duration = .milliseconds(2)
    /// The connection table (all loops together). When it is full, a new connection takes the place
    /// of the one that has waited longest on its client (idle between requests, or in the TLS
    /// handshake); only when every connection is busy mid-request is the new one closed at once.
    public var maxConnections = 4096
    /// Connections one client address may keep waiting (idle or handshaking) at once; a new
    /// connection from a client already at this count is closed at once. Split evenly over the
    /// event loops (the kernel spreads a client's connections over them).
    public var maxWaitingConnectionsPerClient = 256
    /// Bytes all connections together may hold in request bodies (received or declared) and
    /// unsent answers. A new body past it gets `503` with `Retry-After: 1`, before it is read.
    public var maxBufferedBytes = 64 * 1024 * 1024
    public var eventLoopCount = HTTPServerConfiguration.coreCount

    public init() {}

    public init(host: String = "0.0.0.0", port: Int = 8443) {
        self.host = host
        self.port = port
    }

    /// The CPUs this process may use (its affinity mask: taskset, cgroup cpusets), falling back
    /// to the online count; one event loop per CPU.
    public static var coreCount: Int {
        let allowed = Int(berth_allowed_cpu_count())
        return max(1, allowed > 0 ? allowed : Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    var parserLimits: HTTPParserLimits {
        HTTPParserLimits(maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount, maxBodyBytes: maxBodyBytes)
    }
}

/// Hooks for metrics (implemented elsewhere with swift-metrics). Called on event-loop threads: keep them cheap.
public protocol HTTPServerObserver: Sendable {
    func requestStarted()
    /// Also called for the errors the server answers itself (400, 408, 413, 431, 501, 505, ...),
    /// with method and path "-" when the request line was not understood.
    func requestFinished(method: String, path: String, status: Int, duration: Duration)
    /// A TLS handshake failed (including plain HTTP sent to the TLS port) or timed out.
    func tlsHandshakeFailed()
}

extension HTTPServerObserver {
    public func tlsHandshakeFailed() {}
}
