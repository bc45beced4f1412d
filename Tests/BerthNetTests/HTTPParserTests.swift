@testable import BerthNet
import Testing

/// Parses `input` fed in pieces of `chunkSize` bytes and returns the events.
private func parse(_ input: String, limits: HTTPParserLimits = .init(maxHeaderBytes: 1024, maxHeaderCount: 20, maxBodyBytes: 1000),
                   chunkSize: Int = .max) -> [HTTPParserEvent] {
    var parser = HTTPParser(limits: limits)
    var events: [HTTPParserEvent] = []
    let bytes = Array(input.utf8)
    var offset = 0
    repeat {
        let end = min(bytes.count, offset + min(chunkSize, bytes.count))
        parser.append(contentsOf: bytes[offset..<end])
        offset = end
        while let event = parser.next() { events.append(event) }
    } while offset < bytes.count
    return events
}

private func errorStatus(_ events: [HTTPParserEvent]) -> Int? {
    for case .error(let error) in events { return error.status }
    return nil
}

private func requests(_ events: [HTTPParserEvent]) -> [HTTPRequest] {
    events.compactMap { if case .request(let request) = $0 { request } else { nil } }
}

struct HTTPParserTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        var name: String
        var input: String
        var method: String
        var target: String
        var path: String
        var body: String
        var keepAlive: Bool
        var testDescription: String { name }
    }

    static let valid: [Valid] = [
        .init(name: "simple GET", input: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", method: "GET", target: "/", path: "/", body: "", keepAlive: true),
        .init(name: "query", input: "POST /mutate?timeout=10s HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
              method: "POST", target: "/mutate?timeout=10s", path: "/mutate", body: "hi", keepAlive: true),
        .init(name: "chunked with extension and trailers",
              input: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
              method: "POST", target: "/c", path: "/c", body: "hello world", keepAlive: true),
        .init(name: "chunked uppercase hex", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
              method: "POST", target: "/", path: "/", body: "0123456789", keepAlive: true),
        .init(name: "connection close", input: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", method: "GET", target: "/", path: "/", body: "", keepAlive: false),
        .init(name: "HTTP/1.0 closes", input: "GET / HTTP/1.0\r\n\r\n", method: "GET", target: "/", path: "/", body: "", keepAlive: false),
        .init(name: "HTTP/1.0 keep-alive", input: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", method: "GET", target: "/", path: "/", body: "", keepAlive: true),
        .init(name: "identical duplicate Content-Length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
              method: "POST", target: "/", path: "/", body: "abc", keepAlive: true),
        .init(name: "leading empty line ignored", input: "\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", method: "GET", target: "/x", path: "/x", body: "", keepAlive: true),
        .init(name: "header value whitespace trimmed", input: "GET / HTTP/1.1\r\nHost:   a \t\r\n\r\n", method: "GET", target: "/", path: "/", body: "", keepAlive: true),
    ]

    @Test(arguments: valid, [Int.max, 1, 7])
    func parsesValidRequests(_ example: Valid, chunkSize: Int) {
        let events = parse(example.input, chunkSize: chunkSize)
        #expect(errorStatus(events) == nil)
        let parsed = requests(events)
        #expect(parsed.count == 1)
        guard let request = parsed.first else { return }
        #expect(request.method == example.method)
        #expect(request.target == example.target)
        #expect(request.path == example.path)
        #expect(String(decoding: request.body, as: UTF8.self) == example.body)
        #expect(request.keepAlive == example.keepAlive)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var name: String
        var input: String
        var status: Int
        var testDescription: String { name }
    }

    static let invalid: [Invalid] = [
        .init(name: "garbage request line", input: "HELLO\r\n\r\n", status: 400),
        .init(name: "two spaces", input: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        .init(name: "bad method char", input: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        .init(name: "bad version", input: "GET / HTTX/1.1\r\nHost: a\r\n\r\n", status: 400),
        .init(name: "HTTP/2.0 in HTTP/1 framing", input: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505),
        .init(name: "HTTP/0.9 version", input: "GET / HTTP/0.9\r\nHost: a\r\n\r\n", status: 505),
        .init(name: "bare LF", input: "GET / HTTP/1.1\nHost: a\n\n", status: 400),
        .init(name: "bare LF in header", input: "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", status: 400),
        .init(name: "obs-fold", input: "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n  z\r\n\r\n", status: 400),
        .init(name: "space before colon", input: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400),
        .init(name: "no colon", input: "GET / HTTP/1.1\r\nHost a\r\n\r\n", status: 400),
        .init(name: "NUL in value", input: "GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", status: 400),
        .init(name: "missing Host", input: "GET / HTTP/1.1\r\n\r\n", status: 400),
        .init(name: "two Hosts", input: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400),
        .init(name: "conflicting Content-Length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: 400),
        .init(name: "conflicting Content-Length list", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd", status: 400),
        .init(name: "negative Content-Length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400),
        .init(name: "Content-Length with sign", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\na", status: 400),
        .init(name: "huge Content-Length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", status: 413),
        .init(name: "Content-Length over limit", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", status: 413),
        .init(name: "CL and TE", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400),
        .init(name: "TE gzip", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501),
        .init(name: "TE not chunked last", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 400),
        .init(name: "TE in HTTP/1.0", input: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400),
        .init(name: "invalid chunk size", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 400),
        .init(name: "negative chunk size", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", status: 400),
        .init(name: "huge chunk size", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", status: 413),
        .init(name: "chunks over body limit", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + String(repeating: "a", count: 1000) + "\r\n1\r\n", status: 413),
        .init(name: "chunk without CRLF", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", status: 400),
        .init(name: "bare LF chunk size", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", status: 400),
        .init(name: "header section too large", input: "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 2000) + "\r\n\r\n", status: 431),
        .init(name: "header too large, unterminated", input: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 2000), status: 431),
        .init(name: "too many headers", input: "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: y\r\n", count: 30) + "\r\n", status: 431),
        .init(name: "unknown expectation", input: "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na", status: 417),
    ]

    @Test(arguments: invalid, [Int.max, 1])
    func rejectsInvalidRequests(_ example: Invalid, chunkSize: Int) {
        let events = parse(example.input, chunkSize: chunkSize)
        #expect(errorStatus(events) == example.status)
        #expect(requests(events).isEmpty)
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let input = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: x\r\n\r\n"
        for chunkSize in [Int.max, 1, 5] {
            let parsed = requests(parse(input, chunkSize: chunkSize))
            #expect(parsed.map(\.path) == ["/a", "/b", "/c"])
            #expect(parsed.count == 3 && parsed[1].body == Array("xyz".utf8))
        }
    }

    /// RFC 9112 §3.2.2: a server must accept the absolute form (a proxy, or the apiserver through
    /// one, may send it); the path is what follows the authority.
    @Test(arguments: [
        ("https://berth.berth-system.svc:443/mutate?timeout=10s", "/mutate"),
        ("HTTP://localhost/mutate", "/mutate"),
        ("https://host:8443", "/"),
        ("https://host?x=1", "/"),
        ("/mutate?x=https://a/b", "/mutate"),
        ("/healthz", "/healthz"),
    ])
    func absoluteFormTargetsGiveTheirPath(target: String, path: String) {
        let parsed = requests(parse("POST \(target) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", chunkSize: .max))
        #expect(parsed.map(\.path) == [path])
        #expect(parsed.map(\.target) == [target])
    }

    /// A body past the server's memory budget is refused (503) from its head or its chunk size,
    /// before the bytes arrive.
    @Test func bodiesPastTheBudgetAre503BeforeTheyArrive() {
        var fixed = HTTPParser()
        fixed.bodyBudget = 1000
        fixed.append(contentsOf: Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n".utf8))
        #expect(errorStatus(Array(sequence(state: fixed) { $0.next() })) == 503)
        var chunked = HTTPParser()
        chunked.bodyBudget = 1000
        chunked.append(contentsOf: Array("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n".utf8))
        #expect(errorStatus(Array(sequence(state: chunked) { $0.next() })) == nil)  // 1000 fits
        chunked.append(contentsOf: Array(repeating: UInt8(ascii: "a"), count: 1000) + Array("\r\n1\r\n".utf8))
        #expect(errorStatus(Array(sequence(state: chunked) { $0.next() })) == 503)
        var within = HTTPParser()
        within.bodyBudget = 1000
        within.append(contentsOf: Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".utf8))
        #expect(within.next() == nil && !within.hasFailed)
        #expect(within.promisedBodyBytes == 1000)
    }

    @Test func expectContinueIsSignalledBeforeTheBody() {
        var parser = HTTPParser()
        parser.append(contentsOf: Array("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        guard case .continueExpected = parser.next() else { Issue.record("no continue"); return }
        #expect(parser.next() == nil)
        #expect(parser.hasPartialRequest)
        parser.append(contentsOf: Array("abc".utf8))
        guard case .request(let request) = parser.next() else { Issue.record("no request"); return }
        #expect(request.body == Array("abc".utf8))
        #expect(!parser.hasPartialRequest)
    }

    @Test func headersAreOrderedAndCaseInsensitive() {
        let parsed = requests(parse("GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nx-one: 2\r\nContent-Type: t\r\n\r\n"))
        #expect(parsed.first?.headers["X-ONE"] == "1")
        #expect(parsed.first?.headers.values(for: "x-one") == ["1", "2"])
        #expect(parsed.first?.headers["content-type"] == "t")
        #expect(parsed.first?.headers.map(\.name) == ["Host", "X-One", "x-one", "Content-Type"])
    }

    @Test func failedParserStaysFailed() {
        var parser = HTTPParser()
        parser.append(contentsOf: Array("BAD\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        guard case .error(let error) = parser.next() else { Issue.record("expected error"); return }
        #expect(error.status == 400)
        #expect(parser.next() == nil)
    }

    @Test(arguments: [(204, false, "HTTP/1.1 204 No Content\r\n\r\n"),
                      (200, true, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")])
    func bodylessAnswers(status: Int, head: Bool, expected: String) {
        var buffer: [UInt8] = []
        HTTPResponse(status: status, body: Array("abc".utf8))
            .serialize(into: &buffer, keepAlive: true, requestVersion: .http1_1, omitBody: head)
        #expect(String(decoding: buffer, as: UTF8.self) == expected)
    }

    @Test func http10KeepAliveIsConfirmed() {
        var buffer: [UInt8] = []
        HTTPResponse(status: 200).serialize(into: &buffer, keepAlive: true, requestVersion: .http1_0, omitBody: false)
        #expect(String(decoding: buffer, as: UTF8.self) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func responseSerializationAlwaysSetsContentLength() {
        var response = HTTPResponse(status: 201, headers: ["Content-Length": "999", "X-A": "b\r\nInjected: yes"], body: Array("hey".utf8))
        response.headers.add(name: "Transfer-Encoding", value: "chunked")
        var buffer: [UInt8] = []
        response.serialize(into: &buffer, keepAlive: false, requestVersion: .http1_1, omitBody: false)
        #expect(String(decoding: buffer, as: UTF8.self) == "HTTP/1.1 201 Created\r\nX-A: bInjected: yes\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhey")
    }
}

extension HTTPParserEvent: Equatable {
    public static func == (lhs: HTTPParserEvent, rhs: HTTPParserEvent) -> Bool {
        switch (lhs, rhs) {
        case (.continueExpected, .continueExpected): true
        case let (.error(a), .error(b)): a == b
        case let (.request(a), .request(b)): a.target == b.target && a.body == b.body
        default: false
        }
    }
}

@Suite struct PercentEncodingTests {
    @Test(arguments: [
        ("AZaz09-._~", false, "AZaz09-._~"),
        ("a b+c", false, "a%20b%2Bc"),
        ("ns/pod name", false, "ns%2Fpod%20name"),
        ("/api/v1/pods", true, "/api/v1/pods"),
        ("é=€", false, "%C3%A9%3D%E2%82%AC"),
        ("", false, ""),
    ])
    func unreservedStayOthersAreEncoded(text: String, keepSlash: Bool, expected: String) {
        #expect(PercentEncoding.encode(text, keepSlash: keepSlash) == expected)
    }
}
