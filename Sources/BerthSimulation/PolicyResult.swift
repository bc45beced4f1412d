import BerthScheduling
import Foundation

/// p50, p95 and max of a set of durations (nearest rank), seconds.
public struct Percentiles: Sendable, Equatable {
    public var p50: Double
    public var p95: Double
    public var max: Double
    public var count: Int

    public init(p50: Double = 0, p95: Double = 0, max: Double = 0, count: Int = 0) {
        self.p50 = p50
        self.p95 = p95
        self.max = max
        self.count = count
    }

    public init(_ values: [Double]) {
        guard !values.isEmpty else {
            self.init()
            return
        }
        let sorted = values.sorted()
        func rank(_ p: Double) -> Double { sorted[Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
        self.init(p50: rank(0.5), p95: rank(0.95), max: sorted[sorted.count - 1], count: sorted.count)
    }
}

/// One point of the plot: GPU nodes up (and their GPUs) and GPUs asked for by pods that exist.
public struct SeriesPoint: Sendable, Equatable {
    public var time: Double
    public var gpuNodes: Int
    public var gpus: Int64
    public var demand: Int64
}

/// Warm GPU capacity's node-hours by state.
public struct WarmNodeHours: Sendable, Equatable {
    /// Warm nodes up with no pod yet (labelled `berth.dev/warm`: waiting, or being prepared).
    public var running: Double
    /// Instances prepared then stopped (only their volumes billed).
    public var stopped: Double

    public init(running: Double = 0, stopped: Double = 0) {
        self.running = running
        self.stopped = stopped
    }
}

/// What one policy cost on the trace, and how long its pods waited.
public struct PolicyResult: Sendable {
    public var policy: PolicyName
    /// GPU nodes, launch to termination (or the end of the run); includes `warmCostUSD`.
    public var costUSD: Double
    /// Of `costUSD`, warm capacity's: warm nodes up with no pod yet (running tier, and the
    /// stopped tier while it is prepared) at their price, stopped ones at their volume's.
    public var warmCostUSD: Double = 0
    public var warmNodeHours = WarmNodeHours()
    public var lowerBoundUSD: Double
    public var gpuNodeHours: Double
    /// GPU node-hours (launch included) with no GPU pod on the node.
    public var idleGpuNodeHours: Double
    /// Of those, hours a non-GPU pod was on the node (squatting).
    public var squattedGpuNodeHours: Double
    /// GPU pods, creation to first Running (the node's image pull included).
    public var timeToRunning: Percentiles
    /// GPU notebooks only (the trace's kind `notebook`), creation to first Running, pull included:
    /// what a data scientist waits after "Start my server".
    public var notebookTimeToRunning: Percentiles
    /// GPU pods: time to running minus the modelled boot (launch to GPUs allocatable) of the node
    /// they first ran on and minus their wait for its image pull, at least 0: the wait the
    /// autoscaler itself adds.
    public var ownDelay: Percentiles
    /// Pods (GPU or not) that never ran.
    public var unscheduledPods: Int
    public var unscheduledGPUPods: Int
    public var nodesLaunched: Int
    public var cpuNodesLaunched: Int
    public var cpuNodeCostUSD: Double
    public var evictions: Int
    /// Warning events by reason (Berth's, or a failed scale-up).
    public var warnings: [String: Int]
    public var simulatedSeconds: Double
    /// Rounds of Berth's decision code (`reconcile`) run; 0 for the other policies.
    public var provisionerRounds: Int
    /// GPU node cost by instance type.
    public var costByInstanceType: [String: Double]
    public var series: [SeriesPoint]

    public var costRatio: Double { lowerBoundUSD > 0 ? costUSD / lowerBoundUSD : 0 }
}

/// The cost no autoscaler can beat: each GPU pod alone on its cheapest fitting type (allocatable
/// after the node's overhead, GPU name if asked for) for exactly its run time, no boot. Worked out
/// once per trace and shared by every policy (the static pool sizes itself from the same types).
public struct LowerBound: Sendable {
    /// Per trace pod: its cheapest fitting GPU type (nil: not a GPU pod, or nothing fits).
    public let cheapest: [InstanceType?]
    public let costUSD: Double

    public init(trace: Trace, catalog: InstanceCatalog, overhead: NodeOverhead) {
        cheapest = trace.pods.map { $0.isGPU ? Self.cheapestType(for: $0, catalog: catalog, overhead: overhead) : nil }
        costUSD = zip(trace.pods, cheapest).reduce(0) { total, entry in
            guard let type = entry.1 else { return total }
            return total + type.pricePerHour * entry.0.duration / 3600
        }
    }

    public static func cheapestType(for pod: TracePod, catalog: InstanceCatalog, overhead: NodeOverhead) -> InstanceType? {
        let requests = Resources(
            cpuMilli: Int64((pod.cpu * 1000).rounded()), memory: Int64((pod.memoryGiB * 1024).rounded()) << 20, gpus: Int64(pod.gpus), pods: 1)
        var best: InstanceType?
        for type in catalog.types where type.gpuCount > 0 && (pod.gpuType.isEmpty || type.gpuName == pod.gpuType) {
            guard requests.fits(in: overhead.allocatable(type)) else { continue }
            if best.map({ type.pricePerHour < $0.pricePerHour }) ?? true { best = type }
        }
        return best
    }

}

extension ClusterSimulation {
    /// `stoppedSeconds`: by provider id, how long the cloud billed each instance as stopped.
    func finish(stoppedSeconds: [String: Double] = [:]) -> PolicyResult {
        for id in nodes.indices { account(id) }
        var cost = 0.0, hours = 0.0, launched = 0, cpuCost = 0.0, cpuLaunched = 0
        var byType: [String: Double] = [:]
        var warmCost = 0.0
        var warm = WarmNodeHours()
        let stoppedPrice = berthConfig.warm.stoppedPricePerHour
        for id in nodes.indices { accountWarm(id) }
        for node in nodes {
            let span = ((node.terminatedAt ?? now) - node.launchedAt) / 3600
            if node.isGPU {
                // Stopped time is billed for the volume only.
                let stopped = (stoppedSeconds[node.providerID] ?? 0) / 3600
                let nodeCost = node.price * (span - stopped) + stoppedPrice * stopped
                cost += nodeCost
                byType[node.instanceType, default: 0] += nodeCost
                hours += span - stopped
                launched += 1
                warm.running += node.warmSeconds / 3600
                warm.stopped += stopped
                warmCost += node.price * node.warmSeconds / 3600 + stoppedPrice * stopped
            } else {
                cpuCost += node.price * span
                cpuLaunched += 1
            }
        }
        var waits: [Double] = [], own: [Double] = [], notebookWaits: [Double] = []
        var unscheduled = 0, unscheduledGPU = 0
        for pod in pods {
            guard let running = pod.firstRunning else {
                unscheduled += 1
                if pod.isGPU { unscheduledGPU += 1 }
                continue
            }
            guard pod.isGPU else { continue }
            let wait = running - pod.createdAt
            waits.append(wait)
            if pod.isNotebook { notebookWaits.append(wait) }
            own.append(max(0, wait - pod.firstPull - (pod.firstNode >= 0 ? nodes[pod.firstNode].boot : 0)))
        }
        return PolicyResult(
            policy: policy, costUSD: cost, warmCostUSD: warmCost, warmNodeHours: warm, lowerBoundUSD: lowerBound.costUSD,
            gpuNodeHours: hours, idleGpuNodeHours: metrics.idle / 3600, squattedGpuNodeHours: metrics.squatted / 3600,
            timeToRunning: Percentiles(waits), notebookTimeToRunning: Percentiles(notebookWaits), ownDelay: Percentiles(own), unscheduledPods: unscheduled, unscheduledGPUPods: unscheduledGPU,
            nodesLaunched: launched, cpuNodesLaunched: cpuLaunched, cpuNodeCostUSD: cpuCost, evictions: metrics.evictions, warnings: metrics.warnings,
            simulatedSeconds: now, provisionerRounds: berth?.rounds ?? 0, costByInstanceType: byType,
            series: metrics.series.map { SeriesPoint(time: $0.time, gpuNodes: $0.nodes, gpus: $0.gpus, demand: $0.demand) })
    }
}
