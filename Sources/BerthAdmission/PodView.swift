import BerthModel

/// The parts of a pod (or pod template) the policy reads, checked for shape on the way in so that
/// a manifest with `containers: "x"` gets an error naming `spec.containers`, never a crash.
struct PodView {
    let base: JSONPointer
    let metadata: JSONObject?
    let spec: JSONObject
    let labels: [String: String]
    let annotations: [String: String]
    let ownerKinds: [String]
    let namespace: String?
    let nodeName: String?
    let tolerations: [Toleration]

    init(_ pod: JSON, base: JSONPointer) throws(PodShapeError) {
        self.base = base
        let prefix = base.tokens.joined(separator: ".")
        func field(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

        switch pod["metadata"] {
        case nil, .null?: metadata = nil
        case let .object(object)?: metadata = object
        case let other?: throw PodShapeError(field: field("metadata"), message: "expected an object, found \(other.typeName)")
        }
        labels = try Self.stringMap(metadata?["labels"], field: field("metadata.labels"))
        annotations = try Self.stringMap(metadata?["annotations"], field: field("metadata.annotations"))
        namespace = metadata?["namespace"]?.stringValue
        ownerKinds = (metadata?["ownerReferences"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }

        switch pod["spec"] {
        case let .object(object)?: spec = object
        case nil, .null?: throw PodShapeError(field: field("spec"), message: "is missing")
        case let other?: throw PodShapeError(field: field("spec"), message: "expected an object, found \(other.typeName)")
        }
        nodeName = spec["nodeName"]?.stringValue
        switch spec["tolerations"] {
        case nil, .null?: tolerations = []
        case let .array(elements)?:
            var parsed: [Toleration] = []
            for (index, element) in elements.enumerated() {
                guard element.objectValue != nil else {
                    throw PodShapeError(field: field("spec.tolerations[\(index)]"), message: "expected an object, found \(element.typeName)")
                }
                parsed.append(Toleration(json: element))
            }
            tolerations = parsed
        case let other?: throw PodShapeError(field: field("spec.tolerations"), message: "expected a list, found \(other.typeName)")
        }
    }

    var fieldPrefix: String { base.tokens.joined(separator: ".") }

    func field(_ name: String) -> String { fieldPrefix.isEmpty ? name : "\(fieldPrefix).\(name)" }

    static func stringMap(_ json: JSON?, field: @autoclosure () -> String) throws(PodShapeError) -> [String: String] {
        switch json {
        case nil, .null?: return [:]
        case let .object(object)?:
            var map: [String: String] = [:]
            for member in object {
                guard let value = member.value.stringValue else {
                    throw PodShapeError(field: "\(field()).\(member.key)", message: "expected a string, found \(member.value.typeName)")
                }
                map[member.key] = value
            }
            return map
        case let other?:
            throw PodShapeError(field: field(), message: "expected an object, found \(other.typeName)")
        }
    }

    /// Every resource name in any container's or init container's limits or requests.
    func resourceNames() throws(PodShapeError) -> [String] {
        var names: [String] = []
        for listName in ["containers", "initContainers"] {
            let containers: [JSON]
            switch spec[listName] {
            case let .array(elements)?: containers = elements
            case nil, .null?:
                if listName == "containers" { throw PodShapeError(field: field("spec.containers"), message: "is missing") }
                containers = []
            case let other?: throw PodShapeError(field: field("spec.\(listName)"), message: "expected a list, found \(other.typeName)")
            }
            for (index, container) in containers.enumerated() {
                // Built only for an error: string interpolation on every container cost microseconds.
                func at() -> String { field("spec.\(listName)[\(index)]") }
                guard container.objectValue != nil else { throw PodShapeError(field: at(), message: "expected an object, found \(container.typeName)") }
                switch container["resources"] {
                case nil, .null?: continue
                case .object?: break
                case let other?: throw PodShapeError(field: "\(at()).resources", message: "expected an object, found \(other.typeName)")
                }
                for part in ["limits", "requests"] {
                    switch container["resources"]?[part] {
                    case nil, .null?: continue
                    case let .object(quantities)?: names.append(contentsOf: quantities.keys)
                    case let other?: throw PodShapeError(field: "\(at()).resources.\(part)", message: "expected an object, found \(other.typeName)")
                    }
                }
            }
        }
        return names
    }

    /// Whether the pod's own node selection names this label key (nodeSelector or a required
    /// node-affinity term).
    func mentionsLabel(_ key: String) -> Bool {
        if spec["nodeSelector"]?[key] != nil { return true }
        let terms = spec["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?["nodeSelectorTerms"]?.arrayValue ?? []
        return terms.contains { term in
            (term["matchExpressions"]?.arrayValue ?? []).contains { $0["key"]?.stringValue == key }
        }
    }
}
