import BerthModel

/// `berth mutate`'s logic: a manifest document in, the same document as the webhook would leave
/// it out. Pods are mutated; the pod templates of workloads as the pods they will create; every
/// other document passes through untouched.
public struct ManifestMutator: Sendable {
    public var policy: MutationPolicy
    /// The namespace for documents that name none (like kubectl's `--namespace`).
    public var defaultNamespace: String

    public init(policy: MutationPolicy, defaultNamespace: String = "default") {
        self.policy = policy
        self.defaultNamespace = defaultNamespace
    }

    public struct Result: Sendable {
        public var patch: JSONPatch
        public var mutated: JSON
        /// One entry per pod or template found (a List holds several).
        public var pods: [(path: JSONPointer, mutation: Mutation)]
    }

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var field: String?
        public var message: String
        public var description: String { field.map { "\($0): \(message)" } ?? message }
    }

    /// Where the pod template sits in each workload kind.
    static let templatePaths: [String: [String]] = [
        "Deployment": ["spec", "template"],
        "StatefulSet": ["spec", "template"],
        "ReplicaSet": ["spec", "template"],
        "ReplicationController": ["spec", "template"],
        "Job": ["spec", "template"],
        "DaemonSet": ["spec", "template"],
        "CronJob": ["spec", "jobTemplate", "spec", "template"],
        "PodTemplate": ["template"],
    ]

    public func mutate(_ document: JSON) throws(Failure) -> Result {
        var pods: [(path: JSONPointer, mutation: Mutation)] = []
        try collect(document, at: JSONPointer(), into: &pods)
        let patch = JSONPatch(pods.flatMap(\.mutation.patch.operations))
        let mutated: JSON
        do {
            mutated = try patch.apply(to: document)
        } catch {
            // The policy built this patch against this document: failing here is Berth's bug.
            throw Failure(field: nil, message: "internal error, the patch does not apply: \(error)")
        }
        return Result(patch: patch, mutated: mutated, pods: pods)
    }

    private func collect(_ document: JSON, at base: JSONPointer, into pods: inout [(path: JSONPointer, mutation: Mutation)]) throws(Failure) {
        let here = base.tokens.isEmpty ? "" : base.tokens.joined(separator: ".") + "."
        guard document.objectValue != nil else {
            throw Failure(field: nil, message: "expected a Kubernetes object, found \(document.typeName)")
        }
        guard let kind = document["kind"]?.stringValue, !kind.isEmpty else {
            throw Failure(field: "\(here)kind", message: "is missing: every document needs apiVersion and kind")
        }
        let namespace = document["metadata"]?["namespace"]?.stringValue ?? defaultNamespace
        do {
            if kind == "Pod" {
                pods.append((base, try policy.mutation(for: document, namespace: namespace, at: base)))
            } else if kind.hasSuffix("List"), let items = document["items"] {
                guard let elements = items.arrayValue else {
                    throw Failure(field: "\(here)items", message: "expected a list, found \(items.typeName)")
                }
                for (index, item) in elements.enumerated() {
                    try collect(item, at: base.appending("items").appending(index), into: &pods)
                }
            } else if let tokens = Self.templatePaths[kind] {
                var template: JSON? = document
                for token in tokens { template = template?[token] }
                guard let template, template.objectValue != nil else {
                    throw Failure(field: here + tokens.joined(separator: "."), message: "is missing or not an object")
                }
                // The template's pods will be created in the workload's namespace.
                let mutation = try policy.mutation(
                    for: template, namespace: namespace, at: base.appending(JSONPointer(tokens)), isDaemonSetTemplate: kind == "DaemonSet")
                pods.append((base.appending(JSONPointer(tokens)), mutation))
            }
        } catch let error as PodShapeError {
            throw Failure(field: error.field, message: error.message)
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(field: nil, message: "\(error)")
        }
    }
}
