/// Duplicate member names. JSON allows them; Kubernetes does not agree with itself about them
/// (Go's decoder and the apiserver keep the *last* value; a reader that keeps the first sees
/// another pod). An admission webhook that reads another pod than the apiserver stores is a way
/// around its policy, so the webhook refuses a pod with a repeated name wherever it reads it.
///
/// Checked on the tape, not the text: every member the webhook reads is on the tape (a selected
/// name's every occurrence is, and a whole subtree such as annotations or tolerations is), so a
/// repeat that could change what Berth decides is always seen, for the price of comparing a few
/// recorded names per object. Names in parts Berth never reads (a container's env, say) are not
/// compared: they cannot change its decision or its patch, and a scan of every byte of the pod
/// for them cost ~28k instructions per review, a third of the whole handler.
enum DuplicateKeys {
    static let linearLimit = 16

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
    /// The path of the first member name repeated within one object anywhere in this value, among
    /// the members the tape recorded (see `DuplicateKeys`), or nil.
    public func firstDuplicateMemberName() -> String? {
        guard let offset = firstRecordedDuplicate() else { return nil }
        return tape.bytes.withUnsafeBufferPointer { bytes in
            DuplicateKeys.path(in: bytes, from: Int(node.start), to: offset)
        }
    }

    /// The offset of the opening quote of the first recorded member name that repeats an earlier
    /// one of its object: names compared by length and bytes (decoded when escaped), linearly up to
    /// `linearLimit` members, through a set past that.
    func firstRecordedDuplicate() -> Int? {
        tape.nodes.withUnsafeBufferPointer { nodes in
            tape.bytes.withUnsafeBufferPointer { bytes -> Int? in
                let end = Int(nodes[index].next)
                var i = index
                while i < end {
                    let object = nodes[i]
                    i += 1
                    guard object.kind == .object else { continue }
                    let stop = Int(object.next)
                    var key = i
                    var count = 0
                    var seen: Set<[UInt8]>?
                    while key < stop {
                        let name = nodes[key]
                        if seen == nil && count >= DuplicateKeys.linearLimit {
                            var names = Set<[UInt8]>()
                            var earlier = i
                            while earlier < key {
                                names.insert(Self.nameBytes(tape, nodes[earlier], bytes))
                                earlier = Int(nodes[earlier + 1].next)
                            }
                            seen = names
                        }
                        if seen != nil {
                            if !seen!.insert(Self.nameBytes(tape, name, bytes)).inserted { return Int(name.start) - 1 }
                        } else {
                            var earlier = i
                            while earlier < key {
                                if Self.sameName(tape, nodes[earlier], name, bytes) { return Int(name.start) - 1 }
                                earlier = Int(nodes[earlier + 1].next)
                            }
                        }
                        count += 1
                        key = Int(nodes[key + 1].next)
                    }
                }
                return nil
            }
        }
    }

    private static func sameName(_ tape: JSONTape, _ a: JSONTape.Node, _ b: JSONTape.Node, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if a.flag || b.flag { return nameBytes(tape, a, bytes) == nameBytes(tape, b, bytes) }
        let count = Int(a.end - a.start)
        guard count == Int(b.end - b.start) else { return false }
        var k = 0
        while k < count {
            if bytes[Int(a.start) + k] != bytes[Int(b.start) + k] { return false }
            k += 1
        }
        return true
    }

    private static func nameBytes(_ tape: JSONTape, _ node: JSONTape.Node, _ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        node.flag ? Array(decode(tape, node).utf8) : Array(bytes[Int(node.start)..<Int(node.end)])
    }
}
