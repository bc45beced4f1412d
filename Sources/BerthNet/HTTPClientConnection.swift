import CBerthLinux
import COpenSSL
import Glibc
import Synchronization

/// One client connection: a blocking TCP socket, TLS over it when configured, and a read buffer.
/// Used by one thread at a time (taken from and returned to the pool); `cancel()` may be called
/// from any other thread to unblock a read (it shuts the socket down, never closes it).
///
/// `@unchecked Sendable`: the mutable state (buffer, `ssl`) is only touched by the thread that
/// holds the connection; the descriptor is closed in `deinit`, and `cancel()` only calls
/// `shutdown(2)` under `cancelLock` after checking the connection is not closed.
final class HTTPClientConnection: @unchecked Sendable {
    let host: String
    let port: Int
    private let fd: Int32
    private let ssl: OpaquePointer?
    private let context: SSLClientContext?
    private let cancelLock = Mutex<(cancelled: Bool, closed: Bool)>((false, false))

    private var buffer: [UInt8] = []
    private var bufferStart = 0
    /// Scratch space each read lands in before it is appended to `buffer` (no zero-filling).
    /// Allocated together with `ssl` (the last stored property set), so a failed init leaks nothing.
    private let readChunk: UnsafeMutableRawBufferPointer
    /// Requests sent on this connection (a reused connection may have been closed by the server).
    var requestCount = 0

    var buffered: Int { buffer.count - bufferStart }
    var isCancelled: Bool { cancelLock.withLock { $0.cancelled } }

    init(host: String, port: Int, tls: SSLClientContext?, proxy: HTTPProxy? = nil, connectTimeout: Duration) throws(NetError) {
        self.host = host
        self.port = port
        let fd: Int32
        if let proxy {
            fd = try Self.connect(host: proxy.host, port: proxy.port, timeout: connectTimeout)
            do throws(NetError) {
                try Self.tunnel(fd, through: proxy, to: host, port: port, timeout: connectTimeout)
            } catch {
                Glibc.close(fd)
                throw error
            }
        } else {
            fd = try Self.connect(host: host, port: port, timeout: connectTimeout)
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        self.fd = fd
        self.context = tls
        guard let tls else {
            readChunk = .allocate(byteCount: 16 * 1024, alignment: 16)
            ssl = nil
            return
        }
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(tls.pointer) else {
            Glibc.close(fd)
            throw OpenSSLErrorQueue.error("SSL_new")
        }
        readChunk = .allocate(byteCount: 16 * 1024, alignment: 16)
        self.ssl = ssl  // freed in deinit from here on
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let name = tls.configuration.serverName ?? bare
        let isIP = Self.isIPAddress(name)
        guard SSL_set_fd(ssl, fd) == 1 else { throw OpenSSLErrorQueue.error("SSL_set_fd") }
        // RFC 6066 §3: no SNI for IP literals.
        if !isIP { _ = berth_SSL_set_tlsext_host_name(ssl, name) }
        if !tls.configuration.insecureSkipVerify {
            // Host name (or IP SAN) check during verification (OpenSSL 3 handles IP literals here).
            guard SSL_set1_host(ssl, name) == 1 else { throw OpenSSLErrorQueue.error("SSL_set1_host(\(name))") }
        }
        try setTimeout(connectTimeout)
        SSL_set_connect_state(ssl)
        let result = SSL_connect(ssl)
        if result != 1 {
            let code = errno
            let error = SSL_get_error(ssl, result)
            let verify = SSL_get_verify_result(ssl)
            if verify != Int(X509_V_OK) {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                throw .certificateVerification(host: name, reason: reason)
            }
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE {
                throw .timedOut("TLS handshake with \(host):\(port)")
            }
            let queue = OpenSSLErrorQueue.drain()
            if queue.isEmpty && (error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN) {
                throw .connectionClosed("during the TLS handshake with \(host):\(port)\(code != 0 ? " (\(String(cString: strerror(code))))" : "")")
            }
            throw .tls(operation: "TLS handshake with \(host):\(port)", queue: queue)
        }
    }

    deinit {
        readChunk.deallocate()
        if let ssl { SSL_free(ssl) }
        cancelLock.withLock { $0.closed = true }
        Glibc.close(fd)
    }

    /// The negotiated ALPN protocol, if any.
    var negotiatedALPN: String? {
        guard let ssl else { return nil }
        var text = [CChar](repeating: 0, count: 64)
        return berth_SSL_get_alpn(ssl, &text, Int32(text.count)) > 0 ? stringFromCBuffer(text) : nil
    }

    /// Unblocks a read or write in progress on another thread; the connection is unusable afterwards.
    func cancel() {
        cancelLock.withLock { state in
            state.cancelled = true
            if !state.closed { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Whether the idle connection still looks usable: nothing readable (data or EOF) while idle.
    var isReusable: Bool {
        guard !isCancelled, buffered == 0 else { return false }
        if let ssl, SSL_has_pending(ssl) == 1 { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 0
    }

    /// Read and write timeout for the blocking socket calls that follow.
    func setTimeout(_ timeout: Duration) throws(NetError) {
        let nanos = timeout.nanoseconds
        var value = timeval(tv_sec: Int(nanos / 1_000_000_000), tv_usec: Int(nanos % 1_000_000_000 / 1000))
        if value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1000 }
        let size = socklen_t(MemoryLayout<timeval>.size)
        try syscall("setsockopt(SO_RCVTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size) }
        try syscall("setsockopt(SO_SNDTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size) }
    }

    func write(_ bytes: [UInt8]) throws(NetError) {
        var offset = 0
        while offset < bytes.count {
            if isCancelled { throw .cancelled }
            let result: Result<Int, NetError> = bytes.withUnsafeBytes { raw in
                let pending = UnsafeRawBufferPointer(rebasing: raw[offset...])
                if let ssl {
                    OpenSSLErrorQueue.clear()
                    var count = 0
                    if SSL_write_ex(ssl, pending.baseAddress, pending.count, &count) == 1 { return .success(count) }
                    return .failure(classify(ssl, 0, "sending the request"))
                }
                let count = send(fd, pending.baseAddress, pending.count, Int32(MSG_NOSIGNAL))
                if count >= 0 { return .success(count) }
                let code = errno
                if code == EINTR { return .success(0) }
                return .failure(plainError(code, "sending the request"))
            }
            offset += try result.get()
        }
    }

    /// Reads more bytes into the buffer. Returns false at EOF.
    func fill() throws(NetError) -> Bool {
        if bufferStart > 0 && bufferStart == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            bufferStart = 0
        } else if bufferStart > 64 * 1024 {
            buffer.removeSubrange(0..<bufferStart)
            bufferStart = 0
        }
        let target = readChunk
        let result: Result<Int, NetError>
        while true {
            if let ssl {
                OpenSSLErrorQueue.clear()
                var count = 0
                if SSL_read_ex(ssl, target.baseAddress, target.count, &count) == 1 { result = .success(count); break }
                let error = SSL_get_error(ssl, 0)
                if error == SSL_ERROR_ZERO_RETURN { result = .success(0); break }
                if error == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0 { result = .success(0); break }
                result = .failure(classify(ssl, 0, "reading the response"))
                break
            }
            let count = recv(fd, target.baseAddress, target.count, 0)
            if count >= 0 { result = .success(count); break }
            let code = errno
            if code == EINTR { continue }
            result = code == ECONNRESET ? .success(0) : .failure(plainError(code, "reading the response"))
            break
        }
        switch result {
        case .success(let count):
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: target[0..<count]))
            if count == 0 && isCancelled { throw .cancelled }
            return count > 0
        case .failure(let error):
            throw isCancelled ? .cancelled : error
        }
    }

    /// One line ending in LF (CR stripped), at most `limit` bytes; nil at EOF before any byte.
    func readLine(limit: Int, what: String) throws(NetError) -> [UInt8]? {
        var searched = 0  // bytes after bufferStart already searched (fill() may move the buffer)
        while true {
            if let newline = buffer[(bufferStart + searched)...].firstIndex(of: 10) {
                var end = newline
                if end > bufferStart && buffer[end - 1] == 13 { end -= 1 }
                let line = Array(buffer[bufferStart..<end])
                bufferStart = newline + 1
                return line
            }
            searched = buffer.count - bufferStart
            if buffer.count - bufferStart > limit {
                throw .malformedResponse("\(what) longer than \(limit) bytes")
            }
            guard try fill() else {
                if buffered == 0 { return nil }
                throw .connectionClosed("in the middle of \(what)")
            }
        }
    }

    /// Up to `max` bytes (at least one unless EOF, which returns an empty array).
    func readSome(max: Int) throws(NetError) -> [UInt8] {
        if buffered == 0 {
            guard try fill() else { return [] }
        }
        let count = min(max, buffered)
        defer { bufferStart += count }
        return Array(buffer[bufferStart..<(bufferStart + count)])
    }

    private func classify(_ ssl: OpaquePointer, _ result: Int32, _ what: String) -> NetError {
        let code = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .timedOut("\(what) from \(host):\(port)")
        case SSL_ERROR_ZERO_RETURN:
            return .connectionClosed(what)
        case SSL_ERROR_SYSCALL:
            let queue = OpenSSLErrorQueue.drain()
            if code == EAGAIN || code == EWOULDBLOCK { return .timedOut("\(what) from \(host):\(port)") }
            if !queue.isEmpty { return .tls(operation: what, queue: queue) }
            return code == 0 || code == EPIPE || code == ECONNRESET ? .connectionClosed(what) : .syscall(what, errno: code)
        default:
            return .tls(operation: what, queue: OpenSSLErrorQueue.drain())
        }
    }

    private func plainError(_ code: Int32, _ what: String) -> NetError {
        if code == EAGAIN || code == EWOULDBLOCK { return .timedOut("\(what) from \(host):\(port)") }
        if code == EPIPE || code == ECONNRESET { return .connectionClosed(what) }
        return .syscall(what, errno: code)
    }

    static func isIPAddress(_ name: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }

    /// Asks the proxy for a tunnel (`CONNECT host:port`) and reads its answer head byte by byte, so
    /// that nothing after it (the server's first TLS bytes) is consumed. Any status but 2xx fails
    /// naming the proxy and its status line.
    private static func tunnel(_ fd: Int32, through proxy: HTTPProxy, to host: String, port: Int, timeout: Duration) throws(NetError) {
        let authority = (host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host) + ":\(port)"
        var request = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n"
        if let authorization = proxy.authorization { request += "Proxy-Authorization: \(authorization)\r\n" }
        request += "\r\n"
        let nanos = timeout.nanoseconds
        var value = timeval(tv_sec: Int(nanos / 1_000_000_000), tv_usec: Int(max(1000, nanos % 1_000_000_000 / 1000)))
        let size = socklen_t(MemoryLayout<timeval>.size)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size)
        let what = "the CONNECT tunnel through proxy \(proxy.host):\(proxy.port)"
        let bytes = Array(request.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .connect(host: proxy.host, port: proxy.port, reason: "sending CONNECT: \(String(cString: strerror(errno)))")
            }
            offset += count
        }
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !(head.count >= 4 && head.suffix(4).elementsEqual([13, 10, 13, 10])) {
            let count = recv(fd, &byte, 1, 0)
            if count == 0 { throw .connectionClosed("in the answer to CONNECT from proxy \(proxy.host):\(proxy.port)") }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(what) }
                throw .connect(host: proxy.host, port: proxy.port, reason: "reading the answer to CONNECT: \(String(cString: strerror(errno)))")
            }
            head.append(byte)
            if head.count > 16 * 1024 { throw .malformedResponse("answer head to CONNECT longer than 16 KiB") }
        }
        let statusLine = String(decoding: head.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
            throw .malformedResponse("proxy \(proxy.host):\(proxy.port) answered CONNECT with \"\(statusLine.prefix(100))\"")
        }
        guard (200..<300).contains(code) else {
            throw .connect(host: host, port: port, reason: "proxy \(proxy.host):\(proxy.port) refused CONNECT: \(statusLine.prefix(200))")
        }
    }

    /// A connected blocking socket: each resolved address in turn, each with `timeout`.
    private static func connect(host: String, port: Int, timeout: Duration) throws(NetError) -> Int32 {
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(bare, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw .connect(host: host, port: port, reason: "cannot resolve: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var lastReason = "no address"
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let entry = current {
            current = entry.pointee.ai_next
            let fd = socket(entry.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            if fd < 0 { lastReason = String(cString: strerror(errno)); continue }
            if Glibc.connect(fd, entry.pointee.ai_addr, entry.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastReason = String(cString: strerror(errno))
                Glibc.close(fd)
                continue
            }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let milliseconds = Int32(clamping: timeout.nanoseconds / 1_000_000)
            var ready: Int32
            repeat { ready = poll(&poller, 1, max(1, milliseconds)) } while ready < 0 && errno == EINTR
            if ready == 0 {
                lastReason = "timed out after \(timeout)"
                Glibc.close(fd)
                continue
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if ready < 0 || soError != 0 {
                lastReason = String(cString: strerror(ready < 0 ? errno : soError))
                Glibc.close(fd)
                continue
            }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags & ~Int32(O_NONBLOCK))
            return fd
        }
        throw .connect(host: host, port: port, reason: lastReason)
    }
}
