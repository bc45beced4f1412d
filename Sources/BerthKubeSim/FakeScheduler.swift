import BerthKube
import BerthModel

/// A test double of kube-scheduler acting on a `FakeKubeAPIServer`: binds each pending pod to the
/// first node (by name) that fits, or marks it `PodScheduled=False, reason Unschedulable` — the
/// condition Berth's provisioner watches for, as Karpenter does. Fit is the scheduler's filter
/// plugins that matter for GPU notebooks (k8s.io/kubernetes pkg/scheduler/framework/plugins):
/// NodeUnschedulable, TaintToleration (NoSchedule/NoExecute), NodeAffinity (nodeSelector and
/// required terms: terms ORed, expressions ANDed), NodeResourcesFit (requests against allocatable
/// minus the requests of pods already on the node). No scoring, preemption or pod affinity.
public struct FakeScheduler: Sendable {
    public let server: FakeKubeAPIServer

    public init(server: FakeKubeAPIServer) { self.server = server }

    public struct Outcome: Sendable, Equatable {
        public var bound: [String: String] = [:]
        public var unschedulable: [String] = []
    }

    @discardableResult
    public func schedulePendingPods() -> Outcome {
        var outcome = Outcome()
        let nodes = server.objects(.nodes).compactMap { try? Node(json: $0) }.sorted { $0.metadata.name < $1.metadata.name }
        var pods = server.objects(.pods).compactMap { try? Pod(json: $0) }
        var used: [String: [String: Quantity]] = [:]
        var counts: [String: Int] = [:]
        for pod in pods where !pod.nodeName.isEmpty && !["Succeeded", "Failed"].contains(pod.phase) {
            for (name, quantity) in pod.requests { used[pod.nodeName, default: [:]][name, default: .zero] = used[pod.nodeName, default: [:]][name, default: .zero] + quantity }
            counts[pod.nodeName, default: 0] += 1
        }
        pods.sort { $0.metadata.key < $1.metadata.key }
        for pod in pods where pod.nodeName.isEmpty && !pod.isTerminating && pod.schedulerName == "default-scheduler" {
            let key = pod.metadata.key
            guard let node = nodes.first(where: { Self.fits(pod, $0, used: used[$0.metadata.name] ?? [:], podCount: counts[$0.metadata.name] ?? 0) }) else {
                markUnschedulable(pod)
                outcome.unschedulable.append(key)
                continue
            }
            server.modify(.pods, namespace: pod.metadata.namespace, name: pod.metadata.name) { object in
                guard case .object(var top) = object else { return }
                var spec = top["spec"]?.objectValue ?? JSONObject()
                spec["nodeName"] = .string(node.metadata.name)
                top["spec"] = .object(spec)
                var status = top["status"]?.objectValue ?? JSONObject()
                var conditions = (status["conditions"]?.arrayValue ?? []).filter { $0["type"]?.stringValue != "PodScheduled" }
                conditions.append(["type": "PodScheduled", "status": "True"])
                status["conditions"] = .array(conditions)
                top["status"] = .object(status)
                object = .object(top)
            }
            for (name, quantity) in pod.requests { used[node.metadata.name, default: [:]][name, default: .zero] = used[node.metadata.name, default: [:]][name, default: .zero] + quantity }
            counts[node.metadata.name, default: 0] += 1
            outcome.bound[key] = node.metadata.name
        }
        return outcome
    }

    /// Whether `pod` fits `node` given what is already placed there.
    public static func fits(_ pod: Pod, _ node: Node, used: [String: Quantity], podCount: Int) -> Bool {
        guard node.isReady, !node.unschedulable, node.metadata.deletionTimestamp == nil else { return false }
        for taint in node.taints where taint.effect == "NoSchedule" || taint.effect == "NoExecute" {
            if !pod.tolerations.contains(where: { $0.tolerates(taint) }) { return false }
        }
        let labels = node.metadata.labels
        for (key, value) in pod.nodeSelector where labels[key] != value { return false }
        if !pod.requiredNodeAffinity.isEmpty && !pod.requiredNodeAffinity.contains(where: { term in
            !term.isEmpty && term.allSatisfy { $0.matches(labels) }
        }) { return false }
        if let pods = node.allocatable["pods"], Quantity(Int64(podCount + 1)) > pods { return false }
        for (name, request) in pod.requests where request > .zero {
            let available = (node.allocatable[name] ?? .zero) - (used[name] ?? .zero)
            if request > available { return false }
        }
        return true
    }

    private func markUnschedulable(_ pod: Pod) {
        if pod.unschedulableReason == "Unschedulable" { return }
        server.modify(.pods, namespace: pod.metadata.namespace, name: pod.metadata.name) { object in
            guard case .object(var top) = object else { return }
            var status = top["status"]?.objectValue ?? JSONObject()
            var conditions = (status["conditions"]?.arrayValue ?? []).filter { $0["type"]?.stringValue != "PodScheduled" }
            conditions.append(["type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": "0/N nodes are available (fake scheduler)"])
            status["conditions"] = .array(conditions)
            top["status"] = .object(status)
            object = .object(top)
        }
    }
}
