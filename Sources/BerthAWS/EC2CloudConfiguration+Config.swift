import BerthModel

extension EC2CloudConfiguration {
    /// Reads the `provisioner.aws:` section of a BerthConfig, strictly (unknown fields are errors
    /// naming their path):
    /// ```yaml
    /// aws:
    ///   region: us-east-1            # default: AWS_REGION / the profile's region
    ///   endpoint: https://...        # optional override (http:// only to loopback)
    ///   subnets: {us-east-1a: subnet-0abc, us-east-1b: subnet-0def}
    ///   zones: [us-east-1a, us-east-1b]
    ///   allowSpot: false
    ///   onDemandPrices: {g5.xlarge: 1.1}   # $/hour laid over the Price List's (discounts, missing types)
    ///   pricingEndpoint: https://...  # Price List override (default AWS_ENDPOINT_URL_PRICING, else AWS's)
    ///   interruptionQueue: berth-ml  # SQS queue EventBridge feeds with spot interruptions (name or URL)
    ///   eksCluster: {name: ml}       # node classes' cluster (default: provisioner.clusterName); facts given here skip DescribeCluster
    ///   launchTemplate:              # one of name, id, managed
    ///     name: gpu-nodes
    ///     managed:
    ///       imageID: ami-0123
    ///       securityGroupIDs: [sg-0123]
    ///       instanceProfile: berth-node
    ///       userDataFormat: al2023   # or al2
    ///       rootVolumeGiB: 100
    ///       cluster: {name: ml, apiServerEndpoint: https://..., certificateAuthority: LS0t..., serviceCIDR: 10.100.0.0/16}
    /// ```
    public init(config json: JSON?, path: String, defaultRegion: String?) throws(ConfigError) {
        guard let json else {
            guard let defaultRegion else { throw ConfigError(path: path, message: "region is required (set it here or AWS_REGION)") }
            self.init(region: defaultRegion, launchTemplate: nil, priceSource: .priceList(endpoint: nil))
            return
        }
        let reader = try FieldReader(json, path: path, allowed: [
            "region", "endpoint", "subnets", "zones", "allowSpot", "launchTemplate", "onDemandPrices", "pricingEndpoint", "eksCluster",
            "interruptionQueue",
        ])
        guard let region = try reader.string("region") ?? defaultRegion, !region.isEmpty else {
            throw ConfigError(path: reader.childPath("region"), message: "is required (set it here or AWS_REGION)")
        }
        var endpoint: AWSEndpoint?
        if let text = try reader.string("endpoint") {
            do { endpoint = try AWSEndpoint(url: text, what: reader.childPath("endpoint")) } catch {
                throw ConfigError(path: reader.childPath("endpoint"), message: "\(error)")
            }
        }
        var pricingEndpoint: AWSEndpoint?
        if let text = try reader.string("pricingEndpoint") {
            do { pricingEndpoint = try AWSEndpoint(url: text, what: reader.childPath("pricingEndpoint")) } catch {
                throw ConfigError(path: reader.childPath("pricingEndpoint"), message: "\(error)")
            }
        }
        var prices: [String: Double] = [:]
        if let table = reader.value("onDemandPrices") {
            guard case .object(let members) = table else {
                throw ConfigError(path: reader.childPath("onDemandPrices"), message: "expected a map of instance type to $/hour, found \(table.typeName)")
            }
            for member in members {
                guard case .number(let text) = member.value, let price = Double(text), price >= 0, price.isFinite else {
                    let found = if case .number(let text) = member.value { text } else { member.value.typeName }
                    throw ConfigError(path: FieldReader.join(reader.childPath("onDemandPrices"), member.key),
                                      message: "must be a price in $/hour (a number >= 0), found \(found)")
                }
                prices[member.key] = price
            }
        }
        var eks: EKSClusterSettings?
        if let cluster = try reader.object("eksCluster", allowed: ["name", "endpoint", "certificateAuthority", "serviceCIDR", "version"]) {
            guard let name = try cluster.string("name"), !name.isEmpty else { throw ConfigError(path: cluster.childPath("name"), message: "is required") }
            let cidr = try cluster.string("serviceCIDR")
            if let cidr, EKSClusterFacts.dnsIP(serviceCIDR: cidr) == nil {
                throw ConfigError(path: cluster.childPath("serviceCIDR"), message: "\"\(cidr)\" is not an IPv4 CIDR such as 10.100.0.0/16")
            }
            eks = EKSClusterSettings(name: name, endpoint: try cluster.string("endpoint"), certificateAuthority: try cluster.string("certificateAuthority"),
                                     serviceCIDR: cidr, version: try cluster.string("version"))
        }
        var template: LaunchTemplate?
        if let launch = try reader.object("launchTemplate", allowed: ["name", "id", "managed"]) {
            let given = ["name", "id", "managed"].filter { launch.value($0) != nil }
            guard given.count == 1 else {
                throw ConfigError(path: launch.path, message: "needs exactly one of name, id, managed (found \(given.isEmpty ? "none" : given.joined(separator: ", ")))")
            }
            if let name = try launch.string("name") {
                template = .name(name)
            } else if let id = try launch.string("id") {
                template = .id(id)
            } else if let managed = try launch.object("managed", allowed: ["imageID", "securityGroupIDs", "instanceProfile", "userDataFormat", "rootVolumeGiB", "cluster"]) {
                guard let image = try managed.string("imageID"), !image.isEmpty else { throw ConfigError(path: managed.childPath("imageID"), message: "is required") }
                let formatText = try managed.string("userDataFormat") ?? "al2023"
                guard let format = NodeUserData.Format(rawValue: formatText) else {
                    throw ConfigError(path: managed.childPath("userDataFormat"), message: "\"\(formatText)\" is not one of al2023, al2")
                }
                guard let cluster = try managed.object("cluster", allowed: ["name", "apiServerEndpoint", "certificateAuthority", "serviceCIDR"]) else {
                    throw ConfigError(path: managed.childPath("cluster"), message: "is required: name, apiServerEndpoint, certificateAuthority")
                }
                func required(_ reader: FieldReader, _ key: String) throws(ConfigError) -> String {
                    guard let value = try reader.string(key), !value.isEmpty else { throw ConfigError(path: reader.childPath(key), message: "is required") }
                    return value
                }
                var rootVolume: Int? = 100
                if let size = try managed.number("rootVolumeGiB") {
                    guard size == size.rounded(), size >= 8, size <= 16384 else {
                        throw ConfigError(path: managed.childPath("rootVolumeGiB"), message: "must be a whole number from 8 to 16384")
                    }
                    rootVolume = Int(size)
                }
                template = .managed(ManagedLaunchTemplate(
                    imageID: image, securityGroupIDs: try managed.stringList("securityGroupIDs") ?? [],
                    instanceProfile: try managed.string("instanceProfile"),
                    cluster: EKSCluster(
                        name: try required(cluster, "name"), apiServerEndpoint: try required(cluster, "apiServerEndpoint"),
                        certificateAuthority: try required(cluster, "certificateAuthority"),
                        serviceCIDR: try cluster.string("serviceCIDR") ?? "10.100.0.0/16"),
                    userDataFormat: format, rootVolumeGiB: rootVolume))
            }
        }
        self.init(
            region: region, endpoint: endpoint, launchTemplate: template, subnets: try reader.stringMap("subnets") ?? [:],
            zones: try reader.stringList("zones") ?? [], allowSpot: try reader.bool("allowSpot") ?? false, onDemandPrices: prices,
            priceSource: .priceList(endpoint: pricingEndpoint))
        eksCluster = eks
        if let queue = try reader.string("interruptionQueue") {
            guard !queue.isEmpty, queue.count <= 1024 else { throw ConfigError(path: reader.childPath("interruptionQueue"), message: "must be a queue name or URL") }
            interruptionQueue = queue
        }
    }
}
