import BerthModel

/// The answer to one `POST /mutate`: an HTTP status, a JSON body, and what was decided (for
/// metrics and the request log line).
public struct AdmissionOutcome: Sendable {
    public var status: Int
    public var body: [UInt8]
    public var uid: String?
    public var operation: String?
    public var mutation: Mutation?
    /// Why the review could not be answered (HTTP 400), in words a person can act on.
    public var error: String?
}

/// AdmissionReview in, AdmissionReview out (admission.k8s.io/v1 and v1beta1), over bytes. It knows
/// nothing of HTTP or sockets; the server hands it the body and sends back what it returns.
/// Rules it follows (k8s.io/api admission/v1 types.go, apiserver webhook dispatcher): echo the
/// request's apiVersion and kind, copy the uid, `allowed: true` always (Berth mutates, never
/// denies), `patchType: JSONPatch` with the base64 patch only when something changes, mutate only
/// CREATE (affinity is immutable after).
public struct AdmissionReviewHandler: Sendable {
    public static let supportedVersions = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]

    public let policy: MutationPolicy
    /// Built once: what of a review the handler reads (see `MutationPolicy.podSelection`).
    let selection: JSONSelection

    public init(policy: MutationPolicy) {
        self.policy = policy
        self.selection = .members([
            "apiVersion": .all,
            "kind": .all,
            "request": .members([
                "uid": .all, "kind": .all, "resource": .all, "subResource": .all, "operation": .all, "namespace": .all,
                "object": policy.podSelection,
            ]),
        ])
    }

    public func handle(body: [UInt8]) -> AdmissionOutcome {
        if body.isEmpty { return .badRequest("empty body: expected an AdmissionReview (admission.k8s.io/v1) as JSON") }
        let review: JSONCursor
        do {
            // A flat tape, not a tree of values: see `JSONTape`.
            review = try JSONTape(parsing: body, selecting: selection).root
        } catch {
            return .badRequest("malformed JSON in the AdmissionReview: \(error)")
        }
        guard review.isObject else { return .badRequest("the AdmissionReview must be a JSON object, found \(review.typeName)") }
        // Compared on the tape's bytes; the echoed apiVersion is then the constant, not a decoded copy.
        let versionNode = review["apiVersion"]
        guard let apiVersion = Self.supportedVersions.first(where: { versionNode?.stringEquals($0) ?? false }) else {
            let found = versionNode?.stringValue ?? ""
            return .badRequest("apiVersion must be admission.k8s.io/v1 or admission.k8s.io/v1beta1, found \(found.isEmpty ? "nothing" : "\"\(found)\"")")
        }
        guard review["kind"]?.stringEquals("AdmissionReview") == true else {
            return .badRequest("kind must be \"AdmissionReview\", found \(review["kind"].map { $0.json.description } ?? "nothing")")
        }
        guard let request = review["request"], request.isObject else {
            return .badRequest("the AdmissionReview has no \"request\" object")
        }
        guard let uid = request["uid"]?.stringValue, !uid.isEmpty else {
            return .badRequest("request.uid is missing: the answer must carry it back")
        }
        let operation = request["operation"]?.stringValue ?? ""
        let resource = request["resource"]?["resource"]?.stringValue
        let requestKind = request["kind"]?["kind"]?.stringValue
        if let resource, resource != "pods" {
            return .badRequest("Berth mutates pods only; request.resource is \"\(resource)\" (check the webhook's rules)", uid: uid)
        }
        if let requestKind, requestKind != "Pod" {
            return .badRequest("Berth mutates pods only; request.kind is \"\(requestKind)\" (check the webhook's rules)", uid: uid)
        }
        var outcome = AdmissionOutcome(status: 200, body: [], uid: uid, operation: operation)
        let subResource = request["subResource"]?.stringValue ?? ""
        guard operation == "CREATE", subResource.isEmpty else {
            outcome.body = Self.response(apiVersion: apiVersion, uid: uid, patch: nil, mutation: nil)
            return outcome
        }
        guard let object = request["object"], object.isObject else {
            return .badRequest("request.object is missing: a CREATE review must carry the pod", uid: uid)
        }
        if let kind = object["kind"]?.stringValue, kind != "Pod" {
            return .badRequest("request.object is a \(kind), not a Pod", uid: uid)
        }
        // The apiserver (Go) keeps the last of two equal member names; a reader keeping the first
        // would judge another pod than the one stored (an early `berth.dev/skip` annotation, say).
        if let duplicate = object.firstDuplicateMemberName() {
            return .badRequest("request.object.\(duplicate): duplicate member name (the apiserver would keep the last value)", uid: uid)
        }
        let namespace = request["namespace"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        var mutation: Mutation
        do {
            mutation = try policy.mutation(for: object, namespace: namespace)
        } catch {
            return .badRequest("request.object: \(error)", uid: uid)
        }
        let patch = mutation.patch.isEmpty ? nil : mutation.patch
        // The outcome reports what was decided; the patch itself goes into the body. Dropped
        // before the mutation is stored, so it is moved, not copied.
        mutation.patch = JSONPatch()
        outcome.body = Self.response(apiVersion: apiVersion, uid: uid, patch: patch, mutation: mutation)
        outcome.mutation = mutation
        return outcome
    }

    /// Written into one allocation sized beforehand, the patch through a scratch buffer straight
    /// into base64: no array for the patch, no growing of the body (z2jh-gpu-notebook review:
    /// `JSONPatch.serialized()` and this went from ~19.9k instructions to ~5.1k, half of it base64).
    static func response(apiVersion: String, uid: String, patch: JSONPatch?, mutation: Mutation?) -> [UInt8] {
        let opening: StaticString = #"{"apiVersion":"#
        let kindKey: StaticString = #","kind":"AdmissionReview","response":{"uid":"#
        let allowed: StaticString = #","allowed":true"#
        let patchKey: StaticString = #","patchType":"JSONPatch","patch":""#
        let warningsKey: StaticString = #","warnings":["#
        let classKey: StaticString = #","auditAnnotations":{"class":""#
        let mutationsKey: StaticString = #"","mutations":""#
        let closing: StaticString = "}}"
        let patchCount = patch?.serializedCount ?? 0
        let podClass = mutation?.podClass?.rawValue ?? "exempt"
        // An upper bound: strings are counted as if every byte needed `\u00XX`.
        var capacity = opening.utf8CodeUnitCount + JSONWriter.stringBound(apiVersion) + kindKey.utf8CodeUnitCount
            + JSONWriter.stringBound(uid) + allowed.utf8CodeUnitCount + patchKey.utf8CodeUnitCount
            + Base64.encodedCount(patchCount) + warningsKey.utf8CodeUnitCount + classKey.utf8CodeUnitCount
            + podClass.utf8.count + mutationsKey.utf8CodeUnitCount + closing.utf8CodeUnitCount
            + 4  // the patch's closing quote, the warnings' bracket, the annotations' `"}`
        for warning in mutation?.warnings ?? [] { capacity += JSONWriter.stringBound(warning) + 1 }
        for kind in mutation?.kinds ?? [] { capacity += kind.rawValue.utf8.count + 1 }
        return [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            guard let start = buffer.baseAddress else { return }
            var out = ByteCursor(start, capacity: buffer.count)
            out.write(opening)
            out.writeJSONString(apiVersion)
            out.write(kindKey)
            out.writeJSONString(uid)
            out.write(allowed)
            if let patch {
                out.write(patchKey)
                // On the stack for a patch of up to a kilobyte or so (the Swift runtime decides).
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: patchCount) { scratch in
                    guard let scratchStart = scratch.baseAddress else { return }
                    var patchCursor = ByteCursor(scratchStart, capacity: scratch.count)
                    patch.write(to: &patchCursor)
                    Base64.encode(UnsafeBufferPointer(start: scratchStart, count: patchCursor.count(from: scratchStart)), to: &out)
                }
                out.write(UInt8(ascii: "\""))
            }
            if let mutation, !mutation.warnings.isEmpty {
                out.write(warningsKey)
                for (index, warning) in mutation.warnings.enumerated() {
                    if index > 0 { out.write(UInt8(ascii: ",")) }
                    out.writeJSONString(warning)
                }
                out.write(UInt8(ascii: "]"))
            }
            if let mutation, patch != nil {
                // Written directly: the class and mutation names are fixed ASCII words.
                out.write(classKey)
                out.write(utf8: podClass)
                out.write(mutationsKey)
                for (index, kind) in mutation.kinds.enumerated() {
                    if index > 0 { out.write(UInt8(ascii: ",")) }
                    out.write(utf8: kind.rawValue)
                }
                out.write(#""}"#)
            }
            out.write(closing)
            initialized = out.count(from: start)
        }
    }
}

extension AdmissionOutcome {
    /// A `400` with a Kubernetes `Status` body, so the apiserver's log shows the reason.
    static func badRequest(_ message: String, uid: String? = nil) -> AdmissionOutcome {
        let status: JSON = [
            "apiVersion": "v1", "kind": "Status", "status": "Failure", "message": .string(message), "reason": "BadRequest", "code": 400,
        ]
        return AdmissionOutcome(status: 400, body: JSONWriter.bytes(status), uid: uid, error: message)
    }
}

/// RFC 4648 base64 (with padding), as AdmissionResponse.patch carries it.
public enum Base64 {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// The two characters for each 12-bit value, the first in the low byte (8 KiB, built once):
    /// two lookups per 3 bytes instead of four.
    private static let pairs: [UInt16] = (0..<4096).map { value in
        UInt16(alphabet.utf8Start[value >> 6]) | UInt16(alphabet.utf8Start[value & 63]) << 8
    }

    public static func encodedCount(_ count: Int) -> Int {
        (count + 2) / 3 * 4
    }

    /// Writes `encodedCount(bytes.count)` bytes at the cursor. Six bytes in, eight out per step,
    /// with one 8-byte load and one 8-byte store: the index-free 3-byte loop this replaces took
    /// ~20 instructions per 3 bytes, this one ~13 (589 patch bytes: 2.6k instead of ~4k).
    public static func encode(_ bytes: UnsafeBufferPointer<UInt8>, to cursor: inout ByteCursor) {
        guard var input = bytes.baseAddress else { return }
        let end = input + bytes.count
        var output = UnsafeMutableRawPointer(cursor.claim(encodedCount(bytes.count)))
        pairs.withUnsafeBufferPointer { table in
            guard let pair = table.baseAddress else { return }
            // Each load reads two bytes past the six it encodes, so it needs eight left. Two
            // steps a turn: the loop's own counting was a fifth of the instructions.
            while end - input >= 14 {
                encodeSix(input, to: output, pair)
                encodeSix(input + 6, to: output + 8, pair)
                input += 12
                output += 16
            }
            if end - input >= 8 {
                encodeSix(input, to: output, pair)
                input += 6
                output += 8
            }
            while end - input >= 3 {
                let chunk = UInt32(input[0]) << 16 | UInt32(input[1]) << 8 | UInt32(input[2])
                let quad = UInt32(pair[Int(truncatingIfNeeded: chunk >> 12)]) | UInt32(pair[Int(truncatingIfNeeded: chunk & 0xFFF)]) << 16
                output.storeBytes(of: quad.littleEndian, as: UInt32.self)
                input += 3
                output += 4
            }
        }
        let rest = end - input
        if rest > 0 {
            let table = alphabet.utf8Start
            let chunk = UInt32(input[0]) << 16 | (rest == 2 ? UInt32(input[1]) << 8 : 0)
            output.storeBytes(of: table[Int(chunk >> 18)], as: UInt8.self)
            output.storeBytes(of: table[Int(chunk >> 12 & 63)], toByteOffset: 1, as: UInt8.self)
            output.storeBytes(of: rest == 2 ? table[Int(chunk >> 6 & 63)] : UInt8(ascii: "="), toByteOffset: 2, as: UInt8.self)
            output.storeBytes(of: UInt8(ascii: "="), toByteOffset: 3, as: UInt8.self)
        }
    }

    @inline(__always)
    private static func encodeSix(_ input: UnsafePointer<UInt8>, to output: UnsafeMutableRawPointer, _ pair: UnsafePointer<UInt16>) {
        let word = UnsafeRawPointer(input).loadUnaligned(as: UInt64.self).bigEndian
        let first = UInt64(pair[Int(truncatingIfNeeded: word >> 52)])
            | UInt64(pair[Int(truncatingIfNeeded: word >> 40 & 0xFFF)]) << 16
        let second = UInt64(pair[Int(truncatingIfNeeded: word >> 28 & 0xFFF)]) << 32
            | UInt64(pair[Int(truncatingIfNeeded: word >> 16 & 0xFFF)]) << 48
        output.storeBytes(of: (first | second).littleEndian, as: UInt64.self)
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: encodedCount(bytes.count)) { buffer in
            guard let start = buffer.baseAddress else { return 0 }
            var cursor = ByteCursor(start, capacity: buffer.count)
            bytes.withUnsafeBufferPointer { encode($0, to: &cursor) }
            return cursor.count(from: start)
        }
    }
}
