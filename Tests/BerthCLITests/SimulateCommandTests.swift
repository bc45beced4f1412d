import BerthTestSupport
import Foundation
import Testing

/// `berth simulate` as a user runs it: the built binary, a generated trace, real files.
@Suite struct SimulateCommandTests {
    static let oneNotebook = """
        arrival_s,duration_s,namespace,name,kind,gpus,gpu_type,cpu,memory_gib
        0,3600,jhub,jupyter-a,notebook,1,,2,8
        120,600,airflow,task-1,job,0,,0.5,1
        """

    @Test func generateWritesADeterministicTrace() throws {
        let first = try berth(["simulate", "--generate", "--days", "2", "--users", "3", "--seed", "7"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("arrival_s,duration_s,namespace,name,kind,gpus,gpu_type,cpu,memory_gib,tolerate_all\n"))
        #expect(first.stdout.split(separator: "\n").count > 10)
        let second = try berth(["simulate", "--generate", "--days", "2", "--users", "3", "--seed", "7"])
        #expect(second.stdout == first.stdout)
    }

    @Test func jsonHasTheIssuesKeysAndThePlotIsWritten() throws {
        let plot = FileManager.default.temporaryDirectory.appendingPathComponent("berth-sim-\(UUID().uuidString).svg")
        defer { try? FileManager.default.removeItem(at: plot) }
        let result = try berth(["simulate", "-", "-o", "json", "--plot", plot.path], input: Data(Self.oneNotebook.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let trace = try #require(json["trace"] as? [String: Any])
        #expect((trace["pods"] as? NSNumber)?.intValue == 2)
        #expect((trace["gpuPods"] as? NSNumber)?.intValue == 1)
        #expect((trace["gpuHours"] as? NSNumber)?.doubleValue == 1)
        let policies = try #require(json["policies"] as? [[String: Any]])
        // With a plot, Berth with warm capacity at three targets joins the three policies.
        #expect(policies.map { $0["policy"] as? String } == ["berth", "cluster-autoscaler", "static", "berth-warm-10s", "berth-warm-30s", "berth-warm-1m"])
        let keys: Set<String> = [
            "policy", "costUSD", "lowerBoundUSD", "costRatio", "gpuNodeHours", "idleGpuNodeHours", "squattedGpuNodeHours",
            "timeToRunningSeconds", "unscheduledPods", "nodesLaunched", "notebookTimeToRunningSeconds", "warmCostUSD", "warmNodeHours",
        ]
        for policy in policies {
            #expect(keys.isSubset(of: Set(policy.keys)), "\(policy.keys)")
            let wait = try #require(policy["timeToRunningSeconds"] as? [String: Any])
            #expect(Set(wait.keys) == ["p50", "p95", "max"])
            let notebooks = try #require(policy["notebookTimeToRunningSeconds"] as? [String: Any])
            #expect(Set(notebooks.keys) == ["p50", "p95", "max"])
            let warm = try #require(policy["warmNodeHours"] as? [String: Any])
            #expect(warm.keys.sorted() == ["running", "stopped"])
            // Warm capacity only where it is on (it costs something there: the first notebook is
            // seen, so its kind is kept warm for a while).
            let isWarm = (policy["policy"] as? String)?.hasPrefix("berth-warm-") ?? false
            #expect(((policy["warmCostUSD"] as? NSNumber)?.doubleValue ?? -1 > 0) == isWarm, "\(policy)")
            #expect(warm.values.allSatisfy { ($0 as? NSNumber)?.doubleValue == 0 } != isWarm)
        }
        #expect((policies[0]["lowerBoundUSD"] as? NSNumber)?.doubleValue == 0.526)
        #expect((policies[2]["costUSD"] as? NSNumber)?.doubleValue == 0.526)
        #expect((policies[0]["nodesLaunched"] as? NSNumber)?.intValue == 1)
        let svg = try String(contentsOf: plot, encoding: .utf8)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.contains("cluster-autoscaler: $"))
        // The cost-against-wait panel: the three policies and Berth's warm capacity at three targets.
        #expect(svg.components(separatedBy: "class=\"tradeoff-point").count - 1 == 6)
        for policy in ["berth", "cluster-autoscaler", "static", "berth-warm-10s", "berth-warm-30s", "berth-warm-1m"] {
            #expect(svg.contains("data-policy=\"\(policy)\""), "\(policy)")
        }
        #expect(svg.hasSuffix("</svg>\n"))
    }

    @Test func theImagePullDelayIsInTheNotebooksWait() throws {
        let fixed = ["--boot-delay", "65-65", "--gpu-delay", "30-30", "-o", "json", "--quiet"]
        func notebookWaits(_ pull: String) throws -> [Double] {
            let result = try berth(["simulate", "-", "--image-pull-delay", pull] + fixed, input: Data(Self.oneNotebook.utf8))
            #expect(result.status == 0, "\(result.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let policies = try #require(json["policies"] as? [[String: Any]])
            return try policies.map { policy in
                let wait = try #require(policy["notebookTimeToRunningSeconds"] as? [String: Any])
                return try #require((wait["max"] as? NSNumber)?.doubleValue)
            }
        }
        // berth: launched at 1 s, GPUs at 96; cluster-autoscaler: at 10 s, GPUs at 105; static: pre-pulled.
        #expect(try notebookWaits("100-100") == [196, 205, 0])
        #expect(try notebookWaits("0-0") == [96, 105, 0])
        let bad = try berth(["simulate", "-", "--image-pull-delay", "150-60"], input: Data(Self.oneNotebook.utf8))
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--image-pull-delay 150-60: expected MIN-MAX seconds"), "\(bad.stderr)")
    }

    @Test func tableHasARowAndAVerdictPerPolicy() throws {
        let result = try berth(["simulate", "-", "--policy", "berth", "static", "--quiet"], input: Data(Self.oneNotebook.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("POLICY ") })
        #expect(lines.contains { $0.hasPrefix("berth ") })
        #expect(lines.contains { $0.hasPrefix("berth: ") && $0.contains("nothing unscheduled") })
        #expect(lines.contains { $0.hasPrefix("static: 1.00x the lower bound") })
        #expect(!lines.contains { $0.hasPrefix("cluster-autoscaler") })
        #expect(result.stderr.isEmpty)
    }

    @Test func aBadRowIsReportedWithItsLineAndField() throws {
        let bad = Self.oneNotebook + "\n60,ten,jhub,jupyter-b,notebook,1,,2,8\n"
        let result = try berth(["simulate", "-"], input: Data(bad.utf8))
        #expect(result.status == 1)
        #expect(result.stderr == "berth: <stdin>:4: duration_s: \"ten\" is not a number\n")
        #expect(result.stdout.isEmpty)
    }

    @Test func aConfigFileDrivesTheBerthPolicy() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("berth-sim-config-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: config) }
        try Data("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  emptyAfter: 5m\n".utf8).write(to: config)
        let result = try berth(["simulate", "-", "--config", config.path, "--policy", "berth", "-o", "json", "--quiet"], input: Data(Self.oneNotebook.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let policy = try #require((json["policies"] as? [[String: Any]])?.first)
        let hours = try #require((policy["gpuNodeHours"] as? NSNumber)?.doubleValue)
        let wait = try #require(((policy["timeToRunningSeconds"] as? [String: Any])?["max"] as? NSNumber)?.doubleValue)
        // Launched at 1 s, kept 5 minutes (not the default minute) after the notebook's hour.
        #expect(abs(hours * 3_600 - (wait - 1 + 3_600 + 300)) < 0.5)

        try Data("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  emptyAfter: soon\n".utf8).write(to: config)
        let bad = try berth(["simulate", "-", "--config", config.path], input: Data(Self.oneNotebook.utf8))
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("provisioner.emptyAfter"), "\(bad.stderr)")
    }

    @Test func badCommandLines() throws {
        #expect(try berth(["simulate"]).status == 64)
        #expect(try berth(["simulate", "--generate", "--days", "0"]).status == 1)
        let policy = try berth(["simulate", "-", "--policy", "karpenter"], input: Data(Self.oneNotebook.utf8))
        #expect(policy.status == 64)
        #expect(policy.stderr.contains("--policy karpenter"))
        #expect(try berth(["simulate", "-", "--boot-delay", "90-45"], input: Data()).status == 64)
    }
}
