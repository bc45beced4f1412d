import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

@Suite struct SimulatedCloudTests {
    @Test func aRetriedCreateReturnsTheSameInstanceNeverTwo() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock)
        let request = launchRequest("launch-1")
        let first = try await cloud.create(request)
        clock.advance(by: .seconds(5))
        let again = try await cloud.create(request)
        #expect(again.providerID == first.providerID)
        #expect(again.launchTime == first.launchTime)
        // Concurrent retries, even with other candidates, still find the one instance.
        let retried = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<8 { group.addTask { try? await cloud.create(launchRequest("launch-1", types: ["g5.xlarge"])).providerID } }
            return await group.reduce(into: Set<String?>()) { $0.insert($1) }
        }
        #expect(retried == [first.providerID])
        // Even when every offering of the retry has since been marked unavailable.
        var marked = request
        marked.candidates[0].offerings = marked.candidates[0].offerings.map { var offering = $0; offering.available = false; return offering }
        #expect(try await cloud.create(marked).providerID == first.providerID)
        #expect(try await cloud.list(clusterTag: "test").count == 1)
    }

    @Test func theInstanceCarriesItsLaunch() async throws {
        let cloud = simulatedCloud(clock: ManualClock())
        let instance = try await cloud.create(launchRequest("launch-1", types: ["g5.xlarge"], zones: ["us-east-1b"], pool: "notebooks"))
        #expect(instance.providerID.hasPrefix("sim:///us-east-1b/i-0"))
        let providerID = try #require(ProviderID(instance.providerID))
        #expect((providerID.scheme, providerID.zone, providerID.instanceID.count) == ("sim", "us-east-1b", 19))
        #expect((instance.instanceType, instance.zone, instance.capacityType) == ("g5.xlarge", "us-east-1b", "on-demand"))
        #expect(instance.launchID == "launch-1")
        #expect(instance.tags == [CloudTag.cluster: "test", CloudTag.pool: "notebooks", CloudTag.launchID: "launch-1"])
        #expect(instance.state == .pending)
        #expect(instance.launchTime == SimulatedCloudConfiguration.defaultEpoch)
        #expect(instance.pricePerHour == 1.006)
    }

    @Test func capacityErrorThenTheCallerFallsBackToTheNextOffering() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock, outages: [CapacityOutage(instanceType: "g4dn.xlarge", zone: "us-east-1a")])
        let only1a = launchRequest("launch-1", types: ["g4dn.xlarge", "g6.xlarge"], zones: ["us-east-1a"])
        // Offerings of one request are tried in order: the cloud moves on to the next by itself.
        #expect(try await cloud.create(only1a).instanceType == "g6.xlarge")

        let cheapest = launchRequest("launch-2", types: ["g4dn.xlarge"], zones: ["us-east-1a"])
        await #expect(throws: CloudError.insufficientCapacity(offerings: [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1a")])) {
            try await cloud.create(cheapest)
        }
        // Nothing was launched, so the same launch id is free for the caller's next try: the next
        // cheapest type in the only zone the pod can use (its volume's, say).
        let pinned = launchRequest("unused", types: ["g4dn.xlarge", "g6.xlarge", "g5.xlarge"], zones: ["us-east-1a"]).candidates
        let first = try await launchWithFallback(cloud, "launch-2", candidates: pinned)
        #expect((first.instance.instanceType, first.instance.zone, first.calls) == ("g6.xlarge", "us-east-1a", 2))
        #expect(first.unavailable == [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1a")])
        // While the offering is marked, the next launch does not even ask for it.
        let second = try await launchWithFallback(cloud, "launch-3", candidates: pinned, unavailable: first.unavailable)
        #expect((second.instance.instanceType, second.calls) == ("g6.xlarge", 1))
    }

    @Test func anOutageWithACountFailsThatManyAttemptsThenRunsOut() async throws {
        let cloud = simulatedCloud(clock: ManualClock(), outages: [CapacityOutage(failures: 3)])
        let request = launchRequest("launch-1", types: ["g4dn.xlarge", "g6.xlarge"], zones: ["us-east-1a"])
        await #expect(throws: CloudError.insufficientCapacity(offerings: [
            OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1a"), OfferingKey(instanceType: "g6.xlarge", zone: "us-east-1a"),
        ])) { try await cloud.create(request) }
        // The third failure goes to g4dn.xlarge; g6.xlarge then launches.
        #expect(try await cloud.create(request).instanceType == "g6.xlarge")
    }

    @Test func countedOutagesRunOut() async throws {
        let cloud = simulatedCloud(clock: ManualClock(), outages: [CapacityOutage(failures: 3)])
        let one = { (id: String) in launchRequest(id, types: ["g4dn.xlarge"], zones: ["us-east-1a"]) }
        for id in ["a", "b", "c"] {
            await #expect(throws: CloudError.self) { try await cloud.create(one(id)) }
        }
        #expect(try await cloud.create(one("d")).instanceType == "g4dn.xlarge")
        await cloud.addOutage(CapacityOutage(zone: "us-east-1a"))
        await #expect(throws: CloudError.self) { try await cloud.create(one("e")) }
        await cloud.clearOutages()
        _ = try await cloud.create(one("e"))
    }

    @Test func requestsThatCanNeverSucceedAreInvalid() async throws {
        let cloud = simulatedCloud(clock: ManualClock())
        let empty = LaunchRequest(launchID: "x", cluster: "test", pool: "gpu", candidates: [])
        await #expect(throws: CloudError.invalidRequest("launch x: no candidate instance types")) { try await cloud.create(empty) }
        await #expect(throws: CloudError.invalidRequest("launch id is empty")) {
            try await cloud.create(launchRequest(""))
        }
        let unknown = LaunchRequest(
            launchID: "y", cluster: "test", pool: "gpu",
            candidates: [InstanceType(name: "z9.huge", vcpu: 1, memoryMiB: 1, offerings: [Offering(zone: "us-east-1a", pricePerHour: 1)])])
        await #expect(throws: CloudError.invalidRequest("launch y: none of the offerings of z9.huge is sold by the simulated cloud")) {
            try await cloud.create(unknown)
        }
        var allUnavailable = launchRequest("z", zones: ["us-east-1a"])
        allUnavailable.candidates[0].offerings[0].available = false
        await #expect(throws: CloudError.self) { try await cloud.create(allUnavailable) }
    }

    @Test func deleteTwiceTheSecondIsNotFound() async throws {
        let cloud = simulatedCloud(clock: ManualClock())
        let instance = try await cloud.create(launchRequest("launch-1"))
        try await cloud.delete(providerID: instance.providerID)
        await #expect(throws: CloudError.notFound(providerID: instance.providerID)) {
            try await cloud.delete(providerID: instance.providerID)
        }
        await #expect(throws: CloudError.notFound(providerID: instance.providerID)) {
            try await cloud.get(providerID: instance.providerID)
        }
        await #expect(throws: CloudError.notFound(providerID: "sim:///us-east-1a/i-0nothing")) {
            try await cloud.delete(providerID: "sim:///us-east-1a/i-0nothing")
        }
        await #expect(throws: CloudError.invalidRequest("aws:///us-east-1a/i-01: not a sim:///<zone>/<id> provider id")) {
            try await cloud.delete(providerID: "aws:///us-east-1a/i-01")
        }
        // A retried create of that launch reports the instance terminated rather than launching another.
        #expect(try await cloud.create(launchRequest("launch-1")).state == .terminated)
        #expect(await cloud.allRecords().count == 1)
    }

    @Test func listReturnsTheClustersLiveInstancesAndSurvivesACrash() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock)
        let a1 = try await cloud.create(launchRequest("a1", cluster: "a"))
        clock.advance(by: .seconds(1))
        let a2 = try await cloud.create(launchRequest("a2", cluster: "a"))
        clock.advance(by: .seconds(1))
        let a3 = try await cloud.create(launchRequest("a3", cluster: "a"))
        _ = try await cloud.create(launchRequest("b1", cluster: "b"))
        try await cloud.delete(providerID: a2.providerID)
        #expect(try await cloud.list(clusterTag: "a").map(\.providerID) == [a1.providerID, a3.providerID])
        #expect(try await cloud.list(clusterTag: "c").isEmpty)

        // The process holding the actor dies; the cloud's state lives on in a new one.
        let snapshot = await cloud.snapshot()
        clock.advance(by: .seconds(100))
        let restarted = SimulatedCloud(configuration: cloud.configuration, clock: clock, restoring: snapshot)
        let listed = try await restarted.list(clusterTag: "a")
        #expect(listed.map(\.launchID) == ["a1", "a3"])
        #expect(listed.allSatisfy { $0.state == .running })
        #expect(listed.first?.launchTime == a1.launchTime)
        // A launch retried after the restart is still the same instance; a new one is dated right.
        #expect(try await restarted.create(launchRequest("a3", cluster: "a")).providerID == a3.providerID)
        let a4 = try await restarted.create(launchRequest("a4", cluster: "a"))
        #expect(a4.launchTime == SimulatedCloudConfiguration.defaultEpoch.addingTimeInterval(102))
        #expect(try await restarted.list(clusterTag: "a").count == 3)
    }

    @Test func bootTimingFollowsTheClock() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock)
        clock.advance(by: .seconds(10))
        let instance = try await cloud.create(launchRequest("launch-1"))
        let boot = try await cloud.boot(of: instance.providerID)
        #expect(boot.readyAt == ManualClock.Instant(offset: .seconds(70)))
        #expect(boot.gpusAt == ManualClock.Instant(offset: .seconds(90)))

        clock.advance(to: boot.readyAt.advanced(by: .milliseconds(-1)))
        #expect(try await cloud.get(providerID: instance.providerID).state == .pending)
        clock.advance(to: boot.readyAt)
        #expect(try await cloud.get(providerID: instance.providerID).state == .running)
        #expect(try await cloud.list(clusterTag: "test").map(\.state) == [.running])
    }

    @Test func delaysAreDrawnFromTheirRanges() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock, bootDelay: .seconds(30) ... .seconds(90), gpuRegistrationDelay: .seconds(5) ... .seconds(60))
        var boots: Set<Duration> = []
        for index in 0..<20 {
            let instance = try await cloud.create(launchRequest("launch-\(index)"))
            let boot = try await cloud.boot(of: instance.providerID)
            let gpusAt = try #require(boot.gpusAt)
            #expect((.seconds(30) ... .seconds(90)).contains(boot.readyAt.offset))
            #expect((.seconds(5) ... .seconds(60)).contains(boot.readyAt.duration(to: gpusAt)))
            boots.insert(boot.readyAt.offset)
        }
        #expect(boots.count > 10)
    }

    @Test func withoutADevicePluginTheGPUsNeverAppear() async throws {
        let cloud = simulatedCloud(clock: ManualClock(), gpuRegistrationDelay: nil)
        let instance = try await cloud.create(launchRequest("launch-1"))
        #expect(try await cloud.boot(of: instance.providerID).gpusAt == nil)
    }

    @Test func sameSeedSameInstancesWhateverTheLaunchOrder() async throws {
        let ids = (0..<6).map { "launch-\($0)" }
        func launch(seed: UInt64, order: [String]) async throws -> [String: (String, Duration, Duration?)] {
            let clock = ManualClock()
            let cloud = simulatedCloud(
                clock: clock, seed: seed, bootDelay: .seconds(30) ... .seconds(90), gpuRegistrationDelay: .seconds(5) ... .seconds(60))
            var result: [String: (String, Duration, Duration?)] = [:]
            for id in order {
                let instance = try await cloud.create(launchRequest(id))
                let boot = try await cloud.boot(of: instance.providerID)
                let launched = clock.now
                result[id] = (instance.providerID, launched.duration(to: boot.readyAt), boot.gpusAt.map { boot.readyAt.duration(to: $0) })
                clock.advance(by: .seconds(7))
            }
            return result
        }
        let first = try await launch(seed: 42, order: ids)
        let second = try await launch(seed: 42, order: ids.reversed())
        let other = try await launch(seed: 43, order: ids)
        for id in ids {
            #expect(first[id]!.0 == second[id]!.0)
            #expect(first[id]!.1 == second[id]!.1)
            #expect(first[id]!.2 == second[id]!.2)
        }
        #expect(ids.contains { first[$0]!.1 != other[$0]!.1 })
        #expect(ids.allSatisfy { first[$0]!.0 != other[$0]!.0 })
    }

    @Test func theNodeRegistersWithTheTypesLabelsAndTheRequestsLabelsAndTaints() async throws {
        let cloud = simulatedCloud(clock: ManualClock())
        let request = launchRequest(
            "launch-1", types: ["g5.12xlarge"], zones: ["us-east-1c"],
            labels: ["berth.dev/pool": "gpu", WellKnownLabel.capacityType: "on-demand"])
        let instance = try await cloud.create(request)
        let boot = try await cloud.boot(of: instance.providerID)
        #expect(boot.instanceType.name == "g5.12xlarge")
        #expect(boot.labels[WellKnownLabel.zone] == "us-east-1c")
        #expect(boot.labels[WellKnownLabel.gpuCount] == "4")
        #expect(boot.labels["berth.dev/pool"] == "gpu")
        #expect(boot.taints == Pool.defaultTaints)
        await #expect(throws: CloudError.notFound(providerID: "sim:///us-east-1c/i-0missing")) {
            try await cloud.boot(of: "sim:///us-east-1c/i-0missing")
        }
    }

    @Test func providerIDsParseOnlyWhenWellFormed() {
        #expect(ProviderID("aws:///us-east-1a/i-0123456789abcdef0") == ProviderID(scheme: "aws", zone: "us-east-1a", instanceID: "i-0123456789abcdef0"))
        #expect(ProviderID("sim:///us-east-1a/i-01")?.description == "sim:///us-east-1a/i-01")
        for bad in ["", "aws://us-east-1a/i-01", "aws:///i-01", "aws:///us-east-1a/", ":///a/b", "aws:///a/b/c"] {
            #expect(ProviderID(bad) == nil, "\(bad)")
        }
    }
}
