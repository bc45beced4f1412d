import BerthModel
import BerthScheduling
import Testing

/// Hand-computed answers against the built-in catalog (us-east-1 on-demand prices).
@Suite struct SchedulerTests {
    /// A new node's alternatives: every other offering its pods would take, cheapest first, for a
    /// cloud that falls back within one launch — never an offering they refuse (zone, GPU type),
    /// one they do not fit on, one over the pool's limits, or one marked unavailable.
    @Test func alternativesAreEveryOfferingThePodsAccept() throws {
        let zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
        var catalog = InstanceCatalog.builtIn(zones: zones)
        catalog = InstanceCatalog(types: catalog.types)
        var scheduler = Scheduler(catalog: catalog, pools: [.default])
        #expect(scheduler.solve(pending: try requirements([pod("jupyter-z", notebook: true)])).nodes.first?.alternatives == [], "off unless asked")
        scheduler.computesAlternatives = true
        let any = try requirements([pod("jupyter-a", notebook: true, cpu: "2", memory: "8G")])
        let plan = scheduler.solve(pending: any, unavailableOfferings: [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1c", capacityType: "on-demand")])
        let node = try #require(plan.nodes.first)
        #expect((node.instanceType, node.zone) == ("g4dn.xlarge", "us-east-1a"))
        let alternatives = node.alternatives
        #expect(alternatives.first == .init(instanceType: "g4dn.xlarge", offering: Offering(zone: "us-east-1b", pricePerHour: 0.526)))
        #expect(alternatives.map(\.offering.pricePerHour) == alternatives.map(\.offering.pricePerHour).sorted())
        #expect(!alternatives.contains { $0.instanceType == "g4dn.xlarge" && $0.offering.zone == "us-east-1c" }, "marked unavailable")
        #expect(!alternatives.contains { $0.instanceType == "g4dn.xlarge" && $0.offering.zone == "us-east-1a" }, "the chosen one is not repeated")
        #expect(alternatives.count == catalog.types.count * 3 - 2, "every GPU type in every zone fits a 1-GPU notebook")

        // A volume in us-east-1b, a GPU type asked for, two GPUs, a $/hour limit: each narrows them.
        let pinned = try requirements([pod("jupyter-b", notebook: true, gpus: 2, annotations: ["berth.dev/gpu-type": "a10g, l4"])], zones: ["us-east-1b"])
        var pool = Pool.default
        pool.limits = PoolLimits(pricePerHour: 6)
        var narrowing = Scheduler(catalog: catalog, pools: [pool])
        narrowing.computesAlternatives = true
        let narrowed = try #require(narrowing.solve(pending: pinned).nodes.first)
        #expect(narrowed.instanceType == "g6.12xlarge" && narrowed.zone == "us-east-1b")
        #expect(narrowed.alternatives.map(\.instanceType) == ["g5.12xlarge"], "2+ GPUs, A10G or L4, at most $6/h: \(narrowed.alternatives)")
        #expect(narrowed.alternatives.allSatisfy { $0.offering.zone == "us-east-1b" })
    }

    @Test func oneNotebookGetsTheCheapestSingleGPUType() throws {
        let plan = solve(try requirements([pod("jupyter-alice", namespace: "jhub", notebook: true, cpu: "2", memory: "8G")]))
        #expect(plan.unschedulable.isEmpty)
        #expect(plan.nodes.count == 1)
        let node = try #require(plan.nodes.first)
        #expect((node.instanceType, node.pool, node.zone, node.pricePerHour, node.pods) == ("g4dn.xlarge", "gpu", "us-east-1a", 0.526, [0]))
        #expect(node.rejected.isEmpty)
    }

    /// aws#5379: two 1-GPU pods in one batch must not become one 4-GPU g5.12xlarge.
    @Test func twoNotebooksGetTwoSingleGPUNodes() throws {
        let plan = solve(try requirements([pod("jupyter-a", notebook: true), pod("jupyter-b", notebook: true)]))
        #expect(plan.instanceTypes == ["g4dn.xlarge", "g4dn.xlarge"])
        #expect(plan.nodes.map(\.pods) == [[0], [1]])
        #expect(abs(plan.totalPricePerHour - 1.052) < 1e-9)
    }

    @Test func twoSmallGPUPodsAreNotPackedOntoAFourGPUNode() throws {
        let plan = solve(try requirements([pod("train-a", cpu: "1"), pod("train-b", cpu: "1")]))
        #expect(plan.instanceTypes == ["g4dn.xlarge", "g4dn.xlarge"])
    }

    @Test(arguments: [("a10g", "g5.xlarge", 1.006), ("l4", "g6.xlarge", 0.8048), ("A10G, l4", "g6.xlarge", 0.8048), ("h100", "p5.48xlarge", 55.04)])
    func requestedGPUTypeIsHonoured(annotation: String, type: String, price: Double) throws {
        let plan = solve(try requirements([pod("jupyter-a", notebook: true, annotations: ["berth.dev/gpu-type": annotation])]))
        #expect(plan.instanceTypes == [type])
        #expect(plan.nodes.first?.pricePerHour == price)
    }

    @Test func notebookNeedingSixVCPUExplainsTheCheaperType() throws {
        let plan = solve(try requirements([pod("jupyter-a", notebook: true, cpu: "6", memory: "16Gi")]))
        #expect(plan.instanceTypes == ["g4dn.2xlarge"])
        #expect(plan.nodes.first?.rejected.map(\.description) == ["g4dn.xlarge: needs 6 vCPU, has 3.745"])
    }

    @Test func zonePinnedVolumeChoosesItsZone() throws {
        let plan = solve(try requirements([pod("jupyter-a", notebook: true)], zones: ["us-east-1c"]))
        #expect(plan.nodes.map(\.zone) == ["us-east-1c"])
        let nowhere = solve(try requirements([pod("jupyter-b", notebook: true)], zones: ["eu-west-1a"]))
        #expect(nowhere.nodes.isEmpty)
        #expect(nowhere.unschedulable.first?.reason == "pool gpu: its volumes are in zone eu-west-1a, where the pool launches nothing")
    }

    @Test func gpuCountLimitLeavesTheSecondNotebookUnschedulable() throws {
        var pool = Pool.default
        pool.limits.gpus = 1
        let plan = solve(try requirements([pod("jupyter-a", notebook: true), pod("jupyter-b", notebook: true)]), pools: [pool])
        #expect(plan.instanceTypes == ["g4dn.xlarge"])
        #expect(plan.unschedulable == [.init(pod: 1, reason: "pool gpu: gpus limit 1 reached (1 in use, a node adds 1)")])
    }

    @Test(arguments: [
        (PoolLimits(nodes: 1), "pool gpu: nodes limit 1 reached (1 in use)"),
        (PoolLimits(cpuMilli: 6000), "pool gpu: cpu limit 6 reached (4 in use, a node adds 4)"),
        (PoolLimits(memory: 20 << 30), "pool gpu: memory limit 20Gi reached (16Gi in use, a node adds 16Gi)"),
        (PoolLimits(pricePerHour: 1), "pool gpu: pricePerHour limit $1 reached ($0.526 in use, a node adds $0.526)"),
    ])
    func eachLimitNamesItself(limits: PoolLimits, reason: String) throws {
        var pool = Pool.default
        pool.limits = limits
        let plan = solve(try requirements([pod("jupyter-a", notebook: true), pod("jupyter-b", notebook: true)]), pools: [pool])
        #expect(plan.instanceTypes == ["g4dn.xlarge"])
        #expect(plan.unschedulable == [.init(pod: 1, reason: reason)])
    }

    @Test func pricePerHourLimitCountsExistingNodes() throws {
        var pool = Pool.default
        pool.limits.pricePerHour = 1.5
        let catalog = InstanceCatalog.builtIn()
        let type = try #require(catalog["g4dn.xlarge"])
        // A full node already costs 0.526: one more g4dn.xlarge fits the budget, a second does not.
        let busy = NodeState.launching(name: "node-1", type: type, offering: type.offerings[0], pool: pool, requested: NodeOverhead().allocatable(type))
        let plan = solve(try requirements([pod("jupyter-a", notebook: true), pod("jupyter-b", notebook: true)]), pools: [pool], nodes: [busy])
        #expect(plan.instanceTypes == ["g4dn.xlarge"])
        #expect(plan.unschedulable.map(\.pod) == [1])
        #expect(plan.unschedulable.first?.reason == "pool gpu: pricePerHour limit $1.5 reached ($1.052 in use, a node adds $0.526)")
    }

    @Test func missingTolerationKeepsThePodOutOfThatPool() throws {
        let research = Pool(name: "research", taints: [Taint(key: "team", value: "research", effect: "NoSchedule")], weight: 50)
        let plan = solve(try requirements([pod("train-a")]), pools: [research, .default])
        #expect(plan.nodes.map(\.pool) == ["gpu"])
        // Without the webhook's toleration, the default pool's GPU taint is not tolerated either.
        let bare = solve(try requirements([pod("train-b", mutate: false)]), pools: [research, .default])
        #expect(bare.nodes.isEmpty)
        #expect(
            bare.unschedulable.first?.reason
                == "pool research: taint team=research:NoSchedule not tolerated; pool gpu: taint nvidia.com/gpu=true:NoSchedule not tolerated")
    }

    @Test func higherWeightPoolWinsWhenTolerated() throws {
        let preferred = Pool(name: "g6-first", requirements: [LabelRequirement(key: "karpenter.k8s.aws/instance-family", operator: .in, values: ["g6"])], weight: 10)
        let plan = solve(try requirements([pod("jupyter-a", notebook: true)]), pools: [.default, preferred])
        #expect(plan.nodes.map { "\($0.pool) \($0.instanceType)" } == ["g6-first g6.xlarge"])
    }

    @Test func fullPreferredPoolFallsBackToTheNextOne() throws {
        var preferred = Pool(name: "g6-first", requirements: [LabelRequirement(key: "karpenter.k8s.aws/instance-family", operator: .in, values: ["g6"])], weight: 10)
        preferred.limits.gpus = 1
        let plan = solve(try requirements([pod("train-a"), pod("train-b")]), pools: [.default, preferred])
        #expect(plan.nodes.map { "\($0.pool) \($0.instanceType)" } == ["g6-first g6.xlarge", "gpu g4dn.xlarge"])
        // Every g6 type of the preferred pool was passed over for the limit, and says so.
        let rejected = plan.nodes.last?.rejected.map(\.description) ?? []
        #expect(rejected.count == 6)
        #expect(rejected.first == "g6.xlarge: gpus limit 1 reached (1 in use, a node adds 1)")
        #expect(rejected.last == "g6.48xlarge: gpus limit 1 reached (1 in use, a node adds 8)")
    }

    @Test func poolLabelsAndCapacityTypesAreSelectable() throws {
        var spot = Pool(name: "spot", labels: ["team": "research"], capacityTypes: ["spot"])
        spot.requirements = [LabelRequirement(key: "karpenter.k8s.aws/instance-gpu-name", operator: .in, values: ["t4"])]
        var catalog = InstanceCatalog.builtIn()
        for index in catalog.types.indices where catalog.types[index].gpuName == "t4" {
            catalog.types[index].offerings.append(Offering(zone: "us-east-1b", capacityType: "spot", pricePerHour: catalog.types[index].pricePerHour * 0.4))
        }
        let scheduler = Scheduler(catalog: catalog, pools: [.default, spot])
        let research = scheduler.solve(pending: try requirements([pod("a", nodeSelector: ["team": "research"])]))
        #expect(research.nodes.map { "\($0.pool) \($0.instanceType) \($0.zone) \($0.capacityType)" } == ["spot g4dn.xlarge us-east-1b spot"])
        #expect(abs((research.nodes.first?.pricePerHour ?? 0) - 0.2104) < 1e-9)
        let onDemand = scheduler.solve(pending: try requirements([pod("b", nodeSelector: ["karpenter.sh/capacity-type": "on-demand"])]))
        #expect(onDemand.nodes.map(\.pool) == ["gpu"])
    }

    @Test func podsFittingOnAnInFlightNodeGetNoNewNode() throws {
        let catalog = InstanceCatalog.builtIn()
        let type = try #require(catalog["g4dn.12xlarge"])
        let inFlight = NodeState.launching(name: "berth-abc", type: type, offering: type.offerings[1], pool: .default, requested: Resources(cpuMilli: 1000, gpus: 1, pods: 1))
        let pods = try requirements([pod("train-a", cpu: "2"), pod("train-b", cpu: "2"), pod("jupyter-c", notebook: true), pod("train-d", gpus: 2)])
        let plan = solve(pods, nodes: [inFlight])
        // 3 GPUs free: the 2-GPU pod (largest first) and one 1-GPU pod fit; the other gets a node.
        #expect(plan.placements.map(\.pod).sorted() == [0, 3])
        #expect(Set(plan.placements.map(\.node)) == ["berth-abc"])
        #expect(plan.nodes.map(\.pods) == [[1], [2]])
    }

    @Test func zonedPodDoesNotUseAnInFlightNodeElsewhere() throws {
        let type = try #require(InstanceCatalog.builtIn()["g4dn.12xlarge"])
        let inFlight = NodeState.launching(name: "berth-abc", type: type, offering: type.offerings[0], pool: .default)
        let plan = solve(try requirements([pod("jupyter-a", notebook: true)], zones: ["us-east-1b"]), nodes: [inFlight])
        #expect(plan.placements.isEmpty)
        #expect(plan.nodes.map(\.zone) == ["us-east-1b"])
    }

    /// 4 × (1 GPU, 11 vCPU, 40 GiB): alone each needs a g4dn.4xlarge (4 × 1.204 = 4.816 $/h);
    /// one g4dn.12xlarge (3.912 $/h, 47.635 vCPU and 174.6 GiB allocatable) holds all four.
    @Test func nonNotebookGPUPodsArePackedWhenCheaper() throws {
        let pods = try requirements((0..<4).map { try pod("train-\($0)", cpu: "11", memory: "40Gi") })
        let plan = solve(pods)
        #expect(plan.instanceTypes == ["g4dn.12xlarge"])
        #expect(plan.nodes.first?.pods == [0, 1, 2, 3])
        // The same pods as notebooks get one node each.
        let notebooks = try requirements((0..<4).map { try pod("nb-\($0)", notebook: true, cpu: "11", memory: "40Gi") })
        #expect(solve(notebooks).instanceTypes == Array(repeating: "g4dn.4xlarge", count: 4))
    }

    @Test func smallerPodsFillLeftoverSpaceFirst() throws {
        // The 2-GPU pod opens a g4dn.12xlarge (cheapest with 2 GPUs); the 1-GPU pods fill it.
        let pods = try requirements([pod("small-a"), pod("big", gpus: 2), pod("small-b")])
        let plan = solve(pods)
        #expect(plan.instanceTypes == ["g4dn.12xlarge"])
        #expect(plan.nodes.first?.pods == [1, 0, 2])
    }

    @Test(arguments: [
        (LabelRequirement.Operator.gt, "20000", "g6.xlarge"), (.lt, "20000", "g4dn.xlarge"), (.gt, "40000", "g6e.xlarge"), (.gt, "50000", "p5.48xlarge"),
    ])
    func gtAndLtOnGPUMemory(op: LabelRequirement.Operator, value: String, type: String) throws {
        let requirement = LabelRequirement(key: "karpenter.k8s.aws/instance-gpu-memory", operator: op, values: [value])
        let plan = solve(try requirements([pod("jupyter-a", notebook: true, required: [[requirement]])]))
        #expect(plan.instanceTypes == [type])
    }

    @Test func affinityOperatorsAndORedTerms() throws {
        let notT4 = LabelRequirement(key: "karpenter.k8s.aws/instance-gpu-name", operator: .notIn, values: ["t4", "l4"])
        #expect(solve(try requirements([pod("a", required: [[notT4]])])).instanceTypes == ["g5.xlarge"])
        let noSuchLabel = LabelRequirement(key: "example.com/rack", operator: .exists)
        let zoneC = LabelRequirement(key: "topology.kubernetes.io/zone", operator: .in, values: ["us-east-1c"])
        // Terms are ORed: the impossible one does not block the zone-c one.
        let plan = solve(try requirements([pod("b", required: [[noSuchLabel], [zoneC]])]))
        #expect(plan.nodes.map { "\($0.instanceType) \($0.zone)" } == ["g4dn.xlarge us-east-1c"])
        let none = solve(try requirements([pod("c", required: [[noSuchLabel]])]))
        #expect(none.unschedulable.first?.reason.hasPrefix("pool gpu: no instance type matches the pod's node affinity example.com/rack") == true)
        let spotOnly = solve(try requirements([pod("d", nodeSelector: ["karpenter.sh/capacity-type": "spot"])]))
        #expect(spotOnly.nodes.isEmpty)
    }

    @Test func unavailableOfferingFallsBackToAnotherZone() throws {
        let plan = solve(try requirements([pod("jupyter-a", notebook: true)]), unavailable: [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1a")])
        #expect(plan.nodes.map { "\($0.instanceType) \($0.zone)" } == ["g4dn.xlarge us-east-1b"])
    }

    @Test func tooBigAndUnsupportedPodsAreExplained() throws {
        let plan = solve(try requirements([pod("huge", gpus: 16), pod("mig", gpuResource: "nvidia.com/mig-1g.10gb")]))
        #expect(plan.nodes.isEmpty)
        #expect(plan.unschedulable.map(\.reason) == [
            "no instance type is big enough (largest, p5.48xlarge: needs 16 nvidia.com/gpu, has 8)",
            "requests nvidia.com/mig-1g.10gb; the instance catalog offers nvidia.com/gpu only",
        ])
    }
}
