import ArgumentParser
import BerthAdmission
import BerthScheduling
import BerthSimulation
import Foundation
import Synchronization

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a workload trace against Berth, cluster-autoscaler and a static pool; compare cost and waiting.",
        discussion: """
            The trace is a CSV with the header arrival_s,duration_s,namespace,name,kind,gpus,gpu_type,cpu,memory_gib \
            (optionally tolerate_all). Each row is a pod created at arrival_s that runs duration_s once Running.

            berth simulate --generate --days 14 --users 40 --seed 1 > trace.csv   writes a realistic trace
            berth simulate trace.csv                                                 compares the policies
            berth simulate trace.csv -o json --plot trace.svg

            Everything runs in virtual time: Berth's real provisioning code drives a simulated cloud whose
            nodes become Ready 45-90 s after launch and show their GPUs 30-60 s later (--boot-delay,
            --gpu-delay); the first GPU pod on a node then waits 60-150 s for the notebook image's pull
            (--image-pull-delay; later pods there, and the static pool's pre-pulled nodes, do not).
            Progress goes to stderr.
            """
    )

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @Argument(help: "The trace CSV ('-' for stdin).")
    var trace: String?

    @Flag(help: "Write a generated trace (CSV) to stdout instead of simulating.")
    var generate = false

    @Option(help: "Generated trace: days (day 0 is a Monday).")
    var days = 14

    @Option(help: "Generated trace: notebook users.")
    var users = 40

    @Option(help: "Seed of the generated trace and of the simulation's randomness.")
    var seed: UInt64 = 1

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp(
        "Policies to run: berth, cluster-autoscaler, static, berth-warm-<target> (default: the first three; with --plot also berth-warm-10s, -30s and -60s).",
        discussion: "berth-warm-30s is Berth with warm capacity sized automatically for a 30 s p95 wait (warm.mode: auto, the image puller on)."))
    var policy: [String] = []

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: Output = .table

    @Option(help: "Also write an SVG plot of GPU nodes and GPU demand over time per policy.")
    var plot: String?

    @Option(help: "Seconds from launch to the node being Ready, as MIN-MAX.")
    var bootDelay = "45-90"

    @Option(help: "Seconds from Ready to the GPUs being allocatable, as MIN-MAX.")
    var gpuDelay = "30-60"

    @Option(help: "Seconds the first GPU pod on a node waits for the notebook image's pull once the GPUs are allocatable, as MIN-MAX.")
    var imagePullDelay = "60-150"

    @Option(help: "Seconds from starting a stopped warm node to its GPUs being allocatable (no pull: its images are on its volume), as MIN-MAX.")
    var warmStartDelay = "35-60"

    @Option(help: "A BerthConfig file: its webhook and provisioner sections drive the berth policy (defaults without one).")
    var config: String?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        if generate && trace != nil { throw ValidationError("--generate writes a trace; it takes no trace file") }
        if !generate && trace == nil { throw ValidationError("give a trace file (or '-'), or --generate") }
        for name in policy where PolicyName(rawValue: name) == nil {
            throw ValidationError("--policy \(name): expected one of \(PolicyName.allCases.map(\.rawValue).joined(separator: ", ")) or berth-warm-<target> (a duration: berth-warm-30s)")
        }
        _ = try Self.range(bootDelay, option: "--boot-delay")
        _ = try Self.range(gpuDelay, option: "--gpu-delay")
        _ = try Self.range(imagePullDelay, option: "--image-pull-delay")
        _ = try Self.range(warmStartDelay, option: "--warm-start-delay")
    }

    static func range(_ text: String, option: String) throws -> ClosedRange<Double> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let low = Double(parts[0]), let high = Double(parts[1]), low >= 0, high >= low, high.isFinite else {
            throw ValidationError("\(option) \(text): expected MIN-MAX seconds, such as 45-90")
        }
        return low...high
    }

    func run() throws {
        try failing {
            if generate {
                let generator: TraceGenerator
                do { generator = try TraceGenerator(days: days, users: users, seed: seed) } catch { throw CLIError(message: "\(error)") }
                Terminal.write(generator.generate().csv())
                return
            }
            var berthConfig: (webhook: WebhookConfig, provisioner: ProvisionerConfig)?
            if let config {
                let (settings, provisioner) = try ConfigFile.load(config)
                berthConfig = (settings.webhook, provisioner)
            }
            let path = trace ?? "-"
            let source = ManifestFile.name(path)
            let text = try ManifestFile.readText(path)
            let parsed: Trace
            do { parsed = try Trace.parse(csv: text, source: source) } catch { throw CLIError(message: "\(error)") }

            var options = SimulationOptions()
            if let berthConfig {
                options.webhook = berthConfig.webhook
                options.provisioner = berthConfig.provisioner
                try ConfigFile.checkWarm(berthConfig.provisioner, catalog: options.catalog, source: config)
            }
            options.seed = seed
            options.bootDelay = try Self.range(bootDelay, option: "--boot-delay")
            options.gpuDelay = try Self.range(gpuDelay, option: "--gpu-delay")
            options.imagePullDelay = try Self.range(imagePullDelay, option: "--image-pull-delay")
            options.warmStartDelay = try Self.range(warmStartDelay, option: "--warm-start-delay")
            // With a plot, its cost-against-wait panel shows the trade-off warm capacity offers.
            let warmPoints = policy.isEmpty && plot != nil ? [10, 30, 60].map { PolicyName(.berth, warmTarget: .seconds($0)) } : []
            let policies = (policy.isEmpty ? PolicyName.allCases : policy.compactMap(PolicyName.init(rawValue:))) + warmPoints
            let quiet = self.quiet
            let started = Date()
            let days = max(1, Int((parsed.horizon / 86_400).rounded(.up)))
            let settings = options
            let progress = Mutex<(policy: PolicyName?, start: Double, printed: Double)>((nil, 0, 0))
            let report = try blockingCLI {
                try await Simulator.run(trace: parsed, policies: policies, options: settings) { policy, time in
                    // At most one line a second: virtual days done and the rate, per policy.
                    guard !quiet else { return }
                    let elapsed = Date().timeIntervalSince(started)
                    let line: String? = progress.withLock { state in
                        // Each policy reports time 0 when it starts.
                        if state.policy != policy { state = (policy, elapsed, elapsed) }
                        guard time > 0, elapsed - state.printed >= 1 else { return nil }
                        state.printed = elapsed
                        let rate = time / 86_400 / max(elapsed - state.start, 0.001)
                        return "berth simulate: \(policy.rawValue): day \(Int(time / 86_400))/\(days), \(String(format: "%.1f", rate)) virtual days/s, "
                            + "\(String(format: "%.1f", elapsed)) s elapsed\n"
                    }
                    if let line { FileHandle.standardError.write(Data(line.utf8)) }
                }
            }
            if !quiet {
                FileHandle.standardError.write(Data("berth simulate: \(parsed.pods.count) pods, \(policies.count) policies in \(String(format: "%.2f", Date().timeIntervalSince(started))) s\n".utf8))
            }
            if let plot {
                do { try Data(report.svg().utf8).write(to: URL(fileURLWithPath: plot)) } catch { throw CLIError(message: "\(plot): cannot write: \(error.localizedDescription)") }
            }
            Terminal.write(output == .json ? report.json() : report.table())
        }
    }
}
