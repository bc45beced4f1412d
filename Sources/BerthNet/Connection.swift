/// Which deadline a connection is waiting on (see `DeadlineLists`).
enum TimerKind: Int, CaseIterable {
    case handshake, request
    /// Keep-alive without TLS: the whole idle timeout.
    case idle
    /// Keep-alive over TLS, first second: then OpenSSL's record buffers are freed ...
    case idleRelease
    /// ... and the rest of the idle timeout runs.
    case idleRest
    case write, linger
    /// Shutting down: an idle keep-alive connection is closed after this much quiet. A client
    /// still sending gets its next answer with `Connection: close` instead, so no request it
    /// sends races the close.
    case drainIdle

    var isIdle: Bool { self == .idle || self == .idleRelease || self == .idleRest || self == .drainIdle }
}

/// A client's address, 128 bits (IPv4 as ::ffff:a.b.c.d): connections are counted per client.
struct PeerKey: Hashable {
    var high: UInt64
    var low: UInt64
}

/// One accepted socket and its HTTP state. Confined to the event loop that accepted it.
final class Connection {
    let fd: Int32
    let peer: PeerKey
    /// Counted in its loop's per-client tally of connections waiting on their client (in the TLS
    /// handshake, or idle between requests): the ones a table-full or a client over its share gives up first.
    var countedWaiting = false
    /// When it began waiting (handshake or idle), for choosing the longest-waiting to evict.
    var waitingSince: UInt64 = 0
    /// Distinguishes this connection from an earlier one with the same fd in stale epoll events.
    let generation: UInt32
    let tls: SSLConnection?
    var handshaking: Bool
    var parser: HTTPParser

    var output: [UInt8] = []
    var outputOffset = 0
    var outputPending: Bool { outputOffset < output.count }

    /// Answer what is queued, then close (protocol error, `Connection: close`, shutdown).
    var closeAfterWrite = false
    /// The peer sent EOF (or close_notify).
    var peerClosed = false
    /// Our side is shut down for writing; discarding input until the peer closes or the linger timer fires.
    var lingering = false
    var lingerHardDeadline: UInt64 = 0
    /// TLS needs to write (e.g. a key update) before it can read again.
    var readWantsWrite = false
    /// This connection's part of the server's buffered bytes (see `EventLoop.account`).
    var accountedBytes = 0
    /// Events currently registered with epoll.
    var interest: UInt32

    /// Monotonic time the current request's first byte arrived (0: no request in progress).
    var requestStart: UInt64 = 0
    /// A streaming answer in progress: no further request is processed until it ends.
    var stream: HTTPBodyStream?

    init(fd: Int32, peer: PeerKey, generation: UInt32, tls: SSLConnection?, limits: HTTPParserLimits, interest: UInt32) {
        self.fd = fd
        self.peer = peer
        self.generation = generation
        self.tls = tls
        self.handshaking = tls != nil
        self.parser = HTTPParser(limits: limits)
        self.interest = interest
    }

    var isIdle: Bool {
        !handshaking && !parser.hasPartialRequest && !outputPending && !lingering
    }
}
