import BerthScheduling

/// Every failure of a ``CloudProvider``, with what was asked. Which call throws which case is
/// documented on the protocol.
public enum CloudError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No capacity for any of these offerings (EC2's InsufficientInstanceCapacity and friends):
    /// the caller marks them unavailable for a while (the scheduler's `unavailableOfferings`) and
    /// tries the next cheapest.
    case insufficientCapacity(offerings: [OfferingKey])
    /// The instance does not exist or is terminated; for `delete`, the job is done.
    case notFound(providerID: String)
    /// The cloud's API rate limit; nothing happened, retry later.
    case throttled(operation: String)
    /// The request can never succeed as it is (malformed id, nothing to launch, unknown type).
    case invalidRequest(String)
    /// The cloud refused the request for a reason no retry fixes until someone changes the
    /// configuration or the permissions: `action` (the cloud's call, e.g. `CreateFleet`) failed with
    /// the cloud's `code` (`UnauthorizedOperation`, `InvalidAMIID.NotFound`, ...) and `message`.
    /// Nothing was launched. The caller stops retrying this launch and pauses its pool for a while.
    case refused(action: String, code: String, message: String)
    /// Anything else; the outcome of the call is unknown.
    case other(String)

    public var description: String {
        switch self {
        case let .insufficientCapacity(offerings):
            "insufficient capacity for \(offerings.map(\.text).joined(separator: ", "))"
        case let .notFound(providerID): "instance \(providerID) not found"
        case let .throttled(operation): "\(operation): throttled by the cloud API"
        case let .invalidRequest(reason): "invalid request: \(reason)"
        case let .refused(action, code, message): "\(action) refused: \(code): \(message)"
        case let .other(reason): reason
        }
    }

    public var isNotFound: Bool {
        if case .notFound = self { true } else { false }
    }
}

extension OfferingKey {
    /// The key of `offering` of `type`.
    public init(_ type: InstanceType, _ offering: Offering) {
        self.init(instanceType: type.name, zone: offering.zone, capacityType: offering.capacityType)
    }

    /// `g4dn.xlarge/us-east-1a/on-demand`
    public var text: String { "\(instanceType)/\(zone)/\(capacityType)" }
}
