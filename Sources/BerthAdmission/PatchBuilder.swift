import BerthModel

/// Turns "the pod must have X" into `add` operations: the whole structure when its parent is
/// missing, an append (`/-`) when the list exists. It never replaces or removes what the pod has.
struct PatchBuilder<Node: JSONReadable> {
    let view: PodView<Node>
    let values: PatchValues
    private(set) var operations: [JSONPatchOperation] = []
    private var pendingAnnotations: [(String, String)] = []
    /// The patch's size so far (the commas between operations included) and its limit: past it,
    /// nothing more is kept (`exceeded`), so a pod with a hundred thousand node-selector terms
    /// costs a counter, not a 23 MB patch built in memory.
    private(set) var byteCount = 2
    let byteLimit: Int
    private(set) var exceeded = false

    init(view: PodView<Node>, values: PatchValues, byteLimit: Int = .max) {
        self.view = view
        self.values = values
        self.byteLimit = byteLimit
    }

    /// Returns whether anything was added.
    mutating func addTolerations(_ tolerations: [Toleration]) -> Bool {
        guard !tolerations.isEmpty else { return false }
        // Pointers from `PatchValues.paths`: each built one was an allocation or two, and
        // escaping it again when the patch was written.
        if view.spec["tolerations"]?.isArray != true {
            add(.add(values.paths.tolerations.under(view.base), .array(tolerations.map(\.json))))
        } else {
            for toleration in tolerations {
                add(values.appendToleration(toleration, under: view.base))
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
            add(.add(values.paths.affinity.under(view.base), levels.affinity))
            return requirements
        }
        guard let nodeAffinity = try object(affinity["nodeAffinity"], field: nodeAffinityField()) else {
            add(.add(values.paths.nodeAffinity.under(view.base), levels.nodeAffinity))
            return requirements
        }
        guard let required = try object(nodeAffinity["requiredDuringSchedulingIgnoredDuringExecution"], field: requiredField()) else {
            add(.add(values.paths.required.under(view.base), levels.required))
            return requirements
        }
        guard let terms = try list(required["nodeSelectorTerms"], field: termsField()) else {
            add(.add(values.paths.terms.under(view.base), levels.terms))
            return requirements
        }
        if terms.isEmpty {
            add(.add(values.paths.termsEnd.under(view.base), levels.term))
            return requirements
        }
        let path = view.base.appending(values.paths.terms.pointer)
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
                add(missing.count == requirements.count
                    ? .add(termPath, levels.expressions) : .add(termPath, .array(missing.map(\.json))))
            } else {
                let termEnd = EncodedPointer(termPath.appending("-"))
                for requirement in missing {
                    let position = requirements.firstIndex(of: requirement)
                    add(position.map { .add(termEnd, levels.expression[$0]) } ?? .add(termEnd, requirement.json))
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
    /// Mutating so the operations are moved into the patch, not copied to grow.
    mutating func patch() -> JSONPatch {
        guard !pendingAnnotations.isEmpty else { return JSONPatch(operations) }
        if view.metadata == nil {
            add(.add(values.paths.metadata.under(view.base), ["annotations": annotationMap]))
        } else if !(view.metadata?["annotations"]?.isObject ?? false) {
            add(.add(values.paths.annotations.under(view.base), annotationMap))
        } else {
            for (key, value) in pendingAnnotations {
                add(values.annotation(key, value, under: view.base))
            }
        }
        return JSONPatch(operations)
    }

    private var annotationMap: JSON {
        .object(JSONObject(pendingAnnotations.map { JSONObject.Member(key: $0.0, value: .string($0.1)) }))
    }

    /// Room for a usual patch (tolerations, affinity, two annotations) from the first operation,
    /// so the list is not grown again (a reallocation was ~400 instructions of `patch()`).
    private mutating func add(_ operation: JSONPatchOperation) {
        byteCount += operation.serializedCount + 1
        guard byteCount <= byteLimit else {
            exceeded = true
            return
        }
        if operations.capacity == 0 { operations.reserveCapacity(6) }
        operations.append(operation)
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
