import BerthKube
import BerthKubeSim
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Logging

/// Plays the simulated cloud's instances as Kubernetes Nodes on the embedded API server: what the
/// kubelet, the NVIDIA device plugin, kube-scheduler and the cloud-controller-manager do in a real
/// cluster. Each ``step()`` (at the clock's now):
/// - an instance past its `readyAt` registers its Node (Ready, with the labels and taints the
///   launch asked for; `nvidia.com/gpu` not yet allocatable);
/// - past its `gpusAt` the device plugin advertises the GPUs (never, if the cloud is configured so);
/// - a stopping or stopped instance's kubelet no longer posts: its Node's conditions turn
///   `Unknown` (NotReady; the node lifecycle controller's doing) and the Node object stays, with
///   its name, labels and taints — the instance keeps its id and address; once the instance is
///   `stopped` the cloud-controller-manager taints it ``shutdownTaint`` (until it is Ready again);
/// - once a started instance is past its new `readyAt` its kubelet posts Ready again, with no GPU
///   allocatable (the kubelet zeroes device-plugin resources at start until the plugin
///   re-registers), and past its new `gpusAt` the device plugin advertises them again;
/// - a terminated instance's Node is deleted (the cloud-controller-manager's job);
/// - pending pods are bound where they fit, or marked `PodScheduled=False/Unschedulable`;
/// - pods bound to a node are started (Running, Ready).
public struct SimulatedNodes<C: Clock<Duration>>: Sendable {
    public let server: FakeKubeAPIServer
    public let cloud: SimulatedCloud<C>
    public let overhead: NodeOverhead
    private let logger: Logger

    public init(server: FakeKubeAPIServer, cloud: SimulatedCloud<C>, overhead: NodeOverhead = NodeOverhead(),
                logger: Logger = Logger(label: "berth.simulated.kubelet")) {
        self.server = server
        self.cloud = cloud
        self.overhead = overhead
        self.logger = logger
    }

    /// The Node name of an instance: EC2-style private DNS names, derived from the instance id.
    public static func nodeName(providerID: String) -> String {
        let id = ProviderID(providerID)?.instanceID ?? providerID
        return "ip-\(id.suffix(8)).sim.internal"
    }

    /// What the cloud-controller-manager's node lifecycle controller puts on a NotReady Node whose
    /// instance the cloud reports shut down (EC2: `stopped`), and takes off once it is Ready again;
    /// the Node itself is kept (only a terminated instance's is deleted).
    public static var shutdownTaint: Taint { Taint(key: "node.cloudprovider.kubernetes.io/shutdown", effect: "NoSchedule") }

    static func hasShutdownTaint(_ node: JSON) -> Bool {
        node["spec"]?["taints"]?.arrayValue?.contains { $0["key"]?.stringValue == shutdownTaint.key } == true
    }

    private func setShutdownTaint(_ name: String, present: Bool) {
        server.modify(.nodes, name: name) { object in
            guard case .object(var top) = object else { return }
            var spec = top["spec"]?.objectValue ?? JSONObject()
            var taints = (spec["taints"]?.arrayValue ?? []).filter { $0["key"]?.stringValue != Self.shutdownTaint.key }
            if present { taints.append(Self.shutdownTaint.json) }
            spec["taints"] = .array(taints)
            top["spec"] = .object(spec)
            object = .object(top)
        }
    }

    public func step() async {
        let kubelet = FakeKubelet(server: server)
        let now = cloud.wallTime.clock.now
        let nodes = Dictionary(server.objects(.nodes).compactMap { object -> (String, JSON)? in
            guard let id = object["spec"]?["providerID"]?.stringValue, !id.isEmpty else { return nil }
            return (id, object)
        }, uniquingKeysWith: { first, _ in first })
        for record in await cloud.allRecords() {
            let providerID = record.instance.providerID
            let name = Self.nodeName(providerID: providerID)
            if let terminatedAt = record.terminatedAt, terminatedAt <= now {
                if nodes[providerID] != nil {
                    server.remove(.nodes, name: name)
                    logger.info("node \(name) removed: its instance is terminated", metadata: ["providerID": "\(providerID)"])
                }
                continue
            }
            guard let boot = try? await cloud.boot(of: providerID) else { continue }
            let node = nodes[providerID]
            let readyStatus = node?["status"]?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Ready" }?["status"]?.stringValue
            if boot.stoppedAt != nil {  // being stopped (from the stop on) or stopped
                guard let node else { continue }
                if readyStatus != "Unknown" {
                    kubelet.stopPosting(node: name)
                    logger.info("node \(name) NotReady: its instance is stopping, the kubelet stopped posting", metadata: ["providerID": "\(providerID)"])
                }
                if let stoppedAt = boot.stoppedAt, now >= stoppedAt, !Self.hasShutdownTaint(node) {
                    setShutdownTaint(name, present: true)
                    logger.info("node \(name) tainted \(Self.shutdownTaint): its instance is stopped", metadata: ["providerID": "\(providerID)"])
                }
                continue
            }
            let gpus = node?["status"]?["allocatable"]?["nvidia.com/gpu"]?.stringValue
            if node == nil {
                guard now >= boot.readyAt else { continue }
                var capacity = overhead.allocatable(boot.instanceType) + overhead.daemonSets
                capacity.gpus = 0
                kubelet.registerNode(
                    name: name, providerID: providerID, labels: boot.labels, taints: boot.taints,
                    capacity: ["cpu": "\(capacity.cpuMilli)m", "memory": "\(capacity.memory)", "pods": "\(capacity.pods)",
                               "ephemeral-storage": "\(capacity.ephemeralStorage)"])
                logger.info("node \(name) registered and Ready", metadata: ["providerID": "\(providerID)", "instanceType": "\(boot.instanceType.name)"])
            } else if readyStatus == "Unknown" {
                // Started again: the kubelet posts once the instance has booted.
                guard now >= boot.readyAt else { continue }
                kubelet.setReady(node: name, true)
                if boot.instanceType.gpuCount > 0 { kubelet.advertise(node: name, quantity: 0) }
                if let node, Self.hasShutdownTaint(node) { setShutdownTaint(name, present: false) }
                logger.info("node \(name) Ready again: its instance was started", metadata: ["providerID": "\(providerID)", "cycle": "\(boot.cycle)"])
            } else if let gpusAt = boot.gpusAt, now >= gpusAt, boot.instanceType.gpuCount > 0, gpus == nil || gpus == "0" {
                kubelet.advertise(node: name, quantity: boot.instanceType.gpuCount)
                logger.info("node \(name): the device plugin advertises \(boot.instanceType.gpuCount) nvidia.com/gpu")
            }
        }
        let outcome = FakeScheduler(server: server).schedulePendingPods()
        for (pod, node) in outcome.bound.sorted(by: { $0.key < $1.key }) {
            logger.info("pod \(pod) bound to \(node)")
        }
        for node in Set(outcome.bound.values).union(server.objects(.nodes).compactMap { $0["metadata"]?["name"]?.stringValue }) {
            for pod in kubelet.runPods(on: node) { logger.info("pod \(pod) running on \(node)") }
        }
    }
}
