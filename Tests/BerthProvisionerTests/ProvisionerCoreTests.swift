import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// The decision core on its own: each scenario of the provisioning issue, stepped second by second.
@Suite struct ProvisionerCoreTests {
    /// Pending pod → batch closes → launch → node registers → pod bound → pod deleted → node
    /// cordoned after emptyAfter → terminated → Node deleted → claim forgotten.
    @Test func oneNotebookFromLaunchToRemoval() throws {
        var world = CoreWorld()
        world.round()  // the first listing: nothing to adopt
        world.add(notebook("alice"))
        world.round()
        #expect(world.launches.isEmpty, "the batch window is open for 1 s after the first pod")
        world.run(for: 1)
        #expect(world.launches.map { $0.candidates.first?.name } == ["g4dn.xlarge"])
        let request = try #require(world.launches.first)
        // One launch carries every offering the notebook takes as well, cheapest first (EC2 falls
        // back within one CreateFleet): the chosen one, then the rest of the catalog's GPU types in price order.
        #expect(request.candidates.first?.offerings.first?.pricePerHour == 0.526)
        let prices = request.attempts.map(\.offering.pricePerHour)
        #expect(request.attempts.count > 10 && prices.first == prices.min())
        #expect(Set(request.candidates.map(\.name)).isSuperset(of: ["g4dn.2xlarge", "g5.xlarge", "g6.xlarge"]))
        #expect(request.tags[CloudTag.cluster] == "berth" && request.tags[CloudTag.pool] == "gpu" && request.tags[CloudTag.launchID] == request.launchID)
        #expect(request.taints == Pool.defaultTaints)
        #expect(request.labels[WellKnownLabel.gpuPresent] == "true" && request.labels["berth.dev/pool"] == "gpu")
        #expect(request.labels[WellKnownLabel.gpuName] == nil, "differs between candidates: set once the launch says which type it got")
        #expect(world.events("Nominated").map(\.regarding) == [.pod("jupyter/alice")])

        // Nothing more is launched while the node boots.
        world.run(for: 30)
        #expect(world.launches.count == 1)
        let instance = try #require(world.instances.values.first)
        let node = world.register(instance)
        world.round()
        #expect(world.events("Registered").count == 1 && world.events("Initialized").count == 1)
        #expect(world.nodes[node]?.labels[WellKnownLabel.gpuName] == "t4" && world.nodes[node]?.labels[WellKnownLabel.instanceType] == "g4dn.xlarge")
        world.bind("jupyter/alice", to: node)
        world.run(for: 600)
        #expect(world.terminations.isEmpty, "a node with a notebook stays")

        world.pods["jupyter/alice"] = nil  // the user stops the notebook
        world.run(for: 60)  // the first round sees it empty; 59 s later it still is not 60 s
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.disruptedTaint) == false, "not before emptyAfter (60 s)")
        world.run(for: 1)
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.disruptedTaint) == true)
        #expect(world.terminations == [instance.providerID], "nothing to evict: terminated at once")
        world.run(for: 1)
        #expect(world.deletedNodes == [node])
        world.run(for: 1)
        #expect(world.core.claims.isEmpty)
        #expect(world.launches.count == 1)
    }

    @Test func nothingIsLaunchedBeforeTheCloudIsListed() {
        var world = CoreWorld()
        world.add(notebook("alice"))
        for _ in 0..<5 {
            world.advance(1)
            world.round(list: false)
        }
        #expect(world.launches.isEmpty)
        world.advance(1)
        world.round()
        world.run(for: 2)
        #expect(world.launches.count == 1)
    }

    @Test func theBatchWindowWaitsForQuietThenCloses() {
        var world = CoreWorld()
        world.round()
        // A pod every 0.8 s keeps the window open until 10 s have passed in all.
        for index in 0..<20 {
            world.add(notebook("nb-\(index)"))
            world.advance(0.8)
            world.round()
            if world.launches.count > 0 {
                #expect(index >= 11, "closed at \(index): before the 10 s maximum")
                break
            }
        }
        #expect(world.launches.count >= 12)
        #expect(Set(world.launches.map(\.launchID)).count == world.launches.count)
    }

    @Test func twoNotebooksInOneBatchGetTwoCheapestSingleGPUNodes() {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.add(notebook("bob"))
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.xlarge", "g4dn.xlarge"])
        #expect(Set(world.core.claims.values.flatMap(\.nominated.keys)) == ["jupyter/alice", "jupyter/bob"])
        #expect(world.core.claims.values.allSatisfy { $0.nominated.count == 1 && $0.dedicated })
    }

    @Test func aNotebookWithAZonePinnedVolumeLaunchesInThatZone() {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice", zones: ["us-east-1c"]))
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].offerings.map(\.zone) } == [["us-east-1c"]])
        #expect(world.launches.first?.labels[WellKnownLabel.zone] == "us-east-1c")
    }

    @Test func aRequestedGPUTypeIsHonoured() {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice", gpuType: "a10g"))
        world.add(notebook("bob", gpuType: "l4"))
        world.run(for: 2)
        #expect(Set(world.launches.map { $0.candidates[0].name }) == ["g5.xlarge", "g6.xlarge"])
    }

    @Test func aGPULimitStopsLaunchesAndSaysSoOnThePod() {
        var config = ProvisionerConfig()
        config.pools[0].limits.gpus = 1
        var world = CoreWorld(config: config)
        world.round()
        world.add(notebook("alice"))
        world.add(notebook("bob"))
        world.run(for: 2)
        #expect(world.launches.count == 1)
        let failed = world.events("FailedProvisioning")
        #expect(failed.count == 1)
        #expect(failed.first?.type == "Warning")
        #expect(failed.first?.message.contains("limit") == true, "\(failed)")
        // Reported once, not every round.
        world.run(for: 30)
        #expect(world.events("FailedProvisioning").count == 1)
        #expect(world.launches.count == 1)
    }

    @Test func aPriceLimitPicksNothingAboveIt() {
        var config = ProvisionerConfig()
        config.pools[0].limits.pricePerHour = 1.0
        var world = CoreWorld(config: config)
        world.round()
        world.add(notebook("alice"))
        world.add(notebook("bob"))  // 2 × 0.526 > 1.0
        world.run(for: 2)
        #expect(world.launches.count == 1)
        #expect(world.events("FailedProvisioning").first?.message.contains("$") == true, "\(world.events("FailedProvisioning"))")
    }

    @Test func insufficientCapacityFallsBackToTheNextCheapestAndForgetsAfterThreeMinutes() {
        var world = CoreWorld()
        world.round()
        world.outOfCapacity = Set(["us-east-1a", "us-east-1b", "us-east-1c"].map { OfferingKey(instanceType: "g4dn.xlarge", zone: $0) })
        world.add(notebook("alice"))
        world.run(for: 6)
        // One failed launch per zone of g4dn.xlarge, then the next cheapest type.
        let tried = world.launches.map { "\($0.candidates[0].name)/\($0.candidates[0].offerings[0].zone)" }
        #expect(tried.prefix(3).allSatisfy { $0.hasPrefix("g4dn.xlarge/") })
        #expect(world.instances.values.map(\.instanceType) == ["g4dn.2xlarge"], "\(tried)")
        #expect(tried.count == 4)
        // After the TTL the cheapest type is tried again.
        world.outOfCapacity = []
        world.run(for: 180)
        world.add(notebook("bob"))
        world.run(for: 2)
        #expect(world.instances.values.map(\.instanceType).sorted() == ["g4dn.2xlarge", "g4dn.xlarge"])
    }

    @Test func gpusThatNeverRegisterAreReportedAndTheNodeStillGoes() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        let instance = try #require(world.instances.values.first)
        let node = world.register(instance, gpus: false)
        world.run(for: 299)
        #expect(world.events("GPUsNotRegistered").isEmpty)
        world.run(for: 2)
        let warnings = world.events("GPUsNotRegistered")
        #expect(warnings.map(\.regarding) == [.node(node), .pod("jupyter/alice")])
        #expect(warnings.allSatisfy { $0.type == "Warning" && $0.message.contains("device plugin") })
        // Nobody uses it: drained and removed after emptyAfter; the pod is planned again.
        world.run(for: 62)
        #expect(world.terminations == [instance.providerID])
        #expect(world.launches.count == 2, "the notebook gets a new node")
    }

    @Test func aStrayCPUPodDoesNotKeepAGPUNodeAndIsEvicted() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        let node = world.register(try #require(world.instances.values.first))
        world.round()
        world.bind("jupyter/alice", to: node)
        world.add(cpuPod("etl-1", on: node))  // landed before Berth was installed
        world.add(cpuPod("nvidia-device-plugin-x", namespace: "kube-system", on: node, daemon: true))
        world.run(for: 100)
        #expect(world.evictions.isEmpty)
        world.pods["jupyter/alice"] = nil
        world.run(for: 61)
        #expect(world.evictions == ["airflow/etl-1"], "DaemonSet pods are never evicted")
        world.run(for: 2)
        #expect(world.terminations.count == 1)
    }

    @Test func aPodDisruptionBudgetHoldsTheDrainAndIsRetried() throws {
        var world = CoreWorld()
        let node = try world.nodeThatServedANotebook()
        world.add(cpuPod("etl-1", on: node))
        world.protectedByBudget = ["airflow/etl-1"]
        world.run(for: 70)
        let attempts = world.evictions.count
        #expect(attempts >= 2 && attempts <= 3, "retried every 5 s, not every round: \(attempts)")
        #expect(world.terminations.isEmpty)
        world.protectedByBudget = []
        world.run(for: 6)
        #expect(world.terminations.count == 1)
    }

    @Test func doNotDisruptOnAPodOrTheNodeIsHonoured() throws {
        var world = CoreWorld()
        let node = try world.nodeThatServedANotebook()
        world.add(cpuPod("precious", on: node, doNotDisrupt: true))
        world.run(for: 300)
        #expect(world.evictions.isEmpty && world.terminations.isEmpty)
        #expect(world.events("DisruptionBlocked").count == 1)
        world.pods["airflow/precious"] = nil
        world.nodes[node]?.doNotDisrupt = true
        world.run(for: 120)
        #expect(world.terminations.isEmpty)
        world.nodes[node]?.doNotDisrupt = false
        world.run(for: 2)
        #expect(world.terminations.count == 1)
    }

    @Test func aPodThatComesBackBeforeEmptyAfterKeepsTheNode() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        let node = world.register(try #require(world.instances.values.first))
        world.round()
        world.pods["jupyter/alice"] = nil
        world.run(for: 50)
        var again = notebook("alice")
        again.nodeName = node
        again.unschedulable = false
        world.add(again)
        world.run(for: 20)
        world.pods["jupyter/alice"] = nil
        world.run(for: 50)
        #expect(world.terminations.isEmpty, "the empty clock restarted when the pod came back")
        world.run(for: 12)
        #expect(world.terminations.count == 1)
    }

    @Test func pendingPodsThatFitALaunchingNodeAreNotGivenAnother() {
        var world = CoreWorld()
        world.round()
        world.add(gpuPod("train-0", gpus: 2, cpu: 8000, memory: 32 << 30))
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge"])
        // While it boots, two 1-GPU jobs arrive: the launching node has 2 GPUs to spare.
        world.add(gpuPod("train-1", cpu: 1000, memory: 4 << 30))
        world.add(gpuPod("train-2", cpu: 1000, memory: 4 << 30))
        world.run(for: 3)
        #expect(world.launches.count == 1)
        #expect(world.core.claims.values.first?.nominated.keys.sorted() == ["jupyter/train-0", "jupyter/train-1", "jupyter/train-2"])
        // A third does not fit any more.
        world.add(gpuPod("train-3", cpu: 1000, memory: 4 << 30))
        world.run(for: 3)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge", "g4dn.xlarge"])
    }

    @Test func aRestartAdoptsTaggedInstancesAndLaunchesNothingTwice() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.loseLaunchAnswers = true  // the process dies before it hears back
        world.run(for: 2)
        #expect(world.instances.count == 1)
        // A new process: fresh core, same cloud and cluster.
        world.core = ProvisionerCore(config: world.config, seed: 99)
        world.loseLaunchAnswers = false
        world.run(for: 5)
        #expect(world.instances.count == 1, "the pending notebook is placed on the adopted instance")
        #expect(world.events("Adopted").count == 1)
        let node = world.register(try #require(world.instances.values.first))
        world.round()
        world.bind("jupyter/alice", to: node)
        world.pods["jupyter/alice"] = nil
        world.run(for: 62)
        #expect(world.terminations.count == 1)
    }

    @Test func aRestartMidDrainResumesTheDrain() throws {
        var world = CoreWorld()
        let node = try world.nodeThatServedANotebook()
        world.add(cpuPod("etl-1", on: node))
        world.protectedByBudget = ["airflow/etl-1"]
        world.run(for: 62)
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.disruptedTaint) == true)
        world.core = ProvisionerCore(config: world.config, seed: 3)
        world.protectedByBudget = []
        world.run(for: 2)
        #expect(world.evictions.last == "airflow/etl-1")
        #expect(world.terminations.count == 1)
    }

    @Test func garbageCollectionTerminatesInstancesThatNeverRegisterAndDeletesOrphanNodes() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        let instance = try #require(world.instances.values.first)
        world.run(for: 899)
        #expect(world.terminations.isEmpty)
        world.run(for: 2)
        #expect(world.terminations == [instance.providerID])
        #expect(world.events("RegistrationTimeout").count == 1)
        world.run(for: 2)
        #expect(world.launches.count == 2, "the notebook is retried")

        // A Berth node whose instance vanished (terminated out of band) is deleted.
        let second = try #require(world.instances.values.first)
        let node = world.register(second)
        world.round()
        world.instances[second.providerID] = nil
        world.run(for: 61)
        #expect(world.deletedNodes.contains(node))
    }

    @Test func aLaunchTheCloudNeverAnswersTimesOut() {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.outOfCapacity = []
        world.loseLaunchAnswers = true
        // Unanswered launches stay in flight (the runtime reports a failure when a call errors).
        world.run(for: 2)
        #expect(world.core.claims.values.first?.launchInFlight == true)
        world.loseLaunchAnswers = false
        let launchID = world.launches[0].launchID
        world.core.record(.launchFailed(launchID: launchID, .other("connection reset")), now: world.now)
        world.run(for: 5)
        #expect(world.launches.count == 2 && world.launches[1].launchID == launchID, "retried with the same launch id")
        #expect(world.instances.count == 1)
    }

    /// Two 4-GPU nodes: one ends up with a single 1-GPU job that fits on the other. With
    /// consolidation on, that node is drained (the job moves) and removed; off, it stays.
    @Test(arguments: [false, true])
    func consolidationMovesStragglersOffAnUnderusedNodeOnlyWhenEnabled(enabled: Bool) throws {
        var config = ProvisionerConfig()
        config.consolidation = enabled
        var world = CoreWorld(config: config)
        world.round()
        world.add(gpuPod("job-a", gpus: 3, cpu: 4000, memory: 16 << 30))
        world.run(for: 2)
        world.add(gpuPod("job-c", gpus: 1, cpu: 1000, memory: 4 << 30))
        world.run(for: 2)
        world.add(gpuPod("job-b", gpus: 3, cpu: 4000, memory: 16 << 30))
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge", "g4dn.12xlarge"])
        world.registerAll()
        world.round()
        world.bindNominated()
        world.run(for: 2)
        let nodeOfC = try #require(world.pods["jupyter/job-c"]?.nodeName)
        #expect(world.pods["jupyter/job-a"]?.nodeName == nodeOfC)
        world.pods["jupyter/job-a"] = nil  // job A finishes
        world.run(for: 70)
        if enabled {
            #expect(world.evictions == ["jupyter/job-c"])
            #expect(world.events("Consolidating").count == 1)
            #expect(world.terminations.count == 1)
        } else {
            #expect(world.evictions.isEmpty && world.terminations.isEmpty)
        }
    }

    @Test func notebookNodesAreNeverConsolidated() throws {
        var config = ProvisionerConfig()
        config.consolidation = true
        var world = CoreWorld(config: config)
        world.round()
        world.add(notebook("alice"))
        world.add(notebook("bob"))
        world.run(for: 2)
        world.registerAll()
        world.round()
        world.bindNominated()
        world.run(for: 300)
        #expect(world.evictions.isEmpty && world.terminations.isEmpty)
    }

    /// The node launched for a notebook is taken by another pod before kube-scheduler binds the
    /// notebook: 30 s after the node is initialised, the notebook is planned again (a new node),
    /// instead of waiting for the other pod to finish.
    @Test func aNotebookWhoseNodeWasTakenGetsAnotherAfterTheGrace() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        let node = world.register(try #require(world.instances.values.first))
        world.round()
        var thief = gpuPod("train-x")
        thief.nodeName = node
        thief.unschedulable = false
        thief.phase = .running
        world.add(thief)
        world.run(for: 29)
        #expect(world.launches.count == 1, "kube-scheduler still has time to bind alice")
        world.run(for: 4)
        #expect(world.launches.count == 2, "alice gets a node of her own")
        #expect(world.core.claims.values.contains { $0.nominated.keys.contains("jupyter/alice") && $0.nodeName == nil })
    }

    /// Nodes are labelled with their role; a notebook never joins a shared (packed jobs) node, even
    /// one launching with room, so no notebook keeps a multi-GPU job node alive.
    @Test func aNotebookNeverJoinsASharedNode() throws {
        var world = CoreWorld()
        world.round()
        world.add(gpuPod("train-0", gpus: 2, cpu: 8000, memory: 32 << 30))
        world.run(for: 2)
        #expect(world.launches.first?.labels["berth.dev/node-role"] == "shared")
        #expect(world.launches.first?.tags["berth.dev/node-role"] == "shared")
        world.add(notebook("alice"))
        world.run(for: 3)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge", "g4dn.xlarge"])
        #expect(world.launches.last?.labels["berth.dev/node-role"] == "notebook")
        // After a restart the role comes back from the instance's tag.
        world.core = ProvisionerCore(config: world.config, seed: 5)
        world.round()
        #expect(world.core.claims.values.filter(\.dedicated).count == 1)
    }

    /// A shared 4-GPU node left with one 1-GPU job for emptyAfter winds down: tainted so new pods go
    /// elsewhere, nothing evicted; removed when the job finishes. Off: it stays.
    @Test(arguments: [true, false])
    func anUnderusedSharedNodeWindsDownWithoutEvictions(enabled: Bool) throws {
        var config = ProvisionerConfig()
        config.windDownSharedNodes = enabled
        var world = CoreWorld(config: config)
        world.round()
        world.add(gpuPod("train-big", gpus: 3, cpu: 4000, memory: 16 << 30))
        world.run(for: 2)
        world.add(gpuPod("train-small", gpus: 1, cpu: 1000, memory: 4 << 30))
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge"])
        world.registerAll()
        world.round()
        world.bindNominated()
        let node = try #require(world.pods["jupyter/train-small"]?.nodeName)
        world.pods["jupyter/train-big"] = nil  // 1 of 4 GPUs used from now on
        world.run(for: 62)
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.windingDownTaint) == enabled)
        #expect(world.evictions.isEmpty)
        // A new 1-GPU job does not go to the winding-down node: it gets a node of its own.
        world.add(gpuPod("train-next", gpus: 1, cpu: 1000, memory: 4 << 30))
        world.run(for: 3)
        #expect(world.launches.count == (enabled ? 2 : 1))
        world.pods["jupyter/train-small"] = nil
        world.run(for: 64)
        #expect(world.deletedNodes.contains(node), "empty: removed either way")
    }

    /// Creates that keep failing are retried with the same launch id every 5 s until the launch
    /// timeout (5 min); then the launch is given up — no create is sent for it any more — and the
    /// pod is planned again under a new launch id.
    @Test func aLaunchThatKeepsFailingIsGivenUpAtTheTimeout() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.launchesFail = true
        world.run(for: 2)
        let first = try #require(world.launches.first?.launchID)
        world.run(for: 299)
        #expect(world.launches.allSatisfy { $0.launchID == first })
        #expect((55...62).contains(world.launches.count), "every 5 s: \(world.launches.count)")
        world.run(for: 1)
        #expect(world.events("LaunchTimeout").count == 1)
        let attempts = world.launches.filter { $0.launchID == first }.count
        world.launchesFail = false
        world.run(for: 10)
        #expect(world.launches.filter { $0.launchID == first }.count == attempts, "no create for a launch given up")
        #expect(world.instances.values.map(\.launchID).filter { $0 != first }.count == 1, "the pod got a new launch")
    }

    /// A launch the cloud refuses for good (UnauthorizedOperation) is not retried: one Warning on
    /// the pod naming the action and AWS's message, its pool paused for 5 minutes while another
    /// pool still launches, and the pool tried again once the pause is over.
    @Test func aRefusedLaunchIsNotRetriedAndPausesOnlyItsPool() throws {
        var config = ProvisionerConfig()
        let t4 = Pool(name: "t4", requirements: [LabelRequirement(key: WellKnownLabel.gpuName, operator: .in, values: ["t4"])], weight: 10)
        let other = Pool(name: "other", requirements: [LabelRequirement(key: WellKnownLabel.gpuName, operator: .in, values: ["a10g"])])
        config.pools = [t4, other]
        var world = CoreWorld(config: config)
        let message = "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/berth is not authorized to perform: ec2:RunInstances"
        world.refusals["t4"] = .refused(action: "CreateFleet", code: "UnauthorizedOperation", message: message)
        world.round()
        world.add(notebook("alice", gpuType: "t4"))
        world.run(for: 2)
        let refused = try #require(world.launches.first)
        #expect(refused.pool == "t4")
        world.run(for: 60)
        #expect(world.launches.filter { $0.launchID == refused.launchID }.count == 1, "never retried")
        #expect(world.launches.count == 1, "the paused pool launches nothing; the other pool has no T4 type")
        let warnings = world.events("LaunchRefused")
        #expect(warnings.count == 1 && warnings.first?.regarding == .pod("jupyter/alice") && warnings.first?.type == "Warning")
        #expect(warnings.first?.message.contains("CreateFleet refused: UnauthorizedOperation: \(message)") == true)
        #expect(warnings.first?.message.contains("no launch in pool t4 for 5m") == true)
        #expect(world.events("FailedProvisioning").last?.message.contains("pool t4 is paused until") == true)
        #expect(world.core.pausedPools["t4"] != nil)

        // Another pool is not paused: a pod it serves is launched at once.
        world.add(notebook("bob", gpuType: "a10g"))
        world.run(for: 2)
        #expect(world.launches.last?.pool == "other" && world.launches.last?.candidates.first?.gpuName == "a10g")

        // The pause ends: alice's launch is tried again, in a pool that works now.
        world.refusals = [:]
        world.run(for: 300)
        #expect(world.core.pausedPools.isEmpty)
        #expect(world.launches.filter { $0.pool == "t4" }.count == 2)
        #expect(world.instances.values.contains { $0.tags[CloudTag.pool] == "t4" })
    }

    /// A spot interruption warning: the node is tainted and drained at once (its pod is evicted
    /// and, recreated by its controller, planned onto a new node before the instance is gone),
    /// then terminated. A rebalance recommendation only warns; a notice for an unknown instance is
    /// ignored; an instance already terminated is given up at once.
    @Test func anInterruptionDrainsTheNodeAtOnce() throws {
        var world = CoreWorld()
        world.round()
        world.add(gpuPod("train-a"))
        world.run(for: 2)
        let instance = try #require(world.instances.values.first)
        let node = world.register(instance)
        world.round()
        world.bind("jupyter/train-a", to: node)
        world.round()
        let instanceID = try #require(ProviderID(instance.providerID)?.instanceID)

        world.core.interrupted(InterruptionNotice(kind: .rebalanceRecommendation, instanceID: instanceID), now: world.now)
        world.core.interrupted(InterruptionNotice(kind: .spotInterruption, instanceID: "i-not-ours"), now: world.now)
        world.round()
        #expect(world.events("RebalanceRecommendation").count == 1 && world.evictions.isEmpty)
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.disruptedTaint) == false)

        world.core.interrupted(InterruptionNotice(kind: .spotInterruption, instanceID: instanceID), now: world.now)
        world.round()
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.disruptedTaint) == true, "cordoned at once, not after emptyAfter")
        #expect(world.evictions == ["jupyter/train-a"])
        let warning = try #require(world.events("Interrupted").first)
        #expect(warning.type == "Warning" && warning.message.contains("spot interruption warning") && warning.message.contains(instanceID))

        // The pod's controller recreates it: it is planned onto a new node while the old one drains.
        world.add(gpuPod("train-a2"))
        world.run(for: 2)
        #expect(world.launches.count == 2, "a replacement launched at once")
        #expect(world.terminations == [instance.providerID], "the drained node's instance terminated")

        // A notice that the replacement is already terminated: given up, its Node deleted.
        let replacement = try #require(world.instances.values.first { $0.providerID != instance.providerID })
        let replacementNode = world.register(replacement)
        world.round()
        world.core.interrupted(InterruptionNotice(kind: .stateChange("terminated"), instanceID: ProviderID(replacement.providerID)!.instanceID), now: world.now)
        world.round()
        #expect(world.deletedNodes.contains(replacementNode))
    }

    /// A node whose instance has drifted (the cloud says its AMI is no longer the selected one):
    /// labelled, wound down (no new pods; its running notebook untouched), and removed once no GPU
    /// pod uses it.
    @Test func aDriftedNodeTakesNoNewPodsAndGoesWhenEmpty() throws {
        var world = CoreWorld()
        world.round()
        world.add(gpuPod("train-a", gpus: 2, notebook: false))
        world.run(for: 2)
        let instance = try #require(world.instances.values.first)
        #expect(instance.instanceType == "g4dn.12xlarge", "4 GPUs: room for another pod")
        let node = world.register(instance)
        world.round()
        world.bind("jupyter/train-a", to: node)
        world.run(for: 5)

        world.instances[instance.providerID]?.drift = "AMI ami-old is no longer the one node class gpu selects (ami-new)"
        world.run(for: 1)
        #expect(world.nodes[node]?.labels[ProvisionerCore.driftedLabel] == "true")
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.windingDownTaint) == true)
        #expect(world.events("Drifted").count == 1 && world.events("Drifted").first?.message.contains("ami-new") == true)
        #expect(world.evictions.isEmpty && world.terminations.isEmpty, "its pod runs on undisturbed")

        // A new pod does not go there, though the node has two free GPUs: a new node is launched.
        world.add(gpuPod("train-b", gpus: 1, notebook: false))
        world.run(for: 2)
        #expect(world.launches.count == 2)

        world.pods["jupyter/train-a"] = nil
        world.run(for: 62)
        #expect(world.terminations == [instance.providerID], "removed once empty")
        #expect(world.events("Drifted").count == 1, "said once")
    }
}
