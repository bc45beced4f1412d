@testable import BerthAWS
import BerthModel
import BerthProvisioner
import BerthScheduling
import BerthTestSupport
import Foundation
import Testing

/// One moto server for the whole suite, started before its first test and stopped after its last.
struct MotoScope: SuiteTrait, TestScoping {
    @TaskLocal static var current: MotoServer?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let moto = try MotoServer.start()
        defer { moto.stop() }
        try await Self.$current.withValue(moto) { try await function() }
    }
}

extension Trait where Self == MotoScope {
    static var moto: MotoScope { MotoScope() }
}

/// EC2Cloud against moto with signature checking on: every call below is signed with the IAM key
/// the suite made (or with STS credentials), and a wrong secret is refused. Serialized: the web
/// identity test opens a window for exactly one unsigned call.
@Suite(.serialized, .enabled(if: MotoServer.isAvailable, Comment(rawValue: MotoServer.skipMessage)), .moto)
struct EC2CloudMotoTests {
    var moto: MotoServer { MotoScope.current! }

    var credentials: StaticCredentials {
        StaticCredentials(name: "moto", credentials: AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey))
    }

    func configuration(pageSize: Int = 100, subnets: [String: String] = [:]) throws -> EC2CloudConfiguration {
        EC2CloudConfiguration(
            region: "us-east-1", endpoint: try AWSEndpoint(url: moto.endpoint, what: "moto"),
            launchTemplate: .managed(.init(
                imageID: "ami-12c6146b", securityGroupIDs: [], instanceProfile: nil,
                cluster: EKSCluster(name: "moto", apiServerEndpoint: "https://moto.example", certificateAuthority: "Q0E="))),
            subnets: subnets, pageSize: pageSize)
    }

    func cloud(pageSize: Int = 100, subnets: [String: String] = [:], credentials: (any AWSCredentialProvider)? = nil) throws -> EC2Cloud {
        try EC2Cloud(configuration: configuration(pageSize: pageSize, subnets: subnets), credentials: credentials ?? self.credentials,
                     retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in })
    }

    /// moto's default VPC subnets, zone → subnet.
    func subnets() async throws -> [String: String] {
        let root = try await cloud().api.client.call("DescribeSubnets")
        var subnets: [String: String] = [:]
        for item in root.items("subnetSet") {
            if let zone = item.string("availabilityZone"), let id = item.string("subnetId") { subnets[zone] = id }
        }
        return subnets
    }

    static func request(_ launchID: String, cluster: String, types: [String] = ["g4dn.xlarge", "g5.xlarge"], zone: String = "us-east-1b") -> LaunchRequest {
        let catalog = InstanceCatalog.builtIn(zones: [zone])
        return LaunchRequest(
            launchID: launchID, cluster: cluster, pool: "gpu", candidates: types.map { catalog[$0]! },
            labels: ["berth.dev/pool": "gpu"], taints: [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")],
            extraTags: ["team": "ml"])
    }

    /// The case: a notebook asking for 30Gi of ephemeral storage, and a managed launch
    /// template giving 100 GiB root volumes. The catalog states the volume the launch gives, so the
    /// scheduler fits the notebook (a fixed 20 GiB left 17Gi: "never launched").
    @Test func theCatalogStatesTheRootVolumeTheLaunchGives() async throws {
        let catalog = try await cloud().catalog().schedulable
        #expect(!catalog.types.isEmpty && catalog.types.allSatisfy { $0.rootVolumeGiB == 100 })
        let notebook = PodRequirements(
            namespace: "jupyter", name: "scratch", requests: Resources(cpuMilli: 1000, memory: 4 << 30, ephemeralStorage: 30 << 30, gpus: 1),
            gpuResource: "nvidia.com/gpu", isNotebook: true,
            constraints: PodConstraints(tolerations: [Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule")]))
        let plan = Scheduler(catalog: catalog, pools: [.default]).solve(pending: [notebook])
        #expect(plan.unschedulable.isEmpty, "\(plan.unschedulable.map(\.reason))")
        #expect(plan.nodes.first?.instanceType == "g4dn.xlarge")
        // 100 GiB less kube-reserved 1 GiB and the 10 % eviction threshold.
        #expect(NodeOverhead().allocatable(try #require(catalog["g4dn.xlarge"])).ephemeralStorage == (100 << 30) - (1 << 30) - (10 << 30))
    }

    @Test func catalogHasGPUInfoAndBuiltInPrices() async throws {
        let catalog = try await cloud().catalog()
        let g4dn = try #require(catalog["g4dn.xlarge"])
        #expect(g4dn.type.gpuName == "t4" && g4dn.type.gpuCount == 1 && g4dn.type.gpuMemoryMiB == 16384)
        #expect(g4dn.type.vcpu == 4 && g4dn.type.memoryMiB == 16384 && g4dn.type.arch == "amd64" && g4dn.type.maxPods == 29)
        #expect(g4dn.onDemandPricePerHour == 0.526)
        #expect(!g4dn.type.offerings.isEmpty && g4dn.type.offerings.allSatisfy { $0.capacityType == "on-demand" && $0.pricePerHour == 0.526 })
        let p5 = try #require(catalog["p5.48xlarge"])
        #expect(p5.type.gpuName == "h100" && p5.type.gpuCount == 8 && p5.onDemandPricePerHour == 55.04)
        #expect(catalog["g5g.xlarge"]?.type.arch == "arm64")
        #expect(catalog["g5g.xlarge"]?.onDemandPricePerHour == nil, "not in the built-in table: marked unpriced")
        #expect(catalog.entries.allSatisfy { $0.type.gpuCount > 0 })
        #expect(catalog["m5.large"] == nil)
        #expect(catalog.unpriced.contains("g4ad.xlarge"))
        #expect(catalog["g4ad.xlarge"]?.type.gpuName == "radeon-pro-v520", "a label value: no spaces")
        #expect(catalog.schedulable.types.allSatisfy { !$0.offerings.isEmpty })
        #expect(catalog.schedulable.types.count == catalog.entries.count - catalog.unpriced.count)
    }

    @Test func launchDescribeAndTerminate() async throws {
        let subnets = try await subnets()
        let cloud = try cloud(subnets: subnets)
        let request = Self.request("launch-moto-1", cluster: "moto-a")
        let instance = try await cloud.create(request)
        #expect(instance.instanceType == "g4dn.xlarge", "the cheapest candidate")
        #expect(instance.zone == "us-east-1b")
        #expect(instance.providerID.hasPrefix("aws:///us-east-1b/i-"))
        #expect(instance.launchID == "launch-moto-1")
        #expect(instance.capacityType == "on-demand")
        #expect(instance.pricePerHour == 0.526)
        #expect(instance.tags == ["berth.dev/cluster": "moto-a", "berth.dev/pool": "gpu", "berth.dev/launch-id": "launch-moto-1", "team": "ml"])
        #expect([.pending, .running].contains(instance.state))

        // A retried create with the same launch id is the same instance, even with other candidates.
        let again = try await cloud.create(Self.request("launch-moto-1", cluster: "moto-a", types: ["g5.xlarge"]))
        #expect(again.providerID == instance.providerID)
        #expect(try await cloud.list(clusterTag: "moto-a").map(\.providerID) == [instance.providerID])

        // The launch template Berth made carries the node's taint in its user data.
        let templates = try await cloud.api.client.call("DescribeLaunchTemplateVersions", [("LaunchTemplateName", EC2Cloud.templateName(
            cluster: "moto-a", data: try await templateData(cloud, request)))])
        let userData = try #require(templates.items("launchTemplateVersionSet").first?.string("launchTemplateData", "userData"))
        let decoded = String(decoding: Data(base64Encoded: userData) ?? Data(), as: UTF8.self)
        #expect(decoded.contains("--register-with-taints=nvidia.com/gpu=true:NoSchedule"))

        let got = try await cloud.get(providerID: instance.providerID)
        #expect(got.providerID == instance.providerID && got.instanceType == "g4dn.xlarge")

        try await cloud.delete(providerID: instance.providerID)
        await #expect(throws: CloudError.notFound(providerID: instance.providerID)) { _ = try await cloud.get(providerID: instance.providerID) }
        await #expect(throws: CloudError.notFound(providerID: instance.providerID)) { try await cloud.delete(providerID: instance.providerID) }
        #expect(try await cloud.list(clusterTag: "moto-a").isEmpty)
        let unknown = "aws:///us-east-1a/i-0123456789abcdef0"
        await #expect(throws: CloudError.notFound(providerID: unknown)) { try await cloud.delete(providerID: unknown) }
        await #expect(throws: CloudError.notFound(providerID: unknown)) { _ = try await cloud.get(providerID: unknown) }
    }

    func templateData(_ cloud: EC2Cloud, _ request: LaunchRequest) async throws -> EC2API.LaunchTemplateData {
        guard case .managed(let managed) = cloud.configuration.launchTemplate else { throw TestFailure("not managed") }
        let userData = NodeUserData.render(managed.userDataFormat, cluster: managed.cluster, labels: cloud.nodeLabels(request), taints: request.taints)
        return EC2API.LaunchTemplateData(imageID: managed.imageID, securityGroupIDs: managed.securityGroupIDs, instanceProfile: managed.instanceProfile,
                                         userDataBase64: Data(userData.utf8).base64EncodedString(), rootVolumeGiB: managed.rootVolumeGiB,
                                         tags: [CloudTag.cluster: request.cluster ?? managed.cluster.name])
    }

    /// Everything a launch creates carries the cluster tag (IAM's `aws:RequestTag` conditions need
    /// it on each), and the repository's IAM policy allows exactly what Berth called here plus
    /// what those calls imply — no action missing, none allowed that Berth never calls.
    @Test func launchTagsEverythingAndTheIAMPolicyAllowsExactlyTheCallsMade() async throws {
        let recorder = AWSCallRecorder()
        let prices = try PriceListStub.start(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        defer { prices.stop() }
        var configuration = try configuration(subnets: try await subnets())
        configuration.allowSpot = true
        configuration.priceSource = .priceList(endpoint: try AWSEndpoint(url: prices.endpoint, what: "stub"))
        let cloud = try EC2Cloud(configuration: configuration, credentials: credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in },
                                 recorder: recorder)
        #expect(try await cloud.catalog().pricesFrom == "the AWS Price List for us-east-1")
        let instance = try await cloud.create(Self.request("launch-iam", cluster: "moto-iam"))
        let id = try #require(ProviderID(instance.providerID)?.instanceID)
        _ = try await cloud.get(providerID: instance.providerID)
        _ = try await cloud.list(clusterTag: "moto-iam")
        // Warm capacity's stopped tier: stopped, then started again.
        try await cloud.stop(providerID: instance.providerID)
        try await cloud.start(providerID: instance.providerID)

        // What moto made: the instance, its volume (the launch template's tag) and the fleet.
        let probe = try self.cloud().api.client
        let volumes = try await probe.call("DescribeVolumes", [("Filter.1.Name", "attachment.instance-id"), ("Filter.1.Value.1", id)])
        let volumeTags = volumes.items("volumeSet").map { Self.tags($0) }
        #expect(!volumeTags.isEmpty && volumeTags.allSatisfy { $0[CloudTag.cluster] == "moto-iam" }, "\(volumeTags)")
        let fleets = try await probe.call("DescribeFleets")
        let fleetTags = fleets.items("fleetSet").map { Self.tags($0) }.filter { $0[CloudTag.launchID] == "launch-iam" }
        #expect(fleetTags.count == 1 && fleetTags.first?[CloudTag.cluster] == "moto-iam", "\(fleetTags)")
        #expect(instance.tags[CloudTag.cluster] == "moto-iam")
        try await cloud.delete(providerID: instance.providerID)

        // A launch from node classes (alias, ids, tag selectors, the cluster from EKS), recorded too.
        let world = try EKSWorld.make(moto, cluster: "moto-iam-eks", serviceCIDR: "10.100.0.0/16")
        let (classCloud, classInstance) = try await launchFromNodeClass(world, recorder: recorder, launchID: "launch-iam-class")
        try await classCloud.delete(providerID: classInstance.providerID)

        // Interruption notices read from the queue and deleted.
        _ = try await queue("berth-iam-interruptions", [EventBridgeEvents.spotWarning("i-0000000000000bbb1")])
        #expect(try await drainQueue("berth-iam-interruptions", recorder: recorder).map(\.instanceID) == ["i-0000000000000bbb1"])

        let policy = try JSONParser.parse(Array(try Data(contentsOf: Repository.root.appendingPathComponent(Self.policyFile))))
        let allowed = try IAMPolicy.allowedActions(policy)
        let required = IAMPolicy.required(for: recorder.actions)
        #expect(recorder.actions.count >= 8, "the scenario exercises every EC2 call: \(recorder.actions.sorted())")
        #expect(required.subtracting(allowed).isEmpty, "called but not allowed by \(Self.policyFile): \(required.subtracting(allowed).sorted())")
        #expect(allowed.subtracting(required).isEmpty, "allowed by \(Self.policyFile) but never called: \(allowed.subtracting(required).sorted())")
    }

    static let policyFile = "charts/aws/berth-iam-policy.json"

    static func tags(_ item: XMLNode) -> [String: String] {
        var tags: [String: String] = [:]
        for tag in item.items("tagSet") { if let key = tag.string("key") { tags[key] = tag.string("value") ?? "" } }
        return tags
    }

    /// README's policy is the file's, statement for statement.
    @Test func readmeShowsThePolicyFile() throws {
        let readme = try String(contentsOf: Repository.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "### IAM policy"))
        let rest = readme[section.upperBound...]
        let start = try #require(rest.range(of: "```json\n"))
        let end = try #require(rest[start.upperBound...].range(of: "```"))
        let shown = try JSONParser.parse(Array(rest[start.upperBound..<end.lowerBound].utf8))
        let file = try JSONParser.parse(Array(try Data(contentsOf: Repository.root.appendingPathComponent(Self.policyFile))))
        #expect(shown == file)
    }

    /// A subnet that does not exist: moto refuses the fleet, and Berth says so as a refusal with
    /// EC2's code and message (no retry with the same launch). (moto does not check AMIs in
    /// CreateFleet; the stub tests cover InvalidAMIID in the fleet's errorSet.)
    @Test func aMissingSubnetIsARefusal() async throws {
        let cloud = try cloud(subnets: ["us-east-1b": "subnet-0000000000deadbee"])
        await #expect {
            _ = try await cloud.create(Self.request("launch-no-subnet", cluster: "moto-subnet"))
        } throws: { error in
            guard case CloudError.refused("CreateFleet", let code, let message) = error else { return false }
            return code.hasPrefix("InvalidSubnetID.") && message.contains("subnet-0000000000deadbee")
        }
        #expect(try await cloud.list(clusterTag: "moto-subnet").isEmpty)
    }

    /// Seoul's catalog priced from the Price List (the stub checks signatures with botocore and
    /// applies the filters; its decoys — Windows, dedicated, SQL Server, reservations — would show
    /// if one were missing): a type the built-in table lacks becomes launchable, one the Price
    /// List lacks is not priced with us-east-1's figure. With the Price List down, the built-in
    /// table, and a warning naming the region.
    @Test func seoulPricesComeFromThePriceList() async throws {
        let prices = try PriceListStub.start(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        defer { prices.stop() }
        func seoul() throws -> EC2Cloud {
            var configuration = EC2CloudConfiguration(
                region: "ap-northeast-2", endpoint: try AWSEndpoint(url: moto.endpoint, what: "moto"), launchTemplate: nil,
                priceSource: .priceList(endpoint: try AWSEndpoint(url: prices.endpoint, what: "stub")))
            configuration.onDemandPrices = ["g5.xlarge": 1.1]
            return try EC2Cloud(configuration: configuration, credentials: credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in })
        }
        let catalog = try await seoul().catalog()
        #expect(catalog.priceWarning == nil && catalog.pricesFrom == "the AWS Price List for ap-northeast-2")
        #expect(catalog["g4dn.xlarge"]?.onDemandPricePerHour == PriceListStub.seoul["g4dn.xlarge"])
        #expect(catalog["g4dn.xlarge"]?.type.offerings.allSatisfy { $0.pricePerHour == 0.647 && $0.zone.hasPrefix("ap-northeast-2") } == true)
        #expect(catalog["p5.48xlarge"]?.onDemandPricePerHour == 68.5)
        #expect(catalog["g5g.xlarge"]?.onDemandPricePerHour == 0.5078, "not in the built-in table, priced by the Price List")
        #expect(catalog["g5.xlarge"]?.onDemandPricePerHour == 1.1, "onDemandPrices win")
        #expect(catalog["g6.xlarge"]?.onDemandPricePerHour == nil, "not in Seoul's list: not priced with us-east-1's figure")

        // The stub checks signatures: a wrong secret is refused.
        let wrong = StaticCredentials(name: "wrong", credentials: AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: "not-the-secret"))
        let unsigned = PriceListAPI(client: try AWSJSONClient(
            endpoint: try AWSEndpoint(url: prices.endpoint, what: "stub"), region: "ap-south-1", service: "pricing",
            targetPrefix: "AWSPriceListService", credentials: wrong, retry: AWSRetryPolicy(maxAttempts: 1)))
        await #expect { _ = try await unsigned.onDemandPrices(region: "ap-northeast-2") } throws: { error in
            (error as? AWSError)?.code == "InvalidSignatureException"
        }

        prices.stop()
        let fallback = try await seoul().catalog()
        #expect(fallback["g4dn.xlarge"]?.onDemandPricePerHour == 0.526)
        #expect(fallback.pricesFrom == "the built-in us-east-1 table")
        let warning = try #require(fallback.priceWarning)
        #expect(warning.contains("not ap-northeast-2's") && warning.contains("GetProducts"), "\(warning)")
    }

    @Test func listFollowsPagesAndFiltersByClusterTag() async throws {
        let cloud = try cloud(pageSize: 5)
        var launched: [String] = []
        for index in 0..<7 {
            launched.append(try await cloud.create(Self.request("launch-page-\(index)", cluster: "moto-pages")).providerID)
        }
        let other = try await cloud.create(Self.request("launch-other", cluster: "moto-other"))
        let listed = try await cloud.list(clusterTag: "moto-pages")
        #expect(Set(listed.map(\.providerID)) == Set(launched))
        #expect(listed.count == 7)
        #expect(!listed.contains { $0.providerID == other.providerID })
        #expect(listed.allSatisfy { $0.cluster == "moto-pages" })
        for providerID in launched + [other.providerID] { try await cloud.delete(providerID: providerID) }
        #expect(try await cloud.list(clusterTag: "moto-pages").isEmpty)
    }

    @Test func wrongSecretIsAuthFailure() async throws {
        let wrong = StaticCredentials(name: "wrong", credentials: AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: "not-the-secret-at-all"))
        let cloud = try cloud(credentials: wrong)
        await #expect {
            _ = try await cloud.list(clusterTag: "moto-a")
        } throws: { error in
            guard case CloudError.refused("DescribeInstances", "AuthFailure", let message) = error else { return false }
            return !message.contains("not-the-secret-at-all")
        }
        await #expect {
            _ = try await cloud.catalog()
        } throws: { error in (error as? AWSError)?.code == "AuthFailure" }
    }

    @Test func webIdentityCredentialsFromSTSSignEC2Calls() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let tokenFile = try dir.write("token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YmVydGgifQ.c2ln")
        let chain = AWSCredentialChain(environment: [
            "AWS_ROLE_ARN": moto.roleARN, "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_SESSION_NAME": "berth-test",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_STS": moto.endpoint,
        ])
        let credentials = try chain.resolve()
        // AWS does not sign AssumeRoleWithWebIdentity; moto, checking signatures, needs telling.
        try moto.allowUnsignedCalls(1)
        let assumed = try await credentials.fetch()
        #expect(assumed.accessKeyID != moto.accessKeyID)
        #expect(assumed.sessionToken?.isEmpty == false)
        #expect(assumed.expiration != nil)
        let cloud = try cloud(credentials: credentials)
        let instance = try await cloud.create(Self.request("launch-sts", cluster: "moto-sts"))
        #expect(try await cloud.list(clusterTag: "moto-sts").map(\.providerID) == [instance.providerID])
        try await cloud.delete(providerID: instance.providerID)
        #expect(credentials.fetchCount == 1, "cached, not asked again per call")

        // The same temporary key without its session token is refused.
        let tokenless = StaticCredentials(name: "tokenless", credentials: AWSCredentials(accessKeyID: assumed.accessKeyID, secretAccessKey: assumed.secretAccessKey))
        await #expect(throws: CloudError.self) { _ = try await self.cloud(credentials: tokenless).list(clusterTag: "moto-sts") }
    }
}
