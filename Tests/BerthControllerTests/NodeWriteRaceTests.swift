import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// On EKS a new node is written by the kubelet, the node lifecycle controller, the VPC CNI and the
/// GPU operator at the moment Berth labels and taints it. Here a second writer changes the node
/// before every one of Berth's writes lands: Berth's labels and taint still go on at the first or
/// second try, and nothing the other writer did is lost.
@Suite struct NodeWriteRaceTests {
    @Test func berthsLabelsAndTaintsSurviveASecondWriterOnTheSameNode() async throws {
        let server = try FakeKubeAPIServer(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        defer { server.stop() }
        let notReady: JSON = ["key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"]
        server.write(.nodes, [
            "apiVersion": "v1", "kind": "Node",
            "metadata": ["name": "gpu-1", "labels": ["kubernetes.io/hostname": "gpu-1"]],
            "spec": ["providerID": "aws:///us-east-1a/i-1", "taints": [notReady]],
        ])
        let writes = Atomic<Int>(0)
        // Before each of Berth's writes: the GPU operator adds a label, the kubelet a heartbeat
        // annotation; before the second (the taints), the node lifecycle controller drops not-ready.
        for method in ["PUT", "PATCH"] {
            server.beforeRequest(method: method, pathContains: "/api/v1/nodes/gpu-1") {
                let count = writes.wrappingAdd(1, ordering: .relaxed).newValue
                server.modify(.nodes, name: "gpu-1") { node in
                    guard case .object(var top) = node else { return }
                    var metadata = top["metadata"]?.objectValue ?? [:]
                    var labels = metadata["labels"]?.objectValue ?? [:]
                    labels["nvidia.com/gpu.present.\(count)"] = "true"
                    metadata["labels"] = .object(labels)
                    metadata["annotations"] = ["node.alpha.kubernetes.io/heartbeat": .string(String(count))]
                    top["metadata"] = .object(metadata)
                    if count == 2, case .object(var spec)? = top["spec"] {
                        spec["taints"] = .array([])
                        top["spec"] = .object(spec)
                    }
                    node = .object(top)
                }
            }
        }
        var configuration = KubeClientConfiguration(
            host: "localhost", port: server.port, tls: TLSClientConfiguration(trustedCAPEM: readBytes(pki.caCertificate)), credentials: .bearerToken("test-token"))
        configuration.qps = 0
        let cluster = KubeCluster(client: try KubeClient(configuration), identity: "berth-test")
        let disrupted = Taint(key: "berth.dev/disrupted", effect: "NoSchedule")
        try await cluster.updateNode(name: "gpu-1", labels: ["berth.dev/pool": "gpu", "karpenter.sh/nodepool": "gpu"],
                                     addTaints: [disrupted], removeTaints: [])
        let node = try #require(server.object(.nodes, name: "gpu-1"))
        let labels = node["metadata"]?["labels"]?.objectValue ?? [:]
        #expect(labels["berth.dev/pool"] == "gpu" && labels["karpenter.sh/nodepool"] == "gpu")
        #expect(labels["kubernetes.io/hostname"] == "gpu-1")
        // Every label the other writer added before each of Berth's writes is still there.
        let count = writes.load(ordering: .relaxed)
        #expect((1...count).allSatisfy { labels["nvidia.com/gpu.present.\($0)"] == "true" })
        // not-ready was removed by the other writer and stays removed; Berth's taint is on.
        #expect(node["spec"]?["taints"] == [disrupted.json])
        #expect(node["spec"]?["providerID"] == "aws:///us-east-1a/i-1")
        // Patches only: a labels patch, and the taints patch twice (the first one's test failed).
        let methods = server.requests.filter { $0.contains("/api/v1/nodes/gpu-1") && !$0.hasPrefix("GET") }.map { String($0.prefix { $0 != " " }) }
        #expect(methods == ["PATCH", "PATCH", "PATCH"])
    }
}
