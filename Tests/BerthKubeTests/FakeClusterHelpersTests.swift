import BerthKube
import BerthKubeSim
import BerthModel
import BerthTestSupport
import Foundation
import Testing

/// The kubelet and scheduler doubles, driven the way the provisioner's tests will use them.
@Suite struct FakeClusterHelpersTests {
    @Test func gpuNotebookWaitsForTheDevicePluginThenRuns() throws {
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey)
        defer { server.stop() }
        let client = try KubeClient(FakeCluster.configuration(port: server.port))
        let kubelet = FakeKubelet(server: server)
        let scheduler = FakeScheduler(server: server)
        let informer = Informer(client: client, resource: .pods, backoff: .fast)
        informer.start()
        defer { informer.stop() }

        var notebook = pod("jupyter-ada", namespace: "hub", labels: ["component": "singleuser-server"], ready: false, phase: "Pending", gpus: 1)
        if case .object(var top) = notebook, case .object(var spec)? = top["spec"] {
            spec["tolerations"] = [["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"]]
            spec["affinity"] = ["nodeAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": ["nodeSelectorTerms": [
                ["matchExpressions": [["key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]]]],
            ]]]]
            top["spec"] = .object(spec)
            notebook = .object(top)
        }
        _ = try client.create(.pods, namespace: "hub", notebook)
        kubelet.registerNode(name: "cpu-1")  // untainted CPU node: affinity keeps the notebook off it

        #expect(scheduler.schedulePendingPods().unschedulable == ["hub/jupyter-ada"])
        #expect(waitUntil { informer.get("hub/jupyter-ada").flatMap { try? Pod(json: $0) }?.unschedulableReason == "Unschedulable" })

        // The provisioner would launch an instance; the kubelet registers it, GPUs come later.
        kubelet.registerNode(name: "gpu-1", providerID: "aws:///us-east-1a/i-0abc", labels: ["nvidia.com/gpu.present": "true"],
                             taints: [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")])
        #expect(scheduler.schedulePendingPods().bound.isEmpty)  // no nvidia.com/gpu allocatable yet
        kubelet.advertise(node: "gpu-1", quantity: 1)
        #expect(scheduler.schedulePendingPods().bound == ["hub/jupyter-ada": "gpu-1"])
        #expect(kubelet.runPods(on: "gpu-1") == ["hub/jupyter-ada"])
        #expect(waitUntil { informer.get("hub/jupyter-ada").flatMap { try? Pod(json: $0) }.map { $0.isReady && $0.nodeName == "gpu-1" } ?? false })

        // A second GPU pod does not fit the one-GPU node, and ordinary pods stay off the tainted node.
        _ = try client.create(.pods, namespace: "hub", pod("second", namespace: "hub", phase: "Pending", gpus: 1))
        _ = try client.create(.pods, namespace: "hub", pod("web", namespace: "hub", phase: "Pending"))
        let outcome = scheduler.schedulePendingPods()
        #expect(outcome.unschedulable == ["hub/second"])
        #expect(outcome.bound == ["hub/web": "cpu-1"])
        let gpuNode = try Node(json: try client.get(.nodes, name: "gpu-1"))
        #expect(gpuNode.allocatable["nvidia.com/gpu"] == Quantity(1))
        #expect(gpuNode.providerID == "aws:///us-east-1a/i-0abc")
    }

    /// `launch` sleeps on the clock it is given, then registers, then advertises GPUs.
    @Test func launchRegistersThenAdvertises() async throws {
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey)
        defer { server.stop() }
        try await FakeKubelet(server: server).launch(name: "gpu-2", providerID: "aws:///i-2", gpus: 4,
                                                    registerAfter: .milliseconds(5), gpusAfter: .milliseconds(5), clock: ContinuousClock())
        let node = try Node(json: try #require(server.object(.nodes, name: "gpu-2")))
        #expect(node.isReady && node.allocatable["nvidia.com/gpu"] == Quantity(4))
    }
}
