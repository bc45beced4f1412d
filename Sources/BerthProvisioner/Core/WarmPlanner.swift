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
/// prepared node (GPUs allocatable, images pulled), how long a stopped node takes to start, and
/// how often notebooks have missed the target lately.
///
/// Arrivals: the rate at an hour of the week is the rate seen at that hour on days of the same
/// type (weekdays or weekend days), split between kinds by their share of all arrivals seen, and
/// never below the rate of the last hour (a Monday morning before any history, a burst).
///
/// Warm nodes: each notebook that takes one starts its refill, which takes `R` (a start from the
/// stopped tier, else a cold launch); refills in progress are Poisson with mean `λR` (M/G/∞), so
/// with `n` warm nodes a notebook finds none with probability `P(Poisson(λR) ≥ n)`. For each
/// kind, every mix is priced — running nodes refilled cold, running nodes refilled by starting
/// stopped ones, stopped nodes only (when a start meets the target) — and the one with the lowest
/// cost per hour plus `missPrice` × expected misses per hour is kept. `missPrice` (dollars a
/// notebook that waits past the target is worth) is learnt from the goal: it rises each time a
/// notebook misses the target and falls each time one meets it, so that about ``missBudget`` of
/// notebooks miss (a p95 goal allows 5%). Stopped nodes, which cost only their volume, are kept
/// for the highest rate in the next ``stoppedLookahead`` when running ones will be wanted then
/// (they wait through the night for the morning, and are gone for the weekend).
public struct WarmPlanner: Sendable {
    public static let slots = 168
    /// The fraction of notebooks that may miss the target (a p95 goal allows 5%).
    public static let missBudget = 0.04
    /// The stopped tier refilling the running tier may miss more often: a miss there only makes
    /// one refill cold.
    public static let stoppedMissBudget = 0.1
    public static let stoppedLookahead: TimeInterval = 12 * 3600
    /// Estimates before anything has been measured (cold: launch to images pulled; start: start to
    /// GPUs allocatable), seconds.
    public static let priorColdSeconds = 300.0
    public static let priorStartSeconds = 60.0
    /// From a notebook's creation to its hand-over and binding, on top of any start: the batch
    /// window and a round or two.
    static let handOverSeconds = 5.0
    /// A stop takes about this long before the node can be started again.
    static let stopSeconds = 60.0
    /// `missPrice` to begin with, its bounds, and how fast it moves.
    public static let initialMissPrice = 2.0
    static let missPriceRange = 0.05...200.0
    static let missPriceStep = 0.1

    /// Arrivals per kind and hour of week.
    public private(set) var counts: [WarmKind: [Int]] = [:]
    /// Arrivals per hour of week, all kinds.
    public private(set) var totals = [Int](repeating: 0, count: slots)
    /// Seconds of each hour of week seen so far.
    public private(set) var exposure = [Double](repeating: 0, count: slots)
    public private(set) var observedUntil: Date?
    /// Arrivals of the last hour, oldest first.
    private var recent: [(kind: WarmKind, at: Date)] = []
    private var coldSamples: [Double] = []
    private var startSamples: [Double] = []
    /// How long notebooks run, hours (a running mean of those seen to end; 2 h before any).
    public private(set) var notebookHours = 2.0
    private var notebooksEnded = 0
    /// Dollars one notebook that misses the target is worth (learnt).
    public private(set) var missPrice = initialMissPrice

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
        recent.removeAll { now.timeIntervalSince($0.at) > 3600 }
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
        let slot = Self.slot(date)
        counts[kind, default: [Int](repeating: 0, count: Self.slots)][slot] += 1
        totals[slot] += 1
        recent.append((kind, date))
    }

    /// A notebook's wait, against the target: the miss price follows (see the type's comment).
    public mutating func outcome(missed: Bool) {
        let factor = missed ? 1 + Self.missPriceStep * (1 - Self.missBudget) : 1 - Self.missPriceStep * Self.missBudget
        missPrice = min(Self.missPriceRange.upperBound, max(Self.missPriceRange.lowerBound, missPrice * factor))
    }

    /// A notebook ran this long (Running to gone).
    public mutating func notebookEnded(seconds: Double) {
        guard seconds.isFinite, seconds > 0 else { return }
        notebooksEnded += 1
        let weight = 1 / Double(min(notebooksEnded, 200))
        notebookHours += (seconds / 3600 - notebookHours) * weight
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

    /// All notebooks per second at hour of week `slot`, as seen at that hour on days of the same
    /// type (weekdays, weekend days); 0 before any of it was seen.
    public func totalRate(slot: Int) -> Double {
        let hour = slot % 24
        let weekend = slot / 24 >= 5
        var n = 0
        var seen = 0.0
        for day in 0..<7 where (day >= 5) == weekend {
            n += totals[day * 24 + hour]
            seen += exposure[day * 24 + hour]
        }
        return seen >= 600 ? Double(n) / seen : 0
    }

    /// Notebooks of `kind` per second at hour of week `slot`: its share of the total rate.
    public func rate(_ kind: WarmKind, slot: Int) -> Double {
        let all = totals.reduce(0, +)
        guard all > 0, let mine = counts[kind] else { return 0 }
        return totalRate(slot: slot) * Double(mine.reduce(0, +)) / Double(all)
    }

    /// Notebooks of `kind` per second over the last hour.
    func recentRate(_ kind: WarmKind) -> Double {
        Double(recent.count { $0.kind == kind }) / 3600
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

    /// A warm node kind as sizing sees it: its price per hour, and the kinds of notebook it can
    /// take (it fits them; Berth hands a notebook the cheapest warm node it fits).
    public struct Candidate: Sendable {
        public var price: Double
        public var serves: Set<WarmKind>

        public init(price: Double, serves: Set<WarmKind>) {
            self.price = price
            self.serves = serves
        }
    }

    /// What to keep warm now to meet `target` (p95 from a notebook's creation to its GPU), per
    /// warm node kind: `candidates` are the kinds seen (each serving at least its own notebooks),
    /// `stoppedPrice` a stopped node's price per hour.
    public func targets(
        at now: Date, target: Duration, candidates: [WarmKind: Candidate], stoppedPrice: Double, previous: [WarmKind: WarmTarget] = [:]
    ) -> [WarmKind: WarmTarget] {
        let cold = coldSeconds, start = startSeconds, goal = target.seconds
        guard cold > goal else { return [:] }
        var rateNow: [WarmKind: Double] = [:], rateAhead: [WarmKind: Double] = [:]
        for kind in kinds {
            // The last hour stands in for history not seen yet (the first week).
            let seen = peakRate(kind, from: now, ahead: cold + 600)
            rateNow[kind] = seen > 0 ? seen : recentRate(kind)
            rateAhead[kind] = max(rateNow[kind] ?? 0, peakRate(kind, from: now, ahead: Self.stoppedLookahead))
        }
        let sizing = Sizing(goal: goal, cold: cold, start: start, stoppedPrice: stoppedPrice, missPrice: missPrice, notebookHours: notebookHours, candidates: candidates)
        var now = sizing.best(rates: rateNow, from: previous)
        // Ahead: stopped nodes (their volume is all that is billed) wait for the hours when running
        // ones will be wanted, where a start is quicker than a cold launch.
        if start < cold {
            let later = sizing.best(rates: rateAhead, from: previous)
            for (kind, plan) in later where plan.running > 0 || plan.stopped > 0 {
                now[kind, default: WarmTarget()].stopped = max(now[kind]?.stopped ?? 0, max(1, plan.stopped))
            }
        }
        return now.filter { $0.value != WarmTarget() }
    }

    /// The search: warm node counts per kind, by coordinate descent on cost per hour plus
    /// `missPrice` × expected misses per hour. A notebook is served by the cheapest warm kind that
    /// serves it and has nodes; the notebooks a kind serves share its nodes (pooled Poisson).
    struct Sizing {
        let goal: Double, cold: Double, start: Double, stoppedPrice: Double, missPrice: Double, notebookHours: Double
        let candidates: [WarmKind: Candidate]

        /// From `start` (the last answer: the search stays near it rather than jumping between
        /// local optima as rates move a little).
        func best(rates: [WarmKind: Double], from start: [WarmKind: WarmTarget]) -> [WarmKind: WarmTarget] {
            let order = candidates.keys.sorted { (candidates[$0]?.price ?? 0, $0) < (candidates[$1]?.price ?? 0, $1) }
            var plan = start.filter { candidates[$0.key] != nil }
            var cost = evaluate(plan, rates: rates, order: order)
            for _ in 0..<64 {
                var improved: (plan: [WarmKind: WarmTarget], cost: Double)?
                for kind in order {
                    let current = plan[kind] ?? WarmTarget()
                    for move in [(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)] {
                        let next = WarmTarget(running: current.running + move.0, stopped: current.stopped + move.1)
                        guard next.running >= 0, next.stopped >= 0, next.running <= 32, next.stopped <= 32 else { continue }
                        var trial = plan
                        trial[kind] = next
                        let c = evaluate(trial, rates: rates, order: order)
                        if c < (improved?.cost ?? cost) - 1e-9 { improved = (trial, c) }
                    }
                }
                guard let improved else { break }
                plan = improved.plan
                cost = improved.cost
            }
            return plan
        }

        /// Cost per hour of `plan` plus the misses it leaves, priced.
        func evaluate(_ plan: [WarmKind: WarmTarget], rates: [WarmKind: Double], order: [WarmKind]) -> Double {
            var cost = 0.0
            var flow: [WarmKind: Double] = [:]  // notebooks per second each warm kind takes
            var unserved = 0.0
            // In a fixed order: sums of doubles must not depend on a dictionary's.
            for kind in rates.keys.sorted() {
                guard let rate = rates[kind], rate > 0 else { continue }
                if let server = order.first(where: { (plan[$0].map { $0.running + $0.stopped > 0 } ?? false) && candidates[$0]?.serves.contains(kind) == true }) {
                    flow[server, default: 0] += rate
                    // A notebook on a pricier node than its own pays the difference while it runs.
                    let own = candidates[kind]?.price ?? candidates[server]?.price ?? 0
                    cost += rate * 3600 * max(0, (candidates[server]?.price ?? 0) - own) * notebookHours
                } else {
                    unserved += rate
                }
            }
            var misses = unserved
            for kind in plan.keys.sorted() {
                guard let target = plan[kind] else { continue }
                cost += Double(target.running) * (candidates[kind]?.price ?? 0) + Double(target.stopped) * stoppedPrice
                let rate = flow[kind] ?? 0
                misses += rate * miss(target, rate: rate)
            }
            return cost + missPrice * misses * 3600
        }

        /// The share of a warm kind's notebooks that wait past the goal.
        func miss(_ target: WarmTarget, rate: Double) -> Double {
            let refill = cold + WarmPlanner.stopSeconds
            // Running nodes are refilled by starting stopped ones when there are any.
            let refillRunning = target.stopped > 0 && start < cold ? start : cold
            let noRunning = WarmPlanner.tail(mean: rate * refillRunning, target.running)
            // A notebook finding no running node starts a stopped one: in time only if a start is,
            // with the batch window and the binding on top.
            guard start + WarmPlanner.handOverSeconds <= goal else { return noRunning }
            return noRunning * WarmPlanner.tail(mean: rate * refill, target.stopped)
        }
    }

    /// `P(Poisson(mean) ≥ n)`.
    public static func tail(mean: Double, _ n: Int) -> Double {
        guard mean > 0 else { return n > 0 ? 0 : 1 }
        var term = exp(-mean)
        var below = 0.0
        for k in 0..<n {
            below += term
            term *= mean / Double(k + 1)
        }
        return max(0, 1 - below)
    }

    /// The fewest warm nodes `n` with `P(Poisson(mean) ≥ n) ≤ budget` (at most 64).
    public static func servers(mean: Double, budget: Double) -> Int {
        guard mean > 0 else { return 0 }
        var n = 0
        while n < 64 && tail(mean: mean, n) > budget { n += 1 }
        return n
    }
}
