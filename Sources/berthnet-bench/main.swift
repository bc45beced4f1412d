// A throughput harness for BerthNet: serves a fixed ~1 KB answer to every request until SIGTERM/SIGINT.
//   swift build -c release --product berthnet-bench
//   .build/release/berthnet-bench <port> [cert.pem key.pem]     (no cert: plain HTTP)
//   wrk -t2 -c64 -d10s -s Tests/bench/post.lua https://127.0.0.1:<port>/mutate
import BerthNet
import Logging

blockTerminationSignals()

struct FixedResponder: HTTPResponder {
    let body = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
    func respond(to request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: body)
    }
}

let arguments = CommandLine.arguments
var logger = Logger(label: "berthnet-bench")
logger.logLevel = .info
var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: arguments.count > 1 ? Int(arguments[1]) ?? 8443 : 8443)
if let loops = arguments.count > 4 ? Int(arguments[4]) : nil { configuration.eventLoopCount = loops }
let tls = arguments.count > 3
    ? try TLSContextStore(configuration: TLSServerConfiguration(certificateFile: arguments[2], privateKeyFile: arguments[3]), logger: logger)
    : nil
let server = HTTPServer(configuration: configuration, tls: tls, responder: FixedResponder(), logger: logger)
let port = try server.start()
logger.info("listening", metadata: ["port": "\(port)"])
let signal = waitForTerminationSignal()
logger.info("signal \(signal); shutting down")
print(server.shutdown(timeout: .seconds(5)))
