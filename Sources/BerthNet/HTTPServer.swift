import CBerthLinux
import Dispatch
import Glibc
import Logging
import Synchronization

/// An HTTP/1.1 server (over TLS when `tls` is set) on `eventLoopCount` epoll loops, one thread each.
/// The responder runs inline on the loop thread that owns the connection.
public final class HTTPServer: Sendable {
    private let shared: ServerShared

    private struct State {
        var loops: [EventLoop] = []
        var threads: [pthread_t] = []
        var started = false
        var stopped = false
    }
    private let state = Mutex(State())

    public init(
        configuration: HTTPServerConfiguration,
        tls: TLSContextStore?,
        responder: any HTTPResponder,
        observer: (any HTTPServerObserver)? = nil,
        logger: Logger
    ) {
        shared = ServerShared(configuration: configuration, tls: tls, responder: responder, observer: observer, logger: logger)
    }

    /// Connections currently open (all loops).
    public var connectionCount: Int { shared.activeConnections.load(ordering: .relaxed) }
    /// TLS handshakes that failed or timed out since start (plain HTTP on the TLS port counts here;
    /// a bare TCP connect-and-close does not).
    public var handshakeFailureCount: Int { shared.handshakeFailures.load(ordering: .relaxed) }
    /// Connections closed to make room for a new one (the table was full), and new connections
    /// refused (the table full of busy connections; the client over its share of waiting ones).
    public var evictedConnectionCount: Int { shared.evicted.load(ordering: .relaxed) }
    public var refusedConnectionCount: (tableFull: Int, perClient: Int) {
        (shared.refusedTableFull.load(ordering: .relaxed), shared.refusedPerClient.load(ordering: .relaxed))
    }
    /// Bytes held now for request bodies and unsent answers (bounded by `maxBufferedBytes`), and
    /// requests refused with 503 because that budget was spoken for.
    public var bufferedByteCount: Int { shared.bufferedBytes.load(ordering: .relaxed) }
    public var overBudgetCount: Int { shared.overBudget.load(ordering: .relaxed) }
    /// The most TLS handshake steps one event loop ran in a single turn (tests of the budget).
    var mostHandshakesInATurn: Int { shared.mostHandshakesInATurn.load(ordering: .relaxed) }

    /// Binds, listens and starts the event loops; returns the bound port.
    /// SIGPIPE is ignored process-wide from here on (a peer closing mid-write must not kill us).
    public func start() throws -> Int {
        try state.withLock { state throws(NetError) -> Int in
            guard !state.started else { throw .invalidState("HTTPServer.start() called twice") }
            signal(SIGPIPE, SIG_IGN)
            let configuration = shared.configuration
            let loopCount = max(1, configuration.eventLoopCount)
            var listeners: [Int32] = []
            var loops: [EventLoop] = []
            var port = configuration.port
            do throws(NetError) {
                let first = try Socket.listen(host: configuration.host, port: configuration.port, reusePort: true)
                listeners.append(first)
                port = try Socket.localPort(first)
                for _ in 1..<loopCount {
                    listeners.append(try Socket.listen(host: configuration.host, port: port, reusePort: true))
                }
                // SO_REUSEPORT is for our own loops: another process of the same user could bind the
                // same port and silently take half the connections (two versions answering side by
                // side). The kernel does not refuse it, so look: a listener on the port that is not
                // one of ours means the port has another owner.
                let others = Socket.foreignListeners(port: port, ours: listeners)
                if !others.isEmpty {
                    throw NetError.invalidState("port \(port) is already served by another listener (\(others.joined(separator: ", ")) in /proc/net/tcp; another berth serve?): stop it or choose another port")
                }
                for (index, fd) in listeners.enumerated() {
                    loops.append(try EventLoop(index: index, listenFD: fd, shared: shared))
                }
            } catch {
                // A created loop owns its listener; the rest are closed here.
                for loop in loops { loop.discardUnstarted() }
                for fd in listeners.dropFirst(loops.count) { close(fd) }
                throw error
            }
            var threads: [pthread_t] = []
            for (index, loop) in loops.enumerated() {
                do throws(NetError) {
                    threads.append(try Self.startThread(loop))
                } catch {
                    for (started, thread) in zip(loops, threads) {
                        started.post(.forceClose)
                        _ = started.finished.wait(timeout: .now() + 5)
                        pthread_join(thread, nil)
                    }
                    for unstarted in loops[index...] { unstarted.discardUnstarted() }
                    throw error
                }
            }
            state.loops = loops
            state.threads = threads
            state.started = true
            shared.logger.info("HTTP server listening", metadata: [
                "address": "\(configuration.host):\(port)", "tls": "\(shared.tls != nil)", "loops": "\(loopCount)",
            ])
            return port
        }
    }

    /// Stops accepting, closes idle keep-alive connections, lets requests in progress finish and
    /// be answered (with `Connection: close`). Returns true if every connection finished within
    /// `timeout`; otherwise the rest are closed and false is returned.
    public func shutdown(timeout: Duration) -> Bool {
        let (loops, threads) = state.withLock { state -> ([EventLoop], [pthread_t]) in
            guard state.started, !state.stopped else { return ([], []) }
            state.stopped = true
            return (state.loops, state.threads)
        }
        guard !loops.isEmpty else { return true }
        shared.logger.info("HTTP server shutting down")
        for loop in loops { loop.post(.drain) }
        let deadline = DispatchTime.now() + .nanoseconds(Int(clamping: timeout.nanoseconds))
        var clean = true
        for loop in loops where loop.finished.wait(timeout: deadline) == .timedOut {
            clean = false
        }
        if !clean {
            shared.logger.warning("shutdown timeout; closing remaining connections")
            for loop in loops { loop.post(.forceClose) }
        }
        for (loop, thread) in zip(loops, threads) {
            if clean || loop.finished.wait(timeout: .now() + .seconds(5)) == .success {
                pthread_join(thread, nil)
            } else {
                pthread_detach(thread)  // stuck in a responder; nothing safe left to do
            }
        }
        return clean
    }

    private static func startThread(_ loop: EventLoop) throws(NetError) -> pthread_t {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(loop).toOpaque()
        let result = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let loop = Unmanaged<EventLoop>.fromOpaque(raw).takeRetainedValue()
            // Termination signals belong to the thread in waitForTerminationSignal().
            var signals = terminationSignals()
            pthread_sigmask(SIG_BLOCK, &signals, nil)
            berth_set_thread_name("berth-loop-\(loop.index)")
            loop.run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<EventLoop>.fromOpaque(context).release()
            throw .syscall("pthread_create", errno: result)
        }
        return thread
    }
}

