import Synchronization

/// A response body written over time by another thread (a watch stream). The event loop that
/// owns the connection sends each pushed chunk with chunked transfer encoding as soon as it is
/// woken (through its eventfd); `finish()` ends the body, `abort()` drops the connection without
/// ending it (what a network failure looks like to the client). When the client goes away the
/// stream is marked cancelled, so the producer can stop.
public final class HTTPBodyStream: Sendable {
    private struct State {
        var pending: [[UInt8]] = []
        var finished = false
        var aborted = false
        var cancelled = false
        var wake: (@Sendable () -> Void)?
        var onCancel: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    public init() {}

    /// Queues one chunk (empty chunks are ignored: a zero-size chunk would end the body).
    /// Returns false once the stream is finished, aborted or cancelled.
    @discardableResult
    public func push(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return !isClosed }
        let wake = state.withLock { state -> (@Sendable () -> Void)?? in
            guard !state.finished, !state.aborted, !state.cancelled else { return .none }
            state.pending.append(bytes)
            return .some(state.wake)
        }
        guard let wake else { return false }
        wake?()
        return true
    }

    /// Ends the body after what is queued (terminating chunk); the connection is then closed.
    public func finish() {
        let wake = state.withLock { state in
            state.finished = true
            return state.wake
        }
        wake?()
    }

    /// Closes the connection without a terminating chunk.
    public func abort() {
        let wake = state.withLock { state in
            state.aborted = true
            return state.wake
        }
        wake?()
    }

    /// True once the client went away (or the server closed the connection).
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    var isClosed: Bool { state.withLock { $0.finished || $0.aborted || $0.cancelled } }

    /// Runs `body` once the connection is gone (at once if it already is).
    public func onCancel(_ body: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.cancelled { return true }
            state.onCancel.append(body)
            return false
        }
        if runNow { body() }
    }

    // MARK: - Event loop side

    enum Drained { case chunks([[UInt8]]), finished([[UInt8]]), aborted }

    func attach(wake: @escaping @Sendable () -> Void) {
        let pending = state.withLock { state in
            state.wake = wake
            return !state.pending.isEmpty || state.finished || state.aborted
        }
        if pending { wake() }
    }

    func drain() -> Drained {
        state.withLock { state in
            if state.aborted { return .aborted }
            let chunks = state.pending
            state.pending.removeAll()
            return state.finished ? .finished(chunks) : .chunks(chunks)
        }
    }

    func cancel() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.cancelled else { return [] }
            state.cancelled = true
            state.wake = nil
            defer { state.onCancel.removeAll() }
            return state.onCancel
        }
        handlers.forEach { $0() }
    }
}
