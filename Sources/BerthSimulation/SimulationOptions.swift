import BerthAdmission
import BerthProvisioner
import BerthScheduling

/// A policy `berth simulate` compares, all on the same trace: one of three kinds, Berth optionally
/// with warm capacity sized automatically for a target (`berth-warm-30s`).
public struct PolicyName: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, CaseIterable, Sendable {
        /// The webhook's mutation on every pod, then Berth's real ProvisionerCore driving the simulated cloud.
        case berth
        /// No webhook; one node group per GPU type; cluster-autoscaler's documented defaults.
        case clusterAutoscaler = "cluster-autoscaler"
        /// A fixed GPU pool sized to the trace's peak, always on.
        case `static`
    }

    public var kind: Kind
    /// Berth with `warm.mode: auto` and this `targetTimeToGPU` (the image puller on), whatever the
    /// configuration says; nil: Berth as configured.
    public var warmTarget: Duration?

    public init(_ kind: Kind, warmTarget: Duration? = nil) {
        self.kind = kind
        self.warmTarget = kind == .berth ? warmTarget : nil
    }

    public static let berth = PolicyName(.berth)
    public static let clusterAutoscaler = PolicyName(.clusterAutoscaler)
    public static let `static` = PolicyName(.static)
    /// The three kinds, as configured.
    public static let allCases = Kind.allCases.map { PolicyName($0) }

    /// `berth`, `cluster-autoscaler`, `static`, or `berth-warm-<target>` (a Go duration: `berth-warm-30s`).
    public init?(rawValue: String) {
        if let kind = Kind(rawValue: rawValue) {
            self.init(kind)
        } else if rawValue.hasPrefix("berth-warm-"), let target = try? GoDuration.parse(String(rawValue.dropFirst("berth-warm-".count))), target > .zero {
            self.init(.berth, warmTarget: target)
        } else {
            return nil
        }
    }

    public var rawValue: String { warmTarget.map { "berth-warm-" + GoDuration.format($0) } ?? kind.rawValue }
    public var description: String { rawValue }
}

/// How the simulated world behaves; the defaults are the issue's.
public struct SimulationOptions: Sendable {
    /// From launch to the Node registering Ready, seconds.
    public var bootDelay: ClosedRange<Double> = 45...90
    /// From Ready to the GPUs being allocatable (the device plugin), seconds.
    public var gpuDelay: ClosedRange<Double> = 30...60
    /// The notebook image's pull, seconds: what a GPU pod on a node that has not pulled it yet
    /// waits after the GPUs are allocatable (drawn once per node; later pods there do not wait).
    public var imagePullDelay: ClosedRange<Double> = 60...150
    /// A stopped warm node's start, to GPUs allocatable (Ready at three quarters of it), seconds.
    public var warmStartDelay: ClosedRange<Double> = 35...60
    public var seed: UInt64 = 1
    /// Berth's configuration: the default, as shipped, unless `--config` names one.
    public var provisioner = ProvisionerConfig()
    public var webhook = WebhookConfig()
    public var catalog = InstanceCatalog.builtIn()
    /// The CPU node group every policy shares (autoscaled the same simple way in each).
    public var cpuType = SimulationOptions.defaultCPUType
    /// How often Berth lists the cloud (garbage collection), seconds: Karpenter's garbage
    /// collection period.
    public var listingInterval = 120.0
    /// Stop this long after the trace's last pod would have finished even if pods are still
    /// waiting (they count as unscheduled).
    public var overrun = 86_400.0

    public init() {}

    /// m6i.2xlarge, us-east-1 on-demand.
    public static let defaultCPUType = InstanceType(
        name: "m6i.2xlarge", vcpu: 8, memoryMiB: 32 * 1024, maxPods: 58,
        offerings: [Offering(zone: "us-east-1a", capacityType: "on-demand", pricePerHour: 0.384)])

    /// Berth's configuration for `policy`: as configured, or with warm capacity `auto` at the
    /// policy's target and the image puller on (the chart deploys it with warm capacity).
    func berthConfig(_ policy: PolicyName) -> ProvisionerConfig {
        var config = provisioner
        if let target = policy.warmTarget {
            config.warm.mode = .auto
            config.warm.targetTimeToGPU = target
            config.warm.imagePuller = true
        }
        return config
    }

    var cloudConfiguration: SimulatedCloudConfiguration {
        SimulatedCloudConfiguration(
            catalog: catalog, seed: seed, bootDelay: .seconds(bootDelay.lowerBound) ... .seconds(bootDelay.upperBound),
            gpuRegistrationDelay: .seconds(gpuDelay.lowerBound) ... .seconds(gpuDelay.upperBound),
            warmStartDelay: .seconds(warmStartDelay.lowerBound) ... .seconds(warmStartDelay.upperBound))
    }
}
