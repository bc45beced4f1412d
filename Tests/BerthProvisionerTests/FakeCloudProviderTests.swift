import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

@Suite struct FakeCloudProviderTests {
    @Test func recordsCallsAndLaunchesAtOnceIdempotently() async throws {
        let cloud = FakeCloudProvider()
        let request = launchRequest("launch-1", types: ["g4dn.xlarge"], zones: ["us-east-1b"])
        let instance = try await cloud.create(request)
        #expect(try await cloud.create(request) == instance)
        #expect((instance.state, instance.zone, instance.providerID) == (.running, "us-east-1b", "fake:///us-east-1b/i-1"))
        #expect(try await cloud.get(providerID: instance.providerID) == instance)
        #expect(try await cloud.list(clusterTag: "test") == [instance])
        #expect(await cloud.createCalls == [request, request])
        #expect(await cloud.getCalls == [instance.providerID])
        #expect(await cloud.listCalls == ["test"])
    }

    @Test func theNextErrorIsInjectedOnceThenCallsSucceed() async throws {
        let cloud = FakeCloudProvider()
        await cloud.failNext(.create, with: .throttled(operation: "RunInstances"))
        await cloud.failNext(.create, with: .other("connection reset"))
        let request = launchRequest("launch-1")
        await #expect(throws: CloudError.throttled(operation: "RunInstances")) { try await cloud.create(request) }
        await #expect(throws: CloudError.other("connection reset")) { try await cloud.create(request) }
        let instance = try await cloud.create(request)
        await cloud.failNext(.list, with: .throttled(operation: "DescribeInstances"))
        await #expect(throws: CloudError.self) { try await cloud.list(clusterTag: "test") }
        #expect(try await cloud.list(clusterTag: "test").map(\.providerID) == [instance.providerID])
        #expect(await cloud.createCalls.count == 3)
    }

    @Test func insufficientCapacityNamesTheOfferingsTried() async throws {
        let cloud = FakeCloudProvider()
        let full: Set = [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1a"), OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1b")]
        await cloud.setInsufficientCapacity(full)
        let result = try await launchWithFallback(cloud, "launch-1", candidates: launchRequest("x", types: ["g4dn.xlarge", "g6.xlarge"]).candidates)
        #expect((result.instance.instanceType, result.instance.zone) == ("g4dn.xlarge", "us-east-1c"))
        #expect(result.calls == 1)
        await cloud.setInsufficientCapacity(full.union([OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1c")]))
        let next = try await launchWithFallback(cloud, "launch-2", candidates: launchRequest("x", types: ["g4dn.xlarge", "g6.xlarge"]).candidates)
        #expect((next.instance.instanceType, next.calls, next.unavailable.count) == ("g6.xlarge", 2, 3))
    }

    @Test func deleteTwiceIsNotFoundAndResetForgetsEverything() async throws {
        let cloud = FakeCloudProvider()
        let leaked = CloudInstance(
            providerID: "fake:///us-east-1a/i-leak", instanceType: "g5.xlarge", zone: "us-east-1a", capacityType: "on-demand",
            launchID: "old", tags: [CloudTag.cluster: "test"], state: .running, launchTime: Date(timeIntervalSince1970: 0), pricePerHour: 1.006)
        await cloud.insert(leaked)
        #expect(try await cloud.list(clusterTag: "test") == [leaked])
        try await cloud.delete(providerID: leaked.providerID)
        await #expect(throws: CloudError.notFound(providerID: leaked.providerID)) { try await cloud.delete(providerID: leaked.providerID) }
        #expect(try await cloud.list(clusterTag: "test").isEmpty)
        #expect(await cloud.deleteCalls == [leaked.providerID, leaked.providerID])
        await cloud.failNext(.get, with: .other("x"))
        await cloud.reset()
        #expect(await cloud.deleteCalls.isEmpty)
        #expect(await cloud.instances.isEmpty)
        await #expect(throws: CloudError.notFound(providerID: "p")) { try await cloud.get(providerID: "p") }
    }

    /// Both clouds answer the port's contract the same way.
    @Test(arguments: ["fake", "sim"])
    func thePortsContract(cloudName: String) async throws {
        let cloud: any CloudProvider = cloudName == "fake" ? FakeCloudProvider() : simulatedCloud(clock: ManualClock())
        let request = launchRequest("launch-1")
        let instance = try await cloud.create(request)
        #expect(try await cloud.create(request).providerID == instance.providerID)
        #expect(try await cloud.get(providerID: instance.providerID).launchID == "launch-1")
        #expect(try await cloud.list(clusterTag: "test").map(\.providerID) == [instance.providerID])
        #expect(try await cloud.list(clusterTag: "other").isEmpty)
        try await cloud.delete(providerID: instance.providerID)
        do {
            try await cloud.delete(providerID: instance.providerID)
            Issue.record("a second delete must say notFound")
        } catch {
            #expect(error.isNotFound)
        }
        #expect(try await cloud.list(clusterTag: "test").isEmpty)
    }
}
