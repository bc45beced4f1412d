/// Where and how an instance type can be bought: one zone, one capacity type, one price.
public struct Offering: Sendable, Hashable {
    public var zone: String
    public var capacityType: String
    public var pricePerHour: Double
    public var available: Bool

    public init(zone: String, capacityType: String = "on-demand", pricePerHour: Double, available: Bool = true) {
        self.zone = zone
        self.capacityType = capacityType
        self.pricePerHour = pricePerHour
        self.available = available
    }
}

/// One machine shape of the cloud, with the labels a node of that shape carries (Karpenter's
/// well-known labels, so the nodeSelectors users already write keep working).
public struct InstanceType: Sendable, Equatable {
    public var name: String
    public var vcpu: Int
    public var memoryMiB: Int64
    /// Karpenter's `instance-gpu-name` value (t4, a10g, ...); empty for CPU-only types.
    public var gpuName: String
    public var gpuCount: Int
    public var gpuMemoryMiB: Int
    public var gpuManufacturer: String
    public var arch: String
    /// ENI-limited pod density (VPC CNI: interfaces × (IPv4 per interface − 1) + 2).
    public var maxPods: Int
    public var offerings: [Offering]
    /// The root volume a launch of this type gets (GiB): the node's ephemeral storage. Stated by
    /// the cloud (EC2: `launchTemplate.managed.rootVolumeGiB`), so what the scheduler fits is what
    /// the launch provides.
    public var rootVolumeGiB: Int

    /// Karpenter's default root volume for EKS AMIs, when the cloud does not say.
    public static let defaultRootVolumeGiB = 20

    public init(
        name: String, vcpu: Int, memoryMiB: Int64, gpuName: String = "", gpuCount: Int = 0, gpuMemoryMiB: Int = 0,
        gpuManufacturer: String = "nvidia", arch: String = "amd64", maxPods: Int = 110, offerings: [Offering],
        rootVolumeGiB: Int = InstanceType.defaultRootVolumeGiB
    ) {
        self.rootVolumeGiB = rootVolumeGiB
        self.name = name
        self.vcpu = vcpu
        self.memoryMiB = memoryMiB
        self.gpuName = gpuName
        self.gpuCount = gpuCount
        self.gpuMemoryMiB = gpuMemoryMiB
        self.gpuManufacturer = gpuCount > 0 ? gpuManufacturer : ""
        self.arch = arch
        self.maxPods = maxPods
        self.offerings = offerings
    }

    /// The cheapest available offering's price (what `berth catalog` shows).
    public var pricePerHour: Double {
        offerings.filter(\.available).map(\.pricePerHour).min() ?? offerings.map(\.pricePerHour).min() ?? 0
    }

    public var family: String { String(name.split(separator: ".").first ?? Substring(name)) }
    public var size: String { name.split(separator: ".").dropFirst().first.map(String.init) ?? "" }

    /// The labels every node of this type carries, whatever the offering.
    public var labels: [String: String] {
        var labels: [String: String] = [
            WellKnownLabel.instanceType: name,
            WellKnownLabel.arch: arch,
            WellKnownLabel.os: "linux",
            "karpenter.k8s.aws/instance-family": family,
            "karpenter.k8s.aws/instance-size": size,
            "karpenter.k8s.aws/instance-cpu": String(vcpu),
            "karpenter.k8s.aws/instance-memory": String(memoryMiB),
        ]
        if gpuCount > 0 {
            labels[WellKnownLabel.gpuName] = gpuName
            labels[WellKnownLabel.gpuCount] = String(gpuCount)
            labels[WellKnownLabel.gpuMemory] = String(gpuMemoryMiB)
            labels[WellKnownLabel.gpuManufacturer] = gpuManufacturer
            labels[WellKnownLabel.gpuPresent] = "true"
        }
        return labels
    }

    /// The labels of a node launched from `offering`: the type's plus zone and capacity type.
    public func labels(for offering: Offering) -> [String: String] {
        var labels = self.labels
        labels[WellKnownLabel.zone] = offering.zone
        labels[WellKnownLabel.capacityType] = offering.capacityType
        return labels
    }

    /// What the node reports as capacity before any reservation.
    public var capacity: Resources {
        Resources(
            cpuMilli: Int64(vcpu) * 1000, memory: memoryMiB << 20, ephemeralStorage: Int64(rootVolumeGiB) << 30,
            gpus: Int64(gpuCount), pods: Int64(maxPods))
    }
}

public enum WellKnownLabel {
    public static let instanceType = "node.kubernetes.io/instance-type"
    public static let arch = "kubernetes.io/arch"
    public static let os = "kubernetes.io/os"
    public static let zone = "topology.kubernetes.io/zone"
    public static let capacityType = "karpenter.sh/capacity-type"
    public static let nodePool = "karpenter.sh/nodepool"
    public static let gpuName = "karpenter.k8s.aws/instance-gpu-name"
    public static let gpuCount = "karpenter.k8s.aws/instance-gpu-count"
    public static let gpuMemory = "karpenter.k8s.aws/instance-gpu-memory"
    public static let gpuManufacturer = "karpenter.k8s.aws/instance-gpu-manufacturer"
    public static let gpuPresent = "nvidia.com/gpu.present"
}
