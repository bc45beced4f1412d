import BerthTestSupport
import Foundation
import Testing

/// `provisioner.warm` as the commands read it: what needs the catalog is checked where the catalog
/// is known (`berth plan` is covered in PlanCommandTests).
@Suite struct WarmConfigCommandTests {
    @Test func simulateChecksWarmInstanceTypesAgainstItsCatalog() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("berth-warm-config-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: config) }
        try Data(
            """
            apiVersion: berth.dev/v1alpha1
            kind: BerthConfig
            provisioner:
              warm:
                mode: schedule
                schedules:
                - {days: daily, from: "08:00", to: "18:00", running: 1, instanceType: g9.mega}

            """.utf8
        ).write(to: config)
        let trace = "arrival_s,duration_s,namespace,name,kind,gpus,gpu_type,cpu,memory_gib\n0,600,jhub,jupyter-a,notebook,1,,2,8\n"
        let result = try berth(["simulate", "-", "--config", config.path, "--policy", "berth", "--quiet"], input: Data(trace.utf8))
        #expect(result.status == 1)
        #expect(
            result.stderr == "berth: config \(config.path): provisioner.warm.schedules[0].instanceType: \"g9.mega\" is not in the instance catalog (28 types; see berth catalog)\n",
            "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    /// `berth serve` checks them against its catalog (here the simulated cloud's) before the
    /// provisioner starts: one line and exit 1, not a loop that never warms anything.
    @Test func serveChecksWarmInstanceTypesBeforeStarting() throws {
        let pki = try TestPKI.make(label: "berth-warm")
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("berth-warm-serve-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: config) }
        try Data(
            """
            apiVersion: berth.dev/v1alpha1
            kind: BerthConfig
            provisioner:
              pools: [{name: t4, requirements: [{key: karpenter.k8s.aws/instance-gpu-name, operator: In, values: [t4]}]}]
              warm:
                mode: schedule
                schedules: [{days: Mon-Fri, from: "08:30", to: "19:00", timeZone: Asia/Seoul, stopped: 2, instanceType: g5.xlarge}]

            """.utf8
        ).write(to: config)
        let result = try run(Repository.berthBinary, [
            "serve", "--simulated", "--webhook=false", "--metrics-port", "0", "--bind-address", "127.0.0.1",
            "--tls-cert-file", pki.serverCertificate, "--tls-private-key-file", pki.serverKey,
            "--simulated-ca-file", pki.caCertificate, "--simulated-apiserver-port", "0", "--config", config.path,
        ], timeout: .seconds(30))
        #expect(result.status == 1)
        #expect(
            result.stderr == "berth: config \(config.path): provisioner.warm.schedules[0].instanceType: \"g5.xlarge\": no pool (t4) launches it for notebooks (requirements, notebookCapacityTypes, or on-demand for stopped nodes rule it out)\n",
            "\(result.stderr)")
    }
}
