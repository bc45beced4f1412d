import BerthModel

/// The patch values that depend only on the config — the GPU tolerations and every level of the
/// node-affinity structure for the requirement sets Berth adds to most pods — built and written
/// as JSON once, when the policy is made. A pod's patch then copies bytes instead of building
/// and writing the same small trees on every admission review.
final class PatchValues: Sendable {
    /// Each level of `affinity.nodeAffinity.required….nodeSelectorTerms[].matchExpressions[]`
    /// holding `requirements`, from the outermost structure to a single expression.
    struct Levels: Sendable {
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

    let tolerations: [(toleration: Toleration, encoded: EncodedJSON)]
    let common: [Levels]

    init(config: WebhookConfig) {
        tolerations = config.gpuTaints.map { taint in
            let toleration = Toleration.exists(for: taint)
            return (toleration, EncodedJSON(toleration.json))
        }
        let gpu = LabelRequirement(key: config.gpuNodeLabelKey, operator: .in, values: [config.gpuNodeLabelValue])
        let avoid = LabelRequirement(key: config.gpuNodeLabelKey, operator: .notIn, values: [config.gpuNodeLabelValue])
        let notebook = LabelRequirement(key: WebhookConfig.nodeRoleLabel, operator: .notIn, values: ["shared"])
        common = [Levels([gpu]), Levels([avoid]), Levels([gpu, notebook])]
    }

    /// The cached levels for these requirements, or new ones (a `berth.dev/gpu-type` request).
    func levels(for requirements: [LabelRequirement]) -> Levels {
        common.first { $0.requirements == requirements } ?? Levels(requirements)
    }

    func encoded(_ toleration: Toleration) -> EncodedJSON {
        tolerations.first { $0.toleration == toleration }?.encoded ?? EncodedJSON(toleration.json)
    }
}
