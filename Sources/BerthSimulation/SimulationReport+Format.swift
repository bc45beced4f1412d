import BerthModel
import Foundation

extension SimulationReport {
    // MARK: Table

    /// One row per policy, then one verdict line per policy.
    public func table() -> String {
        let header = ["POLICY", "COST $", "LOWER $", "RATIO", "GPU NODE-H", "IDLE H", "SQUAT H", "WAIT P50", "WAIT P95", "WAIT MAX", "NB P95", "OWN P95", "UNSCHED", "NODES", "EVICT"]
        var rows = [header]
        for result in policies {
            rows.append([
                result.policy.rawValue, Self.fixed(result.costUSD, 2), Self.fixed(result.lowerBoundUSD, 2), Self.fixed(result.costRatio, 2) + "x",
                Self.fixed(result.gpuNodeHours, 1), Self.fixed(result.idleGpuNodeHours, 1), Self.fixed(result.squattedGpuNodeHours, 1),
                Self.duration(result.timeToRunning.p50), Self.duration(result.timeToRunning.p95), Self.duration(result.timeToRunning.max),
                Self.duration(result.notebookTimeToRunning.p95), Self.duration(result.ownDelay.p95), String(result.unscheduledPods), String(result.nodesLaunched), String(result.evictions),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        var text = "trace: \(pods) pods, \(gpuPods) GPU pods, \(Self.fixed(gpuHours, 1)) GPU-hours over \(Self.fixed(horizon / 86_400, 1)) days\n"
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[column] - cell.count) + cell
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        text += "\n"
        for result in policies { text += verdict(result) + "\n" }
        return text
    }

    /// `berth: 1.04x the lower bound (cheapest); GPU pods wait p95 2m10s, 4s of it Berth's own; ...`
    public func verdict(_ result: PolicyResult) -> String {
        var parts: [String] = []
        let cheapest = policies.map(\.costUSD).min() ?? 0
        var cost = "\(Self.fixed(result.costRatio, 2))x the lower bound"
        if policies.count > 1 && result.costUSD <= cheapest + 1e-9 { cost += " (cheapest)" }
        if let best = policies.min(by: { $0.costUSD < $1.costUSD }), best.policy != result.policy, best.costUSD > 0 {
            cost += ", \(Self.fixed((result.costUSD / best.costUSD - 1) * 100, 0))% more than \(best.policy.rawValue)"
        }
        parts.append(cost)
        var wait = "GPU pods wait p95 \(Self.duration(result.timeToRunning.p95))"
        if result.policy.kind != .static { wait += " (\(Self.duration(result.ownDelay.p95)) beyond node boot and image pull)" }
        if result.notebookTimeToRunning.count > 0 { wait += ", notebooks p95 \(Self.duration(result.notebookTimeToRunning.p95))" }
        parts.append(wait)
        parts.append(result.unscheduledPods == 0 ? "nothing unscheduled" : "\(result.unscheduledPods) pods never ran (\(result.unscheduledGPUPods) GPU)")
        parts.append(result.squattedGpuNodeHours < 0.05
            ? "no GPU node-hours squatted"
            : "\(Self.fixed(result.squattedGpuNodeHours, 1)) GPU node-hours squatted by non-GPU pods")
        if result.evictions > 0 { parts.append("\(result.evictions) pods evicted") }
        return "\(result.policy.rawValue): " + parts.joined(separator: "; ")
    }

    // MARK: JSON

    /// The keys (an interface), then more; written by `JSONWriter`, so every string is
    /// escaped.
    public func json() -> String {
        func number(_ value: Double) -> JSON { value.isFinite ? .number(Self.fixed(value, 4)) : .null }
        func count(_ value: Int) -> JSON { .number(String(value)) }
        func percentiles(_ value: Percentiles) -> JSON {
            .object(JSONObject([.init(key: "p50", value: number(value.p50)), .init(key: "p95", value: number(value.p95)), .init(key: "max", value: number(value.max))]))
        }
        func map<V>(_ dictionary: [String: V], _ value: (V) -> JSON) -> JSON {
            .object(JSONObject(dictionary.keys.sorted().map { JSONObject.Member(key: $0, value: value(dictionary[$0]!)) }))
        }
        let results: [JSON] = policies.map { result in
            let fields: [(String, JSON)] = [
                ("policy", .string(result.policy.rawValue)), ("costUSD", number(result.costUSD)), ("lowerBoundUSD", number(result.lowerBoundUSD)),
                ("costRatio", number(result.costRatio)), ("gpuNodeHours", number(result.gpuNodeHours)),
                ("idleGpuNodeHours", number(result.idleGpuNodeHours)), ("squattedGpuNodeHours", number(result.squattedGpuNodeHours)),
                ("timeToRunningSeconds", percentiles(result.timeToRunning)), ("unscheduledPods", count(result.unscheduledPods)),
                ("nodesLaunched", count(result.nodesLaunched)),
                ("notebookTimeToRunningSeconds", percentiles(result.notebookTimeToRunning)), ("warmCostUSD", number(result.warmCostUSD)),
                ("warmNodeHours", .object(JSONObject([
                    .init(key: "running", value: number(result.warmNodeHours.running)), .init(key: "stopped", value: number(result.warmNodeHours.stopped)),
                ]))),
                ("ownDelaySeconds", percentiles(result.ownDelay)), ("unscheduledGpuPods", count(result.unscheduledGPUPods)),
                ("evictions", count(result.evictions)), ("cpuNodesLaunched", count(result.cpuNodesLaunched)),
                ("cpuNodeCostUSD", number(result.cpuNodeCostUSD)), ("simulatedSeconds", number(result.simulatedSeconds)),
                ("provisionerRounds", count(result.provisionerRounds)),
                ("costByInstanceTypeUSD", map(result.costByInstanceType) { number($0) }),
                ("warnings", map(result.warnings) { count($0) }),
                ("verdict", .string(verdict(result))),
            ]
            return .object(JSONObject(fields.map { JSONObject.Member(key: $0.0, value: $0.1) }))
        }
        let trace: JSON = .object(JSONObject([
            .init(key: "pods", value: count(pods)), .init(key: "gpuPods", value: count(gpuPods)), .init(key: "gpuHours", value: number(gpuHours)),
        ]))
        return JSONWriter.string(.object(JSONObject([.init(key: "trace", value: trace), .init(key: "policies", value: .array(results))]))) + "\n"
    }

    // MARK: Helpers

    static func fixed(_ value: Double, _ places: Int) -> String {
        String(format: "%.\(places)f", value)
    }

    /// `0s`, `45s`, `2m05s`, `1h02m`.
    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        return String(format: "%dh%02dm", whole / 3600, (whole % 3600) / 60)
    }
}
