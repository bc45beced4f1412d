import BerthKube
import BerthModel
import Foundation

/// A test double of the kubelet (and the NVIDIA device plugin) acting on a `FakeKubeAPIServer`:
/// registers a Node for a launched instance, advertises `nvidia.com/gpu` later (the device plugin
/// registers with the kubelet after the driver loads, so GPUs appear in allocatable some time
/// after the node is Ready), and "runs" the pods bound to its nodes (Running + Ready).
/// Upstream: the kubelet's node status (pkg/kubelet/kubelet_node_status.go) creates the Node with
/// capacity/allocatable and conditions; extended resources appear when a device plugin registers.
public struct FakeKubelet: Sendable {
    public let server: FakeKubeAPIServer

    public init(server: FakeKubeAPIServer) { self.server = server }

    /// The Node a kubelet registers: labels, taints (`--register-with-taints`), providerID, Ready.
    /// `capacity` holds cpu/memory/pods; GPUs are not in it until `advertise` is called.
    @discardableResult
    public func registerNode(name: String, providerID: String = "", labels: [String: String] = [:], taints: [Taint] = [],
                             capacity: [String: String] = ["cpu": "4", "memory": "16Gi", "pods": "110"], ready: Bool = true) -> JSON {
        var labelObject: JSONObject = ["kubernetes.io/hostname": .string(name), "kubernetes.io/os": "linux"]
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { labelObject[key] = .string(value) }
        var resources = JSONObject()
        for (key, value) in capacity.sorted(by: { $0.key < $1.key }) { resources[key] = .string(value) }
        var spec: JSONObject = [:]
        if !providerID.isEmpty { spec["providerID"] = .string(providerID) }
        if !taints.isEmpty { spec["taints"] = .array(taints.map(\.json)) }
        // Identifiers a kubelet reads from the machine, derived from the name so they are stable.
        let digest = String(UInt64(truncatingIfNeeded: name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }), radix: 16)
        let hex = String(repeating: "0", count: max(0, 16 - digest.count)) + digest
        let uuid = "\(hex.prefix(8))-\(hex.dropFirst(8).prefix(4))-4\(hex.dropFirst(13).prefix(3))-8000-\(hex.suffix(12))"
        let octets = hex.utf8.prefix(2).map { Int($0) % 250 + 1 }
        let node: JSON = [
            "apiVersion": "v1", "kind": "Node",
            "metadata": ["name": .string(name), "labels": .object(labelObject)],
            "spec": .object(spec),
            "status": [
                "capacity": .object(resources), "allocatable": .object(resources),
                "conditions": Self.conditions(ready: ready),
                "addresses": [["type": "InternalIP", "address": .string("10.0.\(octets[0]).\(octets[1])")], ["type": "Hostname", "address": .string(name)]],
                "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
                // Every field of NodeSystemInfo: clients' typed models require them all.
                "nodeInfo": [
                    "machineID": .string(hex + hex), "systemUUID": .string(uuid), "bootID": .string(uuid),
                    "kernelVersion": "6.1.0-berth-simulated", "osImage": "Amazon Linux 2023 (Berth simulated)",
                    "containerRuntimeVersion": "containerd://2.1.0", "kubeletVersion": "v1.31.0-fake", "kubeProxyVersion": "",
                    "operatingSystem": "linux", "architecture": .string(labels["kubernetes.io/arch"] ?? "amd64"),
                ],
            ],
        ]
        return server.write(.nodes, node)
    }

    /// Adds (or changes) an extended resource in capacity and allocatable, as a device plugin does.
    public func advertise(node: String, resource: String = "nvidia.com/gpu", quantity: Int) {
        server.modify(.nodes, name: node) { object in
            guard case .object(var top) = object else { return }
            var status = top["status"]?.objectValue ?? JSONObject()
            for field in ["capacity", "allocatable"] {
                var list = status[field]?.objectValue ?? JSONObject()
                list[resource] = .string(String(quantity))
                status[field] = .object(list)
            }
            top["status"] = .object(status)
            object = .object(top)
        }
    }

    public func setReady(node: String, _ ready: Bool) {
        server.modify(.nodes, name: node) { object in
            guard case .object(var top) = object else { return }
            var status = top["status"]?.objectValue ?? JSONObject()
            status["conditions"] = Self.conditions(ready: ready)
            top["status"] = .object(status)
            object = .object(top)
        }
    }

    /// What the node lifecycle controller writes once a kubelet stops posting (its machine shut
    /// down): every condition `Unknown`, reason `NodeStatusUnknown`. The Node object stays.
    public func stopPosting(node: String) {
        server.modify(.nodes, name: node) { object in
            guard case .object(var top) = object else { return }
            var status = top["status"]?.objectValue ?? JSONObject()
            let now = JSON.string(RFC3339.string(Date()))
            status["conditions"] = .array((status["conditions"]?.arrayValue ?? []).map { condition in
                guard case .object(var fields) = condition else { return condition }
                fields["status"] = "Unknown"
                fields["reason"] = "NodeStatusUnknown"
                fields["message"] = "Kubelet stopped posting node status."
                fields["lastTransitionTime"] = now
                return .object(fields)
            })
            top["status"] = .object(status)
            object = .object(top)
        }
    }

    /// A launched instance joins the cluster: the Node appears after `registerAfter`, its GPUs
    /// after a further `gpusAfter` (sleeping on `clock`, so a test clock controls it).
    public func launch<C: Clock<Duration>>(name: String, providerID: String, labels: [String: String] = [:], taints: [Taint] = [],
                                           capacity: [String: String] = ["cpu": "4", "memory": "16Gi", "pods": "110"],
                                           gpus: Int, registerAfter: Duration, gpusAfter: Duration, clock: C) async throws {
        try await clock.sleep(for: registerAfter)
        registerNode(name: name, providerID: providerID, labels: labels, taints: taints, capacity: capacity)
        guard gpus > 0 else { return }
        try await clock.sleep(for: gpusAfter)
        advertise(node: name, quantity: gpus)
    }

    /// Starts the pods bound to `node` that are not running yet: phase Running, Ready True.
    @discardableResult
    public func runPods(on node: String) -> [String] {
        var started: [String] = []
        for object in server.objects(.pods) where object["spec"]?["nodeName"]?.stringValue == node
            && object["status"]?["phase"]?.stringValue != "Running" && object["metadata"]?["deletionTimestamp"] == nil {
            let namespace = object["metadata"]?["namespace"]?.stringValue
            let name = object["metadata"]?["name"]?.stringValue ?? ""
            server.modify(.pods, namespace: namespace, name: name) { pod in
                guard case .object(var top) = pod else { return }
                var status = top["status"]?.objectValue ?? JSONObject()
                status["phase"] = "Running"
                var conditions = (status["conditions"]?.arrayValue ?? []).filter { $0["type"]?.stringValue != "Ready" }
                conditions.append(["type": "Ready", "status": "True"])
                status["conditions"] = .array(conditions)
                top["status"] = .object(status)
                pod = .object(top)
            }
            started.append(namespace.map { "\($0)/\(name)" } ?? name)
        }
        return started
    }

    /// The conditions a kubelet reports: no pressure, and Ready as told.
    static func conditions(ready: Bool) -> JSON {
        let now = JSON.string(RFC3339.string(Date()))
        var conditions: [JSON] = []
        for (type, reason, message) in [("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                                        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available")] {
            conditions.append(["type": .string(type), "status": "False", "reason": .string(reason), "message": .string(message),
                               "lastHeartbeatTime": now, "lastTransitionTime": now])
        }
        var readyCondition = readyCondition(ready)
        if case .object(var object) = readyCondition {
            object["message"] = .string(ready ? "kubelet is posting ready status" : "container runtime network not ready")
            readyCondition = .object(object)
        }
        conditions.append(readyCondition)
        return .array(conditions)
    }

    static func readyCondition(_ ready: Bool) -> JSON {
        ["type": "Ready", "status": .string(ready ? "True" : "False"), "reason": .string(ready ? "KubeletReady" : "KubeletNotReady"),
         "lastHeartbeatTime": .string(RFC3339.string(Date())), "lastTransitionTime": .string(RFC3339.string(Date()))]
    }
}
