import BerthModel

/// The patch values that depend only on the config — the GPU tolerations and every level of the
/// node-affinity structure for the requirement sets Berth adds to most pods — built and written
/// as JSON once, when the policy is made. A pod's patch then copies bytes instead of building
/// and writing the same small trees on every admission review.
final class PatchValues: Sendable {
    /// Each level of `affinity.nodeAffinity.required….nodeSelectorTerms[].matchExpressions[]`
    /// holding `requirements`, from the outermost structure to a single expression. A class: a
    /// pod's lookup hands one out with one retain, where copying the struct cost ~500 instructions.
    final class Levels: Sendable {
        let requirements: [LabelRequirement]
        let affinity: EncodedJSON
        let nodeAffinity: EncodedJSON
        let required: EncodedJSON
        let terms: EncodedJSON
        let term: EncodedJSON
        let expressions: EncodedJSON
        let expression: [EncodedJSON]

        init(_ requirements: [LabelRequirement]) {
            self.requirements = requirements
            let expressions = JSON.array(requirements.map(\.json))
            let term: JSON = ["matchExpressions": expressions]
            let terms: JSON = [term]
            let required: JSON = ["nodeSelectorTerms": terms]
            let nodeAffinity: JSON = ["requiredDuringSchedulingIgnoredDuringExecution": required]
            self.expression = requirements.map { EncodedJSON($0.json) }
            self.expressions = EncodedJSON(expressions)
            self.term = EncodedJSON(term)
            self.terms = EncodedJSON(terms)
            self.required = EncodedJSON(required)
            self.nodeAffinity = EncodedJSON(nodeAffinity)
            self.affinity = EncodedJSON(["nodeAffinity": nodeAffinity])
        }
    }

    /// The pointers `PatchBuilder` adds at, for a pod at the root of its document: every
    /// admission review (only `berth mutate` sees pod templates, whose pointers are built).
    struct Paths: Sendable {
        let tolerations = EncodedPointer(["spec", "tolerations"])
        let tolerationsEnd = EncodedPointer(["spec", "tolerations", "-"])
        let affinity = EncodedPointer(["spec", "affinity"])
        let nodeAffinity = EncodedPointer(["spec", "affinity", "nodeAffinity"])
        let required = EncodedPointer(["spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"])
        let terms = EncodedPointer(["spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"])
        let termsEnd = EncodedPointer(
            ["spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms", "-"])
        let metadata = EncodedPointer(["metadata"])
        let annotations = EncodedPointer(["metadata", "annotations"])
    }

    // Each cache keeps what a lookup compares in an array of its own: reading an entry out of
    // an array of whole entries copied the entry (tolerations, levels, operations: ~400-500
    // instructions a comparison).

    let tolerations: [Toleration]
    /// For each of `tolerations`: its JSON, and the operation appending it to a root pod's list.
    let encodedTolerations: [(encoded: EncodedJSON, append: JSONPatchOperation)]
    /// The requirements the policy adds (built here once, not per review): GPU nodes, not GPU
    /// nodes, and not the shared GPU nodes (for notebooks).
    let gpuRequirement: LabelRequirement
    let avoidRequirement: LabelRequirement
    let notebookRequirement: LabelRequirement
    let commonRequirements: [[LabelRequirement]]
    let common: [Levels]
    let paths: Paths
    /// Each annotation the policy sets (do-not-disrupt, mutated) with each value it sets (`true`,
    /// the pod classes), and the whole operation adding it to a root pod's existing map.
    let annotations: [(key: String, value: String)]
    let annotationOperations: [JSONPatchOperation]

    init(config: WebhookConfig) {
        let paths = Paths()
        self.paths = paths
        tolerations = config.gpuTaints.map(Toleration.exists(for:))
        encodedTolerations = tolerations.map { toleration in
            let encoded = EncodedJSON(toleration.json)
            return (encoded, .add(paths.tolerationsEnd, encoded))
        }
        let gpu = LabelRequirement(key: config.gpuNodeLabelKey, operator: .in, values: [config.gpuNodeLabelValue])
        let avoid = LabelRequirement(key: config.gpuNodeLabelKey, operator: .notIn, values: [config.gpuNodeLabelValue])
        let notebook = LabelRequirement(key: WebhookConfig.nodeRoleLabel, operator: .notIn, values: ["shared"])
        (gpuRequirement, avoidRequirement, notebookRequirement) = (gpu, avoid, notebook)
        commonRequirements = [[gpu], [avoid], [gpu, notebook]]
        common = commonRequirements.map(Levels.init)
        annotations = [(config.doNotDisruptAnnotation, "true")]
            + [PodClass.gpuNotebook, .gpu, .other].map { (config.mutatedAnnotation, $0.rawValue) }
        annotationOperations = annotations.map { Self.annotation($0.key, $0.value, under: JSONPointer()) }
    }

    private static func annotation(_ key: String, _ value: String, under base: JSONPointer) -> JSONPatchOperation {
        .add(EncodedPointer(base.appending(contentsOf: ["metadata", "annotations", key])), .string(value))
    }

    /// Adds annotation `key` with `value` to an existing map.
    func annotation(_ key: String, _ value: String, under base: JSONPointer) -> JSONPatchOperation {
        // Values first: they are short strings, compared in a word or two; unequal keys of
        // different lengths went to the runtime's string comparison (~90 instructions).
        if base.tokens.isEmpty, let index = annotations.firstIndex(where: { $0.value == value && $0.key == key }) {
            return annotationOperations[index]
        }
        return Self.annotation(key, value, under: base)
    }

    /// The cached levels for these requirements, or new ones (a `berth.dev/gpu-type` request).
    func levels(for requirements: [LabelRequirement]) -> Levels {
        commonRequirements.firstIndex(of: requirements).map { common[$0] } ?? Levels(requirements)
    }

    /// Appends `toleration` to an existing list.
    func appendToleration(_ toleration: Toleration, under base: JSONPointer) -> JSONPatchOperation {
        let path = paths.tolerationsEnd.under(base)
        guard let index = tolerations.firstIndex(of: toleration) else { return .add(path, toleration.json) }
        return base.tokens.isEmpty ? encodedTolerations[index].append : .add(path, encodedTolerations[index].encoded)
    }
}
