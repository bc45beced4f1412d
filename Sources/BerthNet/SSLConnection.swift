import COpenSSL
import Glibc

/// What a non-blocking TLS or socket operation did.
enum IOResult {
    case bytes(Int)
    case wantRead
    case wantWrite
    /// Orderly close by the peer.
    case closed
    case failed(NetError)
}

/// Owns one server-side `SSL` over a non-blocking socket and frees it in deinit.
/// Confined to its event-loop thread.
final class SSLConnection {
    private let ssl: OpaquePointer
    /// Keeps the context (and so the certificate it was accepted with) alive as long as the connection.
    private let context: SSLContext

    init(context: SSLContext, fd: Int32) throws(NetError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else { throw OpenSSLErrorQueue.error("SSL_new") }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error("SSL_set_fd")
        }
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.context = context
    }

    deinit { SSL_free(ssl) }

    /// `.bytes(0)` means the handshake completed.
    func handshake() -> IOResult {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .bytes(0) }
        return classify(result, operation: "TLS handshake")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        OpenSSLErrorQueue.clear()
        var count = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count) == 1 { return .bytes(count) }
        return classify(0, operation: "SSL_read")
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> IOResult {
        OpenSSLErrorQueue.clear()
        var count = 0
        if SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &count) == 1 { return .bytes(count) }
        return classify(0, operation: "SSL_write")
    }

    /// Decrypted or undecrypted bytes buffered inside OpenSSL (epoll cannot see them).
    var hasPending: Bool { SSL_has_pending(ssl) == 1 }

    /// Frees the ~34 KB of record buffers of an idle connection (reallocated on the next read).
    func freeBuffers() {
        _ = SSL_free_buffers(ssl)
    }

    /// Sends close_notify once; does not wait for the peer's.
    func shutdown() {
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    var negotiatedALPN: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        return berth_SSL_get_alpn(ssl, &buffer, Int32(buffer.count)) > 0 ? stringFromCBuffer(buffer) : nil
    }

    private func classify(_ result: Int32, operation: String) -> IOResult {
        let code = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ:
            return .wantRead
        case SSL_ERROR_WANT_WRITE:
            return .wantWrite
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            let queue = OpenSSLErrorQueue.drain()
            if queue.isEmpty && (code == 0 || code == ECONNRESET || code == EPIPE) { return .closed }
            return .failed(queue.isEmpty ? .syscall(operation, errno: code) : .tls(operation: operation, queue: queue))
        default:
            return .failed(OpenSSLErrorQueue.error(operation))
        }
    }
}
