@testable import BerthAWS
import BerthModel
import BerthProvisioner
import BerthScheduling
import BerthTestSupport
import Foundation
import Testing

extension EC2CloudMotoTests {
    /// moto cannot check the signature of a GET without a query (it re-encodes the request's
    /// headers as a form body and hashes that), so EKS's DescribeCluster — the one GET — goes
    /// through a window of one unchecked call; its signing is botocore-checked in SigV4SignerTests.
    func resolveSigned(_ cloud: EC2Cloud) throws {
        try moto.allowUnsignedCalls(1)
    }

    func nodeClassCloud(_ world: EKSWorld, classes: [NodeClass], pools: [String: String], recorder: AWSCallRecorder? = nil,
                        cluster: String? = nil) throws -> EC2Cloud {
        let endpoint = try AWSEndpoint(url: moto.endpoint, what: "moto")
        var configuration = EC2CloudConfiguration(region: "us-east-1", endpoint: endpoint, launchTemplate: nil)
        configuration.nodeClasses = Dictionary(uniqueKeysWithValues: classes.map { ($0.name, $0) })
        configuration.poolNodeClasses = pools
        configuration.eksCluster = EKSClusterSettings(name: cluster ?? world.cluster)
        configuration.ssmEndpoint = endpoint
        configuration.eksEndpoint = endpoint
        configuration.iamEndpoint = endpoint
        return try EC2Cloud(configuration: configuration, credentials: credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in },
                            recorder: recorder)
    }

    static func gpuClass() -> NodeClass {
        var gpu = NodeClass(name: "gpu", amiSelector: [.alias(family: .al2023, version: "latest")])
        gpu.blockDevices.rootVolumeGiB = 150
        gpu.blockDevices.iops = 4000
        gpu.kubelet.maxPods = 30
        gpu.kubelet.systemReserved = ["cpu": "100m"]
        gpu.userData = "#!/bin/bash\necho tuned > /etc/berth-extra\n"
        gpu.tags = ["team": "ml"]
        return gpu
    }

    /// One launch from the `gpu` node class (al2023@latest) with an x86 and an arm64 GPU type: what
    /// it asked EC2, and the instance. Shared by the node-class test and the IAM-policy test.
    func launchFromNodeClass(_ world: EKSWorld, recorder: AWSCallRecorder?, launchID: String) async throws -> (EC2Cloud, CloudInstance) {
        var custom = NodeClass(name: "custom", amiSelector: [.id("ami-12c6146b")])
        custom.subnetSelector = [.id(world.bestSubnets["us-east-1b"]!)]
        custom.securityGroupSelector = [.id(world.securityGroup)]
        var gpu = Self.gpuClass()
        gpu.role = world.cluster + "-node"
        let cloud = try nodeClassCloud(world, classes: [gpu, custom], pools: ["gpu": "gpu", "custom": "custom"], recorder: recorder)
        try resolveSigned(cloud)
        _ = try await cloud.resolvedNodeClasses()
        let catalog = try await cloud.catalog()
        #expect(Set(catalog["g4dn.xlarge"]?.type.offerings.map(\.zone) ?? []) == ["us-east-1a", "us-east-1b"], "only zones with a selected subnet")
        var x86 = try #require(catalog["g4dn.xlarge"]?.type)
        var arm = try #require(catalog["g5g.xlarge"]?.type)
        x86.offerings = ["us-east-1a", "us-east-1c"].map { Offering(zone: $0, pricePerHour: 0.526) }
        arm.offerings = [Offering(zone: "us-east-1b", pricePerHour: 0.42)]
        let request = LaunchRequest(
            launchID: launchID, cluster: world.cluster, pool: "gpu", candidates: [x86, arm], labels: ["berth.dev/pool": "gpu"],
            taints: [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")])
        return (cloud, try await cloud.create(request))
    }

    @Test func aNodeClassResolvesAliasSubnetsGroupsAndTheClusterThenLaunches() async throws {
        let world = try EKSWorld.make(moto, cluster: "moto-eks", serviceCIDR: "10.120.0.0/16")
        let (cloud, instance) = try await launchFromNodeClass(world, recorder: nil, launchID: "launch-class-1")
        let resolved = try #require(try await cloud.resolvedNodeClasses()["gpu"])
        #expect(resolved.cluster.serviceCIDR == "10.120.0.0/16" && resolved.cluster.version == "1.31" && resolved.cluster.dnsIP == "10.120.0.10")
        #expect(resolved.subnets == world.bestSubnets, "the tagged subnet with the most free addresses per zone; untagged never")
        #expect(resolved.securityGroups == [world.securityGroup])
        #expect(resolved.image(arch: "amd64", accelerated: true) == MotoServer.publicParameters[
            "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/recommended/image_id"])
        #expect(resolved.image(arch: "arm64", accelerated: true) == MotoServer.publicParameters[
            "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/arm64/nvidia/recommended/image_id"])
        // The role's instance profile, made by Berth, holds the role; the instance runs with it.
        let profile = NodeClassResolver.instanceProfileName(cluster: "moto-eks", role: "moto-eks-node")
        #expect(resolved.instanceProfile == profile)
        let iamProbe = IAMAPI(client: try AWSQueryClient(endpoint: try AWSEndpoint(url: moto.endpoint, what: "moto"), region: "us-east-1", service: "iam",
                                                         version: IAMAPI.version, credentials: credentials, sleep: { _ in }))
        #expect(try await iamProbe.instanceProfileRoleNames(profile) == ["moto-eks-node"])
        let custom = try #require(try await cloud.resolvedNodeClasses()["custom"])
        #expect(custom.image(arch: "amd64", accelerated: true) == "ami-12c6146b" && custom.image(arch: "arm64", accelerated: true) == nil)

        // The instance: the cheapest offering with a subnet (us-east-1c has none), its zone's best
        // subnet, the x86 NVIDIA AMI, the class's tags beside Berth's.
        let id = try #require(ProviderID(instance.providerID)?.instanceID)
        #expect(instance.instanceType == "g4dn.xlarge" && instance.zone == "us-east-1a")
        #expect(instance.tags["team"] == "ml" && instance.tags[CloudTag.cluster] == "moto-eks")
        let probe = try self.cloud().api.client
        let described = try await probe.call("DescribeInstances", [("InstanceId.1", id)])
        let item = try #require(described.items("reservationSet").first?.items("instancesSet").first)
        #expect(item.string("imageId") == resolved.image(arch: "amd64", accelerated: true))
        #expect(item.string("subnetId") == world.bestSubnets["us-east-1a"])

        // Two templates (one per architecture's AMI), with the class's volume, kubelet settings,
        // user data and the cluster's facts from EKS.
        let templates = try await probe.call("DescribeLaunchTemplates", [("Filter.1.Name", "tag:\(CloudTag.cluster)"), ("Filter.1.Value.1", "moto-eks")])
        let names = templates.items("launchTemplates").compactMap { $0.string("launchTemplateName") }
        var images: Set<String> = []
        for name in names {
            let versions = try await probe.call("DescribeLaunchTemplateVersions", [("LaunchTemplateName", name)])
            let data = try #require(versions.items("launchTemplateVersionSet").first?.first("launchTemplateData"))
            images.insert(data.string("imageId") ?? "")
            #expect(data.string("iamInstanceProfile", "name") == profile, "the template launches with Berth's profile for the role")
            let userData = String(decoding: Data(base64Encoded: data.string("userData") ?? "") ?? Data(), as: UTF8.self)
            #expect(userData.contains("cidr: \"10.120.0.0/16\"") && userData.contains("name: \"moto-eks\""))
            #expect(userData.contains("      maxPods: 30") && userData.contains("\"cpu\": \"100m\""))
            #expect(userData.contains("Content-Type: text/x-shellscript") && userData.contains("echo tuned > /etc/berth-extra"))
            #expect(userData.contains("--register-with-taints=nvidia.com/gpu=true:NoSchedule"))
            let volume = data.items("blockDeviceMappingSet").first
            #expect(volume?.string("ebs", "volumeSize") == "150" && volume?.string("ebs", "iops") == "4000")
            #expect(data.items("securityGroupIdSet").map(\.text) == [world.securityGroup] || data.items("securityGroupIdSet").first?.text == world.securityGroup)
        }
        #expect(images == [resolved.image(arch: "amd64", accelerated: true)!, resolved.image(arch: "arm64", accelerated: true)!])
        try await cloud.delete(providerID: instance.providerID)
    }

    /// Drift: the instance carries the AMI it was launched from; once the node class selects
    /// another (a new release behind the alias, a pinned version), listing says it drifted.
    @Test func anInstanceOnAnAMINoLongerSelectedHasDrifted() async throws {
        let world = try EKSWorld.make(moto, cluster: "moto-drift", serviceCIDR: "10.100.0.0/16")
        let (cloud, instance) = try await launchFromNodeClass(world, recorder: nil, launchID: "launch-drift")
        let listed = try #require(try await cloud.list(clusterTag: "moto-drift").first { $0.providerID == instance.providerID })
        let image = try #require(listed.tags[CloudTag.image])
        #expect(image == MotoServer.publicParameters["/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/recommended/image_id"])
        #expect(listed.drift == nil)

        var pinned = Self.gpuClass()
        pinned.amiSelector = [.alias(family: .al2023, version: "v20251120")]
        let later = try nodeClassCloud(world, classes: [pinned], pools: ["gpu": "gpu"])
        try resolveSigned(later)
        _ = try await later.resolvedNodeClasses()
        _ = try await later.catalog()
        let drifted = try #require(try await later.list(clusterTag: "moto-drift").first { $0.providerID == instance.providerID })
        let selected = try #require(MotoServer.publicParameters[
            "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/amazon-eks-node-al2023-x86_64-nvidia-1.31-v20251120/image_id"])
        #expect(drifted.drift == "AMI \(image) is no longer the one node class gpu selects (\(selected))")
        try await cloud.delete(providerID: instance.providerID)
    }

    @Test func aWrongClusterNameOrNoTaggedSubnetIsOneClearError() async throws {
        let world = try EKSWorld.make(moto, cluster: "moto-eks-2", serviceCIDR: "172.20.0.0/16")
        let wrong = try nodeClassCloud(world, classes: [Self.gpuClass()], pools: ["gpu": "gpu"], cluster: "no-such-cluster")
        try resolveSigned(wrong)
        await #expect { _ = try await wrong.resolvedNodeClasses() } throws: { error in
            guard let error = error as? AWSError, case .service(let failure) = error else { return false }
            return failure.action == "DescribeCluster" && failure.code == "ResourceNotFoundException" && failure.message.contains("no-such-cluster")
        }
        var untagged = Self.gpuClass()
        untagged.subnetSelector = [.tags(["karpenter.sh/discovery": "nobody"])]
        let none = try nodeClassCloud(world, classes: [untagged], pools: ["gpu": "gpu"])
        try resolveSigned(none)
        await #expect { _ = try await none.resolvedNodeClasses() } throws: { error in
            "\(error)" == "node class gpu: no subnet matches subnetSelector [{tags: {karpenter.sh/discovery: nobody}}] (tag your subnets karpenter.sh/discovery: moto-eks-2, or list them)"
        }
    }
}
