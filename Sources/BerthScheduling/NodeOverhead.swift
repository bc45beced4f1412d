/// What a node keeps for itself before pods get anything. Follows Karpenter's EKS accounting
/// (aws/karpenter-provider-aws pkg/providers/instancetype/types.go): the hypervisor takes 7.5 % of
/// memory (`VMMemoryOverheadPercent`), kube-reserved memory is 11 MiB per pod slot + 255 MiB,
/// kube-reserved CPU is 6 % of the first core, 1 % of the second, 0.5 % of cores 3–4 and 0.25 %
/// above, the hard eviction threshold keeps 100 MiB of memory and 10 % of the root volume, and
/// kube-reserved ephemeral storage is 1 GiB. DaemonSet pods (CNI, kube-proxy, the NVIDIA device
/// plugin) then take their own requests on every node. The root volume is the type's
/// (`InstanceType.rootVolumeGiB`, as the cloud launches it).
public struct NodeOverhead: Sendable, Equatable {
    public var vmMemoryOverheadPercent = 0.075
    /// Requests of the DaemonSet pods that land on every node (pods counts their slots).
    public var daemonSets: Resources

    /// aws-node (VPC CNI) 25m CPU, kube-proxy 100m CPU, the NVIDIA device plugin 50m CPU and
    /// 128 MiB (its chart sets no requests; assumed so GPU nodes are not over-packed), 3 slots.
    public static let defaultDaemonSets = Resources(cpuMilli: 175, memory: 128 << 20, pods: 3)

    public init(daemonSets: Resources = NodeOverhead.defaultDaemonSets) {
        self.daemonSets = daemonSets
    }

    public func kubeReservedCPUMilli(vcpu: Int) -> Int64 {
        let cpu = Int64(vcpu) * 1000
        var reserved: Int64 = 0
        // Each range is truncated to whole millicores on its own, as upstream does.
        for (start, end, share) in [(Int64(0), Int64(1000), 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005), (4000, Int64(1) << 31, 0.0025)]
        where cpu >= start {
            reserved += Int64(Double(min(cpu, end) - start) * share)
        }
        return reserved
    }

    /// Capacity minus kube-reserved, the eviction threshold, VM overhead and DaemonSet requests.
    public func allocatable(_ type: InstanceType) -> Resources {
        let mib: Int64 = 1 << 20
        let vmOverheadMiB = Int64((Double(type.memoryMiB) * vmMemoryOverheadPercent).rounded(.up))
        let kubeReservedMiB = 11 * Int64(type.maxPods) + 255
        let memory = (type.memoryMiB - vmOverheadMiB - kubeReservedMiB - 100) * mib
        let root = Int64(type.rootVolumeGiB) << 30
        let storage = root - (1 << 30) - root / 10
        let node = Resources(
            cpuMilli: Int64(type.vcpu) * 1000 - kubeReservedCPUMilli(vcpu: type.vcpu), memory: memory, ephemeralStorage: storage,
            gpus: Int64(type.gpuCount), pods: Int64(type.maxPods))
        return node - daemonSets
    }
}
