/// Writes JSON back out: compact for the wire, indented for people. Numbers are written as they
/// were read; strings are escaped as RFC 8259 requires and nothing more.
public enum JSONWriter {
    public static func bytes(_ value: JSON, pretty: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out, pretty: pretty, indent: 0)
        return out
    }

    public static func string(_ value: JSON, pretty: Bool = false) -> String {
        String(decoding: bytes(value, pretty: pretty), as: UTF8.self)
    }

    public static func write(_ value: JSON, into out: inout [UInt8], pretty: Bool = false, indent: Int = 0) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case let .number(text): out.append(utf8: text)
        case let .string(text): writeString(text, into: &out)
        case let .array(elements):
            if elements.isEmpty {
                out.append(contentsOf: "[]".utf8)
                return
            }
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(&out, indent + 1) }
                write(element, into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&out, indent) }
            out.append(UInt8(ascii: "]"))
        case let .object(object):
            if object.isEmpty {
                out.append(contentsOf: "{}".utf8)
                return
            }
            out.append(UInt8(ascii: "{"))
            for (position, member) in object.members.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(&out, indent + 1) }
                writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(UInt8(ascii: " ")) }
                write(member.value, into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&out, indent) }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ out: inout [UInt8], _ indent: Int) {
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    /// The escape sequence for a byte that may not appear raw inside a JSON string (rare: one
    /// temporary on the stack is fine).
    static func appendEscape(for byte: UInt8, into out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 6) { buffer in
            guard let start = buffer.baseAddress else { return }
            var cursor = ByteCursor(start, capacity: buffer.count)
            cursor.writeEscape(for: byte)
            out.append(contentsOf: UnsafeBufferPointer(start: start, count: cursor.count(from: start)))
        }
    }

    public static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
                appendEscape(for: byte, into: &out)
                runStart = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// A write position in a buffer sized beforehand (`Array(unsafeUninitializedCapacity:)`): each
/// write is one copy. `Array.append(contentsOf:)` cost ~150 instructions a call in its capacity
/// and uniqueness checks, a dozen calls per patch and again per response on the webhook's path.
/// Every write checks the room left (one compare): a size computed too small traps instead of
/// writing past the buffer.
public struct ByteCursor {
    /// Only this type moves it (inlinable writers need it visible to the optimiser).
    @usableFromInline var current: UnsafeMutablePointer<UInt8>
    public let end: UnsafeMutablePointer<UInt8>

    public var position: UnsafeMutablePointer<UInt8> { current }

    @inlinable
    public init(_ start: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.current = start
        self.end = start + capacity
    }

    /// Room for `count` bytes that the caller stores itself (a bulk encoder): returns where they
    /// start and moves past them.
    @inlinable
    public mutating func claim(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        precondition(count >= 0 && end - current >= count, "ByteCursor: buffer sized too small")
        defer { current += count }
        return current
    }

    @inlinable
    public mutating func write(_ byte: UInt8) {
        precondition(current < end, "ByteCursor: buffer sized too small")
        current.initialize(to: byte)
        current += 1
    }

    @inlinable
    public mutating func write(_ literal: StaticString) {
        write(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    @inlinable
    public mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        claim(bytes.count).initialize(from: source, count: bytes.count)
    }

    @inlinable
    public mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { write($0) }
    }

    /// A String's UTF-8 as it is (enum raw values and the like).
    public mutating func write(utf8 text: String) {
        // Read in place where it can be: `withUTF8` needs a mutable copy (a retain and a release).
        if text.utf8.withContiguousStorageIfAvailable({ write($0) }) == nil {
            for byte in text.utf8 { write(byte) }
        }
    }

    /// Where the writing ended up, as a count from `start`.
    @inlinable
    public func count(from start: UnsafeMutablePointer<UInt8>) -> Int {
        position - start
    }

    /// `text` as a JSON string, quotes included: at most `JSONWriter.stringBound(text)` bytes.
    public mutating func writeJSONString(_ text: String) {
        write(UInt8(ascii: "\""))
        // In place, as in `write(utf8:)`.
        if text.utf8.withContiguousStorageIfAvailable({ writeJSONStringContents($0) }) == nil {
            var contiguous = text
            contiguous.withUTF8 { writeJSONStringContents($0) }
        }
        write(UInt8(ascii: "\""))
    }

    private mutating func writeJSONStringContents(_ utf8: UnsafeBufferPointer<UInt8>) {
        guard let base = utf8.baseAddress else { return }
        var runStart = 0
        var i = 0
        // Eight bytes at a time while none needs escaping, which is the whole of a uid or an
        // apiVersion: ~2 instructions a byte instead of ~7.
        while utf8.count - i >= 8, !Self.needsEscape(UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)) {
            i += 8
        }
        while i < utf8.count {
            let byte = base[i]
            i += 1
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            write(UnsafeBufferPointer(start: base + runStart, count: i - 1 - runStart))
            writeEscape(for: byte)
            runStart = i
        }
        write(UnsafeBufferPointer(start: base + runStart, count: utf8.count - runStart))
    }

    /// Whether any of the eight bytes is a control, a quote or a backslash (the word-at-a-time tests of
    /// "Bit Twiddling Hacks": a borrow can only flag a byte above one that really matches, so
    /// the answer for the word is exact).
    @inline(__always)
    static func needsEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let control = (word &- ones &* 0x20) & ~word
        let quote = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
        let backslash = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
        let hits = control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
        return hits & highs != 0
    }

    /// `\"`, `\\`, the short forms of the common controls, `\u00XX` for the other controls.
    mutating func writeEscape(for byte: UInt8) {
        write(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""): write(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): write(UInt8(ascii: "\\"))
        case 0x0A: write(UInt8(ascii: "n"))
        case 0x0D: write(UInt8(ascii: "r"))
        case 0x09: write(UInt8(ascii: "t"))
        case 0x08: write(UInt8(ascii: "b"))
        case 0x0C: write(UInt8(ascii: "f"))
        default:
            let hex: StaticString = "0123456789abcdef"
            write("u00")
            write(hex.utf8Start[Int(byte >> 4)])
            write(hex.utf8Start[Int(byte & 0xF)])
        }
    }
}

extension JSONWriter {
    /// Room enough for `text` as a JSON string: every byte may become `\u00XX`, plus the quotes.
    public static func stringBound(_ text: String) -> Int {
        6 * text.utf8.count + 2
    }
}

extension JSON: CustomStringConvertible {
    public var description: String { JSONWriter.string(self) }
}

extension Array where Element == UInt8 {
    /// Appends a String's UTF-8 with one copy (a number's text): `append(contentsOf: text.utf8)`
    /// takes the generic sequence path, ~170 instructions for a dozen bytes.
    @inlinable
    public mutating func append(utf8 text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }
}
