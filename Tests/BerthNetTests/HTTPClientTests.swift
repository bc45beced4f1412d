import BerthNet
import BerthTestSupport
import Foundation
import Dispatch
import Glibc
import Synchronization
import Testing

private func pem(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path)!) }

private func tlsClient(port: Int, host: String = "localhost", _ adjust: (inout TLSClientConfiguration) -> Void = { _ in }) throws -> HTTPClient {
    var tls = TLSClientConfiguration(trustedCAPEM: pem(TestPKI.shared.caCertificate))
    adjust(&tls)
    return try HTTPClient(HTTPClientConfiguration(host: host, port: port, tls: tls))
}

/// Streams "line <n>\n" chunks from a thread until the client leaves, or answers 200 with a body.
private final class StreamingResponder: HTTPResponder {
    let streams = Mutex<[HTTPBodyStream]>([])
    func respond(to request: HTTPRequest) -> HTTPResponse {
        if request.path == "/stream" {
            let stream = HTTPBodyStream()
            streams.withLock { $0.append(stream) }
            return .streaming(status: 200, headers: ["Content-Type": "application/json"], stream: stream)
        }
        return EchoResponder().respond(to: request)
    }
}

@Suite("HTTP client")
struct HTTPClientTests {
    @Test func tlsRequestsReuseOneConnection() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let client = try tlsClient(port: port)
            for index in 0..<5 {
                let body = Array("hello \(index)".utf8)
                let response = try client.execute(HTTPClientRequest(method: "POST", target: "/x?y=\(index)", body: body))
                #expect(response.status == 200)
                #expect(response.body == body)
                #expect(response.headers["X-Target"] == "/x?y=\(index)")
            }
            #expect(client.connectionsOpened == 1)
            #expect(try client.stream(HTTPClientRequest(method: "GET", target: "/")).negotiatedProtocol == "http/1.1")
        }
    }

    @Test func plainHTTPAndIPAddress() throws {
        try withServer { _, port in
            let client = try HTTPClient(HTTPClientConfiguration(host: "127.0.0.1", port: port, tls: nil))
            let response = try client.execute(HTTPClientRequest(method: "GET", target: "/plain"))
            #expect(response.status == 200)
            #expect(response.headers["X-Path"] == "/plain")
        }
        // The certificate has IP:127.0.0.1 as a SAN: the IP literal is checked as an address.
        try withServer(tls: try makeTLSStore()) { _, port in
            let client = try tlsClient(port: port, host: "127.0.0.1")
            #expect(try client.execute(HTTPClientRequest(method: "GET", target: "/")).status == 200)
        }
    }

    @Test func untrustedOrWrongNameFailsUnlessInsecure() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let other = try TestPKIFactory.otherCA()
            let untrusted = try tlsClient(port: port) { $0.trustedCAPEM = other }
            #expect {
                _ = try untrusted.execute(HTTPClientRequest(method: "GET", target: "/"))
            } throws: { error in
                guard case NetError.certificateVerification(_, let reason) = error else { return false }
                return reason.contains("certificate")
            }
            let wrongName = try tlsClient(port: port) { $0.serverName = "apiserver.example" }
            #expect(throws: NetError.self) { _ = try wrongName.execute(HTTPClientRequest(method: "GET", target: "/")) }
            let insecure = try tlsClient(port: port) { $0.trustedCAPEM = other; $0.insecureSkipVerify = true }
            #expect(try insecure.execute(HTTPClientRequest(method: "GET", target: "/")).status == 200)
        }
    }

    @Test func clientCertificateIsPresented() throws {
        var configuration = TestPKI.shared.tlsConfiguration
        configuration.clientCAFile = TestPKI.shared.caCertificate
        try withServer(tls: try makeTLSStore(configuration)) { _, port in
            let withCert = try tlsClient(port: port) {
                $0.clientCertificatePEM = pem(TestPKI.shared.clientCertificate)
                $0.clientKeyPEM = pem(TestPKI.shared.clientKey)
            }
            #expect(try withCert.execute(HTTPClientRequest(method: "GET", target: "/")).status == 200)
            let without = try tlsClient(port: port)
            #expect(throws: NetError.self) { _ = try without.execute(HTTPClientRequest(method: "GET", target: "/")) }
        }
    }

    @Test func streamingBodyArrivesLineByLineAndEnds() throws {
        let responder = StreamingResponder()
        try withServer(tls: try makeTLSStore(), responder: responder) { _, port in
            let client = try tlsClient(port: port)
            let stream = try client.stream(HTTPClientRequest(method: "GET", target: "/stream"))
            #expect(stream.status == 200)
            #expect(waitUntil { responder.streams.withLock { $0.count } == 1 })
            let server = responder.streams.withLock { $0[0] }
            for index in 0..<3 {
                server.push(Array("{\"n\":\(index)}\n".utf8))
                // Each line is delivered before the next is produced: nothing waits for the end.
                #expect(try stream.readLine() == Array("{\"n\":\(index)}".utf8))
            }
            server.push(Array("{\"par".utf8))
            server.push(Array("tial\":1}\n".utf8))
            #expect(try stream.readLine() == Array("{\"partial\":1}".utf8))
            server.finish()
            #expect(try stream.readLine() == nil)
        }
    }

    @Test func serverAbortAndClientCancel() throws {
        let responder = StreamingResponder()
        try withServer(tls: try makeTLSStore(), responder: responder) { server, port in
            let client = try tlsClient(port: port)
            let first = try client.stream(HTTPClientRequest(method: "GET", target: "/stream"))
            #expect(waitUntil { responder.streams.withLock { $0.count } == 1 })
            responder.streams.withLock { $0[0] }.abort()
            #expect(throws: NetError.self) { _ = try first.readLine() }

            let second = try client.stream(HTTPClientRequest(method: "GET", target: "/stream"))
            #expect(waitUntil { responder.streams.withLock { $0.count } == 2 })
            let producer = responder.streams.withLock { $0[1] }
            let thread = Thread { Thread.sleep(forTimeInterval: 0.05); second.cancel() }
            thread.start()
            #expect {
                _ = try second.readLine()
            } throws: { error in
                guard case NetError.cancelled = error else { return false }
                return true
            }
            // The server notices the client left and cancels the producer side.
            #expect(waitUntil { producer.isCancelled })
            #expect(waitUntil { server.connectionCount == 0 })
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed"),
        ("HTTP/2 200\r\n\r\n", "invalid status line"),
        ("garbage\r\n\r\n", "invalid status line"),
        ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "Content-Length"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdeXX", "chunk"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"),
        ("", "closed"),
    ])
    func malformedResponsesAreErrors(raw: String, expected: String) throws {
        let server = try OneShotServer(answer: Array(raw.utf8))
        defer { server.stop() }
        let client = try HTTPClient(HTTPClientConfiguration(host: "127.0.0.1", port: server.port, tls: nil))
        #expect {
            _ = try client.execute(HTTPClientRequest(method: "GET", target: "/"), timeout: .seconds(5))
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test func untilCloseBodyAndReadTimeout() throws {
        let server = try OneShotServer(answer: Array("HTTP/1.1 200 OK\r\n\r\nall of it".utf8))
        defer { server.stop() }
        let client = try HTTPClient(HTTPClientConfiguration(host: "127.0.0.1", port: server.port, tls: nil))
        #expect(try client.execute(HTTPClientRequest(method: "GET", target: "/")).body == Array("all of it".utf8))
        let silent = try OneShotServer(answer: nil)
        defer { silent.stop() }
        let slow = try HTTPClient(HTTPClientConfiguration(host: "127.0.0.1", port: silent.port, tls: nil))
        #expect {
            _ = try slow.execute(HTTPClientRequest(method: "GET", target: "/"), timeout: .milliseconds(200))
        } throws: { error in
            guard case NetError.timedOut = error else { return false }
            return true
        }
    }

    @Test func connectionRefusedNamesTheAddress() throws {
        let client = try HTTPClient(HTTPClientConfiguration(host: "127.0.0.1", port: 1, tls: nil))
        #expect {
            _ = try client.execute(HTTPClientRequest(method: "GET", target: "/"))
        } throws: { error in
            "\(error)".contains("127.0.0.1:1")
        }
    }
}

enum TestPKIFactory {
    /// A CA that did not sign the test server's certificate.
    static func otherCA() throws -> [UInt8] {
        let directory = NSTemporaryDirectory() + "berthnet-other-ca-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                         "-keyout", directory + "/ca.key", "-out", directory + "/ca.pem", "-days", "2", "-subj", "/CN=Other CA"])
        guard result.status == 0 else { throw TestFailure(result.stderr) }
        return pem(directory + "/ca.pem")
    }
}

/// A TCP server that reads one request head and answers fixed bytes, then closes
/// (`answer == nil`: never answers, for timeouts).
final class OneShotServer: @unchecked Sendable {  // fd and thread are set once in init
    let port: Int
    private let fd: Int32
    private let thread: Thread
    /// Signalled when the accept thread has returned. `stop()` waits for it before closing the
    /// listener: closing first let the fd number be reused by the next test's server while this
    /// thread still called accept on it, answering another test's client (cross-talk seen in CI).
    private let exited = DispatchSemaphore(value: 0)

    init(answer: [UInt8]?) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 8)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        let listener = fd
        let exited = self.exited
        thread = Thread {
            defer { exited.signal() }
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                if let answer {
                    _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    // Half-close, then drain what the client still sends before closing: closing
                    // with unread bytes makes the kernel send a reset, and the client would see
                    // "connection reset" instead of the answer under test (seen under load).
                    shutdown(client, Int32(SHUT_WR))
                    var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
                    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    while buffer.withUnsafeMutableBytes({ recv(client, $0.baseAddress, $0.count, 0) }) > 0 {}
                    close(client)
                } else {
                    Thread.sleep(forTimeInterval: 1)
                    close(client)
                }
            }
        }
        thread.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))  // wakes the blocked accept, which then returns
        exited.wait()
        close(fd)
    }
}

@Suite("HTTP client: hostile answers")
struct HTTPClientHostileAnswerTests {
    /// Random mutations of a valid chunked answer: every outcome is a response or a NetError,
    /// never a crash or a hang.
    @Test func mutatedAnswersNeverCrash() throws {
        let valid = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n".utf8)
        var generator = SystemRandomNumberGenerator()
        var outcomes = (responses: 0, errors: 0)
        for _ in 0..<60 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes.remove(at: index)
                default: bytes = Array(bytes.prefix(index))
                }
                if bytes.isEmpty { break }
            }
            let server = try OneShotServer(answer: bytes)
            defer { server.stop() }
            let client = try HTTPClient(HTTPClientConfiguration(host: "127.0.0.1", port: server.port, tls: nil))
            do {
                _ = try client.execute(HTTPClientRequest(method: "GET", target: "/"), timeout: .seconds(3))
                outcomes.responses += 1
            } catch {
                outcomes.errors += 1
            }
        }
        #expect(outcomes.responses + outcomes.errors == 60)
    }

    @Test func concurrentCallersShareThePool() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            var tls = TLSClientConfiguration(trustedCAPEM: Array(FileManager.default.contents(atPath: TestPKI.shared.caCertificate)!))
            tls.serverName = "localhost"
            let client = try HTTPClient(HTTPClientConfiguration(host: "127.0.0.1", port: port, tls: tls))
            let failures = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: 6) { worker in
                for index in 0..<20 {
                    let body = Array("w\(worker)-\(index)".utf8)
                    let response = try? client.execute(HTTPClientRequest(method: "POST", target: "/", body: body))
                    if response?.body != body { failures.wrappingAdd(1, ordering: .relaxed) }
                }
            }
            #expect(failures.load(ordering: .relaxed) == 0)
            #expect(client.connectionsOpened <= 6)
        }
    }
}
