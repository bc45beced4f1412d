import BerthScheduling
import Foundation

/// A ``CloudProvider`` for the provisioner's unit tests (Karpenter's `cloudprovider/fake`): it
/// records every call, fails the next call of an operation with an injected error, treats chosen
/// offerings as out of capacity, and launches everything else at once (`running`) from the
/// request's first available offering. Stop and start change states at once too (`running` →
/// `stopped` → `running`); an instance ``insert(_:)``ed `pending` or `stopping` shows the
/// contract's refusals. `reset()` forgets everything.
public actor FakeCloudProvider: CloudProvider {
    public enum Operation: Sendable, Hashable {
        case create, delete, get, list, stop, start
    }

    public private(set) var createCalls: [LaunchRequest] = []
    public private(set) var deleteCalls: [String] = []
    public private(set) var getCalls: [String] = []
    public private(set) var listCalls: [String] = []
    public private(set) var stopCalls: [String] = []
    public private(set) var startCalls: [String] = []
    /// Live and terminated instances by provider id.
    public private(set) var instances: [String: CloudInstance] = [:]
    /// Offerings whose launches, and starts of stopped instances, fail with insufficient capacity.
    public private(set) var insufficientCapacity: Set<OfferingKey> = []

    private var nextErrors: [Operation: [CloudError]] = [:]
    private var launchOrder: [String] = []
    private var sequence = 0
    private let now: @Sendable () -> Date

    /// `now` stamps launch times (a `WallTime`'s `now`, say); a fixed date by default.
    public init(now: @escaping @Sendable () -> Date = { SimulatedCloudConfiguration.defaultEpoch }) {
        self.now = now
    }

    /// The next call of `operation` throws `error` (errors queue up, first in, first out).
    public func failNext(_ operation: Operation, with error: CloudError) {
        nextErrors[operation, default: []].append(error)
    }

    public func setInsufficientCapacity(_ offerings: Set<OfferingKey>) {
        insufficientCapacity = offerings
    }

    /// An instance Berth did not launch in this process (a leak for GC to find, say).
    public func insert(_ instance: CloudInstance) {
        if instances[instance.providerID] == nil { launchOrder.append(instance.providerID) }
        instances[instance.providerID] = instance
    }

    public func reset() {
        createCalls = []
        deleteCalls = []
        getCalls = []
        listCalls = []
        stopCalls = []
        startCalls = []
        instances = [:]
        insufficientCapacity = []
        nextErrors = [:]
        launchOrder = []
        sequence = 0
    }

    public func create(_ request: LaunchRequest) async throws(CloudError) -> CloudInstance {
        createCalls.append(request)
        try injectedError(.create)
        if let existing = instances.values.first(where: { $0.launchID == request.launchID && !request.launchID.isEmpty }) {
            return existing
        }
        try request.validate()
        var failed: [OfferingKey] = []
        for (type, offering) in request.attempts {
            let key = OfferingKey(type, offering)
            if insufficientCapacity.contains(key) {
                failed.append(key)
                continue
            }
            sequence += 1
            let instance = CloudInstance(
                providerID: ProviderID(scheme: "fake", zone: offering.zone, instanceID: "i-\(sequence)").description,
                instanceType: type.name, zone: offering.zone, capacityType: offering.capacityType,
                launchID: request.launchID, tags: request.tags, state: .running, launchTime: now(),
                pricePerHour: offering.pricePerHour)
            insert(instance)
            return instance
        }
        throw .insufficientCapacity(offerings: failed)
    }

    public func delete(providerID: String) async throws(CloudError) {
        deleteCalls.append(providerID)
        try injectedError(.delete)
        guard instances[providerID]?.state ?? .terminated != .terminated else { throw .notFound(providerID: providerID) }
        instances[providerID]?.state = .terminated
    }

    public func get(providerID: String) async throws(CloudError) -> CloudInstance {
        getCalls.append(providerID)
        try injectedError(.get)
        guard let instance = instances[providerID], instance.state != .terminated else {
            throw .notFound(providerID: providerID)
        }
        return instance
    }

    public func list(clusterTag: String) async throws(CloudError) -> [CloudInstance] {
        listCalls.append(clusterTag)
        try injectedError(.list)
        return launchOrder.compactMap { instances[$0] }.filter { $0.cluster == clusterTag && $0.state != .terminated }
    }

    public func stop(providerID: String) async throws(CloudError) {
        stopCalls.append(providerID)
        try injectedError(.stop)
        guard let instance = instances[providerID], instance.state != .terminated else { throw .notFound(providerID: providerID) }
        switch instance.state {
        case .pending: throw .invalidRequest("\(providerID) is pending: an instance can be stopped once it is running")
        case .running where instance.capacityType == "spot": throw .invalidRequest("\(providerID) is a spot instance: it cannot be stopped")
        case .running: instances[providerID]?.state = .stopped
        case .stopping, .stopped, .terminated: break
        }
    }

    public func start(providerID: String) async throws(CloudError) {
        startCalls.append(providerID)
        try injectedError(.start)
        guard let instance = instances[providerID], instance.state != .terminated else { throw .notFound(providerID: providerID) }
        switch instance.state {
        case .stopping: throw .invalidRequest("\(providerID) is still stopping: start it once it is stopped")
        case .stopped:
            let key = OfferingKey(instanceType: instance.instanceType, zone: instance.zone, capacityType: instance.capacityType)
            if insufficientCapacity.contains(key) { throw .insufficientCapacity(offerings: [key]) }
            instances[providerID]?.state = .running
        case .pending, .running, .terminated: break
        }
    }

    private func injectedError(_ operation: Operation) throws(CloudError) {
        guard var queue = nextErrors[operation], !queue.isEmpty else { return }
        let error = queue.removeFirst()
        nextErrors[operation] = queue
        throw error
    }
}
