import ArgumentParser
import BerthAWS
import BerthKube
import BerthModel
import Foundation

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read-only preflight before installing: can Berth launch GPU nodes that join this cluster?",
        discussion: """
            --cloud aws checks, with the AWS credential chain and the config's provisioner section: credentials and
            region, EC2's GPU types, prices for the region, the EKS cluster, each node class's subnets, security
            groups, node role and AMIs, the launch template, the interruption queue; with --kubeconfig, the NVIDIA
            device plugin DaemonSet. One line per check with OK, WARN or FAIL; exit 1 when any check fails.
            """
    )

    enum Cloud: String, ExpressibleByArgument, CaseIterable {
        case aws
    }

    @Option(help: "The cloud to check: aws.")
    var cloud: Cloud = .aws

    @Option(help: ArgumentHelp("BerthConfig file whose provisioner section is checked.", valueName: "file"))
    var config: String?

    @Option(help: "AWS region (default: provisioner.aws.region, AWS_REGION, AWS_DEFAULT_REGION, the profile's region).")
    var region: String?

    @Option(help: ArgumentHelp("Also check the cluster (the NVIDIA device plugin DaemonSet) through this kubeconfig.", valueName: "file"))
    var kubeconfig: String?

    @Option(help: "The kubeconfig context (default: its current one).")
    var context: String?

    func run() throws {
        var failed = false
        try failing {
            let (_, provisioner) = try ConfigFile.load(config)
            let (configuration, chain) = try EC2Setup.configuration(provisioner, command: "check --cloud aws", region: region)
            let lines: [Preflight.Line]
            do {
                let credentials = try chain.resolve()
                let cloud = try EC2Cloud(configuration: configuration, credentials: credentials, retry: AWSRetryPolicy(maxAttempts: 3))
                let iam = IAMAPI(client: try AWSQueryClient(
                    endpoint: try chain.endpointOverride(service: "IAM") ?? IAMAPI.endpoint, region: "us-east-1", service: "iam",
                    version: IAMAPI.version, credentials: credentials, retry: AWSRetryPolicy(maxAttempts: 3)))
                let name = credentials.name
                lines = blockingLines { await Preflight.run(cloud: cloud, credentials: name, iam: iam) }
            } catch {
                lines = [Preflight.Line(check: "credentials", verdict: .fail, detail: "\(error)")]
            }
            var all = lines
            if kubeconfig != nil || context != nil {
                let taints = provisioner.pools.flatMap(\.taints).reduce(into: [Taint]()) { list, taint in if !list.contains(taint) { list.append(taint) } }
                do {
                    let client = try KubeClient(try Serve.clusterConfiguration(kubeconfig: kubeconfig, context: context))
                    let daemonSets = try client.listAll(KubeResource(group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet", namespaced: true))
                    all.append(Preflight.devicePlugin(daemonSets: daemonSets.items, taints: taints))
                } catch {
                    all.append(Preflight.Line(check: "NVIDIA device plugin", verdict: .fail, detail: "cannot list DaemonSets: \(error)"))
                }
            }
            var table = [["CHECK", "VERDICT", "DETAIL"]]
            for line in all { table.append([line.check, line.verdict.rawValue, line.detail.replacingOccurrences(of: "\n", with: " ")]) }
            Terminal.write(TextTable.render(table))
            failed = all.contains { $0.verdict == .fail }
        }
        if failed { throw ExitCode(1) }
    }

    private func blockingLines(_ body: @escaping @Sendable () async -> [Preflight.Line]) -> [Preflight.Line] {
        blocking { () async throws(Never) -> [Preflight.Line] in await body() }
    }
}
