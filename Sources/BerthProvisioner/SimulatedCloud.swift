import BerthModel
import BerthScheduling
import Foundation
import Logging

/// The embedded cloud: "launches" instances of the built-in catalog and lets them boot on the
/// injected clock. Nothing sleeps here — an instance's state is computed from the clock's `now`
/// and its own schedule (`readyAt`, `gpusAt`), which ``boot(of:)`` exposes so the simulated
/// kubelet can make the Node appear Ready, then its GPUs allocatable, at those instants.
///
/// Reproducible: an instance's id and delays are drawn from the seed and its launch id alone.
/// ``snapshot()`` and ``init(configuration:clock:restoring:logger:)`` carry the cloud's state over
/// to a new actor, as a real cloud outlives the process that talks to it.
public actor SimulatedCloud<C: Clock<Duration>>: CloudProvider {
    /// One launched instance and its schedule. An instance runs in cycles: the launch begins
    /// cycle 0, each ``SimulatedCloud/start(providerID:)`` of the stopped instance the next one;
    /// `readyAt` and `gpusAt` are the current cycle's.
    public struct Record: Sendable {
        public var instance: CloudInstance
        public var launchedAt: C.Instant
        /// The current run cycle: 0 from the launch, one more at each start.
        public var cycle: Int
        /// When the instance is running and its Node registers Ready (again, after a start).
        public var readyAt: C.Instant
        /// When its GPUs become allocatable; nil: never (no device plugin).
        public var gpusAt: C.Instant?
        /// When the current cycle's stop completes (the stop plus the stop delay): `stopping` (its
        /// kubelet no longer posts) until then, `stopped` from then on. nil: not being stopped.
        public var stoppedAt: C.Instant?
        /// The stretches of earlier cycles the instance spent stopped, each from stopped to its
        /// start or its termination: billed at the volume's price, not the instance's.
        public var stoppedIntervals: [Range<C.Instant>]
        public var terminatedAt: C.Instant?
        /// What the Node registers with: the type's and offering's labels, then the request's.
        public var labels: [String: String]
        public var taints: [Taint]

        /// The state at `now` (the cloud's now or later: an earlier instant of a past cycle is not
        /// remembered).
        func state(at now: C.Instant) -> CloudInstance.State {
            if let terminatedAt, terminatedAt <= now { return .terminated }
            if let stoppedAt { return now >= stoppedAt ? .stopped : .stopping }
            return now >= readyAt ? .running : .pending
        }

        /// How long the instance has been stopped in all, up to `now` (or its termination): what
        /// is billed at the volume's price only (the rest of its life, `stopping` included, at its
        /// price, as on EC2).
        public func stoppedDuration(until now: C.Instant) -> Duration {
            var total = Duration.zero
            for interval in stoppedIntervals where interval.lowerBound < now {
                total += interval.lowerBound.duration(to: min(interval.upperBound, now))
            }
            let end = terminatedAt.map { min($0, now) } ?? now
            if let stoppedAt, stoppedAt < end { total += stoppedAt.duration(to: end) }
            return total
        }

        /// Ends the current stop (a start, a termination) at `now`: its stopped stretch, if it had
        /// begun, joins the earlier ones.
        mutating func endStop(at now: C.Instant) {
            if let stoppedAt, stoppedAt < now { stoppedIntervals.append(stoppedAt..<now) }
            stoppedAt = nil
        }
    }

    /// Everything the cloud remembers.
    public struct Snapshot: Sendable {
        var records: [Record]
        var outages: [CapacityOutage]
        var wallTime: WallTime<C>
    }

    /// What the simulated kubelet needs to play an instance's Node, for the current run cycle.
    public struct Boot: Sendable {
        public var providerID: String
        public var instanceType: InstanceType
        public var zone: String
        public var labels: [String: String]
        public var taints: [Taint]
        /// The current cycle (0: the launch; one more at each start).
        public var cycle: Int
        public var readyAt: C.Instant
        public var gpusAt: C.Instant?
        /// When the current cycle's stop is done; nil while the instance is not being stopped
        /// (while it is, the kubelet no longer posts).
        public var stoppedAt: C.Instant?
        public var terminatedAt: C.Instant?
    }

    public nonisolated let configuration: SimulatedCloudConfiguration
    public nonisolated let wallTime: WallTime<C>
    private let logger: Logger
    /// In launch order.
    private var records: [Record] = []
    private var indexByProviderID: [String: Int] = [:]
    private var indexByLaunchID: [String: Int] = [:]
    /// Record indices of the instances not terminated, in launch order: `list` reads these, not the
    /// whole history (a month of simulation launches thousands).
    private var live: [Int] = []
    private var outages: [CapacityOutage]

    /// The logger is silent unless given: the simulation passes its timeline logger.
    public init(
        configuration: SimulatedCloudConfiguration = .init(), clock: C,
        logger: Logger = Logger(label: "berth.cloud.simulated", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.wallTime = WallTime(clock: clock, epoch: configuration.epoch)
        self.logger = logger
        self.outages = configuration.outages
    }

    /// A new cloud actor holding `snapshot`'s instances, outages and date origin (the
    /// configuration's outages and epoch are ignored). `clock` must be the clock the snapshot was
    /// taken on.
    public init(
        configuration: SimulatedCloudConfiguration = .init(), clock: C, restoring snapshot: Snapshot,
        logger: Logger = Logger(label: "berth.cloud.simulated", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        // The snapshot's clock reading: dates of new launches continue the old ones.
        self.wallTime = WallTime(clock: clock, origin: snapshot.wallTime.origin, epoch: snapshot.wallTime.epoch)
        self.logger = logger
        self.outages = snapshot.outages
        self.records = snapshot.records
        for (index, record) in snapshot.records.enumerated() {
            indexByProviderID[record.instance.providerID] = index
            indexByLaunchID[record.instance.launchID] = index
            if record.terminatedAt == nil { live.append(index) }
        }
    }

    private var now: C.Instant { wallTime.clock.now }

    // MARK: CloudProvider

    public func create(_ request: LaunchRequest) async throws(CloudError) -> CloudInstance {
        if request.launchID.isEmpty { throw .invalidRequest("launch id is empty") }
        if let index = indexByLaunchID[request.launchID] { return current(records[index]) }
        try request.validate()

        var sold = 0
        var failed: [OfferingKey] = []
        for (type, offering) in request.attempts {
            let key = OfferingKey(type, offering)
            guard let catalogType = configuration.catalog[type.name],
                let catalogOffering = catalogType.offerings.first(where: {
                    $0.zone == offering.zone && $0.capacityType == offering.capacityType
                })
            else { continue }
            sold += 1
            if consumeOutage(for: key) {
                failed.append(key)
                continue
            }
            let record = launch(request, type: catalogType, offering: catalogOffering)
            insert(record)
            logger.info(
                "launched \(type.name) in \(offering.zone)",
                metadata: [
                    "providerID": "\(record.instance.providerID)", "launchID": "\(request.launchID)",
                    "pool": "\(request.pool)", "readyInSeconds": "\(Self.seconds(record.launchedAt.duration(to: record.readyAt)))",
                    "gpusInSeconds": "\(record.gpusAt.map { "\(Self.seconds(record.launchedAt.duration(to: $0)))" } ?? "never")",
                ])
            return record.instance
        }
        if sold == 0 {
            let names = request.candidates.map(\.name).joined(separator: ", ")
            throw .invalidRequest("launch \(request.launchID): none of the offerings of \(names) is sold by the simulated cloud")
        }
        logger.info("insufficient capacity", metadata: ["launchID": "\(request.launchID)", "offerings": "\(failed.map(\.text))"])
        throw .insufficientCapacity(offerings: failed)
    }

    public func delete(providerID: String) async throws(CloudError) {
        let index = try liveIndex(of: providerID)
        records[index].endStop(at: now)
        records[index].terminatedAt = now
        records[index].instance.state = .terminated
        live.removeAll { $0 == index }
        logger.info("terminated \(records[index].instance.instanceType)", metadata: ["providerID": "\(providerID)"])
    }

    public func get(providerID: String) async throws(CloudError) -> CloudInstance {
        current(records[try liveIndex(of: providerID)])
    }

    public func list(clusterTag: String) async throws(CloudError) -> [CloudInstance] {
        let now = self.now
        var result: [CloudInstance] = []
        for index in live where records[index].instance.cluster == clusterTag && records[index].state(at: now) != .terminated {
            result.append(current(records[index]))
        }
        return result
    }

    /// A running instance is `stopping` at once and `stopped` after the configuration's
    /// `stopDelay` (drawn from the seed, the launch id and the cycle). A pending or spot instance
    /// cannot be stopped; one already stopping or stopped is left as it is.
    public func stop(providerID: String) async throws(CloudError) {
        let index = try liveIndex(of: providerID)
        let record = records[index]
        switch record.state(at: now) {
        case .stopping, .stopped, .terminated: return
        case .pending:
            throw .invalidRequest("\(providerID) is pending: an instance can be stopped once it is running")
        case .running:
            break
        }
        if record.instance.capacityType == "spot" {
            throw .invalidRequest("\(providerID) is a spot instance: it cannot be stopped")
        }
        var random = SeededGenerator(seed: configuration.seed, key: "\(record.instance.launchID)#stop\(record.cycle)")
        let delay = Duration.random(in: configuration.stopDelay, using: &random)
        records[index].stoppedAt = now.advanced(by: delay)
        logger.info(
            "stopping \(record.instance.instanceType)",
            metadata: ["providerID": "\(providerID)", "stoppedInSeconds": "\(Self.seconds(delay))"])
    }

    /// A stopped instance boots again (`pending`): a new cycle whose Node is Ready at
    /// `start + ¾·d` and whose GPUs are allocatable at `start + d`, d drawn from the
    /// configuration's `warmStartDelay` (from the seed, the launch id and the cycle). A capacity
    /// outage matching its offering fails the start, as a launch. Starting an instance pending or
    /// running is a no-op; one still stopping cannot be started yet.
    public func start(providerID: String) async throws(CloudError) {
        let index = try liveIndex(of: providerID)
        let record = records[index]
        switch record.state(at: now) {
        case .pending, .running, .terminated: return
        case .stopping:
            throw .invalidRequest("\(providerID) is still stopping: start it once it is stopped")
        case .stopped:
            break
        }
        let key = OfferingKey(instanceType: record.instance.instanceType, zone: record.instance.zone, capacityType: record.instance.capacityType)
        if consumeOutage(for: key) {
            logger.info("insufficient capacity to start", metadata: ["providerID": "\(providerID)", "offering": "\(key.text)"])
            throw .insufficientCapacity(offerings: [key])
        }
        let cycle = record.cycle + 1
        var random = SeededGenerator(seed: configuration.seed, key: "\(record.instance.launchID)#start\(cycle)")
        let toGPUs = Duration.random(in: configuration.warmStartDelay, using: &random)
        let gpuCount = configuration.catalog[record.instance.instanceType]?.gpuCount ?? 0
        let readyAt = now.advanced(by: toGPUs * 3 / 4)
        records[index].endStop(at: now)
        records[index].cycle = cycle
        records[index].readyAt = readyAt
        records[index].gpusAt = gpuCount == 0 ? readyAt : configuration.gpuRegistrationDelay.map { _ in now.advanced(by: toGPUs) }
        logger.info(
            "started \(record.instance.instanceType)",
            metadata: [
                "providerID": "\(providerID)", "cycle": "\(cycle)", "readyInSeconds": "\(Self.seconds(toGPUs * 3 / 4))",
                "gpusInSeconds": "\(records[index].gpusAt.map { "\(Self.seconds(now.duration(to: $0)))" } ?? "never")",
            ])
    }

    // MARK: The simulation's side

    /// When the instance's Node should appear Ready and its GPUs allocatable, in its current run
    /// cycle (after a start: the new instants), and whether it is being stopped.
    /// - Throws: ``CloudError/notFound(providerID:)`` for an id this cloud never launched
    ///   (terminated instances are found: their Node must go).
    public func boot(of providerID: String) throws(CloudError) -> Boot {
        guard let index = indexByProviderID[providerID] else { throw .notFound(providerID: providerID) }
        let record = records[index]
        guard let type = configuration.catalog[record.instance.instanceType] else { throw .notFound(providerID: providerID) }
        return Boot(
            providerID: providerID, instanceType: type, zone: record.instance.zone, labels: record.labels,
            taints: record.taints, cycle: record.cycle, readyAt: record.readyAt, gpusAt: record.gpusAt,
            stoppedAt: record.stoppedAt, terminatedAt: record.terminatedAt)
    }

    /// Every instance ever launched, terminated ones included, in launch order (for reports:
    /// what ran, how long, what it cost).
    public func allRecords() -> [Record] {
        records.map { record in
            var record = record
            record.instance = current(record)
            return record
        }
    }

    /// Capacity runs out (until cleared, or for the outage's number of attempts).
    public func addOutage(_ outage: CapacityOutage) {
        outages.append(outage)
    }

    public func clearOutages() {
        outages.removeAll()
    }

    /// The cloud's state, to restore into a new actor.
    public func snapshot() -> Snapshot {
        Snapshot(records: records, outages: outages, wallTime: wallTime)
    }

    // MARK: Internals

    private func current(_ record: Record) -> CloudInstance {
        var instance = record.instance
        instance.state = record.state(at: now)
        return instance
    }

    private func liveIndex(of providerID: String) throws(CloudError) -> Int {
        guard let parsed = ProviderID(providerID), parsed.scheme == configuration.scheme else {
            throw .invalidRequest("\(providerID): not a \(configuration.scheme):///<zone>/<id> provider id")
        }
        guard let index = indexByProviderID[providerID], records[index].state(at: now) != .terminated else {
            throw .notFound(providerID: providerID)
        }
        return index
    }

    private func insert(_ record: Record) {
        indexByProviderID[record.instance.providerID] = records.count
        indexByLaunchID[record.instance.launchID] = records.count
        live.append(records.count)
        records.append(record)
    }

    /// True when an outage takes this attempt (and counts it).
    private func consumeOutage(for key: OfferingKey) -> Bool {
        guard let index = outages.firstIndex(where: { $0.matches(key) }) else { return false }
        if let failures = outages[index].failures {
            if failures <= 1 { outages.remove(at: index) } else { outages[index].failures = failures - 1 }
        }
        return true
    }

    private func launch(_ request: LaunchRequest, type: InstanceType, offering: Offering) -> Record {
        var random = SeededGenerator(seed: configuration.seed, key: request.launchID)
        var instanceID = Self.instanceID(&random)
        while indexByProviderID[ProviderID(scheme: configuration.scheme, zone: offering.zone, instanceID: instanceID).description] != nil {
            instanceID = Self.instanceID(&random)
        }
        let boot = Duration.random(in: configuration.bootDelay, using: &random)
        let gpuDelay = configuration.gpuRegistrationDelay.map { Duration.random(in: $0, using: &random) }
        let launchedAt = now
        let readyAt = launchedAt.advanced(by: boot)
        let gpusAt: C.Instant? = type.gpuCount == 0 ? readyAt : gpuDelay.map { readyAt.advanced(by: $0) }
        let providerID = ProviderID(scheme: configuration.scheme, zone: offering.zone, instanceID: instanceID)
        let instance = CloudInstance(
            providerID: providerID.description, instanceType: type.name, zone: offering.zone,
            capacityType: offering.capacityType, launchID: request.launchID, tags: request.tags,
            state: .pending, launchTime: wallTime.date(of: launchedAt), pricePerHour: offering.pricePerHour)
        return Record(
            instance: instance, launchedAt: launchedAt, cycle: 0, readyAt: readyAt, gpusAt: gpusAt,
            stoppedAt: nil, stoppedIntervals: [], terminatedAt: nil,
            labels: type.labels(for: offering).merging(request.labels) { _, requested in requested },
            taints: request.taints)
    }

    static func seconds(_ duration: Duration) -> String { String(format: "%.1f", duration.seconds) }

    /// `i-` and 17 hex digits, like EC2's (the first is 0 here: 64 random bits).
    private static func instanceID(_ random: inout SeededGenerator) -> String {
        let hex = String(random.next(), radix: 16)
        return "i-0" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
