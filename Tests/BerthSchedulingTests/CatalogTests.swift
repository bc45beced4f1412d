import BerthModel
import BerthScheduling
import Testing

@Suite struct CatalogTests {
    let catalog = InstanceCatalog.builtIn()

    @Test func everyGPUTypeOfTheTableWithItsPrice() throws {
        #expect(catalog.types.count == 28)
        let g4dn = try #require(catalog["g4dn.xlarge"])
        #expect(g4dn.pricePerHour == 0.526)
        #expect((g4dn.vcpu, g4dn.memoryMiB, g4dn.gpuCount, g4dn.gpuName, g4dn.gpuMemoryMiB) == (4, 16384, 1, "t4", 16384))
        #expect(catalog["p5.48xlarge"]?.gpuName == "h100")
        #expect(catalog["p3.2xlarge"]?.memoryMiB == Int64(61 * 1024))
        #expect(catalog["g6e.48xlarge"]?.pricePerHour == 30.1312)
        #expect(g4dn.offerings.map(\.zone) == ["us-east-1a", "us-east-1b", "us-east-1c"])
    }

    @Test func labelsAreKarpenters() throws {
        let type = try #require(catalog["g5.12xlarge"])
        let labels = type.labels(for: type.offerings[1])
        #expect(labels["node.kubernetes.io/instance-type"] == "g5.12xlarge")
        #expect(labels["karpenter.k8s.aws/instance-gpu-name"] == "a10g")
        #expect(labels["karpenter.k8s.aws/instance-gpu-count"] == "4")
        #expect(labels["karpenter.k8s.aws/instance-gpu-memory"] == "24576")
        #expect(labels["karpenter.k8s.aws/instance-gpu-manufacturer"] == "nvidia")
        #expect(labels["kubernetes.io/arch"] == "amd64")
        #expect(labels["karpenter.sh/capacity-type"] == "on-demand")
        #expect(labels["topology.kubernetes.io/zone"] == "us-east-1b")
        #expect(labels["nvidia.com/gpu.present"] == "true")
    }

    /// g4dn.xlarge by hand, Karpenter's EKS formula: CPU 4000m − (60 + 10 + 10) kube-reserved −
    /// 175m DaemonSets; memory 16384 MiB − ⌈7.5 %⌉ 1229 − (11 × 29 + 255 = 574) − 100 eviction −
    /// 128 DaemonSets; 29 pod slots − 3 DaemonSet pods.
    @Test func allocatableFollowsKarpentersEKSAccounting() throws {
        let overhead = NodeOverhead()
        let allocatable = overhead.allocatable(try #require(catalog["g4dn.xlarge"]))
        #expect(allocatable.cpuMilli == 3745)
        #expect(allocatable.memory == 14353 << 20)
        #expect(allocatable.gpus == 1)
        #expect(allocatable.pods == 26)
        #expect(overhead.kubeReservedCPUMilli(vcpu: 48) == 60 + 10 + 10 + 110)
        #expect(NodeOverhead(daemonSets: .zero).allocatable(try #require(catalog["g4dn.xlarge"])).cpuMilli == 3920)
    }
}
