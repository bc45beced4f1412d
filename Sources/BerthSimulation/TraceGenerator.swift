import BerthProvisioner
import Foundation

/// A realistic notebook platform's week, drawn from a seed: users open GPU notebooks in office
/// hours (a morning and an afternoon peak, a lunch dip, quiet nights and weekends) for sessions
/// from minutes to a working day (log-normal); a few train 2–4 GPU jobs or run a GPU service; and
/// Airflow task pods (no GPU, some tolerating every taint) run around the clock. Day 0 is a Monday,
/// 00:00. Same options, same trace.
public struct TraceGenerator: Sendable {
    public var days: Int
    public var users: Int
    public var seed: UInt64

    public init(days: Int, users: Int, seed: UInt64) throws(SimulationError) {
        guard days >= 1, days <= 366 else { throw .badOption(name: "--days", message: "must be from 1 to 366, found \(days)") }
        guard users >= 1, users <= 100_000 else { throw .badOption(name: "--users", message: "must be from 1 to 100000, found \(users)") }
        self.days = days
        self.users = users
        self.seed = seed
    }

    /// Relative rate of notebook starts by hour of a working day.
    static let officeHours: [Double] = [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.05, 0.3,  // 00–07
        0.7, 1.0, 1.0, 0.9, 0.35, 0.5, 0.9, 0.9,  // 08–15 (lunch dip at 12)
        0.8, 0.5, 0.3, 0.15, 0.1, 0.08, 0.05, 0.03,  // 16–23
    ]
    /// Airflow's rate by hour: nightly ETL runs heavier.
    static let airflowHours: [Double] = [2, 2, 2, 1.8, 1.5, 1.2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2, 1.5, 1.8]

    public func generate() -> Trace {
        var random = SeededGenerator(seed: seed)
        var pods: [TracePod] = []
        var sequence = 0
        func next() -> Int {
            sequence += 1
            return sequence
        }
        let peak = Self.officeHours.max() ?? 1
        for day in 0..<days {
            let weekend = day % 7 >= 5
            let dayStart = Double(day) * 86_400
            for user in 0..<users {
                guard Double.random(in: 0..<1, using: &random) < (weekend ? 0.06 : 0.8) else { continue }
                // 1 to 4 sessions a working day.
                let sessions = 1 + Int(Self.poisson(mean: 1.0, using: &random))
                for _ in 0..<min(sessions, 4) {
                    let start = dayStart + Self.sampleHour(Self.officeHours, peak: peak, using: &random)
                    let duration = Self.logNormal(median: 3_600, sigma: 0.9, using: &random).clamped(to: 300...36_000)
                    let mix = Double.random(in: 0..<1, using: &random)
                    let gpuType = mix < 0.65 ? "" : (mix < 0.9 ? "a10g" : "l4")
                    let big = Double.random(in: 0..<1, using: &random) < 0.15
                    pods.append(TracePod(
                        arrival: start.rounded(), duration: duration.rounded(), namespace: "jhub", name: "jupyter-user\(user)-\(next())",
                        kind: .notebook, gpus: 1, gpuType: gpuType, cpu: big ? 6 : 2, memoryGiB: big ? 24 : 8))
                }
                // A few training jobs (2–4 GPUs) and GPU services.
                if !weekend && Double.random(in: 0..<1, using: &random) < 0.06 {
                    let start = dayStart + Self.sampleHour(Self.officeHours, peak: peak, using: &random)
                    let gpus = Double.random(in: 0..<1, using: &random) < 0.6 ? 2 : 4
                    pods.append(TracePod(
                        arrival: start.rounded(), duration: Self.logNormal(median: 7_200, sigma: 0.6, using: &random).clamped(to: 900...28_800).rounded(),
                        namespace: "ml", name: "train-\(next())", kind: .job, gpus: gpus,
                        gpuType: Double.random(in: 0..<1, using: &random) < 0.5 ? "a10g" : "", cpu: Double(gpus * 4), memoryGiB: Double(gpus * 16)))
                }
                if !weekend && Double.random(in: 0..<1, using: &random) < 0.01 {
                    let start = dayStart + Self.sampleHour(Self.officeHours, peak: peak, using: &random)
                    pods.append(TracePod(
                        arrival: start.rounded(), duration: Double.random(in: 14_400...172_800, using: &random).rounded(), namespace: "serving",
                        name: "llm-\(next())", kind: .service, gpus: 1, gpuType: "", cpu: 3, memoryGiB: 12))
                }
            }
        }
        // Airflow: a non-homogeneous Poisson process (thinning), 0.2 task pods per user-hour at
        // the base rate.
        let base = 0.2 * Double(users) / 3_600
        let maximum = base * (Self.airflowHours.max() ?? 1)
        var time = 0.0
        let end = Double(days) * 86_400
        while true {
            time += -log(1 - Double.random(in: 0..<1, using: &random)) / maximum
            guard time < end else { break }
            let hour = Int(time.truncatingRemainder(dividingBy: 86_400) / 3_600)
            guard Double.random(in: 0..<1, using: &random) * maximum < base * Self.airflowHours[hour] else { continue }
            let large = Double.random(in: 0..<1, using: &random) < 0.3
            pods.append(TracePod(
                arrival: time.rounded(), duration: Self.logNormal(median: 300, sigma: 1.0, using: &random).clamped(to: 20...7_200).rounded(),
                namespace: "airflow", name: "task-\(next())", kind: .job, cpu: large ? 1 : 0.5, memoryGiB: large ? 2 : 1,
                toleratesAll: Double.random(in: 0..<1, using: &random) < 0.3))
        }
        return Trace(pods: pods)
    }

    /// Seconds into the day, drawn from a 24-bucket hourly rate by rejection.
    static func sampleHour(_ rates: [Double], peak: Double, using random: inout SeededGenerator) -> Double {
        while true {
            let seconds = Double.random(in: 0..<86_400, using: &random)
            if Double.random(in: 0..<peak, using: &random) < rates[Int(seconds / 3_600)] { return seconds }
        }
    }

    static func logNormal(median: Double, sigma: Double, using random: inout SeededGenerator) -> Double {
        // Box–Muller.
        let u1 = 1 - Double.random(in: 0..<1, using: &random), u2 = Double.random(in: 0..<1, using: &random)
        let normal = (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        return median * exp(sigma * normal)
    }

    static func poisson(mean: Double, using random: inout SeededGenerator) -> Int {
        let limit = exp(-mean)
        var product = Double.random(in: 0..<1, using: &random), count = 0
        while product > limit {
            count += 1
            product *= Double.random(in: 0..<1, using: &random)
        }
        return count
    }
}

extension Double {
    func clamped(to range: ClosedRange<Double>) -> Double { Swift.min(Swift.max(self, range.lowerBound), range.upperBound) }
}
