import BerthScheduling
import BerthSimulation
import Testing

/// Small traces whose right answers are worked out by hand. The simulated cloud draws each node's
/// boot (45–90 s to Ready, 30–60 s more to GPUs) from the seed, so the expectations are written in
/// terms of the wait the report measured: for a pod whose node was launched for it, that wait is
/// the launch delay plus the node's boot, and the node's bill follows from it. The tests whose
/// point is not the image pull turn it off (`imagePull: 0...0`); the pull's own tests fix every
/// delay so the waits are exact.
@Suite struct HandMadeTraceTests {
    static let g4dnXlarge = 0.526

    static func notebook(_ name: String, at arrival: Double, for duration: Double, gpuType: String = "") -> TracePod {
        TracePod(arrival: arrival, duration: duration, namespace: "jhub", name: name, kind: .notebook, gpus: 1, gpuType: gpuType, cpu: 2, memoryGiB: 8)
    }

    static func run(
        _ pods: [TracePod], _ policies: [PolicyName] = PolicyName.allCases, seed: UInt64 = 1, imagePull: ClosedRange<Double> = 0...0,
        boot: ClosedRange<Double>? = nil, gpu: ClosedRange<Double>? = nil
    ) async throws -> SimulationReport {
        var options = SimulationOptions()
        options.seed = seed
        options.imagePullDelay = imagePull
        if let boot { options.bootDelay = boot }
        if let gpu { options.gpuDelay = gpu }
        return try await Simulator.run(trace: Trace(pods: pods), policies: policies, options: options)
    }

    @Test func oneNotebookUnderBerth() async throws {
        let report = try await Self.run([Self.notebook("jupyter-a", at: 0, for: 3_600)])
        let berth = try #require(report[.berth])
        // Pending at 0, the batch closes after 1 s idle, one g4dn.xlarge launched at 1 s.
        #expect(berth.nodesLaunched == 1)
        #expect(berth.costByInstanceType.keys.sorted() == ["g4dn.xlarge"])
        let wait = berth.timeToRunning.max
        #expect(wait >= 1 + 45 + 30 && wait <= 1 + 90 + 60)
        #expect(berth.ownDelay.max == 1)
        // Billed from launch (1 s) to 60 s after the notebook ends (empty, drained, terminated).
        let hours = (wait - 1 + 3_600 + 60) / 3_600
        #expect(abs(berth.gpuNodeHours - hours) < 1e-6)
        #expect(abs(berth.costUSD - Self.g4dnXlarge * hours) < 1e-6)
        #expect(abs(berth.idleGpuNodeHours - (wait - 1 + 60) / 3_600) < 1e-6)
        #expect(berth.squattedGpuNodeHours == 0)
        #expect(berth.unscheduledPods == 0)
        #expect(abs(berth.lowerBoundUSD - Self.g4dnXlarge) < 1e-9)
        #expect(abs(berth.costRatio - hours) < 1e-6)
    }

    @Test func oneNotebookUnderTheBaselines() async throws {
        let report = try await Self.run([Self.notebook("jupyter-a", at: 0, for: 3_600)], [.clusterAutoscaler, .static])
        let ca = try #require(report[.clusterAutoscaler])
        // Seen unschedulable at 0, scaled up at the 10 s scan: one of the three 4 vCPU / 16 GiB
        // types, which least-waste cannot tell apart.
        #expect(ca.nodesLaunched == 1)
        let type = try #require(ca.costByInstanceType.keys.first)
        let prices = ["g4dn.xlarge": 0.526, "g5.xlarge": 1.006, "g6.xlarge": 0.8048]
        let price = try #require(prices[type])
        let wait = ca.timeToRunning.max
        #expect(ca.ownDelay.max == 10)
        // Unneeded from the first scan after the notebook ends, removed 10 minutes later.
        let firstScan = ((wait + 3_600) / 10).rounded(.up) * 10
        let hours = (firstScan + 600 - 10) / 3_600
        #expect(abs(ca.gpuNodeHours - hours) < 1e-6)
        #expect(abs(ca.costUSD - price * hours) < 1e-6)

        let fixed = try #require(report[.static])
        #expect(fixed.nodesLaunched == 1)
        #expect(fixed.timeToRunning.max == 0)
        #expect(abs(fixed.costUSD - Self.g4dnXlarge) < 1e-9)
        #expect(abs(fixed.costRatio - 1) < 1e-9)
        #expect(fixed.idleGpuNodeHours == 0)
    }

    @Test func twoOverlappingNotebooks() async throws {
        let report = try await Self.run([Self.notebook("jupyter-a", at: 0, for: 3_600), Self.notebook("jupyter-b", at: 600, for: 3_600)])
        let berth = try #require(report[.berth])
        // One node each (a notebook's node is its own), each launched 1 s after its notebook.
        #expect(berth.nodesLaunched == 2)
        #expect(berth.ownDelay.max == 1)
        #expect(berth.timeToRunning.count == 2)
        #expect(abs(berth.lowerBoundUSD - 2 * Self.g4dnXlarge) < 1e-9)
        #expect(berth.costRatio > 1 && berth.costRatio < (3_600 + 60 + 151.0) / 3_600)
        let fixed = try #require(report[.static])
        // Peak of two notebooks at once: two g4dn.xlarge from 0 to the last end (4,200 s).
        #expect(fixed.nodesLaunched == 2)
        #expect(abs(fixed.costUSD - 2 * Self.g4dnXlarge * 4_200 / 3_600) < 1e-9)
        #expect(abs(fixed.idleGpuNodeHours - 2 * 600 / 3_600.0) < 1e-9)
    }

    /// An Airflow task tolerating every taint, created while a GPU node runs a notebook, outliving it.
    @Test func cpuPodThatToleratesEverythingNextToAGPUNode() async throws {
        let task = TracePod(arrival: 1_000, duration: 3_600, namespace: "airflow", name: "task-1", kind: .job, cpu: 0.5, memoryGiB: 1, toleratesAll: true)
        let report = try await Self.run([Self.notebook("jupyter-a", at: 0, for: 1_800), task])

        // Berth's webhook keeps it off GPU nodes: a CPU node is launched for it, nothing squats.
        let berth = try #require(report[.berth])
        #expect(berth.cpuNodesLaunched == 1)
        #expect(berth.squattedGpuNodeHours == 0)
        #expect(berth.unscheduledPods == 0)

        // Without the webhook the GPU node is the only node that fits: the task lands there and
        // holds it from the notebook's end to its own (4,600 s).
        let ca = try #require(report[.clusterAutoscaler])
        #expect(ca.cpuNodesLaunched == 0)
        let notebookEnd = ca.timeToRunning.max + 1_800
        #expect(abs(ca.squattedGpuNodeHours - (4_600 - notebookEnd) / 3_600) < 1e-6)
        let fixed = try #require(report[.static])
        #expect(fixed.cpuNodesLaunched == 0)
        #expect(abs(fixed.squattedGpuNodeHours - (4_600 - 1_800) / 3_600.0) < 1e-9)
        #expect(abs(fixed.idleGpuNodeHours - fixed.squattedGpuNodeHours) < 1e-9)
    }

    /// cluster-autoscaler drains a GPU node whose only pod is a squatter that fits elsewhere.
    @Test func clusterAutoscalerMovesASquatterThatFitsElsewhere() async throws {
        // A 7 vCPU / 26 GiB Airflow task fills most of a CPU node (7.735 vCPU, 28.5 GiB allocatable);
        // the tolerating task then scores higher on the GPU node (LeastAllocated: (33 + 35) / 2
        // against (3 + 5) / 2) and squats there.
        let busy = TracePod(arrival: 0, duration: 20_000, namespace: "airflow", name: "etl-1", kind: .job, cpu: 7, memoryGiB: 26)
        let squatter = TracePod(arrival: 1_000, duration: 10_000, namespace: "airflow", name: "task-1", kind: .job, cpu: 0.5, memoryGiB: 1, toleratesAll: true)
        let report = try await Self.run([Self.notebook("jupyter-a", at: 0, for: 1_800), busy, squatter], [.clusterAutoscaler])
        let ca = try #require(report[.clusterAutoscaler])
        #expect(ca.cpuNodesLaunched == 1)
        // GPU utilisation 0 from the notebook's end; the squatter fits the CPU node's 735m and 2.5 GiB: the
        // node is unneeded from the next scan and drained 10 minutes later, the squatter evicted.
        let notebookEnd = ca.timeToRunning.max + 1_800
        let firstScan = (notebookEnd / 10).rounded(.up) * 10
        #expect(ca.evictions == 1)
        #expect(abs(ca.squattedGpuNodeHours - (firstScan + 600 - notebookEnd) / 3_600) < 1e-6)
        #expect(abs(ca.gpuNodeHours - (firstScan + 600 - 10) / 3_600) < 1e-6)
        #expect(ca.unscheduledPods == 0)
    }

    @Test func burstOfTwenty() async throws {
        let pods = (0..<20).map { Self.notebook("jupyter-\($0)", at: 0, for: 3_600) }
        let report = try await Self.run(pods)
        let berth = try #require(report[.berth])
        // One batch, twenty g4dn.xlarge launched at 1 s.
        #expect(berth.nodesLaunched == 20)
        #expect(berth.costByInstanceType.keys.sorted() == ["g4dn.xlarge"])
        #expect(berth.ownDelay.max == 1)
        #expect(berth.unscheduledPods == 0)
        #expect(abs(berth.lowerBoundUSD - 20 * Self.g4dnXlarge) < 1e-9)
        let ca = try #require(report[.clusterAutoscaler])
        // One scale-up of twenty 1-GPU nodes of one group at the 10 s scan.
        #expect(ca.nodesLaunched == 20)
        #expect(ca.costByInstanceType.count == 1)
        #expect(ca.ownDelay.max == 10)
        let fixed = try #require(report[.static])
        #expect(fixed.nodesLaunched == 20)
        #expect(fixed.timeToRunning.max == 0)
    }

    @Test func gpuTypeIsHonoured() async throws {
        let report = try await Self.run([Self.notebook("jupyter-a", at: 0, for: 600, gpuType: "a10g")], [.berth, .static])
        #expect(report[.berth]?.costByInstanceType.keys.sorted() == ["g5.xlarge"])
        #expect(report[.static]?.costByInstanceType.keys.sorted() == ["g5.xlarge"])
        #expect(abs((report[.berth]?.lowerBoundUSD ?? 0) - 1.006 * 600 / 3_600) < 1e-9)
    }

    @Test func aPodNoTypeFitsIsReportedUnscheduled() async throws {
        let huge = TracePod(arrival: 0, duration: 60, namespace: "ml", name: "huge", kind: .job, gpus: 16, cpu: 8, memoryGiB: 32)
        var options = SimulationOptions()
        options.overrun = 600
        options.imagePullDelay = 0...0
        let report = try await Simulator.run(trace: Trace(pods: [huge]), options: options)
        for result in report.policies {
            #expect(result.unscheduledPods == 1, "\(result.policy)")
            #expect(result.nodesLaunched == 0, "\(result.policy)")
        }
    }

    // MARK: - The notebook image's pull

    /// Every delay fixed: Ready 65 s after launch, GPUs 30 s later, the pull 100 s. (65, not 60:
    /// cluster-autoscaler's GPUs then do not appear at the very instant of one of its 10 s scans.)
    static func fixed(_ pods: [TracePod], _ policies: [PolicyName] = PolicyName.allCases, pull: ClosedRange<Double> = 100...100, seed: UInt64 = 1)
        async throws -> SimulationReport
    {
        try await run(pods, policies, seed: seed, imagePull: pull, boot: 65...65, gpu: 30...30)
    }

    @Test func oneNotebookOnAFreshNodeWaitsBootGPUsAndThePull() async throws {
        let report = try await Self.fixed([Self.notebook("jupyter-a", at: 0, for: 3_600)])
        let berth = try #require(report[.berth])
        // Launched at 1 s, Ready at 66, GPUs at 96, bound then, image pulled at 196.
        #expect(berth.timeToRunning.max == 196)
        #expect(berth.notebookTimeToRunning == Percentiles(p50: 196, p95: 196, max: 196, count: 1))
        // The pull is not the autoscaler's delay.
        #expect(berth.ownDelay.max == 1)
        // Billed from launch to 60 s after the notebook's hour, the pull included.
        #expect(abs(berth.gpuNodeHours - (3_856 - 1) / 3_600.0) < 1e-9)
        // Idle from launch to the bind and for the last minute: a pod pulling its image holds the GPU.
        #expect(abs(berth.idleGpuNodeHours - (95 + 60) / 3_600.0) < 1e-9)
        #expect(berth.warmCostUSD == 0 && berth.warmNodeHours == WarmNodeHours(running: 0, stopped: 0))
        // cluster-autoscaler: launched at the 10 s scan, GPUs at 105, Running at 205.
        let ca = try #require(report[.clusterAutoscaler])
        #expect(ca.notebookTimeToRunning.max == 205)
        #expect(ca.ownDelay.max == 10)
        // The static pool pre-pulled the image: no wait at all.
        let fixed = try #require(report[.static])
        #expect(fixed.notebookTimeToRunning.max == 0)
        #expect(abs(fixed.costUSD - Self.g4dnXlarge) < 1e-9)
    }

    @Test func aSecondNotebookOnTheSameNodeDoesNotPull() async throws {
        // jupyter-a runs 196–3,796 s under Berth (205–3,805 s under cluster-autoscaler); jupyter-b
        // comes at 3,820 s while the empty node is still up (Berth keeps it a minute, cluster-
        // autoscaler ten) and starts at once: the image is on the node.
        let pods = [Self.notebook("jupyter-a", at: 0, for: 3_600), Self.notebook("jupyter-b", at: 3_820, for: 600)]
        let report = try await Self.fixed(pods, [.berth, .clusterAutoscaler])
        let berth = try #require(report[.berth])
        #expect(berth.nodesLaunched == 1)
        #expect(berth.notebookTimeToRunning == Percentiles(p50: 0, p95: 196, max: 196, count: 2))
        let ca = try #require(report[.clusterAutoscaler])
        #expect(ca.nodesLaunched == 1)
        #expect(ca.notebookTimeToRunning == Percentiles(p50: 0, p95: 205, max: 205, count: 2))
    }

    @Test func thePullIsDrawnFromTheSeedWithinItsRange() async throws {
        var pulls: [Double] = []
        for seed: UInt64 in 1...6 {
            let pods = [Self.notebook("jupyter-a", at: 0, for: 600)]
            let report = try await Self.fixed(pods, [.berth], pull: 60...150, seed: seed)
            let wait = try #require(report[.berth]).notebookTimeToRunning.max
            let pull = wait - 96
            #expect(pull >= 60 && pull <= 150, "seed \(seed): pull \(pull)")
            pulls.append(pull)
            // The same seed, the same pull.
            let again = try await Self.fixed(pods, [.berth], pull: 60...150, seed: seed)
            #expect(again[.berth]?.notebookTimeToRunning.max == wait)
        }
        #expect(Set(pulls).count > 1, "\(pulls)")
    }

    @Test func onlyNotebooksCountAsNotebooks() async throws {
        let job = TracePod(arrival: 0, duration: 600, namespace: "ml", name: "train-1", kind: .job, gpus: 1, cpu: 2, memoryGiB: 8)
        let report = try await Self.fixed([job], [.berth])
        let berth = try #require(report[.berth])
        // A GPU job pulls too (its node is fresh), but it is not a notebook.
        #expect(berth.timeToRunning.max == 196)
        #expect(berth.notebookTimeToRunning.count == 0)
    }

    @Test func aPodBoundDuringThePullWaitsForTheSamePull() async throws {
        // A 2-GPU job gets a g4dn.12xlarge (4 GPUs): launched at 1 s, GPUs at 96, pulling until
        // 196. A 1-GPU job created at 150 s fits the rest of that node, is bound at once and
        // waits for the pull under way (46 s), not for a pull of its own.
        let first = TracePod(arrival: 0, duration: 3_600, namespace: "ml", name: "train-1", kind: .job, gpus: 2, cpu: 30, memoryGiB: 120)
        let second = TracePod(arrival: 150, duration: 3_600, namespace: "ml", name: "train-2", kind: .job, gpus: 1, cpu: 2, memoryGiB: 8)
        let report = try await Self.fixed([first, second], [.berth])
        let berth = try #require(report[.berth])
        #expect(berth.costByInstanceType.keys.sorted() == ["g4dn.12xlarge"])
        #expect(berth.nodesLaunched == 1)
        #expect(berth.timeToRunning == Percentiles(p50: 46, p95: 196, max: 196, count: 2))
    }

    // MARK: - Warm capacity (`warm.mode: schedule`, every delay fixed so the waits are exact)

    static func warm(running: Int, stopped: Int, _ pods: [TracePod]) async throws -> PolicyResult {
        var options = SimulationOptions()
        options.bootDelay = 60...60
        options.gpuDelay = 30...30
        options.imagePullDelay = 100...100
        options.warmStartDelay = 40...40
        options.provisioner.warm.mode = .schedule
        options.provisioner.warm.imagePuller = true
        options.provisioner.warm.schedules = [
            WarmSchedule(days: Set(1...7), from: 0, to: 24 * 60, timeZone: "UTC", running: running, stopped: stopped, instanceType: "g4dn.xlarge"),
        ]
        let report = try await Simulator.run(trace: Trace(pods: pods), policies: [.berth], options: options)
        return try #require(report[.berth])
    }

    /// A warm node launched at 0 is Ready at 60 s, its images pulled by 160 s (the puller starts at
    /// Ready), its GPUs allocatable at 90 s. A notebook at 1 h is handed it when the batch closes
    /// (1 s) and starts at once: its image is there.
    @Test func oneNotebookMeetsARunningWarmNode() async throws {
        let berth = try await Self.warm(running: 1, stopped: 0, [Self.notebook("jupyter-a", at: 3_600, for: 1_800)])
        #expect(berth.notebookTimeToRunning.max == 1)
        #expect(berth.nodesLaunched == 2, "the warm node, and its refill once taken")
        // Warm from registration (60 s) to the hand-over (3,601 s), then the refill's wait.
        #expect(berth.warmNodeHours.running >= (3_601 - 60) / 3_600)
        #expect(berth.warmNodeHours.stopped == 0)
        #expect(berth.warmCostUSD > 0 && berth.warmCostUSD < berth.costUSD)
    }

    /// The stopped tier: prepared by 160 s, stopped; a notebook at 1 h starts it when the batch
    /// closes (1 s) and its GPUs are allocatable 40 s later; no pull (its volume has the image).
    @Test func aStoppedWarmNodeIsStarted() async throws {
        let berth = try await Self.warm(running: 0, stopped: 1, [Self.notebook("jupyter-a", at: 3_600, for: 1_800)])
        #expect(berth.notebookTimeToRunning.max == 41)
        #expect(berth.nodesLaunched == 2, "the stopped node, and its refill once taken")
        // Stopped (as the cloud bills it: a stop takes 20-40 s) from about 180-200 s to the start,
        // then its refill's stop.
        #expect(berth.warmNodeHours.stopped > (3_601 - 210) / 3_600)
        // A stopped hour costs its volume (100 GiB of gp3), not the instance.
        #expect(berth.warmCostUSD < 0.526 * (berth.warmNodeHours.running + 0.1))
    }

    /// The same notebook without warm capacity waits for a launch, the boot and the pull.
    @Test func withoutWarmCapacityTheNotebookWaitsForALaunch() async throws {
        let report = try await Self.run([Self.notebook("jupyter-a", at: 3_600, for: 1_800)], [.berth], imagePull: 100...100, boot: 60...60, gpu: 30...30)
        #expect(try #require(report[.berth]).notebookTimeToRunning.max == 1 + 60 + 30 + 100)
    }
}
