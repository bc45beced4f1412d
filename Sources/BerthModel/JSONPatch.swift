/// An RFC 6901 JSON Pointer, kept as unescaped reference tokens; escaping (`~` → `~0`, `/` → `~1`)
/// happens only when it is written, so a label key like `nvidia.com/gpu` is never mangled.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    public var tokens: [String]

    public init(_ tokens: [String] = []) {
        self.tokens = tokens
    }

    /// Parses the escaped form, e.g. `/metadata/annotations/karpenter.sh~1do-not-disrupt`.
    public init(parsing text: String) throws(JSONPatchError) {
        if text.isEmpty {
            self.tokens = []
            return
        }
        guard text.hasPrefix("/") else { throw JSONPatchError(message: "JSON pointer \"\(text)\" must start with '/'") }
        var tokens: [String] = []
        for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            var token = ""
            var iterator = raw.makeIterator()
            while let character = iterator.next() {
                guard character == "~" else {
                    token.append(character)
                    continue
                }
                switch iterator.next() {
                case "0": token.append("~")
                case "1": token.append("/")
                default: throw JSONPatchError(message: "JSON pointer \"\(text)\" has an invalid '~' escape")
                }
            }
            tokens.append(token)
        }
        self.tokens = tokens
    }

    /// One allocation: `tokens + [token]` built a one-element array first.
    public func appending(_ token: String) -> JSONPointer {
        var extended: [String] = []
        extended.reserveCapacity(tokens.count + 1)
        extended.append(contentsOf: tokens)
        extended.append(token)
        return JSONPointer(extended)
    }

    /// Several tokens with one allocation; a literal list of literal tokens costs none itself.
    public func appending(contentsOf more: [String]) -> JSONPointer {
        var extended: [String] = []
        extended.reserveCapacity(tokens.count + more.count)
        extended.append(contentsOf: tokens)
        extended.append(contentsOf: more)
        return JSONPointer(extended)
    }

    public func appending(_ index: Int) -> JSONPointer {
        appending(String(index))
    }

    public func appending(_ other: JSONPointer) -> JSONPointer {
        JSONPointer(tokens + other.tokens)
    }

    public static func escape(_ token: String) -> String {
        var bytes: [UInt8] = []
        appendEscaped(token, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Byte-level on purpose: `String.contains(_:)` with a string argument goes through the
    /// string-processing library and cost microseconds per call on the webhook's hot path.
    /// With `jsonString`, also escaped for the inside of a JSON string (`"`, `\`, controls).
    static func appendEscaped(_ token: String, to out: inout [UInt8], jsonString: Bool = false) {
        var token = token
        token.withUTF8 { bytes in
            // Runs of ordinary bytes are copied whole; only `~`, `/` (and for JSON, quotes,
            // backslashes and controls) are rewritten.
            var runStart = 0
            for i in 0..<bytes.count {
                let byte = bytes[i]
                let special = byte == UInt8(ascii: "~") || byte == UInt8(ascii: "/")
                    || (jsonString && (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20))
                guard special else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                switch byte {
                case UInt8(ascii: "~"):
                    out.append(UInt8(ascii: "~"))
                    out.append(UInt8(ascii: "0"))
                case UInt8(ascii: "/"):
                    out.append(UInt8(ascii: "~"))
                    out.append(UInt8(ascii: "1"))
                default:
                    JSONWriter.appendEscape(for: byte, into: &out)
                }
                runStart = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
    }

    public var description: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for token in tokens {
            bytes.append(UInt8(ascii: "/"))
            JSONPointer.appendEscaped(token, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

public struct JSONPatchError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// One RFC 6902 operation. Berth only ever produces `add`; the others exist so that patches from
/// elsewhere (tests, tools) can be applied and compared.
public struct JSONPatchOperation: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case add, remove, replace, test
    }

    public var op: Kind
    public var path: JSONPointer {
        didSet { encodedPath = EncodedPointer.bytes(path) }
    }
    public var value: JSON? {
        didSet { encodedValue = value.map { JSONWriter.bytes($0) } }
    }
    /// `path` as it is written between the quotes of `"path":"…"` (pointer-escaped, then
    /// JSON-escaped), and `value` as compact JSON: kept with the operation from when it is made,
    /// so `JSONPatch.serialized()` only copies bytes. The policy's operations take both from
    /// values built once (`EncodedPointer`, `EncodedJSON`). Not part of equality.
    public private(set) var encodedPath: [UInt8]
    public private(set) var encodedValue: [UInt8]?

    public init(op: Kind, path: JSONPointer, value: JSON? = nil) {
        self.init(op: op, path: EncodedPointer(path), value: value, encodedValue: value.map { JSONWriter.bytes($0) })
    }

    init(op: Kind, path: EncodedPointer, value: JSON?, encodedValue: [UInt8]?) {
        self.op = op
        self.path = path.pointer
        self.encodedPath = path.bytes
        self.value = value
        self.encodedValue = encodedValue
    }

    public static func add(_ path: JSONPointer, _ value: JSON) -> JSONPatchOperation {
        JSONPatchOperation(op: .add, path: path, value: value)
    }

    public static func add(_ path: JSONPointer, _ value: EncodedJSON) -> JSONPatchOperation {
        add(EncodedPointer(path), value)
    }

    public static func add(_ path: EncodedPointer, _ value: JSON) -> JSONPatchOperation {
        JSONPatchOperation(op: .add, path: path, value: value, encodedValue: JSONWriter.bytes(value))
    }

    public static func add(_ path: EncodedPointer, _ value: EncodedJSON) -> JSONPatchOperation {
        JSONPatchOperation(op: .add, path: path, value: value.value, encodedValue: value.bytes)
    }

    public static func == (lhs: JSONPatchOperation, rhs: JSONPatchOperation) -> Bool {
        lhs.op == rhs.op && lhs.path == rhs.path && lhs.value == rhs.value
    }

    public var json: JSON {
        var object = JSONObject()
        object["op"] = .string(op.rawValue)
        object["path"] = .string(path.description)
        if let value { object["value"] = value }
        return .object(object)
    }

    /// `{"op":"…","path":"` with the quote that opens the path: one copy per operation.
    private var opening: StaticString {
        switch op {
        case .add: #"{"op":"add","path":""#
        case .remove: #"{"op":"remove","path":""#
        case .replace: #"{"op":"replace","path":""#
        case .test: #"{"op":"test","path":""#
        }
    }

    private static var valueKey: StaticString { #"","value":"# }

    /// The serialized operation's length.
    public var serializedCount: Int {
        let valueCount = encodedValue.map { Self.valueKey.utf8CodeUnitCount + $0.count } ?? 1
        return opening.utf8CodeUnitCount + encodedPath.count + valueCount + 1
    }

    func write(to cursor: inout ByteCursor) {
        cursor.write(opening)
        cursor.write(encodedPath)
        if let encodedValue {
            cursor.write(Self.valueKey)
            cursor.write(encodedValue)
        } else {
            cursor.write(UInt8(ascii: "\""))
        }
        cursor.write(UInt8(ascii: "}"))
    }
}

/// A pointer with its bytes as a patch's `"path"` string holds them, written once and reused.
public struct EncodedPointer: Sendable {
    public let pointer: JSONPointer
    public let bytes: [UInt8]

    public init(_ pointer: JSONPointer) {
        self.pointer = pointer
        self.bytes = Self.bytes(pointer)
    }

    public init(_ tokens: [String]) {
        self.init(JSONPointer(tokens))
    }

    /// This pointer under `base`: itself when `base` is the root.
    public func under(_ base: JSONPointer) -> EncodedPointer {
        base.tokens.isEmpty ? self : EncodedPointer(base.appending(pointer))
    }

    static func bytes(_ pointer: JSONPointer) -> [UInt8] {
        var bytes: [UInt8] = []
        for token in pointer.tokens {
            bytes.append(UInt8(ascii: "/"))
            JSONPointer.appendEscaped(token, to: &bytes, jsonString: true)
        }
        return bytes
    }
}

/// A value with its compact JSON bytes, written once and reused.
public struct EncodedJSON: Sendable {
    public let value: JSON
    public let bytes: [UInt8]

    public init(_ value: JSON) {
        self.value = value
        self.bytes = JSONWriter.bytes(value)
    }
}

public struct JSONPatch: Sendable, Equatable {
    public var operations: [JSONPatchOperation]

    public init(_ operations: [JSONPatchOperation] = []) {
        self.operations = operations
    }

    public var isEmpty: Bool { operations.isEmpty }

    public var json: JSON { .array(operations.map(\.json)) }

    /// The length of `serialized()`, known before writing it (every operation keeps its bytes).
    public var serializedCount: Int {
        var count = 2 + max(operations.count - 1, 0)
        for operation in operations { count += operation.serializedCount }
        return count
    }

    /// Writes exactly `serializedCount` bytes: the AdmissionReview response writes the patch
    /// through this into a scratch buffer it then base64-encodes, with no array of its own.
    public func write(to cursor: inout ByteCursor) {
        cursor.write(UInt8(ascii: "["))
        for index in operations.indices {
            if index > 0 { cursor.write(UInt8(ascii: ",")) }
            operations[index].write(to: &cursor)
        }
        cursor.write(UInt8(ascii: "]"))
    }

    /// The compact wire form the AdmissionReview carries (before base64): the same bytes as
    /// `JSONWriter.bytes(json)`, copied from the operations' bytes into one exact allocation.
    public func serialized() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: serializedCount) { buffer, initialized in
            guard let start = buffer.baseAddress else { return }
            var cursor = ByteCursor(start, capacity: buffer.count)
            write(to: &cursor)
            initialized = cursor.count(from: start)
        }
    }

    /// Reads a patch document (a JSON array of operations).
    public init(json: JSON) throws(JSONPatchError) {
        guard let elements = json.arrayValue else { throw JSONPatchError(message: "a JSON patch must be a list, found \(json.typeName)") }
        var operations: [JSONPatchOperation] = []
        for (index, element) in elements.enumerated() {
            guard let opName = element["op"]?.stringValue, let kind = JSONPatchOperation.Kind(rawValue: opName) else {
                throw JSONPatchError(message: "operation \(index): unsupported or missing \"op\"")
            }
            guard let pathText = element["path"]?.stringValue else { throw JSONPatchError(message: "operation \(index): missing \"path\"") }
            let value = element["value"]
            if kind != .remove, value == nil { throw JSONPatchError(message: "operation \(index): missing \"value\"") }
            operations.append(JSONPatchOperation(op: kind, path: try JSONPointer(parsing: pathText), value: value))
        }
        self.operations = operations
    }

    /// Applies the operations in order, as RFC 6902 says: all or nothing.
    public func apply(to document: JSON) throws(JSONPatchError) -> JSON {
        var result = document
        for (index, operation) in operations.enumerated() {
            do {
                try Self.apply(operation, to: &result, tokens: operation.path.tokens[...])
            } catch {
                throw JSONPatchError(message: "operation \(index) (\(operation.op.rawValue) \(operation.path)): \(error.message)")
            }
        }
        return result
    }

    private static func apply(_ operation: JSONPatchOperation, to node: inout JSON, tokens: ArraySlice<String>) throws(JSONPatchError) {
        guard let token = tokens.first else {
            // The pointer names this very node.
            switch operation.op {
            case .add, .replace: node = operation.value ?? .null
            case .test:
                guard node == operation.value else { throw JSONPatchError(message: "test failed") }
            case .remove: throw JSONPatchError(message: "cannot remove the whole document")
            }
            return
        }
        let rest = tokens.dropFirst()
        switch node {
        case var .object(object):
            if rest.isEmpty {
                switch operation.op {
                case .add: object[token] = operation.value ?? .null
                case .replace:
                    guard object[token] != nil else { throw JSONPatchError(message: "member \"\(token)\" does not exist") }
                    object[token] = operation.value ?? .null
                case .remove:
                    guard object[token] != nil else { throw JSONPatchError(message: "member \"\(token)\" does not exist") }
                    object[token] = nil
                case .test:
                    guard let current = object[token], current == operation.value else { throw JSONPatchError(message: "test failed") }
                }
            } else {
                guard var child = object[token] else { throw JSONPatchError(message: "member \"\(token)\" does not exist") }
                node = .null  // release the enclosing copy so the child is mutated in place
                try apply(operation, to: &child, tokens: rest)
                object[token] = child
            }
            node = .object(object)
        case var .array(array):
            let index: Int
            if token == "-" {
                guard rest.isEmpty, operation.op == .add else { throw JSONPatchError(message: "'-' only appends with add") }
                index = array.count
            } else {
                guard let parsed = Int(token), parsed >= 0, String(parsed) == token else {
                    throw JSONPatchError(message: "\"\(token)\" is not a list index")
                }
                index = parsed
            }
            if rest.isEmpty {
                switch operation.op {
                case .add:
                    guard index <= array.count else { throw JSONPatchError(message: "index \(index) is out of range") }
                    array.insert(operation.value ?? .null, at: index)
                case .replace, .remove, .test:
                    guard index < array.count else { throw JSONPatchError(message: "index \(index) is out of range") }
                    if operation.op == .replace { array[index] = operation.value ?? .null }
                    if operation.op == .remove { array.remove(at: index) }
                    if operation.op == .test, array[index] != operation.value { throw JSONPatchError(message: "test failed") }
                }
            } else {
                guard index < array.count else { throw JSONPatchError(message: "index \(index) is out of range") }
                var child = array[index]
                node = .null
                try apply(operation, to: &child, tokens: rest)
                array[index] = child
            }
            node = .array(array)
        default:
            throw JSONPatchError(message: "cannot descend into \(node.typeName) at \"\(token)\"")
        }
    }
}
