import Foundation

/// An EKS cluster, a VPC with subnets and a security group tagged for discovery, made in moto with
/// boto3 (signed with the suite's key): what a platform team has before installing Berth.
public struct EKSWorld: Sendable {
    public var cluster: String
    /// Zone → the tagged subnet with the most free addresses there.
    public var bestSubnets: [String: String]
    public var otherSubnets: [String]
    public var securityGroup: String
    /// An instance profile `<cluster>-node` with the role `<cluster>-node`.
    public var instanceProfile: String { cluster + "-node" }

    static let script = #"""
        import sys, json, boto3
        endpoint, key, secret, cluster, cidr = sys.argv[1:6]
        session = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
        ec2 = session.client("ec2", endpoint_url=endpoint)
        eks = session.client("eks", endpoint_url=endpoint)
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        tag = [{"Key": "karpenter.sh/discovery", "Value": cluster}]
        def subnet(cidr, zone, tagged):
            spec = [{"ResourceType": "subnet", "Tags": tag}] if tagged else []
            return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=spec)["Subnet"]["SubnetId"]
        big_a = subnet("10.40.0.0/20", "us-east-1a", True)    # 4091 free
        small_a = subnet("10.40.16.0/24", "us-east-1a", True) # 251 free
        big_b = subnet("10.40.32.0/20", "us-east-1b", True)
        untagged_c = subnet("10.40.64.0/20", "us-east-1c", False)
        group = ec2.create_security_group(GroupName=cluster + "-nodes", Description="nodes", VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag}])["GroupId"]
        iam = session.client("iam", endpoint_url=endpoint)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        iam.create_role(RoleName=cluster + "-node", AssumeRolePolicyDocument=trust)
        iam.create_instance_profile(InstanceProfileName=cluster + "-node")
        iam.add_role_to_instance_profile(InstanceProfileName=cluster + "-node", RoleName=cluster + "-node")
        eks.create_cluster(name=cluster, version="1.31", roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": [big_a, big_b]}, kubernetesNetworkConfig={"serviceIpv4Cidr": cidr})
        print(json.dumps({"best": {"us-east-1a": big_a, "us-east-1b": big_b}, "other": [small_a, untagged_c], "group": group}))
        """#

    public static func make(_ moto: MotoServer, cluster: String, serviceCIDR: String) throws -> EKSWorld {
        let result = try run("python3", ["-c", script, moto.endpoint, moto.accessKeyID, moto.secretAccessKey, cluster, serviceCIDR], timeout: .seconds(60))
        guard result.status == 0, let made = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let best = made["best"] as? [String: String], let other = made["other"] as? [String], let group = made["group"] as? String else {
            throw TestFailure("EKS world setup failed: \(result.stdout) \(result.stderr)")
        }
        return EKSWorld(cluster: cluster, bestSubnets: best, otherSubnets: other, securityGroup: group)
    }
}

