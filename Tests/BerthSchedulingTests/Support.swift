import BerthAdmission
import BerthModel
import BerthScheduling
import Testing

/// A pod as a user writes it, passed through the webhook's mutation (as the provisioner sees it).
func pod(
    _ name: String, namespace: String = "ml", notebook: Bool = false, gpus: Int = 1, gpuResource: String = "nvidia.com/gpu",
    cpu: String? = nil, memory: String? = nil, annotations: [String: String] = [:], nodeSelector: [String: String] = [:],
    required: [[LabelRequirement]] = [], mutate: Bool = true
) throws -> JSON {
    var metadata: JSONObject = ["name": .string(name), "namespace": .string(namespace)]
    if notebook { metadata["labels"] = ["component": "singleuser-server", "app": "jupyterhub"] }
    if !annotations.isEmpty { metadata["annotations"] = .object(JSONObject(annotations.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .string($0.value)) })) }
    var requests = JSONObject()
    if let cpu { requests["cpu"] = .string(cpu) }
    if let memory { requests["memory"] = .string(memory) }
    var resources: JSONObject = ["requests": .object(requests)]
    if gpus > 0 { resources["limits"] = .object([gpuResource: .number(gpus)]) }
    var spec: JSONObject = ["containers": [["name": "main", "image": "python:3.12", "resources": .object(resources)]]]
    if !nodeSelector.isEmpty { spec["nodeSelector"] = .object(JSONObject(nodeSelector.map { .init(key: $0.key, value: .string($0.value)) })) }
    if !required.isEmpty {
        let terms = required.map { term -> JSON in ["matchExpressions": .array(term.map(\.json))] }
        spec["affinity"] = ["nodeAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": ["nodeSelectorTerms": .array(terms)]]]
    }
    let document: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": .object(metadata), "spec": .object(spec)]
    guard mutate else { return document }
    return try ManifestMutator(policy: MutationPolicy()).mutate(document).mutated
}

func requirements(_ pods: [JSON], zones: [String]? = nil) throws -> [PodRequirements] {
    var result: [PodRequirements] = []
    for pod in pods { result.append(try PodRequirements(pod: pod, volumeZones: zones)) }
    return result
}

func solve(_ pods: [PodRequirements], pools: [Pool] = [.default], nodes: [NodeState] = [], unavailable: Set<OfferingKey> = []) -> SchedulingPlan {
    Scheduler(catalog: .builtIn(), pools: pools).solve(pending: pods, nodes: nodes, unavailableOfferings: unavailable)
}

extension SchedulingPlan {
    var instanceTypes: [String] { nodes.map(\.instanceType) }
}
