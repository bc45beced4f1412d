import BerthModel
import BerthScheduling
import Testing

/// Pod affinity and anti-affinity, DoNotSchedule topology spread and host ports: honoured on new
/// nodes and on nodes that exist, as kube-scheduler (and Karpenter) would.
@Suite struct InterPodConstraintTests {
    enum Kind: String, CaseIterable { case antiAffinity, hostPort, spread }

    /// A training replica (8 vCPU: four of them are cheapest together on one g4dn.12xlarge) with
    /// the given constraint against its siblings.
    static func replica(_ index: Int, _ kind: Kind?, topologyKey: String = "kubernetes.io/hostname") throws -> JSON {
        let base = try pod("train-\(index)", cpu: "8", memory: "16Gi")
        let selector: JSON = ["matchLabels": ["app": "train"]]
        return edit(base) { spec, metadata in
            metadata["labels"] = ["app": "train"]
            switch kind {
            case .antiAffinity:
                spec["affinity"] = ["podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [["labelSelector": selector, "topologyKey": .string(topologyKey)]]]]
            case .hostPort:
                spec["containers"] = [["name": "main", "image": "trainer", "ports": [["containerPort": 8080, "hostPort": 8080]],
                                       "resources": ["requests": ["cpu": "8", "memory": "16Gi"], "limits": ["nvidia.com/gpu": 1]]]]
            case .spread:
                spec["topologySpreadConstraints"] = [["maxSkew": 1, "topologyKey": .string(topologyKey), "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector]]
            case nil: break
            }
        }
    }

    static func edit(_ pod: JSON, _ change: (inout JSONObject, inout JSONObject) -> Void) -> JSON {
        guard case var .object(top) = pod else { return pod }
        var spec = top["spec"]?.objectValue ?? JSONObject()
        var metadata = top["metadata"]?.objectValue ?? JSONObject()
        change(&spec, &metadata)
        top["spec"] = .object(spec)
        top["metadata"] = .object(metadata)
        return .object(top)
    }

    @Test func withoutConstraintsFourReplicasShareOneNode() throws {
        let plan = solve(try requirements((0..<4).map { try Self.replica($0, nil) }))
        #expect(plan.instanceTypes == ["g4dn.12xlarge"], "the cheapest per pod: the premise of the cases below")
    }

    @Test(arguments: Kind.allCases)
    func fourReplicasThatMustNotShareANodeGetFour(kind: Kind) throws {
        let pods = try requirements((0..<4).map { try Self.replica($0, kind) })
        #expect(pods.allSatisfy { !$0.interPod.isEmpty && $0.interPod.unmodelled == nil })
        let plan = solve(pods)
        #expect(plan.unschedulable.isEmpty)
        #expect(plan.nodes.count == 4 && plan.nodes.allSatisfy { $0.pods.count == 1 }, "\(plan.instanceTypes)")
        #expect(plan.instanceTypes.allSatisfy { $0 == "g4dn.4xlarge" })
    }

    /// The loop's case: three replicas run on a g4dn.12xlarge with one GPU free; the fourth must
    /// not be "placed" there.
    @Test(arguments: Kind.allCases)
    func theFreeGPUOfANodeHoldingASiblingIsNotTaken(kind: Kind) throws {
        let bound = try requirements((0..<3).map { try Self.replica($0, kind) })
        let type = try #require(InstanceCatalog.builtIn()["g4dn.12xlarge"])
        var node = NodeState.launching(name: "big", type: type, offering: type.offerings[0], pool: .default)
        node.pods = bound
        node.launching = false
        node.requested = bound.map(\.requests).reduce(.zero, +)
        let plan = solve(try requirements([try Self.replica(3, kind)]), nodes: [node])
        #expect(plan.placements.isEmpty)
        #expect(plan.instanceTypes == ["g4dn.4xlarge"])
        // A replica without the constraint takes the free GPU — unless its siblings' anti-affinity
        // names it (required anti-affinity is symmetric).
        let free = solve(try requirements([try Self.replica(3, nil)]), nodes: [node])
        #expect(free.placements.isEmpty == (kind == .antiAffinity))
    }

    @Test func anExistingPodsAntiAffinityKeepsOthersAway() throws {
        // The bound pod forbids app=train next to it; the pending one has no constraint of its own.
        let guardPod = try requirements([Self.edit(try pod("guard", cpu: "1")) { spec, metadata in
            metadata["labels"] = ["app": "guard"]
            spec["affinity"] = ["podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [
                ["labelSelector": ["matchLabels": ["app": "train"]], "topologyKey": "kubernetes.io/hostname"]]]]
        }])
        let type = try #require(InstanceCatalog.builtIn()["g4dn.12xlarge"])
        var node = NodeState.launching(name: "big", type: type, offering: type.offerings[0], pool: .default)
        node.pods = guardPod
        node.requested = guardPod[0].requests
        let plan = solve(try requirements([try Self.replica(0, nil)]), nodes: [node])
        #expect(plan.placements.isEmpty && plan.nodes.count == 1)
    }

    @Test func zoneSpreadPutsThreeReplicasInThreeZones() throws {
        let pods = try requirements((0..<3).map { try Self.replica($0, .spread, topologyKey: "topology.kubernetes.io/zone") })
        let plan = solve(pods)
        #expect(Set(plan.nodes.map(\.zone)) == ["us-east-1a", "us-east-1b", "us-east-1c"])
    }

    @Test func zoneAntiAffinityLeavesTheFourthUnschedulableWithAReason() throws {
        let pods = try requirements((0..<4).map { try Self.replica($0, .antiAffinity, topologyKey: "topology.kubernetes.io/zone") })
        let plan = solve(pods)
        #expect(plan.nodes.count == 3 && Set(plan.nodes.map(\.zone)).count == 3)
        #expect(plan.unschedulable.count == 1)
        #expect(plan.unschedulable.first?.reason.contains("pod anti-affinity") == true)
    }

    @Test func requiredAffinityPutsAPodNextToTheOneItNeeds() throws {
        let pair = try (0..<2).map { index in
            Self.edit(try pod("pair-\(index)", cpu: "1")) { spec, metadata in
                metadata["labels"] = ["app": "pair"]
                spec["affinity"] = ["podAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [
                    ["labelSelector": ["matchLabels": ["app": "pair"]], "topologyKey": "kubernetes.io/hostname"]]]]
            }
        }
        let type = try #require(InstanceCatalog.builtIn()["g4dn.12xlarge"])
        var empty = NodeState.launching(name: "empty", type: type, offering: type.offerings[0], pool: .default)
        empty.launching = false
        var holder = empty
        holder.name = "holder"
        holder.pods = try requirements([pair[0]])
        holder.requested = holder.pods[0].requests
        let plan = solve(try requirements([pair[1]]), nodes: [empty, holder])
        #expect(plan.placements.map(\.node) == ["holder"] && plan.nodes.isEmpty)
        // Nowhere near one: the first of its kind goes anywhere (upstream's rule) ...
        #expect(solve(try requirements([pair[1]]), nodes: [empty]).placements.map(\.node) == ["empty"])
    }

    @Test func aPodThatCannotBeModelledGetsANodeOfItsOwn() throws {
        let pods = try requirements([try Self.replica(0, .antiAffinity, topologyKey: "example.com/rack"), try Self.replica(1, nil), try Self.replica(2, nil)])
        #expect(pods[0].interPod.unmodelled == "topology key example.com/rack")
        let plan = solve(pods)
        let own = try #require(plan.nodes.first { $0.pods.contains(0) })
        #expect(own.pods == [0] && own.dedicated)
    }

    @Test func readingConstraintsFromAPod() throws {
        let pod = Self.edit(try pod("web", cpu: "1")) { spec, metadata in
            metadata["labels"] = ["app": "web", "rev": "7"]
            spec["hostNetwork"] = true
            spec["containers"] = [["name": "main", "image": "web", "ports": [["containerPort": 8443], ["containerPort": 53, "protocol": "UDP"]],
                                   "resources": ["limits": ["nvidia.com/gpu": 1]]]]
            spec["affinity"] = [
                "podAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [
                    ["labelSelector": ["matchExpressions": [["key": "app", "operator": "In", "values": ["cache"]]]], "namespaces": ["infra"],
                     "topologyKey": "topology.kubernetes.io/zone"]]],
                "podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [
                    ["labelSelector": ["matchLabels": ["app": "web"]], "namespaceSelector": ["matchLabels": ["team": "a"]], "topologyKey": "kubernetes.io/hostname"]]],
            ]
            spec["topologySpreadConstraints"] = [
                ["maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": ["matchLabels": ["app": "web"]], "matchLabelKeys": ["rev"]],
                ["maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": ["matchLabels": ["app": "web"]]],
            ]
        }
        let constraints = try PodRequirements(pod: pod).interPod
        #expect(constraints.hostPorts == [HostPort(port: 53, protocol: "UDP"), HostPort(port: 8443)], "hostNetwork: every container port")
        #expect(constraints.affinity == [PodAffinityTerm(
            selector: LabelSelector(matchExpressions: [LabelRequirement(key: "app", operator: .in, values: ["cache"])]), namespaces: ["infra"], domain: .zone)])
        #expect(constraints.antiAffinity.isEmpty && constraints.unmodelled == "a namespaceSelector in podAntiAffinity")
        #expect(constraints.spread == [SpreadConstraint(maxSkew: 2, domain: .zone, selector: LabelSelector(matchLabels: ["app": "web", "rev": "7"]))],
                "ScheduleAnyway is a preference; matchLabelKeys add the pod's own values")
        #expect(try PodRequirements(pod: try Self.replica(0, nil)).interPod.isEmpty)
    }

    @Test func malformedConstraintsAreErrorsNamingTheField() throws {
        let bad = Self.edit(try pod("bad")) { spec, _ in
            spec["topologySpreadConstraints"] = [["maxSkew": 0, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"]]
        }
        #expect(throws: SchedulingError.self) { try PodRequirements(pod: bad) }
        do {
            _ = try PodRequirements(pod: bad)
        } catch {
            #expect("\(error)".contains("spec.topologySpreadConstraints[0].maxSkew"))
        }
    }
}
