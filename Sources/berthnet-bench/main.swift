// A throughput harness for BerthNet: serves a fixed ~1 KB answer to every request until SIGTERM/SIGINT.
//   swift build -c release --product berthnet-bench
//   .build/release/berthnet-bench <port> [cert.pem key.pem [event-loops [busy-µs]]]     (no cert: plain HTTP)
//   wrk -t2 -c64 -d10s -s Tests/bench/post.lua https://127.0.0.1:<port>/mutate
// `busy-µs` spins that long in the responder before answering: a stand-in for a handler's cost,
// to measure what the server's latency tail can afford per request (see BENCHMARKS.md).
import BerthNet
import Glibc
import Logging

blockTerminationSignals()

struct FixedResponder: HTTPResponder {
    let body = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
    let busyNanoseconds: UInt64

    func respond(to request: HTTPRequest) -> HTTPResponse {
        if busyNanoseconds > 0 {
            let start = Self.now()
            while Self.now() &- start < busyNanoseconds {}
        }
        return HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: body)
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

let arguments = CommandLine.arguments
let busyMicroseconds = arguments.count > 5 ? UInt64(arguments[5]) ?? 0 : 0
var logger = Logger(label: "berthnet-bench")
logger.logLevel = .info
var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: arguments.count > 1 ? Int(arguments[1]) ?? 8443 : 8443)
if let loops = arguments.count > 4 ? Int(arguments[4]) : nil { configuration.eventLoopCount = loops }
let tls = arguments.count > 3
    ? try TLSContextStore(configuration: TLSServerConfiguration(certificateFile: arguments[2], privateKeyFile: arguments[3]), logger: logger)
    : nil
let server = HTTPServer(configuration: configuration, tls: tls, responder: FixedResponder(busyNanoseconds: busyMicroseconds * 1000), logger: logger)
let port = try server.start()
logger.info("listening", metadata: ["port": "\(port)"])
let signal = waitForTerminationSignal()
logger.info("signal \(signal); shutting down")
print(server.shutdown(timeout: .seconds(5)))
