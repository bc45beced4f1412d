import BerthModel
import BerthTestSupport
import Foundation
import Testing

@Suite struct JSONParserTests {
    @Test(arguments: [
        ("{}", "{}"),
        ("[]", "[]"),
        (#"{"a":1,"b":[true,false,null],"c":"x"}"#, #"{"a":1,"b":[true,false,null],"c":"x"}"#),
        ("  [1.50, -0, 2e10, 1E-3]  ", "[1.50,-0,2e10,1E-3]"),
        (#""esc \" \\ \/ \b\f\n\r\t""#, #""esc \" \\ / \b\f\n\r\t""#),
        (#""\u00e9\ud83d\ude00""#, "\"é😀\""),
        (#"{"z":1,"a":2}"#, #"{"z":1,"a":2}"#),
    ])
    func parsesAndWritesBack(input: String, expected: String) throws {
        #expect(JSONWriter.string(try JSONParser.parse(input)) == expected)
    }

    @Test(arguments: [
        ("", "unexpected end of input"),
        ("{", "unexpected end of input in an object"),
        (#"{"a" 1}"#, "expected ':'"),
        ("[1,]", "unexpected character ']'"),
        ("01", "unexpected data after the JSON value"),
        ("1.", "digits must follow '.'"),
        ("tru", "expected true"),
        (#""\x""#, "invalid escape"),
        (#""\ud800""#, "unpaired surrogate"),
        ("\"a\nb\"", "unescaped control character"),
        ("{} {}", "unexpected data after"),
        (#"{"a":1}x"#, "unexpected data after"),
    ])
    func rejectsMalformedInputWithAReason(input: String, reason: String) {
        #expect {
            _ = try JSONParser.parse(input)
        } throws: { error in
            (error as? JSONError)?.message.contains(reason) == true
        }
    }

    @Test func reportsLineAndColumn() {
        let error = #expect(throws: JSONError.self) { _ = try JSONParser.parse("{\n  \"a\": tru\n}") }
        #expect(error?.line == 2)
        #expect(error?.column == 8)
    }

    @Test func boundsNestingInsteadOfOverflowingTheStack() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONError.self) { _ = try JSONParser.parse(deep) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONError.self) { _ = try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func keepsEveryUpstreamFixtureExactly() throws {
        // Foundation's reader is the reference: same values, and our number literals unchanged.
        for name in try Fixtures.kubernetesAPIFiles() where name.hasSuffix(".json") {
            let data = try Data(contentsOf: Fixtures.kubernetesAPI.appendingPathComponent(name))
            let ours = try JSONParser.parse(Array(data))
            let reparsed = try JSONParser.parse(JSONWriter.bytes(ours))
            #expect(ours == reparsed, "\(name)")
            let foundation = try JSONSerialization.jsonObject(with: data) as? NSDictionary
            let fromOurs = try JSONSerialization.jsonObject(with: Data(JSONWriter.bytes(ours))) as? NSDictionary
            #expect(foundation == fromOurs, "\(name)")
        }
    }
}

@Suite struct JSONPatchTests {
    @Test(arguments: [
        (["metadata", "annotations", "karpenter.sh/do-not-disrupt"], "/metadata/annotations/karpenter.sh~1do-not-disrupt"),
        (["a~b", "c/d~1"], "/a~0b/c~1d~01"),
        (["quote\"back\\slash"], "/quote\"back\\slash"),
        ([], ""),
    ])
    func escapesPointerTokens(tokens: [String], text: String) throws {
        #expect(JSONPointer(tokens).description == text)
        #expect(try JSONPointer(parsing: text) == JSONPointer(tokens))
    }

    @Test func serializedPatchEscapesPathsForJSON() throws {
        let patch = JSONPatch([.add(JSONPointer(["metadata", "annotations", "a/\"b\"~\n"]), "v")])
        let text = String(decoding: patch.serialized(), as: UTF8.self)
        #expect(text == #"[{"op":"add","path":"/metadata/annotations/a~1\"b\"~0\n","value":"v"}]"#)
        // It reads back as the same patch (the JSON escaping undone, the pointer escaping kept).
        #expect(try JSONPatch(json: JSONParser.parse(text)) == patch)
        #expect(patch.serialized() == JSONWriter.bytes(patch.json))
    }

    @Test func appliesAddAppendReplaceRemoveAndTest() throws {
        let document = try JSONParser.parse(#"{"a":{"list":[1,2]},"b":"x"}"#)
        let patch = try JSONPatch(json: JSONParser.parse("""
            [{"op":"add","path":"/a/list/-","value":3},
             {"op":"add","path":"/a/list/0","value":0},
             {"op":"add","path":"/c","value":{"d":true}},
             {"op":"replace","path":"/b","value":"y"},
             {"op":"remove","path":"/a/list/1"},
             {"op":"test","path":"/c/d","value":true}]
            """))
        let result = try patch.apply(to: document)
        #expect(JSONWriter.string(result) == #"{"a":{"list":[0,2,3]},"b":"y","c":{"d":true}}"#)
    }

    @Test(arguments: [
        #"[{"op":"add","path":"/missing/x","value":1}]"#,
        #"[{"op":"add","path":"/a/list/9","value":1}]"#,
        #"[{"op":"replace","path":"/nope","value":1}]"#,
        #"[{"op":"test","path":"/b","value":"other"}]"#,
        #"[{"op":"add","path":"/b/x","value":1}]"#,
    ])
    func failsWhereTheApiserverWould(patchText: String) throws {
        let document = try JSONParser.parse(#"{"a":{"list":[1,2]},"b":"x"}"#)
        let patch = try JSONPatch(json: JSONParser.parse(patchText))
        #expect(throws: JSONPatchError.self) { _ = try patch.apply(to: document) }
    }
}

enum Fixtures {
    static let kubernetesAPI = Repository.kubernetesAPIFixtures

    static func kubernetesAPIFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: kubernetesAPI.path).sorted()
    }
}

@Suite struct JSONSelectionTests {
    let selection = JSONSelection.members([
        "keep": .all,
        "nested": .members(["inner": .all]),
        "list": .elements(.members(["a": .all])),
    ])

    @Test func buildsOnlyWhatIsSelected() throws {
        let text = #"{"skip":{"deep":[1,{"x":"\u00e9"}]},"keep":[1,2],"nested":{"inner":true,"other":"x"},"list":[{"a":1,"b":2},"s"],"k\/e":1}"#
        let value = try JSONTape(parsing: Array(text.utf8), selecting: selection).root.json
        #expect(JSONWriter.string(value) == #"{"keep":[1,2],"nested":{"inner":true},"list":[{"a":1},"s"]}"#)
    }

    @Test func escapedKeysStillMatch() throws {
        let value = try JSONTape(parsing: Array(#"{"ke\u0065p":1}"#.utf8), selecting: selection).root
        #expect(value["keep"]?.json == 1)
    }

    @Test(arguments: [
        #"{"skip":{"deep":[1,}}"#,
        #"{"skip":"bad \q escape"}"#,
        #"{"skip":tru}"#,
        #"{"skip":[1 2]}"#,
        #"{"skip":{"a" 1}}"#,
        "{\"skip\":\"\u{01}\"}",
        #"{"skip":"unterminated}"#,
        #"{"keep":1,}"#,
    ])
    func skippedPartsAreStillChecked(text: String) {
        #expect(throws: JSONError.self) { _ = try JSONTape(parsing: Array(text.utf8), selecting: selection) }
    }

    @Test func skippedInvalidUTF8IsRejected() {
        var bytes = Array(#"{"skip":"ab"}"#.utf8)
        bytes.insert(0xFF, at: 10)
        #expect(throws: JSONError.self) { _ = try JSONTape(parsing: bytes, selecting: selection) }
    }

    @Test func skippingIsBoundedInDepthToo() {
        let deep = #"{"skip":"# + String(repeating: "[", count: 10_000) + "}"
        #expect(throws: JSONError.self) { _ = try JSONTape(parsing: Array(deep.utf8), selecting: selection) }
    }
}

@Suite struct JSONTapeTests {
    @Test func readsEveryUpstreamFixtureLikeTheTreeParser() throws {
        for name in try Fixtures.kubernetesAPIFiles() where name.hasSuffix(".json") {
            let bytes = Array(try Data(contentsOf: Fixtures.kubernetesAPI.appendingPathComponent(name)))
            let tree = try JSONParser.parse(bytes)
            let tape = try JSONTape(parsing: bytes)
            #expect(tape.root.json == tree, "\(name)")
            #expect(JSONWriter.bytes(tape.root.json) == JSONWriter.bytes(tree), "\(name): order and literals")
        }
    }

    @Test func selectionAndCursorReads() throws {
        let text = #"{"skip":[1,{"x":2}],"a\/b":"esc","n":-1.5e3,"t":true,"z":null,"list":[{"k":"v","other":1},"s"],"o":{"k":"v"}}"#
        let selection = JSONSelection.members(["a/b": .all, "n": .all, "t": .all, "z": .all, "list": .elements(.members(["k": .all])), "o": .all])
        let root = try JSONTape(parsing: Array(text.utf8), selecting: selection).root
        #expect(root["skip"] == nil)
        #expect(root["a/b"]?.stringValue == "esc")
        #expect(root["n"]?.json == .number("-1.5e3"))
        #expect(root["t"]?.boolValue == true)
        #expect(root["z"]?.isNull == true)
        #expect(root["list"]?.arrayElements?.count == 2)
        #expect(root["list"]?.arrayElements?.first?["other"] == nil)
        #expect(root["list"]?[0]?["k"]?.stringValue == "v")
        #expect(root["o"]?.objectMembers?.map(\.key) == ["k"])
        #expect(root["o"]?["k"]?.stringValue == "v")
        #expect(root.typeName == "an object")
    }

    @Test(arguments: [
        "", "{", "[1,]", #"{"a" 1}"#, "01", "tru", #""\x""#, "\"a\nb\"", "{} {}", #"{"skip":{"deep":[1,}}"#, #"{"a":"\ud800"}"#,
    ])
    func rejectsWhatTheTreeParserRejects(text: String) {
        #expect(throws: JSONError.self) { _ = try JSONTape(parsing: Array(text.utf8)) }
        #expect(throws: JSONError.self) { _ = try JSONTape(parsing: Array(text.utf8), selecting: .members(["a": .all])) }
    }

    @Test func boundsNesting() {
        #expect(throws: JSONError.self) { _ = try JSONTape(parsing: Array(String(repeating: "[", count: 100_000).utf8)) }
    }

    /// Skipped values are walked with a 256-level bit stack in four words: around each word's
    /// edge and the parser's limit of 256, skipping accepts and rejects exactly what parsing does.
    @Test(arguments: [1, 2, 63, 64, 65, 66, 127, 128, 129, 191, 192, 193, 253, 254, 255, 256, 257])
    func skipsNestingLikeTheParser(depth: Int) {
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let objects = String(repeating: #"{"k":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        let mixed = String(repeating: #"[{"k":"#, count: depth / 2) + "[]" + String(repeating: "}]", count: depth / 2)
        for value in [arrays, objects, mixed] {
            let parsed = try? JSONParser.parse(#"{"a":1,"skip":"# + value + "}")
            let tape = try? JSONTape(parsing: Array((#"{"a":1,"skip":"# + value + "}").utf8), selecting: .members(["a": .all]))
            #expect((tape != nil) == (parsed != nil), "depth \(depth): \(value.prefix(12))")
            #expect(tape?.root["a"]?.json == (parsed == nil ? nil : .number("1")))
        }
        // Truncated and malformed skipped values are refused at any depth.
        for broken in [String(arrays.dropLast()), String(objects.dropLast()), arrays.replacingOccurrences(of: "[]", with: "[,]")] {
            #expect(throws: JSONError.self) { _ = try JSONTape(parsing: Array((#"{"skip":"# + broken + "}").utf8), selecting: .members(["a": .all])) }
        }
    }

    /// Strings are scanned eight bytes at a time: each special byte at every offset around the
    /// word boundaries must be found, kept or skipped, exactly as the byte-wise tree parser does.
    @Test(arguments: [
        [UInt8(ascii: "\\"), UInt8(ascii: "n")], [UInt8(ascii: "\\"), UInt8(ascii: "\"")], [0x0A], [0x1F], [0x00], [0x7F],
        [0xC3, 0xA9], [0xC3], [0xFF], [0xE2, 0x82, 0xAC], [UInt8(ascii: " ")], [UInt8(ascii: "!")], [UInt8(ascii: "]")],
    ])
    func scansSpecialBytesAtEveryOffset(special: [UInt8]) {
        for length in 0...19 {
            for offset in 0...length {
                var content = Array(repeating: UInt8(ascii: "a"), count: length)
                content.insert(contentsOf: special, at: offset)
                let kept = Array(#"{"a":""#.utf8) + content + Array(#""}"#.utf8)
                let skipped = Array(#"{"skip":""#.utf8) + content + Array(#"","a":1}"#.utf8)
                let expected = try? JSONParser.parse(kept)
                let tape = try? JSONTape(parsing: kept, selecting: .members(["a": .all]))
                #expect(tape?.root.json == expected, "kept \(special) at \(offset) of \(length)")
                let skippedTape = try? JSONTape(parsing: skipped, selecting: .members(["a": .all]))
                #expect((skippedTape != nil) == (expected != nil), "skipped \(special) at \(offset) of \(length)")
                #expect(skippedTape?.root["a"]?.json == (expected == nil ? nil : .number("1")))
            }
        }
    }
}

extension JSONCursor {
    subscript(index: Int) -> JSONCursor? { arrayElements.flatMap { $0.indices.contains(index) ? $0[index] : nil } }
}

@Suite struct RFC3339Tests {
    @Test(arguments: [
        ("2026-11-30T10:50:45Z", 1_796_035_845.0),
        ("2026-11-30T10:50:45.250Z", 1_796_035_845.25),
        ("2026-11-30T10:50:45.250000Z", 1_796_035_845.25),      // Kubernetes MicroTime
        ("2026-11-30T10:50:45.250999999Z", 1_796_035_845.25),   // moto: cut to milliseconds
        ("2026-11-30T11:50:45+01:00", 1_796_035_845.0),
    ])
    func parsesSecondsAndFractions(text: String, seconds: Double) {
        #expect(RFC3339.parse(text)?.timeIntervalSince1970 == seconds)
    }

    @Test func refusesWhatIsNotATimestamp() {
        #expect(RFC3339.parse("yesterday") == nil)
        #expect(RFC3339.parse("2026-11-30") == nil)
    }

    @Test func writesTimeAndMicroTime() {
        let date = Date(timeIntervalSince1970: 1_796_035_845.25)
        #expect(RFC3339.string(date) == "2026-11-30T10:50:45Z")
        #expect(RFC3339.string(date, micro: true) == "2026-11-30T10:50:45.250000Z")
    }
}
