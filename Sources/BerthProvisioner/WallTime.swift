import BerthModel
import Foundation

/// Reads a `Clock` as wall-clock dates. Clouds and Kubernetes speak in dates (launch times,
/// timestamps); control loops sleep on a `Clock`. This ties one to the other: the clock's
/// instant at creation is `epoch`, and dates move with the clock — so a `ManualClock` gives
/// deterministic dates, and any clock can be used with the simulated cloud.
public struct WallTime<C: Clock<Duration>>: Sendable {
    public let clock: C
    public let origin: C.Instant
    public let epoch: Date

    public init(clock: C, epoch: Date) {
        self.clock = clock
        self.origin = clock.now
        self.epoch = epoch
    }

    /// `origin` of `clock` is `epoch`.
    public init(clock: C, origin: C.Instant, epoch: Date) {
        self.clock = clock
        self.origin = origin
        self.epoch = epoch
    }

    public var now: Date { date(of: clock.now) }

    public func date(of instant: C.Instant) -> Date {
        epoch.addingTimeInterval(origin.duration(to: instant).seconds)
    }

    public func instant(of date: Date) -> C.Instant {
        origin.advanced(by: .seconds(date.timeIntervalSince(epoch)))
    }
}

