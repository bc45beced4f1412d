import BerthTestSupport
import Foundation
import Testing

/// `berth catalog` and `berth plan` as a user runs them: the built binary, real files.
@Suite struct PlanCommandTests {
    static let manifests = Repository.fixtures.appendingPathComponent("manifests")

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func catalogJSONListsEveryGPUType() throws {
        let result = try berth(["catalog", "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(list.count == 28)
        let first = try #require(list.first)
        #expect(Set(first.keys) == ["name", "gpus", "gpuName", "gpuMemoryMiB", "vcpu", "memoryMiB", "arch", "pricePerHour"])
        #expect(first["name"] as? String == "g4dn.xlarge")
        #expect((first["pricePerHour"] as? NSNumber)?.doubleValue == 0.526)
        #expect((first["gpuMemoryMiB"] as? NSNumber)?.intValue == 16384)
        let table = try berth(["catalog"])
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("NAME "))
        #expect(table.stdout.contains("p5.48xlarge"))
    }

    @Test func planOfTheZ2JHNotebook() throws {
        let result = try berth(["plan", "-f", Self.manifests.appendingPathComponent("z2jh-gpu-notebook.yaml").path, "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let plan = try json(result.stdout)
        let nodes = try #require(plan["nodes"] as? [[String: Any]])
        #expect(nodes.count == 1)
        #expect(nodes.first?["instanceType"] as? String == "g4dn.xlarge")
        #expect(nodes.first?["pool"] as? String == "gpu")
        #expect(nodes.first?["zone"] as? String == "us-east-1a")
        #expect(nodes.first?["pods"] as? [String] == ["jhub/jupyter-alice"])
        #expect((plan["totalPricePerHour"] as? NSNumber)?.doubleValue == 0.526)
        #expect((plan["unschedulable"] as? [Any])?.isEmpty == true)
    }

    /// "Why is my notebook still pending?", offline: a cluster's nodes and bound pods (as
    /// `kubectl get nodes,pods -A -o yaml` gives them) with the pending pods, planned as the loop
    /// would. The big node's free GPU takes the plain job, not the replica whose anti-affinity
    /// forbids it, nor the notebook (it avoids shared nodes); the cordoned node takes nothing.
    static let clusterState = """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Node
          metadata:
            name: gpu-big
            labels: {berth.dev/pool: gpu, berth.dev/node-role: shared, node.kubernetes.io/instance-type: g4dn.12xlarge,
                     topology.kubernetes.io/zone: us-east-1a, karpenter.sh/capacity-type: on-demand, nvidia.com/gpu.present: "true",
                     kubernetes.io/hostname: gpu-big}
          spec:
            providerID: aws:///us-east-1a/i-0big
            taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}]
          status:
            allocatable: {cpu: 47810m, memory: 178Gi, ephemeral-storage: 17Gi, pods: "231", nvidia.com/gpu: "4"}
            conditions: [{type: Ready, status: "True"}]
        - apiVersion: v1
          kind: Node
          metadata:
            name: gpu-cordoned
            labels: {berth.dev/pool: gpu, berth.dev/node-role: notebook, node.kubernetes.io/instance-type: g4dn.xlarge,
                     topology.kubernetes.io/zone: us-east-1a, karpenter.sh/capacity-type: on-demand, nvidia.com/gpu.present: "true"}
          spec:
            providerID: aws:///us-east-1a/i-0cordoned
            unschedulable: true
            taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}]
          status:
            allocatable: {cpu: 3745m, memory: 14Gi, ephemeral-storage: 17Gi, pods: "26", nvidia.com/gpu: "1"}
            conditions: [{type: Ready, status: "True"}]
        \(["0", "1", "2"].map { index in """
        - apiVersion: v1
          kind: Pod
          metadata: {name: train-\(index), namespace: ml, labels: {app: train}}
          spec:
            nodeName: gpu-big
            affinity:
              podAntiAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                - {labelSelector: {matchLabels: {app: train}}, topologyKey: kubernetes.io/hostname}
            containers: [{name: main, image: trainer, resources: {requests: {cpu: "8", memory: 16Gi}, limits: {nvidia.com/gpu: 1}}}]
          status: {phase: Running}
        """ }.joined(separator: "\n"))
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: train-3, namespace: ml, labels: {app: train}}
        spec:
          affinity:
            podAntiAffinity:
              requiredDuringSchedulingIgnoredDuringExecution:
              - {labelSelector: {matchLabels: {app: train}}, topologyKey: kubernetes.io/hostname}
          containers: [{name: main, image: trainer, resources: {requests: {cpu: "8", memory: 16Gi}, limits: {nvidia.com/gpu: 1}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: etl, namespace: ml}
        spec:
          containers: [{name: main, image: etl, resources: {requests: {cpu: "2", memory: 8Gi}, limits: {nvidia.com/gpu: 1}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: jupyter-alice, namespace: jhub, labels: {component: singleuser-server}}
        spec:
          containers: [{name: notebook, image: jupyter, resources: {requests: {cpu: "2", memory: 8Gi}, limits: {nvidia.com/gpu: 1}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: pinned, namespace: ml}
        spec:
          nodeSelector: {karpenter.k8s.aws/instance-gpu-name: b200}
          containers: [{name: main, image: x, resources: {limits: {nvidia.com/gpu: 1}}}]
        """

    @Test func planAgainstAClustersState() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("berth-cluster-\(getpid()).yaml").path
        try Self.clusterState.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try berth(["plan", "-f", file, "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let plan = try json(result.stdout)
        let existing = try #require(plan["existing"] as? [[String: Any]])
        #expect(existing.count == 1)
        #expect(existing.first?["node"] as? String == "gpu-big")
        #expect(existing.first?["pods"] as? [String] == ["ml/etl"])
        let nodes = try #require(plan["nodes"] as? [[String: Any]])
        let byPod = Dictionary(uniqueKeysWithValues: nodes.flatMap { node in (node["pods"] as? [String] ?? []).map { ($0, node["instanceType"] as? String ?? "") } })
        #expect(byPod == ["ml/train-3": "g4dn.4xlarge", "jhub/jupyter-alice": "g4dn.xlarge"], "\(result.stdout)")
        let unschedulable = try #require(plan["unschedulable"] as? [[String: String]])
        #expect(unschedulable.map { $0["pod"] } == ["ml/pinned"])
        #expect(unschedulable.first?["reason"]?.contains("b200") == true, "\(unschedulable)")
        let table = try berth(["plan", "-f", file])
        #expect(table.status == 0)
        #expect(table.stdout.contains("On nodes that exist (nothing launched; kube-scheduler binds them):\n  gpu-big: ml/etl\n"), "\(table.stdout)")
    }

    @Test func aMalformedNodeIsOneLineNamingIt() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("berth-badnode-\(getpid()).yaml").path
        try "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {taints: oops}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try berth(["plan", "-f", file])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("berth: \(file): document 1 (line 1): "), "\(result.stderr)")
        #expect(result.stderr.contains("spec.taints"), "\(result.stderr)")
    }

    @Test func workloadTemplatesCountAsTheirReplicas() throws {
        let result = try berth(["plan", "-f", Self.manifests.appendingPathComponent("deployment-and-service.yaml").path, "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let nodes = try #require(try json(result.stdout)["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["pods"] as? [String] } == [["serving/llm-server-0"], ["serving/llm-server-1"]])
        #expect(nodes.map { $0["instanceType"] as? String } == ["g4dn.xlarge", "g4dn.xlarge"])
    }

    static let batch = """
        apiVersion: v1
        kind: Pod
        metadata: {name: jupyter-a, namespace: jhub, labels: {component: singleuser-server}}
        spec:
          containers: [{name: nb, image: jupyter, resources: {limits: {nvidia.com/gpu: 1}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: jupyter-b, namespace: jhub, labels: {component: singleuser-server}}
        spec:
          containers: [{name: nb, image: jupyter, resources: {requests: {cpu: "6"}, limits: {nvidia.com/gpu: 1}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: etl, namespace: airflow}
        spec:
          containers: [{name: task, image: python, resources: {requests: {cpu: 500m}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: huge, namespace: ml}
        spec:
          containers: [{name: train, image: pytorch, resources: {limits: {nvidia.com/gpu: 16}}}]
        """

    @Test func planJSONForABatch() throws {
        let result = try berth(["plan", "-f", "-", "-o", "json"], input: Data(Self.batch.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let plan = try json(result.stdout)
        let nodes = try #require(plan["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["instanceType"] as? String } == ["g4dn.2xlarge", "g4dn.xlarge"])
        #expect(nodes.map { $0["pods"] as? [String] } == [["jhub/jupyter-b"], ["jhub/jupyter-a"]])
        #expect((plan["totalPricePerHour"] as? NSNumber)?.doubleValue == 1.278)
        let unschedulable = try #require(plan["unschedulable"] as? [[String: String]])
        #expect(unschedulable.map { $0["pod"] } == ["airflow/etl", "ml/huge"])
        #expect(unschedulable.first?["reason"] == "not a GPU pod: Berth launches GPU nodes only")
        #expect(unschedulable.last?["reason"]?.contains("needs 16 nvidia.com/gpu, has 8") == true)
    }

    @Test func planTableExplainsPassedOverTypes() throws {
        let result = try berth(["plan", "-f", "-"], input: Data(Self.batch.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("g4dn.xlarge: needs 6 vCPU, has 3.745"))
        #expect(result.stdout.contains("Total: 1.278 $/hour for 2 nodes"))
        #expect(result.stdout.contains("ml/huge: no instance type is big enough"))
    }

    @Test func planBadQuantityIsOneLine() throws {
        let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: a, resources: {limits: {nvidia.com/gpu: 1}, requests: {cpu: 2 cores}}}]\n"
        let result = try berth(["plan", "-f", "-"], input: Data(input.utf8))
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(
            result.stderr
                == "berth: <stdin>: document 1 (line 1): pod default/x: spec.containers[0].resources.requests.cpu: invalid quantity \"2 cores\": unknown suffix \" cores\" (expected Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent such as e3)\n"
        )
    }
}

extension PlanCommandTests {
    /// `--catalog FILE` lays other prices over the built-in catalog: make the cheapest fitting T4
    /// type dear and the plan follows; a bad file is one line naming the entry.
    @Test func aCatalogFileChangesWhatIsCheapest() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-plan-catalog-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #"""
            [{"name": "g4dn.xlarge", "gpus": 1, "gpuName": "t4", "gpuMemoryMiB": 16384, "vcpu": 4, "memoryMiB": 16384, "maxPods": 29, "pricePerHour": 0.9},
             {"name": "g4dn.2xlarge", "gpus": 1, "gpuName": "t4", "gpuMemoryMiB": 16384, "vcpu": 8, "memoryMiB": 32768, "maxPods": 29, "pricePerHour": 5.0}]
            """#
            .write(toFile: directory + "/catalog.json", atomically: true, encoding: .utf8)
        let manifest = Repository.root.appendingPathComponent("Tests/Fixtures/manifests/z2jh-gpu-notebook.yaml").path
        let plan = try run(Repository.berthBinary, ["plan", "-f", manifest, "--catalog", directory + "/catalog.json", "-o", "json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        let nodes = json?["nodes"] as? [[String: Any]]
        // Without the file: g4dn.xlarge ($0.526); with it, the cheapest is now g6.xlarge ($0.8048).
        #expect(nodes?.map { $0["instanceType"] as? String } == ["g6.xlarge"], "\(plan.stdout)")

        try #"[{"name": "g4dn.xlarge", "vcpu": 4, "memoryMiB": 16384}]"#.write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
        let bad = try run(Repository.berthBinary, ["plan", "-f", manifest, "--catalog", directory + "/bad.json"])
        #expect(bad.status == 1)
        #expect(bad.stderr == "berth: catalog \(directory)/bad.json: [0].pricePerHour: is required\n", "\(bad.stderr)")
    }
}

extension PlanCommandTests {
    /// A warm schedule's instance type is checked once the catalog is known (here the built-in one,
    /// or `--catalog`): one line naming the schedule; a launchable type plans as before.
    @Test func aWarmScheduleNamesAnInstanceTypeItsPoolCanLaunch() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-plan-warm-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func config(_ type: String) -> String {
            """
            apiVersion: berth.dev/v1alpha1
            kind: BerthConfig
            provisioner:
              pools:
              - name: t4
                requirements: [{key: karpenter.k8s.aws/instance-gpu-name, operator: In, values: [t4]}]
              warm:
                mode: schedule
                schedules:
                - {days: Mon-Fri, from: "08:30", to: "19:00", timeZone: Asia/Seoul, running: 1, stopped: 2, instanceType: \(type), pool: t4}
            """
        }
        let manifest = Repository.root.appendingPathComponent("Tests/Fixtures/manifests/z2jh-gpu-notebook.yaml").path
        try config("g4dn.xlarge").write(toFile: directory + "/good.yaml", atomically: true, encoding: .utf8)
        let good = try run(Repository.berthBinary, ["plan", "-f", manifest, "--config", directory + "/good.yaml", "-o", "json"])
        #expect(good.status == 0, "\(good.stderr)")
        try config("g5.xlarge").write(toFile: directory + "/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try run(Repository.berthBinary, ["plan", "-f", manifest, "--config", directory + "/bad.yaml"])
        #expect(bad.status == 1)
        #expect(
            bad.stderr
                == "berth: config \(directory)/bad.yaml: provisioner.warm.schedules[0].instanceType: \"g5.xlarge\": pool \"t4\" does not launch it for notebooks (requirements, notebookCapacityTypes, or on-demand for stopped nodes rule it out)\n",
            "\(bad.stderr)")
    }
}
