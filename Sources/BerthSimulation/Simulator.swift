import BerthAdmission
import BerthScheduling
import Foundation

/// `berth simulate`'s entry point: every policy on the same trace, one after the other.
public enum Simulator {
    /// - Parameter progress: called with 0 when a policy starts, then about once per simulated
    ///   day with the virtual time reached, seconds.
    public static func run(
        trace: Trace, policies: [PolicyName] = PolicyName.allCases, options: SimulationOptions = SimulationOptions(),
        progress: (@Sendable (PolicyName, Double) -> Void)? = nil
    ) async throws -> SimulationReport {
        var results: [PolicyResult] = []
        let lowerBound = LowerBound(trace: trace, catalog: options.catalog, overhead: options.provisioner.overhead)
        for policy in policies {
            let simulation = try ClusterSimulation(policy: policy, trace: trace, options: options, lowerBound: lowerBound)
            results.append(await simulation.run { progress?(policy, $0) })
        }
        return SimulationReport(pods: trace.pods.count, gpuPods: trace.gpuPods, gpuHours: trace.gpuHours, horizon: trace.horizon, policies: results)
    }
}

/// Every policy's result on one trace.
public struct SimulationReport: Sendable {
    public var pods: Int
    public var gpuPods: Int
    public var gpuHours: Double
    public var horizon: Double
    public var policies: [PolicyResult]

    public subscript(policy: PolicyName) -> PolicyResult? { policies.first { $0.policy == policy } }
}
