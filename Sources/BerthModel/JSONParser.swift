/// A strict RFC 8259 parser over bytes. It exists because the webhook decodes a 2.5 KB review on
/// the critical path of every pod creation, and Foundation's decoders spend tens of microseconds
/// there. It never traps on input: every failure is a `JSONError` with the byte offset, line and
/// column, and nesting is bounded so hostile input cannot exhaust the stack.
public struct JSONError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var line: Int
    public var column: Int

    public var description: String { "\(message) at line \(line), column \(column)" }
}

public enum JSONParser {
    public static let maximumDepth = 256

    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSON {
        try bytes.withUnsafeBufferPointer { buffer throws(JSONError) in try parse(buffer) }
    }

    public static func parse(_ text: String) throws(JSONError) -> JSON {
        try parse(Array(text.utf8))
    }

    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONError) -> JSON {
        var reader = Reader(buffer: buffer)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 0)
        reader.skipWhitespace()
        if reader.index < buffer.count {
            throw reader.error("unexpected data after the JSON value")
        }
        return value
    }
}

/// Which parts of a document `JSONTape` keeps. Members an object selection does not list are skipped;
/// a selection that does not fit the value found (members of a string, say) builds it whole, so
/// the reader of the result can still say what type it found.
public indirect enum JSONSelection: Sendable {
    case all
    case members([SelectedMember])
    case elements(JSONSelection)

    public struct SelectedMember: Sendable {
        public let key: String
        let keyBytes: [UInt8]
        public let selection: JSONSelection

        public init(_ key: String, _ selection: JSONSelection) {
            self.key = key
            self.keyBytes = Array(key.utf8)
            self.selection = selection
        }
    }

    public static func members(_ pairs: KeyValuePairs<String, JSONSelection>) -> JSONSelection {
        .members(pairs.map { SelectedMember($0.key, $0.value) })
    }
}

/// One bit per open container (set: an object), for every level `JSONParser.maximumDepth` allows.
/// The first 64 levels (every real document) in a word of their own, tested without indexing.
struct ContainerBits {
    private var low: UInt64 = 0
    private var high: (UInt64, UInt64, UInt64) = (0, 0, 0)

    subscript(level: Int) -> Bool {
        @inline(__always) get {
            let bit: UInt64 = 1 &<< UInt64(level & 63)
            guard level >= 64 else { return low & bit != 0 }
            return withUnsafeBytes(of: high) { $0.load(fromByteOffset: ((level >> 6) &- 1) &* 8, as: UInt64.self) } & bit != 0
        }
        @inline(__always) set {
            let bit: UInt64 = 1 &<< UInt64(level & 63)
            guard level >= 64 else {
                low = newValue ? low | bit : low & ~bit
                return
            }
            withUnsafeMutableBytes(of: &high) { raw in
                let offset = ((level >> 6) &- 1) &* 8
                let word = raw.load(fromByteOffset: offset, as: UInt64.self)
                raw.storeBytes(of: newValue ? word | bit : word & ~bit, toByteOffset: offset, as: UInt64.self)
            }
        }
    }
}

/// The index of the first byte at or after `start` that ends a run of plain string content:
/// a quote, a backslash, a control character or the first byte of a non-ASCII sequence (or
/// `bytes.count`). Eight bytes per step (SWAR): strings are most of a review, and a byte-at-a-time
/// loop over them was a sixth of the webhook's whole cost per review.
@inline(__always)
func plainStringRunEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
    var i = start
    let count = bytes.count
    if let base = bytes.baseAddress {
        let raw = UnsafeRawPointer(base)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i &+ 8 <= count {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let quote = word ^ 0x2222_2222_2222_2222
            let backslash = word ^ 0x5C5C_5C5C_5C5C_5C5C
            // Per byte: zero after the XOR (quote, backslash), below 0x20, or high bit set. Borrows
            // can flag bytes above a real hit, never below one, so the lowest flag is exact.
            let stops = (((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
                | ((word &- 0x2020_2020_2020_2020) & ~word) | word) & highs
            if stops != 0 { return i &+ stops.trailingZeroBitCount >> 3 }
            i &+= 8
        }
    }
    while i < count {
        let byte = bytes[i]
        if byte == 0x22 || byte == 0x5C || byte < 0x20 || byte >= 0x80 { return i }
        i += 1
    }
    return i
}

struct Reader {
    let buffer: UnsafeBufferPointer<UInt8>
    var index = 0

    init(buffer: UnsafeBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    func error(_ message: String, at offset: Int? = nil) -> JSONError {
        let offset = min(offset ?? index, buffer.count)
        var line = 1
        var lineStart = 0
        for i in 0..<offset where buffer[i] == UInt8(ascii: "\n") {
            line += 1
            lineStart = i + 1
        }
        return JSONError(message: message, offset: offset, line: line, column: offset - lineStart + 1)
    }

    @inline(__always)
    mutating func skipWhitespace() {
        // Locals, not `self.index`: the loop then stays in registers.
        var i = index
        let bytes = buffer
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default:
                index = i
                return
            }
        }
        index = i
    }

    mutating func parseValue(depth: Int) throws(JSONError) -> JSON {
        guard index < buffer.count else { throw error("unexpected end of input, expected a value") }
        switch buffer[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character \(describe(buffer[index])), expected a value")
        }
    }

    func describe(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard buffer.count - index >= count else { throw error("invalid literal, expected \(literal)") }
        let base = literal.utf8Start
        for i in 0..<count where buffer[index + i] != base[i] {
            throw error("invalid literal, expected \(literal)")
        }
        index += count
    }

    mutating func parseObject(depth: Int) throws(JSONError) -> JSON {
        guard depth <= JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth) levels") }
        index += 1  // {
        var members: [JSONObject.Member] = []
        members.reserveCapacity(6)
        skipWhitespace()
        if index < buffer.count, buffer[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject(members))
        }
        while true {
            skipWhitespace()
            guard index < buffer.count, buffer[index] == UInt8(ascii: "\"") else {
                throw error(index < buffer.count ? "expected a quoted member name" : "unexpected end of input in an object")
            }
            let key = try parseString()
            skipWhitespace()
            guard index < buffer.count, buffer[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after member name \"\(key)\"")
            }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append(JSONObject.Member(key: key, value: value))
            skipWhitespace()
            guard index < buffer.count else { throw error("unexpected end of input in an object") }
            switch buffer[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return .object(JSONObject(members))
            default: throw error("expected ',' or '}' in an object, found \(describe(buffer[index]))")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONError) -> JSON {
        guard depth <= JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth) levels") }
        index += 1  // [
        var elements: [JSON] = []
        skipWhitespace()
        if index < buffer.count, buffer[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < buffer.count else { throw error("unexpected end of input in a list") }
            switch buffer[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return .array(elements)
            default: throw error("expected ',' or ']' in a list, found \(describe(buffer[index]))")
            }
        }
    }

    /// Checks a value's syntax and moves past it without building it: most of an AdmissionReview
    /// is skipped this way. One loop over the bytes with the open containers in a bit stack (bit
    /// set: object), rather than one call per value: the recursive skipper cost ~12 instructions
    /// per byte of the review, mostly in calls. The stack holds the 256 levels JSON may nest.
    mutating func skipValue(depth: Int) throws(JSONError) {
        let bytes = buffer
        let count = bytes.count
        var i = index
        var level = 0
        var objects = ContainerBits()
        // Each turn reads one value (after a name and ':' in objects), then closes what it can.
        while true {
            while i < count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
            guard i < count else {
                index = i
                throw error("unexpected end of input, expected a value")
            }
            let byte = bytes[i]
            var opened = false
            switch byte {
            case UInt8(ascii: "\""):
                let end = plainStringRunEnd(bytes, from: i + 1)
                if end < count, bytes[end] == UInt8(ascii: "\"") {
                    i = end + 1  // plain ASCII to the closing quote: the common case, no call
                } else {
                    index = i
                    _ = try skipString()
                    i = index
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth + level + 1 <= JSONParser.maximumDepth else {
                    index = i
                    throw error("nesting deeper than \(JSONParser.maximumDepth) levels")
                }
                let isObject = byte == UInt8(ascii: "{")
                i += 1
                while i < count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
                if i < count, bytes[i] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    i += 1  // empty: a complete value
                    break
                }
                objects[level] = isObject
                level += 1
                opened = true
            case UInt8(ascii: "t"):
                index = i
                try expectLiteral("true")
                i = index
            case UInt8(ascii: "f"):
                index = i
                try expectLiteral("false")
                i = index
            case UInt8(ascii: "n"):
                index = i
                try expectLiteral("null")
                i = index
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                index = i
                try scanNumber()
                i = index
            default:
                index = i
                throw error("unexpected character \(describe(byte)), expected a value")
            }
            if !opened {
                // A value ended: close every container it completes, stop at a ','.
                while true {
                    if level == 0 {
                        index = i
                        return
                    }
                    let isObject = objects[level - 1]
                    while i < count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
                    guard i < count else {
                        index = i
                        throw error(isObject ? "unexpected end of input in an object" : "unexpected end of input in a list")
                    }
                    if bytes[i] == UInt8(ascii: ",") {
                        i += 1
                        break
                    }
                    guard bytes[i] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else {
                        index = i
                        throw error(isObject
                            ? "expected ',' or '}' in an object, found \(describe(bytes[i]))"
                            : "expected ',' or ']' in a list, found \(describe(bytes[i]))")
                    }
                    i += 1
                    level -= 1
                }
            }
            // Inside an object, a member name and ':' come before the next value.
            if objects[level - 1] {
                while i < count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
                guard i < count, bytes[i] == UInt8(ascii: "\"") else {
                    index = i
                    throw error(i < count ? "expected a quoted member name" : "unexpected end of input in an object")
                }
                let end = plainStringRunEnd(bytes, from: i + 1)
                if end < count, bytes[end] == UInt8(ascii: "\"") {
                    i = end + 1
                } else {
                    index = i
                    _ = try skipString()
                    i = index
                }
                while i < count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
                guard i < count, bytes[i] == UInt8(ascii: ":") else {
                    index = i
                    throw error("expected ':' after a member name")
                }
                i += 1
            }
        }
    }

    /// `skipString` with its common case inline: plain ASCII up to the closing quote (nearly
    /// every name and value of a review) costs no call.
    @inline(__always)
    mutating func skipStringInline() throws(JSONError) -> Bool {
        let end = plainStringRunEnd(buffer, from: index + 1)
        if end < buffer.count, buffer[end] == UInt8(ascii: "\"") {
            index = end + 1
            return false
        }
        return try skipString()
    }

    /// Moves past a string, checking escapes, control characters and UTF-8; returns whether it
    /// held an escape.
    mutating func skipString() throws(JSONError) -> Bool {
        let start = index
        index += 1
        var hasEscape = false
        var ascii = true
        let bytes = buffer
        while index < bytes.count {
            index = plainStringRunEnd(bytes, from: index)
            guard index < bytes.count else { break }
            let byte = buffer[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                if !ascii {
                    // Rare: prove the bytes are valid UTF-8 by decoding them.
                    index = start
                    _ = try parseString()
                }
                return hasEscape
            }
            if byte == UInt8(ascii: "\\") {
                hasEscape = true
                guard index + 1 < buffer.count else { break }
                let escape = buffer[index + 1]
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    // Surrogate pairing is checked by the full decoder.
                    ascii = false
                    index += 2
                    _ = try parseHex4()
                default:
                    throw error("invalid escape \\\(Character(Unicode.Scalar(escape)))", at: index)
                }
                continue
            }
            if byte < 0x20 { throw error("unescaped control character in a string") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        throw error("unterminated string", at: start)
    }

    mutating func parseNumber() throws(JSONError) -> String {
        let start = index
        try scanNumber()
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self)
    }

    /// Moves past a number, checking the RFC 8259 grammar.
    mutating func scanNumber() throws(JSONError) {
        let start = index
        if buffer[index] == UInt8(ascii: "-") { index += 1 }
        guard index < buffer.count, isDigit(buffer[index]) else { throw error("invalid number", at: start) }
        if buffer[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        }
        if index < buffer.count, buffer[index] == UInt8(ascii: ".") {
            index += 1
            guard index < buffer.count, isDigit(buffer[index]) else { throw error("invalid number: digits must follow '.'", at: start) }
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        }
        if index < buffer.count, buffer[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < buffer.count, buffer[index] == UInt8(ascii: "+") || buffer[index] == UInt8(ascii: "-") { index += 1 }
            guard index < buffer.count, isDigit(buffer[index]) else { throw error("invalid number: digits must follow the exponent", at: start) }
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        }
    }

    @inline(__always)
    func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    mutating func parseString() throws(JSONError) -> String {
        let start = index
        index += 1  // opening quote
        let contentStart = index
        // Fast path: no escapes, the bytes are the string.
        while index < buffer.count {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: buffer[contentStart..<index])
                index += 1
                return try makeString(slice, start: start)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("unescaped control character in a string") }
            index += 1
        }
        guard index < buffer.count else { throw error("unterminated string", at: start) }
        var bytes = Array(UnsafeBufferPointer(rebasing: buffer[contentStart..<index]))
        while index < buffer.count {
            let byte = buffer[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return try bytes.withUnsafeBufferPointer { buffer throws(JSONError) in try makeString(buffer, start: start) }
            case UInt8(ascii: "\\"):
                index += 1
                guard index < buffer.count else { break }
                let escape = buffer[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5C)
                case UInt8(ascii: "/"): bytes.append(0x2F)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard buffer.count - index >= 6, buffer[index] == UInt8(ascii: "\\"), buffer[index + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate in \\u escape")
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("invalid low surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                    bytes.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw error("invalid escape \\\(Character(Unicode.Scalar(escape)))", at: index - 2)
                }
            default:
                if byte < 0x20 { throw error("unescaped control character in a string") }
                bytes.append(byte)
                index += 1
            }
        }
        throw error("unterminated string", at: start)
    }

    /// `String(decoding:)` takes the fast contiguous path but repairs bad UTF-8 silently; when the
    /// text is not pure ASCII, comparing the result with the input proves nothing was repaired.
    @inline(__always)
    func makeString(_ bytes: UnsafeBufferPointer<UInt8>, start: Int) throws(JSONError) -> String {
        let string = String(decoding: bytes, as: UTF8.self)
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii || string.utf8.elementsEqual(bytes) { return string }
        throw error("invalid UTF-8 in a string", at: start)
    }

    mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard buffer.count - index >= 4 else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = buffer[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
