import CBerthLinux
import Dispatch
import Glibc
import Logging
import Synchronization

/// What every event loop of one server shares.
final class ServerShared: Sendable {
    let configuration: HTTPServerConfiguration
    let tls: TLSContextStore?
    let responder: any HTTPResponder
    let observer: (any HTTPServerObserver)?
    let logger: Logger
    let activeConnections = Atomic<Int>(0)
    let handshakeFailures = Atomic<Int>(0)
    /// Connections given up to make room: the longest-waiting one when the table was full
    /// (`evicted`), or a new one refused (`refusedTableFull`: every connection busy;
    /// `refusedPerClient`: its client already had its share of waiting connections).
    let evicted = Atomic<Int>(0)
    let refusedTableFull = Atomic<Int>(0)
    let refusedPerClient = Atomic<Int>(0)
    /// Bytes held for requests (buffered, and promised to bodies declared but not yet received)
    /// and unsent answers, all connections together; bounded by `memoryBudget` (new bodies past it: 503).
    let bufferedBytes = Atomic<Int>(0)
    let memoryBudget: Int
    let overBudget = Atomic<Int>(0)
    /// The most TLS handshake steps one loop ran in one turn (for tests of the handshake budget).
    let mostHandshakesInATurn = Atomic<Int>(0)
    let timeouts: [UInt64]

    init(configuration: HTTPServerConfiguration, tls: TLSContextStore?, responder: any HTTPResponder,
         observer: (any HTTPServerObserver)?, logger: Logger) {
        self.configuration = configuration
        self.tls = tls
        self.responder = responder
        self.observer = observer
        self.logger = logger
        var timeouts = [UInt64](repeating: 0, count: TimerKind.allCases.count)
        timeouts[TimerKind.handshake.rawValue] = configuration.handshakeTimeout.nanoseconds
        timeouts[TimerKind.request.rawValue] = configuration.requestReadTimeout.nanoseconds
        timeouts[TimerKind.idle.rawValue] = configuration.idleTimeout.nanoseconds
        // Record buffers are kept while a connection is busy (freeing them per request costs ~40%
        // throughput) and freed after one idle second, so thousands of idle keep-alive
        // connections cost little memory.
        let release = min(1_000_000_000, configuration.idleTimeout.nanoseconds)
        timeouts[TimerKind.idleRelease.rawValue] = release
        timeouts[TimerKind.idleRest.rawValue] = configuration.idleTimeout.nanoseconds - release
        // A client that stops reading our answer gets as long as one that stops sending its request.
        timeouts[TimerKind.write.rawValue] = configuration.requestReadTimeout.nanoseconds
        // After an error answer, input is drained briefly so the close does not RST the answer away.
        timeouts[TimerKind.linger.rawValue] = min(2_000_000_000, configuration.requestReadTimeout.nanoseconds)
        timeouts[TimerKind.drainIdle.rawValue] = configuration.drainIdleGrace.nanoseconds
        self.timeouts = timeouts
        self.lingerTotal = max(configuration.requestReadTimeout.nanoseconds, 5_000_000_000)
        self.handshakeBudget = configuration.handshakeBudgetPerTurn.nanoseconds
        self.memoryBudget = configuration.maxBufferedBytes
        let loops = max(1, configuration.eventLoopCount)
        self.waitingPerClientPerLoop = max(1, (configuration.maxWaitingConnectionsPerClient + loops - 1) / loops)
    }
    let waitingPerClientPerLoop: Int
    let lingerTotal: UInt64
    let handshakeBudget: UInt64
}

/// One thread, one epoll instance, one SO_REUSEPORT listener, and the connections it accepted.
///
/// Why SO_REUSEPORT rather than one listener shared with EPOLLEXCLUSIVE: the kernel hashes each
/// new connection to one listener, so keep-alive connections (the apiserver's, a benchmark's)
/// spread evenly over the loops; EPOLLEXCLUSIVE tends to wake the same, most recently idle,
/// thread and can pile every connection of a burst onto one core. The costs: connections still
/// in a listener's accept queue when it closes would be reset, so shutdown accepts them first (and
/// closes them cleanly); and another process of the same user binding the same port with
/// SO_REUSEPORT would silently share it instead of failing with EADDRINUSE.
///
/// `@unchecked Sendable`: all mutable state is touched only by the loop's own thread (inside
/// `run()`); other threads only call `post(_:)`, which goes through a `Mutex` and an eventfd.
final class EventLoop: @unchecked Sendable {
    enum Command { case drain, forceClose, streams }

    let index: Int
    private let shared: ServerShared
    private let epollFD: Int32
    private let wakeFD: Int32
    private let commands = Mutex<[Command]>([])
    let finished = DispatchSemaphore(value: 0)

    // Loop thread only.
    private var listenFD: Int32
    private var connections: [Connection?] = []
    private var liveConnections = 0
    private var nextGeneration: UInt32 = 1
    private var timers: DeadlineLists
    private var now: UInt64 = monotonicNanos()
    private var draining = false
    private var acceptPausedUntil: UInt64 = 0
    /// CPU spent on TLS handshakes this turn and how many were run: past the budget, handshakes
    /// wait for the next turn (level-triggered epoll reports them again), so a flood of
    /// ClientHellos cannot hold up answers on established connections.
    private var handshakeNanosThisTurn: UInt64 = 0
    /// A large buffer was given back since the last malloc_trim: trimmed when the loop next idles,
    /// so resident memory returns to its idle level after a burst of big reviews.
    private var trimWanted = false
    /// Per client address: this loop's connections waiting on it (handshake or idle).
    private var waitingByPeer: [PeerKey: Int] = [:]
    private var handshakesThisTurn = 0
    /// TLS connections with bytes buffered inside OpenSSL (read-ahead) that epoll cannot report;
    /// handled again on the next iteration without waiting.
    private var pendingReads: [Connection] = []
    /// Connections sending a streaming body (watch); pumped when a stream wakes the loop.
    private var streamingConnections: [Connection] = []
    private let readBuffer: UnsafeMutableRawBufferPointer
    private let events: UnsafeMutableBufferPointer<epoll_event>
    private var logger: Logger

    private static let readBufferSize = 64 * 1024
    private static let outputHighWater = 256 * 1024
    private static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    init(index: Int, listenFD: Int32, shared: ServerShared) throws(NetError) {
        self.index = index
        self.listenFD = listenFD
        self.shared = shared
        self.timers = DeadlineLists(timeouts: shared.timeouts)
        var logger = shared.logger
        logger[metadataKey: "loop"] = "\(index)"
        self.logger = logger
        epollFD = try syscall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        do {
            wakeFD = try syscall("eventfd") { eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC)) }
        } catch {
            close(epollFD)
            throw error
        }
        readBuffer = .allocate(byteCount: Self.readBufferSize, alignment: 16)
        events = .allocate(capacity: 256)
        do {
            try register(wakeFD, events: EPOLLIN.rawValue, data: UInt64(UInt32(bitPattern: wakeFD)), op: EPOLL_CTL_ADD)
            try register(listenFD, events: EPOLLIN.rawValue, data: UInt64(UInt32(bitPattern: listenFD)), op: EPOLL_CTL_ADD)
        } catch {
            close(epollFD)
            close(wakeFD)
            readBuffer.deallocate()
            events.deallocate()
            throw error
        }
    }

    deinit {
        readBuffer.deallocate()
        events.deallocate()
    }

    /// Releases the descriptors of a loop whose thread never started (failed `start()`).
    func discardUnstarted() {
        if listenFD >= 0 { close(listenFD); listenFD = -1 }
        close(epollFD)
        close(wakeFD)
    }

    /// Thread-safe: queue a command and wake the loop.
    func post(_ command: Command) {
        commands.withLock { $0.append(command) }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: - The loop

    func run() {
        logger.debug("event loop started")
        while !(draining && liveConnections == 0) {
            var timeout = nextTimeoutMilliseconds()
            if trimWanted && timeout != 0 {
                // Nothing ready: about to sleep. Probe first, and trim only if still nothing came.
                // (Level-triggered: an event this probe takes is reported again by the real wait.)
                let ready = epoll_wait(epollFD, events.baseAddress, 1, 0)
                if ready == 0 {
                    berth_malloc_trim()
                    trimWanted = false
                    timeout = nextTimeoutMilliseconds()
                }
            }
            let count = epoll_wait(epollFD, events.baseAddress, Int32(events.count), timeout)
            now = monotonicNanos()
            if count < 0 {
                if errno == EINTR { continue }
                logger.critical("epoll_wait failed", metadata: ["error": "\(NetError.syscall("epoll_wait", errno: errno))"])
                break
            }
            // In three passes over the ready connections: every read, then every answer, then
            // every write. Per connection in turn, the kernel's send path (which on loopback also
            // runs the receiver's TCP stack) evicted the responder's code and data between requests.
            readyBatch.removeAll(keepingCapacity: true)
            handshakeNanosThisTurn = 0
            handshakesThisTurn = 0
            // Connections with TLS bytes OpenSSL read ahead (epoll cannot report them) join the batch.
            let again = pendingReads
            pendingReads.removeAll(keepingCapacity: true)
            for connection in again where isOpen(connection) {
                if let progressed = handleInput(connection, events: EPOLLIN.rawValue) {
                    readyBatch.append((connection, progressed, false))
                }
            }
            for i in 0..<Int(count) {
                let event = events[i]
                let data = event.data.u64
                let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
                if fd == wakeFD && data >> 32 == 0 {
                    handleCommands()
                } else if fd == listenFD && data >> 32 == 0 {
                    acceptConnections()
                } else if fd >= 0, Int(fd) < connections.count, let connection = connections[Int(fd)],
                          connection.generation == UInt32(truncatingIfNeeded: data >> 32) {
                    if let progressed = handleInput(connection, events: event.events) {
                        readyBatch.append((connection, progressed, false))
                    }
                }
            }
            for index in readyBatch.indices where isOpen(readyBatch[index].connection) {
                readyBatch[index].completed = process(readyBatch[index].connection)
            }
            for (connection, progressed, completed) in readyBatch where isOpen(connection) {
                var wrote = progressed
                guard flush(connection, progressed: &wrote) else { continue }
                finishEvent(connection, completedRequest: completed, wroteBytes: wrote)
            }
            if handshakesThisTurn > 1 && handshakesThisTurn > shared.mostHandshakesInATurn.load(ordering: .relaxed) {
                shared.mostHandshakesInATurn.store(handshakesThisTurn, ordering: .relaxed)
            }
            expireTimers()
            if acceptPausedUntil != 0 && now >= acceptPausedUntil && !draining {
                acceptPausedUntil = 0
                try? register(listenFD, events: EPOLLIN.rawValue, data: UInt64(UInt32(bitPattern: listenFD)), op: EPOLL_CTL_ADD)
            }
        }
        for case let connection? in connections { closeConnection(connection) }
        if listenFD >= 0 { close(listenFD); listenFD = -1 }
        close(epollFD)
        close(wakeFD)
        logger.debug("event loop stopped")
        finished.signal()
    }

    private func nextTimeoutMilliseconds() -> Int32 {
        let current = monotonicNanos()
        var nearest = UInt64.max
        if let deadline = timers.nextDeadline { nearest = deadline }
        if acceptPausedUntil != 0 { nearest = min(nearest, acceptPausedUntil) }
        if index == 0, let tls = shared.tls, !draining {
            nearest = min(nearest, current &+ tls.pollIfDue(now: current))
        }
        if !pendingReads.isEmpty { return 0 }
        if nearest == UInt64.max { return -1 }
        if nearest <= current { return 0 }
        let milliseconds = (nearest - current + 999_999) / 1_000_000
        return Int32(min(milliseconds, 60_000))
    }

    private func register(_ fd: Int32, events: UInt32, data: UInt64, op: Int32) throws(NetError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = data
        try syscall("epoll_ctl") { epoll_ctl(epollFD, op, fd, &event) }
    }

    private func handleCommands() {
        var value: UInt64 = 0
        _ = read(wakeFD, &value, 8)
        let pending = commands.withLock { commands in
            defer { commands.removeAll() }
            return commands
        }
        for command in pending {
            switch command {
            case .drain:
                guard !draining else { continue }
                draining = true
                acceptConnections()  // queued connections get a clean close below, not a reset
                if listenFD >= 0 {
                    close(listenFD)  // also removes it from epoll
                    listenFD = -1
                }
                // Idle keep-alive connections are not closed now: a client may be sending on one this
                // very moment. Each gets its next answer with `Connection: close`, or is closed once
                // quiet for drainIdleGrace. Handshakes under way finish and are served the same way.
                for case let connection? in connections where connection.isIdle {
                    armIdle(connection)
                }
            case .forceClose:
                draining = true
                if listenFD >= 0 {
                    close(listenFD)
                    listenFD = -1
                }
                for case let connection? in connections { closeConnection(connection) }
            case .streams:
                for connection in streamingConnections { pumpStream(connection) }
            }
        }
    }

    /// Moves what a stream produced into the connection's output (chunked) and writes it.
    private func pumpStream(_ connection: Connection) {
        guard let stream = connection.stream, Int(connection.fd) < connections.count,
              connections[Int(connection.fd)] === connection else { return }
        switch stream.drain() {
        case .chunks(let chunks):
            for chunk in chunks { HTTPResponse.appendChunk(chunk, to: &connection.output) }
        case .finished(let chunks):
            for chunk in chunks { HTTPResponse.appendChunk(chunk, to: &connection.output) }
            connection.output.append(contentsOf: "0\r\n\r\n".utf8)
            endStream(connection)
            connection.closeAfterWrite = true
        case .aborted:
            closeConnection(connection)
            return
        }
        var progressed = false
        guard flush(connection, progressed: &progressed) else { return }
        finishEvent(connection, completedRequest: false, wroteBytes: progressed)
    }

    private func endStream(_ connection: Connection) {
        guard let stream = connection.stream else { return }
        connection.stream = nil
        streamingConnections.removeAll { $0 === connection }
        stream.cancel()
    }

    // MARK: - Accepting

    private func acceptConnections() {
        guard listenFD >= 0 else { return }
        for _ in 0..<64 {
            var high: UInt64 = 0
            var low: UInt64 = 0
            let fd = berth_accept_nonblocking_peer(listenFD, &high, &low)
            if fd < 0 {
                let code = errno
                switch code {
                case EAGAIN, EWOULDBLOCK: return
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors: stop polling the listener for a moment instead of spinning.
                    logger.warning("accept failed; pausing accepts for 100 ms", metadata: ["error": "\(NetError.syscall("accept4", errno: code))"])
                    _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, listenFD, nil)
                    acceptPausedUntil = now &+ 100_000_000
                    return
                default:
                    logger.error("accept failed", metadata: ["error": "\(NetError.syscall("accept4", errno: code))"])
                    return
                }
            }
            let peer = PeerKey(high: high, low: low)
            if waitingByPeer[peer, default: 0] >= shared.waitingPerClientPerLoop {
                // This client already keeps its share of connections waiting: the new one goes.
                shared.refusedPerClient.wrappingAdd(1, ordering: .relaxed)
                logger.debug("client at its share of waiting connections; closing new connection", metadata: ["peer": "\(Socket.peerDescription(fd))"])
                close(fd)
                continue
            }
            if shared.activeConnections.wrappingAdd(1, ordering: .relaxed).newValue > shared.configuration.maxConnections
                && !evictLongestWaiting() {
                shared.activeConnections.wrappingSubtract(1, ordering: .relaxed)
                shared.refusedTableFull.wrappingAdd(1, ordering: .relaxed)
                logger.debug("connection table full of busy connections; closing new connection")
                close(fd)
                continue
            }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let tls: SSLConnection?
            do {
                tls = try shared.tls.map { store throws(NetError) in try SSLConnection(context: store.currentContext, fd: fd) }
            } catch {
                logger.error("cannot create TLS connection", metadata: ["error": "\(error)"])
                shared.activeConnections.wrappingSubtract(1, ordering: .relaxed)
                close(fd)
                continue
            }
            let generation = nextGeneration
            nextGeneration = nextGeneration == UInt32.max ? 1 : nextGeneration + 1
            let connection = Connection(fd: fd, peer: peer, generation: generation, tls: tls,
                                        limits: shared.configuration.parserLimits, interest: EPOLLIN.rawValue)
            do {
                try register(fd, events: EPOLLIN.rawValue, data: UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd)), op: EPOLL_CTL_ADD)
            } catch {
                logger.error("cannot register connection", metadata: ["error": "\(error)"])
                shared.activeConnections.wrappingSubtract(1, ordering: .relaxed)
                close(fd)
                continue
            }
            if Int(fd) >= connections.count {
                connections.append(contentsOf: repeatElement(nil, count: Int(fd) + 1 - connections.count))
            }
            connections[Int(fd)] = connection
            liveConnections += 1
            if logger.logLevel <= .debug {
                logger.trace("connection accepted", metadata: ["peer": "\(Socket.peerDescription(fd))", "fd": "\(fd)"])
            }
            if tls == nil { armIdle(connection) } else { arm(connection, .handshake) }
        }
    }

    // MARK: - Connection events

    private var readyBatch: [(connection: Connection, progressed: Bool, completed: Bool)] = []

    private func isOpen(_ connection: Connection) -> Bool {
        Int(connection.fd) < connections.count && connections[Int(connection.fd)] === connection
    }

    /// Handshake, pending output and reading. Returns nil when the event is fully handled
    /// (or the connection closed); otherwise whether output was written, and the connection's
    /// parsed requests are ready for `process`.
    private func handleInput(_ connection: Connection, events: UInt32) -> Bool? {
        if connection.lingering {
            drainLingering(connection)
            return nil
        }
        if connection.handshaking {
            guard let tls = connection.tls else { return nil }
            // At least one handshake step per turn; more while the turn's budget lasts.
            if handshakesThisTurn > 0 && handshakeNanosThisTurn >= shared.handshakeBudget { return nil }
            let started = monotonicNanos()
            let result = tls.handshake()
            handshakeNanosThisTurn &+= monotonicNanos() &- started
            handshakesThisTurn += 1
            switch result {
            case .bytes:
                connection.handshaking = false
                if logger.logLevel <= .debug {
                    logger.trace("TLS handshake complete", metadata: ["fd": "\(connection.fd)", "alpn": "\(tls.negotiatedALPN ?? "none")"])
                }
                armIdle(connection)
            case .wantRead:
                setInterest(connection, EPOLLIN.rawValue)
                return nil
            case .wantWrite:
                setInterest(connection, EPOLLIN.rawValue | EPOLLOUT.rawValue)
                return nil
            case .closed:
                // A TCP connect-and-close (probes, load balancers) is not a failed handshake.
                logger.debug("peer closed before the TLS handshake completed", metadata: ["fd": "\(connection.fd)"])
                closeConnection(connection)
                return nil
            case .failed(let error):
                handshakeFailed(connection, reason: "\(error)")
                return nil
            }
        }
        var progressed = false
        if connection.outputPending {
            guard flush(connection, progressed: &progressed) else { return nil }
            if connection.outputPending {
                finishEvent(connection, completedRequest: false, wroteBytes: progressed)
                return nil
            }
        }
        if !connection.closeAfterWrite && !connection.peerClosed {
            guard readAvailable(connection) else { return nil }
        }
        return progressed
    }

    private func handshakeFailed(_ connection: Connection, reason: String) {
        shared.handshakeFailures.wrappingAdd(1, ordering: .relaxed)
        shared.observer?.tlsHandshakeFailed()
        logger.debug("TLS handshake failed", metadata: ["fd": "\(connection.fd)", "error": "\(reason)"])
        closeConnection(connection)
    }

    /// Reads what is available into the parser. Returns false if the connection was closed.
    private func readAvailable(_ connection: Connection) -> Bool {
        let wasPartial = connection.parser.hasPartialRequest
        connection.readWantsWrite = false
        reading: for _ in 0..<16 {
            let result: IOResult
            if let tls = connection.tls {
                result = tls.read(into: readBuffer)
            } else {
                let count = recv(connection.fd, readBuffer.baseAddress, readBuffer.count, 0)
                if count > 0 {
                    result = .bytes(count)
                } else if count == 0 {
                    result = .closed
                } else {
                    let code = errno
                    result = (code == EAGAIN || code == EWOULDBLOCK || code == EINTR) ? .wantRead
                        : (code == ECONNRESET ? .closed : .failed(.syscall("recv", errno: code)))
                }
            }
            switch result {
            case .bytes(let count):
                connection.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
                // Plain: a short read drained the socket. TLS with read-ahead: nothing left inside
                // OpenSSL means the socket was drained too (or epoll will report the rest).
                if let tls = connection.tls {
                    if !tls.hasPending { break reading }
                } else if count < readBuffer.count {
                    break reading
                }
            case .wantRead:
                break reading
            case .wantWrite:
                connection.readWantsWrite = true
                break reading
            case .closed:
                connection.peerClosed = true
                break reading
            case .failed(let error):
                logger.debug("read failed; closing", metadata: ["fd": "\(connection.fd)", "error": "\(error)"])
                closeConnection(connection)
                return false
            }
        }
        if !wasPartial && connection.parser.hasPartialRequest { connection.requestStart = now }
        return true
    }

    /// Turns parsed requests into queued answers, in order. Returns true if any request completed.
    private func process(_ connection: Connection) -> Bool {
        var completed = false
        // What the other connections hold is not this one's to take.
        connection.parser.bodyBudget = shared.memoryBudget &- (shared.bufferedBytes.load(ordering: .relaxed) &- connection.accountedBytes)
        while !connection.closeAfterWrite, connection.stream == nil, connection.output.count - connection.outputOffset < Self.outputHighWater,
              let event = connection.parser.next() {
            switch event {
            case .request(let request):
                completed = true
                shared.observer?.requestStarted()
                let start = connection.requestStart != 0 ? connection.requestStart : now
                let response = shared.responder.respond(to: request)
                // Draining: the last request read gets `Connection: close`; pipelined ones already
                // buffered behind it are answered first.
                let keepAlive = request.keepAlive && !connection.peerClosed && (!draining || connection.parser.bufferedByteCount > 0)
                response.serialize(into: &connection.output, keepAlive: keepAlive,
                                   requestVersion: request.version, omitBody: request.method == "HEAD")
                if !keepAlive { connection.closeAfterWrite = true }
                if let stream = response.bodyStream, request.method != "HEAD",
                   response.status >= 200, response.status != 204, !draining, !connection.peerClosed {
                    connection.closeAfterWrite = false  // closed when the stream ends instead
                    connection.stream = stream
                    streamingConnections.append(connection)
                    stream.attach { [weak self] in self?.post(.streams) }
                } else {
                    response.bodyStream?.cancel()
                }
                let end = monotonicNanos()
                connection.requestStart = connection.parser.hasPartialRequest ? end : 0
                shared.observer?.requestFinished(
                    method: request.method, path: request.path, status: response.status,
                    duration: .nanoseconds(Int64(clamping: end &- start)))
            case .continueExpected:
                connection.output.append(contentsOf: Self.continueResponse)
            case .error(let error):
                completed = true
                if error == .overBudget { shared.overBudget.wrappingAdd(1, ordering: .relaxed) }
                answerError(connection, status: error.status, reason: error.reason, retryAfter: error.retryAfterSeconds)
            }
        }
        if connection.peerClosed && !connection.parser.hasPartialRequest {
            connection.closeAfterWrite = true
        } else if connection.peerClosed && connection.parser.hasPartialRequest && !connection.closeAfterWrite {
            // EOF in the middle of a request: nothing more can complete it.
            connection.closeAfterWrite = true
        }
        return completed
    }

    /// Queues a short text answer to a protocol error or timeout, after which the connection closes.
    private func answerError(_ connection: Connection, status: Int, reason: String, retryAfter: Int? = nil) {
        shared.observer?.requestStarted()
        let start = connection.requestStart != 0 ? connection.requestStart : now
        logger.debug("answering protocol error", metadata: ["fd": "\(connection.fd)", "status": "\(status)", "reason": "\(reason)"])
        var response = HTTPResponse.text(status: status, "\(status) \(HTTPResponse.reasonPhrase(status)): \(reason)\n")
        if let retryAfter { response.headers.add(name: "Retry-After", value: String(retryAfter)) }
        response.serialize(into: &connection.output, keepAlive: false, requestVersion: .http1_1, omitBody: false)
        connection.closeAfterWrite = true
        connection.requestStart = 0
        shared.observer?.requestFinished(method: "-", path: "-", status: status,
                                         duration: .nanoseconds(Int64(clamping: monotonicNanos() &- start)))
    }

    /// Writes queued output; one write call for everything queued where the socket takes it.
    /// Returns false if the connection was closed.
    private func flush(_ connection: Connection, progressed: inout Bool) -> Bool {
        while connection.outputPending {
            let result: IOResult = connection.output.withUnsafeBytes { all in
                let pending = UnsafeRawBufferPointer(rebasing: all[connection.outputOffset...])
                if let tls = connection.tls { return tls.write(pending) }
                let count = send(connection.fd, pending.baseAddress, pending.count, Int32(MSG_NOSIGNAL))
                if count >= 0 { return .bytes(count) }
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return .wantWrite }
                return (code == EPIPE || code == ECONNRESET) ? .closed : .failed(.syscall("send", errno: code))
            }
            switch result {
            case .bytes(let count):
                connection.outputOffset += count
                progressed = progressed || count > 0
            case .wantWrite, .wantRead:
                return true
            case .closed:
                logger.debug("peer went away before reading the answer", metadata: ["fd": "\(connection.fd)"])
                closeConnection(connection)
                return false
            case .failed(let error):
                logger.debug("write failed; closing", metadata: ["fd": "\(connection.fd)", "error": "\(error)"])
                closeConnection(connection)
                return false
            }
        }
        // Everything sent: keep a modest buffer for the next answer, release a large one.
        if connection.output.capacity > 64 * 1024 {
            connection.output = []
        } else {
            connection.output.removeAll(keepingCapacity: true)
        }
        connection.outputOffset = 0
        return true
    }

    /// Decides interest, closing and the deadline after an event was handled, then brings the
    /// connection's share of the memory budget up to date.
    private func finishEvent(_ connection: Connection, completedRequest: Bool, wroteBytes: Bool) {
        decideAfterEvent(connection, completedRequest: completedRequest, wroteBytes: wroteBytes)
        if isOpen(connection) { account(connection) }
    }

    /// Keeps `shared.bufferedBytes` in step with what this connection holds. No atomic operation
    /// when nothing changed (the usual request: read, answered, flushed, nothing left).
    private func account(_ connection: Connection) {
        let usage = connection.parser.bufferedByteCount + connection.parser.promisedBodyBytes
            + (connection.output.count - connection.outputOffset)
        let delta = usage - connection.accountedBytes
        guard delta != 0 else { return }
        if connection.accountedBytes >= 1 << 20 && usage < 1 << 16 { trimWanted = true }
        connection.accountedBytes = usage
        shared.bufferedBytes.wrappingAdd(delta, ordering: .relaxed)
    }

    private func decideAfterEvent(_ connection: Connection, completedRequest: Bool, wroteBytes: Bool) {
        if connection.outputPending {
            // Back-pressure: no reading (and so no new answers) until the client takes what is queued.
            setInterest(connection, EPOLLOUT.rawValue)
            if timers.kind(of: connection.fd) != .write || wroteBytes { arm(connection, .write) }
            return
        }
        if connection.closeAfterWrite {
            beginClose(connection)
            return
        }
        if connection.stream != nil {
            // Reads only notice the client leaving; no timeout while the stream is open.
            setInterest(connection, EPOLLIN.rawValue)
            disarm(connection)
            return
        }
        setInterest(connection, connection.readWantsWrite ? EPOLLIN.rawValue | EPOLLOUT.rawValue : EPOLLIN.rawValue)
        if let tls = connection.tls, !connection.readWantsWrite, tls.hasPending { pendingReads.append(connection) }
        if connection.parser.hasPartialRequest {
            if timers.kind(of: connection.fd) != .request || completedRequest { arm(connection, .request) }
        } else if !(timers.kind(of: connection.fd)?.isIdle ?? false) || completedRequest {
            armIdle(connection)
        }
        // Answers may have been held back by the output high-water mark while requests are buffered.
        if completedRequest && connection.parser.bufferedByteCount > 0 && !connection.parser.hasFailed {
            var progressed = false
            let more = process(connection)
            guard flush(connection, progressed: &progressed) else { return }
            if more { finishEvent(connection, completedRequest: true, wroteBytes: progressed) }
        }
    }

    private func setInterest(_ connection: Connection, _ events: UInt32) {
        guard connection.interest != events else { return }
        connection.interest = events
        let data = UInt64(connection.generation) << 32 | UInt64(UInt32(bitPattern: connection.fd))
        do {
            try register(connection.fd, events: events, data: data, op: EPOLL_CTL_MOD)
        } catch {
            logger.error("epoll_ctl failed; closing connection", metadata: ["error": "\(error)"])
            closeConnection(connection)
        }
    }

    // MARK: - Closing

    /// Sends close_notify, then half-closes and drains input briefly so a client still sending
    /// (e.g. the rest of a 413 body) reads our answer instead of a reset.
    private func beginClose(_ connection: Connection) {
        if connection.lingering { return }
        if !connection.handshaking { connection.tls?.shutdown() }
        // Lingering only protects an answer sent while the client may still be sending (an error,
        // a timeout, unread pipelined input); an idle or finished connection closes at once.
        let clientMayStillSend = connection.parser.hasFailed || connection.parser.hasPartialRequest
            || connection.parser.bufferedByteCount > 0
        if connection.peerClosed || connection.handshaking || !clientMayStillSend {
            closeConnection(connection)
            return
        }
        shutdown(connection.fd, Int32(SHUT_WR))
        connection.lingering = true
        connection.lingerHardDeadline = now &+ shared.lingerTotal
        setInterest(connection, EPOLLIN.rawValue)
        arm(connection, .linger)
    }

    /// Like nginx's lingering close: the linger timer measures inactivity (re-armed while the
    /// client keeps sending), and `lingerHardDeadline` caps the total.
    private func drainLingering(_ connection: Connection) {
        for _ in 0..<16 {
            let count = recv(connection.fd, readBuffer.baseAddress, readBuffer.count, Int32(MSG_DONTWAIT))
            if count > 0 { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { break }
            closeConnection(connection)  // EOF or error: the client is done
            return
        }
        // Drained for now (or enough for one turn: level-triggered epoll reports the rest).
        if now < connection.lingerHardDeadline { arm(connection, .linger) }
    }

    private func closeConnection(_ connection: Connection) {
        let fd = connection.fd
        guard Int(fd) < connections.count, connections[Int(fd)] === connection else { return }
        disarm(connection)
        endStream(connection)
        connections[Int(fd)] = nil
        liveConnections -= 1
        if connection.accountedBytes != 0 {
            if connection.accountedBytes >= 1 << 20 { trimWanted = true }
            shared.bufferedBytes.wrappingSubtract(connection.accountedBytes, ordering: .relaxed)
            connection.accountedBytes = 0
        }
        shared.activeConnections.wrappingSubtract(1, ordering: .relaxed)
        close(fd)  // removes it from epoll
        logger.trace("connection closed", metadata: ["fd": "\(fd)"])
    }

    // MARK: - Timers

    private func arm(_ connection: Connection, _ kind: TimerKind) {
        timers.arm(connection.fd, kind, now: now)
        setWaiting(connection, kind == .handshake || kind.isIdle)
        // A wait begins (idleRest only continues the idle period idleRelease began).
        if kind == .handshake || kind == .idle || kind == .idleRelease { connection.waitingSince = now }
    }

    /// Keeps the per-client tally of waiting connections in step with the timer kind: waiting on
    /// the client means in the handshake or idle between requests.
    private func setWaiting(_ connection: Connection, _ waiting: Bool) {
        guard waiting != connection.countedWaiting else { return }
        connection.countedWaiting = waiting
        if waiting {
            waitingByPeer[connection.peer, default: 0] += 1
        } else if let count = waitingByPeer[connection.peer] {
            if count <= 1 { waitingByPeer[connection.peer] = nil } else { waitingByPeer[connection.peer] = count - 1 }
        }
    }

    /// Table full: closes this loop's connection that has waited longest on its client (idle
    /// between requests, or in the handshake). False when every connection here is busy.
    private func evictLongestWaiting() -> Bool {
        var victim: Connection?
        for kind in [TimerKind.idleRest, .idle, .idleRelease, .handshake] {
            guard let fd = timers.oldest(kind), let candidate = connections[Int(fd)] else { continue }
            if victim.map({ candidate.waitingSince < $0.waitingSince }) ?? true { victim = candidate }
        }
        guard let victim else { return false }
        shared.evicted.wrappingAdd(1, ordering: .relaxed)
        logger.debug("connection table full; closing the longest-waiting connection", metadata: ["fd": "\(victim.fd)"])
        if !victim.handshaking { victim.tls?.shutdown() }
        closeConnection(victim)
        return true
    }

    private func armIdle(_ connection: Connection) {
        arm(connection, draining ? .drainIdle : connection.tls == nil ? .idle : .idleRelease)
    }

    private func disarm(_ connection: Connection) {
        timers.disarm(connection.fd)
        setWaiting(connection, false)
    }

    private func expireTimers() {
        while let (fd, kind) = timers.popExpired(now: now) {
            guard Int(fd) < connections.count, let connection = connections[Int(fd)] else { continue }
            // Its timer is gone; timedOut arms the next one or closes (idleRelease goes on to idleRest).
            if kind != .idleRelease { setWaiting(connection, false) }
            timedOut(connection, kind)
        }
    }

    private func timedOut(_ connection: Connection, _ kind: TimerKind) {
        switch kind {
        case .handshake:
            handshakeFailed(connection, reason: "handshake timeout")
        case .request:
            logger.debug("request read timeout", metadata: ["fd": "\(connection.fd)"])
            answerError(connection, status: 408, reason: "request not received in time")
            var progressed = false
            guard flush(connection, progressed: &progressed) else { return }
            finishEvent(connection, completedRequest: false, wroteBytes: progressed)
        case .idleRelease:
            connection.tls?.freeBuffers()
            arm(connection, .idleRest)
        case .idle, .idleRest, .drainIdle:
            logger.trace("idle timeout", metadata: ["fd": "\(connection.fd)"])
            beginClose(connection)
        case .write, .linger:
            logger.debug("\(kind) timeout", metadata: ["fd": "\(connection.fd)"])
            closeConnection(connection)
        }
    }
}
