import BerthModel
import BerthScheduling
import Foundation

/// One node Berth launched (or found tagged with its cluster after a restart), from the launch
/// decision until its Node is gone. Karpenter calls this a NodeClaim; Berth keeps it in memory
/// and rebuilds it from the cloud's tags, so nothing is lost when Berth restarts.
public struct NodeClaim: Sendable {
    public var launchID: String
    public var pool: String
    public var instanceType: String
    public var zone: String
    public var capacityType: String
    public var pricePerHour: Double
    /// What `create` is (re)sent; nil for a claim adopted from the cloud.
    public var request: LaunchRequest?
    public var createdAt: Date
    /// A `create` is outstanding (sent, not answered).
    public var launchInFlight = false
    public var lastLaunchAttempt: Date?
    public var instance: CloudInstance?
    public var nodeName: String?
    public var registeredAt: Date?
    public var initializedAt: Date?
    /// The GPUs never became allocatable: reported, no longer waited for.
    public var gpuWarned = false
    /// Pending pods waiting for this node, with their requests.
    public var nominated: [String: Resources] = [:]
    /// What the node is for: a notebook's own (nothing else is placed on it), shared by notebooks,
    /// or shared by other GPU pods.
    public var role: NodeRole = .shared
    public var dedicated: Bool { role == .notebook }
    public var terminateRequestedAt: Date?
    /// The instance is gone (terminated by Berth or found missing).
    public var terminated = false
    public var lastDeleteRequest: Date?
    /// Tainted `berth.dev/winding-down`: takes no new pods, goes when its pods finish.
    public var windingDown = false
    /// The labels its node must carry (computed at registration).
    public var desiredLabels: [String: String]?
    /// Why its instance no longer matches what its pool launches (``CloudInstance/drift``): it
    /// takes no new pods and goes once no GPU pod uses it.
    public var drift: String?
    /// Warm capacity: the tier this node waits in (nil: a node for pods, or a warm node since taken).
    public var warm: WarmTier?
    /// Warm: when it was prepared (initialised, the images pulled).
    public var preparedAt: Date?
    /// Running, or stopping, stopped, starting (warm capacity's stopped tier).
    public var power: PowerState = .on
    /// Terminated to make room for pending pods under its pool's limits.
    public var yielded = false
    /// When a warm node was handed to the pods nominated there (their nomination grace runs from then).
    public var takenAt: Date?
    /// A stop or start that failed for a passing reason is not tried again before this.
    public var powerRetryAfter: Date?

    /// Launched: its instance exists and is not known to be gone.
    public var isLive: Bool { !terminated && terminateRequestedAt == nil }
    public var providerID: String? { instance?.providerID }
}

/// The two tiers of warm capacity.
public enum WarmTier: String, Sendable {
    /// Up, prepared, labelled `berth.dev/warm=true`: kube-scheduler places the next notebook there.
    case running = "true"
    /// Prepared once, then stopped (tainted `berth.dev/warm=stopped:NoSchedule`): a pending
    /// notebook that fits starts it.
    case stopped
}

/// Whether an instance is up (warm capacity stops and starts them).
public enum PowerState: Sendable, Equatable {
    case on
    case stopping
    case stopped
    /// Start sent at `since`; on again once initialised.
    case starting(since: Date)

    /// Stopping or stopped.
    public var isDown: Bool {
        switch self {
        case .stopping, .stopped: true
        case .on, .starting: false
        }
    }
}

/// A node being drained: cordoned with ``ProvisionerCore/disruptedTaint``, its pods evicted.
public struct DrainState: Sendable {
    public var startedAt: Date
    public var lastEviction: [String: Date] = [:]
    /// Pods whose eviction was refused, with the API's message (a PodDisruptionBudget's).
    public var refused: [String: String] = [:]
    /// When the drain was last reported blocked (repeated every `blockedReportInterval`).
    public var lastBlockedReport: Date?
    /// Pods deleted at the drain timeout, and when (retried after `retryInterval`).
    public var deleted: [String: Date] = [:]
}
