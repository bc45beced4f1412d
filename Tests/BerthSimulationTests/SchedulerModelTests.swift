import BerthModel
import BerthScheduling
import Testing

@testable import BerthSimulation

/// The kube-scheduler model's filters and its LeastAllocated score, on values worked out by hand.
@Suite struct SchedulerModelTests {
    static func node(cpuMilli: Int64, memoryGiB: Int64, requestedCPU: Int64 = 0, requestedGiB: Int64 = 0) -> ClusterSimulation.Node {
        var node = ClusterSimulation.Node(
            name: "n", providerID: "", isGPU: false, instanceType: "t", gpuCount: 0, price: 0, labels: [:], taints: [],
            fullAllocatable: Resources(cpuMilli: cpuMilli, memory: memoryGiB << 30, pods: 110),
            allocatable: Resources(cpuMilli: cpuMilli, memory: memoryGiB << 30, pods: 110), launchedAt: 0, gpusAt: 0, lastAccounted: 0)
        node.requested = Resources(cpuMilli: requestedCPU, memory: requestedGiB << 30)
        return node
    }

    @Test func leastAllocatedScoresFreeShareAfterPlacement() {
        // CPU: (4000 - 2000) * 100 / 4000 = 50; memory: (16 - 12) * 100 / 16 = 25; mean 37.
        let pod = Resources(cpuMilli: 1_000, memory: 8 << 30)
        #expect(ClusterSimulation.leastAllocated(pod, node: Self.node(cpuMilli: 4_000, memoryGiB: 16, requestedCPU: 1_000, requestedGiB: 4)) == 37)
        // The emptier (bigger) node wins: 48 vCPU / 192 GiB scores (47000 * 100 / 48000 = 97, 188 * 100 / 192 = 97) = 97.
        #expect(ClusterSimulation.leastAllocated(Resources(cpuMilli: 1_000, memory: 4 << 30), node: Self.node(cpuMilli: 48_000, memoryGiB: 192)) == 97)
        // No requests: upstream's non-zero defaults, 100m and 200 MiB: (1000 - 100) * 100 / 1000 = 90, memory 98.
        #expect(ClusterSimulation.leastAllocated(.zero, node: Self.node(cpuMilli: 1_000, memoryGiB: 16)) == (90 + 98) / 2)
    }

    static func requirements(tolerations: [Toleration] = [], selector: [LabelRequirement] = [], terms: [[LabelRequirement]] = []) -> PodRequirements {
        PodRequirements(
            namespace: "ns", name: "p", requests: Resources(cpuMilli: 500),
            constraints: PodConstraints(tolerations: tolerations, nodeSelector: selector, requiredTerms: terms))
    }

    @Test func filters() {
        let free = Resources(cpuMilli: 1_000, memory: 1 << 30, pods: 10)
        let gpuTaint = [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")]
        let labels = ["nvidia.com/gpu.present": "true", "karpenter.k8s.aws/instance-gpu-name": "t4"]
        let plain = Self.requirements()
        let requests = plain.requests
        #expect(ClusterSimulation.fits(plain, requests: requests, labels: labels, taints: [], free: free))
        #expect(!ClusterSimulation.fits(plain, requests: requests, labels: labels, taints: gpuTaint, free: free))
        #expect(!ClusterSimulation.fits(plain, requests: requests, labels: labels, taints: [], free: Resources(cpuMilli: 400, memory: 1 << 30, pods: 10)))
        // PreferNoSchedule does not filter.
        #expect(ClusterSimulation.fits(plain, requests: requests, labels: labels, taints: [Taint(key: "x", effect: "PreferNoSchedule")], free: free))
        let everything = Self.requirements(tolerations: [Toleration(operator: "Exists")])
        #expect(ClusterSimulation.fits(everything, requests: requests, labels: labels, taints: gpuTaint, free: free))
        let a10g = Self.requirements(selector: [LabelRequirement(key: "karpenter.k8s.aws/instance-gpu-name", operator: .in, values: ["a10g"])])
        #expect(!ClusterSimulation.fits(a10g, requests: requests, labels: labels, taints: [], free: free))
        // Terms are ORed, expressions within a term ANDed.
        let offGPU = LabelRequirement(key: "nvidia.com/gpu.present", operator: .notIn, values: ["true"])
        let t4 = LabelRequirement(key: "karpenter.k8s.aws/instance-gpu-name", operator: .in, values: ["t4"])
        #expect(!ClusterSimulation.fits(Self.requirements(terms: [[offGPU]]), requests: requests, labels: labels, taints: [], free: free))
        #expect(ClusterSimulation.fits(Self.requirements(terms: [[offGPU], [t4]]), requests: requests, labels: labels, taints: [], free: free))
        #expect(!ClusterSimulation.fits(Self.requirements(terms: [[offGPU, t4]]), requests: requests, labels: labels, taints: [], free: free))
        #expect(ClusterSimulation.fits(Self.requirements(terms: [[offGPU]]), requests: requests, labels: [:], taints: [], free: free))
    }

    @Test func percentilesAreNearestRank() {
        let values = (1...20).map(Double.init)
        let p = Percentiles(values)
        #expect(p.p50 == 10 && p.p95 == 19 && p.max == 20 && p.count == 20)
        #expect(Percentiles([]) == Percentiles())
    }
}
