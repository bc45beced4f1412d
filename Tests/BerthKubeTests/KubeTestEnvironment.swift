import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthTestSupport
import Foundation

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
