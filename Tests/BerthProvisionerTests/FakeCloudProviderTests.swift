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

    @Test func stopAndStartChangeStatesRecordCallsAndTakeInjectedErrors() async throws {
        let cloud = FakeCloudProvider()
        let instance = try await cloud.create(launchRequest("launch-1", types: ["g4dn.xlarge"], zones: ["us-east-1b"]))
        let id = instance.providerID
        await cloud.failNext(.stop, with: .throttled(operation: "StopInstances"))
        await #expect(throws: CloudError.throttled(operation: "StopInstances")) { try await cloud.stop(providerID: id) }
        #expect(try await cloud.get(providerID: id).state == .running)
        try await cloud.stop(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .stopped)
        #expect(try await cloud.list(clusterTag: "test").map(\.state) == [.stopped])
        try await cloud.stop(providerID: id)

        await cloud.setInsufficientCapacity([OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1b")])
        await #expect(throws: CloudError.insufficientCapacity(offerings: [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1b")])) {
            try await cloud.start(providerID: id)
        }
        #expect(try await cloud.get(providerID: id).state == .stopped)
        await cloud.setInsufficientCapacity([])
        await cloud.failNext(.start, with: .other("connection reset"))
        await #expect(throws: CloudError.other("connection reset")) { try await cloud.start(providerID: id) }
        try await cloud.start(providerID: id)
        try await cloud.start(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .running)
        #expect(await cloud.stopCalls == [id, id, id])
        #expect(await cloud.startCalls == [id, id, id, id])
        try await cloud.delete(providerID: id)
        await #expect(throws: CloudError.notFound(providerID: id)) { try await cloud.stop(providerID: id) }
        await #expect(throws: CloudError.notFound(providerID: id)) { try await cloud.start(providerID: id) }
        await cloud.reset()
        #expect(await cloud.stopCalls.isEmpty)
        #expect(await cloud.startCalls.isEmpty)
    }

    @Test func insertedPendingAndStoppingInstancesAreRefused() async throws {
        let cloud = FakeCloudProvider()
        func instance(_ id: String, _ state: CloudInstance.State) -> CloudInstance {
            CloudInstance(providerID: "fake:///us-east-1a/\(id)", instanceType: "g4dn.xlarge", zone: "us-east-1a", capacityType: "on-demand",
                          launchID: id, tags: [CloudTag.cluster: "test"], state: state, launchTime: Date(timeIntervalSince1970: 0), pricePerHour: 0.526)
        }
        await cloud.insert(instance("i-pending", .pending))
        await cloud.insert(instance("i-stopping", .stopping))
        await #expect(throws: CloudError.invalidRequest("fake:///us-east-1a/i-pending is pending: an instance can be stopped once it is running")) {
            try await cloud.stop(providerID: "fake:///us-east-1a/i-pending")
        }
        await #expect(throws: CloudError.invalidRequest("fake:///us-east-1a/i-stopping is still stopping: start it once it is stopped")) {
            try await cloud.start(providerID: "fake:///us-east-1a/i-stopping")
        }
        try await cloud.stop(providerID: "fake:///us-east-1a/i-stopping")
        try await cloud.start(providerID: "fake:///us-east-1a/i-pending")
        #expect(await cloud.instances.mapValues(\.state) == ["fake:///us-east-1a/i-pending": .pending, "fake:///us-east-1a/i-stopping": .stopping])
    }

    /// Both clouds stop and start the same way, as the port says (the simulated cloud with no
    /// boot or stop delay, so that its states change at once like the fake's).
    @Test(arguments: ["fake", "sim"])
    func thePortsStopStartContract(cloudName: String) async throws {
        let cloud: any CloudProvider = cloudName == "fake"
            ? FakeCloudProvider()
            : simulatedCloud(clock: ManualClock(), bootDelay: .zero ... .zero, stopDelay: .zero ... .zero, warmStartDelay: .zero ... .zero)
        let id = try await cloud.create(launchRequest("launch-1")).providerID
        try await cloud.start(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .running)
        try await cloud.stop(providerID: id)
        try await cloud.stop(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .stopped)
        #expect(try await cloud.list(clusterTag: "test").map(\.providerID) == [id])
        try await cloud.start(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .running)
        try await cloud.stop(providerID: id)
        try await cloud.delete(providerID: id)
        for call in [cloud.stop, cloud.start] {
            do {
                try await call(id)
                Issue.record("stop and start of a terminated instance must say notFound")
            } catch {
                #expect(error.isNotFound)
            }
        }
        #expect(try await cloud.list(clusterTag: "test").isEmpty)
    }
}
