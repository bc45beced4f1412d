import BerthNet
import Foundation
import Logging
import Synchronization
import Testing

/// Result of running a command-line client.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments` (looked up in PATH), feeding `input`, killing it after `timeout`.
func run(_ executable: String, _ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30)) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    let stdout = Pipe()
    let stderr = Pipe()
    let stdin = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try? stdin.fileHandleForWriting.close()
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let outBox = Mutex<Data>(Data())
    let errBox = Mutex<Data>(Data())
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { let d = stdout.fileHandleForReading.readDataToEndOfFile(); outBox.withLock { $0 = d } }
    DispatchQueue.global().async(group: group) { let d = stderr.fileHandleForReading.readDataToEndOfFile(); errBox.withLock { $0 = d } }
    let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    if group.wait(timeout: .now() + seconds) == .timedOut {
        process.terminate()
        _ = group.wait(timeout: .now() + 5)
    }
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: outBox.withLock { $0 }, as: UTF8.self),
        stderr: String(decoding: errBox.withLock { $0 }, as: UTF8.self))
}

/// Runs a Python 3 script (ssl + http.client and friends); its stdout is returned.
func python(_ script: String, timeout: Duration = .seconds(60)) throws -> CommandResult {
    try run("python3", ["-c", script], timeout: timeout)
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// A throwaway CA, server certificates (SAN localhost, 127.0.0.1) and a client certificate,
/// made with the openssl CLI once per test process.
struct TestPKI: Sendable {
    let directory: String
    var caCertificate: String { directory + "/ca.pem" }
    var serverCertificate: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server.key" }
    var clientCertificate: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }

    static let shared: TestPKI = {
        let directory = NSTemporaryDirectory() + "berthnet-pki-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pki = TestPKI(directory: directory)
        try! pki.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                          "-keyout", directory + "/ca.key", "-out", directory + "/ca.pem", "-days", "2",
                          "-subj", "/CN=Berth Test CA"])
        try! pki.issue(name: "server", serial: "1001", commonName: "localhost")
        try! pki.issue(name: "client", serial: "3003", commonName: "berth-test-client", client: true)
        return pki
    }()

    func openssl(_ arguments: [String]) throws {
        let result = try run("openssl", arguments)
        if result.status != 0 { throw TestFailure("openssl \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    /// Issues `<name>.pem` / `<name>.key` signed by the CA, with the given hex-able decimal serial.
    func issue(name: String, serial: String, commonName: String, client: Bool = false, into target: String? = nil) throws {
        // Scratch files go beside the output: tests issue concurrently.
        let out = target ?? directory
        let extensions = out + "/\(name).ext"
        let ext = client
            ? "extendedKeyUsage=clientAuth\n"
            : "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        try ext.write(toFile: extensions, atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", out + "/\(name).key", "-out", out + "/\(name).csr", "-subj", "/CN=\(commonName)"])
        try openssl(["x509", "-req", "-in", out + "/\(name).csr", "-CA", caCertificate,
                     "-CAkey", directory + "/ca.key", "-set_serial", serial, "-days", "2",
                     "-extfile", extensions, "-out", out + "/\(name).pem"])
    }

    var tlsConfiguration: TLSServerConfiguration {
        TLSServerConfiguration(certificateFile: serverCertificate, privateKeyFile: serverKey, reloadInterval: .seconds(3600))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
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

    init(port: Int, receiveTimeout: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
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
