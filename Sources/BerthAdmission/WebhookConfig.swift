import BerthModel

/// The `webhook:` section of BerthConfig: everything the mutation policy decides by.
/// Each default here is documented in README ("Configuration").
public struct WebhookConfig: Sendable, Equatable {
    /// Namespaces never touched whatever the config says (control plane; deadlock otherwise).
    public static let systemNamespaces = ["kube-system", "kube-public", "kube-node-lease"]

    public var gpuResources: [ResourcePattern] = ["nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-*"].map { ResourcePattern($0) }
    public var notebookSelectors: [LabelSelector] = [
        LabelSelector(matchLabels: ["component": "singleuser-server"]),
        LabelSelector(matchExpressions: [LabelRequirement(key: "notebook-name", operator: .exists)]),
    ]
    /// Added to `systemNamespaces`.
    public var exemptNamespaces: [String] = []
    public var gpuTaints: [Taint] = [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")]
    public var gpuNodeLabelKey = "nvidia.com/gpu.present"
    public var gpuNodeLabelValue = "true"
    public var gpuTypeAnnotation = "berth.dev/gpu-type"
    public var gpuTypeLabel = "karpenter.k8s.aws/instance-gpu-name"
    public var skipAnnotation = "berth.dev/skip"
    public var doNotDisruptAnnotation = "karpenter.sh/do-not-disrupt"
    public var mutatedAnnotation = "berth.dev/mutated"
    public var protectGPUNotebooks = true
    public var keepOtherPodsOffGPUNodes = true
    /// GPU notebooks require `nodeRoleLabel NotIn [shared]`: they never land on a node Berth
    /// launched for packed GPU jobs, where one notebook would keep a multi-GPU node alive long after
    /// its jobs (nodes without the label, including every node Berth did not launch, still match).
    public var keepNotebooksOffSharedNodes = true

    /// The label Berth puts on the nodes it launches: `notebook` (one notebook's own node) or
    /// `shared` (GPU pods packed together).
    public static let nodeRoleLabel = "berth.dev/node-role"

    public init() {}

    static let fields = [
        "gpuResources", "notebookSelectors", "exemptNamespaces", "gpuTaints", "gpuNodeLabel", "gpuTypeAnnotation",
        "gpuTypeLabel", "skipAnnotation", "doNotDisruptAnnotation", "mutatedAnnotation", "protectGPUNotebooks",
        "keepOtherPodsOffGPUNodes", "keepNotebooksOffSharedNodes",
    ]

    public init(config json: JSON, path: String) throws(ConfigError) {
        let reader = try FieldReader(json, path: path, allowed: Self.fields)
        if let patterns = try reader.stringList("gpuResources") {
            guard !patterns.isEmpty else { throw ConfigError(path: reader.childPath("gpuResources"), message: "needs at least one resource name") }
            gpuResources = patterns.map { ResourcePattern($0) }
        }
        if let selectors = try reader.list("notebookSelectors") {
            notebookSelectors = []
            for selector in selectors {
                notebookSelectors.append(try LabelSelector(config: selector.value, path: selector.path))
            }
        }
        exemptNamespaces = try reader.stringList("exemptNamespaces") ?? exemptNamespaces
        if let taints = try reader.list("gpuTaints") {
            gpuTaints = []
            for element in taints {
                gpuTaints.append(try Self.taint(element.value, path: element.path))
            }
        }
        if let label = try reader.object("gpuNodeLabel", allowed: ["key", "value"]) {
            gpuNodeLabelKey = try Self.required(label, "key")
            gpuNodeLabelValue = try label.string("value") ?? ""
        }
        gpuTypeAnnotation = try reader.string("gpuTypeAnnotation") ?? gpuTypeAnnotation
        gpuTypeLabel = try reader.string("gpuTypeLabel") ?? gpuTypeLabel
        skipAnnotation = try reader.string("skipAnnotation") ?? skipAnnotation
        doNotDisruptAnnotation = try reader.string("doNotDisruptAnnotation") ?? doNotDisruptAnnotation
        mutatedAnnotation = try reader.string("mutatedAnnotation") ?? mutatedAnnotation
        protectGPUNotebooks = try reader.bool("protectGPUNotebooks") ?? protectGPUNotebooks
        keepOtherPodsOffGPUNodes = try reader.bool("keepOtherPodsOffGPUNodes") ?? keepOtherPodsOffGPUNodes
        keepNotebooksOffSharedNodes = try reader.bool("keepNotebooksOffSharedNodes") ?? keepNotebooksOffSharedNodes
    }

    static let taintEffects = ["NoSchedule", "PreferNoSchedule", "NoExecute"]

    static func taint(_ json: JSON, path: String) throws(ConfigError) -> Taint {
        let fields = try FieldReader(json, path: path, allowed: ["key", "value", "effect"])
        let key = try required(fields, "key")
        let effect = try required(fields, "effect")
        guard taintEffects.contains(effect) else {
            throw ConfigError(path: fields.childPath("effect"), message: "\"\(effect)\" is not one of \(taintEffects.joined(separator: ", "))")
        }
        return Taint(key: key, value: try fields.string("value") ?? "", effect: effect)
    }

    static func required(_ reader: FieldReader, _ key: String) throws(ConfigError) -> String {
        guard let value = try reader.string(key), !value.isEmpty else {
            throw ConfigError(path: reader.childPath(key), message: "is required")
        }
        return value
    }
}
