@testable import BerthAWS
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import Foundation
import Synchronization
import Testing

/// EC2Cloud against a local stub of EC2 that answers by action: what moto cannot do
/// (capacity errors, throttling, 5xx, catalog pages) and exactly what Berth sends.
@Suite struct EC2CloudStubTests {
    static let credentials = StaticCredentials(name: "test", credentials: AWSCredentials(accessKeyID: "AKIASTUB", secretAccessKey: "stub-secret"))

    func cloud(_ stub: StubServer, allowSpot: Bool = false, launchTemplate: EC2CloudConfiguration.LaunchTemplate = .name("berth-nodes"),
               clock: TestClock = TestClock()) throws -> EC2Cloud {
        try EC2Cloud(
            configuration: EC2CloudConfiguration(
                region: "us-east-1", endpoint: try AWSEndpoint(url: stub.url, what: "test"), launchTemplate: launchTemplate,
                subnets: ["us-east-1a": "subnet-aaa"], zones: ["us-east-1a", "us-east-1b"], allowSpot: allowSpot, pageSize: 2),
            credentials: Self.credentials, retry: AWSRetryPolicy(maxAttempts: 3), sleep: { _ in }, now: clock.function)
    }

    static let empty = StubServer.xml(200, "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>")

    static func candidates(spot: Bool = false) -> [InstanceType] {
        let catalog = InstanceCatalog.builtIn(zones: ["us-east-1a", "us-east-1b"])
        return ["g4dn.xlarge", "g5.xlarge"].map { name in
            var type = catalog[name]!
            if spot { type.offerings.append(Offering(zone: "us-east-1a", capacityType: "spot", pricePerHour: 0.2)) }
            return type
        }
    }

    static func fleetErrors(_ code: String) -> HTTPResponse {
        StubServer.xml(200, """
            <CreateFleetResponse><fleetId>fleet-1</fleetId><errorSet>
              <item><launchTemplateAndOverrides><overrides><instanceType>g4dn.xlarge</instanceType><subnetId>subnet-aaa</subnetId></overrides></launchTemplateAndOverrides>
                <lifecycle>on-demand</lifecycle><errorCode>\(code)</errorCode><errorMessage>We currently do not have sufficient capacity.</errorMessage></item>
            </errorSet><fleetInstanceSet/></CreateFleetResponse>
            """)
    }

    @Test func createFleetRequestCarriesOverridesTagsAndClientToken() async throws {
        let stub = try StubServer { request, _ in
            switch StubServer.form(request)["Action"] {
            case "DescribeInstances": return Self.empty
            default: return Self.fleetErrors("InsufficientInstanceCapacity")
            }
        }
        defer { stub.shutdown() }
        let request = LaunchRequest(launchID: "launch-1", cluster: "prod", pool: "gpu", candidates: Self.candidates(), extraTags: ["team": "ml"])
        await #expect(throws: CloudError.self) { _ = try await cloud(stub).create(request) }
        let forms = stub.requests.map(StubServer.form)
        #expect(forms.map { $0["Action"] } == ["DescribeInstances", "CreateFleet"])
        #expect(forms[0]["Filter.1.Name"] == "tag:berth.dev/launch-id" && forms[0]["Filter.1.Value.1"] == "launch-1")
        let fleet = forms[1]
        #expect(fleet["Type"] == "instant")
        #expect(fleet["ClientToken"] == "launch-1")
        #expect(fleet["TargetCapacitySpecification.TotalTargetCapacity"] == "1")
        #expect(fleet["TargetCapacitySpecification.DefaultTargetCapacityType"] == "on-demand")
        #expect(fleet["OnDemandOptions.AllocationStrategy"] == "lowest-price")
        #expect(fleet["LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName"] == "berth-nodes")
        #expect(fleet["LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version"] == "$Latest")
        // Cheapest first, one override per offering; a zone with a subnet by subnet, else by zone.
        #expect(fleet["LaunchTemplateConfigs.1.Overrides.1.InstanceType"] == "g4dn.xlarge")
        #expect(fleet["LaunchTemplateConfigs.1.Overrides.1.SubnetId"] == "subnet-aaa")
        #expect(fleet["LaunchTemplateConfigs.1.Overrides.2.InstanceType"] == "g4dn.xlarge")
        #expect(fleet["LaunchTemplateConfigs.1.Overrides.2.AvailabilityZone"] == "us-east-1b")
        #expect(fleet["LaunchTemplateConfigs.1.Overrides.3.InstanceType"] == "g5.xlarge")
        #expect(fleet["LaunchTemplateConfigs.1.Overrides.5.InstanceType"] == nil)
        #expect(fleet["TagSpecification.1.ResourceType"] == "instance")
        var tags: [String: String] = [:]
        for index in 1...4 { tags[fleet["TagSpecification.1.Tag.\(index).Key"] ?? ""] = fleet["TagSpecification.1.Tag.\(index).Value"] }
        #expect(tags == ["berth.dev/cluster": "prod", "berth.dev/pool": "gpu", "berth.dev/launch-id": "launch-1", "team": "ml"])
        // The same tags on the volumes and on the fleet (IAM's aws:RequestTag applies to each).
        #expect(fleet["TagSpecification.2.ResourceType"] == "volume" && fleet["TagSpecification.3.ResourceType"] == "fleet")
        for spec in 2...3 {
            var specTags: [String: String] = [:]
            for index in 1...4 { specTags[fleet["TagSpecification.\(spec).Tag.\(index).Key"] ?? ""] = fleet["TagSpecification.\(spec).Tag.\(index).Value"] }
            #expect(specTags == tags)
        }
        #expect(fleet["TagSpecification.4.ResourceType"] == nil)
    }

    @Test func noCapacityAnywhereIsInsufficientCapacityNamingEveryOffering() async throws {
        let stub = try StubServer { request, _ in
            StubServer.form(request)["Action"] == "DescribeInstances" ? Self.empty : Self.fleetErrors("InsufficientInstanceCapacity")
        }
        defer { stub.shutdown() }
        let request = LaunchRequest(launchID: "launch-2", cluster: "prod", pool: "gpu", candidates: Self.candidates(spot: true))
        await #expect {
            _ = try await cloud(stub).create(request)
        } throws: { error in
            guard case CloudError.insufficientCapacity(let offerings) = error else { return false }
            return offerings.map(\.text) == [
                "g4dn.xlarge/us-east-1a/on-demand", "g4dn.xlarge/us-east-1b/on-demand", "g5.xlarge/us-east-1a/on-demand",
                "g5.xlarge/us-east-1b/on-demand", "g4dn.xlarge/us-east-1a/spot", "g5.xlarge/us-east-1a/spot",
            ]
        }
        // On-demand first (its offerings come first), then spot with its own token and strategy.
        let fleets = stub.requests.map(StubServer.form).filter { $0["Action"] == "CreateFleet" }
        #expect(fleets.map { $0["ClientToken"] } == ["launch-2", "launch-2-spot"])
        #expect(fleets.last?["SpotOptions.AllocationStrategy"] == "price-capacity-optimized")
        #expect(fleets.last?["TargetCapacitySpecification.DefaultTargetCapacityType"] == "spot")
    }

    @Test func spotLaunchesWhenOnDemandHasNoCapacity() async throws {
        let stub = try StubServer { request, _ in
            let form = StubServer.form(request)
            switch form["Action"] {
            case "DescribeInstances" where form["InstanceId.1"] == "i-0spot":
                return StubServer.xml(200, """
                    <DescribeInstancesResponse><reservationSet><item><instancesSet><item>
                      <instanceId>i-0spot</instanceId><instanceType>g4dn.xlarge</instanceType><placement><availabilityZone>us-east-1a</availabilityZone></placement>
                      <instanceState><name>pending</name></instanceState><launchTime>2026-11-30T10:00:00.000Z</launchTime><instanceLifecycle>spot</instanceLifecycle>
                      <tagSet><item><key>berth.dev/launch-id</key><value>launch-3</value></item></tagSet>
                    </item></instancesSet></item></reservationSet></DescribeInstancesResponse>
                    """)
            case "DescribeInstances": return Self.empty
            case "CreateFleet" where form["TargetCapacitySpecification.DefaultTargetCapacityType"] == "spot":
                return StubServer.xml(200, """
                    <CreateFleetResponse><fleetId>fleet-2</fleetId><fleetInstanceSet><item><lifecycle>spot</lifecycle>
                      <instanceIds><item>i-0spot</item></instanceIds><instanceType>g4dn.xlarge</instanceType></item></fleetInstanceSet></CreateFleetResponse>
                    """)
            default: return Self.fleetErrors("InsufficientInstanceCapacity")
            }
        }
        defer { stub.shutdown() }
        let instance = try await cloud(stub).create(LaunchRequest(launchID: "launch-3", cluster: "prod", pool: "gpu", candidates: Self.candidates(spot: true)))
        #expect(instance.providerID == "aws:///us-east-1a/i-0spot")
        #expect(instance.capacityType == "spot")
        #expect(instance.state == .pending)
        #expect(instance.pricePerHour == 0.2)
        #expect(instance.launchID == "launch-3")
    }

    @Test func aRetryWithOtherCandidatesGetsItsOwnToken() async throws {
        let stub = try StubServer { request, _ in
            let form = StubServer.form(request)
            switch form["Action"] {
            case "DescribeInstances": return Self.empty
            case "CreateFleet" where form["ClientToken"] == "launch-6":
                return StubServer.ec2Error(400, code: "IdempotentParameterMismatch", message: "The client token has been used with different parameters")
            default: return Self.fleetErrors("InsufficientInstanceCapacity")
            }
        }
        defer { stub.shutdown() }
        await #expect(throws: CloudError.insufficientCapacity(offerings: [
            OfferingKey(instanceType: "g5.xlarge", zone: "us-east-1a", capacityType: "on-demand"),
            OfferingKey(instanceType: "g5.xlarge", zone: "us-east-1b", capacityType: "on-demand"),
        ])) {
            _ = try await cloud(stub).create(LaunchRequest(launchID: "launch-6", cluster: "prod", pool: "gpu", candidates: [Self.candidates()[1]]))
        }
        let tokens = stub.requests.map(StubServer.form).filter { $0["Action"] == "CreateFleet" }.compactMap { $0["ClientToken"] }
        #expect(tokens.count == 2)
        #expect(tokens.first == "launch-6")
        #expect(tokens.last?.hasPrefix("launch-6-") == true && tokens.last?.count == "launch-6-".count + 16)
    }

    @Test func nodeLabelsDropWhatDiffersBetweenCandidates() throws {
        let stub = try StubServer { _, _ in Self.empty }
        defer { stub.shutdown() }
        let candidates = Self.candidates()
        let request = LaunchRequest(launchID: "l", cluster: "c", pool: "gpu", candidates: candidates, labels: [
            "berth.dev/pool": "gpu", WellKnownLabel.gpuName: "t4", WellKnownLabel.gpuCount: "1",
            WellKnownLabel.zone: "us-east-1a", WellKnownLabel.capacityType: "on-demand",
        ])
        #expect(try cloud(stub).nodeLabels(request) == ["berth.dev/pool": "gpu", WellKnownLabel.gpuCount: "1"])
    }

    @Test func aLaunchNotYetVisibleIsDescribedFromTheFleetsAnswer() async throws {
        let stub = try StubServer { request, _ in
            switch StubServer.form(request)["Action"] {
            case "DescribeInstances": return Self.empty  // EC2's eventual consistency: not visible yet
            default:
                return StubServer.xml(200, """
                    <CreateFleetResponse><fleetId>fleet-7</fleetId><fleetInstanceSet><item>
                      <launchTemplateAndOverrides><overrides><instanceType>g4dn.xlarge</instanceType><subnetId>subnet-aaa</subnetId></overrides></launchTemplateAndOverrides>
                      <lifecycle>on-demand</lifecycle><instanceIds><item>i-0new</item></instanceIds><instanceType>g4dn.xlarge</instanceType>
                    </item></fleetInstanceSet></CreateFleetResponse>
                    """)
            }
        }
        defer { stub.shutdown() }
        let clock = TestClock()
        let instance = try await cloud(stub, clock: clock).create(LaunchRequest(launchID: "launch-7", cluster: "prod", pool: "gpu", candidates: Self.candidates()))
        #expect(instance == CloudInstance(
            providerID: "aws:///us-east-1a/i-0new", instanceType: "g4dn.xlarge", zone: "us-east-1a", capacityType: "on-demand", launchID: "launch-7",
            tags: ["berth.dev/cluster": "prod", "berth.dev/pool": "gpu", "berth.dev/launch-id": "launch-7"], state: .pending,
            launchTime: clock.now, pricePerHour: 0.526))
    }

    @Test func throttlingBecomesThrottledAfterRetries() async throws {
        let stub = try StubServer { request, _ in
            StubServer.form(request)["Action"] == "DescribeInstances" ? Self.empty
                : StubServer.ec2Error(503, code: "RequestLimitExceeded", message: "Request limit exceeded.")
        }
        defer { stub.shutdown() }
        await #expect(throws: CloudError.throttled(operation: "create launch-4")) {
            _ = try await cloud(stub).create(LaunchRequest(launchID: "launch-4", cluster: "prod", pool: "gpu", candidates: Self.candidates()))
        }
        #expect(stub.requests.filter { StubServer.form($0)["Action"] == "CreateFleet" }.count == 3)
    }

    @Test func serverErrorsAreRetriedThenSucceed() async throws {
        let stub = try StubServer { request, index in
            index < 2 ? StubServer.ec2Error(500, code: "InternalError", message: "An internal error has occurred") : Self.empty
        }
        defer { stub.shutdown() }
        #expect(try await cloud(stub).list(clusterTag: "prod").isEmpty)
        #expect(stub.requests.count == 3)
    }

    /// Refusals no retry fixes (permissions, a missing template, image or subnet, a rejected
    /// parameter) are `refused` with EC2's action, code and message, after one call: the
    /// provisioner gives the launch up and pauses the pool instead of retrying for 5 minutes.
    @Test(arguments: [
        ("UnauthorizedOperation", "You are not authorized to perform this operation. Encoded authorization failure message: abc"),
        ("AuthFailure", "AWS was not able to validate the provided access credentials"),
        ("InvalidLaunchTemplateName.NotFoundException", "The specified launch template does not exist."),
        ("InvalidParameterValue", "Value (gp9) for parameter volumeType is invalid."),
    ])
    func refusedFleetCallsAreNotRetried(code: String, message: String) async throws {
        let stub = try StubServer { request, _ in
            StubServer.form(request)["Action"] == "DescribeInstances" ? Self.empty : StubServer.ec2Error(400, code: code, message: message)
        }
        defer { stub.shutdown() }
        await #expect(throws: CloudError.refused(action: "CreateFleet", code: code, message: message)) {
            _ = try await cloud(stub).create(LaunchRequest(launchID: "launch-5", cluster: "prod", pool: "gpu", candidates: Self.candidates()))
        }
        #expect(stub.requests.filter { StubServer.form($0)["Action"] == "CreateFleet" }.count == 1)
    }

    /// An `instant` fleet reports most launch failures in its errorSet (HTTP 200): a refusal there
    /// is `refused` too, even beside capacity errors for other offerings.
    @Test(arguments: ["InvalidAMIID.NotFound", "InvalidSubnetID.NotFound", "UnauthorizedOperation"])
    func refusalsInTheFleetsErrorSetAreRefused(code: String) async throws {
        let stub = try StubServer { request, _ in
            guard StubServer.form(request)["Action"] == "CreateFleet" else { return Self.empty }
            return StubServer.xml(200, """
                <CreateFleetResponse><fleetId>fleet-2</fleetId><errorSet>
                  <item><launchTemplateAndOverrides><overrides><instanceType>g4dn.xlarge</instanceType></overrides></launchTemplateAndOverrides>
                    <lifecycle>on-demand</lifecycle><errorCode>InsufficientInstanceCapacity</errorCode><errorMessage>no capacity</errorMessage></item>
                  <item><launchTemplateAndOverrides><overrides><instanceType>g5.xlarge</instanceType></overrides></launchTemplateAndOverrides>
                    <lifecycle>on-demand</lifecycle><errorCode>\(code)</errorCode><errorMessage>The thing 'x-123' does not exist</errorMessage></item>
                </errorSet><fleetInstanceSet/></CreateFleetResponse>
                """)
        }
        defer { stub.shutdown() }
        await #expect(throws: CloudError.refused(action: "CreateFleet", code: code, message: "The thing 'x-123' does not exist")) {
            _ = try await cloud(stub).create(LaunchRequest(launchID: "launch-6", cluster: "prod", pool: "gpu", candidates: Self.candidates()))
        }
    }

    @Test func otherFleetErrorsAreNotCapacity() async throws {
        let stub = try StubServer { request, _ in
            let action = StubServer.form(request)["Action"]
            if action == "DescribeInstances" { return Self.empty }
            return StubServer.ec2Error(400, code: "InvalidInstanceType", message: "The instance type 'g9.huge' does not exist.")
        }
        defer { stub.shutdown() }
        await #expect {
            _ = try await cloud(stub).create(LaunchRequest(launchID: "launch-5", cluster: "prod", pool: "gpu", candidates: Self.candidates()))
        } throws: { error in
            guard case CloudError.invalidRequest(let text) = error else { return false }
            return text.contains("InvalidInstanceType") && text.contains("launch-5")
        }
    }

    @Test func invalidRequestsNeverReachEC2() async throws {
        let stub = try StubServer { _, _ in Self.empty }
        defer { stub.shutdown() }
        let cloud = try cloud(stub)
        await #expect(throws: CloudError.invalidRequest("launch id is empty")) {
            _ = try await cloud.create(LaunchRequest(launchID: "", cluster: "c", pool: "p", candidates: Self.candidates()))
        }
        await #expect(throws: CloudError.invalidRequest("sim:///us-east-1a/i-1 is not an EC2 provider id (aws:///<zone>/i-...)")) {
            try await cloud.delete(providerID: "sim:///us-east-1a/i-1")
        }
        await #expect(throws: CloudError.self) { _ = try await cloud.get(providerID: "aws:///i-123") }
        #expect(stub.requests.isEmpty)
    }

    static func typesPage(_ names: [String], next: String?) -> HTTPResponse {
        let items = names.map { name in
            """
            <item><instanceType>\(name)</instanceType><supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>
            <processorInfo><supportedArchitectures><item>\(name.hasPrefix("g5g") ? "arm64" : "x86_64")</item></supportedArchitectures></processorInfo>
            <vCpuInfo><defaultVCpus>4</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>16384</sizeInMiB></memoryInfo>
            <networkInfo><maximumNetworkInterfaces>3</maximumNetworkInterfaces><ipv4AddressesPerInterface>10</ipv4AddressesPerInterface></networkInfo>
            \(name.hasPrefix("m5") ? "" : "<gpuInfo><gpus><item><name>T4</name><manufacturer>NVIDIA</manufacturer><count>1</count><memoryInfo><sizeInMiB>16384</sizeInMiB></memoryInfo></item></gpus></gpuInfo>")
            </item>
            """
        }.joined()
        return StubServer.xml(200, "<DescribeInstanceTypesResponse><instanceTypeSet>\(items)</instanceTypeSet>\(next.map { "<nextToken>\($0)</nextToken>" } ?? "")</DescribeInstanceTypesResponse>")
    }

    @Test func catalogFollowsPagesAddsSpotPricesAndIsCachedForAnHour() async throws {
        let stub = try StubServer { request, _ in
            let form = StubServer.form(request)
            switch (form["Action"], form["NextToken"]) {
            case ("DescribeInstanceTypes", nil): return Self.typesPage(["g4dn.xlarge", "m5.large"], next: "page-2")
            case ("DescribeInstanceTypes", "page-2"): return Self.typesPage(["g5g.xlarge"], next: nil)
            case ("DescribeInstanceTypeOfferings", _):
                // g5g.xlarge is not sold in us-east-1b.
                let offered = [("g4dn.xlarge", "us-east-1a"), ("g4dn.xlarge", "us-east-1b"), ("g5g.xlarge", "us-east-1a"), ("m5.large", "us-east-1b")]
                return StubServer.xml(200, "<R><instanceTypeOfferingSet>" + offered.map {
                    "<item><instanceType>\($0.0)</instanceType><locationType>availability-zone</locationType><location>\($0.1)</location></item>"
                }.joined() + "</instanceTypeOfferingSet></R>")
            case ("DescribeSpotPriceHistory", _):
                return StubServer.xml(200, """
                    <DescribeSpotPriceHistoryResponse><spotPriceHistorySet>
                      <item><instanceType>g4dn.xlarge</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>0.2104</spotPrice>
                        <timestamp>2026-11-30T09:00:00.000Z</timestamp><availabilityZone>us-east-1b</availabilityZone></item>
                      <item><instanceType>g4dn.xlarge</instanceType><spotPrice>0.3</spotPrice><availabilityZone>us-west-2a</availabilityZone></item>
                      <item><instanceType>g5g.xlarge</instanceType><spotPrice>0.15</spotPrice><availabilityZone>us-east-1a</availabilityZone></item>
                      <item><instanceType>g5g.xlarge</instanceType><spotPrice>0.16</spotPrice><availabilityZone>us-east-1b</availabilityZone></item>
                    </spotPriceHistorySet></DescribeSpotPriceHistoryResponse>
                    """)
            default: return HTTPResponse(status: 400)
            }
        }
        defer { stub.shutdown() }
        let clock = TestClock()
        let cloud = try cloud(stub, allowSpot: true, clock: clock)
        let catalog = try await cloud.catalog()
        #expect(catalog.entries.map(\.name) == ["g4dn.xlarge", "g5g.xlarge"])
        #expect(catalog.unpriced == ["g5g.xlarge"])
        let g4dn = try #require(catalog["g4dn.xlarge"]?.type)
        #expect(g4dn.gpuName == "t4" && g4dn.gpuCount == 1 && g4dn.gpuMemoryMiB == 16384 && g4dn.gpuManufacturer == "nvidia")
        #expect(g4dn.vcpu == 4 && g4dn.memoryMiB == 16384 && g4dn.arch == "amd64" && g4dn.maxPods == 29)
        #expect(g4dn.offerings == [
            Offering(zone: "us-east-1a", capacityType: "on-demand", pricePerHour: 0.526),
            Offering(zone: "us-east-1b", capacityType: "on-demand", pricePerHour: 0.526),
            Offering(zone: "us-east-1b", capacityType: "spot", pricePerHour: 0.2104),
        ])
        #expect(catalog["g5g.xlarge"]?.type.arch == "arm64")
        // Unpriced on demand, but sold on spot, and only where EC2 offers the type.
        #expect(catalog["g5g.xlarge"]?.type.offerings == [Offering(zone: "us-east-1a", capacityType: "spot", pricePerHour: 0.15)])
        let zonesQuery = try #require(stub.requests.map(StubServer.form).first { $0["Action"] == "DescribeInstanceTypeOfferings" })
        #expect(zonesQuery["LocationType"] == "availability-zone" && zonesQuery["Filter.1.Name"] == "location")
        #expect(zonesQuery["Filter.1.Value.1"] == "us-east-1a" && zonesQuery["Filter.1.Value.2"] == "us-east-1b")
        #expect(catalog.schedulable.types.map(\.name) == ["g4dn.xlarge", "g5g.xlarge"])
        let pages = stub.requests.map(StubServer.form).filter { $0["Action"] == "DescribeInstanceTypes" }
        #expect(pages.map { $0["MaxResults"] } == ["5", "5"], "the configured 2, raised to EC2's minimum")
        let spot = try #require(stub.requests.map(StubServer.form).first { $0["Action"] == "DescribeSpotPriceHistory" })
        #expect(spot["InstanceType.1"] == "g4dn.xlarge" && spot["InstanceType.2"] == "g5g.xlarge" && spot["InstanceType.3"] == nil)

        _ = try await cloud.catalog()
        clock.advance(3599)
        _ = try await cloud.catalog()
        #expect(cloud.catalogFetchCount == 1)
        clock.advance(2)
        _ = try await cloud.catalog()
        #expect(cloud.catalogFetchCount == 2)
    }

    @Test func malformedInstanceTypesNameTheTypeAndField() async throws {
        let stub = try StubServer { _, _ in
            StubServer.xml(200, "<DescribeInstanceTypesResponse><instanceTypeSet><item><instanceType>g9.huge</instanceType><vCpuInfo><defaultVCpus>many</defaultVCpus></vCpuInfo></item></instanceTypeSet></DescribeInstanceTypesResponse>")
        }
        defer { stub.shutdown() }
        await #expect(throws: AWSError.malformedResponse(action: "DescribeInstanceTypes", reason: "g9.huge: vCpuInfo.defaultVCpus missing or not a number")) {
            _ = try await cloud(stub).catalog()
        }
    }

    @Test func managedTemplateIsCreatedOncePerUserData() async throws {
        let created = Mutex<[String: String]>([:])
        let stub = try StubServer { request, _ in
            let form = StubServer.form(request)
            switch form["Action"] {
            case "DescribeLaunchTemplates":
                guard let id = created.withLock({ $0[form["LaunchTemplateName.1"] ?? ""] }) else {
                    return StubServer.ec2Error(400, code: "InvalidLaunchTemplateName.NotFoundException", message: "does not exist")
                }
                return StubServer.xml(200, "<R><launchTemplates><item><launchTemplateId>\(id)</launchTemplateId></item></launchTemplates></R>")
            case "CreateLaunchTemplate":
                let id = "lt-\(created.withLock { $0.count })"
                created.withLock { $0[form["LaunchTemplateName"] ?? ""] = id }
                return StubServer.xml(200, "<R><launchTemplate><launchTemplateId>\(id)</launchTemplateId></launchTemplate></R>")
            case "DescribeInstances": return Self.empty
            default: return Self.fleetErrors("InsufficientInstanceCapacity")
            }
        }
        defer { stub.shutdown() }
        let managed = EC2CloudConfiguration.ManagedLaunchTemplate(
            imageID: "ami-0123", securityGroupIDs: ["sg-1", "sg-2"], instanceProfile: "berth-node",
            cluster: EKSCluster(name: "prod", apiServerEndpoint: "https://ABC.gr7.us-east-1.eks.amazonaws.com", certificateAuthority: "Q0E="))
        let cloud = try cloud(stub, launchTemplate: .managed(managed))
        let taint = [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")]
        for launch in ["a", "b"] {
            _ = try? await cloud.create(LaunchRequest(launchID: launch, cluster: "prod", pool: "gpu", candidates: Self.candidates(),
                                                       labels: ["berth.dev/pool": "gpu"], taints: taint))
        }
        _ = try? await cloud.create(LaunchRequest(launchID: "c", cluster: "prod", pool: "cpu", candidates: Self.candidates(), labels: ["berth.dev/pool": "cpu"]))
        let forms = stub.requests.map(StubServer.form)
        let creates = forms.filter { $0["Action"] == "CreateLaunchTemplate" }
        #expect(creates.count == 2, "one template per distinct user data")
        let first = try #require(creates.first)
        #expect(first["LaunchTemplateName"]?.hasPrefix("berth-prod-") == true)
        #expect(first["LaunchTemplateData.ImageId"] == "ami-0123")
        #expect(first["LaunchTemplateData.SecurityGroupId.2"] == "sg-2")
        #expect(first["LaunchTemplateData.IamInstanceProfile.Name"] == "berth-node")
        #expect(first["LaunchTemplateData.MetadataOptions.HttpTokens"] == "required")
        // Network interfaces (and volumes) of every instance from it carry the cluster tag.
        #expect(first["LaunchTemplateData.TagSpecification.1.ResourceType"] == "network-interface")
        #expect(first["LaunchTemplateData.TagSpecification.1.Tag.1.Key"] == "berth.dev/cluster")
        #expect(first["LaunchTemplateData.TagSpecification.1.Tag.1.Value"] == "prod")
        #expect(first["LaunchTemplateData.TagSpecification.2.ResourceType"] == "volume")
        #expect(first["TagSpecification.1.ResourceType"] == "launch-template" && first["TagSpecification.1.Tag.1.Value"] == "prod")
        let userData = String(decoding: Data(base64Encoded: first["LaunchTemplateData.UserData"] ?? "") ?? Data(), as: UTF8.self)
        #expect(userData.contains("- \"--register-with-taints=nvidia.com/gpu=true:NoSchedule\""))
        #expect(userData.contains("- \"--node-labels=berth.dev/pool=gpu\""))
        let fleets = forms.filter { $0["Action"] == "CreateFleet" }
        #expect(fleets.map { $0["LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId"] } == ["lt-0", "lt-0", "lt-1"])
    }
}

@Suite struct NodeUserDataTests {
    static let cluster = EKSCluster(name: "prod", apiServerEndpoint: "https://ABC.gr7.us-east-1.eks.amazonaws.com",
                                    certificateAuthority: "LS0tLS1CRUdJTg==", serviceCIDR: "172.20.0.0/16")

    @Test func al2023NodeConfigInMIMEMultipart() {
        let text = NodeUserData.render(.al2023, cluster: Self.cluster, labels: ["b": "2", "a": "1", "kubernetes.io/role": "gpu"],
                                       taints: [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule"), Taint(key: "dedicated", effect: "NoExecute")])
        #expect(text == """
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="BOUNDARY"

            --BOUNDARY
            Content-Type: application/node.eks.aws

            ---
            apiVersion: node.eks.aws/v1alpha1
            kind: NodeConfig
            spec:
              cluster:
                name: "prod"
                apiServerEndpoint: "https://ABC.gr7.us-east-1.eks.amazonaws.com"
                certificateAuthority: "LS0tLS1CRUdJTg=="
                cidr: "172.20.0.0/16"
              kubelet:
                flags:
                  - "--node-labels=a=1,b=2"
                  - "--register-with-taints=nvidia.com/gpu=true:NoSchedule,dedicated:NoExecute"

            --BOUNDARY--

            """)
    }

    @Test func al2BootstrapScriptQuotesEverything() {
        let text = NodeUserData.render(.al2, cluster: EKSCluster(name: "it's", apiServerEndpoint: "https://x", certificateAuthority: "Q0E="),
                                       labels: ["node.kubernetes.io/lifecycle": "gpu"], taints: [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")])
        #expect(text == """
            #!/bin/bash
            set -o errexit
            /etc/eks/bootstrap.sh 'it'\\''s' --apiserver-endpoint 'https://x' --b64-cluster-ca 'Q0E=' --kubelet-extra-args '--node-labels=node.kubernetes.io/lifecycle=gpu --register-with-taints=nvidia.com/gpu=true:NoSchedule'

            """)
    }

    @Test(arguments: [
        ("karpenter.sh/capacity-type", true), ("nvidia.com/gpu.present", true), ("plain", true),
        ("kubernetes.io/arch", true), ("node.kubernetes.io/instance-type", true), ("node-role.kubernetes.io/gpu", false),
        ("kubernetes.io/role", false), ("k8s.io/anything", false), ("kubelet.kubernetes.io/x", true),
    ])
    func kubeletLabelRestrictions(key: String, allowed: Bool) {
        #expect(NodeUserData.kubeletMaySet(key) == allowed)
    }
}

@Suite struct PriceFileTests {
    func prices(_ text: String) throws -> [String: Double] {
        try EC2CloudConfiguration.prices(catalog: try JSONParser.parse(text), source: "prices.json")
    }

    @Test func catalogOutputReadsBack() throws {
        let read = try prices("""
            [{"name": "g4dn.xlarge", "gpus": 1, "pricePerHour": 0.526}, {"name": "g4ad.xlarge", "pricePerHour": null, "note": "unknown"}]
            """)
        #expect(read == ["g4dn.xlarge": 0.526])
    }

    @Test(arguments: [
        (#"{"g4dn.xlarge": 1}"#, "prices.json: expected a list of {name, pricePerHour} (berth catalog -o json), found an object"),
        (#"[{"pricePerHour": 1}]"#, "prices.json: [0].name: is required"),
        (#"[{"name": "a", "pricePerHour": 1}, {"name": "b", "pricePerHour": true}]"#, "prices.json: [1].pricePerHour: expected a number"),
        (#"[{"name": "a", "pricePerHour": -1}]"#, "prices.json: [0].pricePerHour: must be >= 0, found -1.0"),
        (#"[{"name": "a", "price": 1}]"#, "prices.json: [0].price: unknown field \"price\""),
    ])
    func badFilesNameTheEntry(text: String, message: String) {
        #expect {
            _ = try prices(text)
        } throws: { error in "\(error)".hasPrefix(message) }
    }
}

/// The Price List client and the price cache against a local stub: exactly what Berth sends
/// (target, content type, filters, signing scope), pages, the 12-hour cache, a failed refresh.
@Suite struct PriceListTests {
    static func product(_ type: String, _ price: String) -> JSON {
        let document: JSON = [
            "product": ["attributes": ["instanceType": .string(type), "operatingSystem": "Linux"], "sku": "SKU1"],
            "terms": ["OnDemand": ["SKU1.JRTCKXETXF": ["priceDimensions": ["SKU1.JRTCKXETXF.6YS6EN2CT7": [
                "unit": "Hrs", "pricePerUnit": ["USD": .string(price)]]]]]],
        ]
        return .string(JSONWriter.string(document))
    }

    static func answer(_ items: [JSON], next: String? = nil) -> HTTPResponse {
        var object: JSONObject = ["FormatVersion": "aws_v1", "PriceList": .array(items)]
        if let next { object["NextToken"] = .string(next) }
        return HTTPResponse(status: 200, headers: ["Content-Type": "application/x-amz-json-1.1"], body: Array(JSONWriter.string(.object(object)).utf8))
    }

    @Test func requestsArePagedFilteredAndSignedForPricing() async throws {
        let stub = try StubServer { request, _ in
            let body = (try? JSONParser.parse(request.body)) ?? .null
            if body["NextToken"]?.stringValue == "page-2" { return Self.answer([Self.product("g5.xlarge", "1.2580000000"), Self.product("g5.xlarge", "9")]) }
            return Self.answer([Self.product("g4dn.xlarge", "0.6470000000"), Self.product("free.tier", "0.0000000000")], next: "page-2")
        }
        defer { stub.shutdown() }
        let client = try AWSJSONClient(
            endpoint: try AWSEndpoint(url: stub.url, what: "stub"), region: "ap-south-1", service: "pricing", targetPrefix: "AWSPriceListService",
            credentials: EC2CloudStubTests.credentials, sleep: { _ in })
        let prices = try await PriceListAPI(client: client).onDemandPrices(region: "ap-northeast-2", pageSize: 2)
        #expect(prices == ["g4dn.xlarge": 0.647, "g5.xlarge": 1.258], "a zero price is skipped; a type listed twice keeps the lower")
        let requests = stub.requests
        #expect(requests.count == 2)
        let first = try #require(requests.first)
        #expect(first.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts")
        #expect(first.headers["Content-Type"] == "application/x-amz-json-1.1")
        #expect(first.headers["Authorization"]?.contains("/ap-south-1/pricing/aws4_request") == true)
        #expect(first.headers["Authorization"]?.contains("x-amz-target") == true, "the target is signed")
        let body = try JSONParser.parse(first.body)
        #expect(body["ServiceCode"] == "AmazonEC2" && body["MaxResults"] == .number("2") && body["NextToken"] == nil)
        let filters = body["Filters"]?.arrayValue?.map { "\($0["Type"]?.stringValue ?? ""):\($0["Field"]?.stringValue ?? "")=\($0["Value"]?.stringValue ?? "")" }
        #expect(filters == ["TERM_MATCH:regionCode=ap-northeast-2", "TERM_MATCH:operatingSystem=Linux", "TERM_MATCH:tenancy=Shared",
                            "TERM_MATCH:preInstalledSw=NA", "TERM_MATCH:capacitystatus=Used"])
        #expect(try JSONParser.parse(requests[1].body)["NextToken"] == "page-2")
    }

    @Test(arguments: [
        (#"{"PriceList": [42]}"#, "PriceList[0] is not a string"),
        (#"{"PriceList": ["{not json"]}"#, "PriceList[0] is not a JSON document"),
        (#"{"Prices": []}"#, "no PriceList list"),
    ])
    func malformedAnswersSayWhat(body: String, message: String) async throws {
        let stub = try StubServer { _, _ in HTTPResponse(status: 200, headers: [:], body: Array(body.utf8)) }
        defer { stub.shutdown() }
        let client = try AWSJSONClient(
            endpoint: try AWSEndpoint(url: stub.url, what: "stub"), region: "us-east-1", service: "pricing", targetPrefix: "AWSPriceListService",
            credentials: EC2CloudStubTests.credentials, sleep: { _ in })
        await #expect { _ = try await PriceListAPI(client: client).onDemandPrices(region: "us-east-1") } throws: { error in
            "\(error)".contains(message) && "\(error)".hasPrefix("GetProducts")
        }
    }

    @Test func jsonErrorsKeepTheirCodeAndThrottlingIsRetried() async throws {
        let stub = try StubServer { _, index in
            index == 0
                ? HTTPResponse(status: 400, headers: ["x-amzn-RequestId": "r-1"], body: Array(#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#.utf8))
                : HTTPResponse(status: 400, headers: [:], body: Array(#"{"__type":"com.amazonaws.pricing#AccessDeniedException:http://internal","Message":"no pricing:GetProducts"}"#.utf8))
        }
        defer { stub.shutdown() }
        let client = try AWSJSONClient(
            endpoint: try AWSEndpoint(url: stub.url, what: "stub"), region: "us-east-1", service: "pricing", targetPrefix: "AWSPriceListService",
            credentials: EC2CloudStubTests.credentials, sleep: { _ in })
        await #expect(throws: AWSError.service(AWSServiceError(action: "GetProducts", code: "AccessDeniedException", message: "no pricing:GetProducts", requestID: nil, status: 400))) {
            _ = try await client.call("GetProducts", ["ServiceCode": "AmazonEC2"])
        }
        #expect(stub.requests.count == 2, "the throttled call was retried")
    }

    /// Prices are read once per 12 hours, whatever the catalog's hourly refresh; a failed refresh
    /// keeps the last table, with a warning; a region the list does not know falls back to the
    /// built-in table, with a warning naming the region.
    @Test func pricesAreCachedForTwelveHoursAndAFailedRefreshKeepsThem() async throws {
        let failing = Atomic<Bool>(false)
        let listed = Atomic<Bool>(true)
        let stub = try StubServer { request, _ in
            let form = StubServer.form(request)
            if request.headers["X-Amz-Target"] != nil {
                if failing.load(ordering: .relaxed) { return HTTPResponse(status: 503, headers: [:], body: Array("down".utf8)) }
                return Self.answer(listed.load(ordering: .relaxed) ? [Self.product("g4dn.xlarge", "0.647")] : [])
            }
            switch form["Action"] {
            case "DescribeInstanceTypes": return EC2CloudStubTests.typesPage(["g4dn.xlarge"], next: nil)
            default: return StubServer.xml(200, "<R><instanceTypeOfferingSet><item><instanceType>g4dn.xlarge</instanceType><location>ap-northeast-2a</location></item></instanceTypeOfferingSet></R>")
            }
        }
        defer { stub.shutdown() }
        let clock = TestClock()
        let endpoint = try AWSEndpoint(url: stub.url, what: "stub")
        let cloud = try EC2Cloud(
            configuration: EC2CloudConfiguration(region: "ap-northeast-2", endpoint: endpoint, launchTemplate: nil, zones: ["ap-northeast-2a"],
                                                 priceSource: .priceList(endpoint: endpoint)),
            credentials: EC2CloudStubTests.credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in }, now: clock.function)
        #expect(try await cloud.catalog()["g4dn.xlarge"]?.onDemandPricePerHour == 0.647)
        for _ in 0..<11 {
            clock.advance(3600)
            #expect(try await cloud.catalog()["g4dn.xlarge"]?.onDemandPricePerHour == 0.647)
        }
        #expect(cloud.catalogFetchCount == 12 && cloud.priceFetchCount == 1, "hourly catalog, prices once in 12 h")
        failing.store(true, ordering: .relaxed)
        clock.advance(3600)
        let kept = try await cloud.catalog()
        #expect(cloud.priceFetchCount == 2)
        #expect(kept["g4dn.xlarge"]?.onDemandPricePerHour == 0.647)
        #expect(kept.priceWarning?.contains("keeping ap-northeast-2's prices read at") == true, "\(kept.priceWarning ?? "")")

        // A fresh cloud, and a region the Price List knows nothing of: the built-in table, said so.
        failing.store(false, ordering: .relaxed)
        listed.store(false, ordering: .relaxed)
        let unlisted = try EC2Cloud(
            configuration: EC2CloudConfiguration(region: "ap-northeast-2", endpoint: endpoint, launchTemplate: nil, zones: ["ap-northeast-2a"],
                                                 priceSource: .priceList(endpoint: endpoint)),
            credentials: EC2CloudStubTests.credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in }, now: clock.function)
        let fallback = try await unlisted.catalog()
        #expect(fallback["g4dn.xlarge"]?.onDemandPricePerHour == 0.526)
        #expect(fallback.priceWarning?.contains("lists no Linux on-demand EC2 price for ap-northeast-2") == true)
        #expect(fallback.priceWarning?.contains("not ap-northeast-2's") == true)
    }

    @Test(arguments: [("us-east-1", "us-east-1"), ("us-west-2", "us-east-1"), ("ap-northeast-2", "ap-south-1"), ("eu-west-1", "eu-central-1"),
                      ("me-south-1", "eu-central-1"), ("sa-east-1", "us-east-1")])
    func theNearestPriceListEndpointServesEachRegion(region: String, pricing: String) throws {
        #expect(PriceListAPI.pricingRegion(for: region) == pricing)
        let configuration = EC2CloudConfiguration(region: region, launchTemplate: nil, priceSource: .priceList(endpoint: nil))
        let endpoint = try #require(try configuration.pricingEndpoint())
        #expect(endpoint.endpoint.description == "https://api.pricing.\(pricing).amazonaws.com" && endpoint.region == pricing)
    }
}
