import Yams

/// One document of a (multi-document) YAML or JSON stream, with where it started, so errors can
/// say "document 2 (line 14)".
public struct YAMLDocument: Sendable {
    public var value: JSON
    public var line: Int

    public init(value: JSON, line: Int) {
        self.value = value
        self.line = line
    }
}

public struct YAMLError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int?

    public init(message: String, line: Int? = nil) {
        self.message = message
        self.line = line
    }

    public var description: String {
        if let line { return "line \(line): \(message)" }
        return message
    }
}

/// Reads YAML into the JSON model with the types Kubernetes' YAML reader (YAML 1.1, as
/// sigs.k8s.io/yaml) gives them: quoted scalars stay strings, `1` stays the number `1` as written.
public enum YAMLReader {
    public static func documents(_ text: String) throws(YAMLError) -> [YAMLDocument] {
        var nodes: [Node] = []
        do {
            // Not `compose_all`: its sequence swallows errors and just ends early.
            let parser = try Parser(yaml: text)
            while let node = try parser.nextRoot() { nodes.append(node) }
        } catch let error as YamlError {
            throw YAMLError(message: "YAML syntax: \(describe(error))", line: line(of: error))
        } catch {
            throw YAMLError(message: "YAML syntax: \(error)")
        }
        var documents: [YAMLDocument] = []
        // Aliases are expanded; a budget stops "billion laughs" documents from exhausting memory.
        var budget = maximumNodes
        for node in nodes {
            documents.append(YAMLDocument(value: try json(from: node, depth: 0, budget: &budget), line: node.mark?.line ?? 1))
        }
        return documents
    }

    /// One document only (config files); an empty stream is an empty object.
    public static func document(_ text: String) throws(YAMLError) -> JSON {
        let all = try documents(text)
        guard all.count <= 1 else { throw YAMLError(message: "expected one YAML document, found \(all.count)") }
        return all.first?.value ?? .object(JSONObject())
    }

    /// Far above any real manifest; reached only by alias bombs.
    public static let maximumNodes = 1_000_000

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case let .duplicatedKeysInMapping(duplicates, _):
            return "duplicate key \(duplicates.map { "\"\($0)\"" }.joined(separator: ", "))"
        case let .scanner(context, problem, _, _), let .parser(context, problem, _, _):
            if let context { return "\(problem) \(context.text)" }
            return problem
        default:
            return String(describing: error).split(separator: "\n").first.map(String.init) ?? "invalid YAML"
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _): return mark.line
        default: return nil
        }
    }

    private static func json(from node: Node, depth: Int, budget: inout Int) throws(YAMLError) -> JSON {
        guard depth < JSONParser.maximumDepth else { throw YAMLError(message: "nesting too deep", line: node.mark?.line) }
        budget -= 1
        guard budget >= 0 else { throw YAMLError(message: "more than \(maximumNodes) values (alias expansion?)", line: node.mark?.line) }
        switch node {
        case let .scalar(scalar):
            return try json(from: scalar)
        case let .sequence(sequence):
            var elements: [JSON] = []
            elements.reserveCapacity(sequence.count)
            for element in sequence {
                elements.append(try json(from: element, depth: depth + 1, budget: &budget))
            }
            return .array(elements)
        case let .mapping(mapping):
            var object = JSONObject()
            for (key, value) in mapping {
                guard case let .scalar(keyScalar) = key else {
                    throw YAMLError(message: "mapping keys must be plain values", line: key.mark?.line)
                }
                if key.tag.rawValue == Tag.Name.merge.rawValue {
                    throw YAMLError(message: "YAML merge keys (<<) are not supported", line: key.mark?.line)
                }
                if object[keyScalar.string] != nil {
                    throw YAMLError(message: "duplicate key \"\(keyScalar.string)\"", line: key.mark?.line)
                }
                object.members.append(JSONObject.Member(key: keyScalar.string, value: try json(from: value, depth: depth + 1, budget: &budget)))
            }
            return .object(object)
        case let .alias(alias):
            throw YAMLError(message: "YAML alias *\(alias.anchor.rawValue) could not be resolved", line: alias.mark?.line)
        }
    }

    private static func json(from scalar: Node.Scalar) throws(YAMLError) -> JSON {
        let node = Node.scalar(scalar)
        let text = scalar.string
        switch Tag.Name(rawValue: node.tag.rawValue) {
        case .null:
            return .null
        case .bool:
            guard let value = Bool.construct(from: scalar) else { throw YAMLError(message: "invalid boolean \"\(text)\"", line: scalar.mark?.line) }
            return .bool(value)
        case .int:
            if isJSONNumber(text) { return .number(text) }
            if text.hasPrefix("+"), isJSONNumber(String(text.dropFirst())) { return .number(String(text.dropFirst())) }
            // Base 60 (`190:20:30`) is summed here: Yams' own arithmetic traps past Int.
            let value = text.contains(":") ? base60(text) : Int.construct(from: scalar)
            guard let value else { throw YAMLError(message: "integer \"\(text)\" is out of range", line: scalar.mark?.line) }
            return .number(String(value))
        case .float:
            if isJSONNumber(text) { return .number(text) }
            guard let value = Double.construct(from: scalar), value.isFinite else {
                throw YAMLError(message: "number \"\(text)\" cannot be represented in JSON", line: scalar.mark?.line)
            }
            return .number(String(value))
        default:
            // str, timestamps (kept as text, as Kubernetes' reader does), explicit !!str.
            return .string(text)
        }
    }

    /// A YAML 1.1 base-60 integer (`[-+]?` then decimal parts joined by ':'), or nil when a part
    /// is not a decimal number or the value does not fit in Int.
    static func base60(_ text: String) -> Int? {
        var digits = Substring(text)
        let negative = digits.hasPrefix("-")
        if negative || digits.hasPrefix("+") { digits = digits.dropFirst() }
        var value = 0
        for part in digits.split(separator: ":", omittingEmptySubsequences: false) {
            guard let number = Int(part, radix: 10) else { return nil }
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 60)
            let (sum, carried) = shifted.addingReportingOverflow(number)
            guard !overflowed, !carried else { return nil }
            value = sum
        }
        let (signed, overflowed) = negative ? 0.subtractingReportingOverflow(value) : (value, false)
        return overflowed ? nil : signed
    }

    static func isJSONNumber(_ text: String) -> Bool {
        var bytes = Array(text.utf8)
        bytes.append(0)  // sentinel so the scan below needs no bounds checks
        var i = 0
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        guard digit(bytes[i]) else { return false }
        if bytes[i] == UInt8(ascii: "0") { i += 1 } else { while digit(bytes[i]) { i += 1 } }
        if bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digit(bytes[i]) else { return false }
            while digit(bytes[i]) { i += 1 }
        }
        if bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digit(bytes[i]) else { return false }
            while digit(bytes[i]) { i += 1 }
        }
        return i == bytes.count - 1
    }
}

/// Writes the JSON model as block-style YAML that reads back to the same values and types: a
/// string that YAML would read as something else (`"true"`, `"1"`, `"null"`, `"a: b"`) is quoted.
public enum YAMLWriter {
    public static func string(_ documents: [JSON]) -> String {
        var out = ""
        for (index, document) in documents.enumerated() {
            if index > 0 { out += "---\n" }
            write(document, into: &out, indent: 0, context: .document)
        }
        return out
    }

    private enum Context { case document, mappingValue, sequenceItem }

    private static func write(_ value: JSON, into out: inout String, indent: Int, context: Context) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case let .object(object) where !object.isEmpty:
            if context == .mappingValue { out += "\n" }
            for (position, member) in object.members.enumerated() {
                // The first member of a sequence item shares the "- " line.
                if !(context == .sequenceItem && position == 0) { out += pad }
                out += scalarText(member.key) + ":"
                switch member.value {
                case let .object(child) where !child.isEmpty:
                    write(member.value, into: &out, indent: indent + 2, context: .mappingValue)
                case let .array(child) where !child.isEmpty:
                    // Kubernetes style: list items at the same indentation as their key.
                    out += "\n"
                    write(member.value, into: &out, indent: indent, context: .mappingValue)
                default:
                    out += " "
                    write(member.value, into: &out, indent: indent + 2, context: .mappingValue)
                }
            }
        case let .array(array) where !array.isEmpty:
            for (position, element) in array.enumerated() {
                out += (context == .sequenceItem && position == 0 ? "" : pad) + "- "
                write(element, into: &out, indent: indent + 2, context: .sequenceItem)
            }
        case .object:
            out += "{}\n"
        case .array:
            out += "[]\n"
        case .null:
            out += "null\n"
        case let .bool(flag):
            out += (flag ? "true" : "false") + "\n"
        case let .number(text):
            out += text + "\n"
        case let .string(text):
            out += scalarText(text) + "\n"
        }
    }

    /// Plain when YAML reads it back as this very string, double-quoted (JSON escapes) otherwise.
    static func scalarText(_ text: String) -> String {
        if isPlainSafe(text) { return text }
        let quoted = JSONWriter.string(.string(text))
        guard quoted.unicodeScalars.contains(where: needsEscapeInYAML) else { return quoted }
        // JSON leaves these raw, YAML does not read them back: `\uXXXX` is an escape in both.
        var escaped = String.UnicodeScalarView()
        for scalar in quoted.unicodeScalars {
            guard needsEscapeInYAML(scalar) else {
                escaped.append(scalar)
                continue
            }
            let hex = String(scalar.value, radix: 16, uppercase: true)
            escaped.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
        }
        return String(escaped)
    }

    /// In a YAML stream NEL, LS and PS are line breaks (folded to a space in a quoted scalar, and
    /// a key cannot span lines); DEL, the C1 controls and U+FFFE/U+FFFF are refused by the reader;
    /// U+FEFF is a byte-order mark. All are in the Basic Multilingual Plane.
    static func needsEscapeInYAML(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x7F...0x9F, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF: true
        default: false
        }
    }

    static func isPlainSafe(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last else { return false }
        if first == " " || last == " " || last == ":" { return false }
        if "?:,[]{}#&*!|>'\"%@`".unicodeScalars.contains(first) { return false }
        if first == "-" && (text.count == 1 || text.unicodeScalars.dropFirst().first == " ") { return false }
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || needsEscapeInYAML(scalar) { return false }
        }
        if text.contains(": ") || text.contains(" #") || text.hasPrefix("---") || text.hasPrefix("...") { return false }
        // Anything YAML 1.1 would resolve to bool, int, float, null, timestamp, merge or value.
        return Node(text).tag.rawValue == Tag.Name.str.rawValue
    }
}
