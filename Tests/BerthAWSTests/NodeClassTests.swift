@testable import BerthAWS
import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// `provisioner.nodeClasses` read strictly, the user data a node class renders, the SSM names of
/// its aliases, and the cluster DNS address from the service CIDR.
@Suite struct NodeClassTests {
    func parse(_ yaml: String) throws -> NodeClass {
        try NodeClass(config: try YAMLReader.document(yaml), name: "gpu", path: "provisioner.nodeClasses.gpu")
    }

    @Test func aFullNodeClassIsRead() throws {
        let nodeClass = try parse("""
            amiSelector: [{alias: bottlerocket@latest}]
            subnetSelector: [{tags: {karpenter.sh/discovery: ml}}, {id: subnet-0abc}]
            securityGroupSelector: [{id: sg-0abc}]
            instanceProfile: berth-node
            blockDevices: {rootVolumeGiB: 200, volumeType: gp3, iops: 6000, throughput: 250, deleteOnTermination: false}
            metadataOptions: {httpTokens: required, httpPutResponseHopLimit: 2}
            tags: {team: ml}
            userData: |
              [settings.host-containers.admin]
              enabled = true
            kubelet: {maxPods: 58, systemReserved: {cpu: 100m, memory: 100Mi}, evictionHard: {memory.available: 5%}}
            """)
        #expect(nodeClass.amiSelector == [.alias(family: .bottlerocket, version: "latest")] && nodeClass.amiFamily == .bottlerocket)
        #expect(nodeClass.subnetSelector == [.tags(["karpenter.sh/discovery": "ml"]), .id("subnet-0abc")])
        #expect(nodeClass.securityGroupSelector == [.id("sg-0abc")])
        #expect(nodeClass.blockDevices.rootVolumeGiB == 200 && nodeClass.blockDevices.iops == 6000 && !nodeClass.blockDevices.deleteOnTermination)
        #expect(nodeClass.ephemeralStorageGiB == 200, "the size the scheduler's ephemeral-storage figure should come from")
        var configuration = EC2CloudConfiguration(region: "us-east-1", launchTemplate: .name("theirs"))
        configuration.nodeClasses = ["gpu": nodeClass]
        configuration.poolNodeClasses = ["gpu": "gpu"]
        #expect(configuration.ephemeralStorageGiB(pool: "gpu") == 200 && configuration.ephemeralStorageGiB(pool: "other") == nil)
        #expect(nodeClass.metadataOptions.httpPutResponseHopLimit == 2 && nodeClass.kubelet.maxPods == 58)
        #expect(nodeClass.kubelet.evictionHard == ["memory.available": "5%"])
        let defaults = try parse("amiSelector: [{alias: al2023@v20251120}]")
        #expect(defaults.subnetSelector == nil && defaults.securityGroupSelector == nil, "nil: the karpenter.sh/discovery tag")
        #expect(defaults.blockDevices.rootVolumeGiB == 100 && defaults.metadataOptions.httpTokens == "required")
    }

    @Test(arguments: [
        ("subnetSelector: []", "provisioner.nodeClasses.gpu.amiSelector: is required: [{alias: al2023@latest}], [{id: ami-...}] or [{tags: {...}}]"),
        ("amiSelector: [{alias: al2@latest}]", "provisioner.nodeClasses.gpu.amiSelector[0].alias: \"al2@latest\" is not al2023@latest, al2023@vYYYYMMDD or bottlerocket@latest"),
        ("amiSelector: [{alias: bottlerocket@v20250101}]", "provisioner.nodeClasses.gpu.amiSelector[0].alias: \"bottlerocket@v20250101\" is not al2023@latest, al2023@vYYYYMMDD or bottlerocket@latest"),
        ("amiSelector: [{alias: al2023@latest}, {id: ami-1}]", "provisioner.nodeClasses.gpu.amiSelector[0]: an alias must be the only term"),
        ("amiSelector: [{id: ami-1, tags: {a: b}}]", "provisioner.nodeClasses.gpu.amiSelector[0]: needs exactly one of alias, id, tags"),
        ("amiSelector: [{id: img-1}]", "provisioner.nodeClasses.gpu.amiSelector[0].id: \"img-1\" is not an AMI id (ami-...)"),
        ("amiSelector: [{alias: al2023@latest}]\namiFamily: bottlerocket", "provisioner.nodeClasses.gpu.amiFamily: bottlerocket contradicts the alias (al2023)"),
        ("amiSelector: [{id: ami-1}]\nsubnetSelector: [{id: sg-1}]", "provisioner.nodeClasses.gpu.subnetSelector[0]: needs exactly one of id (subnet-...), tags"),
        ("amiSelector: [{id: ami-1}]\nblockDevices: {rootVolumeGiB: 4}", "provisioner.nodeClasses.gpu.blockDevices.rootVolumeGiB: must be a whole number from 8 to 16384"),
        ("amiSelector: [{id: ami-1}]\nblockDevices: {volumeType: gp2, throughput: 200}", "provisioner.nodeClasses.gpu.blockDevices.throughput: applies to gp3 volumes only"),
        ("amiSelector: [{id: ami-1}]\nmetadataOptions: {httpTokens: maybe}", "provisioner.nodeClasses.gpu.metadataOptions.httpTokens: \"maybe\" is not one of required, optional"),
        ("amiSelector: [{id: ami-1}]\ntags: {berth.dev/pool: x}", "provisioner.nodeClasses.gpu.tags.berth.dev/pool: berth.dev/ tags are Berth's own"),
        ("amiSelector: [{id: ami-1}]\nrole: nodes\ninstanceProfile: nodes", "provisioner.nodeClasses.gpu.role: give either role or instanceProfile, not both"),
        ("amiSelector: [{id: ami-1}]\nkubelet: {maxPod: 3}", "provisioner.nodeClasses.gpu.kubelet.maxPod: unknown field \"maxPod\"; allowed fields: maxPods, systemReserved, kubeReserved, evictionHard"),
    ])
    func mistakesAreNamedWithTheirPath(yaml: String, message: String) {
        #expect { try parse(yaml) } throws: { error in (error as? ConfigError)?.description == message }
    }

    /// A profile Berth just made for a role may not be visible to EC2 for seconds: EC2 calling it
    /// invalid then is retried (other), not a refusal that pauses the pool.
    @Test func aNewManagedProfileCalledInvalidIsRetried() {
        var plan = EC2Cloud.LaunchPlan(attempts: [], configs: { _ in [] }, tags: [:], subnets: [:])
        let invalid = CloudError.refused(action: "CreateFleet", code: "InvalidParameterValue",
                                         message: "Value (berth-ml-0a1b2c3d4e5f) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")
        #expect(plan.settle(invalid) == invalid, "a profile you manage: a refusal")
        plan.managedProfile = true
        guard case .other(let text) = plan.settle(invalid) else { Issue.record("not retried"); return }
        #expect(text.contains("may not be visible to EC2 yet"))
        let other = CloudError.refused(action: "CreateFleet", code: "InvalidAMIID.NotFound", message: "The image id '[ami-1]' does not exist")
        #expect(plan.settle(other) == other)
        #expect(NodeClassResolver.instanceProfileName(cluster: "ml", role: "arn:aws:iam::1:role/nodes").hasPrefix("berth-ml-"))
    }

    /// Drift: the AMI first, then a subnet no longer selected, then security groups that are not
    /// the selected ones; an instance in a selected subnet other than the roomiest has not drifted.
    @Test func driftNamesWhatChanged() throws {
        let nodeClass = NodeClass(name: "gpu", amiSelector: [.alias(family: .al2023, version: "latest")])
        let cluster = EKSClusterFacts(name: "ml", endpoint: "https://x", certificateAuthority: "Q0E=", serviceCIDR: "10.100.0.0/16", version: "1.31")
        let resolved = ResolvedNodeClass(
            nodeClass: nodeClass, cluster: cluster, images: [.init(arch: "amd64", accelerated: true): "ami-new"],
            subnets: ["us-east-1a": "subnet-big"], securityGroups: ["sg-1", "sg-2"], instanceProfile: nil, selectedSubnets: ["subnet-big", "subnet-small"])
        let type = try #require(InstanceCatalog.builtIn()["g4dn.xlarge"])
        func instance(image: String = "ami-new", subnet: String = "subnet-small", groups: [String] = ["sg-2", "sg-1"]) -> EC2API.Instance {
            EC2API.Instance(id: "i-1", instanceType: "g4dn.xlarge", zone: "us-east-1a", state: "running", launchTime: Date(timeIntervalSince1970: 0),
                            tags: [CloudTag.image: image], lifecycle: nil, subnetID: subnet, securityGroupIDs: groups)
        }
        #expect(EC2Cloud.drift(instance(), nodeClass: resolved, name: "gpu", type: type) == nil)
        #expect(EC2Cloud.drift(instance(image: "ami-old"), nodeClass: resolved, name: "gpu", type: type)
                == "AMI ami-old is no longer the one node class gpu selects (ami-new)")
        #expect(EC2Cloud.drift(instance(subnet: "subnet-gone"), nodeClass: resolved, name: "gpu", type: type)
                == "subnet subnet-gone is no longer selected by node class gpu")
        #expect(EC2Cloud.drift(instance(groups: ["sg-1"]), nodeClass: resolved, name: "gpu", type: type)
                == "security groups sg-1 are not node class gpu's (sg-1, sg-2)")
    }

    @Test func aliasesNameTheSSMPublicParameters() {
        #expect(NodeClassResolver.parameter(family: .al2023, version: "latest", kubernetes: "1.32", arch: "x86_64", accelerated: true)
                == "/aws/service/eks/optimized-ami/1.32/amazon-linux-2023/x86_64/nvidia/recommended/image_id")
        #expect(NodeClassResolver.parameter(family: .al2023, version: "v20251120", kubernetes: "1.32", arch: "arm64", accelerated: false)
                == "/aws/service/eks/optimized-ami/1.32/amazon-linux-2023/arm64/standard/amazon-eks-node-al2023-arm64-standard-1.32-v20251120/image_id")
        #expect(NodeClassResolver.parameter(family: .bottlerocket, version: "latest", kubernetes: "1.32", arch: "x86_64", accelerated: true)
                == "/aws/service/bottlerocket/aws-k8s-1.32-nvidia/x86_64/latest/image_id")
        #expect(NodeClassResolver.parameter(family: .bottlerocket, version: "latest", kubernetes: "1.32", arch: "arm64", accelerated: false)
                == "/aws/service/bottlerocket/aws-k8s-1.32/arm64/latest/image_id")
    }

    @Test(arguments: [("10.100.0.0/16", "10.100.0.10"), ("172.20.0.0/16", "172.20.0.10"), ("10.0.255.250/24", "10.1.0.4")])
    func theClusterDNSIsTheTenthServiceAddress(cidr: String, dns: String) {
        #expect(EKSClusterFacts.dnsIP(serviceCIDR: cidr) == dns)
        #expect(EKSClusterFacts.dnsIP(serviceCIDR: "fd00::/108") == nil)
    }

    static let cluster = EKSCluster(name: "ml", apiServerEndpoint: "https://ABC.gr7.ap-northeast-2.eks.amazonaws.com",
                                    certificateAuthority: "LS0tLS1CRUdJTg==", serviceCIDR: "172.20.0.0/16")

    @Test func bottlerocketSettingsCarryTheClusterDNSLabelsTaintsAndKubelet() {
        var kubelet = NodeClass.Kubelet()
        kubelet.maxPods = 58
        kubelet.kubeReserved = ["cpu": "80m"]
        let text = NodeUserData.render(
            .bottlerocket, cluster: Self.cluster, labels: ["berth.dev/pool": "gpu", "kubernetes.io/bad": "x"],
            taints: [.init(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")], kubelet: kubelet,
            extra: "[settings.host-containers.admin]\nenabled = true\n")
        #expect(text == """
            [settings.kubernetes]
            cluster-name = "ml"
            api-server = "https://ABC.gr7.ap-northeast-2.eks.amazonaws.com"
            cluster-certificate = "LS0tLS1CRUdJTg=="
            cluster-dns-ip = "172.20.0.10"
            max-pods = 58

            [settings.kubernetes.node-labels]
            "berth.dev/pool" = "gpu"

            [settings.kubernetes.node-taints]
            "nvidia.com/gpu" = ["true:NoSchedule"]

            [settings.kubernetes.kube-reserved]
            "cpu" = "80m"

            [settings.host-containers.admin]
            enabled = true

            """)
    }

    @Test func al2023CarriesKubeletConfigAndTheClassesOwnPartFirst() {
        var kubelet = NodeClass.Kubelet()
        kubelet.maxPods = 30
        kubelet.evictionHard = ["memory.available": "5%"]
        let nodeConfig = "---\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  instance:\n    localStorage:\n      strategy: RAID0\n"
        let text = NodeUserData.render(.al2023, cluster: Self.cluster, labels: [:], taints: [], kubelet: kubelet, extra: nodeConfig)
        let parts = text.components(separatedBy: "--BOUNDARY")
        #expect(parts.count == 4, "header, the class's part, Berth's, the end")
        #expect(parts[1].contains("Content-Type: application/node.eks.aws") && parts[1].contains("strategy: RAID0"))
        #expect(parts[2].contains("cidr: \"172.20.0.0/16\"") && parts[2].contains("  kubelet:\n    config:\n      maxPods: 30\n      evictionHard:\n        \"memory.available\": \"5%\""))
        #expect(!parts[2].contains("flags:"), "no labels or taints: no flags")
    }

    /// `berth check`'s node-role line: the profile's role must have an EKS access entry.
    @Test func theNodeRoleNeedsAnAccessEntry() async throws {
        let iamStub = try StubServer { _, _ in
            StubServer.xml(200, """
                <GetInstanceProfileResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetInstanceProfileResult><InstanceProfile>
                  <InstanceProfileName>berth-node</InstanceProfileName><Roles><member><RoleName>berth-node</RoleName>
                  <Arn>arn:aws:iam::123456789012:role/nodes/berth-node</Arn></member></Roles></InstanceProfile></GetInstanceProfileResult>
                </GetInstanceProfileResponse>
                """)
        }
        defer { iamStub.shutdown() }
        let entries = Mutex<[String]?>(["arn:aws:iam::123456789012:role/other"])
        let eksStub = try StubServer { request, _ in
            guard let list = entries.withLock({ $0 }) else {
                return HTTPResponse(status: 400, headers: ["x-amzn-ErrorType": "InvalidRequestException"],
                                    body: Array(#"{"message":"The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP]"}"#.utf8))
            }
            #expect(request.target == "/clusters/ml/access-entries?maxResults=100")
            return HTTPResponse(status: 200, headers: [:], body: Array(JSONWriter.string(["accessEntries": .array(list.map { .string($0) })]).utf8))
        }
        defer { eksStub.shutdown() }
        let iam = IAMAPI(client: try AWSQueryClient(endpoint: try AWSEndpoint(url: iamStub.url, what: "iam"), region: "us-east-1", service: "iam",
                                                    version: IAMAPI.version, credentials: EC2CloudStubTests.credentials, sleep: { _ in }))
        let eks = try EKSAPI(endpoint: try AWSEndpoint(url: eksStub.url, what: "eks"), region: "us-east-1", credentials: EC2CloudStubTests.credentials,
                             retry: AWSRetryPolicy(maxAttempts: 1), sleep: { _ in })
        var nodeClass = NodeClass(name: "gpu", amiSelector: [.alias(family: .al2023, version: "latest")])
        #expect(await Preflight.nodeRole(nodeClass, cluster: "ml", iam: iam, eks: eks, check: "x").verdict == .fail, "no instance profile")
        nodeClass.instanceProfile = "berth-node"
        let missing = await Preflight.nodeRole(nodeClass, cluster: "ml", iam: iam, eks: eks, check: "x")
        #expect(missing.verdict == .fail && missing.detail.contains("aws eks create-access-entry --cluster-name ml --principal-arn arn:aws:iam::123456789012:role/nodes/berth-node --type EC2_LINUX"))
        entries.withLock { $0 = ["arn:aws:iam::123456789012:role/berth-node"] }
        #expect(await Preflight.nodeRole(nodeClass, cluster: "ml", iam: iam, eks: eks, check: "x").verdict == .ok, "matched without the IAM path")
        var byRole = NodeClass(name: "gpu", amiSelector: [.alias(family: .al2023, version: "latest")])
        byRole.role = "berth-node"
        #expect(await Preflight.nodeRole(byRole, cluster: "ml", iam: nil, eks: eks, check: "x").verdict == .ok, "a role by name: no IAM call needed")
        byRole.role = "arn:aws:iam::999999999999:role/berth-node"
        #expect(await Preflight.nodeRole(byRole, cluster: "ml", iam: nil, eks: eks, check: "x").verdict == .fail, "another account's role")
        entries.withLock { $0 = nil }
        let configMap = await Preflight.nodeRole(nodeClass, cluster: "ml", iam: iam, eks: eks, check: "x")
        #expect(configMap.verdict == .warn && configMap.detail.contains("InvalidRequestException") && configMap.detail.contains("aws-auth"))
    }
}

/// `berth check --kubeconfig`: the NVIDIA device plugin DaemonSet, listed from the (fake) API
/// server as the CLI lists it, and judged against the pools' taints.
@Suite struct DevicePluginCheckTests {
    static let gpuTaint = Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")

    static func daemonSet(_ name: String, image: String, tolerations: [JSON]) -> JSON {
        ["apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": ["name": .string(name), "namespace": "kube-system"],
         "spec": ["selector": ["matchLabels": ["app": .string(name)]], "template": ["metadata": ["labels": ["app": .string(name)]],
                  "spec": ["containers": [["name": "plugin", "image": .string(image)]], "tolerations": .array(tolerations)]]]]
    }

    @Test func thePluginMustExistAndTolerateThePoolsTaints() async throws {
        let pki = try TestPKI.make(label: "berth-device-plugin")
        defer { pki.remove() }
        let server = try FakeKubeAPIServer(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        defer { server.stop() }
        var kube = KubeClientConfiguration(
            host: "localhost", port: server.port,
            tls: TLSClientConfiguration(trustedCAPEM: Array(FileManager.default.contents(atPath: pki.caCertificate) ?? Data())),
            credentials: .bearerToken("test-token"))
        kube.qps = 0
        let client = try KubeClient(kube)
        let daemonSets = KubeResource(group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet", namespaced: true)
        func line() throws -> Preflight.Line {
            Preflight.devicePlugin(daemonSets: try client.listAll(daemonSets).items, taints: [Self.gpuTaint])
        }
        _ = server.write(daemonSets, Self.daemonSet("aws-node", image: "amazon-k8s-cni:v1.19", tolerations: [["operator": "Exists"]]))
        #expect(try line().verdict == .fail && line().detail.contains("no DaemonSet runs it"))

        _ = server.write(daemonSets, Self.daemonSet("nvidia-device-plugin", image: "nvcr.io/nvidia/k8s-device-plugin:v0.17.0", tolerations: [
            ["key": "CriticalAddonsOnly", "operator": "Exists"],
        ]))
        let untolerated = try line()
        #expect(untolerated.verdict == .fail && untolerated.detail.contains("kube-system/nvidia-device-plugin does not tolerate nvidia.com/gpu=true:NoSchedule"))

        _ = server.write(daemonSets, Self.daemonSet("nvidia-device-plugin", image: "nvcr.io/nvidia/k8s-device-plugin:v0.17.0", tolerations: [
            ["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"],
        ]))
        #expect(try line() == Preflight.Line(check: "NVIDIA device plugin", verdict: .ok, detail: "kube-system/nvidia-device-plugin"))
    }
}
