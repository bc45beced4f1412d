/// What a node Berth launches is for, as its `berth.dev/node-role` label says. Notebooks avoid
/// `shared` nodes (the webhook's `berth.dev/node-role NotIn [shared]`); the other two admit them.
public enum NodeRole: String, Sendable, Hashable {
    /// One notebook's own node: nothing else is placed on it.
    case notebook
    /// A large node notebooks share (the cheapest type that fits them has many GPUs each).
    case sharedNotebooks = "shared-notebooks"
    /// Packed GPU pods other than notebooks.
    case shared
}

/// What the scheduler decided for one batch of pending pods; nothing has been done yet. Pods are
/// referred to by their index in the `pending` array given to `solve`.
public struct SchedulingPlan: Sendable {
    /// A node to launch.
    public struct NewNode: Sendable {
        public var instanceType: String
        public var pool: String
        public var zone: String
        public var capacityType: String
        public var pricePerHour: Double
        public var pods: [Int]
        /// Why cheaper (or preferred-pool) instance types were not chosen for its first pod.
        public var rejected: [Rejection]
        /// What the node is for (its `berth.dev/node-role` label).
        public var role: NodeRole
        /// A notebook's own node: nothing else is packed onto it.
        public var dedicated: Bool { role == .notebook }
        /// Every other offering its pods would take just as well — same pool, a type they fit on
        /// together, a zone and capacity type they accept, within the pool's limits, not marked
        /// unavailable — cheapest first: a cloud that can try many offerings in one launch (EC2's
        /// CreateFleet) falls back to them itself when the chosen one has no capacity.
        public var alternatives: [LaunchOption] = []
        /// The scheduler's own bookkeeping: the pods' constraint group and the chosen type's index.
        var group = -1
        var typeIndex = -1
    }

    /// One instance type in one offering.
    public struct LaunchOption: Sendable, Equatable {
        public var instanceType: String
        public var offering: Offering

        public init(instanceType: String, offering: Offering) {
            self.instanceType = instanceType
            self.offering = offering
        }
    }

    /// A pod that fits on a node that exists or is already launching.
    public struct Placement: Sendable, Equatable {
        public var pod: Int
        public var node: String
    }

    public struct Unschedulable: Sendable, Equatable {
        public var pod: Int
        public var reason: String

        public init(pod: Int, reason: String) {
            self.pod = pod
            self.reason = reason
        }
    }

    public var nodes: [NewNode] = []
    public var placements: [Placement] = []
    public var unschedulable: [Unschedulable] = []

    public var totalPricePerHour: Double { nodes.reduce(0) { $0 + $1.pricePerHour } }

    public init() {}
}

/// One instance type passed over, and why: "g4dn.xlarge: needs 6 vCPU, has 3.745". The text is
/// built only when read: a solve records these for every shape, most are never shown.
public struct Rejection: Sendable, Equatable, CustomStringConvertible {
    public enum Cause: Sendable, Equatable {
        case tooSmall(needs: Resources, has: Resources, gpuResource: String?)
        case limit(String)
    }

    public var instanceType: String
    public var pool: String
    public var cause: Cause

    public init(instanceType: String, pool: String, cause: Cause) {
        self.instanceType = instanceType
        self.pool = pool
        self.cause = cause
    }

    public var reason: String {
        switch cause {
        case let .tooSmall(needs, has, gpuResource): needs.shortfall(in: has, gpuResource: gpuResource) ?? "does not fit"
        case let .limit(text): text
        }
    }

    public var description: String { "\(instanceType): \(reason)" }
}
