import BerthModel

/// The fields of a Pod the provisioner reads; `json` keeps the whole object.
public struct Pod: Sendable {
    public var metadata: ObjectMeta
    public var nodeName: String
    public var phase: String
    public var schedulerName: String
    /// Sum of the app containers' requests, max'ed with each init container's (the scheduler's
    /// effective request, k8s.io/component-helpers/resource), plus `spec.overhead`.
    public var requests: [String: Quantity]
    public var tolerations: [Toleration]
    public var nodeSelector: [String: String]
    /// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`:
    /// terms are ORed, each term's expressions ANDed.
    public var requiredNodeAffinity: [[LabelRequirement]]
    /// `status.conditions` type → status ("True"/"False"/"Unknown").
    public var conditions: [String: String]
    /// Reason of the PodScheduled=False condition (`Unschedulable` for pending pods).
    public var unschedulableReason: String?
    public var json: JSON

    public init(json: JSON) throws(KubeError) {
        let root = try FieldView(json, path: "", kind: "Pod")
        metadata = try ObjectMeta(json: json["metadata"], kind: "Pod")
        let spec = try root.objectOrEmpty("spec")
        nodeName = try spec.string("nodeName") ?? ""
        schedulerName = try spec.string("schedulerName") ?? "default-scheduler"
        nodeSelector = try spec.stringMap("nodeSelector")
        var sum: [String: Quantity] = [:]
        for (index, container) in try spec.list("containers").enumerated() {
            let view = try FieldView(container, path: "spec.containers[\(index)]", kind: "Pod")
            for (name, quantity) in try Self.requests(of: view) { sum[name, default: .zero] = sum[name, default: .zero] + quantity }
        }
        for (index, container) in try spec.list("initContainers").enumerated() {
            let view = try FieldView(container, path: "spec.initContainers[\(index)]", kind: "Pod")
            for (name, quantity) in try Self.requests(of: view) where quantity > sum[name, default: .zero] { sum[name] = quantity }
        }
        for (name, quantity) in try spec.resources("overhead") { sum[name, default: .zero] = sum[name, default: .zero] + quantity }
        requests = sum
        tolerations = try spec.list("tolerations").map { Toleration(json: $0) }
        var terms: [[LabelRequirement]] = []
        if let affinity = try spec.object("affinity"), let node = try affinity.object("nodeAffinity"),
           let required = try node.object("requiredDuringSchedulingIgnoredDuringExecution") {
            for (index, term) in try required.list("nodeSelectorTerms").enumerated() {
                let view = try FieldView(term, path: "\(required.path).nodeSelectorTerms[\(index)]", kind: "Pod")
                var requirements: [LabelRequirement] = []
                for expression in try view.list("matchExpressions") {
                    // An operator this code does not know cannot be evaluated: the term then
                    // matches no node (a requirement on the empty key with no values never holds),
                    // which errs on the side of not placing the pod.
                    requirements.append(LabelRequirement(json: expression) ?? LabelRequirement(key: "", operator: .in, values: []))
                }
                terms.append(requirements)
            }
        }
        requiredNodeAffinity = terms
        let status = try root.objectOrEmpty("status")
        phase = try status.string("phase") ?? ""
        var conditions: [String: String] = [:]
        var unschedulable: String?
        for (index, condition) in try status.list("conditions").enumerated() {
            let view = try FieldView(condition, path: "status.conditions[\(index)]", kind: "Pod")
            guard let type = try view.string("type") else { continue }
            let value = try view.string("status") ?? ""
            conditions[type] = value
            if type == "PodScheduled" && value == "False" { unschedulable = try view.string("reason") }
        }
        self.conditions = conditions
        unschedulableReason = unschedulable
        self.json = json
    }

    /// Requests, or limits where a request is absent (the apiserver defaults requests from limits).
    private static func requests(of container: FieldView) throws(KubeError) -> [String: Quantity] {
        guard let resources = try container.object("resources") else { return [:] }
        var result = try resources.resources("limits")
        for (name, quantity) in try resources.resources("requests") { result[name] = quantity }
        return result
    }

    public var isTerminating: Bool { metadata.deletionTimestamp != nil }
    public var isReady: Bool { conditions["Ready"] == "True" }
}

/// The fields of a Node the provisioner reads.
public struct Node: Sendable {
    public var metadata: ObjectMeta
    public var providerID: String
    public var unschedulable: Bool
    public var taints: [Taint]
    public var capacity: [String: Quantity]
    public var allocatable: [String: Quantity]
    /// `status.conditions` type → status.
    public var conditions: [String: String]
    public var json: JSON

    public init(json: JSON) throws(KubeError) {
        let root = try FieldView(json, path: "", kind: "Node")
        metadata = try ObjectMeta(json: json["metadata"], kind: "Node")
        let spec = try root.objectOrEmpty("spec")
        providerID = try spec.string("providerID") ?? ""
        unschedulable = try spec.bool("unschedulable") ?? false
        var taints: [Taint] = []
        for (index, taint) in try spec.list("taints").enumerated() {
            let view = try FieldView(taint, path: "spec.taints[\(index)]", kind: "Node")
            taints.append(Taint(key: try view.string("key") ?? "", value: try view.string("value") ?? "",
                                effect: try view.string("effect") ?? ""))
        }
        self.taints = taints
        let status = try root.objectOrEmpty("status")
        capacity = try status.resources("capacity")
        allocatable = try status.resources("allocatable")
        var conditions: [String: String] = [:]
        for (index, condition) in try status.list("conditions").enumerated() {
            let view = try FieldView(condition, path: "status.conditions[\(index)]", kind: "Node")
            if let type = try view.string("type") { conditions[type] = try view.string("status") ?? "" }
        }
        self.conditions = conditions
        self.json = json
    }

    public var isReady: Bool { conditions["Ready"] == "True" }
}

/// A coordination.k8s.io/v1 Lease's spec.
public struct Lease: Sendable, Equatable {
    public var metadata: ObjectMeta
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int?
    /// RFC 3339 with microseconds (MicroTime), as written by the holder.
    public var acquireTime: String?
    public var renewTime: String?
    public var leaseTransitions: Int

    public init(json: JSON) throws(KubeError) {
        let root = try FieldView(json, path: "", kind: "Lease")
        metadata = try ObjectMeta(json: json["metadata"], kind: "Lease")
        let spec = try root.objectOrEmpty("spec")
        holderIdentity = try spec.string("holderIdentity")
        leaseDurationSeconds = try spec.int("leaseDurationSeconds")
        acquireTime = try spec.string("acquireTime")
        renewTime = try spec.string("renewTime")
        leaseTransitions = try spec.int("leaseTransitions") ?? 0
    }
}
