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
        /// A notebook's own node: nothing else is packed onto it.
        public var dedicated: Bool
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

/// One instance type passed over, and why: "g4dn.xlarge: needs 6 vCPU, has 3.75".
public struct Rejection: Sendable, Equatable, CustomStringConvertible {
    public var instanceType: String
    public var pool: String
    public var reason: String

    public var description: String { "\(instanceType): \(reason)" }
}
