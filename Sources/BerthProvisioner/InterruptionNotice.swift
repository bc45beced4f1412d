import Foundation

/// The cloud says an instance is going away (or may soon): EC2's Spot Interruption Warning (two
/// minutes' notice), a scheduled retirement or maintenance (AWS Health), the instance shutting
/// down or terminated, or a rebalance recommendation (a raised risk of interruption). An instance
/// stopping or stopped is not going away (warm capacity stops instances itself): the clouds'
/// sources deliver no notice for it.
public struct InterruptionNotice: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case spotInterruption
        case scheduledChange
        /// `shutting-down`, `terminated`.
        case stateChange(String)
        case rebalanceRecommendation
    }

    public var kind: Kind
    /// The cloud's instance id (`i-0123...`): the last part of a provider id.
    public var instanceID: String
    public var time: Date?

    public init(kind: Kind, instanceID: String, time: Date? = nil) {
        self.kind = kind
        self.instanceID = instanceID
        self.time = time
    }

    public var text: String {
        switch kind {
        case .spotInterruption: "spot interruption warning (two minutes' notice)"
        case .scheduledChange: "scheduled change (AWS Health: retirement or maintenance)"
        case .stateChange(let state): "instance \(state)"
        case .rebalanceRecommendation: "rebalance recommendation (a raised risk of spot interruption)"
        }
    }

    /// Whether the instance is going away: drain now. A rebalance recommendation only warns.
    public var isInterruption: Bool {
        if case .rebalanceRecommendation = kind { return false }
        return true
    }
}

/// A queue of interruption notices (EC2: SQS fed by EventBridge). `receive` returns the notices
/// it could read and every message's receipt — unreadable messages too, so they are deleted
/// rather than read again forever; `acknowledge` deletes them once handled.
public protocol InterruptionSource: Sendable {
    func receive() async throws -> (notices: [InterruptionNotice], receipts: [String])
    func acknowledge(_ receipts: [String]) async throws
}

/// A warning about the cloud as a whole, not one pod or node (EC2: prices that are not the
/// region's own): `reason` as an Event's, `message` its note.
public struct CloudWarning: Sendable, Equatable {
    public var reason: String
    public var message: String

    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }
}
