import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import Foundation
import Synchronization

/// The cloud port on EC2. create → `CreateFleet` (`instant`, one override per candidate
/// offering, cheapest first; `lowest-price` on-demand, `price-capacity-optimized` spot; the
/// launch id as `ClientToken` and as a tag); get/list → `DescribeInstances` by id or by tag;
/// delete → `TerminateInstances`; stop/start → `StopInstances`/`StartInstances`. The catalog
/// comes from `DescribeInstanceTypes` (zones from `DescribeInstanceTypeOfferings`) and is cached
/// for `catalogRefreshInterval`.
public final class EC2Cloud: CloudProvider {
    public let configuration: EC2CloudConfiguration
    public let api: EC2API
    /// The Price List, when `configuration.priceSource` says so.
    public let pricing: PriceListAPI?
    private let now: @Sendable () -> Date
    private let cachedCatalog = Mutex<(catalog: EC2Catalog, fetched: Date)?>(nil)
    private let cachedPrices = Mutex<(prices: [String: Double], fetched: Date)?>(nil)
    private let resolvedClasses = Mutex<(classes: [String: ResolvedNodeClass], fetched: Date)?>(nil)
    /// Resolves node classes (SSM, EKS, EC2), when the configuration has any.
    public let resolver: NodeClassResolver?
    /// The interruption queue, when `interruptionQueue` is set.
    public let interruptions: SQSInterruptionQueue?
    private let templateIDs = Mutex<[String: String]>([:])
    private let catalogFetches = Atomic<Int>(0)

    public init(configuration: EC2CloudConfiguration, api: EC2API, pricing: PriceListAPI? = nil, resolver: NodeClassResolver? = nil,
                interruptions: SQSInterruptionQueue? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.interruptions = interruptions
        self.configuration = configuration
        self.api = api
        self.pricing = pricing
        self.resolver = resolver ?? (configuration.nodeClasses.isEmpty ? nil : NodeClassResolver(ec2: api, ssm: nil, eks: nil))
        self.now = now
    }

    /// A cloud talking to `configuration`'s endpoint with these credentials.
    public convenience init(
        configuration: EC2CloudConfiguration, credentials: any AWSCredentialProvider, retry: AWSRetryPolicy = AWSRetryPolicy(),
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) },
        now: @escaping @Sendable () -> Date = { Date() }, recorder: AWSCallRecorder? = nil
    ) throws(AWSError) {
        let client = try AWSQueryClient(
            endpoint: try configuration.ec2Endpoint(), region: configuration.region, service: "ec2", version: EC2API.version,
            credentials: credentials, retry: retry, sleep: sleep, now: now, recorder: recorder)
        var pricing: PriceListAPI?
        if let (endpoint, region) = try configuration.pricingEndpoint() {
            pricing = PriceListAPI(client: try AWSJSONClient(
                endpoint: endpoint, region: region, service: "pricing", targetPrefix: "AWSPriceListService", credentials: credentials,
                retry: retry, sleep: sleep, now: now, recorder: recorder))
        }
        var resolver: NodeClassResolver?
        if !configuration.nodeClasses.isEmpty {
            let region = configuration.region
            let ssm = try AWSJSONClient(
                endpoint: try EC2CloudConfiguration.checked(configuration.ssmEndpoint, "SSM", default: AWSEndpoint(secure: true, host: "ssm.\(region).amazonaws.com")),
                region: region, service: "ssm", targetPrefix: "AmazonSSM", credentials: credentials, retry: retry, sleep: sleep, now: now, recorder: recorder)
            let eks = try EKSAPI(
                endpoint: try EC2CloudConfiguration.checked(configuration.eksEndpoint, "EKS", default: EKSAPI.endpoint(region: region)),
                region: region, credentials: credentials, retry: retry, sleep: sleep, now: now, recorder: recorder)
            var iam: IAMAPI?
            if configuration.nodeClasses.values.contains(where: { $0.role != nil }) {
                iam = IAMAPI(client: try AWSQueryClient(
                    endpoint: try EC2CloudConfiguration.checked(configuration.iamEndpoint, "IAM", default: IAMAPI.endpoint), region: "us-east-1",
                    service: "iam", version: IAMAPI.version, credentials: credentials, retry: retry, sleep: sleep, now: now, recorder: recorder))
            }
            resolver = NodeClassResolver(ec2: EC2API(client: client), ssm: SSMAPI(client: ssm), eks: eks, iam: iam)
        }
        var interruptions: SQSInterruptionQueue?
        if let queue = configuration.interruptionQueue {
            let region = configuration.region
            let sqs = try AWSJSONClient(
                endpoint: try EC2CloudConfiguration.checked(configuration.sqsEndpoint, "SQS", default: AWSEndpoint(secure: true, host: "sqs.\(region).amazonaws.com")),
                region: region, service: "sqs", targetPrefix: "AmazonSQS", jsonVersion: "1.0", credentials: credentials, retry: retry, sleep: sleep,
                now: now, recorder: recorder)
            interruptions = SQSInterruptionQueue(client: sqs, queue: queue)
        }
        self.init(configuration: configuration, api: EC2API(client: client), pricing: pricing, resolver: resolver, interruptions: interruptions, now: now)
    }

    // MARK: Catalog

    /// How many times the catalog was read from EC2 (tests check the cache with this).
    public var catalogFetchCount: Int { catalogFetches.load(ordering: .relaxed) }

    /// The catalog, read from EC2 at most once per `catalogRefreshInterval`.
    public func catalog() async throws(AWSError) -> EC2Catalog {
        let current = now()
        if let cached = cachedCatalog.withLock({ $0 }), current.timeIntervalSince(cached.fetched) < configuration.catalogRefreshInterval {
            return cached.catalog
        }
        catalogFetches.wrappingAdd(1, ordering: .relaxed)
        let types = try await api.describeInstanceTypes(pageSize: configuration.pageSize)
        let wanted = types.filter { !configuration.gpuOnly || $0.gpuCount > 0 }
        var zones = configuration.effectiveZones
        if !configuration.nodeClasses.isEmpty && configuration.zones.isEmpty {
            // Every zone where a node class selected a subnet, and only those.
            let resolved = try await resolvedNodeClasses()
            zones = Set(resolved.values.flatMap(\.subnets.keys)).union(configuration.subnets.keys).sorted()
        }
        let offered = try await api.describeInstanceTypeOfferings(zones: zones)
        var spot: [EC2API.SpotPrice] = []
        if configuration.allowSpot && !wanted.isEmpty {
            spot = try await api.describeSpotPriceHistory(instanceTypes: wanted.map(\.name), now: current)
        }
        let (table, from, warning) = await onDemandPriceTable(now: current)
        var catalog = EC2Catalog.build(
            types: wanted, onDemandPrices: table.merging(configuration.onDemandPrices) { _, yours in yours }, spotPrices: spot, zones: zones,
            offered: offered, rootVolumeGiB: configuration.rootVolumeGiB)
        catalog.pricesFrom = from
        catalog.priceWarning = warning
        cachedCatalog.withLock { $0 = (catalog, current) }
        return catalog
    }

    /// How many times prices were read from the Price List (tests check the cache with this).
    public var priceFetchCount: Int { priceFetches.load(ordering: .relaxed) }
    private let priceFetches = Atomic<Int>(0)

    /// The on-demand prices of the region, where they come from, and a warning when they are not
    /// the region's own: the Price List's (read at most once per `priceRefreshInterval`; a failed
    /// refresh keeps the last table), else the built-in us-east-1 table.
    func onDemandPriceTable(now current: Date) async -> (prices: [String: Double], from: String, warning: String?) {
        let region = configuration.region
        let builtIn = EC2CloudConfiguration.builtInPrices
        guard let pricing else {
            return (builtIn, "the built-in us-east-1 table",
                    region == "us-east-1" ? nil : "on-demand prices are us-east-1's (the built-in table), not \(region)'s")
        }
        let cached = cachedPrices.withLock { $0 }
        if let cached, current.timeIntervalSince(cached.fetched) < configuration.priceRefreshInterval {
            return (cached.prices, "the AWS Price List for \(region)", nil)
        }
        priceFetches.wrappingAdd(1, ordering: .relaxed)
        var failure: String
        do {
            let prices = try await pricing.onDemandPrices(region: region)
            if !prices.isEmpty {
                cachedPrices.withLock { $0 = (prices, current) }
                return (prices, "the AWS Price List for \(region)", nil)
            }
            failure = "it lists no Linux on-demand EC2 price for \(region)"
        } catch {
            failure = "\(error)"
        }
        if let cached {
            return (cached.prices, "the AWS Price List for \(region)",
                    "keeping \(region)'s prices read at \(RFC3339.string(cached.fetched)): the Price List could not be read again: \(failure)")
        }
        return (builtIn, "the built-in us-east-1 table",
                "the AWS Price List could not be read (\(failure)): on-demand prices are us-east-1's (the built-in table)\(region == "us-east-1" ? "" : ", not \(region)'s")")
    }

    // MARK: CloudProvider

    public func create(_ request: LaunchRequest) async throws(CloudError) -> CloudInstance {
        try request.validate()

        // A retry after a lost answer: the instance is already there, tagged with the launch id.
        if let existing = try await instances(tagged: CloudTag.launchID, request.launchID, operation: "create", states: nil).first {
            return existing
        }
        let plan = try await launchPlan(for: request)
        let attempts = plan.attempts

        // One fleet per capacity type, in the order the candidates first name them.
        var capacityTypes: [String] = []
        for attempt in attempts where !capacityTypes.contains(attempt.offering.capacityType) {
            capacityTypes.append(attempt.offering.capacityType)
        }
        var exhausted: [OfferingKey] = []
        for (index, capacityType) in capacityTypes.enumerated() {
            // Cheapest first; beyond EC2's override limit the priciest are left out.
            let group = Array(attempts.filter { $0.offering.capacityType == capacityType }.prefix(Self.maxFleetOverrides))
            let fleet = EC2API.FleetRequest(
                clientToken: index == 0 ? request.launchID : "\(request.launchID)-\(capacityType)", capacityType: capacityType,
                configs: plan.configs(group), tags: plan.tags)
            let result: EC2API.FleetResult
            do {
                result = try await createFleet(fleet)
            } catch {
                if let code = error.code, Self.capacityErrorCodes.contains(code) {
                    exhausted += group.map { OfferingKey($0.type, $0.offering) }
                    continue
                }
                // Launched meanwhile under this token (a lost answer, then other candidates).
                if error.code == "IdempotentParameterMismatch",
                   let existing = try await instances(tagged: CloudTag.launchID, request.launchID, operation: "create", states: nil).first {
                    return existing
                }
                throw plan.settle(Self.cloudError(error, operation: "create \(request.launchID)"))
            }
            if let launched = result.launched.first(where: { !$0.instanceIDs.isEmpty }), let id = launched.instanceIDs.first {
                return try await launchedInstance(id: id, launched: launched, request: request, group: group, subnets: plan.subnets)
            }
            let capacity = result.errors.filter { Self.capacityErrorCodes.contains($0.code) }
            if let refusal = result.errors.first(where: { Self.isRefusal($0.code) }) {
                throw plan.settle(.refused(action: "CreateFleet", code: refusal.code, message: refusal.message))
            }
            if result.errors.isEmpty || capacity.count < result.errors.count {
                let other = result.errors.filter { !Self.capacityErrorCodes.contains($0.code) }
                let text = other.map { "\($0.code): \($0.message)" }.joined(separator: "; ")
                throw .other("create \(request.launchID): CreateFleet \(result.fleetID) launched nothing\(text.isEmpty ? "" : ": " + text)")
            }
            exhausted += group.map { OfferingKey($0.type, $0.offering) }
        }
        throw .insufficientCapacity(offerings: exhausted)
    }

    /// What one launch sends: the offerings it may try, the launch template and overrides for a
    /// group of them, the tags, and the subnet of each zone.
    struct LaunchPlan {
        var attempts: [(type: InstanceType, offering: Offering)]
        var configs: ([(type: InstanceType, offering: Offering)]) -> [(template: EC2API.FleetRequest.Template, overrides: [EC2API.FleetOverride])]
        var tags: [String: String]
        var subnets: [String: String]
        /// The instance profile is one Berth made for a role: IAM takes seconds to show a new one
        /// to EC2, so EC2 calling it invalid is retried, not a refusal.
        var managedProfile = false

        func settle(_ error: CloudError) -> CloudError {
            guard managedProfile, case .refused(let action, let code, let message) = error,
                  message.lowercased().contains("instance profile") || message.lowercased().contains("iaminstanceprofile") else { return error }
            return .other("\(action): \(code): \(message) (a new instance profile may not be visible to EC2 yet)")
        }
    }

    func launchPlan(for request: LaunchRequest) async throws(CloudError) -> LaunchPlan {
        guard let className = configuration.poolNodeClasses[request.pool] else {
            let template = try await launchTemplate(for: request)
            let subnets = configuration.subnets
            return LaunchPlan(attempts: request.attempts, configs: { group in
                [(template, group.map { EC2API.FleetOverride(instanceType: $0.type.name, zone: $0.offering.zone, subnetID: subnets[$0.offering.zone]) })]
            }, tags: request.tags, subnets: subnets)
        }
        let resolved: ResolvedNodeClass
        do throws(AWSError) {
            guard let found = try await resolvedNodeClasses()[className] else {
                throw AWSError.invalidConfiguration("pool \(request.pool) names node class \(className), which is not defined")
            }
            resolved = found
        } catch {
            if case .invalidConfiguration(let message) = error { throw .refused(action: "node class \(className)", code: "InvalidNodeClass", message: message) }
            throw Self.cloudError(error, operation: "node class \(className) for \(request.launchID)")
        }
        // Only offerings in a zone with a selected subnet, of a type whose architecture has an AMI.
        var usable: [(type: InstanceType, offering: Offering)] = []
        var templates: [ResolvedNodeClass.ImageKey: EC2API.FleetRequest.Template] = [:]
        for attempt in request.attempts {
            let key = ResolvedNodeClass.ImageKey(arch: attempt.type.arch, accelerated: attempt.type.gpuCount > 0)
            guard resolved.subnets[attempt.offering.zone] != nil, let image = resolved.images[key] else { continue }
            usable.append(attempt)
            if templates[key] == nil { templates[key] = try await nodeClassTemplate(request, resolved, image: image) }
        }
        guard !usable.isEmpty else {
            let zones = resolved.subnets.keys.sorted().joined(separator: ", ")
            let images = resolved.images.keys.map { "\($0.arch)\($0.accelerated ? "/nvidia" : "")" }.sorted().joined(separator: ", ")
            throw .refused(action: "node class \(className)", code: "NoUsableOffering",
                           message: "no candidate offering is in a zone with a selected subnet (\(zones)) with an AMI for its architecture (\(images))")
        }
        let subnets = resolved.subnets
        var plan = LaunchPlan(attempts: usable, configs: { group in
            var order: [ResolvedNodeClass.ImageKey] = []
            for attempt in group {
                let key = ResolvedNodeClass.ImageKey(arch: attempt.type.arch, accelerated: attempt.type.gpuCount > 0)
                if !order.contains(key) { order.append(key) }
            }
            return order.compactMap { key in
                guard let template = templates[key] else { return nil }
                let overrides = group.filter { $0.type.arch == key.arch && ($0.type.gpuCount > 0) == key.accelerated }.map {
                    EC2API.FleetOverride(instanceType: $0.type.name, zone: $0.offering.zone, subnetID: subnets[$0.offering.zone])
                }
                return (template, overrides)
            }
        }, tags: resolved.nodeClass.tags.merging(request.tags) { _, berth in berth }, subnets: subnets)
        plan.managedProfile = resolved.nodeClass.role != nil
        return plan
    }

    /// The launch template of a node class for one AMI: its security groups, instance profile,
    /// volume, IMDS options, tags and user data (cluster facts from EKS, the request's labels and
    /// taints, the class's kubelet settings and user data).
    func nodeClassTemplate(_ request: LaunchRequest, _ resolved: ResolvedNodeClass, image: String) async throws(CloudError) -> EC2API.FleetRequest.Template {
        let nodeClass = resolved.nodeClass
        let format: NodeUserData.Format = nodeClass.amiFamily == .bottlerocket ? .bottlerocket : .al2023
        let userData = NodeUserData.render(format, cluster: resolved.cluster.cluster, labels: nodeLabels(request), taints: request.taints,
                                           kubelet: nodeClass.kubelet, extra: nodeClass.userData)
        let cluster = request.cluster ?? resolved.cluster.name
        var data = EC2API.LaunchTemplateData(
            imageID: image, securityGroupIDs: resolved.securityGroups, instanceProfile: resolved.instanceProfile,
            userDataBase64: Data(userData.utf8).base64EncodedString(), volume: nodeClass.blockDevices,
            // Bottlerocket keeps its OS on xvda; pods' storage is the data volume, xvdb.
            deviceName: format == .bottlerocket ? "/dev/xvdb" : "/dev/xvda", metadata: nodeClass.metadataOptions,
            tags: nodeClass.tags.merging([CloudTag.cluster: cluster]) { _, berth in berth })
        data.instanceTags = [CloudTag.image: image]
        return try await ensureTemplate(data, cluster: cluster, launchID: request.launchID)
    }

    /// Resolved node classes, at most `nodeClassRefreshInterval` old; a failed refresh keeps the
    /// last resolution (the first one's failure is thrown: at start, one clear line).
    public func resolvedNodeClasses() async throws(AWSError) -> [String: ResolvedNodeClass] {
        guard !configuration.nodeClasses.isEmpty else { return [:] }
        let current = now()
        let cached = resolvedClasses.withLock { $0 }
        if let cached, current.timeIntervalSince(cached.fetched) < configuration.nodeClassRefreshInterval { return cached.classes }
        guard let resolver else { throw .invalidConfiguration("node classes need SSM and EKS clients (EC2Cloud made without them)") }
        do {
            let settings = configuration.eksCluster ?? EKSClusterSettings(name: "berth")
            let cluster = try await resolver.cluster(settings)
            var classes: [String: ResolvedNodeClass] = [:]
            for name in configuration.nodeClasses.keys.sorted() {
                classes[name] = try await resolver.resolve(configuration.nodeClasses[name]!, cluster: cluster)
            }
            resolvedClasses.withLock { $0 = (classes, current) }
            return classes
        } catch {
            if let cached { return cached.classes }
            throw error
        }
    }

    /// CreateFleet with the launch id as ClientToken. EC2 remembers a token with its parameters:
    /// the same token with other candidates (the port's retry after a capacity failure, which
    /// launched nothing) is `IdempotentParameterMismatch`. Then the token is made unique to these
    /// parameters, `<launch id>-<hash>`; the launch-id tag lookup before still prevents a second instance.
    private func createFleet(_ fleet: EC2API.FleetRequest) async throws(AWSError) -> EC2API.FleetResult {
        do {
            return try await api.createFleet(fleet)
        } catch where error.code == "IdempotentParameterMismatch" {
            guard let existing = try? await api.describeInstances(filters: [EC2API.Filter("tag:\(CloudTag.launchID)", [fleet.tags[CloudTag.launchID] ?? ""])]),
                  existing.isEmpty else { throw error }
            var retry = fleet
            let parameters = ([fleet.capacityType] + fleet.overrides.map { "\($0.instanceType)/\($0.zone)/\($0.subnetID ?? "")" }).joined(separator: ",")
            retry.clientToken = "\(fleet.clientToken.prefix(47))-\(Digest.hex(Digest.sha256(Array(parameters.utf8))).prefix(16))"
            return try await api.createFleet(retry)
        }
    }

    /// `StopInstances`. EC2 refuses to stop a pending (or terminated) instance with
    /// `IncorrectInstanceState`; the instance is then described to say which: terminated or gone →
    /// notFound, already stopping or stopped (a race with another stop) → done, else invalidRequest.
    /// A spot instance (`UnsupportedOperation`) or an instance-store root volume is invalidRequest;
    /// stop protection (`OperationNotPermitted`) is refused.
    public func stop(providerID: String) async throws(CloudError) {
        let id = try instanceID(providerID)
        let changes: [EC2API.StateChange]
        do {
            changes = try await api.stopInstances(ids: [id])
        } catch {
            if error.code == "InvalidInstanceID.NotFound" { throw .notFound(providerID: providerID) }
            if error.code == "IncorrectInstanceState" {
                let state = try await currentState(providerID, id, after: error, operation: "stop")
                if ["stopping", "stopped"].contains(state) { return }
                throw .invalidRequest("stop \(providerID): the instance is \(state): only a running instance can be stopped")
            }
            // Stop protection (`DisableApiStop`): someone chose that it never be stopped.
            if case .service(let failure) = error, failure.code == "OperationNotPermitted" {
                throw .refused(action: failure.action, code: failure.code, message: failure.message)
            }
            throw Self.cloudError(error, operation: "stop \(providerID)")
        }
        if let change = changes.first(where: { $0.instanceID == id }), Self.goneStates.contains(change.previousState) {
            throw .notFound(providerID: providerID)
        }
    }

    /// `StartInstances`. `IncorrectInstanceState` is resolved by describing the instance:
    /// terminated or gone → notFound, still stopping → invalidRequest (retry once stopped),
    /// pending or running (another start won) → done. EC2's capacity codes
    /// (`InsufficientInstanceCapacity`, ...) → insufficientCapacity naming the instance's own
    /// offering (its type, zone and capacity type, described): nothing started, it stays stopped.
    public func start(providerID: String) async throws(CloudError) {
        let id = try instanceID(providerID)
        let changes: [EC2API.StateChange]
        do {
            changes = try await api.startInstances(ids: [id])
        } catch {
            if error.code == "InvalidInstanceID.NotFound" { throw .notFound(providerID: providerID) }
            if error.code == "IncorrectInstanceState" {
                let state = try await currentState(providerID, id, after: error, operation: "start")
                if ["pending", "running"].contains(state) { return }
                if state == "stopping" { throw .invalidRequest("\(providerID) is still stopping: start it once it is stopped") }
                throw .invalidRequest("start \(providerID): the instance is \(state): only a stopped instance can be started")
            }
            if let code = error.code, Self.startCapacityErrorCodes.contains(code) {
                let described: EC2API.Instance?
                do {
                    described = try await api.describeInstances(ids: [id]).first { $0.id == id }
                } catch let failure {
                    throw .other("start \(providerID): \(error); its offering could not be read: \(failure)")
                }
                guard let described else { throw .notFound(providerID: providerID) }
                let capacityType = described.lifecycle == "spot" ? "spot" : "on-demand"
                throw .insufficientCapacity(offerings: [OfferingKey(instanceType: described.instanceType, zone: described.zone, capacityType: capacityType)])
            }
            throw Self.cloudError(error, operation: "start \(providerID)")
        }
        if let change = changes.first(where: { $0.instanceID == id }), Self.goneStates.contains(change.previousState) {
            throw .notFound(providerID: providerID)
        }
    }

    /// The instance's EC2 state after `error` (IncorrectInstanceState) refused `operation`;
    /// throws notFound when it is gone.
    private func currentState(_ providerID: String, _ id: String, after error: AWSError, operation: String) async throws(CloudError) -> String {
        let found: EC2API.Instance?
        do {
            found = try await api.describeInstances(ids: [id]).first { $0.id == id }
        } catch let failure {
            if failure.code == "InvalidInstanceID.NotFound" { throw .notFound(providerID: providerID) }
            throw Self.cloudError(failure, operation: "\(operation) \(providerID) (describing it after \(error.code ?? "an error"))")
        }
        guard let found, !Self.goneStates.contains(found.state) else { throw .notFound(providerID: providerID) }
        return found.state
    }

    public func delete(providerID: String) async throws(CloudError) {
        let id = try instanceID(providerID)
        let changes: [EC2API.StateChange]
        do {
            changes = try await api.terminateInstances(ids: [id])
        } catch {
            if error.code == "InvalidInstanceID.NotFound" { throw .notFound(providerID: providerID) }
            throw Self.cloudError(error, operation: "delete \(providerID)")
        }
        if let change = changes.first(where: { $0.instanceID == id }), Self.goneStates.contains(change.previousState) {
            throw .notFound(providerID: providerID)
        }
    }

    public func get(providerID: String) async throws(CloudError) -> CloudInstance {
        let id = try instanceID(providerID)
        let found: [EC2API.Instance]
        do {
            found = try await api.describeInstances(ids: [id])
        } catch {
            if error.code == "InvalidInstanceID.NotFound" { throw .notFound(providerID: providerID) }
            throw Self.cloudError(error, operation: "get \(providerID)")
        }
        guard let instance = found.first(where: { $0.id == id }), !Self.goneStates.contains(instance.state) else {
            throw .notFound(providerID: providerID)
        }
        return cloudInstance(instance)
    }

    public func list(clusterTag: String) async throws(CloudError) -> [CloudInstance] {
        let found: [EC2API.Instance]
        do {
            found = try await api.describeInstances(
                filters: [EC2API.Filter("tag:\(CloudTag.cluster)", [clusterTag]), EC2API.Filter("instance-state-name", ["pending", "running", "stopping", "stopped"])],
                pageSize: configuration.pageSize)
        } catch {
            throw Self.cloudError(error, operation: "list")
        }
        let sorted = found.sorted { ($0.launchTime, $0.id) < ($1.launchTime, $1.id) }
        var listed = sorted.map(cloudInstance)
        // Drift: an instance its pool's node class would not launch as it is any more (re-resolved
        // every nodeClassRefreshInterval). A resolution that fails says nothing.
        guard !configuration.poolNodeClasses.isEmpty, let resolved = try? await resolvedNodeClasses() else { return listed }
        let catalog = cachedCatalog.withLock { $0?.catalog }
        for index in listed.indices {
            guard let pool = listed[index].pool, let name = configuration.poolNodeClasses[pool], let nodeClass = resolved[name] else { continue }
            listed[index].drift = Self.drift(sorted[index], nodeClass: nodeClass, name: name, type: catalog?[sorted[index].instanceType]?.type)
        }
        return listed
    }

    /// Why `instance` is not what `nodeClass` launches now: its AMI (the `berth.dev/image` tag
    /// against the class's image for its architecture), its subnet (no longer selected), its
    /// security groups (not the selected ones); nil when none applies.
    static func drift(_ instance: EC2API.Instance, nodeClass: ResolvedNodeClass, name: String, type: InstanceType?) -> String? {
        if let image = instance.tags[CloudTag.image], let type,
           let selected = nodeClass.image(arch: type.arch, accelerated: type.gpuCount > 0), selected != image {
            return "AMI \(image) is no longer the one node class \(name) selects (\(selected))"
        }
        if let subnet = instance.subnetID, !nodeClass.selectedSubnets.isEmpty, !nodeClass.selectedSubnets.contains(subnet) {
            return "subnet \(subnet) is no longer selected by node class \(name)"
        }
        if !instance.securityGroupIDs.isEmpty, Set(instance.securityGroupIDs) != Set(nodeClass.securityGroups) {
            return "security groups \(instance.securityGroupIDs.sorted().joined(separator: ", ")) are not node class \(name)'s (\(nodeClass.securityGroups.joined(separator: ", ")))"
        }
        return nil
    }

    // MARK: Helpers

    static let goneStates: Set<String> = ["shutting-down", "terminated"]

    /// Overrides in one CreateFleet at most (EC2 documents 300 items across a fleet's launch templates).
    public static let maxFleetOverrides = 300

    /// EC2's "no capacity for this offering" codes (Karpenter's unfulfillable-capacity list).
    public static let capacityErrorCodes: Set<String> = [
        "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity",
        "MaxSpotInstanceCountExceeded", "VcpuLimitExceeded", "UnfulfillableCapacity", "Unsupported",
        "InsufficientFreeAddressesInSubnet", "ReservationCapacityExceeded", "SpotMaxPriceTooLow",
    ]

    /// What StartInstances says when the zone has no capacity for the stopped instance's type now.
    static let startCapacityErrorCodes: Set<String> = [
        "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity",
        "VcpuLimitExceeded", "ReservationCapacityExceeded",
    ]

    static let authErrorCodes: Set<String> = [
        "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnauthorizedOperation", "ExpiredToken", "RequestExpired",
    ]

    /// Codes that say the request can never succeed as configured: permissions, an image, subnet,
    /// security group or template that does not exist, a parameter EC2 rejects. A launch failing
    /// with one is not retried (`CloudError.refused`); the provisioner pauses its pool.
    public static func isRefusal(_ code: String) -> Bool {
        refusalCodes.contains(code) || refusalPrefixes.contains { code.hasPrefix($0) }
    }

    static let refusalCodes: Set<String> = [
        "UnauthorizedOperation", "AuthFailure", "Blocked", "OptInRequired", "InvalidParameterValue", "InvalidParameterCombination",
        "InvalidParameter", "InvalidBlockDeviceMapping", "InvalidUserData.Malformed",
    ]
    static let refusalPrefixes = [
        "InvalidAMIID.", "InvalidSubnetID.", "InvalidSubnet.", "InvalidGroup.", "InvalidSecurityGroupID.", "InvalidLaunchTemplateId.",
        "InvalidLaunchTemplateName.", "InvalidIamInstanceProfile", "InvalidInstanceProfile",
    ]

    /// AWS's failure as the port's: throttling → throttled; a refusal (``isRefusal(_:)``) →
    /// refused; another request EC2 calls invalid → invalidRequest; everything else (5xx after
    /// retries, network, expired credentials) → other, AWS's code and message kept in the text.
    static func cloudError(_ error: AWSError, operation: String) -> CloudError {
        if case .service(let failure) = error {
            if failure.isThrottling { return .throttled(operation: operation) }
            if isRefusal(failure.code) { return .refused(action: failure.action, code: failure.code, message: failure.message) }
            if (400..<500).contains(failure.status), !authErrorCodes.contains(failure.code),
               failure.code.hasPrefix("Invalid") || failure.code.hasPrefix("Unsupported") || failure.code == "MissingParameter" {
                return .invalidRequest("\(operation): \(failure)")
            }
        }
        return .other("\(operation): \(error)")
    }

    private func instanceID(_ providerID: String) throws(CloudError) -> String {
        guard let parsed = ProviderID(providerID), parsed.scheme == "aws", parsed.instanceID.hasPrefix("i-") else {
            throw .invalidRequest("\(providerID) is not an EC2 provider id (aws:///<zone>/i-...)")
        }
        return parsed.instanceID
    }

    private func instances(tagged key: String, _ value: String, operation: String, states: [String]?) async throws(CloudError) -> [CloudInstance] {
        var filters = [EC2API.Filter("tag:\(key)", [value])]
        if let states { filters.append(EC2API.Filter("instance-state-name", states)) }
        do {
            let found = try await api.describeInstances(filters: filters, pageSize: configuration.pageSize)
            return found.sorted { ($0.launchTime, $0.id) < ($1.launchTime, $1.id) }.map(cloudInstance)
        } catch {
            throw Self.cloudError(error, operation: operation)
        }
    }

    private func launchedInstance(id: String, launched: EC2API.FleetResult.Launched, request: LaunchRequest,
                                  group: [(type: InstanceType, offering: Offering)], subnets: [String: String]) async throws(CloudError) -> CloudInstance {
        // EC2 is eventually consistent: the new instance may not be visible yet. Then what the
        // fleet said is the answer, and the next get fills in the rest.
        if let described = try? await api.describeInstances(ids: [id]).first {
            var instance = cloudInstance(described)
            if let offering = group.first(where: { $0.type.name == described.instanceType && $0.offering.zone == described.zone })?.offering {
                instance.pricePerHour = offering.pricePerHour
            }
            return instance
        }
        let zone = launched.zone
            ?? launched.subnetID.flatMap { subnet in subnets.first { $0.value == subnet }?.key }
            ?? group.first { $0.type.name == launched.instanceType }?.offering.zone ?? ""
        let price = group.first { $0.type.name == launched.instanceType && $0.offering.zone == zone }?.offering.pricePerHour ?? 0
        return CloudInstance(
            providerID: ProviderID(scheme: "aws", zone: zone, instanceID: id).description, instanceType: launched.instanceType, zone: zone,
            capacityType: launched.lifecycle, launchID: request.launchID, tags: request.tags, state: .pending, launchTime: now(),
            pricePerHour: price)
    }

    func cloudInstance(_ instance: EC2API.Instance) -> CloudInstance {
        let capacityType = instance.lifecycle == "spot" ? "spot" : "on-demand"
        let state: CloudInstance.State = switch instance.state {
        case "pending": .pending
        case "shutting-down", "terminated": .terminated
        case "stopping": .stopping
        case "stopped": .stopped
        default: .running
        }
        let price: Double = if capacityType == "spot" {
            cachedCatalog.withLock { $0?.catalog[instance.instanceType]?.type.offerings.first { $0.capacityType == "spot" && $0.zone == instance.zone }?.pricePerHour } ?? 0
        } else {
            cachedCatalog.withLock { $0?.catalog[instance.instanceType]?.onDemandPricePerHour } ?? configuration.onDemandPrices[instance.instanceType] ?? 0
        }
        return CloudInstance(
            providerID: ProviderID(scheme: "aws", zone: instance.zone, instanceID: instance.id).description, instanceType: instance.instanceType,
            zone: instance.zone, capacityType: capacityType, launchID: instance.tags[CloudTag.launchID] ?? "", tags: instance.tags,
            state: state, launchTime: instance.launchTime, pricePerHour: price)
    }

    /// The launch template for this request: the configured one, or Berth's own for the
    /// request's labels and taints (found by name, created when missing).
    func launchTemplate(for request: LaunchRequest) async throws(CloudError) -> EC2API.FleetRequest.Template {
        switch configuration.launchTemplate {
        case nil: throw .invalidRequest("launch \(request.launchID): no launch template configured for EC2")
        case .name(let name): return .name(name)
        case .id(let id): return .id(id)
        case .managed(let managed):
            let userData = NodeUserData.render(managed.userDataFormat, cluster: managed.cluster, labels: nodeLabels(request), taints: request.taints)
            let cluster = request.cluster ?? managed.cluster.name
            let data = EC2API.LaunchTemplateData(
                imageID: managed.imageID, securityGroupIDs: managed.securityGroupIDs, instanceProfile: managed.instanceProfile,
                userDataBase64: Data(userData.utf8).base64EncodedString(), rootVolumeGiB: managed.rootVolumeGiB,
                tags: [CloudTag.cluster: cluster])
            return try await ensureTemplate(data, cluster: cluster, launchID: request.launchID)
        }
    }

    /// Berth's template for `data`, found by name (`berth-<cluster>-<hash>`) or created.
    func ensureTemplate(_ data: EC2API.LaunchTemplateData, cluster: String, launchID: String) async throws(CloudError) -> EC2API.FleetRequest.Template {
        let name = Self.templateName(cluster: cluster, data: data)
        if let id = templateIDs.withLock({ $0[name] }) { return .id(id) }
        do throws(AWSError) {
            var id = try await api.launchTemplateID(named: name)
            if id == nil {
                do throws(AWSError) {
                    id = try await api.createLaunchTemplate(name: name, data: data, tags: [CloudTag.cluster: cluster])
                } catch where error.code == "InvalidLaunchTemplateName.AlreadyExistsException" {
                    id = try await api.launchTemplateID(named: name)  // another replica made it meanwhile
                }
            }
            guard let id else { throw .malformedResponse(action: "DescribeLaunchTemplates", reason: "launch template \(name) vanished") }
            templateIDs.withLock { $0[name] = id }
            return .id(id)
        } catch {
            throw Self.cloudError(error, operation: "launch template for \(launchID)")
        }
    }

    /// The request's labels, without those that differ between candidate types (one template
    /// serves every candidate; the kubelet and GPU discovery set the type's own labels).
    func nodeLabels(_ request: LaunchRequest) -> [String: String] {
        // Zone and capacity type depend on the offering EC2 picks, whatever the type.
        let perOffering: Set<String> = [WellKnownLabel.zone, WellKnownLabel.capacityType]
        let typeKeys = Set(request.candidates.flatMap { $0.labels.keys })
        return request.labels.filter { key, value in
            if perOffering.contains(key) { return false }
            return !typeKeys.contains(key) || request.candidates.allSatisfy { $0.labels[key] == value }
        }
    }

    /// `berth-<cluster>-<12 hex of the template data>`: a change of AMI, user data, groups gives a new template.
    static func templateName(cluster: String, data: EC2API.LaunchTemplateData) -> String {
        let hash = Digest.hex(Digest.sha256(Array(data.fingerprint.utf8))).prefix(12)
        let safe = String(cluster.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "-" }.prefix(80))
        return "berth-\(safe)-\(hash)"
    }
}
