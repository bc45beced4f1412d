import BerthModel

/// A node the scheduler can place pods on without launching anything: registered, or launched and
/// still booting (in flight). `requested` is what pods already bound or nominated there take.
public struct NodeState: Sendable {
    public var name: String
    public var pool: String
    public var instanceType: String
    public var labels: [String: String]
    public var taints: [Taint]
    /// Counted against the pool's limits.
    public var capacity: Resources
    public var allocatable: Resources
    public var requested: Resources
    public var pricePerHour: Double
    /// The extended resource its GPUs are advertised as.
    public var gpuResource: String
    public var launching: Bool
    /// False for a node that counts against its pool's limits but takes no pod: cordoned,
    /// draining, winding down, being terminated.
    public var schedulable: Bool
    /// The pods bound or nominated there, for pod affinity, anti-affinity, topology spread and
    /// host ports (their requests are already in `requested`).
    public var pods: [PodRequirements]

    public init(
        name: String, pool: String, instanceType: String, labels: [String: String], taints: [Taint], capacity: Resources,
        allocatable: Resources, requested: Resources = .zero, pricePerHour: Double, gpuResource: String = "nvidia.com/gpu",
        launching: Bool = false, schedulable: Bool = true, pods: [PodRequirements] = []
    ) {
        self.name = name
        self.pool = pool
        self.instanceType = instanceType
        self.labels = labels
        self.taints = taints
        self.capacity = capacity
        self.allocatable = allocatable
        self.requested = requested
        self.pricePerHour = pricePerHour
        self.gpuResource = gpuResource
        self.launching = launching
        self.schedulable = schedulable
        self.pods = pods
    }

    /// The node a launch of `type` from `offering` in `pool` will become.
    public static func launching(
        name: String, type: InstanceType, offering: Offering, pool: Pool, overhead: NodeOverhead = NodeOverhead(), requested: Resources = .zero
    ) -> NodeState {
        NodeState(
            name: name, pool: pool.name, instanceType: type.name, labels: pool.nodeLabels(type: type, offering: offering), taints: pool.taints, capacity: type.capacity,
            allocatable: overhead.allocatable(type), requested: requested, pricePerHour: offering.pricePerHour, launching: true)
    }
}

/// An offering Berth must not try for a while (EC2 said insufficient capacity).
public struct OfferingKey: Sendable, Hashable {
    public var instanceType: String
    public var zone: String
    public var capacityType: String

    public init(instanceType: String, zone: String, capacityType: String = "on-demand") {
        self.instanceType = instanceType
        self.zone = zone
        self.capacityType = capacityType
    }
}
