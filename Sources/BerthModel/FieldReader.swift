/// Strict reading of configuration documents: every object names the fields it allows, and an
/// unknown one is an error that says where it is and what would have been accepted. This is the
/// opposite of the silent CRD drift that cost Berth's first users hours
/// (`unknown field "consolidation"` found only at runtime).
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

public struct FieldReader {
    public let path: String
    public let object: JSONObject

    /// Checks that `json` is an object whose fields are all in `allowed`.
    public init(_ json: JSON, path: String, allowed: [String]) throws(ConfigError) {
        guard case let .object(object) = json else {
            throw ConfigError(path: path, message: "expected an object, found \(json.typeName)")
        }
        for key in object.keys where !allowed.contains(key) {
            let near = allowed.first { $0.lowercased() == key.lowercased() }
            let hint = near.map { " (did you mean \"\($0)\"?)" } ?? ""
            throw ConfigError(
                path: FieldReader.join(path, key),
                message: "unknown field \"\(key)\"\(hint); allowed fields: \(allowed.joined(separator: ", "))"
            )
        }
        self.path = path
        self.object = object
    }

    public static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    public func childPath(_ key: String) -> String { FieldReader.join(path, key) }

    /// The raw value, `nil` when absent or null.
    public func value(_ key: String) -> JSON? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    public func string(_ key: String) throws(ConfigError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.stringValue else {
            throw ConfigError(path: childPath(key), message: "expected a string, found \(value.typeName)")
        }
        return string
    }

    public func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let flag = value.boolValue else {
            throw ConfigError(path: childPath(key), message: "expected true or false, found \(value.typeName)")
        }
        return flag
    }

    public func number(_ key: String) throws(ConfigError) -> Double? {
        guard let value = value(key) else { return nil }
        guard case let .number(text) = value, let number = Double(text) else {
            throw ConfigError(path: childPath(key), message: "expected a number, found \(value.typeName)")
        }
        return number
    }

    public func list(_ key: String) throws(ConfigError) -> [(value: JSON, path: String)]? {
        guard let value = value(key) else { return nil }
        guard let elements = value.arrayValue else {
            throw ConfigError(path: childPath(key), message: "expected a list, found \(value.typeName)")
        }
        return elements.enumerated().map { (value: $0.element, path: "\(childPath(key))[\($0.offset)]") }
    }

    public func stringList(_ key: String) throws(ConfigError) -> [String]? {
        guard let elements = try list(key) else { return nil }
        var strings: [String] = []
        for element in elements {
            guard let string = element.value.stringValue else {
                throw ConfigError(path: element.path, message: "expected a string, found \(element.value.typeName)")
            }
            strings.append(string)
        }
        return strings
    }

    public func stringMap(_ key: String) throws(ConfigError) -> [String: String]? {
        guard let value = value(key) else { return nil }
        guard let object = value.objectValue else {
            throw ConfigError(path: childPath(key), message: "expected an object, found \(value.typeName)")
        }
        var map: [String: String] = [:]
        for member in object {
            guard let string = member.value.stringValue else {
                throw ConfigError(path: FieldReader.join(childPath(key), member.key), message: "expected a string, found \(member.value.typeName)")
            }
            map[member.key] = string
        }
        return map
    }

    public func object(_ key: String, allowed: [String]) throws(ConfigError) -> FieldReader? {
        guard let value = value(key) else { return nil }
        return try FieldReader(value, path: childPath(key), allowed: allowed)
    }
}

extension LabelSelector {
    /// Reads a selector strictly (config files).
    public init(config json: JSON, path: String) throws(ConfigError) {
        let reader = try FieldReader(json, path: path, allowed: ["matchLabels", "matchExpressions"])
        var expressions: [LabelRequirement] = []
        for element in try reader.list("matchExpressions") ?? [] {
            let fields = try FieldReader(element.value, path: element.path, allowed: ["key", "operator", "values"])
            guard let key = try fields.string("key"), !key.isEmpty else {
                throw ConfigError(path: element.path, message: "\"key\" is required")
            }
            let operatorName = try fields.string("operator") ?? ""
            let allowedOperators: [LabelRequirement.Operator] = [.in, .notIn, .exists, .doesNotExist]
            guard let op = LabelRequirement.Operator(rawValue: operatorName), allowedOperators.contains(op) else {
                throw ConfigError(
                    path: FieldReader.join(element.path, "operator"),
                    message: "\"\(operatorName)\" is not one of \(allowedOperators.map(\.rawValue).joined(separator: ", "))"
                )
            }
            let values = try fields.stringList("values") ?? []
            if (op == .in || op == .notIn) && values.isEmpty {
                throw ConfigError(path: element.path, message: "operator \(op.rawValue) needs at least one value")
            }
            if (op == .exists || op == .doesNotExist) && !values.isEmpty {
                throw ConfigError(path: element.path, message: "operator \(op.rawValue) takes no values")
            }
            expressions.append(LabelRequirement(key: key, operator: op, values: values))
        }
        self.init(matchLabels: try reader.stringMap("matchLabels") ?? [:], matchExpressions: expressions)
    }
}
