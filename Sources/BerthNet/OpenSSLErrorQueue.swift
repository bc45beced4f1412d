import COpenSSL

/// The OpenSSL error queue is per thread: clear it before a call, drain it into one error after.
enum OpenSSLErrorQueue {
    /// Before each TLS call, so a failure is classified by its own errors. Peeking first: the
    /// queue is almost always empty, and clearing walks all its slots (~600 instructions, four
    /// times per request).
    @inline(__always)
    static func clear() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    /// Drains the queue, oldest first, as readable lines.
    static func drain() -> [String] {
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            ERR_error_string_n(code, &buffer, buffer.count)
            lines.append(stringFromCBuffer(buffer))
        }
        return lines
    }

    static func error(_ operation: String) -> NetError {
        .tls(operation: operation, queue: drain())
    }
}
