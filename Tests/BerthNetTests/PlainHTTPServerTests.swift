import BerthNet
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// Server behaviour over plain TCP (the metrics-port mode), driven with raw sockets.
@Suite struct PlainHTTPServerTests {
    @Test func echoesAndKeepsAlive() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            for i in 0..<3 {
                client.send("POST /echo?i=\(i) HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                let answer = client.read(until: "hello")
                #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(answer.contains("X-Target: /echo?i=\(i)\r\n"))
                #expect(answer.contains("Content-Length: 5\r\n"))
            }
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            client.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\nPOST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let answer = client.readToEnd()
            let paths = answer.components(separatedBy: "\r\n").filter { $0.hasPrefix("X-Path: ") }
            #expect(paths == ["X-Path: /first", "X-Path: /second", "X-Path: /third"])
            #expect(answer.contains("Connection: close"))
        }
    }

    /// Requests on many connections become ready together and are read, answered and written in
    /// passes over the whole epoll batch: every connection must get its own answers, in order,
    /// including one that pipelines a second request and one that asks to close.
    @Test func manyConnectionsReadyAtOnceEachGetTheirOwnAnswers() throws {
        try withServer { _, port in
            let clients = try (0..<24).map { _ in try RawClient(port: port) }
            func body(_ index: Int) -> String { "b" + String(format: "%02d", index) }
            for (index, client) in clients.enumerated() {
                let connection = index == 7 ? "Connection: close\r\n" : ""
                var request = "POST /c\(index) HTTP/1.1\r\nHost: x\r\n\(connection)Content-Length: 3\r\n\r\n\(body(index))"
                if index == 5 { request += "GET /c5-second HTTP/1.1\r\nHost: x\r\n\r\n" }
                client.send(request)
            }
            for (index, client) in clients.enumerated() {
                let answer = switch index {
                case 5: client.read(until: "X-Path: ", count: 2)
                case 7: client.readToEnd()
                default: client.read(until: body(index))
                }
                let paths = answer.components(separatedBy: "\r\n").filter { $0.hasPrefix("X-Path: ") }
                #expect(paths == (index == 5 ? ["X-Path: /c5", "X-Path: /c5-second"] : ["X-Path: /c\(index)"]), "connection \(index)")
                #expect(answer.contains(body(index)), "connection \(index)")
            }
        }
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var name: String
        var request: String
        var status: String
        var testDescription: String { name }
    }

    static let errorCases: [ErrorCase] = [
        .init(name: "malformed request line", request: "NOT A REQUEST\r\n\r\n", status: "HTTP/1.1 400 Bad Request"),
        .init(name: "bad version", request: "GET / HTTP/3.0\r\nHost: x\r\n\r\n", status: "HTTP/1.1 505 HTTP Version Not Supported"),
        .init(name: "unsupported transfer coding", request: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: "HTTP/1.1 501 Not Implemented"),
        .init(name: "header flood", request: "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Flood: " + String(repeating: "f", count: 100) + "\r\n", count: 400) + "\r\n",
              status: "HTTP/1.1 431 Request Header Fields Too Large"),
        .init(name: "body too large", request: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n" + String(repeating: "b", count: 100_000),
              status: "HTTP/1.1 413 Content Too Large"),
    ]

    @Test(arguments: errorCases)
    func protocolErrorsAreAnsweredThenClosed(_ example: ErrorCase) throws {
        let observer = RecordingObserver()
        try withServer(observer: observer) { _, port in
            let client = try RawClient(port: port)
            client.send(example.request)
            let answer = client.readToEnd()  // returns only once the server closed
            #expect(answer.hasPrefix(example.status + "\r\n"))
            #expect(answer.contains("Connection: close\r\n"))
            #expect(answer.contains("Content-Type: text/plain"))
            #expect(waitUntil { observer.statuses.count == 1 })
            #expect(observer.statuses.first.map { example.status.contains(String($0)) } == true)
        }
    }

    @Test func chunkedBodyIsDecoded() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            client.send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: t\r\n\r\n")
            let answer = client.readToEnd()
            #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
            #expect(answer.hasSuffix("\r\n\r\nWikipedia"))
        }
    }

    @Test func expectContinueIsAnswered() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            client.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            #expect(client.read(until: "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n")
            client.send("data")
            #expect(client.read(until: "data").hasPrefix("HTTP/1.1 200 OK"))
        }
    }

    @Test func stalledRequestTimesOutWhileOthersAreServed() throws {
        let configuration = testConfiguration { $0.requestReadTimeout = .milliseconds(700); $0.eventLoopCount = 1 }
        let observer = RecordingObserver()
        try withServer(configuration: configuration, observer: observer) { _, port in
            // A generous receive timeout: the 408 comes after 0.7 s, later on a loaded machine.
            let stalled = try RawClient(port: port, receiveTimeout: 20)
            stalled.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
            // Same loop, served at once while the other one stalls.
            let other = try RawClient(port: port, receiveTimeout: 20)
            other.send("GET /quick HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(other.readToEnd().hasPrefix("HTTP/1.1 200 OK"))
            let answer = stalled.readToEnd()
            #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout"))
            #expect(waitUntil { observer.statuses.contains(408) })
        }
    }

    @Test func idleConnectionsAreClosedAfterIdleTimeout() throws {
        let configuration = testConfiguration { $0.idleTimeout = .milliseconds(300) }
        try withServer(configuration: configuration) { server, port in
            let client = try RawClient(port: port)
            client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            #expect(client.readToEnd().isEmpty)  // EOF from the server, not the 10 s receive timeout
            #expect(waitUntil { server.connectionCount == 0 })
        }
    }

    @Test func http10WithoutKeepAliveCloses() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            client.send("GET /old HTTP/1.0\r\n\r\n")
            let answer = client.readToEnd()
            #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
            #expect(answer.contains("Connection: close"))
        }
    }

    /// A full table makes room for a new connection by closing the one idle longest: a client
    /// holding thousands of idle connections can no longer lock everyone else out.
    @Test func aFullTableGivesTheLongestIdleConnectionsPlaceToANewOne() throws {
        let configuration = testConfiguration { $0.maxConnections = 2; $0.eventLoopCount = 1 }
        try withServer(configuration: configuration) { server, port in
            let first = try RawClient(port: port, receiveTimeout: 5)
            let second = try RawClient(port: port)
            #expect(waitUntil { server.connectionCount == 2 })
            let third = try RawClient(port: port)
            third.send("GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(third.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            #expect(first.readToEnd().isEmpty)  // the longest idle went
            second.send("GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(second.readToEnd().hasPrefix("HTTP/1.1 200"))
            #expect(server.evictedConnectionCount == 1)
        }
    }

    /// Only when every connection is mid-request is a new one closed at once.
    @Test func aFullTableOfBusyConnectionsRefusesNewOnes() throws {
        let configuration = testConfiguration { $0.maxConnections = 2; $0.eventLoopCount = 1 }
        try withServer(configuration: configuration) { server, port in
            let first = try RawClient(port: port)
            first.send("GET /first HTTP/1.1\r\n")  // a request under way
            let second = try RawClient(port: port)
            // A whole request and the start of the next: once /a is answered, both connections'
            // bytes have been read (first's were sent earlier), so both are mid-request.
            second.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n")
            #expect(second.read(until: "X-Path: /a").hasPrefix("HTTP/1.1 200"))
            let third = try RawClient(port: port, receiveTimeout: 5)
            third.send("GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(third.readToEnd().isEmpty)  // closed at once, unanswered
            first.send("Host: x\r\nConnection: close\r\n\r\n")
            #expect(first.readToEnd().hasPrefix("HTTP/1.1 200"))
            #expect(server.evictedConnectionCount == 0)
            #expect(server.refusedConnectionCount.tableFull == 1)
        }
    }

    /// One client address may keep only its share of connections waiting (idle or handshaking);
    /// another client still gets in.
    @Test func aClientOverItsShareOfIdleConnectionsIsRefusedOthersAreNot() throws {
        let configuration = testConfiguration { $0.maxWaitingConnectionsPerClient = 3; $0.eventLoopCount = 1 }
        try withServer(configuration: configuration) { server, port in
            let idle = try (0..<3).map { _ in try RawClient(port: port) }
            #expect(waitUntil { server.connectionCount == 3 })
            let fourth = try RawClient(port: port, receiveTimeout: 5)
            fourth.send("GET /fourth HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(fourth.readToEnd().isEmpty)  // closed at once, unanswered
            #expect(server.refusedConnectionCount.perClient == 1)
            let other = try RawClient(port: port, source: "127.0.0.2")
            other.send("GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(other.readToEnd().hasPrefix("HTTP/1.1 200"))
            // A busy connection is not waiting: the client gets one more while one of its idle ones works.
            idle[0].send("GET /slow HTTP/1.1\r\n")
            idle[1].send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(idle[1].read(until: "X-Path: /x").hasPrefix("HTTP/1.1 200"))
            let fifth = try RawClient(port: port)
            fifth.send("GET /fifth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(fifth.readToEnd().hasPrefix("HTTP/1.1 200"))
        }
    }

    /// Bodies held or promised by all connections stay within maxBufferedBytes: a body that would
    /// go past it gets 503 with Retry-After before it is read, and the budget comes back.
    @Test func bodiesPastTheMemoryBudgetGet503AndTheBudgetComesBack() throws {
        let configuration = testConfiguration { $0.maxBufferedBytes = 1 << 20; $0.eventLoopCount = 1 }
        try withServer(configuration: configuration) { server, port in
            let slow = try RawClient(port: port)
            slow.send("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 800000\r\n\r\n" + String(repeating: "a", count: 100_000))
            // One loop: once another request is answered, slow's head has been read and accounted.
            let probe = try RawClient(port: port)
            probe.send("GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(probe.readToEnd().hasPrefix("HTTP/1.1 200"))
            #expect(server.bufferedByteCount == 800_000)
            let refused = try RawClient(port: port)
            refused.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n")
            let answer = refused.readToEnd()
            #expect(answer.hasPrefix("HTTP/1.1 503"), "\(answer)")
            #expect(answer.contains("Retry-After: 1\r\n"))
            #expect(server.overBudgetCount == 1)
            slow.send(String(repeating: "b", count: 700_000))
            #expect(slow.read(until: "X-Path: /slow").hasPrefix("HTTP/1.1 200"))
            let retried = try RawClient(port: port)
            retried.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\nConnection: close\r\n\r\n" + String(repeating: "c", count: 400_000))
            #expect(retried.readToEnd().hasPrefix("HTTP/1.1 200"))
            #expect(waitUntil { server.bufferedByteCount == 0 })
        }
    }

    /// SO_REUSEPORT lets a second server of the same user bind the same port and take part of
    /// the connections; Berth's start refuses instead, naming the port.
    @Test func aSecondServerOnTheSamePortFailsToStart() throws {
        try withServer { _, port in
            let second = HTTPServer(configuration: testConfiguration { $0.port = port }, tls: nil, responder: EchoResponder(), logger: testLogger)
            #expect {
                _ = try second.start()
                _ = second.shutdown(timeout: .zero)
            } throws: { error in
                "\(error)".contains("port \(port) is already served by another listener")
            }
            let client = try RawClient(port: port)
            client.send("GET /still-ours HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(client.readToEnd().contains("X-Path: /still-ours"))
        }
    }

    @Test func bindFailureIsAClearError() throws {
        // A plain listener without SO_REUSEPORT holds the port.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let server = HTTPServer(configuration: testConfiguration { $0.port = port }, tls: nil, responder: EchoResponder(), logger: testLogger)
        #expect {
            _ = try server.start()
        } throws: { "\($0)".contains("bind(127.0.0.1:\(port)) failed: Address already in use") }
        #expect(server.shutdown(timeout: .seconds(1)))
    }

    @Test func shutdownLetsInFlightRequestFinish() throws {
        let entered = Atomic<Bool>(false)
        let responder = HTTPResponderFunction { request in
            entered.store(true, ordering: .relaxed)
            usleep(300_000)
            return HTTPResponse(status: 200, body: Array("slow".utf8))
        }
        let server = HTTPServer(configuration: testConfiguration(), tls: nil, responder: responder, logger: testLogger)
        let port = try server.start()
        let idle = try RawClient(port: port)
        let client = try RawClient(port: port)
        client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(waitUntil { entered.load(ordering: .relaxed) })
        #expect(server.shutdown(timeout: .seconds(5)))
        let answer = client.readToEnd()
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
        #expect(answer.hasSuffix("slow"))
        #expect(idle.readToEnd().isEmpty)
        #expect(throws: (any Error).self) { _ = try RawClient(port: port) }
    }
}
