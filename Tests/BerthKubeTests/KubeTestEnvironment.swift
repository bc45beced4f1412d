import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthTestSupport
import Foundation
import Logging
import Synchronization

/// One throwaway CA and server certificate per test process, plus a client certificate.
let kubePKI: TestPKI = {
    let pki = try! TestPKI.make(label: "berthkube")
    try! pki.issue(name: "client", serial: "2002", commonName: "berth-client", client: true)
    return pki
}()

func readBytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

/// A fake apiserver and a client for it over real TLS; always stopped by `withFakeCluster`.
struct FakeCluster {
    let server: FakeKubeAPIServer
    let client: KubeClient

    static func configuration(port: Int, token: String = "test-token") -> KubeClientConfiguration {
        var configuration = KubeClientConfiguration(host: "localhost", port: port,
                                                    tls: TLSClientConfiguration(trustedCAPEM: readBytes(kubePKI.caCertificate)),
                                                    credentials: .bearerToken(token))
        configuration.qps = 0  // tests measure behaviour, not the limiter (tested on its own)
        configuration.timeout = .seconds(10)
        return configuration
    }
}

func withFakeCluster<T>(options: FakeKubeAPIServer.Options = .init(),
                        adjust: (inout KubeClientConfiguration) -> Void = { _ in },
                        _ body: (FakeCluster) throws -> T) throws -> T {
    let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey, options: options)
    defer { server.stop() }
    var configuration = FakeCluster.configuration(port: server.port)
    adjust(&configuration)
    let client = try KubeClient(configuration)
    return try body(FakeCluster(server: server, client: client))
}

func pod(_ name: String, namespace: String = "default", labels: [String: String] = [:], ready: Bool = true,
         phase: String = "Running", gpus: Int = 0, node: String? = nil) -> JSON {
    var labelObject = JSONObject()
    for (key, value) in labels.sorted(by: { $0.key < $1.key }) { labelObject[key] = .string(value) }
    var container: JSONObject = ["name": "main", "image": "busybox"]
    if gpus > 0 { container["resources"] = ["limits": ["nvidia.com/gpu": .string(String(gpus))]] }
    var spec: JSONObject = ["containers": [.object(container)]]
    if let node { spec["nodeName"] = .string(node) }
    return [
        "apiVersion": "v1", "kind": "Pod",
        "metadata": ["name": .string(name), "namespace": .string(namespace), "labels": .object(labelObject)],
        "spec": .object(spec),
        "status": ["phase": .string(phase), "conditions": [["type": "Ready", "status": .string(ready ? "True" : "False")]]],
    ]
}

func fixture(_ name: String) throws -> JSON {
    let path = Repository.kubernetesAPIFixtures.appendingPathComponent(name).path
    return try JSONParser.parse(readBytes(path))
}

extension WatchBackoff {
    /// Short waits for tests that run on the real clock.
    static let fast = WatchBackoff(initial: .milliseconds(10), cap: .milliseconds(100), minimumWatch: .milliseconds(200))
}

/// An informer clock that never sleeps: each wait moves its time forward at once and is recorded,
/// so a test reads exactly when the informer would have acted.
final class SteppingClock: InformerClock {
    private let state = Mutex<(now: Duration, waits: [Duration])>((.zero, []))
    var now: Duration { state.withLock { $0.now } }
    var waits: [Duration] { state.withLock { $0.waits } }
    func wait(_ duration: Duration, interrupt: DispatchSemaphore) {
        state.withLock { state in
            state.now += duration
            state.waits.append(duration)
        }
    }
}

/// Keeps every log record (level, message, metadata) for assertions.
final class LogRecorder: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }
    private let records = Mutex<[Record]>([])
    var all: [Record] { records.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var merged: [String: String] = [:]
            for (key, value) in metadata { merged[key] = "\(value)" }
            for (key, value) in event.metadata ?? [:] { merged[key] = "\(value)" }
            recorder.records.withLock { $0.append(Record(level: event.level, message: "\(event.message)", metadata: merged)) }
        }
    }
}
