import Foundation

/// An instance as the cloud reports it.
public struct CloudInstance: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Launched, not yet booted.
        case pending
        case running
        /// Being stopped (warm capacity): still billed as running until it is stopped.
        case stopping
        /// Stopped: only its volume is billed; ``CloudProvider/start(providerID:)`` boots it again.
        case stopped
        /// Gone. `get` and `list` never return terminated instances; a retried `create` of a
        /// launch whose instance was since terminated does.
        case terminated
    }

    /// `aws:///<zone>/<instance id>` for EC2, `sim:///<zone>/<instance id>` for the simulated
    /// cloud: the Node's `spec.providerID`. See ``ProviderID``.
    public var providerID: String
    public var instanceType: String
    public var zone: String
    public var capacityType: String
    public var launchID: String
    public var tags: [String: String]
    public var state: State
    /// As the cloud reports it (wall time).
    public var launchTime: Date
    /// The price of the offering it was launched from (pool $/hour limits after a restart).
    public var pricePerHour: Double
    /// Why the instance no longer matches what its pool would launch now (EC2: its AMI is no
    /// longer the one its node class selects); nil when it does, or the cloud cannot tell.
    public var drift: String?

    public init(
        providerID: String, instanceType: String, zone: String, capacityType: String, launchID: String,
        tags: [String: String], state: State, launchTime: Date, pricePerHour: Double
    ) {
        self.providerID = providerID
        self.instanceType = instanceType
        self.zone = zone
        self.capacityType = capacityType
        self.launchID = launchID
        self.tags = tags
        self.state = state
        self.launchTime = launchTime
        self.pricePerHour = pricePerHour
    }

    public var pool: String? { tags[CloudTag.pool] }
    public var cluster: String? { tags[CloudTag.cluster] }
}
