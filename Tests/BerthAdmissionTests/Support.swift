import BerthAdmission
import BerthModel
import Foundation
import Testing

enum Fixtures {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let manifests = tests.appendingPathComponent("Fixtures/manifests")
    static let kubernetesAPI = tests.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared/fixtures/kubernetes-api")

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

/// Runs a real program (kubectl, kubernetes-validate) and returns its output; fails the test
/// with the program's stderr when it exits non-zero.
@discardableResult
func run(_ arguments: [String], input: Data? = nil) throws -> (status: Int32, stdout: Data, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe(), err = Pipe(), inPipe = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = inPipe
    try process.run()
    if let input { inPipe.fileHandleForWriting.write(input) }
    try inPipe.fileHandleForWriting.close()
    // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
    let stderrRead = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var errData = Data()  // written by the reader thread before it signals
    Thread {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        stderrRead.signal()
    }.start()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    stderrRead.wait()
    process.waitUntilExit()
    return (process.terminationStatus, stdout, String(decoding: errData, as: UTF8.self))
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
