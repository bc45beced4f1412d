import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation

/// Berth's real decision code (`ProvisionerCore`) and the simulated cloud, as the runtime wires
/// them: each round gets a snapshot of the live pods and the nodes, its actions are carried out on
/// the simulated cluster and cloud, and their outcomes are recorded back.
final class BerthRuntime {
    var core: ProvisionerCore
    let clock = ManualClock()
    let cloud: SimulatedCloud<ManualClock>
    let epoch = SimulatedCloudConfiguration.defaultEpoch
    var nodeByLaunch: [String: Int] = [:]
    var nodeByProviderID: [String: Int] = [:]
    var poked = false
    var listDue = false
    var wakeAt: Double?
    var rounds = 0
    var lastRound = -Double.infinity
    /// A round at least this often (seconds) even when nothing happens, for garbage collection.
    static let resync = 600.0

    init(options: SimulationOptions, config: ProvisionerConfig) {
        core = ProvisionerCore(config: config, catalog: options.catalog, seed: options.seed)
        cloud = SimulatedCloud(configuration: options.cloudConfiguration, clock: clock)
    }
}

extension ClusterSimulation {
    func berthRound() async {
        guard let runtime = berth else { return }
        runtime.poked = false
        let list = runtime.listDue
        runtime.listDue = false
        runtime.rounds += 1
        runtime.lastRound = now
        bringToNow(runtime.clock)
        let date = runtime.epoch.addingTimeInterval(now)

        var podSnapshots: [PodSnapshot] = []
        podSnapshots.reserveCapacity(live.count)
        for index in live {
            let pod = pods[index]
            let nodeName = pod.node >= 0 ? nodes[pod.node].name : ""
            // Bound but still pulling its image: Pending (ContainerCreating), as the API shows it.
            podSnapshots.append(PodSnapshot(
                key: pod.key, nodeName: nodeName, phase: pod.state == .running && pod.startedAt <= now ? .running : .pending, doNotDisrupt: pod.doNotDisrupt,
                unschedulable: pod.node < 0 && pod.unschedulable, requirements: pod.requirements,
                createdAt: runtime.epoch.addingTimeInterval(pod.createdAt)))
        }
        var nodeSnapshots: [NodeSnapshot] = []
        for id in liveNodes {
            let node = nodes[id]
            if imagePuller && node.isGPU && node.labels[ProvisionerCore.poolLabel] != nil && !node.down, let pulled = node.imageReadyAt {
                // The image puller's pod there: Running once the images are pulled.
                podSnapshots.append(PodSnapshot(
                    key: "berth/image-puller-\(node.name)", nodeName: node.name, phase: pulled <= now ? .running : .pending, daemon: true,
                    requirements: Self.pullerRequirements(node.name)))
            }
            nodeSnapshots.append(NodeSnapshot(
                name: node.name, providerID: node.providerID, labels: node.labels, taints: node.taints,
                ready: node.ready, allocatable: node.allocatable))
        }
        var instances: [CloudInstance]?
        if list {
            instances = try? await runtime.cloud.list(clusterTag: runtime.core.config.clusterName)
        }
        let actions = runtime.core.reconcile(ClusterSnapshot(pods: podSnapshots, nodes: nodeSnapshots, cloudInstances: instances), now: date)
        for action in actions { await carryOut(action, runtime: runtime, date: date) }

        if let wake = runtime.core.nextWakeup(after: date) {
            var time = wake.timeIntervalSince(runtime.epoch)
            if time <= now { time = now + 1 }
            if runtime.wakeAt.map({ time < $0 }) ?? true {
                runtime.wakeAt = time
                queue.push(.berthWake, at: time)
            }
        }
    }

    private func carryOut(_ action: ProvisionerAction, runtime: BerthRuntime, date: Date) async {
        switch action {
        case let .launch(request):
            do {
                let instance = try await runtime.cloud.create(request)
                runtime.core.record(.launched(launchID: request.launchID, instance), now: date)
                guard runtime.nodeByLaunch[request.launchID] == nil else { return }
                let id = addNode(launched: instance, boot: try await runtime.cloud.boot(of: instance.providerID))
                runtime.nodeByLaunch[request.launchID] = id
                runtime.nodeByProviderID[instance.providerID] = id
            } catch {
                runtime.core.record(.launchFailed(launchID: request.launchID, error), now: date)
            }
        case let .terminate(providerID, _, _):
            do {
                try await runtime.cloud.delete(providerID: providerID)
                if let id = runtime.nodeByProviderID[providerID] { terminate(id) }
                runtime.core.record(.terminated(providerID: providerID), now: date)
            } catch {
                runtime.core.record(.terminateFailed(providerID: providerID, error), now: date)
            }
        case let .updateNode(name, labels, removeLabels, addTaints, removeTaints):
            guard let id = nodeByName[name] else {
                runtime.core.record(.nodeUpdateFailed(name: name, message: "not found"), now: date)
                return
            }
            nodes[id].labels.merge(labels) { _, new in new }
            for key in removeLabels { nodes[id].labels[key] = nil }
            nodes[id].taints.removeAll { taint in removeTaints.contains { $0.key == taint.key && $0.effect == taint.effect } }
            for taint in addTaints where !nodes[id].taints.contains(where: { $0.key == taint.key && $0.effect == taint.effect }) {
                nodes[id].taints.append(taint)
            }
            accountWarm(id)
            roomAppeared()
        case let .evict(key, _):
            if let index = podIndex[key], pods[index].state == .running { evict(index) }
            runtime.core.record(.evicted(pod: key), now: date)
        case .annotatePod:
            break  // the simulated Berth never restarts: the intent is not needed
        case let .deletePod(key, _):
            if let index = podIndex[key], pods[index].state == .running { evict(index) }
            runtime.core.record(.podDeleted(pod: key), now: date)
        case let .deleteNode(name):
            if let id = nodeByName[name] { deleteNode(id) }
            runtime.core.record(.nodeDeleted(name: name), now: date)
        case let .stop(providerID, _):
            do {
                try await runtime.cloud.stop(providerID: providerID)
                if let id = runtime.nodeByProviderID[providerID] { powerDown(id) }
                runtime.core.record(.stopped(providerID: providerID), now: date)
            } catch {
                runtime.core.record(.stopFailed(providerID: providerID, error), now: date)
            }
        case let .start(providerID, _):
            do {
                try await runtime.cloud.start(providerID: providerID)
                if let id = runtime.nodeByProviderID[providerID] {
                    let boot = try await runtime.cloud.boot(of: providerID)
                    let cycle = nodes[id].cycle
                    queue.push(.powerUp(id, cycle: cycle, gpus: false), at: max(now, boot.readyAt.offset.seconds))
                    queue.push(.powerUp(id, cycle: cycle, gpus: true), at: max(now, boot.gpusAt.map { $0.offset.seconds } ?? .infinity))
                }
                runtime.core.record(.started(providerID: providerID), now: date)
            } catch {
                runtime.core.record(.startFailed(providerID: providerID, error), now: date)
            }
        case let .event(event):
            if event.type == "Warning" { metrics.warnings[event.reason, default: 0] += 1 }
        }
    }

    /// The instance is stopping: its kubelet stops, the Node turns NotReady (its pods, if any, are
    /// lost), its GPUs are no longer allocatable; the cloud bills it for its volume once stopped.
    func powerDown(_ id: Int) {
        guard !nodes[id].down, nodes[id].terminatedAt == nil else { return }
        account(id)
        for index in nodes[id].pods { evict(index) }
        nodes[id].down = true
        nodes[id].cycle += 1
        var allocatable = nodes[id].fullAllocatable
        allocatable.gpus = 0
        nodes[id].allocatable = allocatable
        accountWarm(id)
        roomAppeared()
    }

    static func pullerRequirements(_ node: String) -> PodRequirements {
        var requirements = PodRequirements(namespace: "berth", name: "image-puller-\(node)", requests: .zero)
        requirements.labels = [WarmConfig.imagePullerLabel: "true"]
        return requirements
    }
}
