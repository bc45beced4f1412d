/// The small pieces of Kubernetes scheduling semantics that both the webhook and the provisioner
/// need, written from the upstream definitions (k8s.io/api core/v1 types, component-helpers
/// scheduling/corev1): taints and tolerations, label selectors, node selector requirements.

public struct Taint: Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var effect: String

    public init(key: String, value: String = "", effect: String) {
        self.key = key
        self.value = value
        self.effect = effect
    }

    public var description: String { value.isEmpty ? "\(key):\(effect)" : "\(key)=\(value):\(effect)" }

    public var json: JSON {
        var object = JSONObject()
        object["key"] = .string(key)
        if !value.isEmpty { object["value"] = .string(value) }
        object["effect"] = .string(effect)
        return .object(object)
    }
}

public struct Toleration: Sendable, Equatable {
    public var key: String
    public var `operator`: String
    public var value: String
    public var effect: String

    public init(key: String = "", operator: String = "Equal", value: String = "", effect: String = "") {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
    }

    /// Reads a toleration as the API holds it; absent fields are empty, as in Go.
    /// `@inlinable` so that callers in other modules get it specialised for their reader.
    /// Four lookups rather than one pass over the members: a pass decodes every member name
    /// (`tolerationSeconds` too) into a String, a lookup compares bytes.
    @inlinable
    public init<Node: JSONReadable>(json: Node) {
        self.init(
            key: json["key"]?.stringValue ?? "", operator: json["operator"]?.stringValue ?? "",
            value: json["value"]?.stringValue ?? "", effect: json["effect"]?.stringValue ?? "")
    }

    /// The toleration Berth adds for a taint: any value of the key, that effect only.
    public static func exists(for taint: Taint) -> Toleration {
        Toleration(key: taint.key, operator: "Exists", effect: taint.effect)
    }

    /// Upstream `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key with
    /// `Exists` matches every key, `Equal` (or no operator) compares values.
    public func tolerates(_ taint: Taint) -> Bool {
        if !effect.isEmpty && effect != taint.effect { return false }
        if !key.isEmpty && key != taint.key { return false }
        switch `operator` {
        case "", "Equal": return value == taint.value
        case "Exists": return true
        default: return false
        }
    }

    public var json: JSON {
        var object = JSONObject()
        if !key.isEmpty { object["key"] = .string(key) }
        if !`operator`.isEmpty { object["operator"] = .string(`operator`) }
        if !value.isEmpty { object["value"] = .string(value) }
        if !effect.isEmpty { object["effect"] = .string(effect) }
        return .object(object)
    }
}

/// A `NodeSelectorRequirement` (node affinity) or label selector requirement.
public struct LabelRequirement: Sendable, Equatable, CustomStringConvertible {
    public enum Operator: String, Sendable, CaseIterable {
        case `in` = "In", notIn = "NotIn", exists = "Exists", doesNotExist = "DoesNotExist", gt = "Gt", lt = "Lt"
    }

    public var key: String
    public var `operator`: Operator
    public var values: [String]

    public init(key: String, operator: Operator, values: [String] = []) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    /// Equal as requirements: values are a set.
    public static func == (lhs: LabelRequirement, rhs: LabelRequirement) -> Bool {
        guard lhs.key == rhs.key, lhs.operator == rhs.operator, lhs.values.count == rhs.values.count else {
            // Different counts can still be the same set ([a, a] and [a]).
            return lhs.key == rhs.key && lhs.operator == rhs.operator && Set(lhs.values) == Set(rhs.values)
        }
        // Same order is the common case (the webhook compares its own requirements); no sets then.
        return lhs.values == rhs.values || Set(lhs.values) == Set(rhs.values)
    }

    public func matches(_ labels: [String: String]) -> Bool {
        matches(value: labels[key])
    }

    /// For the value of `key` already looked up (absent: nil), so callers that hold label
    /// columns need no dictionary per candidate node.
    public func matches(value: String?) -> Bool {
        switch `operator` {
        case .in: return value.map(values.contains) ?? false
        case .notIn: return value.map { !values.contains($0) } ?? true
        case .exists: return value != nil
        case .doesNotExist: return value == nil
        case .gt, .lt:
            // Upstream parses both sides as integers; anything else does not match.
            guard let value, let have = Int64(value), values.count == 1, let bound = Int64(values[0]) else { return false }
            return `operator` == .gt ? have > bound : have < bound
        }
    }

    public var json: JSON {
        var object = JSONObject()
        object["key"] = .string(key)
        object["operator"] = .string(`operator`.rawValue)
        if !values.isEmpty || `operator` == .in || `operator` == .notIn {
            object["values"] = .array(values.map(JSON.string))
        }
        return .object(object)
    }

    /// Reads a requirement as found in a pod; `nil` when it is not well formed.
    @inlinable
    public init?<Node: JSONReadable>(json: Node) {
        guard let key = json["key"]?.stringValue,
            let operatorName = json["operator"]?.stringValue,
            let op = Operator(rawValue: operatorName)
        else { return nil }
        self.key = key
        self.operator = op
        self.values = json["values"]?.arrayElements?.compactMap { $0.stringValue } ?? []
    }

    public var description: String {
        switch `operator` {
        case .exists: key
        case .doesNotExist: "!\(key)"
        default: "\(key) \(`operator`.rawValue) [\(values.joined(separator: ","))]"
        }
    }
}

/// A `metav1.LabelSelector`: matchLabels and matchExpressions are ANDed; an empty selector
/// matches everything.
public struct LabelSelector: Sendable, Equatable {
    public var matchLabels: [String: String]
    public var matchExpressions: [LabelRequirement]

    public init(matchLabels: [String: String] = [:], matchExpressions: [LabelRequirement] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    public func matches(_ labels: [String: String]) -> Bool {
        matches { labels[$0] }
    }

    /// With each label looked up on demand (a pod read from a document: no dictionary of its
    /// labels is built for the one or two keys a selector names).
    public func matches(label: (String) -> String?) -> Bool {
        for (key, value) in matchLabels where label(key) != value { return false }
        return matchExpressions.allSatisfy { $0.matches(value: label($0.key)) }
    }
}

/// A resource name pattern such as `nvidia.com/mig-*`: `*` stands for any run of characters.
/// Matching works on UTF-8 bytes (substring operations on `String` walk grapheme clusters, and
/// this runs for every resource name of every pod).
public struct ResourcePattern: Sendable, Equatable, CustomStringConvertible {
    public let pattern: String
    private let parts: [[UInt8]]
    /// The shortest name that can match: every part without the stars. A name shorter than this
    /// (cpu, memory) is refused with one compare.
    private let minimumLength: Int

    public init(_ pattern: String) {
        self.pattern = pattern
        self.parts = pattern.utf8.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false).map(Array.init)
        self.minimumLength = parts.reduce(0) { $0 + $1.count }
    }

    public var description: String { pattern }


    public func matches(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { matches(utf8: $0) }
    }

    /// The same match over a name's UTF-8 bytes (read straight from a document). Compared with
    /// `bytesEqual` over the parts' storage: the generic `elementsEqual` on prefix/suffix
    /// slices cost ~300 instructions per resource name of every pod.
    public func matches(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count >= minimumLength else { return false }
        // Lengths first: most resource names (cpu, memory, ...) differ from the pattern in length.
        guard parts.count > 1 else {
            return bytes.count == parts[0].count && parts[0].withUnsafeBufferPointer { bytesEqual($0, bytes, at: 0) }
        }
        let first = parts[0], last = parts[parts.count - 1]
        // The length was checked against every part above.
        guard first.withUnsafeBufferPointer({ bytesEqual($0, bytes, at: 0) }),
            last.withUnsafeBufferPointer({ bytesEqual($0, bytes, at: bytes.count - last.count) })
        else { return false }
        // Middle parts, in order, each after the previous one, within what first/last left.
        var position = first.count
        let limit = bytes.count - last.count
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            var found = false
            while position + part.count <= limit {
                if part.withUnsafeBufferPointer({ bytesEqual($0, UnsafeBufferPointer(rebasing: bytes[..<limit]), at: position) }) {
                    position += part.count
                    found = true
                    break
                }
                position += 1
            }
            if !found { return false }
        }
        return true
    }
}
