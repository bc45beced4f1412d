import ArgumentParser

@main
struct Berth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "GPU nodes for Jupyter notebooks: a mutating admission webhook and a provisioning loop.",
        discussion: """
            berth serve    the admission webhook (TLS) and its metrics port
            berth mutate   dry-run manifests through the webhook's policy (no cluster needed)
            berth simulate replay a workload trace: Berth vs cluster-autoscaler vs a static pool
            berth check    preflight: can Berth launch GPU nodes that join this cluster (read-only)
            Exit codes: 0 success, 1 bad input or failure (one line on stderr says what and where),
            64 bad command line.
            """,
        version: BerthVersion.current,
        subcommands: [Serve.self, Mutate.self, Catalog.self, Plan.self, Simulate.self, Check.self]
    )
}

enum BerthVersion {
    static let current = "0.1.0"
}
