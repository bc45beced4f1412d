import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// Drains end: a budget that never allows eviction holds a node for `drainTimeout` at most, and
/// says so every few minutes; a pod stuck Terminating on a dead node does not hold it at all.
@Suite struct DrainTests {
    @Test func aBudgetThatNeverAllowsEvictionHoldsTheNodeForTheDrainTimeoutOnly() throws {
        var world = CoreWorld()
        #expect(world.config.drainTimeout == .seconds(900))
        let node = try world.nodeThatServedANotebook()
        world.add(cpuPod("stray", on: node))
        world.protectedByBudget = ["airflow/stray"]
        world.run(for: 61)
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.disruptedTaint) == true, "draining")
        let started = world.now
        while world.now.timeIntervalSince(started) < 899 { world.run(for: 1) }
        #expect(world.deletedPods.isEmpty && world.terminations.isEmpty, "not before the timeout")
        let blocked = world.events("DrainBlocked")
        #expect(blocked.count == 3, "at 0, 5 and 10 minutes: \(blocked.count)")
        #expect(blocked.first?.message.contains("airflow/stray") == true && blocked.first?.message.contains("disruption budget") == true)
        world.run(for: 2)
        #expect(world.deletedPods == ["airflow/stray"])
        #expect(world.events("DrainTimeout").map(\.regarding).contains(.pod("airflow/stray")))
        #expect(world.events("DrainTimeout").map(\.regarding).contains(.node(node)))
        world.run(for: 2)
        #expect(world.terminations.count == 1)
    }

    /// A restart mid-drain does not restart the drain timeout: the drain's start is on the node.
    @Test func aRestartDoesNotRestartTheDrainTimeout() throws {
        var world = CoreWorld()
        let node = try world.nodeThatServedANotebook()
        world.add(cpuPod("stray", on: node))
        world.protectedByBudget = ["airflow/stray"]
        world.run(for: 61)
        #expect(world.nodes[node]?.labels[ProvisionerCore.drainStartedLabel] != nil)
        world.run(for: 600)
        world.core = ProvisionerCore(config: world.config, seed: 99)
        world.run(for: 310)
        #expect(world.deletedPods == ["airflow/stray"], "15 minutes after the drain started, not after the restart")
    }

    @Test func theDrainTimeoutIsConfigurable() throws {
        let json = try JSONParser.parse(#"{"disruption": {"drainTimeout": "30m"}}"#)
        #expect(try ProvisionerConfig(config: json, path: "provisioner").drainTimeout == .seconds(1800))
        let bad = try JSONParser.parse(#"{"disruption": {"drainTimeout": "soon"}}"#)
        #expect(throws: ConfigError.self) { try ProvisionerConfig(config: bad, path: "provisioner") }
    }

    /// A notebook stuck Terminating on a node whose kubelet is gone (NotReady): once its grace
    /// period plus a margin has passed it no longer counts, and the node is removed.
    @Test func aPodStuckTerminatingOnANotReadyNodeDoesNotHoldIt() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        let instance = try #require(world.instances.values.first)
        let node = world.register(instance)
        world.round()
        world.bind("jupyter/alice", to: node)
        world.run(for: 5)
        // The node dies; the user stops the notebook: the pod is Terminating, its 30 s grace ends.
        world.nodes[node]?.ready = false
        world.pods["jupyter/alice"]?.terminating = true
        world.pods["jupyter/alice"]?.deletionTimestamp = world.now.addingTimeInterval(30)
        world.run(for: 80)
        #expect(world.terminations.isEmpty, "within the grace period and margin it still counts")
        world.run(for: 80)
        #expect(world.terminations == [instance.providerID])
    }
}
