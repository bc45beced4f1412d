import BerthModel
import BerthScheduling
import Testing

@Suite struct PoolConfigTests {
    func parse(_ yaml: String) throws -> ProvisionerConfig {
        try ProvisionerConfig(config: try YAMLReader.document(yaml), path: "provisioner")
    }

    @Test func fullPoolIsRead() throws {
        let config = try parse(
            """
            pools:
            - name: notebooks
              weight: 10
              capacityTypes: [on-demand, spot]
              requirements:
              - {key: karpenter.k8s.aws/instance-gpu-name, operator: In, values: [t4, a10g]}
              - {key: karpenter.k8s.aws/instance-gpu-memory, operator: Gt, values: ["15000"]}
              taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}, {key: team, effect: NoExecute}]
              labels: {team: research}
              limits: {gpus: 8, cpu: "64", memory: 512Gi, nodes: 4, pricePerHour: 12.5}
            daemonSetOverhead: {cpu: 300m, memory: 256Mi, pods: 4}
            """)
        let pool = try #require(config.pools.first)
        #expect(pool.name == "notebooks")
        #expect(pool.weight == 10)
        #expect(pool.capacityTypes == ["on-demand", "spot"])
        #expect(pool.requirements.map(\.description) == ["karpenter.k8s.aws/instance-gpu-name In [t4,a10g]", "karpenter.k8s.aws/instance-gpu-memory Gt [15000]"])
        #expect(pool.taints.map(\.description) == ["nvidia.com/gpu=true:NoSchedule", "team:NoExecute"])
        #expect(pool.labels == ["team": "research"])
        #expect(pool.limits == PoolLimits(gpus: 8, cpuMilli: 64000, memory: 512 << 30, nodes: 4, pricePerHour: 12.5))
        #expect(config.overhead.daemonSets == Resources(cpuMilli: 300, memory: 256 << 20, pods: 4))
    }

    @Test func defaultsAreOneGPUPoolWithTheGPUTaint() throws {
        let config = try parse("pools: [{name: gpu}]")
        #expect(config.pools.first?.taints == [Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")])
        #expect(config.pools.first?.capacityTypes == ["on-demand"])
        #expect(ProvisionerConfig().pools == [Pool.default])
    }

    @Test func durationsAndDisruptionSettingsAreRead() throws {
        let config = try parse("clusterName: prod-eu\nemptyAfter: 2m30s\nbatchIdleDuration: 500ms\nregistrationTimeout: 1h\ndisruption: {maxDisruptedNodes: 3, consolidation: true}")
        #expect(config.clusterName == "prod-eu")
        #expect(config.emptyAfter == .seconds(150))
        #expect(config.batchIdle == .milliseconds(500))
        #expect(config.batchMax == .seconds(10))
        #expect(config.registrationTimeout == .seconds(3600))
        #expect(config.maxDisruptedNodes == 3 && config.consolidation)
        #expect(GoDuration.format(.seconds(3690)) == "1h1m30s")
        #expect(GoDuration.format(.milliseconds(1500)) == "1s500ms")
        #expect(try GoDuration.parse("1.5h") == .seconds(5400))
    }

    @Test(arguments: [
        ("pools: [{name: gpu, limit: {gpus: 1}}]", "provisioner.pools[0].limit: unknown field \"limit\"; allowed fields: name, requirements, taints, labels, limits, capacityTypes, notebookCapacityTypes, weight, nodeClass"),
        ("pools: [{name: gpu, limits: {gpu: 1}}]", "provisioner.pools[0].limits.gpu: unknown field \"gpu\"; allowed fields: gpus, cpu, memory, nodes, pricePerHour"),
        ("pools: [{name: gpu, limits: {memory: 12 gigs}}]", "provisioner.pools[0].limits.memory: invalid quantity \"12 gigs\": unknown suffix \" gigs\" (expected Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent such as e3)"),
        ("pools: [{name: gpu, capacityTypes: [reserved]}]", "provisioner.pools[0].capacityTypes[0]: \"reserved\" is not one of on-demand, spot"),
        ("pools: [{name: gpu, requirements: [{key: a, operator: Gt, values: [x]}]}]", "provisioner.pools[0].requirements[0]: operator Gt needs exactly one integer value"),
        ("pools: [{name: gpu, requirements: [{key: a, operator: Like}]}]", "provisioner.pools[0].requirements[0].operator: \"Like\" is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt"),
        ("pools: [{name: gpu, taints: [{key: a, effect: NoEntry}]}]", "provisioner.pools[0].taints[0].effect: \"NoEntry\" is not one of NoSchedule, PreferNoSchedule, NoExecute"),
        ("pools: [{name: a}, {name: a}]", "provisioner.pools[1].name: pool \"a\" is defined twice"),
        ("pools: [{weight: 1}]", "provisioner.pools[0].name: is required"),
        ("pools: []", "provisioner.pools: needs at least one pool"),
        ("emptyAfter: 60", "provisioner.emptyAfter: expected a string, found a number"),
        ("emptyAfter: 1 minute", "provisioner.emptyAfter: \"1 minute\" is not a duration such as 500ms, 60s, 5m or 1h30m"),
        ("batchIdleDuration: 5s\nbatchMaxDuration: 2s", "provisioner.batchMaxDuration: must not be shorter than batchIdleDuration"),
        ("launchTimeout: 10ms", "provisioner.launchTimeout: must be at least 1s, found \"10ms\""),
        ("disruption: {maxDisruptedNodes: 0}", "provisioner.disruption.maxDisruptedNodes: must be a whole number from 1 to 1000"),
        ("clusterName: 'my cluster'", "provisioner.clusterName: must be 1-63 letters, digits, '-', '.' or '_', found \"my cluster\""),
        ("pools: [{name: gpu, nodeClass: gpu}]", "provisioner.pools[0].nodeClass: \"gpu\" is not in nodeClasses (none defined)"),
        ("pools: [{name: gpu, nodeClass: big}]\nnodeClasses: {gpu: {}}", "provisioner.pools[0].nodeClass: \"big\" is not in nodeClasses (gpu)"),
        ("nodeClasses: [gpu]", "provisioner.nodeClasses: expected a map of name to node class, found a list"),
        ("pool: []", "provisioner.pool: unknown field \"pool\"; allowed fields: clusterName, pools, daemonSetOverhead, batchIdleDuration, batchMaxDuration, emptyAfter, launchTimeout, registrationTimeout, gpuRegistrationTimeout, unavailableOfferingTTL, disruption, notebookSharing, aws, nodeClasses, warm"),
    ])
    func mistakesAreNamedWithTheirPath(yaml: String, message: String) throws {
        #expect {
            try parse(yaml)
        } throws: { error in
            (error as? ConfigError)?.description == message
        }
    }
}
