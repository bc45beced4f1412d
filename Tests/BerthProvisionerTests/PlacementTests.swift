import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// Where the loop may put a pending pod: pod (anti-)affinity, topology spread, host ports, cordons
/// and foreign taints on nodes that are up; and an Event for every pod it leaves alone.
@Suite struct PlacementTests {
    enum Kind: String, CaseIterable { case antiAffinity, hostPort, spread }

    /// A 1-GPU, 8-vCPU training replica (four share a g4dn.12xlarge when nothing forbids it).
    static func replica(_ index: Int, _ kind: Kind?) -> PodSnapshot {
        var pod = gpuPod("train-\(index)", namespace: "ml", cpu: 8000, memory: 16 << 30)
        pod.requirements.labels = ["app": "train"]
        let siblings = LabelSelector(matchLabels: ["app": "train"])
        switch kind {
        case .antiAffinity: pod.requirements.interPod.antiAffinity = [PodAffinityTerm(selector: siblings, domain: .hostname)]
        case .hostPort: pod.requirements.interPod.hostPorts = [HostPort(port: 8080)]
        case .spread: pod.requirements.interPod.spread = [SpreadConstraint(maxSkew: 1, domain: .hostname, selector: siblings)]
        case nil: break
        }
        return pod
    }

    /// Four unconstrained replicas got one g4dn.12xlarge; three run there, the fourth went away.
    /// Returns the node's name.
    static func bigNodeWithOneFreeGPU(_ world: inout CoreWorld, kind: Kind?) throws -> String {
        world.round()
        for index in 0..<4 { world.add(replica(index, nil)) }
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge"])
        let instance = try #require(world.instances.values.first)
        let node = world.register(instance)
        world.round()
        for index in 0..<3 {
            world.bind("ml/train-\(index)", to: node)
            world.pods["ml/train-\(index)"]?.requirements = replica(index, kind).requirements
        }
        world.pods["ml/train-3"] = nil
        world.run(for: 5)
        return node
    }

    /// Row 1: the fourth replica must not be "placed" on the free GPU beside its siblings (it
    /// would stay Pending, with no launch and no Event); it gets a node of its own.
    @Test(arguments: Kind.allCases)
    func aReplicaThatMustNotJoinItsSiblingsGetsANewNode(kind: Kind) throws {
        var world = CoreWorld()
        _ = try Self.bigNodeWithOneFreeGPU(&world, kind: kind)
        world.add(Self.replica(3, kind))
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge", "g4dn.4xlarge"])
        #expect(world.events("Nominated").contains { $0.regarding == .pod("ml/train-3") && $0.message.contains("g4dn.4xlarge") })
    }

    /// A pod that fits on a node that is up gets no launch — and an Event saying so, in the round
    /// the batch closes. If kube-scheduler still has not bound it after the grace, Berth's model
    /// of the pod is wrong: it gets a node of its own.
    @Test func aPodLeftToKubeSchedulerIsToldAndGetsItsOwnNodeIfNotBound() throws {
        var world = CoreWorld()
        let node = try Self.bigNodeWithOneFreeGPU(&world, kind: nil)
        world.add(Self.replica(3, nil))
        world.run(for: 2)
        #expect(world.launches.count == 1)
        let told = world.events("NotLaunching")
        #expect(told.map(\.regarding) == [.pod("ml/train-3")])
        #expect(told.first?.message.contains(node) == true)
        world.run(for: Int(ProvisionerCore.schedulerGrace.seconds))
        #expect(world.launches.count == 2)
        #expect(world.events("Nominated").last?.message.contains("a node of its own") == true)
    }

    /// Row 2: a Berth node that is cordoned, or carries a taint the pod does not tolerate, has no
    /// room for it, free GPU or not.
    @Test(arguments: ["cordoned", "tainted", "tolerated"])
    func onlySchedulableCapacityCounts(state: String) throws {
        var world = CoreWorld()
        let node = try world.nodeThatServedANotebook()
        world.round()
        switch state {
        case "cordoned": world.nodes[node]?.unschedulable = true
        default: world.nodes[node]?.taints.append(Taint(key: "example.com/maintenance", value: "true", effect: "NoSchedule"))
        }
        var bob = notebook("bob")
        if state == "tolerated" {
            let constraints = bob.requirements.constraints
            bob.requirements.constraints = PodConstraints(
                tolerations: constraints.tolerations + [Toleration(key: "example.com/maintenance", operator: "Exists")],
                requiredTerms: constraints.requiredTerms)
        }
        world.add(bob)
        world.run(for: 2)
        if state == "tolerated" {
            #expect(world.launches.count == 1, "the free GPU is taken")
            #expect(world.events("NotLaunching").map(\.regarding) == [.pod("jupyter/bob")])
        } else {
            #expect(world.launches.count == 2, "\(world.events.map { "\($0.reason) \($0.regarding) \($0.message)" })")
            #expect(world.events("Nominated").last?.regarding == .pod("jupyter/bob"))
        }
    }
}
