@testable import BerthModel
import Testing

/// The duplicate-member-name scan: the fast path (on the stack, names compared as bytes) must find
/// exactly what the general path (decoded names, sets for big objects) finds, on random documents
/// whose names are drawn from a small alphabet so that repeats are common.
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

    @Test(arguments: [1, 2, 3, 4])
    func theFastPathAgreesWithTheGeneralOne(seed: UInt64) throws {
        var random = Generator(state: seed)
        var duplicates = 0
        for _ in 0..<500 {
            let text = "{" + #""x":"# + Self.document(&random) + "}"
            let bytes = Array(text.utf8)
            _ = try JSONParser.parse(bytes)  // valid JSON, as the scan requires
            let general = bytes.withUnsafeBufferPointer { DuplicateKeys.firstInGeneral(in: $0, from: 0, to: $0.count) }
            let answer = bytes.withUnsafeBufferPointer { DuplicateKeys.first(in: $0, from: 0, to: $0.count) }
            #expect(answer == general, "\(text)")
            if general != nil { duplicates += 1 }
        }
        #expect(duplicates > 50 && duplicates < 450)  // both kinds of document were tried
    }
}
