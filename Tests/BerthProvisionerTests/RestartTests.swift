import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// No double launch across restarts: the launch intent is on the pods before the launch goes
/// out, and a restarted core that cannot see the instance yet reuses its id.
@Suite struct RestartTests {
    @Test func aRestartBeforeTheListingShowsTheLaunchLaunchesNothingTwice() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        let first = try #require(world.launches.first)
        #expect(world.pods["jupyter/alice"]?.launchIntent?.launchID == first.launchID, "written on the pod")
        // Berth restarts; EC2's listing does not show the new instance yet.
        world.listingLags = Set(world.instances.keys)
        world.core = ProvisionerCore(config: world.config, seed: 99)
        world.run(for: 3)
        #expect(world.instances.count == 1, "\(world.launches.map(\.launchID))")
        #expect(world.launches.last?.launchID == first.launchID)
        // The listing catches up: one claim, the pod still waits for it, nothing more launched.
        world.listingLags = []
        world.run(for: 3)
        #expect(world.core.claims.count == 1)
        #expect(world.core.claims[first.launchID]?.nominated.keys.sorted() == ["jupyter/alice"])
        world.registerAll()
        world.run(for: 3)
        #expect(world.instances.count == 1 && world.launches.allSatisfy { $0.launchID == first.launchID })
    }

    /// A restart after the listing shows the instance: adopted, and the pod waits for it.
    @Test func anAdoptedLaunchKeepsItsPods() throws {
        var world = CoreWorld()
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        world.core = ProvisionerCore(config: world.config, seed: 99)
        world.run(for: 5)
        #expect(world.instances.count == 1 && world.launches.count == 1)
        #expect(world.core.claims.values.first?.nominated.keys.sorted() == ["jupyter/alice"])
    }

    /// An intent older than the launch timeout is not reused: that launch was given up.
    @Test func aStaleIntentIsNotReused() throws {
        var world = CoreWorld()
        world.round()
        var alice = notebook("alice")
        alice.launchIntent = LaunchIntent(launchID: "berth-old", at: world.now.addingTimeInterval(-3600))
        world.add(alice)
        world.run(for: 2)
        #expect(world.launches.count == 1 && world.launches.first?.launchID != "berth-old")
    }

    /// A launch that failed for capacity is given up: the pods are planned again under a new id
    /// (their old intent names a launch this process retired), and the new intent replaces it.
    @Test func aRetiredLaunchIDIsNotReused() throws {
        var world = CoreWorld()
        world.round()
        world.outOfCapacity = [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1a")]
        world.add(notebook("alice"))
        world.run(for: 4)
        #expect(world.launches.count == 2)
        #expect(Set(world.launches.map(\.launchID)).count == 2)
        #expect(world.pods["jupyter/alice"]?.launchIntent?.launchID == world.launches.last?.launchID)
    }

    @Test func theIntentRoundTripsThroughAnnotations() throws {
        let intent = LaunchIntent(launchID: "berth-00ff", at: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(LaunchIntent(annotations: intent.annotations) == intent)
        #expect(intent.annotations["berth.dev/launch-id"] == "berth-00ff")
        #expect(LaunchIntent(annotations: ["berth.dev/launch-id": "x", "berth.dev/launch-time": "yesterday"]) == nil)
    }
}
