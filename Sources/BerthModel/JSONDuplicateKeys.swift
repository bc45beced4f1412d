/// Duplicate member names. JSON allows them; Kubernetes does not agree with itself about them
/// (Go's decoder and the apiserver keep the *last* value, a reader that keeps the first sees
/// another pod). An admission webhook that reads a different pod than the apiserver stores is a
/// way around its policy, so the webhook refuses a pod with a duplicate name anywhere in it.
///
/// One pass over an already validated value's bytes: names are compared as bytes (decoded only
/// when an escape is involved), linearly while an object has few members, through a set past that,
/// so a hostile object of a hundred thousand members costs a hash each, not a comparison per pair.
enum DuplicateKeys {
    private struct Name {
        var start: Int32
        var end: Int32
        var escaped: Bool
    }

    private struct Frame {
        var isObject: Bool
        var firstName: Int32
        /// Past `linearLimit` members: every name so far, decoded.
        var seen: Set<[UInt8]>?
    }

    static let linearLimit = 16

    /// The offset of the opening quote of the first member name that repeats an earlier one of
    /// the same object, within `bytes[from..<to]` (a complete, valid JSON value).
    static func first(in bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        if let answer = firstOnTheStack(in: bytes, from: from, to: to) { return answer }
        return firstInGeneral(in: bytes, from: from, to: to)
    }

    /// The common case without an allocation: names and open containers on the stack, names
    /// compared by length then bytes. Gives up (nil) on what it leaves to `first`'s general path:
    /// an object past `linearLimit` members, an escaped name, more names open at once than room.
    private static func firstOnTheStack(in bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int?? {
        guard let base = bytes.baseAddress else { return .some(nil) }
        return withUnsafeTemporaryAllocation(of: (start: Int32, count: Int32).self, capacity: 512) { names -> Int?? in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: JSONParser.maximumDepth + 2) { frames -> Int?? in
                var named = 0  // names in use
                var depth = 0
                var expectName = false
                var i = from
                while i < to {
                    let byte = base[i]
                    if byte == UInt8(ascii: "\"") {
                        let start = i + 1
                        var end = start
                        var escaped = false
                        while true {
                            end = plainStringRunEnd(bytes, from: end)
                            guard end < to else { break }
                            let stop = base[end]
                            if stop == UInt8(ascii: "\"") { break }
                            if stop == UInt8(ascii: "\\") {
                                escaped = true
                                end += 2
                            } else {
                                end += 1
                            }
                        }
                        if expectName {
                            let first = Int(frames[depth - 1])
                            if escaped || named - first >= linearLimit || named >= names.count { return nil }
                            let count = end - start
                            var k = first
                            while k < named {
                                let other = names[k]
                                if Int(other.count) == count {
                                    var same = true
                                    var j = 0
                                    while j < count {
                                        if base[start + j] != base[Int(other.start) + j] {
                                            same = false
                                            break
                                        }
                                        j += 1
                                    }
                                    if same { return .some(i) }
                                }
                                k += 1
                            }
                            names[named] = (Int32(truncatingIfNeeded: start), Int32(truncatingIfNeeded: count))
                            named += 1
                            expectName = false
                        }
                        i = end + 1
                    } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                        guard depth < frames.count else { return nil }
                        frames[depth] = byte == UInt8(ascii: "{") ? Int32(truncatingIfNeeded: named) : -1
                        depth += 1
                        expectName = byte == UInt8(ascii: "{")
                        i += 1
                    } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                        guard depth > 0 else { return nil }
                        depth -= 1
                        if frames[depth] >= 0 { named = Int(frames[depth]) }
                        expectName = false
                        i += 1
                    } else if byte == UInt8(ascii: ",") {
                        expectName = depth > 0 && frames[depth - 1] >= 0
                        i += 1
                    } else {
                        i += 1
                    }
                }
                return .some(nil)
            }
        }
    }

    /// Any document: escaped names decoded, a set per object past `linearLimit` members.
    static func firstInGeneral(in bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        var names: [Name] = []
        var frames: [Frame] = []
        names.reserveCapacity(32)
        frames.reserveCapacity(16)
        var expectName = false
        var i = from
        while i < to {
            switch bytes[i] {
            case UInt8(ascii: "{"):
                frames.append(Frame(isObject: true, firstName: Int32(truncatingIfNeeded: names.count), seen: nil))
                expectName = true
                i += 1
            case UInt8(ascii: "["):
                frames.append(Frame(isObject: false, firstName: 0, seen: nil))
                expectName = false
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if let frame = frames.popLast(), frame.isObject {
                    names.removeSubrange(Int(frame.firstName)...)
                }
                expectName = false
                i += 1
            case UInt8(ascii: ","):
                expectName = frames.last?.isObject ?? false
                i += 1
            case UInt8(ascii: "\""):
                let start = i + 1
                var end = start
                var escaped = false
                while true {
                    end = plainStringRunEnd(bytes, from: end)
                    guard end < to else { break }
                    if bytes[end] == UInt8(ascii: "\"") { break }
                    if bytes[end] == UInt8(ascii: "\\") {
                        escaped = true
                        end += 2
                    } else {
                        end += 1
                    }
                }
                if expectName, !frames.isEmpty, frames[frames.count - 1].isObject {
                    let name = Name(start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: end), escaped: escaped)
                    if isRepeat(name, in: &frames[frames.count - 1], names: names, bytes: bytes) { return i }
                    names.append(name)
                    expectName = false
                }
                i = end + 1
            default:
                i += 1
            }
        }
        return nil
    }

    private static func isRepeat(_ name: Name, in frame: inout Frame, names: [Name], bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let first = Int(frame.firstName)
        if frame.seen == nil, names.count - first < linearLimit {
            for other in names[first...] where equal(other, name, bytes) { return true }
            return false
        }
        if frame.seen == nil {
            frame.seen = Set(names[first...].map { decoded($0, bytes) })
        }
        return !frame.seen!.insert(decoded(name, bytes)).inserted
    }

    private static func equal(_ a: Name, _ b: Name, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if !a.escaped && !b.escaped {
            let count = Int(a.end - a.start)
            guard count == Int(b.end - b.start) else { return false }
            var k = 0
            while k < count {
                if bytes[Int(a.start) + k] != bytes[Int(b.start) + k] { return false }
                k += 1
            }
            return true
        }
        return decoded(a, bytes) == decoded(b, bytes)
    }

    private static func decoded(_ name: Name, _ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        guard name.escaped else { return Array(bytes[Int(name.start)..<Int(name.end)]) }
        var reader = Reader(buffer: bytes)
        reader.index = Int(name.start) - 1
        return Array(((try? reader.parseString()) ?? "").utf8)
    }

    /// Where the name at `offset` sits, for the error: `metadata.annotations["berth.dev/skip"]`,
    /// `spec.containers[0].env[2].name`. A second, slower pass (only on the error path).
    static func path(in bytes: UnsafeBufferPointer<UInt8>, from: Int, to offset: Int) -> String {
        enum Step { case member(String?), element(Int) }
        var steps: [Step] = []
        var expectName = false
        var i = from
        while i < offset {
            switch bytes[i] {
            case UInt8(ascii: "{"):
                steps.append(.member(nil))
                expectName = true
                i += 1
            case UInt8(ascii: "["):
                steps.append(.element(0))
                expectName = false
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                steps.removeLast()
                expectName = false
                i += 1
            case UInt8(ascii: ","):
                if case .element(let index)? = steps.last { steps[steps.count - 1] = .element(index + 1) }
                expectName = { if case .member? = steps.last { return true } else { return false } }()
                i += 1
            case UInt8(ascii: "\""):
                var reader = Reader(buffer: bytes)
                reader.index = i
                let text = (try? reader.parseString()) ?? ""
                if expectName, case .member? = steps.last {
                    steps[steps.count - 1] = .member(text)
                    expectName = false
                }
                i = reader.index
            default:
                i += 1
            }
        }
        var reader = Reader(buffer: bytes)
        reader.index = offset
        let duplicate = (try? reader.parseString()) ?? ""
        if case .member? = steps.last { steps[steps.count - 1] = .member(duplicate) }
        var path = ""
        for step in steps {
            switch step {
            case .member(let name?):
                let plain = !name.isEmpty && name.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2D
                }
                if plain {
                    path += path.isEmpty ? name : "." + name
                } else {
                    path += "[" + JSONWriter.string(.string(name)) + "]"
                }
            case .member(nil):
                break
            case .element(let index):
                path += "[\(index)]"
            }
        }
        return path
    }
}

extension JSONCursor {
    /// The path of the first member name repeated within one object anywhere in this value
    /// (e.g. `metadata.annotations`), or nil. See `DuplicateKeys`.
    public func firstDuplicateMemberName() -> String? {
        let node = self.node
        guard node.kind == .object || node.kind == .array else { return nil }
        return tape.bytes.withUnsafeBufferPointer { bytes in
            guard let offset = DuplicateKeys.first(in: bytes, from: Int(node.start), to: Int(node.end)) else { return nil }
            return DuplicateKeys.path(in: bytes, from: Int(node.start), to: offset)
        }
    }
}
