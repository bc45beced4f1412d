import BerthAdmission
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// Warm capacity in the decision core, on small hand-made worlds whose answers are known by hand.
@Suite struct WarmCapacityTests {
    /// `warm.mode: schedule`, one window all day every day (from == to).
    static func scheduled(running: Int, stopped: Int, type: String = "g4dn.xlarge", puller: Bool = false) -> ProvisionerConfig {
        var config = ProvisionerConfig()
        config.warm.mode = .schedule
        config.warm.imagePuller = puller
        config.warm.schedules = [WarmSchedule(days: Set(1...7), from: 0, to: 24 * 60, timeZone: "UTC", running: running, stopped: stopped, instanceType: type)]
        return config
    }

    /// A GPU notebook as the webhook leaves it, created now.
    static func warmNotebook(_ name: String, at now: Date = Date(timeIntervalSince1970: 0), cpu: Int64 = 2000, memory: Int64 = 8 << 30, gpus: Int64 = 1) -> PodSnapshot {
        var pod = notebook(name, gpus: gpus, cpu: cpu, memory: memory)
        pod.createdAt = now
        return pod
    }

    static func warmLaunches(_ world: CoreWorld) -> [LaunchRequest] {
        world.launches.filter { $0.labels[ProvisionerCore.warmLabel] != nil }
    }

    /// The image puller's pod on a node (a DaemonSet pod), Running once the images are pulled.
    static func puller(on node: String, running: Bool) -> PodSnapshot {
        var requirements = PodRequirements(namespace: "berth", name: "image-puller-\(node)", requests: .zero)
        requirements.labels = [WarmConfig.imagePullerLabel: "true"]
        return PodSnapshot(key: "berth/image-puller-\(node)", nodeName: node, phase: running ? .running : .pending, daemon: true, requirements: requirements)
    }

    @Test func oneNotebookMeetsARunningWarmNode() throws {
        var world = CoreWorld(config: Self.scheduled(running: 1, stopped: 0))
        world.round()
        let warm = try #require(Self.warmLaunches(world).first)
        #expect(world.launches.count == 1)
        #expect(warm.labels[ProvisionerCore.warmLabel] == "true")
        #expect(warm.candidates.map(\.name) == ["g4dn.xlarge"])
        #expect(warm.taints.contains(ProvisionerCore.warmRunningTaint), "nothing lands there until Berth hands it to a notebook")
        world.registerAll()
        world.round()
        #expect(world.events("WarmNodeReady").count == 1)
        // Empty on purpose: never removed for emptiness while wanted.
        world.run(for: 600)
        #expect(world.terminations.isEmpty)
        #expect(world.launches.count == 1)
        #expect(world.core.warmSummary.nodes["running"] == 1)

        // The next notebook cannot land there by itself (the taint): Berth hands the warm node to
        // it as soon as it is pending, takes the taint off, kube-scheduler binds it; Berth refills.
        let node = try #require(world.node(of: warm.launchID))
        world.add(Self.warmNotebook("alice", at: world.now))
        world.run(for: 2)
        #expect(world.core.claims[warm.launchID]?.nominated.keys.sorted() == ["jupyter/alice"])
        world.bind("jupyter/alice", to: node)
        world.round()
        #expect(world.events("WarmNodeTaken").count == 1)
        #expect(world.nodes[node]?.labels[ProvisionerCore.warmLabel] == nil, "taken: its warm label goes")
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.warmRunningTaint) == false, "and its taint")
        #expect(Self.warmLaunches(world).count == 2, "refilled")
        #expect(world.core.takeTimeToRunning() == [TimeToRunning(start: .warmRunning, seconds: 2)])
        #expect(world.launches.filter { $0.labels[ProvisionerCore.warmLabel] == nil }.isEmpty, "nothing launched cold")
        // The taken node is a notebook's node like any other: it goes once the notebook stops.
        world.pods["jupyter/alice"] = nil
        world.run(for: 62)
        #expect(world.terminations.count == 1)
    }

    @Test func aWarmNodeIsPreparedOnceTheImagePullerRan() throws {
        var world = CoreWorld(config: Self.scheduled(running: 1, stopped: 0, puller: true))
        world.round()
        world.registerAll()
        let node = try #require(world.nodes.keys.first)
        world.add(Self.puller(on: node, running: false))
        world.run(for: 90)
        #expect(world.events("WarmNodeReady").isEmpty, "images still pulling")
        #expect(world.core.warmSummary.nodes["preparing"] == 1)
        world.add(Self.puller(on: node, running: true))
        world.round()
        #expect(world.events("WarmNodeReady").count == 1)
        #expect(world.core.warmSummary.nodes["running"] == 1)
    }

    @Test func aBurstLargerThanThePoolGetsWarmNodesThenColdOnes() throws {
        var world = CoreWorld(config: Self.scheduled(running: 2, stopped: 0))
        world.round()
        world.registerAll()
        world.round()
        let warmNodes = world.nodes.keys.sorted()
        #expect(warmNodes.count == 2)
        // Five notebooks at once: Berth hands the two warm nodes to two of them, launches for three.
        for name in ["a", "b", "c", "d", "e"] { world.add(Self.warmNotebook(name, at: world.now)) }
        let before = world.launches.count
        world.run(for: 3)
        let cold = world.launches.dropFirst(before).filter { $0.labels[ProvisionerCore.warmLabel] == nil }
        let refills = world.launches.dropFirst(before).filter { $0.labels[ProvisionerCore.warmLabel] != nil }
        #expect(cold.count == 3, "one node per waiting notebook")
        #expect(refills.count == 2, "the warm tier is refilled")
        #expect(world.events("WarmNodeTaken").count == 2)
    }

    @Test func aStoppedWarmNodeIsStartedForAPendingNotebook() throws {
        var world = CoreWorld(config: Self.scheduled(running: 0, stopped: 1))
        world.round()
        let warm = try #require(Self.warmLaunches(world).first)
        #expect(warm.labels[ProvisionerCore.warmLabel] == "stopped")
        #expect(warm.taints.contains(ProvisionerCore.warmStoppedTaint), "nothing lands on it while it is prepared")
        world.registerAll()
        world.round()
        let providerID = try #require(world.core.claims[warm.launchID]?.providerID)
        #expect(world.stops == [providerID], "prepared, then stopped")
        let node = try #require(world.node(of: warm.launchID))
        world.nodes[node]?.ready = false  // the kubelet is down; the Node stays, tainted
        world.nodes[node]?.taints.append(Taint(key: "node.kubernetes.io/unreachable", value: "", effect: "NoExecute"))
        world.run(for: 600)
        #expect(world.nodes[node] != nil && world.terminations.isEmpty, "kept while stopped")
        #expect(world.core.warmSummary.nodes["stopped"] == 1)

        // A notebook Berth sees pending: the stopped node is started for it, nothing launched cold.
        let launches = world.launches.count
        world.add(Self.warmNotebook("bob", at: world.now))
        world.run(for: 2)
        #expect(world.starts == [providerID])
        #expect(world.launches.count == launches + 1, "only the stopped tier's refill")
        #expect(world.launches.last?.labels[ProvisionerCore.warmLabel] == "stopped")
        #expect(world.core.claims[warm.launchID]?.nominated.keys.sorted() == ["jupyter/bob"])
        // It boots: Ready, GPUs allocatable; its warm marks go and kube-scheduler can bind bob.
        world.advance(40)
        world.nodes[node]?.ready = true
        world.nodes[node]?.taints.removeAll { $0.key == "node.kubernetes.io/unreachable" }
        world.round()
        world.round()
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.warmStoppedTaint) == false)
        #expect(world.nodes[node]?.labels[ProvisionerCore.warmLabel] == nil)
        world.bind("jupyter/bob", to: node)
        world.advance(5)
        world.round()
        #expect(world.core.takeTimeToRunning() == [TimeToRunning(start: .warmStopped, seconds: 47)])
        #expect(world.stops.count == 1, "a taken node is not stopped again")
    }

    @Test func aStartWithNoCapacityPlansThePodElsewhere() throws {
        var world = CoreWorld(config: Self.scheduled(running: 0, stopped: 1))
        world.round()
        world.registerAll()
        world.round()
        let key = OfferingKey(instanceType: "g4dn.xlarge", zone: try #require(world.instances.values.first?.zone), capacityType: "on-demand")
        world.outOfCapacity = [key]
        world.add(Self.warmNotebook("carol"))
        world.run(for: 3)
        #expect(world.starts.count == 1)
        #expect(world.events("WarmStartFailed").count == 1)
        let cold = world.launches.filter { $0.labels[ProvisionerCore.warmLabel] == nil }
        #expect(cold.count == 1, "carol gets a node launched for her")
        #expect(cold.first.map { !$0.candidates[0].offerings.contains { $0.zone == key.zone } || $0.candidates.count > 1 } ?? false,
                "not the offering that had no capacity")
    }

    @Test func warmCapacityStaysWithinThePoolsPriceLimitAndYieldsToARealPod() throws {
        // g4dn.xlarge is $0.526/h: a $1.30/h pool holds two; the schedule asks for three.
        var config = Self.scheduled(running: 3, stopped: 0)
        config.pools[0].limits.pricePerHour = 1.3
        var world = CoreWorld(config: config)
        world.round()
        #expect(Self.warmLaunches(world).count == 2)
        #expect(world.events("WarmCapacityLimited").count == 1)
        world.registerAll()
        world.run(for: 120)
        #expect(Self.warmLaunches(world).count == 2, "no more while at the limit")
        // A notebook that needs a bigger node (6 CPUs: a g4dn.2xlarge, $0.752/h): one warm node
        // makes room for it ($0.526 + $0.752 under $1.30), not both.
        world.add(Self.warmNotebook("dave", cpu: 6000, memory: 16 << 30))
        world.run(for: 3)
        #expect(world.events("WarmCapacityYielded").count == 1)
        #expect(world.terminations.count == 1)
        #expect(world.launches.last?.candidates.first?.name == "g4dn.2xlarge")
        #expect(world.events("WarmCapacityLimited").count == 1, "the tier is not refilled over the limit")
        // A notebook no warm node's room would make fit (8 GPUs): nothing is given up for it.
        world.add(Self.warmNotebook("erin", cpu: 8000, memory: 32 << 30, gpus: 8))
        world.run(for: 3)
        #expect(world.terminations.count == 1)
    }

    @Test func atNightTheWarmCapacityIsRemoved() throws {
        // 08:30–19:00 UTC every day; the world's clock starts at 2027-01-15 08:00 UTC (a Friday).
        var config = ProvisionerConfig()
        config.warm.mode = .schedule
        config.warm.schedules = [WarmSchedule(days: Set(1...7), from: 8 * 60 + 30, to: 19 * 60, timeZone: "UTC", running: 1, stopped: 1, instanceType: "g4dn.xlarge")]
        var world = CoreWorld(config: config)
        world.now = try #require(RFC3339.parse("2027-01-15T08:00:00Z"))
        world.round()
        #expect(world.launches.isEmpty, "before the window")
        world.advance(1800)
        world.round()
        #expect(Self.warmLaunches(world).count == 2)
        world.registerAll()
        world.round()
        world.advance(10.5 * 3600 - 1)
        world.round()
        #expect(world.terminations.isEmpty)
        world.advance(2)  // 19:00:01: no longer wanted; the surplus goes after its grace
        world.run(for: 299)
        #expect(world.terminations.isEmpty)
        world.run(for: 2)
        #expect(world.terminations.count == 2)
        #expect(world.events("WarmNodeRemoved").count == 2)
    }

    /// Warm nodes wait for notebooks: a GPU job gets its own node, while a notebook Berth sees
    /// pending is handed the warm node.
    @Test func aGPUJobDoesNotTakeAWarmNode() throws {
        var world = CoreWorld(config: Self.scheduled(running: 1, stopped: 0))
        world.round()
        world.registerAll()
        world.round()
        let warmNode = try #require(world.nodes.keys.first)
        world.add(gpuPod("train"))
        world.run(for: 3)
        let cold = world.launches.filter { $0.labels[ProvisionerCore.warmLabel] == nil }
        #expect(cold.count == 1, "the job gets a node of its own")
        #expect(world.events("WarmNodeTaken").isEmpty)
        world.add(Self.warmNotebook("frank", at: world.now))
        world.run(for: 3)
        #expect(world.events("WarmNodeTaken").map(\.regarding) == [.node(warmNode)])
        #expect(world.nodes[warmNode]?.taints.contains(ProvisionerCore.warmRunningTaint) == false)
        #expect(world.launches.filter { $0.labels[ProvisionerCore.warmLabel] == nil }.count == 1)
    }

    /// A schedule without a pool takes the first pool that may launch its type for notebooks,
    /// as the config check does: not a spot-only pool listed first, where no warm node can be had.
    @Test func aScheduleWithoutAPoolUsesThePoolTheConfigCheckAccepted() throws {
        var config = Self.scheduled(running: 1, stopped: 1)
        var spot = config.pools[0]
        spot.name = "spot"
        spot.capacityTypes = ["spot"]
        config.pools.insert(spot, at: 0)
        // The type is sold as spot too, so the spot pool has offerings of it (none notebooks may buy).
        var catalog = InstanceCatalog.builtIn()
        let index = try #require(catalog.types.firstIndex { $0.name == "g4dn.xlarge" })
        catalog.types[index].offerings += catalog.types[index].offerings.map { Offering(zone: $0.zone, capacityType: "spot", pricePerHour: $0.pricePerHour * 0.4) }
        try config.warm.checkInstanceTypes(pools: config.pools, catalog: catalog, path: "provisioner.warm")
        var world = CoreWorld(config: config, catalog: catalog)
        world.round()
        #expect(Self.warmLaunches(world).map(\.pool) == ["gpu", "gpu"])
        #expect(world.events("WarmCapacityUnavailable").isEmpty)
    }
}
