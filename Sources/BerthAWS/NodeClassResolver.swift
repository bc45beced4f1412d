import BerthModel
import BerthNet
import BerthProvisioner
import Foundation

/// The EKS cluster a node class's nodes join: its name, and any fact given here instead of read
/// from EKS `DescribeCluster` (all four given: no EKS call at all).
public struct EKSClusterSettings: Sendable, Equatable {
    public var name: String
    public var endpoint: String?
    public var certificateAuthority: String?
    public var serviceCIDR: String?
    public var version: String?

    public init(name: String, endpoint: String? = nil, certificateAuthority: String? = nil, serviceCIDR: String? = nil, version: String? = nil) {
        self.name = name
        self.endpoint = endpoint
        self.certificateAuthority = certificateAuthority
        self.serviceCIDR = serviceCIDR
        self.version = version
    }

    var complete: EKSClusterFacts? {
        guard let endpoint, let certificateAuthority, let serviceCIDR, let version else { return nil }
        return EKSClusterFacts(name: name, endpoint: endpoint, certificateAuthority: certificateAuthority, serviceCIDR: serviceCIDR, version: version)
    }
}

/// A node class as AWS answered for it: an AMI per architecture (and per variant: NVIDIA for GPU
/// types, standard for the rest), the subnet of each zone, the security groups, the cluster.
public struct ResolvedNodeClass: Sendable, Equatable {
    public struct ImageKey: Hashable, Sendable {
        /// Kubernetes' name: `amd64`, `arm64`.
        public var arch: String
        public var accelerated: Bool
        public init(arch: String, accelerated: Bool) {
            self.arch = arch
            self.accelerated = accelerated
        }
    }

    public var nodeClass: NodeClass
    public var cluster: EKSClusterFacts
    public var images: [ImageKey: String]
    /// Zone → the selected subnet with the most free addresses there.
    public var subnets: [String: String]
    public var securityGroups: [String]
    /// The instance profile launches use: the class's own, or the one Berth made for its role.
    public var instanceProfile: String?
    /// Every subnet the selector matched (`subnets` keeps the roomiest per zone): an instance in
    /// one of them has not drifted.
    public var selectedSubnets: Set<String> = []

    /// The AMI for an instance type of this architecture; nil when none was selected for it: the
    /// type is never launched with another architecture's image.
    public func image(arch: String, accelerated: Bool) -> String? {
        images[ImageKey(arch: arch, accelerated: accelerated)]
    }
}

/// Resolves node classes against SSM (AMI aliases), EC2 (images, subnets, security groups) and
/// EKS (the cluster's facts). Every failure is an `AWSError` naming the node class and what did
/// not match: at start, one clear line.
public struct NodeClassResolver: Sendable {
    public let ec2: EC2API
    public let ssm: SSMAPI?
    public let eks: EKSAPI?
    public let iam: IAMAPI?

    public init(ec2: EC2API, ssm: SSMAPI?, eks: EKSAPI?, iam: IAMAPI? = nil) {
        self.ec2 = ec2
        self.ssm = ssm
        self.eks = eks
        self.iam = iam
    }

    /// The instance profile Berth keeps for a role: `berth-<cluster>-<12 hex of the role>`.
    public static func instanceProfileName(cluster: String, role: String) -> String {
        let safe = String(cluster.map { $0.isLetter || $0.isNumber || "+=,.@-_".contains($0) ? $0 : "-" }.prefix(90))
        return "berth-\(safe)-" + Digest.hex(Digest.sha256(Array(role.utf8))).prefix(12)
    }

    /// The class's instance profile; for a role, Berth's profile holding it (made, or given the
    /// role, when missing).
    public func instanceProfile(_ nodeClass: NodeClass, cluster: String) async throws(AWSError) -> String? {
        guard let role = nodeClass.role else { return nodeClass.instanceProfile }
        guard let iam else { throw .invalidConfiguration("node class \(nodeClass.name): role needs an IAM client") }
        let roleName = role.hasPrefix("arn:") ? String(role.split(separator: "/").last ?? Substring(role)) : role
        let name = Self.instanceProfileName(cluster: cluster, role: role)
        var roles = try await iam.instanceProfileRoleNames(name)
        if roles == nil {
            do throws(AWSError) {
                try await iam.createInstanceProfile(name, tags: [CloudTag.cluster: cluster])
            } catch where error.code == "EntityAlreadyExists" {}  // another replica made it meanwhile
            roles = []
        }
        if roles?.contains(roleName) != true {
            do throws(AWSError) {
                try await iam.addRole(roleName, toInstanceProfile: name)
            } catch where error.code == "LimitExceeded" {
                throw .invalidConfiguration("node class \(nodeClass.name): instance profile \(name) already holds another role")
            }
        }
        return name
    }

    public func cluster(_ settings: EKSClusterSettings) async throws(AWSError) -> EKSClusterFacts {
        if let complete = settings.complete { return complete }
        guard let eks else { throw .invalidConfiguration("EKS cluster \(settings.name): no EKS endpoint to describe it") }
        var facts = try await eks.describeCluster(name: settings.name)
        if let endpoint = settings.endpoint { facts.endpoint = endpoint }
        if let ca = settings.certificateAuthority { facts.certificateAuthority = ca }
        if let cidr = settings.serviceCIDR { facts.serviceCIDR = cidr }
        if let version = settings.version { facts.version = version }
        return facts
    }

    public func resolve(_ nodeClass: NodeClass, cluster: EKSClusterFacts) async throws(AWSError) -> ResolvedNodeClass {
        let images = try await images(nodeClass, version: cluster.version)
        guard !images.isEmpty else {
            throw .invalidConfiguration("node class \(nodeClass.name): amiSelector \(Self.describe(nodeClass.amiSelector)) selects no image for Kubernetes \(cluster.version)")
        }
        let subnets = try await selectSubnets(nodeClass, cluster: cluster.name)
        let groups = try await securityGroups(nodeClass, cluster: cluster.name)
        let profile = try await instanceProfile(nodeClass, cluster: cluster.name)
        return ResolvedNodeClass(nodeClass: nodeClass, cluster: cluster, images: images, subnets: subnets.best, securityGroups: groups,
                                 instanceProfile: profile, selectedSubnets: subnets.all)
    }

    /// Zone → the selected subnet with the most free addresses there; an error when none is selected.
    public func subnets(_ nodeClass: NodeClass, cluster: String) async throws(AWSError) -> [String: String] {
        try await selectSubnets(nodeClass, cluster: cluster).best
    }

    /// The roomiest selected subnet per zone, and every selected one.
    public func selectSubnets(_ nodeClass: NodeClass, cluster: String) async throws(AWSError) -> (best: [String: String], all: Set<String>) {
        let discovery: [NodeClass.SelectorTerm] = [.tags(["karpenter.sh/discovery": cluster])]
        var subnets: [EC2API.Subnet] = []
        for term in nodeClass.subnetSelector ?? discovery {
            switch term {
            case .id(let id): subnets += try await ec2.describeSubnets(ids: [id])
            case .tags(let tags): subnets += try await ec2.describeSubnets(filters: Self.tagFilters(tags))
            }
        }
        var byZone: [String: EC2API.Subnet] = [:]
        for subnet in subnets {
            if let current = byZone[subnet.zone],
               (current.availableAddresses, subnet.id) >= (subnet.availableAddresses, current.id) { continue }
            byZone[subnet.zone] = subnet
        }
        guard !byZone.isEmpty else {
            throw .invalidConfiguration("node class \(nodeClass.name): no subnet matches subnetSelector \(Self.describe(nodeClass.subnetSelector ?? discovery)) (tag your subnets karpenter.sh/discovery: \(cluster), or list them)")
        }
        return (byZone.mapValues(\.id), Set(subnets.map(\.id)))
    }

    /// The selected security groups, sorted; an error when none is selected.
    public func securityGroups(_ nodeClass: NodeClass, cluster: String) async throws(AWSError) -> [String] {
        let discovery: [NodeClass.SelectorTerm] = [.tags(["karpenter.sh/discovery": cluster])]
        var groups: [String] = []
        for term in nodeClass.securityGroupSelector ?? discovery {
            let found: [EC2API.SecurityGroup]
            switch term {
            case .id(let id): found = try await ec2.describeSecurityGroups(ids: [id])
            case .tags(let tags): found = try await ec2.describeSecurityGroups(filters: Self.tagFilters(tags))
            }
            for group in found where !groups.contains(group.id) { groups.append(group.id) }
        }
        guard !groups.isEmpty else {
            throw .invalidConfiguration("node class \(nodeClass.name): no security group matches securityGroupSelector \(Self.describe(nodeClass.securityGroupSelector ?? discovery))")
        }
        return groups.sorted()
    }

    /// The SSM parameter names of an alias for an architecture (`x86_64`, `arm64`) and variant.
    public static func parameter(family: NodeClass.AMIFamily, version: String, kubernetes: String, arch: String, accelerated: Bool) -> String {
        switch family {
        case .al2023:
            let variant = accelerated ? "nvidia" : "standard"
            let base = "/aws/service/eks/optimized-ami/\(kubernetes)/amazon-linux-2023/\(arch)/\(variant)"
            return version == "latest" ? "\(base)/recommended/image_id" : "\(base)/amazon-eks-node-al2023-\(arch)-\(variant)-\(kubernetes)-\(version)/image_id"
        case .bottlerocket:
            return "/aws/service/bottlerocket/aws-k8s-\(kubernetes)\(accelerated ? "-nvidia" : "")/\(arch)/latest/image_id"
        }
    }

    static let architectures = [("x86_64", "amd64"), ("arm64", "arm64")]

    public func images(_ nodeClass: NodeClass, version: String) async throws(AWSError) -> [ResolvedNodeClass.ImageKey: String] {
        var images: [ResolvedNodeClass.ImageKey: String] = [:]
        if case .alias(let family, let aliasVersion)? = nodeClass.amiSelector.first {
            guard let ssm else { throw .invalidConfiguration("node class \(nodeClass.name): no SSM endpoint to resolve its alias") }
            for (awsArch, arch) in Self.architectures {
                for accelerated in [true, false] {
                    let name = Self.parameter(family: family, version: aliasVersion, kubernetes: version, arch: awsArch, accelerated: accelerated)
                    if let id = try await ssm.parameter(name) { images[.init(arch: arch, accelerated: accelerated)] = id }
                }
            }
            return images
        }
        var found: [EC2API.Image] = []
        for term in nodeClass.amiSelector {
            switch term {
            case .id(let id): found += try await ec2.describeImages(ids: [id])
            case .tags(let tags): found += try await ec2.describeImages(filters: Self.tagFilters(tags))
            case .alias: break
            }
        }
        // The newest available image per architecture serves GPU and other types alike.
        for (awsArch, arch) in Self.architectures {
            let candidates = found.filter { $0.architecture == awsArch && ($0.state.isEmpty || $0.state == "available") }
            guard let newest = candidates.max(by: { ($0.creationDate ?? .distantPast, $0.id) < ($1.creationDate ?? .distantPast, $1.id) }) else { continue }
            images[.init(arch: arch, accelerated: true)] = newest.id
            images[.init(arch: arch, accelerated: false)] = newest.id
        }
        return images
    }

    static func tagFilters(_ tags: [String: String]) -> [EC2API.Filter] {
        tags.keys.sorted().map { key in tags[key] == "*" ? EC2API.Filter("tag-key", [key]) : EC2API.Filter("tag:\(key)", [tags[key]!]) }
    }

    static func describe(_ terms: [NodeClass.SelectorTerm]) -> String {
        "[" + terms.map { term in
            switch term {
            case .id(let id): "{id: \(id)}"
            case .tags(let tags): "{tags: {" + tags.keys.sorted().map { "\($0): \(tags[$0]!)" }.joined(separator: ", ") + "}}"
            }
        }.joined(separator: ", ") + "]"
    }

    static func describe(_ terms: [NodeClass.AMITerm]) -> String {
        "[" + terms.map { term in
            switch term {
            case .alias(let family, let version): "{alias: \(family.rawValue)@\(version)}"
            case .id(let id): "{id: \(id)}"
            case .tags(let tags): "{tags: {" + tags.keys.sorted().map { "\($0): \(tags[$0]!)" }.joined(separator: ", ") + "}}"
            }
        }.joined(separator: ", ") + "]"
    }
}
