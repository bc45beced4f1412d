import BerthModel
import Foundation

/// Warm GPU capacity (`provisioner.warm`): GPU nodes prepared before any notebook asks, so the
/// next notebook gets its GPU in seconds. Two tiers: running (initialised, images pulled,
/// labelled `berth.dev/warm=true`, kube-scheduler places the next notebook there) and stopped
/// (launched, prepared once, then stopped: only the volume is billed; a pending notebook starts
/// one instead of launching cold).
public struct WarmConfig: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// No warm capacity (the default).
        case off
        /// What `schedules` says, when it says it.
        case schedule
        /// Sized by Berth from the arrivals it has seen, to meet `targetTimeToGPU`.
        case auto
    }

    public var mode: Mode = .off
    /// `auto`: the p95 time from a notebook's creation to its GPU that warm capacity aims for.
    public var targetTimeToGPU: Duration = .seconds(30)
    /// `schedule`: what to keep warm, when (every schedule active at an instant adds up).
    public var schedules: [WarmSchedule] = []
    /// A pre-pull DaemonSet runs on Berth's GPU nodes (the chart's `imagePuller`): a warm node
    /// counts as prepared once that DaemonSet's pod (label ``imagePullerLabel``) is Running on
    /// it. Off: prepared as soon as its GPUs are allocatable.
    public var imagePuller = false
    /// A node's root volume, for the price of a stopped node (gp3, ``gp3PricePerGiBMonth``).
    public var volumeSizeGiB = 100

    /// The label of the pre-pull DaemonSet's pods.
    public static let imagePullerLabel = "berth.dev/image-puller"
    /// EBS gp3, us-east-1: dollars per GiB-month (730 hours).
    public static let gp3PricePerGiBMonth = 0.08

    /// What a stopped node costs per hour: its volume.
    public var stoppedPricePerHour: Double { Double(volumeSizeGiB) * Self.gp3PricePerGiBMonth / 730 }

    public init() {}
}

/// One `schedules` entry: from `from` to `to` (local time in `timeZone`) on `days`, keep
/// `running` running and `stopped` stopped warm nodes of `instanceType` (in `pool`, or the first
/// pool that launches that type).
public struct WarmSchedule: Sendable, Equatable {
    /// ISO weekdays the window starts on: 1 = Monday ... 7 = Sunday.
    public var days: Set<Int>
    /// Minutes after local midnight, `from` 0-1439, `to` 1-1440 and never equal to `from`; `to <
    /// from` spans midnight (ends the next day), `to` 1440 is the end of the day.
    public var from: Int
    public var to: Int
    /// An IANA time zone identifier (`Asia/Seoul`), checked when the config is read.
    public let timeZone: String
    /// The Gregorian calendar on that zone's wall clock, made once (nil: an unknown zone).
    private let calendar: Calendar?
    public var running: Int
    public var stopped: Int
    public var instanceType: String
    public var pool: String?

    public init(days: Set<Int>, from: Int, to: Int, timeZone: String, running: Int, stopped: Int, instanceType: String, pool: String? = nil) {
        self.days = days
        self.from = from
        self.to = to
        self.timeZone = timeZone
        self.calendar = TimeZone(identifier: timeZone).map { zone in
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            return calendar
        }
        self.running = running
        self.stopped = stopped
        self.instanceType = instanceType
        self.pool = pool
    }
}

extension WarmSchedule {
    /// Whether the window holds at `date`, read on the wall clock of `timeZone` (a window that
    /// spans midnight belongs to the day it starts on). False for an unknown time zone.
    public func isActive(at date: Date) -> Bool {
        guard let calendar else { return false }
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return false }
        let day = (weekday + 5) % 7 + 1  // Calendar: Sunday = 1; ISO: Monday = 1
        let now = hour * 60 + minute
        if from < to { return days.contains(day) && now >= from && now < to }
        if now >= from { return days.contains(day) }
        return now < to && days.contains(day == 1 ? 7 : day - 1)
    }
}
