import BerthModel

/// The parts of a pod (or pod template) the policy reads, checked for shape on the way in so that
/// a manifest with `containers: "x"` gets an error naming `spec.containers`, never a crash.
/// A class: the policy and its patch builder share one view, and copying a struct of a dozen
/// references (each retained, then released) cost more than reading the fields.
final class PodView<Node: JSONReadable> {
    let base: JSONPointer
    let metadata: Node?
    let spec: Node
    /// The labels object, checked to hold only strings; read by key (`label(_:)`).
    let labelsNode: Node?
    /// Read on demand: a pod's annotations can be large (last-applied-configuration) and the
    /// policy asks for five keys at most.
    let annotationsNode: Node?
    let ownedByDaemonSet: Bool
    let namespace: String?
    let nodeName: String?
    /// The pod's tolerations, checked to be objects; read field by field when matched against
    /// a taint (see `tolerates`), so no Strings are made for them.
    let tolerations: [Node]

    init(_ pod: Node, base: JSONPointer) throws(PodShapeError) {
        self.base = base
        // Field names are made only for an error.
        func field(_ name: String) -> String { base.tokens.isEmpty ? name : "\(base.tokens.joined(separator: ".")).\(name)" }

        let metadata: Node?
        switch pod["metadata"] {
        case let value? where value.isObject: metadata = value
        case let value? where !value.isNull: throw PodShapeError(field: field("metadata"), message: "expected an object, found \(value.typeName)")
        default: metadata = nil
        }
        self.metadata = metadata
        labelsNode = try Self.stringMap(metadata?["labels"], field: field("metadata.labels"))
        switch metadata?["annotations"] {
        case let value? where value.isObject: annotationsNode = value
        case let value? where !value.isNull:
            throw PodShapeError(field: field("metadata.annotations"), message: "expected an object, found \(value.typeName)")
        default: annotationsNode = nil
        }
        namespace = metadata?["namespace"]?.stringValue
        ownedByDaemonSet = metadata?["ownerReferences"]?.arrayElements?.contains { $0["kind"]?.stringEquals("DaemonSet") ?? false } ?? false

        guard let spec = pod["spec"], !spec.isNull else { throw PodShapeError(field: field("spec"), message: "is missing") }
        guard spec.isObject else { throw PodShapeError(field: field("spec"), message: "expected an object, found \(spec.typeName)") }
        self.spec = spec
        nodeName = spec["nodeName"]?.stringValue
        var parsed: [Node] = []
        if let value = spec["tolerations"], !value.isNull {
            guard let elements = value.arrayElements else {
                throw PodShapeError(field: field("spec.tolerations"), message: "expected a list, found \(value.typeName)")
            }
            for (index, element) in elements.enumerated() {
                guard element.isObject else {
                    throw PodShapeError(field: field("spec.tolerations[\(index)]"), message: "expected an object, found \(element.typeName)")
                }
            }
            parsed = elements
        }
        tolerations = parsed
    }

    /// Whether any of the pod's tolerations tolerates `taint`: upstream `Toleration.ToleratesTaint`
    /// (as `Toleration.tolerates`), with absent, empty and non-string fields all reading as "".
    func tolerates(_ taint: Taint) -> Bool {
        tolerations.contains { toleration in
            func field(_ name: String) -> Node? {
                guard let value = toleration[name], value.isString, !value.stringEquals("") else { return nil }
                return value
            }
            if let effect = field("effect"), !effect.stringEquals(taint.effect) { return false }
            if let key = field("key"), !key.stringEquals(taint.key) { return false }
            guard let op = field("operator") else { return field("value")?.stringEquals(taint.value) ?? taint.value.isEmpty }
            if op.stringEquals("Equal") { return field("value")?.stringEquals(taint.value) ?? taint.value.isEmpty }
            return op.stringEquals("Exists")
        }
    }

    func annotation(_ key: String) -> String? { annotationsNode?[key]?.stringValue }

    var fieldPrefix: String { base.tokens.joined(separator: ".") }

    func field(_ name: String) -> String { fieldPrefix.isEmpty ? name : "\(fieldPrefix).\(name)" }

    /// An object whose members are all strings, or nil when absent or null.
    static func stringMap(_ json: Node?, field: @autoclosure () -> String) throws(PodShapeError) -> Node? {
        guard let json, !json.isNull else { return nil }
        guard json.isObject else {
            throw PodShapeError(field: field(), message: "expected an object, found \(json.typeName)")
        }
        // One pass over the members checking types; a String only for an error.
        var failure: PodShapeError?
        json.forEachMember { key, value in
            guard failure == nil, !value.isString else { return }
            failure = PodShapeError(field: "\(field()).\(key)", message: "expected a string, found \(value.typeName)")
        }
        if let failure { throw failure }
        return json
    }

    func label(_ key: String) -> String? { labelsNode?[key]?.stringValue }

    // Static: an array literal in the loop header is allocated on every call.
    private static var containerLists: [String] { PodViewConstants.containerLists }
    private static var resourceParts: [String] { PodViewConstants.resourceParts }

    /// Every resource name in any container's or init container's limits or requests:
    /// calls `body` with each resource name's bytes, in order (repeats included), without
    /// gathering them or making Strings (most are cpu and memory, which the policy drops).
    func forEachResourceName(_ body: (UnsafeBufferPointer<UInt8>) -> Void) throws(PodShapeError) {
        for listName in Self.containerLists {
            let containers: [Node]
            if let value = spec[listName], !value.isNull {
                guard let elements = value.arrayElements else {
                    throw PodShapeError(field: field("spec.\(listName)"), message: "expected a list, found \(value.typeName)")
                }
                containers = elements
            } else {
                if listName == "containers" { throw PodShapeError(field: field("spec.containers"), message: "is missing") }
                containers = []
            }
            for (index, container) in containers.enumerated() {
                // Built only for an error: string interpolation on every container cost microseconds.
                func at() -> String { field("spec.\(listName)[\(index)]") }
                guard container.isObject else { throw PodShapeError(field: at(), message: "expected an object, found \(container.typeName)") }
                guard let resources = container["resources"], !resources.isNull else { continue }
                guard resources.isObject else {
                    throw PodShapeError(field: "\(at()).resources", message: "expected an object, found \(resources.typeName)")
                }
                for part in Self.resourceParts {
                    guard let quantities = resources[part], !quantities.isNull else { continue }
                    guard quantities.isObject else {
                        throw PodShapeError(field: "\(at()).resources.\(part)", message: "expected an object, found \(quantities.typeName)")
                    }
                    quantities.forEachMemberName(body)
                }
            }
        }
    }

    /// Whether the pod's own node selection names this label key (nodeSelector or a required
    /// node-affinity term).
    func mentionsLabel(_ key: String) -> Bool {
        if spec["nodeSelector"]?[key] != nil { return true }
        let terms = spec["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?["nodeSelectorTerms"]?.arrayElements ?? []
        return terms.contains { term in
            (term["matchExpressions"]?.arrayElements ?? []).contains { $0["key"]?.stringValue == key }
        }
    }
}

/// Stored statics cannot live in a generic type.
private enum PodViewConstants {
    static let containerLists = ["containers", "initContainers"]
    static let resourceParts = ["limits", "requests"]
}
