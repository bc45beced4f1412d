import BerthModel
import BerthScheduling
import Foundation

/// How Berth launches on EC2: the region, the launch template (the node class), the subnets, and
/// the catalog's settings. What a pool's node class would say once the port carries one.
public struct EC2CloudConfiguration: Sendable {
    public var region: String
    /// Overrides `https://ec2.<region>.amazonaws.com` (private endpoints, tests). Plain http only to loopback.
    public var endpoint: AWSEndpoint?
    /// nil: the cloud can read the catalog and list, get and delete instances, but not launch.
    public var launchTemplate: LaunchTemplate?
    /// Zone → subnet id. An offering in a zone without a subnet is launched with an
    /// `AvailabilityZone` override (the template's or the default VPC's subnet).
    public var subnets: [String: String]
    /// The zones catalog offerings are made in; default: the subnets' zones, else `<region>a/b/c`.
    public var zones: [String]
    /// Spot offerings (priced from DescribeSpotPriceHistory) beside on-demand ones in the catalog.
    public var allowSpot: Bool
    /// Only types with GPUs in the catalog (Berth's pools are GPU pools).
    public var gpuOnly: Bool
    /// On-demand $/hour by type laid over the prices of `priceSource` (yours win: discounts, types
    /// the source lacks).
    public var onDemandPrices: [String: Double]
    /// Where on-demand prices come from (EC2 has no price API).
    public var priceSource: PriceSource
    /// How long prices read from the Price List are used before they are read again.
    public var priceRefreshInterval: TimeInterval
    public var catalogRefreshInterval: TimeInterval
    /// Node classes by name (`provisioner.nodeClasses`), and the one each pool launches with
    /// (pool → class). A pool without one launches with `launchTemplate`.
    public var nodeClasses: [String: NodeClass] = [:]
    public var poolNodeClasses: [String: String] = [:]
    /// The EKS cluster node classes join (name and any facts given instead of DescribeCluster's).
    public var eksCluster: EKSClusterSettings?
    /// Overrides of `https://ssm.<region>.amazonaws.com` and `https://eks.<region>.amazonaws.com`.
    public var ssmEndpoint: AWSEndpoint?
    public var eksEndpoint: AWSEndpoint?
    /// Overrides `https://iam.amazonaws.com` (node classes with a `role`).
    public var iamEndpoint: AWSEndpoint?
    /// The SQS queue (name or URL) EventBridge delivers spot interruptions and instance notices to;
    /// nil: none are read. `sqsEndpoint` overrides `https://sqs.<region>.amazonaws.com`.
    public var interruptionQueue: String?
    public var sqsEndpoint: AWSEndpoint?
    /// How long resolved node classes (AMIs, subnets, security groups, cluster) are used before
    /// they are resolved again.
    public var nodeClassRefreshInterval: TimeInterval = 3600
    /// MaxResults of paginated calls.
    public var pageSize: Int

    /// The root volume each launch gets, as the catalog states it to the scheduler: with node
    /// classes, the smallest `blockDevices.rootVolumeGiB` of the classes the pools use (one catalog
    /// serves every pool, so it never promises a pod more than any pool's nodes have); else the
    /// managed template's `rootVolumeGiB`; a template the user manages is assumed to keep the EKS
    /// AMI's 20 GiB (Berth does not read it).
    public var rootVolumeGiB: Int {
        if let smallest = poolNodeClasses.values.compactMap({ nodeClasses[$0]?.ephemeralStorageGiB }).min() { return smallest }
        if case let .managed(managed)? = launchTemplate, let size = managed.rootVolumeGiB { return size }
        return InstanceType.defaultRootVolumeGiB
    }

    public enum PriceSource: Sendable, Equatable {
        /// The built-in table: us-east-1's prices, whatever the region.
        case builtInTable
        /// The AWS Price List Query API for the region (`endpoint` overrides
        /// `https://api.pricing.<us-east-1|eu-central-1|ap-south-1>.amazonaws.com`), the built-in
        /// table only when it cannot be read (with a warning naming the region).
        case priceList(endpoint: AWSEndpoint?)
    }

    public enum LaunchTemplate: Sendable, Equatable {
        /// A template the user manages (its user data must join the cluster).
        case name(String)
        case id(String)
        /// A template Berth creates (one per distinct labels/taints, named `berth-<cluster>-<hash>`).
        case managed(ManagedLaunchTemplate)
    }

    public struct ManagedLaunchTemplate: Sendable, Equatable {
        public var imageID: String
        public var securityGroupIDs: [String]
        /// An instance profile name or ARN (Berth then needs iam:PassRole on its role).
        public var instanceProfile: String?
        public var cluster: EKSCluster
        public var userDataFormat: NodeUserData.Format
        public var rootVolumeGiB: Int?

        public init(imageID: String, securityGroupIDs: [String], instanceProfile: String?, cluster: EKSCluster,
                    userDataFormat: NodeUserData.Format = .al2023, rootVolumeGiB: Int? = 100) {
            self.imageID = imageID
            self.securityGroupIDs = securityGroupIDs
            self.instanceProfile = instanceProfile
            self.cluster = cluster
            self.userDataFormat = userDataFormat
            self.rootVolumeGiB = rootVolumeGiB
        }
    }

    public init(region: String, endpoint: AWSEndpoint? = nil, launchTemplate: LaunchTemplate?, subnets: [String: String] = [:],
                zones: [String] = [], allowSpot: Bool = false, gpuOnly: Bool = true, onDemandPrices: [String: Double] = [:],
                priceSource: PriceSource = .builtInTable, priceRefreshInterval: TimeInterval = 12 * 3600,
                catalogRefreshInterval: TimeInterval = 3600, pageSize: Int = 100) {
        self.region = region
        self.endpoint = endpoint
        self.launchTemplate = launchTemplate
        self.subnets = subnets
        self.zones = zones
        self.allowSpot = allowSpot
        self.gpuOnly = gpuOnly
        self.onDemandPrices = onDemandPrices
        self.priceSource = priceSource
        self.priceRefreshInterval = priceRefreshInterval
        self.catalogRefreshInterval = catalogRefreshInterval
        self.pageSize = pageSize
    }

    public static var builtInPrices: [String: Double] {
        Dictionary(InstanceCatalog.builtIn(zones: ["any"]).types.map { ($0.name, $0.pricePerHour) }, uniquingKeysWith: { first, _ in first })
    }

    public var effectiveZones: [String] {
        if !zones.isEmpty { return zones }
        if !subnets.isEmpty { return subnets.keys.sorted() }
        return ["a", "b", "c"].map { region + $0 }
    }

    /// The Price List endpoint and the region its requests are signed for; nil with the built-in table.
    public func pricingEndpoint() throws(AWSError) -> (endpoint: AWSEndpoint, region: String)? {
        guard case .priceList(let override) = priceSource else { return nil }
        let region = PriceListAPI.pricingRegion(for: self.region)
        guard let override else { return (PriceListAPI.endpoint(pricingRegion: region), region) }
        guard override.secure || override.isLoopback else {
            throw .invalidConfiguration("Price List endpoint \(override): plain http is allowed only to loopback addresses")
        }
        return (override, region)
    }

    /// The size of the volume a pool's nodes keep pods' ephemeral storage on (GiB): its node
    /// class's `blockDevices.rootVolumeGiB`, else the managed template's `rootVolumeGiB`; nil with a
    /// launch template you manage (Berth does not know it). What the scheduler's ephemeral-storage
    /// figure should come from instead of a fixed 20 GiB.
    public func ephemeralStorageGiB(pool: String) -> Int? {
        if let name = poolNodeClasses[pool], let nodeClass = nodeClasses[name] { return nodeClass.ephemeralStorageGiB }
        if case .managed(let managed)? = launchTemplate { return managed.rootVolumeGiB }
        return nil
    }

    /// An endpoint override, checked like EC2's (plain http only to loopback).
    static func checked(_ endpoint: AWSEndpoint?, _ service: String, default fallback: AWSEndpoint) throws(AWSError) -> AWSEndpoint {
        guard let endpoint else { return fallback }
        guard endpoint.secure || endpoint.isLoopback else {
            throw .invalidConfiguration("\(service) endpoint \(endpoint): plain http is allowed only to loopback addresses")
        }
        return endpoint
    }

    /// The EC2 endpoint: the override, else the region's.
    public func ec2Endpoint() throws(AWSError) -> AWSEndpoint {
        guard let endpoint else { return .ec2(region: region) }
        guard endpoint.secure || endpoint.isLoopback else {
            throw .invalidConfiguration("EC2 endpoint \(endpoint): plain http is allowed only to loopback addresses")
        }
        return endpoint
    }
}

extension EC2CloudConfiguration {
    /// On-demand prices from a file in `berth catalog -o json`'s shape (a list of entries with
    /// `name` and `pricePerHour`; a null price is skipped), read as strictly as `--catalog`:
    /// edit the catalog's output for your region or your discounts and hand it back.
    public static func prices(catalog json: JSON, source: String) throws(ConfigError) -> [String: Double] {
        guard let list = json.arrayValue else {
            throw ConfigError(path: source, message: "expected a list of {name, pricePerHour} (berth catalog -o json), found \(json.typeName)")
        }
        var prices: [String: Double] = [:]
        for (index, element) in list.enumerated() {
            let reader = try FieldReader(element, path: "\(source): [\(index)]", allowed: InstanceCatalog.fileFields)
            guard let name = try reader.string("name"), !name.isEmpty else { throw ConfigError(path: reader.childPath("name"), message: "is required") }
            guard let price = try reader.number("pricePerHour") else { continue }
            guard price >= 0, price.isFinite else { throw ConfigError(path: reader.childPath("pricePerHour"), message: "must be >= 0, found \(price)") }
            prices[name] = price
        }
        return prices
    }
}
