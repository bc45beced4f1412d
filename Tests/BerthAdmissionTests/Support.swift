import BerthAdmission
import BerthModel
import BerthTestSupport
import Foundation
import Testing

enum Fixtures {
    static let tests = Repository.root.appendingPathComponent("Tests")
    static let manifests = Repository.fixtures.appendingPathComponent("manifests")
    static let kubernetesAPI = Repository.kubernetesAPIFixtures

    static func text(_ name: String) throws -> String {
        try String(contentsOf: manifests.appendingPathComponent(name), encoding: .utf8)
    }

    static func documents(_ name: String) throws -> [JSON] {
        try YAMLReader.documents(text(name)).map(\.value)
    }

    static let manifestNames = [
        "z2jh-gpu-notebook.yaml", "kubeflow-gpu-notebook.yaml", "gpu-two-zones.yaml", "airflow-task.yaml",
        "device-plugin-daemonset-pod.yaml", "bare-gpu-pod.yaml", "mig-init-container.yaml", "deployment-and-service.yaml",
    ]
}

extension JSONPatch {
    /// Undoes a patch made only of `add`s (Berth's only operation), so tests can prove that
    /// everything else in the document is byte-for-byte what it was.
    func removingAdds(from document: JSON) throws -> JSON {
        var result = document
        for operation in operations.reversed() {
            #expect(operation.op == .add, "Berth must only add: \(operation.json)")
            var path = operation.path
            if path.tokens.last == "-" {
                path.tokens.removeLast()
                let parent = try value(in: result, at: path)
                path = path.appending((parent.arrayValue?.count ?? 1) - 1)
            }
            result = try JSONPatch([JSONPatchOperation(op: .remove, path: path)]).apply(to: result)
        }
        return result
    }

    private func value(in document: JSON, at path: JSONPointer) throws -> JSON {
        var node = document
        for token in path.tokens {
            if let index = Int(token), let element = node[index] { node = element } else if let child = node[token] { node = child } else {
                throw JSONPatchError(message: "no value at \(path)")
            }
        }
        return node
    }
}

/// Where two JSON values first differ (a pointer and both values, shortened), or nil: failure
/// messages stay readable even for the 40 KB upstream Pod.
func firstDifference(_ a: JSON, _ b: JSON, at path: JSONPointer = JSONPointer()) -> String? {
    switch (a, b) {
    case let (.object(x), .object(y)):
        for key in Set(x.keys).union(y.keys).sorted() {
            guard let left = x[key], let right = y[key] else { return "\(path.appending(key)): present on one side only" }
            if let difference = firstDifference(left, right, at: path.appending(key)) { return difference }
        }
        return nil
    case let (.array(x), .array(y)):
        if x.count != y.count { return "\(path): \(x.count) vs \(y.count) elements" }
        for (index, (left, right)) in zip(x, y).enumerated() {
            if let difference = firstDifference(left, right, at: path.appending(index)) { return difference }
        }
        return nil
    default:
        return a == b ? nil : "\(path): \(String(a.description.prefix(80))) vs \(String(b.description.prefix(80)))"
    }
}
