// Pure value type: no imports, so the parser files compile standalone for fuzzing.

/// Ordered header fields as received (or to be sent). Lookup is ASCII case-insensitive.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (name: String, value: String)

    @usableFromInline var fields: [(name: String, value: String)]

    public init(_ pairs: [(String, String)] = []) {
        fields = pairs.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The first value for `name`, if any.
    public subscript(name: String) -> String? {
        for field in fields where field.name.utf8.asciiCaseInsensitiveEquals(name.utf8) {
            return field.value
        }
        return nil
    }

    /// Every value for `name`, in order.
    public func values(for name: String) -> [String] {
        fields.filter { $0.name.utf8.asciiCaseInsensitiveEquals(name.utf8) }.map(\.value)
    }

    public func contains(name: String) -> Bool { self[name] != nil }

    public mutating func add(name: String, value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field called `name` by one with `value`.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        add(name: name, value: value)
    }

    public mutating func remove(name: String) {
        fields.removeAll { $0.name.utf8.asciiCaseInsensitiveEquals(name.utf8) }
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

extension Collection<UInt8> {
    /// ASCII case-insensitive comparison of two byte sequences (header names, tokens). Lengths
    /// first: most comparisons (each header name against each name the parser knows) end there.
    @inlinable
    func asciiCaseInsensitiveEquals(_ other: some Collection<UInt8>) -> Bool {
        guard count == other.count else { return false }
        var left = makeIterator()
        var right = other.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case let (a?, b?):
                if a != b && asciiLower(a) != asciiLower(b) { return false }
            default: return false
            }
        }
    }
}

@inlinable
func asciiLower(_ byte: UInt8) -> UInt8 {
    (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
}
