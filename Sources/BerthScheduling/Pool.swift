import BerthModel

/// A NodePool-like group of nodes Berth may launch: which instance types and offerings
/// (requirements on the instance labels), what the nodes carry (taints, labels), and how far the
/// pool may grow (limits, including dollars per hour). Higher `weight` pools are tried first.
public struct Pool: Sendable, Equatable {
    public var name: String
    public var requirements: [LabelRequirement]
    public var taints: [Taint]
    public var labels: [String: String]
    public var limits: PoolLimits
    public var capacityTypes: [String]
    /// The capacity types a notebook's node may be bought as (on-demand only by default: a spot
    /// interruption kills a kernel's state); other pods use all of `capacityTypes`.
    public var notebookCapacityTypes: [String] = ["on-demand"]
    public var weight: Int
    /// The node class (`provisioner.nodeClasses`) its nodes are launched with; nil: the cloud's default.
    public var nodeClass: String?

    public static let defaultTaints = [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")]

    public init(
        name: String, requirements: [LabelRequirement] = [], taints: [Taint] = Pool.defaultTaints, labels: [String: String] = [:],
        limits: PoolLimits = PoolLimits(), capacityTypes: [String] = ["on-demand"], weight: Int = 0
    ) {
        self.name = name
        self.requirements = requirements
        self.taints = taints
        self.labels = labels
        self.limits = limits
        self.capacityTypes = capacityTypes
        self.weight = weight
    }

    /// The labels a node of this pool, type and offering carries: the type's well-known labels
    /// for the offering (zone, capacity type), the pool's labels, and `karpenter.sh/nodepool`.
    public func nodeLabels(type: InstanceType, offering: Offering) -> [String: String] {
        var result = type.labels(for: offering)
        result.merge(labels) { _, own in own }
        result[WellKnownLabel.nodePool] = name
        return result
    }

    /// The one pool used when the config names none.
    public static let `default` = Pool(name: "gpu", requirements: [LabelRequirement(key: WellKnownLabel.gpuPresent, operator: .in, values: ["true"])])
}

/// Upper bounds on everything a pool's nodes add up to; `nil` means unlimited. CPU and memory count
/// node capacity, as Karpenter's limits do.
public struct PoolLimits: Sendable, Equatable {
    public var gpus: Int64?
    public var cpuMilli: Int64?
    public var memory: Int64?
    public var nodes: Int64?
    public var pricePerHour: Double?

    public init(gpus: Int64? = nil, cpuMilli: Int64? = nil, memory: Int64? = nil, nodes: Int64? = nil, pricePerHour: Double? = nil) {
        self.gpus = gpus
        self.cpuMilli = cpuMilli
        self.memory = memory
        self.nodes = nodes
        self.pricePerHour = pricePerHour
    }

    /// The first limit that adding a node of `capacity` at `price` to `usage` would exceed.
    public func exceeded(by capacity: Resources, price: Double, usage: PoolUsage) -> String? {
        if let nodes, usage.nodes + 1 > nodes { return "nodes limit \(nodes) reached (\(usage.nodes) in use)" }
        if let gpus, usage.gpus + capacity.gpus > gpus {
            return "gpus limit \(gpus) reached (\(usage.gpus) in use, a node adds \(capacity.gpus))"
        }
        if let cpuMilli, usage.cpuMilli + capacity.cpuMilli > cpuMilli {
            return "cpu limit \(Format.cpu(cpuMilli)) reached (\(Format.cpu(usage.cpuMilli)) in use, a node adds \(Format.cpu(capacity.cpuMilli)))"
        }
        if let memory, usage.memory + capacity.memory > memory {
            return "memory limit \(Format.bytes(memory)) reached (\(Format.bytes(usage.memory)) in use, a node adds \(Format.bytes(capacity.memory)))"
        }
        if let pricePerHour, usage.pricePerHour + price > pricePerHour + 1e-9 {
            return "pricePerHour limit \(Format.price(pricePerHour)) reached (\(Format.price(usage.pricePerHour)) in use, a node adds \(Format.price(price)))"
        }
        return nil
    }
}

/// What a pool's nodes (existing, launching, and planned this round) add up to.
public struct PoolUsage: Sendable, Equatable {
    public var nodes: Int64 = 0
    public var gpus: Int64 = 0
    public var cpuMilli: Int64 = 0
    public var memory: Int64 = 0
    public var pricePerHour: Double = 0

    public init() {}

    public mutating func add(capacity: Resources, price: Double) {
        nodes += 1
        gpus += capacity.gpus
        cpuMilli += capacity.cpuMilli
        memory += capacity.memory
        pricePerHour += price
    }

    mutating func remove(capacity: Resources, price: Double) {
        nodes -= 1
        gpus -= capacity.gpus
        cpuMilli -= capacity.cpuMilli
        memory -= capacity.memory
        pricePerHour -= price
    }
}
