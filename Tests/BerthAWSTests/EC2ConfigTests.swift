import BerthAWS
import BerthModel
import Testing

/// The `provisioner.aws` section of a BerthConfig: read strictly, every mistake named by its path.
@Suite struct EC2ConfigTests {
    func parse(_ yaml: String, region: String? = nil) throws -> EC2CloudConfiguration {
        try EC2CloudConfiguration(config: try YAMLReader.document(yaml), path: "provisioner.aws", defaultRegion: region)
    }

    @Test func aManagedTemplateWithSubnetsIsRead() throws {
        let config = try parse("""
            region: eu-west-1
            subnets: {eu-west-1a: subnet-0a, eu-west-1b: subnet-0b}
            allowSpot: true
            launchTemplate:
              managed:
                imageID: ami-0123
                securityGroupIDs: [sg-1]
                instanceProfile: berth-node
                userDataFormat: al2
                rootVolumeGiB: 200
                cluster: {name: ml, apiServerEndpoint: "https://ABC.gr7.eu-west-1.eks.amazonaws.com", certificateAuthority: Q0E=}
            """)
        #expect(config.region == "eu-west-1")
        #expect(config.subnets == ["eu-west-1a": "subnet-0a", "eu-west-1b": "subnet-0b"])
        #expect(config.effectiveZones == ["eu-west-1a", "eu-west-1b"])
        #expect(config.allowSpot)
        guard case let .managed(template)? = config.launchTemplate else {
            Issue.record("expected a managed template, got \(String(describing: config.launchTemplate))")
            return
        }
        #expect(template.imageID == "ami-0123" && template.securityGroupIDs == ["sg-1"] && template.instanceProfile == "berth-node")
        #expect(template.userDataFormat == .al2 && template.rootVolumeGiB == 200)
        #expect(template.cluster == EKSCluster(name: "ml", apiServerEndpoint: "https://ABC.gr7.eu-west-1.eks.amazonaws.com", certificateAuthority: "Q0E="))
    }

    /// `berth serve` takes price overrides (README offers them) and reads the Price List.
    @Test func onDemandPricesAndThePriceListEndpointAreRead() throws {
        let config = try parse("region: ap-northeast-2\nonDemandPrices: {g5.xlarge: 1.1, g6.xlarge: 0}\npricingEndpoint: http://127.0.0.1:9999\nlaunchTemplate: {name: x}")
        #expect(config.onDemandPrices == ["g5.xlarge": 1.1, "g6.xlarge": 0])
        #expect(config.priceSource == .priceList(endpoint: AWSEndpoint(secure: false, host: "127.0.0.1", port: 9999)))
        #expect(try parse("region: us-east-1\nlaunchTemplate: {name: x}").priceSource == .priceList(endpoint: nil))
    }

    @Test func theEKSClusterOfNodeClassesIsRead() throws {
        let config = try parse("region: us-east-1\neksCluster: {name: ml, serviceCIDR: 172.20.0.0/16}")
        #expect(config.eksCluster == EKSClusterSettings(name: "ml", serviceCIDR: "172.20.0.0/16"))
        #expect(try parse("region: us-east-1\ninterruptionQueue: berth-ml").interruptionQueue == "berth-ml")
        #expect { try parse("region: us-east-1\neksCluster: {name: ml, serviceCIDR: lots}") } throws: { error in
            (error as? ConfigError)?.description == "provisioner.aws.eksCluster.serviceCIDR: \"lots\" is not an IPv4 CIDR such as 10.100.0.0/16"
        }
    }

    @Test func theRegionComesFromTheEnvironmentWhenNotWritten() throws {
        #expect(try parse("launchTemplate: {name: gpu-nodes}", region: "us-west-2").region == "us-west-2")
        #expect(try parse("launchTemplate: {id: lt-0abc}", region: "us-west-2").launchTemplate == .id("lt-0abc"))
        #expect(try EC2CloudConfiguration(config: nil, path: "provisioner.aws", defaultRegion: "ap-south-1").launchTemplate == nil)
    }

    @Test(arguments: [
        ("launchTemplate: {name: x}", "provisioner.aws.region: is required (set it here or AWS_REGION)"),
        ("region: us-east-1\nlaunchTemplate: {name: x, id: y}", "provisioner.aws.launchTemplate: needs exactly one of name, id, managed (found name, id)"),
        ("region: us-east-1\nlaunchTemplat: {name: x}", "provisioner.aws.launchTemplat: unknown field \"launchTemplat\"; allowed fields: region, endpoint, subnets, zones, allowSpot, launchTemplate, onDemandPrices, pricingEndpoint, eksCluster, interruptionQueue"),
        ("region: us-east-1\nonDemandPrices: {g5.xlarge: cheap}", "provisioner.aws.onDemandPrices.g5.xlarge: must be a price in $/hour (a number >= 0), found a string"),
        ("region: us-east-1\nonDemandPrices: {g5.xlarge: -1}", "provisioner.aws.onDemandPrices.g5.xlarge: must be a price in $/hour (a number >= 0), found -1"),
        ("region: us-east-1\nonDemandPrices: [1]", "provisioner.aws.onDemandPrices: expected a map of instance type to $/hour, found a list"),
        ("region: us-east-1\nlaunchTemplate: {managed: {securityGroupIDs: []}}", "provisioner.aws.launchTemplate.managed.imageID: is required"),
        ("region: us-east-1\nlaunchTemplate: {managed: {imageID: ami-1, userDataFormat: windows, cluster: {}}}", "provisioner.aws.launchTemplate.managed.userDataFormat: \"windows\" is not one of al2023, al2"),
        ("region: us-east-1\nlaunchTemplate: {managed: {imageID: ami-1, cluster: {name: ml}}}", "provisioner.aws.launchTemplate.managed.cluster.apiServerEndpoint: is required"),
    ])
    func mistakesAreNamedWithTheirPath(yaml: String, message: String) throws {
        #expect {
            try parse(yaml)
        } throws: { error in
            (error as? ConfigError)?.description == message
        }
    }
}
