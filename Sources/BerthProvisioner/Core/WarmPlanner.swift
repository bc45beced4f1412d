import BerthScheduling
import Foundation

/// A kind of warm node: the node a notebook of that kind is launched cold (its pool, instance type
/// and role), so a warm node of the kind is one such a notebook lands on.
public struct WarmKind: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var pool: String
    public var instanceType: String
    public var role: NodeRole

    public init(pool: String, instanceType: String, role: NodeRole = .notebook) {
        self.pool = pool
        self.instanceType = instanceType
        self.role = role
    }

    public static func < (a: WarmKind, b: WarmKind) -> Bool {
        (a.pool, a.instanceType, a.role.rawValue) < (b.pool, b.instanceType, b.role.rawValue)
    }

    public var description: String { "\(instanceType) (pool \(pool))" }
}

/// How many warm nodes of one kind are wanted.
public struct WarmTarget: Sendable, Equatable, CustomStringConvertible {
    public var running: Int
    public var stopped: Int

    public init(running: Int = 0, stopped: Int = 0) {
        self.running = running
        self.stopped = stopped
    }

    public var description: String { "\(running) running, \(stopped) stopped" }
}

/// Sizes warm capacity (`warm.mode: auto`) from what Berth has seen, and only from that: GPU
/// notebook arrivals per kind and hour of the week (UTC), how long a cold launch takes to a
/// prepared node (GPUs allocatable, images pulled), and how long a stopped node takes to start.
///
/// The model: each notebook that takes a warm node starts a refill of it, which takes `R` (a start
/// from the stopped tier, else a cold launch); refills in progress are Poisson with mean `λR`
/// (M/G/∞), so with `n` warm nodes a notebook finds none with probability `P(Poisson(λR) ≥ n)`.
/// For each kind, the cheapest of these mixes whose miss rate is at most ``missBudget`` is kept:
/// - nothing, when a cold launch already meets the target;
/// - running nodes only, refilled cold;
/// - stopped nodes only, when a start meets the target (notebooks start one);
/// - running nodes refilled from stopped ones (a start is quicker than a cold launch).
/// Running nodes are sized for the arrival rate now or a cold launch ahead (so they are there when
/// the morning begins); stopped nodes, which cost only their volume, for the highest rate in the
/// next ``stoppedLookahead`` (so they wait through the night and are gone for the weekend).
public struct WarmPlanner: Sendable {
    public static let slots = 168
    /// The fraction of notebooks that may miss the target: a p95 goal allows 5%; the rest is margin
    /// for what the model does not see (bursts, several notebooks in one minute).
    public static let missBudget = 0.03
    /// The stopped tier refilling the running tier may miss more often: a miss there only makes
    /// one refill cold.
    public static let stoppedMissBudget = 0.1
    public static let stoppedLookahead: TimeInterval = 12 * 3600
    /// Until this much of a slot has been seen, its rate is read from the same hour on other days.
    static let minimumExposure: TimeInterval = 1800
    /// Estimates before anything has been measured (cold: launch to images pulled; start: start to
    /// GPUs allocatable), seconds.
    public static let priorColdSeconds = 300.0
    public static let priorStartSeconds = 60.0
    /// A stop takes about this long before the node can be started again.
    static let stopSeconds = 60.0

    /// Arrivals per kind and hour of week.
    public private(set) var counts: [WarmKind: [Int]] = [:]
    /// Seconds of each hour of week seen so far.
    public private(set) var exposure = [Double](repeating: 0, count: slots)
    public private(set) var observedUntil: Date?
    private var coldSamples: [Double] = []
    private var startSamples: [Double] = []

    public init() {}

    /// The hour of week (Monday 00:00 UTC = 0) a date falls in.
    public static func slot(_ date: Date) -> Int {
        // 1970-01-01 was a Thursday: Monday-based days are shifted by 3.
        let hours = Int((date.timeIntervalSince1970 / 3600).rounded(.down))
        let days = hours >= 0 ? hours / 24 : (hours - 23) / 24
        let weekday = ((days + 3) % 7 + 7) % 7
        return weekday * 24 + ((hours % 24) + 24) % 24
    }

    /// Time seen up to `now` (each hour of week is credited with the time that passed in it).
    public mutating func advance(to now: Date) {
        guard let start = observedUntil else {
            observedUntil = now
            return
        }
        guard now > start else { return }
        var t = start.timeIntervalSince1970
        let end = now.timeIntervalSince1970
        while t < end {
            let next = min(end, ((t / 3600).rounded(.down) + 1) * 3600)
            exposure[Self.slot(Date(timeIntervalSince1970: t))] += next - t
            t = next
        }
        observedUntil = now
    }

    public mutating func arrival(_ kind: WarmKind, at date: Date) {
        counts[kind, default: [Int](repeating: 0, count: Self.slots)][Self.slot(date)] += 1
    }

    /// A cold launch measured from the launch to a prepared node.
    public mutating func observeCold(seconds: Double) { Self.keep(&coldSamples, seconds) }
    /// A start measured from the start to GPUs allocatable.
    public mutating func observeStart(seconds: Double) { Self.keep(&startSamples, seconds) }

    private static func keep(_ samples: inout [Double], _ value: Double) {
        guard value.isFinite, value >= 0 else { return }
        samples.append(value)
        if samples.count > 20 { samples.removeFirst(samples.count - 20) }
    }

    /// The p95 of the last 20 measurements (their highest but one from 20 on), the prior until 3.
    static func estimate(_ samples: [Double], prior: Double) -> Double {
        guard samples.count >= 3 else { return prior }
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.down)))]
    }

    public var coldSeconds: Double { Self.estimate(coldSamples, prior: Self.priorColdSeconds) }
    public var startSeconds: Double { Self.estimate(startSamples, prior: Self.priorStartSeconds) }

    /// Notebooks of `kind` per second in hour of week `slot`, as seen: that hour's own history once
    /// half an hour of it was seen, else the same hour of other days of the same type (weekday or
    /// weekend), else of any day; 0 when none of it was seen.
    public func rate(_ kind: WarmKind, slot: Int) -> Double {
        guard let counts = counts[kind] else { return 0 }
        if exposure[slot] >= Self.minimumExposure { return Double(counts[slot]) / exposure[slot] }
        let hour = slot % 24
        let weekend = slot / 24 >= 5
        for sameType in [true, false] {
            var n = 0
            var seen = 0.0
            for day in 0..<7 where !sameType || (day >= 5) == weekend {
                let s = day * 24 + hour
                guard exposure[s] >= Self.minimumExposure else { continue }
                n += counts[s]
                seen += exposure[s]
            }
            if seen > 0 { return Double(n) / seen }
        }
        return 0
    }

    /// The highest rate over `[now, now + ahead]`, hour by hour.
    func peakRate(_ kind: WarmKind, from now: Date, ahead: TimeInterval) -> Double {
        var best = 0.0
        var t = 0.0
        while t <= ahead {
            best = max(best, rate(kind, slot: Self.slot(now.addingTimeInterval(t))))
            t += 3600
        }
        return max(best, rate(kind, slot: Self.slot(now.addingTimeInterval(ahead))))
    }

    /// The kinds seen so far.
    public var kinds: [WarmKind] { counts.keys.sorted() }

    /// What to keep warm now, per kind seen, to meet `target` (p95 from a notebook's creation to
    /// its GPU): `runningPrice` is a node's price per hour, `stoppedPrice` a stopped node's.
    public func targets(at now: Date, target: Duration, runningPrice: (WarmKind) -> Double, stoppedPrice: Double) -> [WarmKind: WarmTarget] {
        var result: [WarmKind: WarmTarget] = [:]
        let goal = target.seconds
        let cold = coldSeconds
        let start = startSeconds
        for kind in kinds {
            let running = peakRate(kind, from: now, ahead: cold + 600)
            let later = max(running, peakRate(kind, from: now, ahead: Self.stoppedLookahead))
            let choice = Self.cheapest(
                goal: goal, cold: cold, start: start, rateNow: running, rateAhead: later,
                runningPrice: runningPrice(kind), stoppedPrice: stoppedPrice)
            if choice != WarmTarget() { result[kind] = choice }
        }
        return result
    }

    /// The cheapest mix for one kind (see the type's comment): what the rate now needs, then
    /// stopped nodes kept for the highest rate ahead when running ones will be wanted then.
    static func cheapest(goal: Double, cold: Double, start: Double, rateNow: Double, rateAhead: Double, runningPrice: Double, stoppedPrice: Double) -> WarmTarget {
        guard cold > goal, rateAhead > 0 else { return WarmTarget() }
        let refill = cold + stopSeconds
        // Running only, refilled cold.
        let runningOnly = servers(mean: rateNow * cold, budget: missBudget)
        var options: [(target: WarmTarget, cost: Double)] = [(WarmTarget(running: runningOnly), Double(runningOnly) * runningPrice)]
        if start <= goal {
            // Stopped only: a notebook starts one.
            let stopped = servers(mean: rateNow * refill, budget: missBudget)
            options.append((WarmTarget(stopped: stopped), Double(stopped) * stoppedPrice))
        }
        if start < cold {
            // Running, refilled by starting stopped ones.
            let running = servers(mean: rateNow * start, budget: missBudget)
            let stopped = running > 0 ? max(1, servers(mean: rateNow * refill, budget: stoppedMissBudget)) : 0
            options.append((WarmTarget(running: running, stopped: stopped), Double(running) * runningPrice + Double(stopped) * stoppedPrice))
        }
        // The cheapest; among equals, fewer running nodes.
        var choice = options.min { a, b in a.cost != b.cost ? a.cost < b.cost : a.target.running < b.target.running }?.target ?? WarmTarget()
        // Ahead: when warm nodes will be wanted and a start is quicker than a cold launch, stopped
        // nodes (their volume is all that is billed) wait for then.
        if start < cold && servers(mean: rateAhead * start, budget: missBudget) > 0 {
            let needed = start <= goal ? missBudget : stoppedMissBudget
            choice.stopped = max(choice.stopped, servers(mean: rateAhead * refill, budget: needed))
        }
        return choice
    }

    /// The fewest warm nodes `n` with `P(Poisson(mean) ≥ n) ≤ budget` (at most 64).
    static func servers(mean: Double, budget: Double) -> Int {
        guard mean > 0 else { return 0 }
        var term = exp(-mean)  // P(X = 0)
        var below = 0.0  // P(X < n)
        var n = 0
        while n < 64 {
            if 1 - below <= budget { return n }
            below += term
            n += 1
            term *= mean / Double(n)
        }
        return n
    }
}
