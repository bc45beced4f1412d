import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// The simulated kubelet on the embedded API server while its instance is stopped and started
/// again (warm capacity's stopped tier): the Node object stays, NotReady, and comes back Ready with
/// its GPUs after the start — what `berth serve --simulated` shows.
@Suite(.serialized) struct SimulatedNodesStopStartTests {
    func readyStatus(_ world: StoryWorld, _ name: String) -> String? {
        world.server.object(.nodes, name: name)?["status"]?["conditions"]?.arrayValue?
            .first { $0["type"]?.stringValue == "Ready" }?["status"]?.stringValue
    }

    func taintKeys(_ world: StoryWorld, _ name: String) -> [String] {
        world.server.object(.nodes, name: name)?["spec"]?["taints"]?.arrayValue?.compactMap { $0["key"]?.stringValue } ?? []
    }

    func gpus(_ world: StoryWorld, _ name: String) -> String? {
        world.server.object(.nodes, name: name)?["status"]?["allocatable"]?["nvidia.com/gpu"]?.stringValue
    }

    @Test func aStoppedInstancesNodeStaysNotReadyAndComesBackWithItsGPUsOnStart() async throws {
        let world = try StoryWorld()
        let type = InstanceCatalog.builtIn()["g4dn.xlarge"]!
        let instance = try await world.cloud.create(LaunchRequest(
            launchID: "warm-1", cluster: world.config.clusterName, pool: "gpu", candidates: [type],
            labels: ["berth.dev/pool": "gpu"], taints: Pool.defaultTaints))
        let id = instance.providerID
        let name = SimulatedNodes<ManualClock>.nodeName(providerID: id)
        // Launched at 0: Ready at 60 s, GPUs at 80 s (the world's fixed delays).
        try await world.tick(81, replicas: [])
        #expect(readyStatus(world, name) == "True")
        #expect(gpus(world, name) == "1")
        let uid = world.server.object(.nodes, name: name)?["metadata"]?["uid"]?.stringValue

        try await world.cloud.stop(providerID: id)
        try await world.tick(1, replicas: [])
        let stopped = try #require(world.server.object(.nodes, name: name), "the Node object stays")
        #expect(readyStatus(world, name) == "Unknown")
        #expect(!taintKeys(world, name).contains("node.cloudprovider.kubernetes.io/shutdown"), "stopping is not shut down yet")
        let ready = stopped["status"]?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Ready" }
        #expect(ready?["reason"]?.stringValue == "NodeStatusUnknown")
        #expect(stopped["metadata"]?["labels"]?["berth.dev/pool"]?.stringValue == "gpu")
        #expect(stopped["spec"]?["providerID"]?.stringValue == id)

        // A notebook arriving now is not placed on the NotReady node.
        _ = world.server.write(.pods, try notebookPod("alice"))
        let stoppedAt = try #require(try await world.cloud.boot(of: id).stoppedAt)
        #expect(try await world.tick(until: { world.cloud.wallTime.clock.now >= stoppedAt }, replicas: []) != nil)
        try await world.tick(30, replicas: [])
        #expect(try await world.cloud.get(providerID: id).state == .stopped)
        #expect(readyStatus(world, name) == "Unknown")
        #expect(world.podNode("jhub/alice") == nil)
        #expect(taintKeys(world, name).contains("node.cloudprovider.kubernetes.io/shutdown"), "the CCM's taint once stopped")
        #expect(taintKeys(world, name).contains("nvidia.com/gpu"), "its own taints kept")

        // Started: NotReady until the new readyAt, Ready without GPUs until the new gpusAt.
        try await world.cloud.start(providerID: id)
        let boot = try await world.cloud.boot(of: id)
        let gpusAt = try #require(boot.gpusAt)
        #expect(boot.cycle == 1)
        _ = try await world.tick(until: { world.cloud.wallTime.clock.now >= boot.readyAt.advanced(by: .seconds(-1)) }, replicas: [])
        #expect(readyStatus(world, name) == "Unknown")
        try await world.tick(1, replicas: [])
        #expect(readyStatus(world, name) == "True")
        #expect(!taintKeys(world, name).contains("node.cloudprovider.kubernetes.io/shutdown"))
        #expect(taintKeys(world, name).contains("nvidia.com/gpu"))
        #expect(gpus(world, name) == "0", "the device plugin has not registered again yet")
        #expect(world.podNode("jhub/alice") == nil)
        let toRunning = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" }, limit: 120, replicas: []))
        #expect(world.cloud.wallTime.clock.now >= gpusAt)
        #expect(toRunning <= Int(boot.readyAt.duration(to: gpusAt).components.seconds) + 2, "\(toRunning) s")
        #expect(world.podNode("jhub/alice") == name)
        #expect(gpus(world, name) == "1")
        #expect(world.server.object(.nodes, name: name)?["metadata"]?["uid"]?.stringValue == uid, "the same Node object throughout")

        // Terminated while stopped: the Node goes.
        try await world.cloud.stop(providerID: id)
        try await world.tick(1, replicas: [])
        try await world.cloud.delete(providerID: id)
        try await world.tick(1, replicas: [])
        #expect(world.server.object(.nodes, name: name) == nil)
    }
}
