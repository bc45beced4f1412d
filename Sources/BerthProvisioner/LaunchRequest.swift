import BerthModel
import BerthScheduling

/// One instance to launch: what `CloudProvider.create` is given. Built by the provisioner from a
/// `SchedulingPlan.NewNode` and the pool.
public struct LaunchRequest: Sendable, Equatable {
    /// The idempotency token (EC2's ClientToken): the same id never launches two instances.
    public var launchID: String
    public var pool: String
    /// The instance types that would do, cheapest first, each with the offerings (zone, capacity
    /// type) the caller accepts, in the order to try them. Offerings with `available == false`
    /// (recently out of capacity) are skipped.
    public var candidates: [InstanceType]
    /// Tags on the instance; always include ``CloudTag/cluster``, ``CloudTag/pool`` and
    /// ``CloudTag/launchID``.
    public var tags: [String: String]
    /// Labels and taints the node registers with (the pool's, plus the instance type's labels).
    public var labels: [String: String]
    public var taints: [Taint]

    /// `extraTags` are added to the three Berth tags; Berth's win on a clash.
    public init(
        launchID: String, cluster: String, pool: String, candidates: [InstanceType],
        labels: [String: String] = [:], taints: [Taint] = [], extraTags: [String: String] = [:]
    ) {
        self.launchID = launchID
        self.pool = pool
        self.candidates = candidates
        var tags = extraTags
        tags[CloudTag.cluster] = cluster
        tags[CloudTag.pool] = pool
        tags[CloudTag.launchID] = launchID
        self.tags = tags
        self.labels = labels
        self.taints = taints
    }

    public var cluster: String? { tags[CloudTag.cluster] }

    /// Every (type, offering) pair to try, in order, unavailable offerings left out.
    public var attempts: [(type: InstanceType, offering: Offering)] {
        candidates.flatMap { type in type.offerings.filter(\.available).map { (type, $0) } }
    }

    /// The checks every cloud makes before launching anything.
    public func validate() throws(CloudError) {
        if launchID.isEmpty { throw .invalidRequest("launch id is empty") }
        if candidates.isEmpty { throw .invalidRequest("launch \(launchID): no candidate instance types") }
        if attempts.isEmpty { throw .invalidRequest("launch \(launchID): every candidate offering is marked unavailable") }
    }
}
