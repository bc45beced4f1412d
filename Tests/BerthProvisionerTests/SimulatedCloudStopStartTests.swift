import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// Warm capacity's stopped tier in the simulated cloud: stop, start, and what a report prices.
@Suite struct SimulatedCloudStopStartTests {
    func at(_ seconds: Int) -> ManualClock.Instant { ManualClock.Instant(offset: .seconds(seconds)) }

    /// Launched at 0 (Ready at 60, GPUs at 80), stopped at 100 (stopped at 130: the stop delay is
    /// 30 s), started at 200 (Ready at 230, GPUs at 240: ¾ and all of the 40 s warm start),
    /// stopped again at 300 and terminated at 400 while stopped.
    @Test func aStoppedInstanceStartsANewCycleAndItsStoppedTimeIsRecorded() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock)
        let instance = try await cloud.create(launchRequest("warm-1"))
        let id = instance.providerID
        clock.advance(to: at(100))
        #expect(try await cloud.get(providerID: id).state == .running)

        try await cloud.stop(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .stopping)
        #expect(try await cloud.list(clusterTag: "test").map(\.state) == [.stopping])
        var boot = try await cloud.boot(of: id)
        #expect((boot.stoppedAt, boot.cycle) == (at(130), 0))
        clock.advance(to: at(130).advanced(by: .milliseconds(-1)))
        #expect(try await cloud.get(providerID: id).state == .stopping)
        clock.advance(to: at(130))
        #expect(try await cloud.get(providerID: id).state == .stopped)
        #expect(try await cloud.list(clusterTag: "test").map(\.state) == [.stopped])
        clock.advance(to: at(150))
        // Stopping again changes nothing: not a new stop delay.
        try await cloud.stop(providerID: id)
        #expect(try await cloud.boot(of: id).stoppedAt == at(130))

        clock.advance(to: at(200))
        try await cloud.start(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .pending)
        boot = try await cloud.boot(of: id)
        #expect((boot.cycle, boot.readyAt, boot.gpusAt) == (1, at(230), at(240)))
        #expect(boot.stoppedAt == nil)
        // Starting again while pending changes nothing either.
        clock.advance(to: at(210))
        try await cloud.start(providerID: id)
        #expect(try await cloud.boot(of: id).readyAt == at(230))
        clock.advance(to: at(230))
        #expect(try await cloud.get(providerID: id).state == .running)

        clock.advance(to: at(300))
        try await cloud.stop(providerID: id)
        clock.advance(to: at(400))
        try await cloud.delete(providerID: id)
        clock.advance(to: at(500))
        let record = try #require(await cloud.allRecords().first)
        #expect(record.instance.state == .terminated)
        #expect(record.stoppedIntervals == [at(130)..<at(200), at(330)..<at(400)])
        #expect(record.stoppedDuration(until: clock.now) == .seconds(140))
        #expect(record.stoppedDuration(until: at(250)) == .seconds(70))
        #expect(record.stoppedDuration(until: at(150)) == .seconds(20))
        await #expect(throws: CloudError.notFound(providerID: id)) { try await cloud.start(providerID: id) }
        await #expect(throws: CloudError.notFound(providerID: id)) { try await cloud.stop(providerID: id) }
    }

    @Test func stopAndStartRefuseWhatTheContractRefuses() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock)
        let instance = try await cloud.create(launchRequest("warm-1"))
        let id = instance.providerID
        await #expect(throws: CloudError.invalidRequest("\(id) is pending: an instance can be stopped once it is running")) {
            try await cloud.stop(providerID: id)
        }
        #expect(try await cloud.get(providerID: id).state == .pending)
        clock.advance(by: .seconds(90))
        // Starting a running instance is a no-op.
        try await cloud.start(providerID: id)
        #expect(try await cloud.boot(of: id).cycle == 0)
        try await cloud.stop(providerID: id)
        clock.advance(by: .seconds(10))
        await #expect(throws: CloudError.invalidRequest("\(id) is still stopping: start it once it is stopped")) {
            try await cloud.start(providerID: id)
        }
        #expect(try await cloud.get(providerID: id).state == .stopping)

        for missing in ["sim:///us-east-1a/i-0nothing"] {
            await #expect(throws: CloudError.notFound(providerID: missing)) { try await cloud.stop(providerID: missing) }
            await #expect(throws: CloudError.notFound(providerID: missing)) { try await cloud.start(providerID: missing) }
        }
        await #expect(throws: CloudError.invalidRequest("aws:///us-east-1a/i-01: not a sim:///<zone>/<id> provider id")) {
            try await cloud.stop(providerID: "aws:///us-east-1a/i-01")
        }
        await #expect(throws: CloudError.invalidRequest("aws:///us-east-1a/i-01: not a sim:///<zone>/<id> provider id")) {
            try await cloud.start(providerID: "aws:///us-east-1a/i-01")
        }
    }

    @Test func aSpotInstanceCannotBeStopped() async throws {
        let clock = ManualClock()
        var type = catalog["g4dn.xlarge"]!
        type.offerings = [Offering(zone: "us-east-1a", capacityType: "spot", pricePerHour: 0.2)]
        let cloud = SimulatedCloud(
            configuration: SimulatedCloudConfiguration(catalog: InstanceCatalog(types: [type]), bootDelay: .zero ... .zero), clock: clock)
        let spot = try await cloud.create(LaunchRequest(launchID: "spot-1", cluster: "test", pool: "gpu", candidates: [type]))
        #expect(try await cloud.get(providerID: spot.providerID).state == .running)
        await #expect(throws: CloudError.invalidRequest("\(spot.providerID) is a spot instance: it cannot be stopped")) {
            try await cloud.stop(providerID: spot.providerID)
        }
        #expect(try await cloud.get(providerID: spot.providerID).state == .running)
    }

    /// An outage of its offering fails the start as it fails a launch: the instance stays
    /// stopped, nothing is drawn, and the start succeeds once capacity is back.
    @Test func aStartMeetsCapacityOutagesAsALaunchDoes() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock)
        let id = try await cloud.create(launchRequest("warm-1", zones: ["us-east-1b"])).providerID
        clock.advance(to: at(100))
        try await cloud.stop(providerID: id)
        clock.advance(to: at(200))
        await cloud.addOutage(CapacityOutage(instanceType: "g4dn.xlarge", zone: "us-east-1b", failures: 1))
        await cloud.addOutage(CapacityOutage(instanceType: "g4dn.xlarge", zone: "us-east-1a"))
        await #expect(throws: CloudError.insufficientCapacity(offerings: [OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1b")])) {
            try await cloud.start(providerID: id)
        }
        #expect(try await cloud.get(providerID: id).state == .stopped)
        #expect(try await cloud.boot(of: id).cycle == 0)
        // The counted outage is used up; the other zone's does not concern this instance.
        try await cloud.start(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .pending)
        #expect(try await cloud.boot(of: id).readyAt == at(230))
    }

    /// Stop and start delays come from the seed, the launch id and the cycle: reproducible
    /// whatever else happens, different from one cycle to the next, within their ranges.
    @Test func stopAndStartDelaysAreDrawnPerCycleReproducibly() async throws {
        func cycles(seed: UInt64, otherLaunches: Int) async throws -> [Duration] {
            let clock = ManualClock()
            let cloud = simulatedCloud(clock: clock, seed: seed, stopDelay: .seconds(20) ... .seconds(40), warmStartDelay: .seconds(35) ... .seconds(60))
            for index in 0..<otherLaunches { _ = try await cloud.create(launchRequest("other-\(index)")) }
            let id = try await cloud.create(launchRequest("warm-1")).providerID
            var delays: [Duration] = []
            clock.advance(by: .seconds(100))
            for _ in 0..<6 {
                let stoppedAt = clock.now
                try await cloud.stop(providerID: id)
                let boot = try await cloud.boot(of: id)
                delays.append(stoppedAt.duration(to: try #require(boot.stoppedAt)))
                clock.advance(by: .seconds(100))
                let startedAt = clock.now
                try await cloud.start(providerID: id)
                let started = try await cloud.boot(of: id)
                let toGPUs = startedAt.duration(to: try #require(started.gpusAt))
                #expect(startedAt.duration(to: started.readyAt) == toGPUs * 3 / 4)
                delays.append(toGPUs)
                clock.advance(by: .seconds(100))
            }
            return delays
        }
        let first = try await cycles(seed: 7, otherLaunches: 0)
        #expect(try await cycles(seed: 7, otherLaunches: 3) == first)
        #expect(try await cycles(seed: 8, otherLaunches: 0) != first)
        let stops = stride(from: 0, to: first.count, by: 2).map { first[$0] }
        let starts = stride(from: 1, to: first.count, by: 2).map { first[$0] }
        #expect(stops.allSatisfy { (.seconds(20) ... .seconds(40)).contains($0) }, "\(stops)")
        #expect(starts.allSatisfy { (.seconds(35) ... .seconds(60)).contains($0) }, "\(starts)")
        #expect(Set(stops).count > 1 && Set(starts).count > 1, "each cycle draws anew")
    }

    @Test func theDefaultsAreTheIssues() {
        let configuration = SimulatedCloudConfiguration()
        #expect(configuration.stopDelay == .seconds(20) ... .seconds(40))
        #expect(configuration.warmStartDelay == .seconds(35) ... .seconds(60))
    }

    /// A stopped instance outlives the process: the snapshot keeps its stop, its earlier stopped
    /// stretches and its cycle, and the restored cloud starts it.
    @Test func aSnapshotKeepsStopsAndCycles() async throws {
        let clock = ManualClock()
        let cloud = simulatedCloud(clock: clock)
        let id = try await cloud.create(launchRequest("warm-1")).providerID
        clock.advance(to: at(100))
        try await cloud.stop(providerID: id)
        clock.advance(to: at(200))
        try await cloud.start(providerID: id)
        clock.advance(to: at(300))
        try await cloud.stop(providerID: id)
        clock.advance(to: at(310))
        let restored = SimulatedCloud(configuration: cloud.configuration, clock: clock, restoring: await cloud.snapshot())
        #expect(try await restored.get(providerID: id).state == .stopping)
        #expect(try await restored.list(clusterTag: "test").map(\.providerID) == [id])
        clock.advance(to: at(400))
        #expect(try await restored.get(providerID: id).state == .stopped)
        let record = try #require(await restored.allRecords().first)
        #expect((record.cycle, record.stoppedIntervals, record.stoppedAt) == (1, [at(130)..<at(200)], at(330)))
        try await restored.start(providerID: id)
        #expect(try await restored.boot(of: id).cycle == 2)
        try await restored.delete(providerID: id)
        #expect(try await restored.list(clusterTag: "test").isEmpty)
    }
}
