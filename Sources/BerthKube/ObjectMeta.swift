import BerthModel

/// The parts of `metadata` Berth reads. Every other field of the object is left alone: views keep
/// the whole `JSON` they were made from, and writes send patches of what Berth changes.
public struct ObjectMeta: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var uid: String
    public var resourceVersion: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var finalizers: [String]
    public var deletionTimestamp: String?
    public var creationTimestamp: String?
    public var generateName: String

    public init(json: JSON?, kind: String = "object") throws(KubeError) {
        let reader = try FieldView(json ?? .object([:]), path: "metadata", kind: kind)
        name = try reader.string("name") ?? ""
        namespace = try reader.string("namespace") ?? ""
        uid = try reader.string("uid") ?? ""
        resourceVersion = try reader.string("resourceVersion") ?? ""
        labels = try reader.stringMap("labels")
        annotations = try reader.stringMap("annotations")
        finalizers = try reader.stringList("finalizers")
        deletionTimestamp = try reader.string("deletionTimestamp")
        creationTimestamp = try reader.string("creationTimestamp")
        generateName = try reader.string("generateName") ?? ""
    }

    /// `namespace/name`, or `name` for cluster-scoped objects (the informer's key).
    public var key: String { namespace.isEmpty ? name : "\(namespace)/\(name)" }
}

/// Typed reads from one JSON object with errors that name the field path and what was found.
struct FieldView {
    let object: JSONObject
    let path: String
    let kind: String

    init(_ json: JSON, path: String, kind: String) throws(KubeError) {
        guard case .object(let object) = json else {
            throw .decoding(what: kind, detail: "\(path.isEmpty ? "the object" : path): expected an object, found \(json.typeName)")
        }
        self.object = object
        self.path = path
        self.kind = kind
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func present(_ key: String) -> JSON? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) throws(KubeError) -> String? {
        guard let value = present(key) else { return nil }
        guard case .string(let text) = value else { throw mismatch(key, "a string", value) }
        return text
    }

    func int(_ key: String) throws(KubeError) -> Int? {
        guard let value = present(key) else { return nil }
        guard let number = value.intValue else { throw mismatch(key, "an integer", value) }
        return number
    }

    func bool(_ key: String) throws(KubeError) -> Bool? {
        guard let value = present(key) else { return nil }
        guard case .bool(let flag) = value else { throw mismatch(key, "a boolean", value) }
        return flag
    }

    func object(_ key: String) throws(KubeError) -> FieldView? {
        guard let value = present(key) else { return nil }
        return try FieldView(value, path: field(key), kind: kind)
    }

    /// The member as an object view; an absent member reads as an empty object.
    func objectOrEmpty(_ key: String) throws(KubeError) -> FieldView {
        if let view = try object(key) { return view }
        return FieldView(empty: field(key), kind: kind)
    }

    private init(empty path: String, kind: String) {
        object = JSONObject()
        self.path = path
        self.kind = kind
    }

    func list(_ key: String) throws(KubeError) -> [JSON] {
        guard let value = present(key) else { return [] }
        guard case .array(let items) = value else { throw mismatch(key, "a list", value) }
        return items
    }

    func stringList(_ key: String) throws(KubeError) -> [String] {
        var result: [String] = []
        for (index, item) in try list(key).enumerated() {
            guard case .string(let text) = item else {
                throw .decoding(what: kind, detail: "\(field(key))[\(index)]: expected a string, found \(item.typeName)")
            }
            result.append(text)
        }
        return result
    }

    func stringMap(_ key: String) throws(KubeError) -> [String: String] {
        guard let value = present(key) else { return [:] }
        guard case .object(let members) = value else { throw mismatch(key, "an object", value) }
        var result: [String: String] = [:]
        for member in members {
            guard case .string(let text) = member.value else {
                throw .decoding(what: kind, detail: "\(field(key)).\(member.key): expected a string, found \(member.value.typeName)")
            }
            result[member.key] = text
        }
        return result
    }

    /// A resource list (`{"cpu": "500m", "nvidia.com/gpu": 1}`): quantities as strings or numbers.
    func resources(_ key: String) throws(KubeError) -> [String: Quantity] {
        guard let value = present(key) else { return [:] }
        guard case .object(let members) = value else { throw mismatch(key, "an object", value) }
        var result: [String: Quantity] = [:]
        for member in members {
            let text: String
            switch member.value {
            case .string(let string): text = string
            case .number(let number): text = number
            default:
                throw .decoding(what: kind, detail: "\(field(key)).\(member.key): expected a quantity, found \(member.value.typeName)")
            }
            guard let quantity = try? Quantity.parse(text) else {
                throw .decoding(what: kind, detail: "\(field(key)).\(member.key): invalid quantity \"\(text)\"")
            }
            result[member.key] = quantity
        }
        return result
    }

    private func mismatch(_ key: String, _ expected: String, _ found: JSON) -> KubeError {
        .decoding(what: kind, detail: "\(field(key)): expected \(expected), found \(found.typeName)")
    }
}
