import BerthProvisioner
import Foundation
import Testing

@Suite struct ManualClockTests {
    @Test func aSleeperWakesExactlyWhenTimeReachesItsDeadline() async throws {
        let clock = ManualClock()
        let sleeper = Task {
            try await clock.sleep(until: clock.now.advanced(by: .seconds(10)), tolerance: nil)
            return clock.now
        }
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(9))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .milliseconds(999))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .milliseconds(1))
        #expect(clock.sleeperCount == 0)
        #expect(try await sleeper.value == ManualClock.Instant(offset: .seconds(10)))
    }

    /// `Task.sleep(for:clock:)` on the manual clock resumes when the clock is advanced, not when
    /// an hour has passed (were it to sleep for real, this test would hang rather than pass).
    /// No wall-clock assertion: tests never fail on timing, and the full suite shares few threads.
    @Test func taskSleepOnTheClockResumesWhenAdvanced() async throws {
        let clock = ManualClock()
        let sleeper = Task {
            try await Task.sleep(for: .seconds(3600), clock: clock)
            return clock.now
        }
        await clock.waitForSleepers(1)
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .seconds(3600))
        #expect(try await sleeper.value == ManualClock.Instant(offset: .seconds(3600)))
        #expect(clock.sleeperCount == 0)
    }

    @Test func aDeadlineAlreadyPassedReturnsAtOnce() async throws {
        let clock = ManualClock()
        clock.advance(by: .seconds(5))
        try await clock.sleep(until: ManualClock.Instant(offset: .seconds(5)), tolerance: nil)
        try await clock.sleep(until: ManualClock.Instant(offset: .seconds(1)), tolerance: nil)
        #expect(clock.sleeperCount == 0)
    }

    @Test func advancingToTheNextDeadlineStepsThroughSleepersInOrder() async throws {
        let clock = ManualClock()
        let sleepers = [30, 10, 20].map { seconds in
            Task { try await clock.sleep(until: ManualClock.Instant(offset: .seconds(seconds)), tolerance: nil) }
        }
        await clock.waitForSleepers(3)
        var seen: [Duration] = []
        while clock.advanceToNextDeadline() {
            seen.append(clock.now.offset)
        }
        #expect(seen == [.seconds(10), .seconds(20), .seconds(30)])
        for sleeper in sleepers { try await sleeper.value }
    }

    @Test func timeNeverGoesBack() {
        let clock = ManualClock()
        clock.advance(by: .seconds(10))
        clock.advance(to: ManualClock.Instant(offset: .seconds(3)))
        #expect(clock.now.offset == .seconds(10))
    }

    @Test func cancellingASleeperThrowsAndForgetsIt() async throws {
        let clock = ManualClock()
        let sleeper = Task { try await clock.sleep(until: clock.now.advanced(by: .seconds(60)), tolerance: nil) }
        await clock.waitForSleepers(1)
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleeperCount == 0)
    }

    @Test func wallTimeMovesWithTheClock() {
        let clock = ManualClock()
        let epoch = Date(timeIntervalSince1970: 1_000_000)
        let wall = WallTime(clock: clock, epoch: epoch)
        clock.advance(by: .milliseconds(1500))
        #expect(wall.now == epoch.addingTimeInterval(1.5))
        #expect(wall.instant(of: epoch.addingTimeInterval(90)) == ManualClock.Instant(offset: .seconds(90)))
    }
}
