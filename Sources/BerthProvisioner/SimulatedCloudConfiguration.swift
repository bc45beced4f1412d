import Foundation
import BerthScheduling

/// How the simulated cloud behaves: what it sells, how long instances take to boot and to show
/// their GPUs, to stop and to start again, where capacity runs out, and the seed of its randomness.
public struct SimulatedCloudConfiguration: Sendable {
    /// What can be launched: a request's offering must be one of these (zone and capacity type).
    public var catalog: InstanceCatalog
    /// Same seed and same launch ids: same instance ids and delays, whatever the launch order.
    public var seed: UInt64
    /// From launch to the Node registering Ready (the instance is `pending` until then).
    public var bootDelay: ClosedRange<Duration>
    /// From Ready to the GPUs being allocatable (the device plugin registering); nil: never — the
    /// most reported Karpenter GPU failure, for testing that Berth notices.
    public var gpuRegistrationDelay: ClosedRange<Duration>?
    /// From `stop` to the instance being `stopped` (it is `stopping`, still billed as running,
    /// until then): the OS shutting down.
    public var stopDelay: ClosedRange<Duration>
    /// From `start` of a stopped instance to its GPUs being allocatable again: its Node is Ready
    /// at three quarters of the drawn delay (boot, kubelet), its GPUs at the whole of it (the
    /// device plugin registering again). No image pull: the images are on its volume. A type
    /// without GPUs is Ready at three quarters; without a device plugin (`gpuRegistrationDelay`
    /// nil) the GPUs never appear, as at launch.
    public var warmStartDelay: ClosedRange<Duration>
    /// Where launches fail with insufficient capacity.
    public var outages: [CapacityOutage]
    /// The wall time of the clock's instant when the cloud is created (launch times are dates).
    public var epoch: Date
    /// The provider id scheme.
    public var scheme: String

    /// 2026-01-01T00:00:00Z: a fixed default, so that simulated launch times are reproducible.
    public static let defaultEpoch = Date(timeIntervalSince1970: 1_767_225_600)

    public init(
        catalog: InstanceCatalog = .builtIn(), seed: UInt64 = 1,
        bootDelay: ClosedRange<Duration> = .seconds(40) ... .seconds(80),
        gpuRegistrationDelay: ClosedRange<Duration>? = .seconds(10) ... .seconds(30),
        stopDelay: ClosedRange<Duration> = .seconds(20) ... .seconds(40),
        warmStartDelay: ClosedRange<Duration> = .seconds(35) ... .seconds(60),
        outages: [CapacityOutage] = [], epoch: Date = defaultEpoch, scheme: String = "sim"
    ) {
        self.catalog = catalog
        self.seed = seed
        self.bootDelay = bootDelay
        self.gpuRegistrationDelay = gpuRegistrationDelay
        self.stopDelay = stopDelay
        self.warmStartDelay = warmStartDelay
        self.outages = outages
        self.epoch = epoch
        self.scheme = scheme
    }
}

/// Capacity that is not there: launches of the matching offerings, and starts of stopped
/// instances of them, fail with insufficient capacity, for `failures` attempts or (nil) until cleared. A nil field matches anything:
/// `CapacityOutage(instanceType: "g4dn.xlarge", zone: "us-east-1a")` is "g4dn.xlarge in
/// us-east-1a has no capacity"; `CapacityOutage(failures: 2)` fails the next two attempts anywhere.
public struct CapacityOutage: Sendable, Equatable {
    public var instanceType: String?
    public var zone: String?
    public var capacityType: String?
    public var failures: Int?

    public init(instanceType: String? = nil, zone: String? = nil, capacityType: String? = nil, failures: Int? = nil) {
        self.instanceType = instanceType
        self.zone = zone
        self.capacityType = capacityType
        self.failures = failures
    }

    public func matches(_ offering: OfferingKey) -> Bool {
        (instanceType ?? offering.instanceType) == offering.instanceType && (zone ?? offering.zone) == offering.zone
            && (capacityType ?? offering.capacityType) == offering.capacityType
    }
}
