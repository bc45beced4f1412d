import BerthAdmission
import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Synchronization
import Testing

/// The provisioning loop end to end: the fake API server (over TLS, through the real client and
/// informers), the simulated cloud, the simulated kubelet/device plugin/scheduler, one manual clock.
/// Serialized: each test drives threads (informers) and the 2-core machine should not juggle many.
@Suite(.serialized) struct ProvisionerStoryTests {
    @Test func oneNotebookGetsANodeAndTheNodeGoesWhenItStops() async throws {
        let world = try StoryWorld()
        try world.startReplica()
        _ = world.server.write(.pods, try notebookPod("alice"))

        let toRunning = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" }))
        // Batch (≈1–2 s) + boot (60 s) + GPUs (20 s) + scheduling: about 82 s of simulated time.
        #expect(toRunning >= 80 && toRunning <= 90, "\(toRunning) s to running")
        let instances = await world.liveInstances
        #expect(instances.map(\.instanceType) == ["g4dn.xlarge"])
        let nodeName = try #require(world.podNode("jhub/alice"))
        let node = try #require(world.server.object(.nodes, name: nodeName))
        #expect(node["spec"]?["providerID"]?.stringValue == instances.first?.providerID)
        #expect(node["metadata"]?["labels"]?["berth.dev/pool"]?.stringValue == "gpu")
        #expect(node["metadata"]?["labels"]?["karpenter.k8s.aws/instance-gpu-name"]?.stringValue == "t4")
        #expect(node["spec"]?["taints"]?.arrayValue?.contains { $0["key"]?.stringValue == "nvidia.com/gpu" } == true)
        #expect(!world.events(reason: "Nominated").isEmpty, "an Event on the pod says what is launched")
        #expect(!world.events(reason: "Initialized").isEmpty)

        // The notebook runs for ten minutes; the node stays.
        try await world.tick(600)
        #expect(await world.liveInstances.count == 1)

        world.server.remove(.pods, namespace: "jhub", name: "alice")
        let toGone = try #require(try await world.tick(until: {
            let live = await world.liveInstances
            return live.isEmpty && world.server.object(.nodes, name: nodeName) == nil
        }))
        #expect(toGone >= 60 && toGone <= 65, "\(toGone) s from the notebook's end to the node's")
        #expect(!world.events(reason: "Disrupting").isEmpty)
        let records = await world.cloud.allRecords()
        #expect(records.count == 1, "one instance in all")
    }

    @Test func aZonePinnedVolumeDecidesTheZone() async throws {
        let world = try StoryWorld()
        _ = world.server.write(.persistentVolumes, [
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": ["name": "pv-alice"],
            "spec": ["capacity": ["storage": "10Gi"], "accessModes": ["ReadWriteOnce"],
                     "csi": ["driver": "ebs.csi.aws.com", "volumeHandle": "vol-0abc"],
                     "nodeAffinity": ["required": ["nodeSelectorTerms": [["matchExpressions": [
                         ["key": "topology.ebs.csi.aws.com/zone", "operator": "In", "values": ["us-east-1c"]]]]]]]],
        ])
        _ = world.server.write(.persistentVolumeClaims, [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "claim-alice", "namespace": "jhub"],
            "spec": ["volumeName": "pv-alice", "accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "10Gi"]]],
        ])
        try world.startReplica()
        _ = world.server.write(.pods, try notebookPod("alice", claim: "claim-alice"))
        _ = try #require(try await world.tick(until: { await !world.liveInstances.isEmpty }, limit: 30))
        #expect(await world.liveInstances.map(\.zone) == ["us-east-1c"])
    }

    @Test func aStrayCPUPodIsEvictedAndDoesNotKeepTheNode() async throws {
        var config = ProvisionerConfig()
        config.emptyAfter = .seconds(30)
        let world = try StoryWorld(config: config)
        try world.startReplica()
        _ = world.server.write(.pods, try notebookPod("alice"))
        _ = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" }))
        let node = try #require(world.podNode("jhub/alice"))
        _ = world.server.write(.pods, cpuPod("etl-1", node: node))
        // A budget that allows no disruption holds the eviction until it is relaxed.
        _ = world.server.write(.podDisruptionBudgets, [
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": ["name": "etl", "namespace": "airflow"],
            "spec": ["minAvailable": 1, "selector": ["matchLabels": ["app": "etl"]]],
        ])
        world.server.remove(.pods, namespace: "jhub", name: "alice")
        try await world.tick(60)
        #expect(world.server.object(.pods, namespace: "airflow", name: "etl-1") != nil, "the budget protects it")
        #expect(await world.liveInstances.count == 1)
        world.server.remove(.podDisruptionBudgets, namespace: "airflow", name: "etl")
        _ = try #require(try await world.tick(until: { await world.liveInstances.isEmpty }, limit: 30))
        #expect(world.server.object(.pods, namespace: "airflow", name: "etl-1") == nil, "evicted to run elsewhere")
    }

    /// Through the API: the launch intent is on the pod before its node exists, and a budget
    /// that never allows eviction holds a drain for `drainTimeout` only, then the pod is deleted.
    @Test func theLaunchIntentIsWrittenAndADrainEndsAtItsTimeout() async throws {
        var config = ProvisionerConfig()
        config.emptyAfter = .seconds(10)
        config.drainTimeout = .seconds(60)
        let world = try StoryWorld(config: config)
        try world.startReplica()
        _ = world.server.write(.pods, try notebookPod("alice"))
        _ = try #require(try await world.tick(until: { await !world.liveInstances.isEmpty }, limit: 30))
        let instance = try #require(await world.liveInstances.first)
        let annotations = world.server.object(.pods, namespace: "jhub", name: "alice")?["metadata"]?["annotations"]
        #expect(annotations?["berth.dev/launch-id"]?.stringValue == instance.launchID)
        #expect(annotations?["berth.dev/launch-time"]?.stringValue.flatMap(RFC3339.parse) != nil)

        _ = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" }))
        let node = try #require(world.podNode("jhub/alice"))
        _ = world.server.write(.pods, cpuPod("etl-1", node: node))
        _ = world.server.write(.podDisruptionBudgets, [
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": ["name": "etl", "namespace": "airflow"],
            "spec": ["minAvailable": 1, "selector": ["matchLabels": ["app": "etl"]]],
        ])
        world.server.remove(.pods, namespace: "jhub", name: "alice")
        try await world.tick(40)
        #expect(world.server.object(.pods, namespace: "airflow", name: "etl-1") != nil, "the budget holds the drain")
        #expect(!world.events(reason: "DrainBlocked").isEmpty)
        _ = try #require(try await world.tick(until: { await world.liveInstances.isEmpty }, limit: 60))
        #expect(world.server.object(.pods, namespace: "airflow", name: "etl-1") == nil, "deleted at the drain timeout")
        #expect(!world.events(reason: "DrainTimeout").isEmpty)
    }

    /// What KubeCluster reads for the new rules: the deletion deadline and the launch intent.
    @Test func aPodSnapshotCarriesItsDeletionDeadlineAndLaunchIntent() throws {
        var pod = try notebookPod("alice", annotations: ["berth.dev/launch-id": "prod-00ab", "berth.dev/launch-time": "2026-12-04T10:00:00Z"])
        if case var .object(top) = pod, case var .object(meta)? = top["metadata"] {
            meta["deletionTimestamp"] = "2026-12-04T10:05:30Z"
            top["metadata"] = .object(meta)
            pod = .object(top)
        }
        let snapshot = try #require(KubeCluster.podSnapshot(pod, webhook: WebhookConfig()))
        #expect(snapshot.terminating && snapshot.deletionTimestamp == RFC3339.parse("2026-12-04T10:05:30Z"))
        #expect(snapshot.launchIntent == LaunchIntent(launchID: "prod-00ab", at: try #require(RFC3339.parse("2026-12-04T10:00:00Z"))))
    }

    @Test func doNotDisruptKeepsTheNode() async throws {
        var config = ProvisionerConfig()
        config.emptyAfter = .seconds(10)
        let world = try StoryWorld(config: config)
        try world.startReplica()
        _ = world.server.write(.pods, try notebookPod("alice"))
        _ = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" }))
        let node = try #require(world.podNode("jhub/alice"))
        _ = world.server.write(.pods, cpuPod("precious", node: node, annotations: ["karpenter.sh/do-not-disrupt": "true"]))
        world.server.remove(.pods, namespace: "jhub", name: "alice")
        try await world.tick(120)
        #expect(await world.liveInstances.count == 1)
        #expect(!world.events(reason: "DisruptionBlocked").isEmpty)
    }

    @Test func theDevicePluginNeverRegisteringIsReportedAndTheNodeStillGoes() async throws {
        var config = ProvisionerConfig()
        config.gpuRegistrationTimeout = .seconds(120)
        config.emptyAfter = .seconds(30)
        let world = try StoryWorld(config: config, gpuDelay: nil)
        try world.startReplica()
        _ = world.server.write(.pods, try notebookPod("alice"))
        _ = try #require(try await world.tick(until: { !world.events(reason: "GPUsNotRegistered").isEmpty }, limit: 400))
        let regarding = Set(world.events(reason: "GPUsNotRegistered").compactMap { $0["regarding"]?["kind"]?.stringValue })
        #expect(regarding == ["Node", "Pod"])
        let first = try #require(await world.cloud.allRecords().first)
        _ = try #require(try await world.tick(until: { (await world.cloud.allRecords().first?.terminatedAt) != nil }, limit: 120))
        #expect(first.instance.state != .terminated)
        #expect(world.podPhase("jhub/alice") == "Pending", "the notebook waits for a node whose GPUs work")
    }

    @Test func aCrashAtAnyStepLeaksNothingAndLaunchesNothingTwice() async throws {
        let world = try StoryWorld()
        var replica = try world.startReplica()
        _ = world.server.write(.pods, try notebookPod("alice"))
        _ = world.server.write(.pods, try notebookPod("bob"))
        // Crash right after the launches, during the boot, after the GPUs, during the drain.
        var crashes = 0
        func crashAndRestart() throws {
            world.crash(replica)
            replica = try world.startReplica()
            crashes += 1
        }
        _ = try #require(try await world.tick(until: { await world.liveInstances.count == 2 }, limit: 30, replicas: [replica]))
        try crashAndRestart()
        try await world.tick(30, replicas: [replica])
        try crashAndRestart()
        _ = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" && world.podPhase("jhub/bob") == "Running" }, replicas: [replica]))
        #expect(await world.cloud.allRecords().count == 2, "no instance launched twice")
        try crashAndRestart()
        world.server.remove(.pods, namespace: "jhub", name: "alice")
        world.server.remove(.pods, namespace: "jhub", name: "bob")
        try await world.tick(62, replicas: [replica])
        try crashAndRestart()
        _ = try #require(try await world.tick(until: { await world.liveInstances.isEmpty && world.server.objects(.nodes).isEmpty }, limit: 200, replicas: [replica]))
        #expect(crashes == 4)
        #expect(await world.cloud.allRecords().count == 2)
    }

    @Test func twoReplicasWithLeaderElectionLaunchOnce() async throws {
        let world = try StoryWorld()
        let electionClient = try world.client()
        let wallClock = ContinuousClock()
        func elector(_ identity: String) -> LeaderElector {
            var configuration = LeaderElectionConfiguration(namespace: "berth-system", name: "berth-provisioner", identity: identity)
            configuration.leaseDuration = .seconds(15)
            configuration.renewDeadline = .seconds(10)
            configuration.retryPeriod = .seconds(2)
            return LeaderElector(client: electionClient, configuration: configuration)
        }
        let electors = [elector("berth-a"), elector("berth-b")]
        // Lease time is driven by hand too: each tick is a second of lease time.
        let leaseStart = wallClock.now
        let leaseTime = Mutex<Duration>(.zero)
        for index in 0..<2 {
            let elector = electors[index]
            try world.startReplica(isLeader: { elector.isLeader(at: leaseStart + leaseTime.withLock { $0 }) })
        }
        var alive: Set<Int> = [0, 1]
        func electionRound() {
            leaseTime.withLock { $0 += .seconds(1) }
            let now = leaseStart + leaseTime.withLock { $0 }
            for index in alive.sorted() { _ = electors[index].step(now: now) }
        }
        electionRound()
        let leaders = [0, 1].filter { electors[$0].isLeader(at: leaseStart + leaseTime.withLock { $0 }) }
        #expect(leaders.count == 1)
        _ = world.server.write(.pods, try notebookPod("alice"))
        for _ in 0..<30 {
            electionRound()
            try await world.tick()
        }
        #expect(await world.cloud.allRecords().count == 1, "only the leader launched")

        // The leader dies: the other takes over once the lease expires, and finishes the story.
        let survivor = leaders[0] == 0 ? 1 : 0
        world.crash(leaders[0])
        alive.remove(leaders[0])
        var seconds = 0
        while world.podPhase("jhub/alice") != "Running" && seconds < 200 {
            electionRound()
            try await world.tick(replicas: [survivor])
            seconds += 1
        }
        #expect(world.podPhase("jhub/alice") == "Running", "the survivor took over within the lease duration")
        for _ in 0..<20 {
            electionRound()
            try await world.tick(replicas: [survivor])
        }
        #expect(electors[survivor].isLeader(at: leaseStart + leaseTime.withLock { $0 }))
        world.server.remove(.pods, namespace: "jhub", name: "alice")
        for _ in 0..<70 {
            electionRound()
            try await world.tick(replicas: [survivor])
        }
        #expect(await world.liveInstances.isEmpty)
        #expect(await world.cloud.allRecords().count == 1)
    }

    /// A pod whose scheduling fields cannot be read (a bad quantity, as only a buggy client could
    /// write) is reported on the pod; the notebook next to it is provisioned as usual.
    @Test func aMalformedPodIsReportedAndNothingElseSuffers() async throws {
        let world = try StoryWorld()
        try world.startReplica()
        var broken = try notebookPod("mallory")
        broken = try JSONPatch([JSONPatchOperation(op: .replace, path: JSONPointer(["spec", "containers", "0", "resources", "requests", "cpu"]), value: "two")]).apply(to: broken)
        // (The fake scheduler cannot read it either; mark it as kube-scheduler would.)
        broken = try JSONPatch([JSONPatchOperation(op: .replace, path: JSONPointer(["status"]), value: [
            "phase": "Pending", "conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable"]],
        ])]).apply(to: broken)
        _ = world.server.write(.pods, broken)
        _ = world.server.write(.pods, try notebookPod("alice"))
        _ = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" }))
        let invalid = world.events(reason: "InvalidPod")
        #expect(invalid.count == 1)
        #expect(invalid.first?["regarding"]?["name"]?.stringValue == "mallory")
        #expect(invalid.first?["note"]?.stringValue?.contains("spec.containers[0].resources.requests.cpu") == true, "\(invalid)")
        #expect(await world.cloud.allRecords().count == 1)
    }

    /// The catalog is re-read every `catalogRefreshInterval`: when the cheapest type's price rises,
    /// the next notebook gets the type that is now cheapest; a failed read keeps the old catalog.
    @Test func aRefreshedCatalogChangesTheNextChoice() async throws {
        let world = try StoryWorld()
        let dearer: InstanceCatalog = {
            var catalog = InstanceCatalog.builtIn()
            let index = catalog.types.firstIndex { $0.name == "g4dn.xlarge" }!
            for o in catalog.types[index].offerings.indices { catalog.types[index].offerings[o].pricePerHour = 2.0 }
            return catalog
        }()
        let reads = Mutex(0)
        try world.startReplica(adjust: { options in
            options.catalogRefreshInterval = .seconds(60)
            options.catalogSource = {
                let read = reads.withLock { count -> Int in
                    count += 1
                    return count
                }
                switch read {
                case 1: return .builtIn()
                case 2: return nil  // a failed read: the old catalog stays
                default: return dearer
                }
            }
        })
        _ = world.server.write(.pods, try notebookPod("alice"))
        _ = try #require(try await world.tick(until: { await world.liveInstances.count == 1 }, limit: 30))
        #expect(await world.liveInstances.map(\.instanceType) == ["g4dn.xlarge"])
        try await world.tick(125)  // two refreshes: one failed, one dearer
        #expect(reads.withLock { $0 } == 3)
        _ = world.server.write(.pods, try notebookPod("bob"))
        _ = try #require(try await world.tick(until: { await world.liveInstances.count == 2 }, limit: 30))
        #expect(await world.liveInstances.map(\.instanceType).sorted() == ["g4dn.2xlarge", "g4dn.xlarge"])
    }

    /// A warning about the cloud as a whole (EC2's prices that are not the region's own) becomes a
    /// Warning Event on Berth's own pod, asked after each catalog read.
    @Test func cloudWarningsBecomeEventsOnBerthsPod() async throws {
        let world = try StoryWorld()
        let own: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "berth-provisioner-0", "namespace": "berth-system"],
                         "spec": ["containers": [["name": "berth", "image": "berth:0.1.0"]]], "status": ["phase": "Running"]]
        _ = world.server.write(.pods, own)
        let asked = Mutex(0)
        try world.startReplica(adjust: { options in
            options.selfPod = "berth-system/berth-provisioner-0"
            options.catalogSource = { nil }
            options.catalogRefreshInterval = .seconds(60)
            options.cloudWarnings = {
                let count = asked.withLock { value -> Int in
                    value += 1
                    return value
                }
                return count == 1 ? [CloudWarning(reason: "BuiltInPrices", message: "region ap-northeast-2: on-demand prices are us-east-1's")] : []
            }
        })
        _ = try #require(try await world.tick(until: { !world.events(reason: "BuiltInPrices").isEmpty }, limit: 5))
        let event = try #require(world.events(reason: "BuiltInPrices").first)
        #expect(event["type"]?.stringValue == "Warning" && event["regarding"]?["name"]?.stringValue == "berth-provisioner-0")
        #expect(event["note"]?.stringValue?.contains("ap-northeast-2") == true)
        try await world.tick(130)
        #expect(asked.withLock { $0 } >= 3, "asked after each catalog read")
        #expect(world.events(reason: "BuiltInPrices").count == 1)
    }
}
