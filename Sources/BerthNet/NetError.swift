import Glibc

/// Every failure BerthNet reports, with the context needed to act on it.
public enum NetError: Error, CustomStringConvertible, Sendable {
    /// A system call failed: its name (and what it was for) and errno.
    case syscall(String, errno: Int32)
    /// An OpenSSL call failed; `queue` is the whole OpenSSL error queue, oldest first.
    case tls(operation: String, queue: [String])
    /// A certificate, key or CA file could not be used.
    case certificate(file: String, reason: String, queue: [String])
    case invalidAddress(String)
    case invalidState(String)
    /// Client: no connection to `host:port` (resolution, refusal, timeout), with the cause.
    case connect(host: String, port: Int, reason: String)
    /// Client: the server's certificate was not accepted (the verifier's reason).
    case certificateVerification(host: String, reason: String)
    /// Client: the operation did not finish in time.
    case timedOut(String)
    /// Client: the connection ended early (`what` says where in the exchange).
    case connectionClosed(String)
    /// Client: the server's answer is not valid HTTP/1.1 (what was wrong, what was seen).
    case malformedResponse(String)
    /// Client: the operation was cancelled locally (a watch stopped by its owner).
    case cancelled

    public var description: String {
        switch self {
        case .syscall(let name, let code):
            return "\(name) failed: \(String(cString: strerror(code))) (errno \(code))"
        case .tls(let operation, let queue):
            return queue.isEmpty ? "\(operation) failed" : "\(operation) failed: \(queue.joined(separator: "; "))"
        case .certificate(let file, let reason, let queue):
            let detail = queue.isEmpty ? "" : " (\(queue.joined(separator: "; ")))"
            return "\(file): \(reason)\(detail)"
        case .invalidAddress(let address):
            return "invalid listen address '\(address)'"
        case .invalidState(let what):
            return what
        case .connect(let host, let port, let reason):
            return "cannot connect to \(host):\(port): \(reason)"
        case .certificateVerification(let host, let reason):
            return "TLS certificate of \(host) not accepted: \(reason)"
        case .timedOut(let what):
            return "timed out: \(what)"
        case .connectionClosed(let what):
            return "connection closed by the server \(what)"
        case .malformedResponse(let what):
            return "malformed HTTP response: \(what)"
        case .cancelled:
            return "cancelled"
        }
    }
}

/// Runs a system call, retrying on EINTR; -1 becomes `NetError.syscall` with the call's name and errno.
@discardableResult
@inline(__always)
func syscall<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(NetError) -> T {
    while true {
        let result = body()
        if result == -1 {
            let code = errno
            if code == EINTR { continue }
            throw .syscall(name(), errno: code)
        }
        return result
    }
}

/// The NUL-terminated string in a C character buffer.
func stringFromCBuffer(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
