import BerthModel
import BerthScheduling
import Foundation

/// What the provisioner's decision code sees of the cluster at one instant: the pods and nodes
/// that matter, already read (by `KubeCluster` from its informers, or by the simulation from its
/// model). Plain values: the decision code never touches the API.
public struct ClusterSnapshot: Sendable {
    public var pods: [PodSnapshot]
    public var nodes: [NodeSnapshot]
    /// The cloud's instances tagged with this cluster, when listed for this round (listed before
    /// the pods and nodes were read, so every Node's instance is in it). `nil` on rounds that did
    /// not list: garbage collection and crash recovery only run on rounds that did.
    public var cloudInstances: [CloudInstance]?

    public init(pods: [PodSnapshot] = [], nodes: [NodeSnapshot] = [], cloudInstances: [CloudInstance]? = nil) {
        self.pods = pods
        self.nodes = nodes
        self.cloudInstances = cloudInstances
    }
}

/// One pod, as the provisioner needs it.
public struct PodSnapshot: Sendable {
    public enum Phase: String, Sendable {
        case pending = "Pending", running = "Running", succeeded = "Succeeded", failed = "Failed", unknown = "Unknown"
    }

    /// `namespace/name`.
    public var key: String
    public var uid: String
    /// Empty when unbound.
    public var nodeName: String
    public var phase: Phase
    /// `metadata.deletionTimestamp` is set.
    public var terminating: Bool
    /// `metadata.deletionTimestamp`: when its grace period ends (the kubelet kills it then).
    public var deletionTimestamp: Date?
    /// Owned by a DaemonSet, or a mirror pod: never counted, never evicted.
    public var daemon: Bool
    /// `karpenter.sh/do-not-disrupt: "true"`.
    public var doNotDisrupt: Bool
    /// `PodScheduled=False` with reason `Unschedulable`.
    public var unschedulable: Bool
    /// Effective requests (GPUs: of `requirements.gpuResource`).
    public var requests: Resources { requirements.requests }
    /// Scheduling requirements, as the webhook left the pod (zones of its volumes included).
    public var requirements: PodRequirements
    /// Why the pod could not be read for scheduling (a malformed field): reported, never placed.
    public var invalid: String?
    /// The launch Berth made for this pod, as written on it before the launch
    /// (``ProvisionerCore/launchIDAnnotation`` and ``ProvisionerCore/launchTimeAnnotation``).
    public var launchIntent: LaunchIntent?
    /// `metadata.creationTimestamp`: when the notebook was asked for (its wait starts there).
    public var createdAt: Date?

    public init(
        key: String, uid: String = "", nodeName: String = "", phase: Phase = .pending, terminating: Bool = false, daemon: Bool = false,
        doNotDisrupt: Bool = false, unschedulable: Bool = false, requirements: PodRequirements, invalid: String? = nil,
        deletionTimestamp: Date? = nil, launchIntent: LaunchIntent? = nil, createdAt: Date? = nil
    ) {
        self.key = key
        self.createdAt = createdAt
        self.launchIntent = launchIntent
        self.deletionTimestamp = deletionTimestamp
        self.uid = uid.isEmpty ? key : uid
        self.nodeName = nodeName
        self.phase = phase
        self.terminating = terminating
        self.daemon = daemon
        self.doNotDisrupt = doNotDisrupt
        self.unschedulable = unschedulable
        self.requirements = requirements
        self.invalid = invalid
    }

    /// Asks for a GPU (the webhook's classification: a request of a configured GPU resource).
    public var requestsGPU: Bool { requirements.gpuResource != nil && requests.gpus > 0 }
    /// Succeeded or Failed: holds nothing.
    public var finished: Bool { phase == .succeeded || phase == .failed }
    /// Counts on its node: not finished, not a DaemonSet or mirror pod.
    public var occupies: Bool { !finished && !daemon }
    /// Waiting for Berth: unbound, marked unschedulable, not going away, and asking for a GPU.
    public var isPendingGPU: Bool { nodeName.isEmpty && unschedulable && !terminating && !daemon && !finished && requestsGPU }
}

/// A launch Berth decided for a pod, written on the pod before the launch is sent: a restarted
/// Berth that cannot see the instance yet (EC2's listing lags) reuses the id as the idempotency
/// token instead of launching a second instance.
public struct LaunchIntent: Sendable, Equatable {
    public var launchID: String
    public var at: Date

    public init(launchID: String, at: Date) {
        self.launchID = launchID
        self.at = at
    }

    /// Read from a pod's annotations; nil when absent or unreadable.
    public init?(annotations: [String: String]) {
        guard let id = annotations[ProvisionerCore.launchIDAnnotation], !id.isEmpty,
            let at = annotations[ProvisionerCore.launchTimeAnnotation].flatMap(RFC3339.parse)
        else { return nil }
        self.init(launchID: id, at: at)
    }

    public var annotations: [String: String] {
        [ProvisionerCore.launchIDAnnotation: launchID, ProvisionerCore.launchTimeAnnotation: RFC3339.string(at)]
    }
}

/// One node, as the provisioner needs it.
public struct NodeSnapshot: Sendable {
    public var name: String
    public var providerID: String
    public var labels: [String: String]
    public var taints: [Taint]
    public var ready: Bool
    /// `spec.unschedulable` (kubectl cordon).
    public var unschedulable: Bool
    /// Allocatable as the kubelet reports it; `gpus` counts `gpuResource`.
    public var allocatable: Resources
    public var gpuResource: String
    public var doNotDisrupt: Bool
    /// `metadata.deletionTimestamp` is set.
    public var deleting: Bool

    public init(
        name: String, providerID: String = "", labels: [String: String] = [:], taints: [Taint] = [], ready: Bool = true,
        unschedulable: Bool = false, allocatable: Resources = .zero, gpuResource: String = "nvidia.com/gpu", doNotDisrupt: Bool = false,
        deleting: Bool = false
    ) {
        self.name = name
        self.providerID = providerID
        self.labels = labels
        self.taints = taints
        self.ready = ready
        self.unschedulable = unschedulable
        self.allocatable = allocatable
        self.gpuResource = gpuResource
        self.doNotDisrupt = doNotDisrupt
        self.deleting = deleting
    }
}

/// Something the decision code wants done. The runtime (or the simulation) carries it out and
/// reports the outcome back with ``ActionResult``.
public enum ProvisionerAction: Sendable {
    /// Launch an instance (idempotent on the request's launch id).
    case launch(LaunchRequest)
    /// Terminate an instance (`node`: its Node, if registered).
    case terminate(providerID: String, node: String?, reason: String)
    /// Add these labels and taints to the node, and remove `removeLabels` and `removeTaints` (by
    /// key and effect).
    case updateNode(name: String, labels: [String: String], removeLabels: [String] = [], addTaints: [Taint], removeTaints: [Taint])
    /// Add these annotations to the pod (the launch intent, written before the launch).
    case annotatePod(pod: String, annotations: [String: String])
    /// Evict the pod through the Eviction API (PodDisruptionBudgets respected).
    case evict(pod: String, node: String)
    /// Delete the pod (no budget asked): a drain that ran past `drainTimeout`.
    case deletePod(pod: String, node: String)
    case deleteNode(name: String)
    /// Stop an instance (warm capacity's stopped tier); its Node stays, tainted.
    case stop(providerID: String, node: String?)
    /// Start a stopped instance (a pending notebook fits it, or the running tier is refilled).
    case start(providerID: String, node: String?)
    case event(ProvisionerEvent)
}

/// A Kubernetes Event Berth records (and logs).
public struct ProvisionerEvent: Sendable, Equatable {
    public enum Object: Sendable, Equatable {
        case pod(String)
        case node(String)
        /// Berth itself (warm capacity as a whole, say): recorded on Berth's own pod when the
        /// runtime knows it, else only logged.
        case provisioner
    }

    public var regarding: Object
    /// `Normal` or `Warning`.
    public var type: String
    public var reason: String
    public var message: String

    public init(regarding: Object, type: String = "Normal", reason: String, message: String) {
        self.regarding = regarding
        self.type = type
        self.reason = reason
        self.message = message
    }
}

/// What became of an action.
public enum ActionResult: Sendable {
    case launched(launchID: String, CloudInstance)
    case launchFailed(launchID: String, CloudError)
    case terminated(providerID: String)
    case terminateFailed(providerID: String, CloudError)
    case evicted(pod: String)
    /// Refused (a PodDisruptionBudget: 429) or failed; retried later.
    case evictionFailed(pod: String, message: String)
    case nodeDeleted(name: String)
    /// The pod was deleted (or was gone already), or deleting it failed (retried later).
    case podDeleted(pod: String)
    case podDeleteFailed(pod: String, message: String)
    case nodeUpdateFailed(name: String, message: String)
    case stopped(providerID: String)
    case stopFailed(providerID: String, CloudError)
    case started(providerID: String)
    case startFailed(providerID: String, CloudError)
}
