import BerthModel

/// What Berth concluded about a pod.
public enum PodClass: String, Sendable, Equatable {
    case gpuNotebook = "gpu-notebook"
    case gpu = "gpu"
    case other = "non-gpu"
}

/// Each kind of change Berth makes, for metrics and the audit annotation.
public enum MutationKind: String, Sendable, CaseIterable {
    case gpuToleration = "gpu-toleration"
    case gpuAffinity = "gpu-affinity"
    case gpuTypeAffinity = "gpu-type-affinity"
    case notebookNodeAffinity = "notebook-node-affinity"
    case doNotDisrupt = "do-not-disrupt"
    case avoidGPUNodes = "avoid-gpu-nodes"
}

public struct Mutation: Sendable, Equatable {
    /// `nil` when the pod is exempt; `exemptReason` says why.
    public var podClass: PodClass?
    public var exemptReason: String?
    public var gpuResources: [String] = []
    public var patch = JSONPatch()
    public var kinds: [MutationKind] = []
    /// For the user (AdmissionResponse.warnings): e.g. an unusable gpu-type annotation.
    public var warnings: [String] = []
}

/// A pod that is not shaped like a pod (a list where an object belongs, ...). Only manifests given
/// to `berth mutate` can be like this: the apiserver decodes into typed structs before admission.
public struct PodShapeError: Error, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String
    public var description: String { "\(field): \(message)" }
}

/// The mutation policy: classify a pod, then build the smallest JSON Patch that gives GPU pods the
/// GPU toleration and required GPU-node affinity, protects GPU notebooks from disruption, and keeps
/// every other pod off GPU nodes. Pure: no I/O, no clock. Idempotent: applied to its own output it
/// returns an empty patch. It only ever `add`s, so fields it does not know survive untouched.
public struct MutationPolicy: Sendable {
    public let config: WebhookConfig
    /// Patch values that depend only on `config`, built once (see `PatchValues`).
    let values: PatchValues
    /// The largest patch Berth answers (bytes, before base64). A pod that would need more — tens
    /// of thousands of node-selector terms, each getting its requirement — is refused with an
    /// error saying so, instead of an answer many times the size of the review.
    public var maxPatchBytes: Int

    public static let defaultMaxPatchBytes = 1024 * 1024

    public init(config: WebhookConfig = WebhookConfig(), maxPatchBytes: Int = MutationPolicy.defaultMaxPatchBytes) {
        self.config = config
        self.values = PatchValues(config: config)
        self.maxPatchBytes = maxPatchBytes
    }

    /// - Parameters:
    ///   - pod: the Pod object, or a workload's pod template (`metadata` + `spec`).
    ///   - namespace: the namespace the pod is created in (the AdmissionRequest's, authoritative).
    ///   - base: where the pod sits in the document being patched (`/spec/template` for templates).
    ///   - isDaemonSetTemplate: a DaemonSet's template is exempt like its pods.
    public func mutation(
        for pod: JSON, namespace: String?, at base: JSONPointer = JSONPointer(), isDaemonSetTemplate: Bool = false
    ) throws(PodShapeError) -> Mutation {
        try decide(pod, namespace: namespace, at: base, isDaemonSetTemplate: isDaemonSetTemplate)
    }

    /// The same decision read from a `JSONTape` (the webhook's hot path). Two concrete entry
    /// points rather than one public generic: called from another module, a generic runs
    /// unspecialised, an order of magnitude slower.
    public func mutation(
        for pod: JSONCursor, namespace: String?, at base: JSONPointer = JSONPointer(), isDaemonSetTemplate: Bool = false
    ) throws(PodShapeError) -> Mutation {
        try decide(pod, namespace: namespace, at: base, isDaemonSetTemplate: isDaemonSetTemplate)
    }

    func decide<Node: JSONReadable>(
        _ pod: Node, namespace: String?, at base: JSONPointer, isDaemonSetTemplate: Bool
    ) throws(PodShapeError) -> Mutation {
        let view = try PodView(pod, base: base)
        var mutation = Mutation()
        if let reason = exemption(view, namespace: namespace, isDaemonSetTemplate: isDaemonSetTemplate) {
            mutation.exemptReason = reason
            return mutation
        }
        mutation.gpuResources = try gpuResources(of: view)
        let isNotebook = config.notebookSelectors.contains { $0.matches(label: view.label) }
        let podClass: PodClass = mutation.gpuResources.isEmpty ? .other : (isNotebook ? .gpuNotebook : .gpu)
        mutation.podClass = podClass

        var builder = PatchBuilder(view: view, values: values, byteLimit: maxPatchBytes)
        switch podClass {
        case .gpu, .gpuNotebook:
            let tolerations = config.gpuTaints
                .filter { taint in !view.tolerates(taint) }
                .map(Toleration.exists(for:))
            if builder.addTolerations(tolerations) { mutation.kinds.append(.gpuToleration) }

            var requirements = [values.gpuRequirement]
            if let requested = view.annotation(config.gpuTypeAnnotation) {
                let values = Self.gpuTypes(requested)
                if values.isEmpty {
                    mutation.warnings.append(
                        "annotation \(config.gpuTypeAnnotation)=\"\(requested)\" names no valid GPU type (expected e.g. a10g, t4, l4); ignored"
                    )
                } else {
                    requirements.append(LabelRequirement(key: config.gpuTypeLabel, operator: .in, values: values))
                }
            }
            let typeRequirement = requirements.count > 1 ? requirements[1] : nil
            let notebookRequirement = values.notebookRequirement
            if podClass == .gpuNotebook, config.keepNotebooksOffSharedNodes { requirements.append(notebookRequirement) }
            let added = try builder.requireOnEveryTerm(requirements)
            if added.contains(requirements[0]) { mutation.kinds.append(.gpuAffinity) }
            if let typeRequirement, added.contains(typeRequirement) { mutation.kinds.append(.gpuTypeAffinity) }
            if podClass == .gpuNotebook, added.contains(notebookRequirement) { mutation.kinds.append(.notebookNodeAffinity) }

            if podClass == .gpuNotebook, config.protectGPUNotebooks, view.annotation(config.doNotDisruptAnnotation) == nil {
                builder.setAnnotation(config.doNotDisruptAnnotation, "true")
                mutation.kinds.append(.doNotDisrupt)
            }
        case .other:
            // A pod that names the GPU node label itself chose its nodes (a GPU monitoring
            // Deployment, say): Berth does not overrule it.
            if config.keepOtherPodsOffGPUNodes, !view.mentionsLabel(config.gpuNodeLabelKey) {
                let avoid = values.avoidRequirement
                if !(try builder.requireOnEveryTerm([avoid])).isEmpty { mutation.kinds.append(.avoidGPUNodes) }
            }
        }
        if !builder.operations.isEmpty, view.annotation(config.mutatedAnnotation) != podClass.rawValue {
            builder.setAnnotation(config.mutatedAnnotation, podClass.rawValue)
        }
        mutation.patch = builder.patch()
        if builder.exceeded {
            throw PodShapeError(
                field: view.field("spec"),
                message: "the JSON Patch for this pod would be over \(maxPatchBytes) bytes (the limit; --max-patch-bytes): "
                    + "it has too many node-selector terms or tolerations to add to; not mutated")
        }
        return mutation
    }

    func exemption<Node>(_ view: PodView<Node>, namespace: String?, isDaemonSetTemplate: Bool) -> String? {
        let namespace = namespace ?? view.namespace ?? "default"
        if WebhookConfig.systemNamespaces.contains(namespace) || config.exemptNamespaces.contains(namespace) {
            return "namespace \(namespace) is exempt"
        }
        if isDaemonSetTemplate || view.ownedByDaemonSet { return "owned by a DaemonSet" }
        if view.annotation("kubernetes.io/config.mirror") != nil { return "mirror pod" }
        if let node = view.nodeName, !node.isEmpty { return "already bound to node \(node)" }
        if view.annotation(config.skipAnnotation) == "true" { return "annotated \(config.skipAnnotation)=true" }
        return nil
    }

    func gpuResources<Node>(of view: PodView<Node>) throws(PodShapeError) -> [String] {
        var found: [String] = []
        try view.forEachResourceName { name in
            guard config.gpuResources.contains(where: { $0.matches(utf8: name) }) else { return }
            let string = String(decoding: name, as: UTF8.self)
            if !found.contains(string) { found.append(string) }
        }
        return found
    }

    /// `a10g`, `A10G, l4` → `["a10g", "l4"]`; values that could not be label values are dropped.
    static func gpuTypes(_ text: String) -> [String] {
        var values: [String] = []
        for part in text.split(separator: ",") {
            let value = part.trimmingSpaces().lowercased()
            guard !value.isEmpty, value.count <= 63,
                value.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F }),
                let first = value.first, let last = value.last,
                first.isLetter || first.isNumber, last.isLetter || last.isNumber
            else { return [] }
            if !values.contains(value) { values.append(value) }
        }
        return values
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
