import BerthModel
import BerthScheduling
import Foundation

// `make bench-schedule`: Karpenter's scheduling benchmark shape (kubernetes-sigs/karpenter
// pkg/controllers/provisioning/scheduling/scheduling_benchmark_test.go: 400 instance types, mixed
// pods, in-memory Solve) rebuilt for Berth's scheduler. Karpenter cannot run here, so its
// published figure is the reference: 5,000 pods ≈ 14–19 ms per Solve.

/// SplitMix64: the same pods on every run and machine.
struct SeededRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func pick<T>(_ values: [T]) -> T { values[Int(next() % UInt64(values.count))] }
}

/// The 28 real GPU types, 72 synthetic GPU variants (each real family at 1.5×, 3× and 6× the
/// CPU and memory, some arm64), and 300 synthetic CPU-only types (1–300 vCPU, 2/4/8 GiB per vCPU,
/// on-demand and spot in three zones): 400 types.
func benchCatalog() -> InstanceCatalog {
    let zones = InstanceCatalog.defaultZones
    var types = InstanceCatalog.builtIn().types
    let real = types
    var variant = 0
    while types.count < 100 {
        let base = real[variant % real.count]
        let factor = [1.5, 3.0, 6.0][(variant / real.count) % 3]
        var type = base
        type.name = "\(base.family)-syn\(variant / real.count + 1).\(base.size)"
        type.vcpu = Int(Double(base.vcpu) * factor)
        type.memoryMiB = Int64(Double(base.memoryMiB) * factor)
        type.arch = variant % 5 == 0 ? "arm64" : "amd64"
        type.offerings = zones.map { Offering(zone: $0, pricePerHour: base.pricePerHour * (0.8 + 0.2 * factor)) }
        types.append(type)
        variant += 1
    }
    var index = 0
    while types.count < 400 {
        let vcpu = index / 3 * 3 + 1 + index % 3
        let perVCPU = [2, 4, 8][index % 3]
        let price = 0.0425 * Double(vcpu) + 0.0053 * Double(vcpu * perVCPU)
        let offerings = zones.map { Offering(zone: $0, pricePerHour: price) } + zones.map { Offering(zone: $0, capacityType: "spot", pricePerHour: price * 0.35) }
        types.append(InstanceType(name: "syn-c\(index).\(vcpu)x\(perVCPU)", vcpu: vcpu, memoryMiB: Int64(vcpu * perVCPU * 1024), maxPods: 110, offerings: offerings))
        index += 1
    }
    return InstanceCatalog(types: types)
}

func benchPools() -> [Pool] {
    [
        Pool.default,
        Pool(
            name: "cpu", requirements: [LabelRequirement(key: WellKnownLabel.gpuPresent, operator: .doesNotExist)], taints: [],
            capacityTypes: ["on-demand", "spot"]),
    ]
}

/// 5,000 pods: Karpenter's random CPU (100m–1.5) and memory (100Mi–4Gi) requests; 60 % plain
/// CPU pods, 20 % pinned to a zone (half of them spot only), 8 % GPU jobs (1, 2 or 4 GPUs,
/// one of three GPU names), 2 % GPU notebooks, 10 % with an arch nodeSelector. Every non-GPU pod
/// carries the webhook's "not a GPU node" affinity, every GPU pod its toleration and affinity.
func benchPods(count: Int, sharedStorage: Bool = true) -> [PodRequirements] {
    var random = SeededRandom(state: 42)
    let cpu: [Int64] = [100, 250, 500, 1000, 1500]
    let memory: [Int64] = [100, 256, 512, 1024, 2048, 4096].map { $0 << 20 }
    let avoidGPU = LabelRequirement(key: WellKnownLabel.gpuPresent, operator: .notIn, values: ["true"])
    let gpuToleration = Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule")
    let onGPU = LabelRequirement(key: WellKnownLabel.gpuPresent, operator: .in, values: ["true"])
    // Shared constraint values, as pods of one workload share them.
    let plain = PodConstraints(requiredTerms: [[avoidGPU]])
    let zoned = InstanceCatalog.defaultZones.flatMap { zone in
        [false, true].map { spot in
            var term = [avoidGPU, LabelRequirement(key: WellKnownLabel.zone, operator: .in, values: [zone])]
            if spot { term.append(LabelRequirement(key: WellKnownLabel.capacityType, operator: .in, values: ["spot"])) }
            return PodConstraints(requiredTerms: [term])
        }
    }
    let amd64 = PodConstraints(nodeSelector: [LabelRequirement(key: WellKnownLabel.arch, operator: .in, values: ["amd64"])], requiredTerms: [[avoidGPU]])
    let gpuJobs = ["t4", "a10g", "l4"].map { name in
        PodConstraints(tolerations: [gpuToleration], requiredTerms: [[onGPU, LabelRequirement(key: WellKnownLabel.gpuName, operator: .in, values: [name])]])
    }
    let notebook = PodConstraints(tolerations: [gpuToleration], requiredTerms: [[onGPU]])
    var pods: [PodRequirements] = []
    pods.reserveCapacity(count)
    for index in 0..<count {
        let slot = index % 50
        let requests = Resources(cpuMilli: random.pick(cpu), memory: random.pick(memory))
        let name = "pod-\(index)"
        // Pods decoded from the API share no storage: rebuild the constraint arrays per pod.
        func own(_ constraints: PodConstraints) -> PodConstraints {
            guard !sharedStorage else { return constraints }
            return PodConstraints(
                tolerations: constraints.tolerations.map { $0 }, nodeSelector: constraints.nodeSelector.map { $0 },
                requiredTerms: constraints.requiredTerms.map { $0.map { LabelRequirement(key: String(decoding: Array($0.key.utf8), as: UTF8.self), operator: $0.operator, values: $0.values.map { String(decoding: Array($0.utf8), as: UTF8.self) }) } },
                zones: constraints.zones)
        }
        switch slot {
        case 0..<30: pods.append(PodRequirements(namespace: "bench", name: name, requests: requests, constraints: own(plain)))
        case 30..<40: pods.append(PodRequirements(namespace: "bench", name: name, requests: requests, constraints: own(random.pick(zoned))))
        case 40..<45: pods.append(PodRequirements(namespace: "bench", name: name, requests: requests, constraints: own(amd64)))
        case 45..<49:
            var gpu = requests
            gpu.gpus = random.pick([1, 1, 2, 4])
            pods.append(PodRequirements(namespace: "bench", name: name, requests: gpu, gpuResource: "nvidia.com/gpu", constraints: own(random.pick(gpuJobs))))
        default:
            let requests = Resources(cpuMilli: random.pick([2000, 4000]), memory: random.pick([8, 16]) << 30, gpus: 1)
            pods.append(PodRequirements(namespace: "jhub", name: "jupyter-\(index)", requests: requests, gpuResource: "nvidia.com/gpu", isNotebook: true, constraints: own(notebook)))
        }
    }
    return pods
}

func benchSchedule() {
    let catalog = benchCatalog()
    let pools = benchPools()
    let clock = ContinuousClock()
    func millis(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e3 + Double(attoseconds) / 1e15
    }
    print("bench-schedule: \(catalog.types.count) instance types (28 real EC2 GPU types + 72 synthetic GPU variants + 300 synthetic CPU types), 2 pools")
    for count in [5_000, 10_110] {
        let pods = benchPods(count: count)
        let scheduler = Scheduler(catalog: catalog, pools: pools)
        var plan = scheduler.solve(pending: pods)  // warm-up
        var solveSamples: [Double] = []
        var fullSamples: [Double] = []
        for _ in 0..<21 {
            solveSamples.append(millis(clock.measure { plan = scheduler.solve(pending: pods) }))
            fullSamples.append(millis(clock.measure { plan = Scheduler(catalog: catalog, pools: pools).solve(pending: pods) }))
        }
        let solveMs = median(solveSamples)
        let fullMs = median(fullSamples)
        let notebooks = pods.filter(\.isNotebook).count
        let cpuNodes = plan.nodes.filter { $0.pool == "cpu" }
        let gpuNodes = plan.nodes.filter { $0.pool == "gpu" }
        let cpuPods = cpuNodes.reduce(0) { $0 + $1.pods.count }
        print("  nodes: cpu pool \(cpuNodes.count) (\(cpuPods) pods, \(cpuPods / max(cpuNodes.count, 1)) per node, \(Set(cpuNodes.map(\.instanceType)).count) types), gpu pool \(gpuNodes.count) (\(gpuNodes.filter(\.dedicated).count) notebook nodes)")
        print(
            "  \(count) pending pods (\(notebooks) notebooks): \(plan.nodes.count) new nodes, \(plan.unschedulable.count) unschedulable, "
                + String(format: "%.2f $/h", plan.totalPricePerHour))
        print(String(format: "    solve                            %7.2f ms   %9.0f pods/s   (median of 21)", solveMs, Double(count) / solveMs * 1000))
        print(String(format: "    solve incl. catalog precompute   %7.2f ms   %9.0f pods/s", fullMs, Double(count) / fullMs * 1000))
        if count == 5_000 {
            let decoded = benchPods(count: count, sharedStorage: false)
            var samples: [Double] = []
            for _ in 0..<21 { samples.append(millis(clock.measure { plan = scheduler.solve(pending: decoded) })) }
            print(String(format: "    solve, pods sharing no storage   %7.2f ms   %9.0f pods/s   (as if decoded from the API)", median(samples), Double(count) / median(samples) * 1000))
            print("    reference: Karpenter BenchmarkScheduling5000, published 5,000 pods ≈ 14–19 ms (≈260–360k pods/s; not runnable here)")
            print(String(format: "    ratio: Karpenter / Berth = %.1f–%.1f× (solve), %.1f–%.1f× (incl. precompute)", 14 / solveMs, 19 / solveMs, 14 / fullMs, 19 / fullMs))
        } else {
            print("    reference: Karpenter published 10,110 pods ≈ 90 ms")
            print(String(format: "    ratio: Karpenter / Berth = %.1f× (solve)", 90 / solveMs))
        }
    }
}
