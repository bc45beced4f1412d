import BerthModel
import BerthProvisioner
import BerthScheduling

let catalog = InstanceCatalog.builtIn()

/// A launch of these catalog types, in this order, restricted to `zones` (all when nil).
func launchRequest(
    _ launchID: String, types: [String] = ["g4dn.xlarge"], zones: [String]? = nil, cluster: String = "test",
    pool: String = "gpu", labels: [String: String] = [:], taints: [Taint] = Pool.defaultTaints
) -> LaunchRequest {
    let candidates = types.map { name in
        var type = catalog[name]!
        if let zones { type.offerings = zones.compactMap { zone in type.offerings.first { $0.zone == zone } } }
        return type
    }
    return LaunchRequest(launchID: launchID, cluster: cluster, pool: pool, candidates: candidates, labels: labels, taints: taints)
}

/// A ManualClock-driven simulated cloud with fixed delays unless told otherwise.
func simulatedCloud(
    clock: ManualClock, seed: UInt64 = 1, bootDelay: ClosedRange<Duration> = .seconds(60) ... .seconds(60),
    gpuRegistrationDelay: ClosedRange<Duration>? = .seconds(20) ... .seconds(20), stopDelay: ClosedRange<Duration> = .seconds(30) ... .seconds(30),
    warmStartDelay: ClosedRange<Duration> = .seconds(40) ... .seconds(40), outages: [CapacityOutage] = []
) -> SimulatedCloud<ManualClock> {
    SimulatedCloud(
        configuration: SimulatedCloudConfiguration(
            seed: seed, bootDelay: bootDelay, gpuRegistrationDelay: gpuRegistrationDelay, stopDelay: stopDelay,
            warmStartDelay: warmStartDelay, outages: outages),
        clock: clock)
}

/// What the provisioner will do on insufficient capacity, reduced to its core: ask for the
/// cheapest type, and when the cloud has none, mark the offerings it names unavailable and ask for
/// the next cheapest. Returns the instance, the offerings marked and the number of calls.
func launchWithFallback(
    _ cloud: some CloudProvider, _ launchID: String, candidates: [InstanceType], unavailable: Set<OfferingKey> = []
) async throws(CloudError) -> (instance: CloudInstance, unavailable: Set<OfferingKey>, calls: Int) {
    var unavailable = unavailable
    var calls = 0
    for var type in candidates {
        for index in type.offerings.indices where unavailable.contains(OfferingKey(type, type.offerings[index])) {
            type.offerings[index].available = false
        }
        guard type.offerings.contains(where: \.available) else { continue }
        calls += 1
        do throws(CloudError) {
            let instance = try await cloud.create(LaunchRequest(launchID: launchID, cluster: "test", pool: "gpu", candidates: [type]))
            return (instance, unavailable, calls)
        } catch {
            guard case let .insufficientCapacity(offerings) = error else { throw error }
            unavailable.formUnion(offerings)
        }
    }
    throw .insufficientCapacity(offerings: unavailable.sorted { $0.text < $1.text })
}
