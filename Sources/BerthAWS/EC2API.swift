import BerthModel
import Foundation

/// The EC2 actions Berth calls (API version 2016-11-15), each a thin typed wrapper over
/// ``AWSQueryClient``: parameters in, the fields Berth reads out. Paginated actions follow
/// `NextToken` to the end.
public struct EC2API: Sendable {
    public static let version = "2016-11-15"
    public let client: AWSQueryClient

    public init(client: AWSQueryClient) {
        self.client = client
    }

    /// A filter: `Filter.N.Name` with its `Filter.N.Value.M`s.
    public struct Filter: Sendable, Equatable {
        public var name: String
        public var values: [String]
        public init(_ name: String, _ values: [String]) {
            self.name = name
            self.values = values
        }
    }

    static func filterParameters(_ filters: [Filter]) -> [(String, String)] {
        var parameters: [(String, String)] = []
        for (index, filter) in filters.enumerated() {
            parameters.append(("Filter.\(index + 1).Name", filter.name))
            for (valueIndex, value) in filter.values.enumerated() {
                parameters.append(("Filter.\(index + 1).Value.\(valueIndex + 1)", value))
            }
        }
        return parameters
    }

    /// Calls `action` page by page (`MaxResults` = `pageSize`, `NextToken`), handing each page's root to `page`.
    /// `pageSize` is clamped to `limits` (EC2 refuses MaxResults outside each action's range).
    func paginate(_ action: String, _ parameters: [(String, String)], pageSize: Int?, limits: ClosedRange<Int> = 5...1000,
                  _ page: (XMLNode) throws(AWSError) -> Void) async throws(AWSError) {
        let pageSize = pageSize.map { min(max($0, limits.lowerBound), limits.upperBound) }
        var token: String?
        var pages = 0
        repeat {
            var request = parameters
            if let pageSize { request.append(("MaxResults", String(pageSize))) }
            if let token { request.append(("NextToken", token)) }
            let root = try await client.call(action, request)
            try page(root)
            let next = root.string("nextToken") ?? root.string("NextToken")
            token = next?.isEmpty == false ? next : nil
            pages += 1
            if pages > 10_000 { throw .malformedResponse(action: action, reason: "more than 10000 pages: NextToken never ends") }
        } while token != nil
    }

    // MARK: DescribeInstanceTypes

    public struct InstanceTypeInfo: Sendable, Equatable {
        public var name: String
        public var vcpu: Int
        public var memoryMiB: Int64
        public var architectures: [String]
        public var gpuName: String
        public var gpuManufacturer: String
        public var gpuCount: Int
        public var gpuMemoryMiB: Int
        public var maxNetworkInterfaces: Int
        public var ipv4PerInterface: Int
        public var usageClasses: [String]
    }

    public func describeInstanceTypes(pageSize: Int = 100, filters: [Filter] = []) async throws(AWSError) -> [InstanceTypeInfo] {
        var types: [InstanceTypeInfo] = []
        try await paginate("DescribeInstanceTypes", Self.filterParameters(filters), pageSize: pageSize, limits: 5...100) { root throws(AWSError) in
            for item in root.items("instanceTypeSet") {
                types.append(try Self.instanceType(item))
            }
        }
        return types
    }

    static func instanceType(_ item: XMLNode) throws(AWSError) -> InstanceTypeInfo {
        let action = "DescribeInstanceTypes"
        guard let name = item.string("instanceType"), !name.isEmpty else {
            throw .malformedResponse(action: action, reason: "an instanceTypeSet item has no instanceType")
        }
        guard let vcpu = item.string("vCpuInfo", "defaultVCpus").flatMap({ Int($0) }) else {
            throw .malformedResponse(action: action, reason: "\(name): vCpuInfo.defaultVCpus missing or not a number")
        }
        guard let memory = item.string("memoryInfo", "sizeInMiB").flatMap({ Int64($0) }) else {
            throw .malformedResponse(action: action, reason: "\(name): memoryInfo.sizeInMiB missing or not a number")
        }
        let gpus = item.items("gpuInfo", "gpus")
        let gpuCount = gpus.compactMap { $0.string("count").flatMap { Int($0) } }.reduce(0, +)
        return InstanceTypeInfo(
            name: name, vcpu: vcpu, memoryMiB: memory,
            architectures: item.items("processorInfo", "supportedArchitectures").map { $0.text },
            gpuName: gpus.first?.string("name") ?? "", gpuManufacturer: gpus.first?.string("manufacturer") ?? "",
            gpuCount: gpuCount, gpuMemoryMiB: gpus.first?.string("memoryInfo", "sizeInMiB").flatMap { Int($0) } ?? 0,
            maxNetworkInterfaces: item.string("networkInfo", "maximumNetworkInterfaces").flatMap { Int($0) } ?? 0,
            ipv4PerInterface: item.string("networkInfo", "ipv4AddressesPerInterface").flatMap { Int($0) } ?? 0,
            usageClasses: item.items("supportedUsageClasses").map { $0.text })
    }

    // MARK: DescribeInstanceTypeOfferings

    /// Which types are sold in which of `zones`: `type/zone` keys.
    public func describeInstanceTypeOfferings(zones: [String], pageSize: Int = 1000) async throws(AWSError) -> Set<String> {
        var offered: Set<String> = []
        let parameters = [("LocationType", "availability-zone")] + Self.filterParameters([Filter("location", zones)])
        try await paginate("DescribeInstanceTypeOfferings", parameters, pageSize: pageSize) { root throws(AWSError) in
            for item in root.items("instanceTypeOfferingSet") {
                guard let type = item.string("instanceType"), let zone = item.string("location") else {
                    throw .malformedResponse(action: "DescribeInstanceTypeOfferings", reason: "an item lacks instanceType or location")
                }
                offered.insert("\(type)/\(zone)")
            }
        }
        return offered
    }

    // MARK: DescribeInstances

    public struct Instance: Sendable, Equatable {
        public var id: String
        public var instanceType: String
        public var zone: String
        public var state: String
        public var launchTime: Date
        public var tags: [String: String]
        /// `spot`, or nil for on-demand.
        public var lifecycle: String?
        public var subnetID: String? = nil
        public var securityGroupIDs: [String] = []
    }

    public func describeInstances(ids: [String] = [], filters: [Filter] = [], pageSize: Int? = nil) async throws(AWSError) -> [Instance] {
        var parameters = Self.filterParameters(filters)
        for (index, id) in ids.enumerated() { parameters.append(("InstanceId.\(index + 1)", id)) }
        var instances: [Instance] = []
        // MaxResults may not be combined with instance ids.
        try await paginate("DescribeInstances", parameters, pageSize: ids.isEmpty ? pageSize : nil) { root throws(AWSError) in
            for reservation in root.items("reservationSet") {
                for item in reservation.items("instancesSet") {
                    instances.append(try Self.instance(item))
                }
            }
        }
        return instances
    }

    static func instance(_ item: XMLNode) throws(AWSError) -> Instance {
        let action = "DescribeInstances"
        guard let id = item.string("instanceId"), !id.isEmpty else { throw .malformedResponse(action: action, reason: "an instance has no instanceId") }
        guard let launch = item.string("launchTime"), let launchTime = RFC3339.parse(launch) else {
            throw .malformedResponse(action: action, reason: "\(id): launchTime missing or not a date: \(item.string("launchTime") ?? "absent")")
        }
        var tags: [String: String] = [:]
        for tag in item.items("tagSet") {
            if let key = tag.string("key") { tags[key] = tag.string("value") ?? "" }
        }
        return Instance(
            id: id, instanceType: item.string("instanceType") ?? "", zone: item.string("placement", "availabilityZone") ?? "",
            state: item.string("instanceState", "name") ?? "", launchTime: launchTime, tags: tags, lifecycle: item.string("instanceLifecycle"),
            subnetID: item.string("subnetId"), securityGroupIDs: item.items("groupSet").compactMap { $0.string("groupId") })
    }

    // MARK: CreateFleet

    public struct FleetOverride: Sendable, Equatable {
        public var instanceType: String
        public var zone: String
        public var subnetID: String?
    }

    public struct FleetRequest: Sendable {
        public enum Template: Sendable, Equatable {
            case name(String)
            case id(String)
        }
        public var clientToken: String
        public var capacityType: String
        /// One launch template per AMI (architecture), each with the overrides it launches.
        public var configs: [(template: Template, overrides: [FleetOverride])]
        /// Every override, in order.
        public var overrides: [FleetOverride] { configs.flatMap(\.overrides) }
        /// Tags on everything the fleet creates: the instance, its volumes, and the fleet itself
        /// (IAM conditions on `aws:RequestTag/...` apply to each of them).
        public var tags: [String: String]
    }

    public struct FleetResult: Sendable, Equatable {
        public struct Launched: Sendable, Equatable {
            public var instanceIDs: [String]
            public var instanceType: String
            public var lifecycle: String
            public var subnetID: String?
            public var zone: String?
        }
        public struct Failure: Sendable, Equatable {
            public var code: String
            public var message: String
            public var instanceType: String?
            public var zone: String?
            public var subnetID: String?
        }
        public var fleetID: String
        public var launched: [Launched]
        public var errors: [Failure]
    }

    public func createFleet(_ request: FleetRequest) async throws(AWSError) -> FleetResult {
        var parameters: [(String, String)] = [
            ("Type", "instant"), ("ClientToken", request.clientToken),
            ("TargetCapacitySpecification.TotalTargetCapacity", "1"),
            ("TargetCapacitySpecification.DefaultTargetCapacityType", request.capacityType),
        ]
        if request.capacityType == "spot" {
            parameters.append(("SpotOptions.AllocationStrategy", "price-capacity-optimized"))
        } else {
            parameters.append(("OnDemandOptions.AllocationStrategy", "lowest-price"))
        }
        for (configIndex, entry) in request.configs.enumerated() {
            let config = "LaunchTemplateConfigs.\(configIndex + 1)"
            switch entry.template {
            case .name(let name): parameters.append(("\(config).LaunchTemplateSpecification.LaunchTemplateName", name))
            case .id(let id): parameters.append(("\(config).LaunchTemplateSpecification.LaunchTemplateId", id))
            }
            parameters.append(("\(config).LaunchTemplateSpecification.Version", "$Latest"))
            for (index, override) in entry.overrides.enumerated() {
                let prefix = "\(config).Overrides.\(index + 1)"
                parameters.append(("\(prefix).InstanceType", override.instanceType))
                if let subnet = override.subnetID {
                    parameters.append(("\(prefix).SubnetId", subnet))
                } else {
                    parameters.append(("\(prefix).AvailabilityZone", override.zone))
                }
            }
        }
        for (index, resourceType) in Self.fleetTaggedResources.enumerated() {
            parameters += Self.tagSpecification(index: index + 1, resourceType: resourceType, tags: request.tags)
        }
        let root = try await client.call("CreateFleet", parameters)
        guard let fleetID = root.string("fleetId") else { throw .malformedResponse(action: "CreateFleet", reason: "no fleetId") }
        let launched = root.items("fleetInstanceSet").map { item in
            FleetResult.Launched(
                instanceIDs: item.items("instanceIds").map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) },
                instanceType: item.string("instanceType") ?? "", lifecycle: item.string("lifecycle") ?? request.capacityType,
                subnetID: item.string("launchTemplateAndOverrides", "overrides", "subnetId"),
                zone: item.string("launchTemplateAndOverrides", "overrides", "availabilityZone"))
        }
        let errors = root.items("errorSet").map { item in
            FleetResult.Failure(
                code: item.string("errorCode") ?? "", message: item.string("errorMessage") ?? "",
                instanceType: item.string("launchTemplateAndOverrides", "overrides", "instanceType"),
                zone: item.string("launchTemplateAndOverrides", "overrides", "availabilityZone"),
                subnetID: item.string("launchTemplateAndOverrides", "overrides", "subnetId"))
        }
        return FleetResult(fleetID: fleetID, launched: launched, errors: errors)
    }

    /// What `CreateFleet` (`instant`) tags at launch. Network interfaces are tagged by the launch
    /// template (``LaunchTemplateData/tags``): CreateFleet's own tag specifications do not reach them.
    public static let fleetTaggedResources = ["instance", "volume", "fleet"]

    /// What a launch template Berth creates tags at launch, beside the template itself.
    public static let templateTaggedResources = ["network-interface", "volume"]

    static func tagSpecification(index: Int, resourceType: String, tags: [String: String], prefix: String = "") -> [(String, String)] {
        var parameters = [("\(prefix)TagSpecification.\(index).ResourceType", resourceType)]
        for (tagIndex, key) in tags.keys.sorted().enumerated() {
            parameters.append(("\(prefix)TagSpecification.\(index).Tag.\(tagIndex + 1).Key", key))
            parameters.append(("\(prefix)TagSpecification.\(index).Tag.\(tagIndex + 1).Value", tags[key]!))
        }
        return parameters
    }

    // MARK: Subnets, security groups, images (node classes)

    public struct Subnet: Sendable, Equatable {
        public var id: String
        public var zone: String
        public var vpcID: String
        public var availableAddresses: Int
        public var defaultForZone: Bool
        public var tags: [String: String]
    }

    public func describeSubnets(ids: [String] = [], filters: [Filter] = []) async throws(AWSError) -> [Subnet] {
        var parameters = Self.filterParameters(filters)
        for (index, id) in ids.enumerated() { parameters.append(("SubnetId.\(index + 1)", id)) }
        var subnets: [Subnet] = []
        try await paginate("DescribeSubnets", parameters, pageSize: ids.isEmpty ? 1000 : nil) { root throws(AWSError) in
            for item in root.items("subnetSet") {
                guard let id = item.string("subnetId"), let zone = item.string("availabilityZone") else {
                    throw .malformedResponse(action: "DescribeSubnets", reason: "a subnet lacks subnetId or availabilityZone")
                }
                subnets.append(Subnet(
                    id: id, zone: zone, vpcID: item.string("vpcId") ?? "", availableAddresses: item.string("availableIpAddressCount").flatMap { Int($0) } ?? 0,
                    defaultForZone: item.string("defaultForAz") == "true", tags: Self.tags(item)))
            }
        }
        return subnets
    }

    public struct SecurityGroup: Sendable, Equatable {
        public var id: String
        public var name: String
        public var vpcID: String
    }

    public func describeSecurityGroups(ids: [String] = [], filters: [Filter] = []) async throws(AWSError) -> [SecurityGroup] {
        var parameters = Self.filterParameters(filters)
        for (index, id) in ids.enumerated() { parameters.append(("GroupId.\(index + 1)", id)) }
        var groups: [SecurityGroup] = []
        try await paginate("DescribeSecurityGroups", parameters, pageSize: ids.isEmpty ? 1000 : nil) { root throws(AWSError) in
            for item in root.items("securityGroupInfo") {
                guard let id = item.string("groupId") else { throw .malformedResponse(action: "DescribeSecurityGroups", reason: "a group lacks groupId") }
                groups.append(SecurityGroup(id: id, name: item.string("groupName") ?? "", vpcID: item.string("vpcId") ?? ""))
            }
        }
        return groups
    }

    public struct Image: Sendable, Equatable {
        public var id: String
        public var name: String
        /// `x86_64` or `arm64`.
        public var architecture: String
        public var creationDate: Date?
        public var state: String
    }

    public func describeImages(ids: [String] = [], filters: [Filter] = []) async throws(AWSError) -> [Image] {
        var parameters = Self.filterParameters(filters)
        for (index, id) in ids.enumerated() { parameters.append(("ImageId.\(index + 1)", id)) }
        let root = try await client.call("DescribeImages", parameters)
        return try root.items("imagesSet").map { item throws(AWSError) in
            guard let id = item.string("imageId"), let architecture = item.string("architecture") else {
                throw .malformedResponse(action: "DescribeImages", reason: "an image lacks imageId or architecture")
            }
            return Image(id: id, name: item.string("name") ?? "", architecture: architecture,
                         creationDate: item.string("creationDate").flatMap(RFC3339.parse), state: item.string("imageState") ?? "")
        }
    }

    static func tags(_ item: XMLNode) -> [String: String] {
        var tags: [String: String] = [:]
        for tag in item.items("tagSet") { if let key = tag.string("key") { tags[key] = tag.string("value") ?? "" } }
        return tags
    }

    // MARK: TerminateInstances, StopInstances, StartInstances

    /// One instance's change as TerminateInstances, StopInstances and StartInstances answer it.
    public struct StateChange: Sendable, Equatable {
        public var instanceID: String
        public var previousState: String
        public var currentState: String
    }

    public func terminateInstances(ids: [String]) async throws(AWSError) -> [StateChange] {
        try await changeStates("TerminateInstances", ids: ids)
    }

    /// Stops EBS-backed instances (not hibernating, not forced): EC2 answers `stopping` (or the
    /// state of one already stopping or stopped).
    public func stopInstances(ids: [String]) async throws(AWSError) -> [StateChange] {
        try await changeStates("StopInstances", ids: ids)
    }

    /// Starts stopped instances: EC2 answers `pending` (or the state of one already pending or running).
    public func startInstances(ids: [String]) async throws(AWSError) -> [StateChange] {
        try await changeStates("StartInstances", ids: ids)
    }

    private func changeStates(_ action: String, ids: [String]) async throws(AWSError) -> [StateChange] {
        let parameters = ids.enumerated().map { ("InstanceId.\($0.offset + 1)", $0.element) }
        let root = try await client.call(action, parameters)
        return root.items("instancesSet").map { item in
            StateChange(instanceID: item.string("instanceId") ?? "", previousState: item.string("previousState", "name") ?? "",
                        currentState: item.string("currentState", "name") ?? "")
        }
    }

    // MARK: DescribeSpotPriceHistory

    public struct SpotPrice: Sendable, Equatable {
        public var instanceType: String
        public var zone: String
        public var price: Double
        public var timestamp: Date?
    }

    /// The current spot prices (`StartTime` = now: one price per type and zone) for Linux.
    public func describeSpotPriceHistory(instanceTypes: [String], now: Date, pageSize: Int = 1000) async throws(AWSError) -> [SpotPrice] {
        var parameters: [(String, String)] = [("StartTime", RFC3339.string(now)), ("ProductDescription.1", "Linux/UNIX"), ("ProductDescription.2", "Linux/UNIX (Amazon VPC)")]
        for (index, type) in instanceTypes.enumerated() { parameters.append(("InstanceType.\(index + 1)", type)) }
        var prices: [SpotPrice] = []
        try await paginate("DescribeSpotPriceHistory", parameters, pageSize: pageSize) { root throws(AWSError) in
            for item in root.items("spotPriceHistorySet") {
                guard let type = item.string("instanceType"), let zone = item.string("availabilityZone"),
                      let text = item.string("spotPrice"), let price = Double(text) else {
                    throw .malformedResponse(action: "DescribeSpotPriceHistory", reason: "an item lacks instanceType, availabilityZone or a numeric spotPrice")
                }
                prices.append(SpotPrice(instanceType: type, zone: zone, price: price, timestamp: item.string("timestamp").flatMap(RFC3339.parse)))
            }
        }
        return prices
    }

    // MARK: Launch templates

    /// The id of the launch template named `name`, or nil when there is none.
    public func launchTemplateID(named name: String) async throws(AWSError) -> String? {
        do {
            let root = try await client.call("DescribeLaunchTemplates", [("LaunchTemplateName.1", name)])
            return root.items("launchTemplates").first?.string("launchTemplateId")
        } catch {
            if error.code == "InvalidLaunchTemplateName.NotFoundException" { return nil }
            throw error
        }
    }

    public struct LaunchTemplateData: Sendable, Equatable {
        public var imageID: String
        public var securityGroupIDs: [String]
        /// An instance profile name, or its ARN.
        public var instanceProfile: String?
        /// Base64, as EC2 takes it.
        public var userDataBase64: String
        /// The volume the node's pods' ephemeral storage lives on, and its device.
        public var volume: NodeClass.BlockDevices?
        public var deviceName: String
        public var metadata: NodeClass.MetadataOptions
        /// Tags the template puts on the network interfaces and volumes of every instance launched
        /// from it (the cluster tag, so IAM's `aws:RequestTag` conditions hold for them too).
        public var tags: [String: String]
        /// Tags the template adds to the instance itself (the AMI it runs, for drift).
        public var instanceTags: [String: String] = [:]

        public var rootVolumeGiB: Int? { volume?.rootVolumeGiB }

        public init(imageID: String, securityGroupIDs: [String], instanceProfile: String?, userDataBase64: String, rootVolumeGiB: Int?,
                    tags: [String: String] = [:]) {
            var volume: NodeClass.BlockDevices?
            if let rootVolumeGiB {
                volume = NodeClass.BlockDevices()
                volume?.rootVolumeGiB = rootVolumeGiB
            }
            self.init(imageID: imageID, securityGroupIDs: securityGroupIDs, instanceProfile: instanceProfile, userDataBase64: userDataBase64,
                      volume: volume, tags: tags)
        }

        public init(imageID: String, securityGroupIDs: [String], instanceProfile: String?, userDataBase64: String,
                    volume: NodeClass.BlockDevices?, deviceName: String = "/dev/xvda", metadata: NodeClass.MetadataOptions = NodeClass.MetadataOptions(),
                    tags: [String: String] = [:]) {
            self.imageID = imageID
            self.securityGroupIDs = securityGroupIDs
            self.instanceProfile = instanceProfile
            self.userDataBase64 = userDataBase64
            self.volume = volume
            self.deviceName = deviceName
            self.metadata = metadata
            self.tags = tags
        }

        /// What makes two templates differ (their name's hash).
        var fingerprint: String {
            var parts = [imageID, securityGroupIDs.joined(separator: ","), instanceProfile ?? "", userDataBase64, rootVolumeGiB.map(String.init) ?? "",
                         tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")]
            if let volume, volume != NodeClass.BlockDevices.with(size: volume.rootVolumeGiB) || deviceName != "/dev/xvda" {
                parts.append("\(deviceName) \(volume.volumeType) \(volume.iops ?? 0) \(volume.throughput ?? 0) \(volume.encrypted) \(volume.deleteOnTermination)")
            }
            if metadata != NodeClass.MetadataOptions() {
                parts.append("imds \(metadata.httpTokens) \(metadata.httpPutResponseHopLimit) \(metadata.httpEndpoint)")
            }
            if !instanceTags.isEmpty { parts.append("instance " + instanceTags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")) }
            return parts.joined(separator: "\n")
        }
    }

    /// Creates the template and returns its id. IMDSv2 is required on the nodes, hop limit 1
    /// (pods cannot reach the node role's credentials).
    public func createLaunchTemplate(name: String, data: LaunchTemplateData, tags: [String: String]) async throws(AWSError) -> String {
        var parameters: [(String, String)] = [
            ("LaunchTemplateName", name), ("LaunchTemplateData.ImageId", data.imageID),
            ("LaunchTemplateData.UserData", data.userDataBase64),
            ("LaunchTemplateData.MetadataOptions.HttpTokens", data.metadata.httpTokens),
            ("LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit", String(data.metadata.httpPutResponseHopLimit)),
            ("LaunchTemplateData.MetadataOptions.HttpEndpoint", data.metadata.httpEndpoint),
        ]
        for (index, group) in data.securityGroupIDs.enumerated() {
            parameters.append(("LaunchTemplateData.SecurityGroupId.\(index + 1)", group))
        }
        if let profile = data.instanceProfile {
            parameters.append((profile.hasPrefix("arn:") ? "LaunchTemplateData.IamInstanceProfile.Arn" : "LaunchTemplateData.IamInstanceProfile.Name", profile))
        }
        if let volume = data.volume {
            let prefix = "LaunchTemplateData.BlockDeviceMapping.1"
            parameters += [
                ("\(prefix).DeviceName", data.deviceName),
                ("\(prefix).Ebs.VolumeSize", String(volume.rootVolumeGiB)),
                ("\(prefix).Ebs.VolumeType", volume.volumeType),
                ("\(prefix).Ebs.Encrypted", String(volume.encrypted)),
                ("\(prefix).Ebs.DeleteOnTermination", String(volume.deleteOnTermination)),
            ]
            if let iops = volume.iops { parameters.append(("\(prefix).Ebs.Iops", String(iops))) }
            if let throughput = volume.throughput { parameters.append(("\(prefix).Ebs.Throughput", String(throughput))) }
        }
        var specification = 0
        if !data.tags.isEmpty {
            for resourceType in Self.templateTaggedResources {
                specification += 1
                parameters += Self.tagSpecification(index: specification, resourceType: resourceType, tags: data.tags, prefix: "LaunchTemplateData.")
            }
        }
        if !data.instanceTags.isEmpty {
            specification += 1
            parameters += Self.tagSpecification(index: specification, resourceType: "instance", tags: data.instanceTags, prefix: "LaunchTemplateData.")
        }
        parameters += Self.tagSpecification(index: 1, resourceType: "launch-template", tags: tags)
        let root = try await client.call("CreateLaunchTemplate", parameters)
        guard let id = root.string("launchTemplate", "launchTemplateId") else {
            throw .malformedResponse(action: "CreateLaunchTemplate", reason: "no launchTemplate.launchTemplateId")
        }
        return id
    }
}
