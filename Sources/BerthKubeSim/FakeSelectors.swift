import BerthKube
import BerthModel

/// Label and field selector strings as the apiserver parses them (a test double's subset of
/// k8s.io/apimachinery/pkg/labels.Parse and pkg/fields.ParseSelector).
struct FakeLabelSelector {
    enum Op { case equals, notEquals, `in`, notIn, exists, doesNotExist }
    struct Requirement {
        var key: String
        var op: Op
        var values: [String]
    }
    var requirements: [Requirement] = []

    /// `a=b,c!=d,e in (x,y),f notin (z),g,!h`; nil when malformed.
    init?(_ text: String) {
        var parts: [String] = []
        var depth = 0
        var current = ""
        for character in text {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
            if character == "," && depth == 0 { parts.append(current); current = "" } else { current.append(character) }
        }
        if !current.isEmpty { parts.append(current) }
        for raw in parts {
            let part = raw.trimmingCharacters(in: .whitespaces)
            if part.isEmpty { return nil }
            if let range = part.range(of: " notin ") ?? part.range(of: " in ") {
                let key = part[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                let list = part[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard list.hasPrefix("("), list.hasSuffix(")") else { return nil }
                let values = list.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                requirements.append(Requirement(key: key, op: part.contains(" notin ") ? .notIn : .in, values: values))
            } else if let range = part.range(of: "!=") {
                requirements.append(Requirement(key: String(part[..<range.lowerBound]), op: .notEquals, values: [String(part[range.upperBound...])]))
            } else if let range = part.range(of: "==") ?? part.range(of: "=") {
                requirements.append(Requirement(key: String(part[..<range.lowerBound]), op: .equals, values: [String(part[range.upperBound...])]))
            } else if part.hasPrefix("!") {
                requirements.append(Requirement(key: String(part.dropFirst()), op: .doesNotExist, values: []))
            } else {
                guard !part.contains(" ") else { return nil }
                requirements.append(Requirement(key: part, op: .exists, values: []))
            }
        }
    }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            let value = labels[requirement.key]
            switch requirement.op {
            case .equals: return value == requirement.values[0]
            case .notEquals: return value != requirement.values[0]
            case .in: return value.map(requirement.values.contains) ?? false
            case .notIn: return value.map { !requirement.values.contains($0) } ?? true
            case .exists: return value != nil
            case .doesNotExist: return value == nil
            }
        }
    }
}

struct FakeFieldSelector {
    var terms: [(path: String, value: String, negated: Bool)] = []

    /// Fields each resource supports, by qualified resource name (upstream registers them per
    /// resource with AddFieldLabelConversionFunc; anything else is a 400).
    static let supported: [String: Set<String>] = [
        "pods": ["metadata.name", "metadata.namespace", "spec.nodeName", "spec.schedulerName", "status.phase",
                 "spec.restartPolicy", "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"],
        "nodes": ["metadata.name", "spec.unschedulable"],
        "events": FakeEvents.coreSelectableFields,
        "events.events.k8s.io": ["metadata.name", "metadata.namespace", "regarding.kind", "regarding.name", "regarding.namespace",
                                 "regarding.uid", "reason", "reportingController", "type"],
    ]

    /// Where a selectable field is read when it is not the same path in the object.
    static let paths: [String: String] = ["source": "source.component"]

    /// nil with a message when malformed or unsupported.
    static func parse(_ text: String, plural: String) -> Result<FakeFieldSelector, FakePatchError> {
        var selector = FakeFieldSelector()
        for part in text.split(separator: ",") {
            let term = String(part)
            let negated = term.contains("!=")
            let pieces = negated ? term.components(separatedBy: "!=")
                : (term.contains("==") ? term.components(separatedBy: "==") : term.components(separatedBy: "="))
            guard pieces.count == 2 else { return .failure(FakePatchError(message: "invalid field selector term \"\(term)\"")) }
            let allowed = supported[plural] ?? ["metadata.name", "metadata.namespace"]
            guard allowed.contains(pieces[0]) else {
                return .failure(FakePatchError(message: "field label not supported: \(pieces[0])"))
            }
            selector.terms.append((paths[pieces[0]] ?? pieces[0], pieces[1], negated))
        }
        return .success(selector)
    }

    func matches(_ object: JSON) -> Bool {
        terms.allSatisfy { term in
            var value: JSON? = object
            for key in term.path.split(separator: ".") { value = value?[String(key)] }
            let text: String
            switch value {
            case .string(let string)?: text = string
            case .bool(let flag)?: text = flag ? "true" : "false"
            case .number(let number)?: text = number
            default: text = ""
            }
            return (text == term.value) != term.negated
        }
    }
}

extension JSON {
    var labels: [String: String] {
        var result: [String: String] = [:]
        for member in self["metadata"]?["labels"]?.objectValue ?? JSONObject() {
            if let value = member.value.stringValue { result[member.key] = value }
        }
        return result
    }
}
