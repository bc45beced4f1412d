// libFuzzer target for Berth's JSON readers (`make fuzz`, Tests/Fuzz/fuzz.mk). Built with
// `-D BERTH_FUZZ` and the fuzzer it is a libFuzzer binary; built plainly (`swift build`) it replays
// the files or directories it is given through the same checks, so it always compiles.
//
// On every input (any bytes):
//  - JSONParser, JSONTape (whole) and JSONTape with selections (the webhook's AdmissionReview
//    selection and a small one) never trap, accept exactly the same inputs, and give the same
//    values: member order, number literals and string scalars exactly;
//  - an error names a place inside the input (offset, line and column);
//  - what JSONWriter writes reads back to the same value;
//  - the policy decides the same from the tree (`berth mutate`) and from the selective tape (the
//    webhook), so the selection keeps everything the policy reads;
//  - AdmissionReviewHandler answers 200 or 400 with a JSON body, 400 when the JSON is malformed.
// On valid UTF-8, Berth and Foundation's JSONSerialization (with .fragmentsAllowed: RFC 8259 allows
// scalars at the top) accept and reject the same inputs, and agree on the values where both
// accept. Foundation differs by design in exactly these ways, each excluded precisely (see
// `foundationView`):
//  1. encoding detection: a UTF-8 byte-order mark is skipped (Berth, like Go, refuses it), and a
//     NUL among the first bytes makes the input UTF-16/32 — compared on the bytes after the mark,
//     not compared for the NUL patterns (Berth must reject those: a raw NUL is never JSON);
//  2. trailing commas (`[1,]`, `{"a":1,}`) are accepted: compared with Berth on the input
//     without them, and Berth must reject the input with them;
//  3. nesting: Foundation allows 512 levels, Berth 256 (JSONParser.maximumDepth): past 256 Berth
//     must reject, with the nesting error when Foundation accepted;
//  4. numbers Foundation cannot represent (beyond Double and Decimal, e.g. 1e400) are refused
//     after the syntax was accepted; Berth keeps every number as written: counted as accepted,
//     values not compared;
//  5. duplicate keys: Foundation keeps the last value (keys compared as Swift Strings, so
//     canonically equivalent names collide), Berth keeps every member in order: the values are
//     compared that way, accept and reject are the same;
//  6. a raw U+FEFF at the start of a string, or right after an escape, is dropped by Foundation
//     (its UTF-8 decoding strips a byte-order mark): Foundation is given it as the escape \uFEFF,
//     which is the same JSON text.
// Anything else is a crash with the reason.

import BerthAdmission
import BerthModel
import Foundation

#if BERTH_FUZZ
// The globals are built once here, before libFuzzer starts counting allocations per input.
@_cdecl("LLVMFuzzerInitialize")
public func initializeFuzzing(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    _ = selections
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONReaders(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    checkJSONReaders(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#else
@main
enum ReplayJSONCorpus {
    static func main() { replay(CommandLine.arguments.dropFirst(), check: checkJSONReaders) }
}
#endif

func fail(_ reason: String, _ bytes: [UInt8]) -> Never {
    let shown = String(decoding: bytes.prefix(400), as: UTF8.self)
    fatalError("\(reason)\ninput (\(bytes.count) bytes): \(shown)")
}

let handler = AdmissionReviewHandler(policy: MutationPolicy())
/// What the webhook keeps of a review (as AdmissionReviewHandler builds it) and a small selection
/// with an object, a list and a whole value, so skipped members of every kind are exercised.
let selections: [JSONSelection] = [
    .members([
        "apiVersion": .all, "kind": .all,
        "request": .members(["uid": .all, "operation": .all, "namespace": .all, "object": handler.policy.podSelection]),
    ]),
    .members(["a": .all, "b": .elements(.members(["c": .all])), "metadata": .members(["labels": .all])]),
]

func checkJSONReaders(_ bytes: [UInt8]) {
    let tree: JSON?
    var treeError: JSONError?
    do {
        tree = try JSONParser.parse(bytes)
    } catch {
        tree = nil
        treeError = error
        checkError(error, bytes, "JSONParser")
    }
    let tape: JSONTape?
    do {
        tape = try JSONTape(parsing: bytes)
    } catch {
        tape = nil
        checkError(error, bytes, "JSONTape")
    }
    guard (tree == nil) == (tape == nil) else {
        fail("JSONParser \(tree == nil ? "rejects (\(treeError!))" : "accepts"), JSONTape \(tape == nil ? "rejects" : "accepts")", bytes)
    }
    if let tree, let tape, !identical(tape.root.json, tree) {
        fail("JSONTape reads another value than JSONParser", bytes)
    }
    var reviewTape: JSONTape?
    for (index, selection) in selections.enumerated() {
        do {
            let selected = try JSONTape(parsing: bytes, selecting: selection)
            guard let tree else { fail("JSONTape with selection \(index) accepts what JSONParser rejects (\(treeError!))", bytes) }
            if let problem = compare(selected.root, tree, selection, path: "") {
                fail("JSONTape with selection \(index): \(problem)", bytes)
            }
            if index == 0 { reviewTape = selected }
        } catch {
            checkError(error, bytes, "JSONTape with selection \(index)")
            if tree != nil { fail("JSONTape with selection \(index) rejects (\(error)) what JSONParser accepts", bytes) }
        }
    }
    if let tree {
        let written = JSONWriter.bytes(tree)
        guard let again = try? JSONParser.parse(written), identical(again, tree) else {
            fail("JSONWriter's text does not read back: \(String(decoding: written, as: UTF8.self))", bytes)
        }
        if let reviewTape { checkPolicy(tree: tree, tape: reviewTape, bytes) }
    }
    checkHandler(bytes, accepted: tree != nil)
    if String(validating: bytes, as: UTF8.self) != nil {
        compareWithFoundation(bytes, berth: tree, berthError: treeError)
    }
}

func checkError(_ error: JSONError, _ bytes: [UInt8], _ reader: String) {
    guard !error.message.isEmpty, (0...bytes.count).contains(error.offset), error.line >= 1, error.column >= 1,
        error.column <= error.offset + 1
    else { fail("\(reader): the error does not name a place in the input: \(error) (offset \(error.offset))", bytes) }
}

/// Exactly the same value: member order and duplicates, number text, string scalars.
func identical(_ a: JSON, _ b: JSON) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case let (.bool(x), .bool(y)): return x == y
    case let (.number(x), .number(y)): return x == y
    case let (.string(x), .string(y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
    case let (.object(x), .object(y)):
        return x.count == y.count
            && zip(x.members, y.members).allSatisfy { $0.key.unicodeScalars.elementsEqual($1.key.unicodeScalars) && identical($0.value, $1.value) }
    default: return false
    }
}

/// What a selective tape holds against the whole tree: selected members (the first of a name,
/// as both readers look up) equal, nothing unselected kept; a selection that does not fit the
/// value found keeps the value whole.
func compare(_ cursor: JSONCursor, _ tree: JSON, _ selection: JSONSelection, path: String) -> String? {
    switch (selection, tree) {
    case let (.members(members), .object(object)):
        guard cursor.isObject else { return "\(path): an object became \(cursor.typeName)" }
        var unselected: String?
        cursor.forEachMember { key, _ in
            if unselected == nil, !members.contains(where: { $0.key == key }) { unselected = key }
        }
        if let unselected { return "\(path): member \"\(unselected)\" kept though not selected" }
        for member in members {
            switch (cursor[member.key], object[member.key]) {
            case (nil, nil): continue
            case let (kept?, value?):
                if let problem = compare(kept, value, member.selection, path: path + "." + member.key) { return problem }
            default: return "\(path).\(member.key): present in one reader only"
            }
        }
        return nil
    case let (.elements(element), .array(array)):
        guard let kept = cursor.arrayElements, kept.count == array.count else { return "\(path): the list differs in length" }
        for (index, pair) in zip(kept, array).enumerated() {
            if let problem = compare(pair.0, pair.1, element, path: "\(path)[\(index)]") { return problem }
        }
        return nil
    default:
        return identical(cursor.json, tree) ? nil : "\(path): the value differs"
    }
}

/// The webhook reads the pod from the selective tape, `berth mutate` from the tree: one decision.
func checkPolicy(tree: JSON, tape: JSONTape, _ bytes: [UInt8]) {
    guard let pod = tree["request"]?["object"], pod.isObject, let cursor = tape.root["request"]?["object"] else { return }
    let namespace = tree["request"]?["namespace"]?.stringValue
    let fromTree = Result { () throws(PodShapeError) in try handler.policy.mutation(for: pod, namespace: namespace) }
    let fromTape = Result { () throws(PodShapeError) in try handler.policy.mutation(for: cursor, namespace: namespace) }
    guard fromTree == fromTape else { fail("the policy decides differently from the tree (\(fromTree)) and the tape (\(fromTape))", bytes) }
    if case let .success(mutation) = fromTree, !mutation.patch.isEmpty {
        guard (try? mutation.patch.apply(to: pod)) != nil else { fail("the policy's patch does not apply to the pod", bytes) }
    }
}

func checkHandler(_ bytes: [UInt8], accepted: Bool) {
    let outcome = handler.handle(body: bytes)
    guard outcome.status == 200 || outcome.status == 400 else { fail("the handler answered \(outcome.status)", bytes) }
    guard (try? JSONParser.parse(outcome.body)) != nil else {
        fail("the handler's answer is not JSON: \(String(decoding: outcome.body, as: UTF8.self))", bytes)
    }
    if outcome.status == 400, outcome.error?.isEmpty ?? true { fail("a 400 without a reason", bytes) }
    if !accepted, outcome.status != 400 { fail("the handler answered \(outcome.status) to malformed JSON", bytes) }
}

// MARK: - Berth against Foundation

/// How Foundation reads these bytes, in Berth's terms: the bytes to give Berth and the bytes to give
/// Foundation so both should reach the same verdict and values, or nil where no comparison is
/// meaningful (differences 1, 2 and 6 of the header).
func foundationView(_ bytes: [UInt8]) -> (berth: [UInt8], foundation: [UInt8])? {
    var input = bytes
    // JSONSerialization.detectEncoding: a BOM (only the UTF-8 one is valid UTF-8) when at least
    // four bytes, else NUL patterns in the first four (or two) bytes mean UTF-16/32.
    if input.count >= 4, input.starts(with: [0xEF, 0xBB, 0xBF]) {
        input.removeFirst(3)
    } else if input.count >= 4 {
        if input[1] == 0 && input[2] == 0 && (input[0] == 0 || input[3] == 0) { return nil }
        if (input[0] == 0 && input[2] == 0) || (input[1] == 0 && input[3] == 0) { return nil }
    } else if input.count >= 2, input[0] == 0 || input[1] == 0 {
        return nil
    }
    var berth: [UInt8] = []
    var foundation: [UInt8] = []
    berth.reserveCapacity(input.count)
    foundation.reserveCapacity(bytes.count)
    if input.count < bytes.count { foundation.append(contentsOf: [0xEF, 0xBB, 0xBF]) }
    var inString = false
    var escapeLeft = 0  // bytes of an escape still to come (1 after '\', 4 after "\u")
    var segmentStart = false
    var lastSignificant: UInt8 = 0
    var index = 0
    while index < input.count {
        let byte = input[index]
        if inString {
            // Difference 6: a raw U+FEFF opening a run of plain characters (after the quote or an
            // escape) is written as the escape it equals, which Foundation keeps.
            if segmentStart, escapeLeft == 0, input[index...].starts(with: [0xEF, 0xBB, 0xBF]) {
                berth.append(contentsOf: [0xEF, 0xBB, 0xBF])
                foundation.append(contentsOf: Array(#"\uFEFF"#.utf8))
                index += 3
                continue
            }
            segmentStart = false
            if escapeLeft > 0 {
                escapeLeft -= 1
                if escapeLeft == 0 && byte == UInt8(ascii: "u") && input[index - 1] == UInt8(ascii: "\\") { escapeLeft = 4 }
                if escapeLeft == 0 { segmentStart = true }
            } else if byte == UInt8(ascii: "\\") {
                escapeLeft = 1
            } else if byte == UInt8(ascii: "\"") {
                inString = false
                lastSignificant = byte
            }
            berth.append(byte)
            foundation.append(byte)
            index += 1
            continue
        }
        index += 1
        foundation.append(byte)
        if byte == UInt8(ascii: "\"") {
            inString = true
            segmentStart = true
        }
        // Difference 2: a ',' after a value (outside strings) followed only by whitespace and a
        // closing bracket is skipped by Foundation's parser.
        if byte == UInt8(ascii: ","), endsValue(lastSignificant),
            let next = input[index...].first(where: { !isWhitespace($0) }), next == UInt8(ascii: "]") || next == UInt8(ascii: "}")
        {
            continue
        }
        berth.append(byte)
        if !isWhitespace(byte) { lastSignificant = byte }
    }
    return (berth, foundation)
}

func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

func endsValue(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "\""), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "e"), UInt8(ascii: "l"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
    default: false
    }
}

/// The deepest nesting of brackets outside strings.
func nestingDepth(_ bytes: [UInt8]) -> Int {
    var depth = 0
    var deepest = 0
    var inString = false
    var escaped = false
    for byte in bytes {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            depth += 1
            deepest = max(deepest, depth)
        case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
        default: break
        }
    }
    return deepest
}

func compareWithFoundation(_ bytes: [UInt8], berth: JSON?, berthError: JSONError?) {
    guard let view = foundationView(bytes) else {
        if berth != nil { fail("Berth accepts input Foundation reads as UTF-16/32 (a NUL byte)", bytes) }
        return
    }
    var berth = berth
    var berthError = berthError
    if view.berth != bytes {
        if berth != nil { fail("Berth accepts a byte-order mark or a trailing comma", bytes) }
        do {
            berth = try JSONParser.parse(view.berth)
            berthError = nil
        } catch {
            berth = nil
            berthError = error
        }
    }
    let foundation: Any?
    var unrepresentableNumber = false
    do {
        foundation = try JSONSerialization.jsonObject(with: Data(view.foundation), options: [.fragmentsAllowed])
    } catch {
        foundation = nil
        // Difference 4: refused after the syntax was accepted.
        unrepresentableNumber = "\(error)".contains("is not representable in Swift")
    }
    let foundationAccepts = foundation != nil || unrepresentableNumber
    if nestingDepth(view.berth) > JSONParser.maximumDepth {
        // Difference 3.
        if berth != nil { fail("Berth accepts nesting deeper than \(JSONParser.maximumDepth)", bytes) }
        if foundationAccepts, !(berthError?.message.hasPrefix("nesting deeper than") ?? false) {
            fail("Foundation accepts, Berth rejects with \(berthError!) (not the nesting limit)", bytes)
        }
        return
    }
    switch (berth, foundationAccepts) {
    case (nil, true): fail("Foundation accepts, Berth rejects: \(berthError!)", bytes)
    case (.some, false): fail("Berth accepts, Foundation rejects", bytes)
    default: break
    }
    if let berth, let foundation, let problem = agree(berth, foundation, path: "") {
        fail("Berth and Foundation read different values: \(problem)", bytes)
    }
}

/// Whether Berth's value and Foundation's agree where they are comparable (difference 5 for
/// objects; numbers as Foundation stores them: Int64/UInt64 exactly, Double and Decimal as read
/// from the same text).
func agree(_ berth: JSON, _ foundation: Any, path: String) -> String? {
    switch berth {
    case .null:
        return foundation is NSNull ? nil : "\(path): null became \(type(of: foundation))"
    case let .bool(flag):
        guard let number = foundation as? NSNumber, isBoolean(number), number.boolValue == flag else { return "\(path): \(flag) differs" }
        return nil
    case let .number(text):
        guard let number = foundation as? NSNumber, !isBoolean(number) else { return "\(path): number \(text) became \(foundation)" }
        if let decimal = number as? NSDecimalNumber {
            return Decimal(string: text) == decimal.decimalValue ? nil : "\(path): \(text) read as \(decimal)"
        }
        switch String(cString: number.objCType) {
        case "d", "f":
            return Double(text)?.bitPattern == number.doubleValue.bitPattern ? nil : "\(path): \(text) read as \(number.doubleValue)"
        case "Q":
            return UInt64(text) == number.uint64Value ? nil : "\(path): \(text) read as \(number.uint64Value)"
        default:
            return Int64(text) == number.int64Value ? nil : "\(path): \(text) read as \(number.int64Value)"
        }
    case let .string(text):
        guard let other = foundation as? String else { return "\(path): a string became \(type(of: foundation))" }
        return text.unicodeScalars.elementsEqual(other.unicodeScalars) ? nil : "\(path): string \(text.debugDescription) read as \(other.debugDescription)"
    case let .array(elements):
        guard let other = foundation as? [Any], other.count == elements.count else { return "\(path): the list differs" }
        for (index, pair) in zip(elements, other).enumerated() {
            if let problem = agree(pair.0, pair.1, path: "\(path)[\(index)]") { return problem }
        }
        return nil
    case let .object(object):
        guard let other = foundation as? [String: Any] else { return "\(path): an object became \(type(of: foundation))" }
        // Last member of each name, names compared as Swift Strings (as Foundation's dictionary does).
        var last: [String: JSON] = [:]
        for member in object.members { last[member.key] = member.value }
        guard last.count == other.count else { return "\(path): \(last.count) distinct names, Foundation has \(other.count)" }
        for (key, value) in last {
            guard let counterpart = other[key] else { return "\(path): member \(key.debugDescription) missing in Foundation's" }
            if let problem = agree(value, counterpart, path: path + "." + key) { return problem }
        }
        return nil
    }
}

/// Foundation's true and false are two shared instances.
let foundationTrue = NSNumber(value: true)
let foundationFalse = NSNumber(value: false)
func isBoolean(_ number: NSNumber) -> Bool { number === foundationTrue || number === foundationFalse }

/// Without the fuzzer: every file named, and every file in every directory named, through `check`.
func replay(_ paths: ArraySlice<String>, check: ([UInt8]) -> Void) {
    var count = 0
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fatalError("\(path): no such file") }
        let files = isDirectory.boolValue
            ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            check(Array(data))
            count += 1
        }
    }
    print("\(count) inputs checked")
}
