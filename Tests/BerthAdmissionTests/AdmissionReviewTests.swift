import BerthAdmission
import BerthModel
import Foundation
import Testing

@Suite struct AdmissionReviewTests {
    let handler = AdmissionReviewHandler(policy: MutationPolicy())

    static func z2jhReview() throws -> JSON {
        let url = Fixtures.tests.appendingPathComponent("Fixtures/admission/z2jh-gpu-notebook.review.json")
        return try JSONParser.parse(Array(Data(contentsOf: url)))
    }

    static func setting(_ review: JSON, _ path: [String], _ value: JSON?) throws -> JSON {
        let pointer = JSONPointer(path)
        let op = value.map { JSONPatchOperation.add(pointer, $0) } ?? JSONPatchOperation(op: .remove, path: pointer)
        return try JSONPatch([op]).apply(to: review)
    }

    func answer(_ review: JSON) throws -> JSON {
        let outcome = handler.handle(body: JSONWriter.bytes(review))
        #expect(outcome.status == 200, "\(outcome.error ?? "")")
        return try JSONParser.parse(outcome.body)
    }

    @Test(arguments: ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
    func answersWithTheSamePatchBerthMutatePrints(apiVersion: String) throws {
        let review = try Self.setting(Self.z2jhReview(), ["apiVersion"], .string(apiVersion))
        let response = try answer(review)
        #expect(response["apiVersion"] == .string(apiVersion))
        #expect(response["kind"] == "AdmissionReview")
        #expect(response["response"]?["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002")
        #expect(response["response"]?["allowed"] == true)
        #expect(response["response"]?["patchType"] == "JSONPatch")
        let encoded = try #require(response["response"]?["patch"]?.stringValue)
        let patch = try #require(Data(base64Encoded: encoded))
        let pod = try #require(review["request"]?["object"])
        let expected = try ManifestMutator(policy: MutationPolicy()).mutate(pod).patch
        #expect(Array(patch) == expected.serialized())
        #expect(response["response"]?["auditAnnotations"]?["class"] == "gpu-notebook")
    }

    @Test(arguments: ["UPDATE", "DELETE", "CONNECT"])
    func onlyCreateIsMutated(operation: String) throws {
        let review = try Self.setting(Self.z2jhReview(), ["request", "operation"], .string(operation))
        let response = try answer(review)
        #expect(response["response"]?["allowed"] == true)
        #expect(response["response"]?["patch"] == nil)
        #expect(response["response"]?["patchType"] == nil)
    }

    /// 20,000 required node-selector terms, each getting the GPU requirement: a ~3 MB patch for a
    /// ~1.4 MB review. Refused with a 400 naming the limit, and nothing that size is built.
    @Test func aPatchOverTheLimitIsA400NamingIt() throws {
        let term: JSON = ["matchExpressions": [["key": "zone", "operator": "Exists"]]]
        let terms = JSON.array(Array(repeating: term, count: 20_000))
        let review = try Self.setting(Self.z2jhReview(), ["request", "object", "spec", "affinity"],
                                      ["nodeAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": ["nodeSelectorTerms": terms]]])
        let outcome = handler.handle(body: JSONWriter.bytes(review))
        #expect(outcome.status == 400)
        #expect(outcome.error?.contains("over 1048576 bytes") == true, "\(outcome.error ?? "")")
        #expect(outcome.error?.contains("--max-patch-bytes") == true)
        #expect(outcome.body.count < 1000)
        // Under a larger limit the same review is mutated: the limit is what refused it.
        let generous = AdmissionReviewHandler(policy: MutationPolicy(maxPatchBytes: 16 << 20)).handle(body: JSONWriter.bytes(review))
        #expect(generous.status == 200)
        #expect(generous.body.count > 2_000_000)
    }

    /// Go (and so the apiserver) keeps the last of two equal member names; the first would let an
    /// early `berth.dev/skip` exempt the pod. A repeated name wherever Berth reads the pod is a 400
    /// naming its path (see `DuplicateKeys` for why names it never reads are not compared).
    @Test(arguments: [
        (#""annotations":{"a":"b"},"annotations":{"#, "request.object.metadata.annotations"),
        (#""annotations":{"berth.dev/skip":"true","berth.dev/skip":"false","#, #"request.object.metadata.annotations["berth.dev/skip"]"#),
        (#""annotations":{"berth.dev/skip":"true","berth.dev/sk\u0069p":"false","#, #"request.object.metadata.annotations["berth.dev/skip"]"#),
    ])
    func duplicateMemberNamesInThePodAreA400NamingThePath(replacement: String, path: String) throws {
        let review = String(decoding: JSONWriter.bytes(try Self.z2jhReview()), as: UTF8.self)
        // The pod's own annotations map opens with the names (or gets a second map before it).
        let objectStart = try #require(review.range(of: #""object":"#))
        let annotations = try #require(review.range(of: #""annotations":{"#, range: objectStart.upperBound..<review.endIndex))
        let injected = review.replacingCharacters(in: annotations, with: replacement)
        let outcome = handler.handle(body: Array(injected.utf8))
        #expect(outcome.status == 400, "\(outcome.error ?? "accepted")")
        #expect(outcome.error == "\(path): duplicate member name (the apiserver would keep the last value)")
    }

    @Test func duplicatesDeepInListsAndInBigObjectsAreFoundToo() throws {
        var review = try Self.z2jhReview()
        let tolerations: JSON = .array([["key": "a", "operator": "Exists"], ["key": "b", "operator": "Exists"]])
        review = try Self.setting(review, ["request", "object", "spec", "tolerations"], tolerations)
        var text = String(decoding: JSONWriter.bytes(review), as: UTF8.self)
        text = text.replacingOccurrences(of: #"{"key":"b","operator":"Exists"}"#, with: #"{"key":"b","operator":"Exists","key":"c"}"#)
        let outcome = handler.handle(body: Array(text.utf8))
        #expect(outcome.error == "request.object.spec.tolerations[1].key: duplicate member name (the apiserver would keep the last value)")
        // A toleration of 40 members then a repeat: found through the set, not pair by pair.
        let wide = JSON.object(JSONObject([JSONObject.Member(key: "key", value: "gpu")] + (0..<40).map { JSONObject.Member(key: "x\($0)", value: "v") }))
        var many = String(decoding: JSONWriter.bytes(try Self.setting(Self.z2jhReview(), ["request", "object", "spec", "tolerations"], .array([wide]))), as: UTF8.self)
        #expect(handler.handle(body: Array(many.utf8)).status == 200)
        many = many.replacingOccurrences(of: #""x39":"v""#, with: #""x39":"v","x0":"w""#)
        #expect(handler.handle(body: Array(many.utf8)).error == "request.object.spec.tolerations[0].x0: duplicate member name (the apiserver would keep the last value)")
    }

    @Test func unchangedPodGetsNoPatch() throws {
        let review = try Self.setting(Self.z2jhReview(), ["request", "namespace"], "kube-system")
        let response = try answer(review)
        #expect(response["response"]?["patch"] == nil)
        #expect(response["response"]?["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002")
    }

    @Test func warningsReachTheUser() throws {
        let review = try Self.setting(Self.z2jhReview(), ["request", "object", "metadata", "annotations", "berth.dev/gpu-type"], "not a gpu!")
        let response = try answer(review)
        #expect(response["response"]?["warnings"]?.arrayValue?.count == 1)
    }

    static let badReviews: [(String, [UInt8], String)] = {
        var cases: [(String, [UInt8], String)] = []
        cases.append(("empty", [], "empty body"))
        cases.append(("truncated", Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"Adm"#.utf8), "malformed JSON in the AdmissionReview: unterminated string"))
        cases.append(("list", Array("[1]".utf8), "must be a JSON object"))
        cases.append(("v2", Array(#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview"}"#.utf8), "apiVersion must be admission.k8s.io/v1"))
        cases.append(("no request", Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.utf8), "no \"request\""))
        cases.append(("no uid", Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.utf8), "request.uid is missing"))
        cases.append(("deployment", Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Deployment"},"operation":"CREATE"}}"#.utf8), "Berth mutates pods only"))
        cases.append(("no object", Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE"}}"#.utf8), "request.object is missing"))
        cases.append(("bad pod", Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","object":{"spec":{"containers":7}}}}"#.utf8), "request.object: spec.containers: expected a list"))
        // A label the notebook selectors do not name: the webhook checks it as `berth mutate` does
        // (found by the JSON fuzz target: the tape skipped it and the webhook answered a patch).
        cases.append(("label not a string", Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","object":{"metadata":{"labels":{"team":{"name":"ml"}}},"spec":{"containers":[]}}}}"#.utf8), "request.object: metadata.labels.team: expected a string, found an object"))
        return cases
    }()

    @Test(arguments: badReviews)
    func malformedReviewsGetA400ThatSaysWhy(name: String, body: [UInt8], message: String) throws {
        let outcome = handler.handle(body: body)
        #expect(outcome.status == 400, "\(name)")
        #expect(outcome.error?.contains(message) == true, "\(name): \(outcome.error ?? "nil")")
        let status = try JSONParser.parse(outcome.body)
        #expect(status["kind"] == "Status")
        #expect(status["code"] == 400)
        #expect(status["message"]?.stringValue?.contains(message) == true)
    }

    @Test func base64MatchesFoundation() {
        // Past 14 bytes: the encoder's two-steps-a-turn loop, its single step and its tail.
        for length in 0..<64 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString())
        }
    }
}

/// The webhook reads pods from a `JSONTape` with a selection; `berth mutate` from `JSON` trees.
/// Both must give the same patch for every fixture.
@Suite struct TapeAndTreeAgreeTests {
    @Test(arguments: Fixtures.manifestNames)
    func samePatchFromTheWebhooksReader(name: String) throws {
        let policy = MutationPolicy()
        for document in try Fixtures.documents(name) where document["kind"] == "Pod" {
            let tree = try policy.mutation(for: document, namespace: "ml")
            let tape = try JSONTape(parsing: JSONWriter.bytes(document), selecting: policy.podSelection)
            let fromTape = try policy.mutation(for: tape.root, namespace: "ml")
            #expect(fromTape == tree, "\(name)")
            #expect(fromTape.patch.serialized() == JSONWriter.bytes(tree.patch.json), "\(name)")
            #expect(fromTape.patch.serializedCount == fromTape.patch.serialized().count, "\(name)")
        }
    }

    /// Operations whose paths and values need escaping: the cached bytes and their sizes follow.
    @Test func serializedPatchMatchesTheWriterWithEscapes() {
        let patch = JSONPatch([
            .add(JSONPointer(["metadata", "annotations", "a/b~c\"quoted\"\n"]), .string("tab\tand \u{1}")),
            .add(JSONPointer(["spec", "tolerations", "-"]), ["key": "é", "operator": "Exists"]),
            .add(JSONPointer([]), .null),
        ])
        #expect(patch.serialized() == JSONWriter.bytes(patch.json))
        #expect(patch.serializedCount == patch.serialized().count)
        var changed = patch
        changed.operations[0].value = .string("other")
        #expect(changed.serialized() == JSONWriter.bytes(changed.json))
    }
}
