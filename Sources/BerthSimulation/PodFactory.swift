import BerthAdmission
import BerthModel
import BerthScheduling

/// Turns a trace row into the pod the scheduler sees, as each policy's admission leaves it: the
/// Berth webhook's mutation (`berth`), or the stock admission chain with EKS's
/// ExtendedResourceToleration plugin, which gives every pod requesting `nvidia.com/gpu` the
/// toleration `nvidia.com/gpu:NoSchedule (Exists)` (the baselines). Rows of one shape share one
/// mutation, so a 50,000-pod trace runs the policy a few dozen times.
struct PodFactory {
    struct Admitted {
        var requirements: PodRequirements
        var doNotDisrupt: Bool
    }

    let mutate: Bool
    let config: WebhookConfig
    private let mutator: ManifestMutator
    private var cache: [String: Admitted] = [:]

    /// `config` is the webhook's (GPU resources and notebook selectors also tell every policy
    /// which pods are GPU pods and notebooks).
    init(mutate: Bool, config: WebhookConfig = WebhookConfig()) {
        self.mutate = mutate
        self.config = config
        self.mutator = ManifestMutator(policy: MutationPolicy(config: config))
    }

    mutating func admit(_ pod: TracePod) throws -> Admitted {
        let shape = "\(pod.namespace)|\(pod.kind.rawValue)|\(pod.gpus)|\(pod.gpuType)|\(pod.cpu)|\(pod.memoryGiB)|\(pod.toleratesAll)"
        var admitted: Admitted
        if let cached = cache[shape] {
            admitted = cached
        } else {
            var json = Self.json(for: pod, extendedResourceToleration: !mutate)
            if mutate { json = try mutator.mutate(json).mutated }
            let requirements = try PodRequirements(pod: json, config: config)
            let doNotDisrupt = json["metadata"]?["annotations"]?[config.doNotDisruptAnnotation]?.stringValue == "true"
            admitted = Admitted(requirements: requirements, doNotDisrupt: doNotDisrupt)
            cache[shape] = admitted
        }
        admitted.requirements.namespace = pod.namespace
        admitted.requirements.name = pod.name
        return admitted
    }

    /// The pod as its owner (JupyterHub, a training operator, Airflow) creates it.
    static func json(for pod: TracePod, extendedResourceToleration: Bool) -> JSON {
        var labels = JSONObject()
        switch pod.kind {
        case .notebook:
            labels["component"] = "singleuser-server"
            labels["app"] = "jupyterhub"
        case .job where pod.gpus == 0:
            labels["dag_id"] = "etl"
            labels["task_id"] = "task"
            labels["kubernetes_pod_operator"] = "True"
        case .job: labels["app"] = "train"
        case .service: labels["app"] = "serving"
        }
        var requests = JSONObject()
        requests["cpu"] = .string("\(Int64((pod.cpu * 1000).rounded()))m")
        requests["memory"] = .string("\(Int64((pod.memoryGiB * 1024).rounded()))Mi")
        var resources = JSONObject()
        resources["requests"] = .object(requests)
        if pod.gpus > 0 { resources["limits"] = .object(["nvidia.com/gpu": .string(String(pod.gpus))]) }
        var spec = JSONObject()
        spec["containers"] = [.object(["name": "main", "image": "app", "resources": .object(resources)])]
        var tolerations: [JSON] = []
        if pod.toleratesAll { tolerations.append(["operator": "Exists"]) }
        if extendedResourceToleration && pod.gpus > 0 {
            tolerations.append(["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"])
        }
        if !tolerations.isEmpty { spec["tolerations"] = .array(tolerations) }
        if !pod.gpuType.isEmpty { spec["nodeSelector"] = .object([WellKnownLabel.gpuName: .string(pod.gpuType)]) }
        return .object([
            "apiVersion": "v1", "kind": "Pod",
            "metadata": .object(["name": .string(pod.name), "namespace": .string(pod.namespace), "labels": .object(labels)]),
            "spec": .object(spec),
        ])
    }
}
