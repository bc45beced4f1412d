import BerthModel

/// Turns "the pod must have X" into `add` operations: the whole structure when its parent is
/// missing, an append (`/-`) when the list exists. It never replaces or removes what the pod has.
struct PatchBuilder<Node: JSONReadable> {
    let view: PodView<Node>
    let values: PatchValues
    private(set) var operations: [JSONPatchOperation] = []
    private var pendingAnnotations: [(String, String)] = []

    init(view: PodView<Node>, values: PatchValues) {
        self.view = view
        self.values = values
    }

    /// Returns whether anything was added.
    mutating func addTolerations(_ tolerations: [Toleration]) -> Bool {
        guard !tolerations.isEmpty else { return false }
        // Whole paths at once: each `appending` is an allocation.
        if view.spec["tolerations"]?.isArray != true {
            operations.append(.add(view.base.appending(contentsOf: ["spec", "tolerations"]), .array(tolerations.map(\.json))))
        } else {
            let path = view.base.appending(contentsOf: ["spec", "tolerations", "-"])
            for toleration in tolerations {
                operations.append(.add(path, values.encoded(toleration)))
            }
        }
        return true
    }

    /// ANDs the requirements into every required node-selector term (terms are ORed: adding a new
    /// term would weaken the pod, the classic webhook bug). Creates the structure when absent.
    /// A term with no expressions and no fields matches no node upstream; it is left as it is,
    /// since adding to it would make it match. Returns the requirements that were added anywhere.
    mutating func requireOnEveryTerm(_ requirements: [LabelRequirement]) throws(PodShapeError) -> [LabelRequirement] {
        let levels = values.levels(for: requirements)

        let view = self.view
        // Field names are built only for errors.
        let affinityField = { view.field("spec.affinity") }
        let nodeAffinityField = { affinityField() + ".nodeAffinity" }
        let requiredField = { nodeAffinityField() + ".requiredDuringSchedulingIgnoredDuringExecution" }
        let termsField = { requiredField() + ".nodeSelectorTerms" }
        guard let affinity = try object(view.spec["affinity"], field: affinityField()) else {
            operations.append(.add(view.base.appending(contentsOf: ["spec", "affinity"]), levels.affinity))
            return requirements
        }
        guard let nodeAffinity = try object(affinity["nodeAffinity"], field: nodeAffinityField()) else {
            operations.append(.add(view.base.appending(contentsOf: ["spec", "affinity", "nodeAffinity"]), levels.nodeAffinity))
            return requirements
        }
        guard let required = try object(nodeAffinity["requiredDuringSchedulingIgnoredDuringExecution"], field: requiredField()) else {
            operations.append(.add(
                view.base.appending(contentsOf: ["spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"]),
                levels.required))
            return requirements
        }
        let path = view.base.appending(
            contentsOf: ["spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"])
        guard let terms = try list(required["nodeSelectorTerms"], field: termsField()) else {
            operations.append(.add(path, levels.terms))
            return requirements
        }
        if terms.isEmpty {
            operations.append(.add(path.appending("-"), levels.term))
            return requirements
        }
        var added: [LabelRequirement] = []
        for (index, term) in terms.enumerated() {
            let termField = { "\(termsField())[\(index)]" }
            guard let termObject = try object(term, field: termField()) else { continue }
            let existing = try list(termObject["matchExpressions"], field: "\(termField()).matchExpressions") ?? []
            let fields = try list(termObject["matchFields"], field: "\(termField()).matchFields") ?? []
            if existing.isEmpty && fields.isEmpty { continue }
            let present = existing.compactMap { LabelRequirement(json: $0) }
            let missing = requirements.filter { !present.contains($0) }
            guard !missing.isEmpty else { continue }
            let termPath = path.appending(index).appending("matchExpressions")
            if termObject["matchExpressions"]?.isArray != true {
                operations.append(missing.count == requirements.count
                    ? .add(termPath, levels.expressions) : .add(termPath, .array(missing.map(\.json))))
            } else {
                for requirement in missing {
                    let position = requirements.firstIndex(of: requirement)
                    operations.append(position.map { .add(termPath.appending("-"), levels.expression[$0]) }
                        ?? .add(termPath.appending("-"), requirement.json))
                }
            }
            for requirement in missing where !added.contains(requirement) { added.append(requirement) }
        }
        return added
    }

    mutating func setAnnotation(_ key: String, _ value: String) {
        pendingAnnotations.append((key, value))
    }

    /// The operations, annotations last (they are gathered so a missing map is added once).
    func patch() -> JSONPatch {
        var all = operations
        if !pendingAnnotations.isEmpty {
            let map = JSON.object(JSONObject(pendingAnnotations.map { JSONObject.Member(key: $0.0, value: .string($0.1)) }))
            if view.metadata == nil {
                all.append(.add(view.base.appending("metadata"), ["annotations": map]))
            } else if !(view.metadata?["annotations"]?.isObject ?? false) {
                all.append(.add(view.base.appending(contentsOf: ["metadata", "annotations"]), map))
            } else {
                for (key, value) in pendingAnnotations {
                    all.append(.add(view.base.appending(contentsOf: ["metadata", "annotations", key]), .string(value)))
                }
            }
        }
        return JSONPatch(all)
    }

    private func object(_ json: Node?, field: @autoclosure () -> String) throws(PodShapeError) -> Node? {
        guard let json, !json.isNull else { return nil }
        guard json.isObject else { throw PodShapeError(field: field(), message: "expected an object, found \(json.typeName)") }
        return json
    }

    private func list(_ json: Node?, field: @autoclosure () -> String) throws(PodShapeError) -> [Node]? {
        guard let json, !json.isNull else { return nil }
        guard let elements = json.arrayElements else { throw PodShapeError(field: field(), message: "expected a list, found \(json.typeName)") }
        return elements
    }
}
