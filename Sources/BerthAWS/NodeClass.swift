import BerthModel

/// How a pool's nodes are launched on EC2 (Karpenter's EC2NodeClass, as BerthConfig): which AMI
/// for each architecture, which subnets and security groups, the instance profile, the root
/// volume, IMDS options, tags, extra user data and kubelet settings. Read strictly from
/// `provisioner.nodeClasses.<name>`; resolved against AWS by ``NodeClassResolver``.
public struct NodeClass: Sendable, Equatable {
    public enum AMIFamily: String, Sendable, Equatable, CaseIterable {
        case al2023
        case bottlerocket
    }

    public enum AMITerm: Sendable, Equatable {
        /// `al2023@latest`, `al2023@v20250101`, `bottlerocket@latest`: SSM public parameters.
        case alias(family: AMIFamily, version: String)
        case id(String)
        /// Images carrying all these tags (the newest per architecture).
        case tags([String: String])
    }

    /// Subnets or security groups: by id, or by tags (all of a term's tags; terms are ORed).
    public enum SelectorTerm: Sendable, Equatable {
        case id(String)
        case tags([String: String])
    }

    public struct BlockDevices: Sendable, Equatable {
        /// The volume pods' ephemeral storage lives on (AL2023's root, Bottlerocket's data volume).
        public var rootVolumeGiB: Int = 100
        public var volumeType: String = "gp3"
        public var iops: Int?
        public var throughput: Int?
        public var encrypted: Bool = true
        public var deleteOnTermination: Bool = true
        public init() {}

        static func with(size: Int) -> BlockDevices {
            var devices = BlockDevices()
            devices.rootVolumeGiB = size
            return devices
        }
    }

    public struct MetadataOptions: Sendable, Equatable {
        public var httpTokens: String = "required"
        public var httpPutResponseHopLimit: Int = 1
        public var httpEndpoint: String = "enabled"
        public init() {}
    }

    public struct Kubelet: Sendable, Equatable {
        public var maxPods: Int?
        public var systemReserved: [String: String] = [:]
        public var kubeReserved: [String: String] = [:]
        public var evictionHard: [String: String] = [:]
        public init() {}
        public var isEmpty: Bool { maxPods == nil && systemReserved.isEmpty && kubeReserved.isEmpty && evictionHard.isEmpty }
    }

    public var name: String
    public var amiSelector: [AMITerm]
    /// The user data format: the alias's family, else `amiFamily` (default al2023).
    public var amiFamily: AMIFamily
    /// nil: `karpenter.sh/discovery: <cluster>`.
    public var subnetSelector: [SelectorTerm]?
    public var securityGroupSelector: [SelectorTerm]?
    /// An instance profile name or ARN.
    public var instanceProfile: String?
    /// Or a role (name or ARN): Berth makes an instance profile for it (`berth-<cluster>-<hash>`).
    public var role: String?
    public var blockDevices = BlockDevices()
    public var metadataOptions = MetadataOptions()
    /// On every resource a launch creates (Berth's own tags win).
    public var tags: [String: String] = [:]
    /// Merged into Berth's user data: another MIME part for AL2023 (a NodeConfig, a script),
    /// TOML appended for Bottlerocket.
    public var userData: String?
    public var kubelet = Kubelet()

    public init(name: String, amiSelector: [AMITerm], amiFamily: AMIFamily = .al2023) {
        self.name = name
        self.amiSelector = amiSelector
        self.amiFamily = amiFamily
    }

    /// The ephemeral storage a node of this class has: the size of the volume the kubelet's
    /// directories live on (what the scheduler should count instead of a fixed figure).
    public var ephemeralStorageGiB: Int { blockDevices.rootVolumeGiB }

    static let fields = [
        "amiSelector", "amiFamily", "subnetSelector", "securityGroupSelector", "instanceProfile", "role", "blockDevices", "metadataOptions",
        "tags", "userData", "kubelet",
    ]

    /// Every entry of `provisioner.nodeClasses`, strictly.
    public static func parseAll(_ json: JSON?, path: String) throws(ConfigError) -> [String: NodeClass] {
        guard let json else { return [:] }
        guard case .object(let object) = json else { throw ConfigError(path: path, message: "expected a map of name to node class, found \(json.typeName)") }
        var classes: [String: NodeClass] = [:]
        for member in object {
            classes[member.key] = try NodeClass(config: member.value, name: member.key, path: FieldReader.join(path, member.key))
        }
        return classes
    }

    public init(config json: JSON, name: String, path: String) throws(ConfigError) {
        let reader = try FieldReader(json, path: path, allowed: Self.fields)
        self.name = name
        guard let terms = try reader.list("amiSelector"), !terms.isEmpty else {
            throw ConfigError(path: reader.childPath("amiSelector"), message: "is required: [{alias: al2023@latest}], [{id: ami-...}] or [{tags: {...}}]")
        }
        var selector: [AMITerm] = []
        var aliasFamily: AMIFamily?
        for term in terms {
            let fields = try FieldReader(term.value, path: term.path, allowed: ["alias", "id", "tags"])
            let given = ["alias", "id", "tags"].filter { fields.value($0) != nil }
            guard given.count == 1 else { throw ConfigError(path: term.path, message: "needs exactly one of alias, id, tags") }
            if let alias = try fields.string("alias") {
                guard terms.count == 1 else { throw ConfigError(path: term.path, message: "an alias must be the only term") }
                let parts = alias.split(separator: "@", maxSplits: 1).map(String.init)
                guard parts.count == 2, let family = AMIFamily(rawValue: parts[0]) else {
                    throw ConfigError(path: fields.childPath("alias"), message: "\"\(alias)\" is not al2023@latest, al2023@vYYYYMMDD or bottlerocket@latest")
                }
                let version = parts[1]
                let dated = version.hasPrefix("v") && version.count == 9 && version.dropFirst().allSatisfy(\.isNumber)
                guard version == "latest" || (family == .al2023 && dated) else {
                    throw ConfigError(path: fields.childPath("alias"), message: "\"\(alias)\" is not al2023@latest, al2023@vYYYYMMDD or bottlerocket@latest")
                }
                aliasFamily = family
                selector.append(.alias(family: family, version: version))
            } else if let id = try fields.string("id") {
                guard id.hasPrefix("ami-") else { throw ConfigError(path: fields.childPath("id"), message: "\"\(id)\" is not an AMI id (ami-...)") }
                selector.append(.id(id))
            } else if let tags = try fields.stringMap("tags"), !tags.isEmpty {
                selector.append(.tags(tags))
            } else {
                throw ConfigError(path: fields.childPath("tags"), message: "needs at least one tag")
            }
        }
        amiSelector = selector
        if let text = try reader.string("amiFamily") {
            guard let family = AMIFamily(rawValue: text) else {
                throw ConfigError(path: reader.childPath("amiFamily"), message: "\"\(text)\" is not one of al2023, bottlerocket")
            }
            if let aliasFamily, aliasFamily != family {
                throw ConfigError(path: reader.childPath("amiFamily"), message: "\(text) contradicts the alias (\(aliasFamily.rawValue))")
            }
            amiFamily = family
        } else {
            amiFamily = aliasFamily ?? .al2023
        }
        subnetSelector = try Self.selector(reader, "subnetSelector", prefix: "subnet-")
        securityGroupSelector = try Self.selector(reader, "securityGroupSelector", prefix: "sg-")
        instanceProfile = try reader.string("instanceProfile")
        role = try reader.string("role")
        if instanceProfile != nil && role != nil {
            throw ConfigError(path: reader.childPath("role"), message: "give either role or instanceProfile, not both")
        }
        if let devices = try reader.object("blockDevices", allowed: ["rootVolumeGiB", "volumeType", "iops", "throughput", "encrypted", "deleteOnTermination"]) {
            func whole(_ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
                guard let value = try devices.number(key) else { return nil }
                guard value == value.rounded(), range.contains(Int(value)) else {
                    throw ConfigError(path: devices.childPath(key), message: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                }
                return Int(value)
            }
            blockDevices.rootVolumeGiB = try whole("rootVolumeGiB", 8...16384) ?? 100
            if let type = try devices.string("volumeType") {
                guard ["gp3", "gp2", "io1", "io2"].contains(type) else {
                    throw ConfigError(path: devices.childPath("volumeType"), message: "\"\(type)\" is not one of gp3, gp2, io1, io2")
                }
                blockDevices.volumeType = type
            }
            blockDevices.iops = try whole("iops", 100...256_000)
            blockDevices.throughput = try whole("throughput", 125...2000)
            if blockDevices.throughput != nil && blockDevices.volumeType != "gp3" {
                throw ConfigError(path: devices.childPath("throughput"), message: "applies to gp3 volumes only")
            }
            blockDevices.encrypted = try devices.bool("encrypted") ?? true
            blockDevices.deleteOnTermination = try devices.bool("deleteOnTermination") ?? true
        }
        if let options = try reader.object("metadataOptions", allowed: ["httpTokens", "httpPutResponseHopLimit", "httpEndpoint"]) {
            if let tokens = try options.string("httpTokens") {
                guard ["required", "optional"].contains(tokens) else {
                    throw ConfigError(path: options.childPath("httpTokens"), message: "\"\(tokens)\" is not one of required, optional")
                }
                metadataOptions.httpTokens = tokens
            }
            if let hops = try options.number("httpPutResponseHopLimit") {
                guard hops == hops.rounded(), hops >= 1, hops <= 64 else {
                    throw ConfigError(path: options.childPath("httpPutResponseHopLimit"), message: "must be a whole number from 1 to 64")
                }
                metadataOptions.httpPutResponseHopLimit = Int(hops)
            }
            if let endpoint = try options.string("httpEndpoint") {
                guard ["enabled", "disabled"].contains(endpoint) else {
                    throw ConfigError(path: options.childPath("httpEndpoint"), message: "\"\(endpoint)\" is not one of enabled, disabled")
                }
                metadataOptions.httpEndpoint = endpoint
            }
        }
        tags = try reader.stringMap("tags") ?? [:]
        for key in tags.keys where key.hasPrefix("berth.dev/") {
            throw ConfigError(path: FieldReader.join(reader.childPath("tags"), key), message: "berth.dev/ tags are Berth's own")
        }
        userData = try reader.string("userData")
        if let settings = try reader.object("kubelet", allowed: ["maxPods", "systemReserved", "kubeReserved", "evictionHard"]) {
            if let pods = try settings.number("maxPods") {
                guard pods == pods.rounded(), pods >= 1, pods <= 1000 else {
                    throw ConfigError(path: settings.childPath("maxPods"), message: "must be a whole number from 1 to 1000")
                }
                kubelet.maxPods = Int(pods)
            }
            kubelet.systemReserved = try settings.stringMap("systemReserved") ?? [:]
            kubelet.kubeReserved = try settings.stringMap("kubeReserved") ?? [:]
            kubelet.evictionHard = try settings.stringMap("evictionHard") ?? [:]
        }
    }

    static func selector(_ reader: FieldReader, _ key: String, prefix: String) throws(ConfigError) -> [SelectorTerm]? {
        guard let terms = try reader.list(key) else { return nil }
        guard !terms.isEmpty else { throw ConfigError(path: reader.childPath(key), message: "needs at least one term, {id: ...} or {tags: {...}}") }
        var result: [SelectorTerm] = []
        for term in terms {
            let fields = try FieldReader(term.value, path: term.path, allowed: ["id", "tags"])
            if let id = try fields.string("id") {
                guard id.hasPrefix(prefix), fields.value("tags") == nil else {
                    throw ConfigError(path: term.path, message: "needs exactly one of id (\(prefix)...), tags")
                }
                result.append(.id(id))
            } else if let tags = try fields.stringMap("tags"), !tags.isEmpty {
                result.append(.tags(tags))
            } else {
                throw ConfigError(path: term.path, message: "needs exactly one of id (\(prefix)...), tags")
            }
        }
        return result
    }
}
