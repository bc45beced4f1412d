import BerthNet
import BerthTestSupport
import Foundation
import Logging
import Synchronization
import Testing

// Processes, waiting and the openssl-made CA come from BerthTestSupport (shared by every test
// target); what is BerthNet's own stays here.

extension TestPKI {
    /// One CA with a server and a client certificate for the whole test process.
    static let shared: TestPKI = {
        do {
            let pki = try TestPKI.make(label: "berthnet")
            try pki.issue(name: "client", serial: "3003", commonName: "berth-test-client", client: true)
            return pki
        } catch {
            fatalError("cannot make the test certificates: \(error)")
        }
    }()

    var clientCertificate: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }

    var tlsConfiguration: TLSServerConfiguration {
        TLSServerConfiguration(certificateFile: serverCertificate, privateKeyFile: serverKey, reloadInterval: .seconds(3600))
    }
}

let testLogger: Logger = {
    var logger = Logger(label: "berthnet-tests")
    logger.logLevel = ProcessInfo.processInfo.environment["BERTHNET_TEST_DEBUG"] != nil ? .debug : .warning
    return logger
}()

/// Echoes the body back; reports method and target in headers.
struct EchoResponder: HTTPResponder {
    func respond(to request: HTTPRequest) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "X-Method", value: request.method)
        headers.add(name: "X-Path", value: request.path)
        headers.add(name: "X-Target", value: request.target)
        return HTTPResponse(status: 200, headers: headers, body: request.body)
    }
}

/// Counts what the server reports.
final class RecordingObserver: HTTPServerObserver {
    let started = Atomic<Int>(0)
    let finished = Mutex<[Int]>([])
    let handshakeFailures = Atomic<Int>(0)
    func requestStarted() { started.wrappingAdd(1, ordering: .relaxed) }
    func requestFinished(method: String, path: String, status: Int, duration: Duration) {
        finished.withLock { $0.append(status) }
    }
    func tlsHandshakeFailed() { handshakeFailures.wrappingAdd(1, ordering: .relaxed) }
    var statuses: [Int] { finished.withLock { $0 } }
}

func testConfiguration(_ adjust: (inout HTTPServerConfiguration) -> Void = { _ in }) -> HTTPServerConfiguration {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configuration.eventLoopCount = 2
    adjust(&configuration)
    return configuration
}

/// Starts a server on 127.0.0.1:0, runs `body` with it and its port, and always shuts it down.
func withServer<T>(
    configuration: HTTPServerConfiguration = testConfiguration(),
    tls: TLSContextStore? = nil,
    responder: any HTTPResponder = EchoResponder(),
    observer: (any HTTPServerObserver)? = nil,
    _ body: (HTTPServer, Int) throws -> T
) throws -> T {
    let server = HTTPServer(configuration: configuration, tls: tls, responder: responder, observer: observer, logger: testLogger)
    let port = try server.start()
    defer { _ = server.shutdown(timeout: .seconds(5)) }
    return try body(server, port)
}

func makeTLSStore(_ configuration: TLSServerConfiguration = TestPKI.shared.tlsConfiguration,
                  onReload: @escaping @Sendable (Result<Void, any Error>) -> Void = { _ in }) throws -> TLSContextStore {
    try TLSContextStore(configuration: configuration, logger: testLogger, onReload: onReload)
}

/// A blocking plain TCP client for raw-bytes tests.
final class RawClient {
    let fd: Int32

    /// `source`: a loopback address to connect from (127.0.0.2 is another client to the server).
    init(port: Int, receiveTimeout: Int = 10, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound != 0 { close(fd); throw TestFailure("bind to \(source) failed: errno \(errno)") }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 { close(fd); throw TestFailure("connect failed: errno \(errno)") }
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return }
            offset += count
        }
    }

    /// Reads until the peer closes (or the receive timeout).
    func readToEnd() -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads until `text` occurs `count` times in what was received (or the timeout / close).
    func read(until text: String, count: Int = 1) -> String {
        var data = ""
        var buffer = [UInt8](repeating: 0, count: 65536)
        while data.components(separatedBy: text).count - 1 < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        return data
    }
}

/// Answers "/hold" only once `release()` is called (holding its event loop meanwhile); echoes the rest.
final class HoldingResponder: HTTPResponder {
    let entered = Atomic<Bool>(false)
    private let gate = DispatchSemaphore(value: 0)

    func release() { gate.signal() }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        if request.path == "/hold" {
            entered.store(true, ordering: .relaxed)
            gate.wait()
        }
        return EchoResponder().respond(to: request)
    }
}

/// "16030100..." → bytes (nil if not hex).
func hexBytes(_ text: String) -> [UInt8]? {
    let digits = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
    guard digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    for index in stride(from: 0, to: digits.count, by: 2) {
        guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
        bytes.append(byte)
    }
    return bytes
}
