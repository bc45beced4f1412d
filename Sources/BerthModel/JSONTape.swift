/// A parsed document as one flat array of fixed-size nodes over the original bytes: no node
/// allocates, strings stay bytes until someone asks for them, and freeing the document frees two
/// arrays. This is what the webhook reads AdmissionReviews into: a tree of `JSON` values cost
/// more to build and destroy (one allocation and a chain of releases per node) than the whole
/// policy. Read it through `JSONCursor`, which offers the same reading API as `JSON`.
public final class JSONTape: Sendable {
    public enum Kind: UInt8, Sendable {
        case null, bool, number, string, array, object
    }

    struct Node: Sendable {
        var kind: Kind
        /// Strings: holds a backslash escape. Booleans: the value.
        var flag: Bool
        /// Strings: the bytes between the quotes; numbers: the literal; containers: from the
        /// opening bracket to after the closing one.
        var start: Int32
        var end: Int32
        /// The index after this node's subtree (its next sibling).
        var next: Int32
    }

    let bytes: [UInt8]
    let nodes: [Node]

    /// Parses `bytes` keeping only what `selection` names; the rest is checked as strictly and
    /// skipped without being recorded. Documents over 2 GiB are refused.
    public init(parsing bytes: [UInt8], selecting selection: JSONSelection = .all) throws(JSONError) {
        guard bytes.count < Int(Int32.max) else {
            throw JSONError(message: "document too large", offset: 0, line: 1, column: 1)
        }
        var nodes: [Node] = []
        // About one recorded node per 30 bytes of a review: one allocation, rarely a regrowth.
        nodes.reserveCapacity(min(max(64, bytes.count / 24), 4096))
        try bytes.withUnsafeBufferPointer { buffer throws(JSONError) in
            var reader = Reader(buffer: buffer)
            reader.skipWhitespace()
            try reader.tapeValue(depth: 0, selection: selection, into: &nodes)
            reader.skipWhitespace()
            if reader.index < buffer.count { throw reader.error("unexpected data after the JSON value") }
        }
        self.bytes = bytes
        self.nodes = nodes
    }

    public var root: JSONCursor { JSONCursor(tape: self, index: 0) }
}

extension Reader {
    /// Offsets and node indices are stored as Int32 without a trap check: `JSONTape.init` refuses
    /// documents of 2 GiB or more, and there are never more nodes than bytes.
    mutating func tapeValue(depth: Int, selection: JSONSelection, into nodes: inout [JSONTape.Node]) throws(JSONError) {
        guard index < buffer.count else { throw error("unexpected end of input, expected a value") }
        let start = index
        switch buffer[index] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let isObject = buffer[index] == UInt8(ascii: "{")
            let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
            guard depth + 1 <= JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth) levels") }
            let slot = nodes.count
            nodes.append(JSONTape.Node(kind: isObject ? .object : .array, flag: false, start: Int32(truncatingIfNeeded: start), end: 0, next: 0))
            index += 1
            skipWhitespace()
            if index < buffer.count, buffer[index] == close {
                index += 1
            } else {
                // What the children get, taken out of the selection once per container rather
                // than per member (each copy of an enum payload is a retain and a release).
                var memberTable: [JSONSelection.SelectedMember]?
                var elementSelection = JSONSelection.all
                switch selection {
                case let .members(members) where isObject: memberTable = members
                case let .elements(element) where !isObject: elementSelection = element
                default: break
                }
                while true {
                    skipWhitespace()
                    if isObject {
                        guard index < buffer.count, buffer[index] == UInt8(ascii: "\"") else {
                            throw error(index < buffer.count ? "expected a quoted member name" : "unexpected end of input in an object")
                        }
                        let keyStart = index
                        let hasEscape = try skipStringInline()
                        let keyNode = JSONTape.Node(
                            kind: .string, flag: hasEscape, start: Int32(truncatingIfNeeded: keyStart + 1), end: Int32(truncatingIfNeeded: index - 1), next: Int32(truncatingIfNeeded: nodes.count + 1))
                        var match: Int?
                        if let memberTable {
                            match = try member(named: keyStart, hasEscape: hasEscape, in: memberTable)
                        }
                        skipWhitespace()
                        guard index < buffer.count, buffer[index] == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
                        index += 1
                        skipWhitespace()
                        if let memberTable, let match {
                            nodes.append(keyNode)
                            try tapeValue(depth: depth + 1, selection: memberTable[match].selection, into: &nodes)
                        } else if memberTable == nil {
                            nodes.append(keyNode)
                            try tapeValue(depth: depth + 1, selection: .all, into: &nodes)
                        } else {
                            try skipValue(depth: depth + 1)
                        }
                    } else {
                        try tapeValue(depth: depth + 1, selection: elementSelection, into: &nodes)
                    }
                    skipWhitespace()
                    guard index < buffer.count else { throw error(isObject ? "unexpected end of input in an object" : "unexpected end of input in a list") }
                    if buffer[index] == UInt8(ascii: ",") {
                        index += 1
                    } else if buffer[index] == close {
                        index += 1
                        break
                    } else {
                        throw error(isObject
                            ? "expected ',' or '}' in an object, found \(describe(buffer[index]))"
                            : "expected ',' or ']' in a list, found \(describe(buffer[index]))")
                    }
                }
            }
            nodes[slot].end = Int32(truncatingIfNeeded: index)
            nodes[slot].next = Int32(truncatingIfNeeded: nodes.count)
        case UInt8(ascii: "\""):
            let hasEscape = try skipStringInline()
            nodes.append(JSONTape.Node(kind: .string, flag: hasEscape, start: Int32(truncatingIfNeeded: start + 1), end: Int32(truncatingIfNeeded: index - 1), next: Int32(truncatingIfNeeded: nodes.count + 1)))
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            nodes.append(JSONTape.Node(kind: .bool, flag: true, start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: index), next: Int32(truncatingIfNeeded: nodes.count + 1)))
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            nodes.append(JSONTape.Node(kind: .bool, flag: false, start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: index), next: Int32(truncatingIfNeeded: nodes.count + 1)))
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            nodes.append(JSONTape.Node(kind: .null, flag: false, start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: index), next: Int32(truncatingIfNeeded: nodes.count + 1)))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
            nodes.append(JSONTape.Node(kind: .number, flag: false, start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: index), next: Int32(truncatingIfNeeded: nodes.count + 1)))
        default:
            throw error("unexpected character \(describe(buffer[index])), expected a value")
        }
    }

    /// The index of the selected member whose name is the string at `keyStart`, if any. Over
    /// the member table's storage with lengths compared first: this runs for every name of
    /// every selected object.
    @inline(__always)
    func member(named keyStart: Int, hasEscape: Bool, in members: [JSONSelection.SelectedMember]) throws(JSONError) -> Int? {
        if hasEscape {
            var probe = Reader(buffer: buffer)
            probe.index = keyStart
            let key = try probe.parseString()
            return members.firstIndex { $0.key == key }
        }
        let start = keyStart + 1
        let length = index - 1 - start
        return members.withUnsafeBufferPointer { candidates in
            for position in candidates.indices where candidates[position].keyBytes.count == length {
                if candidates[position].keyBytes.withUnsafeBufferPointer({ bytesEqual($0, buffer, at: start) }) { return position }
            }
            return nil
        }
    }
}

/// A position in a `JSONTape`: reads like `JSON` (see `JSONReadable`).
public struct JSONCursor: Sendable {
    let tape: JSONTape
    let index: Int

    var node: JSONTape.Node { tape.nodes[index] }

    public var kind: JSONTape.Kind { node.kind }

    /// The member named `key` of an object; nil when absent or not an object.
    public subscript(key: String) -> JSONCursor? {
        let container = node
        guard container.kind == .object else { return nil }
        let end = Int(container.next)
        // The key's bytes and the tape are opened once for the whole scan, not per member.
        var key = key
        let found: Int? = key.withUTF8 { wanted in
            tape.nodes.withUnsafeBufferPointer { nodes in
                tape.bytes.withUnsafeBufferPointer { bytes in
                    var child = index + 1
                    while child < end {
                        let keyNode = nodes[child]
                        if keyNode.flag {
                            if Self.decode(tape, keyNode).utf8.elementsEqual(wanted) { return child + 1 }
                        } else if Int(keyNode.end) - Int(keyNode.start) == wanted.count, bytesEqual(wanted, bytes, at: Int(keyNode.start)) {
                            return child + 1
                        }
                        child = Int(nodes[child + 1].next)
                    }
                    return nil
                }
            }
        }
        return found.map { JSONCursor(tape: tape, index: $0) }
    }

    static func decode(_ tape: JSONTape, _ node: JSONTape.Node) -> String {
        tape.bytes.withUnsafeBufferPointer { bytes in
            if !node.flag {
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[Int(node.start)..<Int(node.end)]), as: UTF8.self)
            }
            // Escapes: the parser already validated this string; decode it again.
            var reader = Reader(buffer: bytes)
            reader.index = Int(node.start) - 1
            return (try? reader.parseString()) ?? ""
        }
    }

    public var stringValue: String? {
        let node = self.node
        guard node.kind == .string else { return nil }
        return Self.decode(tape, node)
    }

    public var boolValue: Bool? {
        let node = self.node
        return node.kind == .bool ? node.flag : nil
    }

    public var isNull: Bool { node.kind == .null }
    public var isObject: Bool { node.kind == .object }

    public var arrayElements: [JSONCursor]? {
        let container = node
        guard container.kind == .array else { return nil }
        // Counted first (a walk over sibling links) so the array is allocated once, not regrown.
        var count = 0
        var next = index + 1
        while next < Int(container.next) {
            count += 1
            next = Int(tape.nodes[next].next)
        }
        var elements: [JSONCursor] = []
        elements.reserveCapacity(count)
        var child = index + 1
        while child < Int(container.next) {
            elements.append(JSONCursor(tape: tape, index: child))
            child = Int(tape.nodes[child].next)
        }
        return elements
    }

    public func forEachMember(_ body: (_ key: String, _ value: JSONCursor) -> Void) {
        let container = node
        guard container.kind == .object else { return }
        var child = index + 1
        while child < Int(container.next) {
            body(Self.decode(tape, tape.nodes[child]), JSONCursor(tape: tape, index: child + 1))
            child = Int(tape.nodes[child + 1].next)
        }
    }

    public func forEachMemberName(_ body: (_ name: UnsafeBufferPointer<UInt8>) -> Void) {
        let container = node
        guard container.kind == .object else { return }
        tape.bytes.withUnsafeBufferPointer { bytes in
            var child = index + 1
            while child < Int(container.next) {
                let keyNode = tape.nodes[child]
                if keyNode.flag {
                    var name = Self.decode(tape, keyNode)
                    name.withUTF8 { body($0) }
                } else {
                    body(UnsafeBufferPointer(rebasing: bytes[Int(keyNode.start)..<Int(keyNode.end)]))
                }
                child = Int(tape.nodes[child + 1].next)
            }
        }
    }

    public var objectMembers: [(key: String, value: JSONCursor)]? {
        let container = node
        guard container.kind == .object else { return nil }
        var members: [(key: String, value: JSONCursor)] = []
        var child = index + 1
        while child < Int(container.next) {
            members.append((Self.decode(tape, tape.nodes[child]), JSONCursor(tape: tape, index: child + 1)))
            child = Int(tape.nodes[child + 1].next)
        }
        return members
    }

    public var typeName: String {
        switch node.kind {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }

    /// The value as a `JSON` tree (tests, diagnostics; not the hot path).
    public var json: JSON {
        let node = self.node
        switch node.kind {
        case .null: return .null
        case .bool: return .bool(node.flag)
        case .number:
            return .number(tape.bytes.withUnsafeBufferPointer {
                String(decoding: UnsafeBufferPointer(rebasing: $0[Int(node.start)..<Int(node.end)]), as: UTF8.self)
            })
        case .string: return .string(Self.decode(tape, node))
        case .array: return .array((arrayElements ?? []).map(\.json))
        case .object: return .object(JSONObject((objectMembers ?? []).map { JSONObject.Member(key: $0.key, value: $0.value.json) }))
        }
    }
}

/// What the policy needs to read a pod, satisfied by both `JSON` (manifests, `berth mutate`)
/// and `JSONCursor` (AdmissionReviews on the webhook's hot path), so there is one policy.
public protocol JSONReadable {
    subscript(key: String) -> Self? { get }
    /// Every member of an object, in order (nothing for other values): one pass, no array.
    func forEachMember(_ body: (_ key: String, _ value: Self) -> Void)
    /// Every member name of an object as UTF-8 bytes (escapes decoded), without making Strings.
    func forEachMemberName(_ body: (_ name: UnsafeBufferPointer<UInt8>) -> Void)
    var stringValue: String? { get }
    /// Whether this is a string equal to `text`, without making a String of it.
    func stringEquals(_ text: String) -> Bool
    var isString: Bool { get }
    /// Whether this is a list, without gathering its elements.
    var isArray: Bool { get }
    var arrayElements: [Self]? { get }
    var objectMembers: [(key: String, value: Self)]? { get }
    var isNull: Bool { get }
    var isObject: Bool { get }
    var typeName: String { get }
}

extension JSONReadable {
    public func stringEquals(_ text: String) -> Bool { stringValue == text }
    public var isString: Bool { stringValue != nil }
    public var isArray: Bool { arrayElements != nil }
}

extension JSONCursor: JSONReadable {
    public func stringEquals(_ text: String) -> Bool {
        let node = self.node
        guard node.kind == .string else { return false }
        if node.flag { return Self.decode(tape, node) == text }
        var text = text
        return text.withUTF8 { wanted in
            wanted.count == Int(node.end) - Int(node.start)
                && tape.bytes.withUnsafeBufferPointer { bytesEqual(wanted, $0, at: Int(node.start)) }
        }
    }

    public var isString: Bool { node.kind == .string }
    public var isArray: Bool { node.kind == .array }
}

extension JSON: JSONReadable {
    public var arrayElements: [JSON]? { arrayValue }
    public var objectMembers: [(key: String, value: JSON)]? { objectValue?.members.map { ($0.key, $0.value) } }
    public var isObject: Bool { objectValue != nil }
    public func forEachMember(_ body: (_ key: String, _ value: JSON) -> Void) {
        guard case let .object(object) = self else { return }
        for member in object.members { body(member.key, member.value) }
    }
    public func forEachMemberName(_ body: (_ name: UnsafeBufferPointer<UInt8>) -> Void) {
        guard case let .object(object) = self else { return }
        for member in object.members {
            var key = member.key
            key.withUTF8 { body($0) }
        }
    }
}

/// Whether `buffer[offset..<offset + wanted.count]` holds exactly `wanted` (the caller checked
/// the length). A plain loop: the generic `elementsEqual` over string views cost more than the
/// whole lookup should.
@inline(__always)
func bytesEqual(_ wanted: UnsafeBufferPointer<UInt8>, _ buffer: UnsafeBufferPointer<UInt8>, at offset: Int) -> Bool {
    guard offset >= 0, offset + wanted.count <= buffer.count else { return false }
    var i = 0
    while i < wanted.count {
        if wanted[i] != buffer[offset + i] { return false }
        i += 1
    }
    return true
}
