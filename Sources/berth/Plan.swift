import ArgumentParser
import BerthAdmission
import BerthController
import BerthKube
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What Berth would launch for these pods: on an empty cluster, or against a cluster's nodes and bound pods.",
        discussion: """
            Each Pod (also inside a List), and each workload's pod template times its replicas (Jobs: \
            parallelism), is first mutated as the webhook would; then GPU pods are planned against the \
            built-in catalog and the config's pools (default: GPU types, taint nvidia.com/gpu=true:NoSchedule) \
            by the provisioner's own decision code. Notebooks get one node each; other GPU pods share a node \
            only when that is cheaper.

            Node objects and Pods with spec.nodeName (kubectl get nodes,pods -A -o yaml) are the cluster's \
            state: pending pods are placed on those nodes when they fit, as the loop would ("existing"); \
            nodes labelled berth.dev/pool count against their pool's limits.

            The table explains cheaper instance types passed over ("g4dn.xlarge: needs 6 vCPU, has 3.745") \
            and why a pod cannot be placed.

            --config applies the file's webhook and provisioner sections.
            """
    )

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @OptionGroup var input: ManifestOptions

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: Output = .table

    @Option(name: .customLong("catalog"), help: ArgumentHelp("Instance types laid over the built-in catalog: a file in `berth catalog -o json`'s shape.", valueName: "file"))
    var catalogFile: String?

    func run() throws {
        try failing {
            let (settings, provisioner, mutator) = try input.mutator()
            var ids: [String] = []
            var pending: [PodSnapshot] = []
            var pendingSlot: [String: Int] = [:]
            var skipped: [(slot: Int, reason: String)] = []
            var nodes: [NodeSnapshot] = []
            var bound: [PodSnapshot] = []
            let catalog = try CatalogFile.load(catalogFile)
            try ConfigFile.checkWarm(provisioner, catalog: catalog, source: input.config)
            let gpuResource = "nvidia.com/gpu"  // the catalog's GPUs
            for (index, document) in try input.documents().enumerated() {
                let location = "\(input.displayName): document \(index + 1) (line \(document.line))"
                // A List (kubectl get -o yaml) is read item by item.
                let items = document.value["kind"]?.stringValue == "List"
                    ? (document.value["items"]?.arrayValue ?? []).enumerated().map { ("\(location): items[\($0.offset)]", $0.element) }
                    : [(location, document.value)]
                for (where_, object) in items {
                    // The cluster's state: its nodes, and the pods bound to them, as they are.
                    if object["kind"]?.stringValue == "Node" {
                        do {
                            nodes.append(KubeCluster.nodeSnapshot(try Node(json: object), gpuResource: gpuResource))
                        } catch {
                            throw CLIError(message: "\(where_): \(error)")
                        }
                        continue
                    }
                    if object["kind"]?.stringValue == "Pod", let node = object["spec"]?["nodeName"]?.stringValue, !node.isEmpty {
                        guard let pod = KubeCluster.podSnapshot(object, webhook: settings.webhook) else {
                            throw CLIError(message: "\(where_): metadata: a pod needs a name")
                        }
                        bound.append(pod)
                        continue
                    }
                    let result: ManifestMutator.Result
                    do {
                        result = try mutator.mutate(object)
                    } catch {
                        throw CLIError(message: "\(where_): \(error)")
                    }
                    for (path, mutation) in result.pods {
                        for (id, pod) in Self.pendingPods(in: result.mutated, at: path, defaultNamespace: input.namespace) {
                            let slot = ids.count
                            ids.append(id)
                            if let reason = mutation.exemptReason {
                                skipped.append((slot, "exempt from Berth (\(reason))"))
                            } else if mutation.podClass == .other {
                                skipped.append((slot, "not a GPU pod: Berth launches GPU nodes only"))
                            } else {
                                do {
                                    var requirements = try PodRequirements(pod: pod, config: settings.webhook)
                                    requirements.namespace = String(id.prefix { $0 != "/" })
                                    requirements.name = String(id.drop { $0 != "/" }.dropFirst())
                                    pendingSlot[id] = slot
                                    pending.append(PodSnapshot(key: id, unschedulable: true, requirements: requirements))
                                } catch {
                                    throw CLIError(message: "\(where_): \(error)")
                                }
                            }
                        }
                    }
                }
            }
            // Planned exactly as the loop would: the provisioner's own decision code, on this state.
            let core = ProvisionerCore(config: provisioner, catalog: catalog, gpuResource: gpuResource, seed: 1)
            let (planned, plan) = core.plan(ClusterSnapshot(pods: bound + pending, nodes: nodes), now: Date())
            let slotOf = { (index: Int) in pendingSlot[planned[index].key] ?? 0 }
            var unschedulable = skipped
            for entry in plan.unschedulable { unschedulable.append((slotOf(entry.pod), entry.reason)) }
            unschedulable.sort { $0.slot < $1.slot }
            let podIDs = { (node: SchedulingPlan.NewNode) in node.pods.map { planned[$0].key } }
            var existing: [(node: String, pods: [String])] = []
            for placement in plan.placements {
                if let at = existing.firstIndex(where: { $0.node == placement.node }) {
                    existing[at].pods.append(planned[placement.pod].key)
                } else {
                    existing.append((placement.node, [planned[placement.pod].key]))
                }
            }

            switch output {
            case .json:
                let newNodes: [JSON] = plan.nodes.map { node in
                    [
                        "instanceType": .string(node.instanceType), "pool": .string(node.pool), "zone": .string(node.zone),
                        "pods": .array(podIDs(node).map(JSON.string)), "pricePerHour": .number(Money.text(node.pricePerHour)),
                    ]
                }
                let onExisting: [JSON] = existing.map { ["node": .string($0.node), "pods": .array($0.pods.map(JSON.string))] }
                let list: [JSON] = unschedulable.map { ["pod": .string(ids[$0.slot]), "reason": .string($0.reason)] }
                let document: JSON = [
                    "nodes": .array(newNodes), "existing": .array(onExisting), "unschedulable": .array(list),
                    "totalPricePerHour": .number(Money.text(plan.totalPricePerHour)),
                ]
                Terminal.write(JSONWriter.string(document, pretty: true) + "\n")
            case .table:
                var text = ""
                if plan.nodes.isEmpty {
                    text += "No nodes to launch.\n"
                } else {
                    var rows = [["NODE", "INSTANCE TYPE", "POOL", "ZONE", "$/HOUR", "PODS"]]
                    for (index, node) in plan.nodes.enumerated() {
                        rows.append([String(index + 1), node.instanceType, node.pool, node.zone, Money.text(node.pricePerHour), podIDs(node).joined(separator: ", ")])
                    }
                    text += TextTable.render(rows)
                    for (index, node) in plan.nodes.enumerated() where !node.rejected.isEmpty {
                        text += "node \(index + 1): cheaper types passed over: " + node.rejected.map(\.description).joined(separator: "; ") + "\n"
                    }
                }
                if !existing.isEmpty {
                    text += "\nOn nodes that exist (nothing launched; kube-scheduler binds them):\n"
                    for entry in existing { text += "  \(entry.node): \(entry.pods.joined(separator: ", "))\n" }
                }
                if !unschedulable.isEmpty {
                    text += "\nUnschedulable:\n"
                    for entry in unschedulable { text += "  \(ids[entry.slot]): \(entry.reason)\n" }
                }
                text += "\nTotal: \(Money.text(plan.totalPricePerHour)) $/hour for \(plan.nodes.count) node\(plan.nodes.count == 1 ? "" : "s")\n"
                Terminal.write(text)
            }
        }
    }
}

extension Plan {
    /// The pods a document stands for once created: a Pod is itself; a workload's template is
    /// `replicas` pods (`parallelism` for Jobs) named `<workload>-<i>`, in the workload's namespace.
    static func pendingPods(in document: JSON, at path: JSONPointer, defaultNamespace: String) -> [(id: String, pod: JSON)] {
        var pod = document
        var owner = document
        for (index, token) in path.tokens.enumerated() {
            pod = Int(token).flatMap { pod[$0] } ?? pod[token] ?? .null
            // The object holding the template is the last one with a kind on the way down.
            if pod["kind"] != nil, index < path.tokens.count - 1 { owner = pod }
        }
        if path.tokens.last == "template" || pod["kind"] == nil {
            let kind = owner["kind"]?.stringValue ?? ""
            let name = owner["metadata"]?["name"]?.stringValue ?? "<unnamed>"
            let namespace = owner["metadata"]?["namespace"]?.stringValue ?? defaultNamespace
            let spec = kind == "CronJob" ? owner["spec"]?["jobTemplate"]?["spec"] : owner["spec"]
            let countField = kind == "Job" || kind == "CronJob" ? "parallelism" : "replicas"
            var count = 1
            if case let .number(text)? = spec?[countField], let value = Int(text) { count = max(0, min(value, 10_000)) }
            return (0..<count).map { ("\(namespace)/\(name)-\($0)", pod) }
        }
        let namespace = pod["metadata"]?["namespace"]?.stringValue ?? defaultNamespace
        return [("\(namespace)/\(pod["metadata"]?["name"]?.stringValue ?? "<unnamed>")", pod)]
    }
}

enum Money {
    /// Dollars to 4 decimals without float noise: 1.052, not 1.0519999999999998.
    static func text(_ value: Double) -> String {
        var text = String(format: "%.4f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
