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

@Suite struct CatalogFileTests {
    @Test func entriesReplaceBuiltInTypesOrAddNewOnes() throws {
        let file = try YAMLReader.document("""
            - {name: g4dn.xlarge, gpus: 1, gpuName: t4, gpuMemoryMiB: 16384, vcpu: 4, memoryMiB: 16384, pricePerHour: 0.631, zones: [eu-west-1a]}
            - {name: g7.xlarge, gpus: 1, gpuName: b200, gpuMemoryMiB: 184320, vcpu: 8, memoryMiB: 65536, arch: arm64, pricePerHour: 3.5, maxPods: 58, rootVolumeGiB: 200}
            """)
        let builtIn = InstanceCatalog.builtIn()
        let catalog = try builtIn.overlaid(with: file, source: "prices.yaml")
        #expect(catalog.types.count == builtIn.types.count + 1)
        let g4dn = try #require(catalog["g4dn.xlarge"])
        #expect(g4dn.pricePerHour == 0.631 && g4dn.offerings.map(\.zone) == ["eu-west-1a"] && g4dn.maxPods == 110)
        let g7 = try #require(catalog["g7.xlarge"])
        #expect(g7.arch == "arm64" && g7.gpuCount == 1 && g7.maxPods == 58 && g7.offerings.map(\.zone) == InstanceCatalog.defaultZones)
        #expect(g7.rootVolumeGiB == 200 && g4dn.rootVolumeGiB == 20)
        #expect(NodeOverhead().allocatable(g7).ephemeralStorage == (200 << 30) - (1 << 30) - (20 << 30))
        #expect(catalog["g5.xlarge"] == builtIn["g5.xlarge"], "other types untouched")
    }

    @Test(arguments: [
        ("{name: x}", "prices.yaml: expected a list of instance types (berth catalog -o json), found an object"),
        ("[{name: x, vcpu: 4, memoryMiB: 1024}]", "prices.yaml: [0].pricePerHour: is required"),
        ("[{name: x, vcpu: 4, memoryMiB: 1024, pricePerHour: -1}]", "prices.yaml: [0].pricePerHour: must be >= 0, found -1.0"),
        ("[{name: x, vcpu: 4.5, memoryMiB: 1024, pricePerHour: 1}]", "prices.yaml: [0].vcpu: must be a whole number >= 0, found 4.5"),
        ("[{name: x, vcpu: 4, memoryMiB: 1024, pricePerHour: 1, gpu: 1}]", "prices.yaml: [0].gpu: unknown field \"gpu\"; allowed fields: name, gpus, gpuName, gpuMemoryMiB, vcpu, memoryMiB, arch, pricePerHour, maxPods, zones, rootVolumeGiB, note"),
        ("[{name: x, vcpu: 4, memoryMiB: 1024, pricePerHour: 1, rootVolumeGiB: 2}]", "prices.yaml: [0].rootVolumeGiB: must be at least 8"),
        ("[{name: x, vcpu: 1, memoryMiB: 1, pricePerHour: 1}, {name: x, vcpu: 1, memoryMiB: 1, pricePerHour: 1}]", "prices.yaml: [1].name: \"x\" is listed twice"),
    ])
    func mistakesAreNamedWithTheirEntry(yaml: String, message: String) throws {
        let json = try YAMLReader.document(yaml)
        #expect {
            try InstanceCatalog.builtIn().overlaid(with: json, source: "prices.yaml")
        } throws: { error in
            (error as? ConfigError)?.description == message
        }
    }
}
