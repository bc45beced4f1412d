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
        let namespace = request["namespace"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        var mutation: Mutation
        do {
            mutation = try policy.mutation(for: object, namespace: namespace)
        } catch {
            return .badRequest("request.object: \(error)", uid: uid)
        }
        let patch = mutation.patch.isEmpty ? nil : mutation.patch.serialized()
        // The outcome reports what was decided; the patch itself goes into the body. Dropped
        // before the mutation is stored, so it is moved, not copied.
        mutation.patch = JSONPatch()
        outcome.body = Self.response(apiVersion: apiVersion, uid: uid, patch: patch, mutation: mutation)
        outcome.mutation = mutation
        return outcome
    }

    static func response(apiVersion: String, uid: String, patch: [UInt8]?, mutation: Mutation?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + (patch?.count ?? 0) * 4 / 3)
        out.append(ascii: #"{"apiVersion":"#)
        JSONWriter.writeString(apiVersion, into: &out)
        out.append(ascii: #","kind":"AdmissionReview","response":{"uid":"#)
        JSONWriter.writeString(uid, into: &out)
        out.append(ascii: #","allowed":true"#)
        if let patch {
            out.append(ascii: #","patchType":"JSONPatch","patch":""#)
            Base64.encode(patch, into: &out)
            out.append(UInt8(ascii: "\""))
        }
        if let mutation, !mutation.warnings.isEmpty {
            out.append(ascii: #","warnings":["#)
            for (index, warning) in mutation.warnings.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(warning, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        if let mutation, patch != nil {
            // Written directly: the class and mutation names are fixed ASCII words.
            out.append(ascii: #","auditAnnotations":{"class":""#)
            out.append(utf8: mutation.podClass?.rawValue ?? "exempt")
            out.append(ascii: #"","mutations":""#)
            for (index, kind) in mutation.kinds.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(utf8: kind.rawValue)
            }
            out.append(ascii: #""}"#)
        }
        out.append(ascii: "}}")
        return out
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

    public static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        let encodedCount = (bytes.count + 2) / 3 * 4
        guard encodedCount > 0 else { return }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: encodedCount))
        // Pointers advanced in place: with indices, every store re-read the buffer's base and
        // checked the index arithmetic for overflow (45 instructions per 3 bytes, now ~20).
        let table = alphabet.utf8Start
        out.withUnsafeMutableBufferPointer { output in
            bytes.withUnsafeBufferPointer { input in
                guard var o = output.baseAddress.map({ $0 + start }), var i = input.baseAddress else { return }
                let wholeEnd = i + input.count / 3 * 3
                while i < wholeEnd {
                    let chunk = UInt32(i[0]) << 16 | UInt32(i[1]) << 8 | UInt32(i[2])
                    o[0] = table[Int(chunk >> 18)]
                    o[1] = table[Int(chunk >> 12 & 63)]
                    o[2] = table[Int(chunk >> 6 & 63)]
                    o[3] = table[Int(chunk & 63)]
                    i += 3
                    o += 4
                }
                let rest = input.count % 3
                if rest > 0 {
                    let chunk = UInt32(i[0]) << 16 | (rest == 2 ? UInt32(i[1]) << 8 : 0)
                    o[0] = table[Int(chunk >> 18)]
                    o[1] = table[Int(chunk >> 12 & 63)]
                    o[2] = rest == 2 ? table[Int(chunk >> 6 & 63)] : UInt8(ascii: "=")
                    o[3] = UInt8(ascii: "=")
                }
            }
        }
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        encode(bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
