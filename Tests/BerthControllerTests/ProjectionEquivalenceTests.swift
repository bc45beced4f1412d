import BerthAdmission
import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthProvisioner
import Testing

/// The provisioner's informers keep a projection of pods and nodes: read through it, every pod
/// and node must give exactly the snapshot the whole object gives — or a field the core or the
/// webhook's classification reads has been left out.
@Suite struct ProjectionEquivalenceTests {
    static func project(_ object: JSON, _ selection: JSONSelection) throws -> JSON {
        try JSONTape(parsing: JSONWriter.bytes(object), selecting: selection).root.json
    }

    @Test func podsReadTheSameThroughTheProjection() throws {
        let webhook = WebhookConfig()
        var pods: [JSON] = (0..<200).map { RealisticObjects.pod($0, nodes: 20) }
        // What the provisioner acts on: notebooks (mutated by the webhook), pending and
        // unschedulable, terminating, DaemonSet and mirror pods, do-not-disrupt, a claim, sidecars.
        pods.append(try notebookPod("alice", claim: "home-alice"))
        var pending = try notebookPod("bob", annotations: ["karpenter.sh/do-not-disrupt": "true"])
        setPath(&pending, ["status"], ["phase": "Pending", "conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"]]])
        setPath(&pending, ["spec", "nodeSelector"], ["topology.kubernetes.io/zone": "us-east-1a", "nvidia.com/gpu.present": "true"])
        setPath(&pending, ["spec", "overhead"], ["cpu": "250m"])
        setPath(&pending, ["spec", "initContainers"], [["name": "proxy", "image": "envoy", "restartPolicy": "Always", "resources": ["requests": ["cpu": "100m"]]],
                                                       ["name": "init", "image": "busybox", "resources": ["requests": ["memory": "64Gi"]]]])
        pods.append(pending)
        var daemon = cpuPod("dp-x", namespace: "kube-system", node: "n1")
        setPath(&daemon, ["metadata", "ownerReferences"], [["kind": "DaemonSet", "name": "dp", "apiVersion": "apps/v1", "uid": "u"]])
        pods.append(daemon)
        pods.append(cpuPod("mirror", namespace: "kube-system", node: "n1", annotations: ["kubernetes.io/config.mirror": "abc"]))
        var terminating = cpuPod("going", node: "n1")
        setPath(&terminating, ["metadata", "deletionTimestamp"], "2026-12-01T00:00:00Z")
        pods.append(terminating)
        // Pods tied to other pods (issue 16's constraints) and a launch intent: all of it must survive.
        var tied = cpuPod("tied", node: "")
        setPath(&tied, ["metadata", "labels"], ["app": "trainer", "team": "ml"])
        setPath(&tied, ["metadata", "annotations"], ["berth.dev/launch-id": "berth-abc", "berth.dev/launch-time": "2026-12-01T00:00:00Z"])
        setPath(&tied, ["spec", "affinity"], [
            "podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [["labelSelector": ["matchLabels": ["app": "trainer"]], "topologyKey": "kubernetes.io/hostname"]]],
            "podAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [["labelSelector": ["matchLabels": ["team": "ml"]], "topologyKey": "topology.kubernetes.io/zone"]]],
        ])
        setPath(&tied, ["spec", "topologySpreadConstraints"], [["maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": ["matchLabels": ["app": "trainer"]]]])
        setPath(&tied, ["spec", "containers"], [[
            "name": "main", "image": "trainer", "ports": [["containerPort": 8888, "hostPort": 8888, "protocol": "TCP"]],
            "resources": ["requests": ["cpu": "1", "memory": "1Gi"]],
        ]])
        pods.append(tied)
        let tiedSnapshot = KubeCluster.podSnapshot(tied, webhook: webhook)
        #expect(tiedSnapshot?.invalid == nil && tiedSnapshot?.requirements.interPod.spread.count == 1
            && tiedSnapshot?.requirements.interPod.hostPorts.count == 1 && tiedSnapshot?.requirements.interPod.antiAffinity.count == 1
            && tiedSnapshot?.launchIntent != nil, "\(String(describing: tiedSnapshot))")
        var broken = cpuPod("broken", node: "n1")
        setPath(&broken, ["spec", "tolerations"], "not a list")
        pods.append(broken)
        let selection = KubeCluster.podSelection
        for pod in pods {
            var whole = KubeCluster.podSnapshot(pod, webhook: webhook)
            var projected = KubeCluster.podSnapshot(try Self.project(pod, selection), webhook: webhook)
            // Dictionaries print in an order of their own: labels compared as values, the rest as text.
            #expect(whole?.requirements.labels == projected?.requirements.labels)
            whole?.requirements.labels = [:]
            projected?.requirements.labels = [:]
            #expect(String(describing: whole) == String(describing: projected), "\(pod["metadata"]?["name"]?.stringValue ?? "?")")
            #expect(whole != nil)
        }
        // And it is small: managedFields, env, probes, statuses are gone. (A fifth: creationTimestamp
        // is kept since warm capacity measures notebooks' waits from it.)
        let realistic = RealisticObjects.pod(3, nodes: 20)
        let projected = try Self.project(realistic, selection)
        #expect(projected["metadata"]?["managedFields"] == nil && projected["status"]?["containerStatuses"] == nil)
        #expect(projected["spec"]?["containers"]?[0]?["env"] == nil)
        #expect(JSONWriter.bytes(projected).count * 5 < JSONWriter.bytes(realistic).count)
    }

    @Test func nodesReadTheSameThroughTheProjection() throws {
        var nodes: [JSON] = (0..<50).map { RealisticObjects.node($0) }
        var berthNode = RealisticObjects.node(99)
        setPath(&berthNode, ["spec", "taints"], [["key": "berth.dev/disrupted", "effect": "NoSchedule"]])
        setPath(&berthNode, ["spec", "unschedulable"], true)
        setPath(&berthNode, ["metadata", "annotations", "karpenter.sh/do-not-disrupt"], "true")
        setPath(&berthNode, ["metadata", "deletionTimestamp"], "2026-12-01T00:00:00Z")
        nodes.append(berthNode)
        for node in nodes {
            var whole = KubeCluster.nodeSnapshot(try Node(json: node), gpuResource: "nvidia.com/gpu")
            var projected = KubeCluster.nodeSnapshot(try Node(json: try Self.project(node, KubeCluster.nodeSelection)), gpuResource: "nvidia.com/gpu")
            // Dictionaries print in an order of their own: labels compared as values, the rest as text.
            #expect(whole.labels == projected.labels && !whole.labels.isEmpty)
            whole.labels = [:]
            projected.labels = [:]
            #expect(String(describing: whole) == String(describing: projected))
        }
        let projected = try Self.project(RealisticObjects.node(1), KubeCluster.nodeSelection)
        #expect(projected["status"]?["images"] == nil && projected["status"]?["nodeInfo"] == nil && projected["metadata"]?["managedFields"] == nil)
    }
}

/// Sets a value at a path of objects, creating them as needed.
func setPath(_ object: inout JSON, _ path: [String], _ value: JSON) {
    guard let first = path.first else { object = value; return }
    var members = object.objectValue ?? JSONObject()
    var child = members[first] ?? .object([:])
    setPath(&child, Array(path.dropFirst()), value)
    members[first] = child
    object = .object(members)
}
