import BerthNet
import Foundation
import Logging
import Synchronization

/// A plain-HTTP BerthNet server on 127.0.0.1 with a port of its own, answering with `handler` and
/// recording every request: the STS, container, IMDS and fault-injecting EC2 stand-ins.
final class StubServer: Sendable {
    let port: Int
    private let server: HTTPServer
    private let recorded: Recorder

    private final class Recorder: Sendable {
        let list = Mutex<[HTTPRequest]>([])
    }

    init(_ handler: @escaping @Sendable (HTTPRequest, Int) -> HTTPResponse) throws {
        let recorded = Recorder()
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.eventLoopCount = 1
        var logger = Logger(label: "berth-aws-stub")
        logger.logLevel = .warning
        server = HTTPServer(configuration: configuration, tls: nil, responder: HTTPResponderFunction { request in
            let index = recorded.list.withLock { list in
                list.append(request)
                return list.count - 1
            }
            return handler(request, index)
        }, logger: logger)
        self.recorded = recorded
        port = try server.start()
    }

    var requests: [HTTPRequest] { recorded.list.withLock { $0 } }
    var url: String { "http://127.0.0.1:\(port)" }

    func shutdown() { _ = server.shutdown(timeout: .seconds(5)) }

    /// The decoded form fields of a Query API request.
    static func form(_ request: HTTPRequest) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: request.body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let plus = text.replacingOccurrences(of: "+", with: " ")
                return plus.removingPercentEncoding ?? plus
            }
            let name = decode(parts[0])
            let value = parts.count > 1 ? decode(parts[1]) : ""
            fields[name] = value
        }
        return fields
    }

    static func xml(_ status: Int, _ body: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/xml"], body: Array(body.utf8))
    }

    static func ec2Error(_ status: Int, code: String, message: String) -> HTTPResponse {
        xml(status, """
            <?xml version="1.0" encoding="UTF-8"?>
            <Response><Errors><Error><Code>\(code)</Code><Message>\(message)</Message></Error></Errors><RequestID>req-\(code)</RequestID></Response>
            """)
    }
}

/// A temporary directory removed by `remove()`.
struct TempDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "berth-aws-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date = Date(timeIntervalSince1970: 1_796_035_845)) { current = Mutex(start) }
    var now: Date { current.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    var function: @Sendable () -> Date { { self.now } }
}
