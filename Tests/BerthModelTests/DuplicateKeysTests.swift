@testable import BerthModel
import Testing

/// The duplicate-member-name check on the tape against a plain reference scan of the text, on
/// random documents whose names are drawn from a small alphabet (repeats are common, escapes and
/// objects past the linear limit included).
@Suite struct DuplicateKeysTests {
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static func document(_ random: inout Generator, depth: Int = 0) -> String {
        switch depth > 3 ? random.next(3) : random.next(6) {
        case 0: return "\(random.next(100))"
        case 1: return #""v\#(random.next(5))""#
        case 2: return random.next(2) == 0 ? "true" : "null"
        case 3:
            return "[" + (0..<random.next(4)).map { _ in document(&random, depth: depth + 1) }.joined(separator: ",") + "]"
        default:
            let names = ["a", "b", "c", "ab", "ba", #"\u0061"#, "long-name", "d"]
            let count = random.next(5) == 0 ? 20 + random.next(10) : random.next(5)
            return "{" + (0..<count).map { index in
                let name = count > 8 ? "k\(index % (count - random.next(2)))" : names[random.next(names.count)]
                return #""\#(name)":"# + document(&random, depth: depth + 1)
            }.joined(separator: ",") + "}"
        }
    }

    /// The reference: one pass over the text, a stack of the names seen per open object, names
    /// decoded through the parser; the offsets of every repeated name's opening quote.
    static func reference(_ text: String) throws -> Set<Int> {
        var repeats = Set<Int>()
        let bytes = Array(text.utf8)
        var stack: [[String]?] = []
        var expectName = false
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "{"): stack.append([]); expectName = true
            case UInt8(ascii: "["): stack.append(nil); expectName = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"): stack.removeLast(); expectName = false
            case UInt8(ascii: ","): expectName = stack.last.map { $0 != nil } ?? false
            case UInt8(ascii: "\""):
                var end = i + 1
                while bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
                if expectName, let names = stack.last, let seen = names {
                    let name = try JSONParser.parse(Array(bytes[i...end])).stringValue ?? ""
                    if seen.contains(name) { repeats.insert(i) }
                    stack[stack.count - 1] = seen + [name]
                    expectName = false
                }
                i = end
            default: break
            }
            i += 1
        }
        return repeats
    }

    @Test(arguments: [1, 2, 3, 4])
    func theTapeCheckAgreesWithAScanOfTheText(seed: UInt64) throws {
        var random = Generator(state: seed)
        var duplicates = 0
        for _ in 0..<500 {
            let text = "{" + #""x":"# + Self.document(&random) + "}"
            let tape = try JSONTape(parsing: Array(text.utf8))
            let repeats = try Self.reference(text)
            // Objects are checked one after another, so the one found need not be first in the text.
            let found = tape.root.firstRecordedDuplicate()
            #expect(found.map { repeats.contains($0) } ?? repeats.isEmpty, "\(text): \(String(describing: found)) of \(repeats.sorted())")
            if !repeats.isEmpty { duplicates += 1 }
        }
        #expect(duplicates > 50 && duplicates < 450)  // both kinds of document were tried
    }

    /// What the tape does not record (names the webhook never reads) is not compared; every
    /// occurrence of a selected name is recorded, so its repeat is always found.
    @Test func onlyRecordedMembersAreCompared() throws {
        let selection = JSONSelection.members(["metadata": .members(["annotations": .all]), "spec": .members(["nodeName": .all])])
        let unread = Array(#"{"metadata":{"annotations":{}},"spec":{"env":1,"env":2}}"#.utf8)
        #expect(try JSONTape(parsing: unread, selecting: selection).root.firstDuplicateMemberName() == nil)
        let read = Array(#"{"spec":{"env":1,"nodeName":"a","nodeName":"b"},"metadata":{}}"#.utf8)
        #expect(try JSONTape(parsing: read, selecting: selection).root.firstDuplicateMemberName() == "spec.nodeName")
        let whole = Array(#"{"metadata":{"annotations":{"berth.dev/skip":"true","berth.dev/skip":"false"}}}"#.utf8)
        #expect(try JSONTape(parsing: whole, selecting: selection).root.firstDuplicateMemberName() == #"metadata.annotations["berth.dev/skip"]"#)
    }
}
