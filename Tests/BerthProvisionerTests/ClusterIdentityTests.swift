import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// The `berth.dev/cluster` tag is the cluster's identity: an instance is adopted (and so may be
/// terminated) only when its tag carries this cluster's name.
@Suite struct ClusterIdentityTests {
    @Test func anotherClustersInstanceIsNeverAdoptedNorTerminated() throws {
        var config = ProvisionerConfig()
        config.clusterName = "prod"
        var world = CoreWorld(config: config)
        let foreign = CloudInstance(
            providerID: "aws:///us-east-1a/i-0other", instanceType: "g4dn.xlarge", zone: "us-east-1a", capacityType: "on-demand",
            launchID: "staging-0001", tags: [CloudTag.cluster: "staging", CloudTag.pool: "gpu", CloudTag.launchID: "staging-0001"],
            state: .running, launchTime: world.now, pricePerHour: 0.526)
        world.instances[foreign.providerID] = foreign
        world.round()
        world.run(for: Int(config.registrationTimeout.seconds) + 60)
        #expect(world.core.claims.isEmpty)
        #expect(world.terminations.isEmpty)
        #expect(world.events("Adopted").isEmpty)
        // Its own instances are adopted as before.
        var own = foreign
        own.providerID = "aws:///us-east-1a/i-0own"
        own.launchID = "prod-0001"
        own.tags = [CloudTag.cluster: "prod", CloudTag.pool: "gpu", CloudTag.launchID: "prod-0001"]
        world.instances[own.providerID] = own
        world.round()
        #expect(world.core.claims.keys.sorted() == ["prod-0001"])
    }

    @Test func theConfigSaysWhetherTheNameWasSet() throws {
        #expect(!ProvisionerConfig().clusterNameIsExplicit)
        let config = try ProvisionerConfig(config: try JSONParser.parse(#"{"clusterName": "prod-eks"}"#), path: "provisioner")
        #expect(config.clusterNameIsExplicit && config.clusterName == "prod-eks")
    }
}
