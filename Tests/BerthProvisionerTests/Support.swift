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
    gpuRegistrationDelay: ClosedRange<Duration>? = .seconds(20) ... .seconds(20), outages: [CapacityOutage] = []
) -> SimulatedCloud<ManualClock> {
    SimulatedCloud(
        configuration: SimulatedCloudConfiguration(
            seed: seed, bootDelay: bootDelay, gpuRegistrationDelay: gpuRegistrationDelay, outages: outages),
        clock: clock)
}

/// What the provisioner will do on insufficient capacity: mark the failed offerings unavailable
/// and ask again, until something launches or nothing is left. Returns the instance and the
/// offerings marked.
func launchWithFallback(_ cloud: some CloudProvider, _ request: LaunchRequest) async throws -> (CloudInstance, Set<OfferingKey>) {
    var request = request
    var unavailable: Set<OfferingKey> = []
    while true {
        do throws(CloudError) {
            return (try await cloud.create(request), unavailable)
        } catch {
            guard case let .insufficientCapacity(offerings) = error else { throw error }
            unavailable.formUnion(offerings)
            for index in request.candidates.indices {
                let type = request.candidates[index]
                for offering in type.offerings.indices where unavailable.contains(OfferingKey(type, type.offerings[offering])) {
                    request.candidates[index].offerings[offering].available = false
                }
            }
        }
    }
}
