import BerthAdmission
import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// The embedded cluster of `berth serve --simulated`, driven by clients nobody here wrote: kubectl
/// 1.37 (from the test tools) and the official Python client's typed calls. README tells users to
/// run `kubectl --kubeconfig .build/berth-simulated.kubeconfig get nodes,pods -A` during `make run`.
@Suite(.serialized) struct RealClientsTests {
    /// An embedded cluster with the kubeconfig `make run` writes, one node, a workload pod owned by
    /// a ReplicaSet and a DaemonSet's pod on it, and an Event as Berth records it.
    final class World: Sendable {
        let cluster: EmbeddedCluster
        let client: KubeClient
        let directory: String
        let kubeconfig: String

        init() throws {
            directory = NSTemporaryDirectory() + "berth-real-clients-\(getpid())-\(UUID().uuidString.prefix(6))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            kubeconfig = directory + "/berth-simulated.kubeconfig"
            var options = EmbeddedCluster.Options(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
            options.caFile = pki.caCertificate
            options.port = 0
            options.kubeconfigPath = kubeconfig
            cluster = try EmbeddedCluster(options: options, webhook: WebhookConfig(),
                                          logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            client = try KubeClient(try cluster.clientConfiguration())
        }

        deinit {
            cluster.server.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// kubectl with this cluster's kubeconfig and a cache of its own.
        func kubectl(_ arguments: String...) throws -> CommandResult {
            try run("kubectl", ["--kubeconfig", kubeconfig, "--cache-dir", directory + "/cache"] + arguments, timeout: .seconds(60))
        }

        /// The node, a ReplicaSet's notebook pod running on it, a DaemonSet and its pod, an Event.
        func populate() throws {
            FakeKubelet(server: cluster.server).registerNode(
                name: "gpu-1", labels: ["node-role.kubernetes.io/gpu": "", "nvidia.com/gpu.present": "true"],
                capacity: ["cpu": "4", "memory": "16Gi", "pods": "110", "nvidia.com/gpu": "1"])
            _ = try client.create(.namespaces, ["metadata": ["name": "jhub"]])
            var notebook = NotebookDemo.notebookPod(name: "nb", namespace: "jhub")
            setOwner(&notebook, kind: "ReplicaSet", name: "nb-7f9c")
            let pod = try client.create(.pods, namespace: "jhub", notebook)
            let daemonSet = try client.create(.daemonSets, namespace: "kube-system",
                                              ["apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": ["name": "nvidia-device-plugin"], "spec": ["selector": ["matchLabels": ["app": "dp"]]]])
            var plugin: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "nvidia-device-plugin-x1", "labels": ["app": "dp"]],
                                "spec": ["nodeName": "gpu-1", "containers": [["name": "dp", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"]]]]
            setOwner(&plugin, kind: "DaemonSet", name: "nvidia-device-plugin", uid: daemonSet["metadata"]?["uid"]?.stringValue ?? "")
            _ = try client.create(.pods, namespace: "kube-system", plugin)
            _ = FakeScheduler(server: cluster.server).schedulePendingPods()
            FakeKubelet(server: cluster.server).runPods(on: "gpu-1")
            try client.recordEvent(regarding: pod, reason: "Nominated", action: "Provisioning",
                                   note: "launching g5.xlarge in us-east-1a", reportingInstance: "berth-0")
        }

        private func setOwner(_ object: inout JSON, kind: String, name: String, uid: String = "00000000-0000-4000-8000-00000000abcd") {
            guard case .object(var top) = object, case .object(var metadata)? = top["metadata"] else { return }
            metadata["ownerReferences"] = [["apiVersion": "apps/v1", "kind": .string(kind),
                                            "name": .string(name), "uid": .string(uid), "controller": true]]
            top["metadata"] = .object(metadata)
            object = .object(top)
        }
    }

    @Test func kubectlGetDescribeAndEvents() throws {
        let world = try World()
        try world.populate()
        // README's command, with kubectl's usual columns (server-side Table) and -A's namespaces.
        let get = try world.kubectl("get", "nodes,pods", "-A")
        #expect(get.status == 0, "\(get.stderr)")
        #expect(get.stdout.contains("NAME") && get.stdout.contains("STATUS") && get.stdout.contains("ROLES") && get.stdout.contains("VERSION"))
        #expect(get.stdout.range(of: #"node/gpu-1\s+Ready\s+gpu\s+\d+s\s+v1\.31\.0-fake"#, options: .regularExpression) != nil, "\(get.stdout)")
        #expect(get.stdout.range(of: #"jhub\s+pod/nb\s+1/1\s+Running\s+0\s+\d+s"#, options: .regularExpression) != nil, "\(get.stdout)")
        #expect(get.stdout.range(of: #"kube-system\s+pod/nvidia-device-plugin-x1\s+1/1\s+Running"#, options: .regularExpression) != nil)
        // kubectl asked for aggregated discovery and got it: no per-group discovery requests.
        let discovery = world.cluster.server.requests.filter { $0.hasPrefix("GET /api") && !$0.contains("/namespaces") && !$0.contains("/nodes") && !$0.contains("/pods") }
        #expect(discovery.allSatisfy { $0.hasPrefix("GET /api?") || $0.hasPrefix("GET /apis?") }, "\(discovery)")
        // A client asking for plain JSON gets the legacy documents.
        let groups = try world.client.request("GET", "/apis")
        #expect(groups["kind"] == "APIGroupList" && groups["groups"]?.arrayValue?.count == 5)
        let core = try world.client.request("GET", "/api/v1")
        #expect(core["resources"]?.arrayValue?.contains { $0["name"] == "pods/eviction" && $0["group"] == "policy" } == true)
        let wide = try world.kubectl("get", "nodes", "-o", "wide")
        #expect(wide.status == 0, "\(wide.stderr)")
        #expect(wide.stdout.contains("INTERNAL-IP") && wide.stdout.contains("OS-IMAGE") && wide.stdout.contains("CONTAINER-RUNTIME"))
        #expect(wide.stdout.contains("Amazon Linux 2023 (Berth simulated)") && wide.stdout.contains("containerd://2.1.0"))
        // get -w: after the list, watch events carry one-row Tables, so the columns stay kubectl's.
        // A change made once the watch is open arrives as a second row; the watch ends with
        // kubectl's request timeout.
        let watched = Mutex<CommandResult?>(nil)
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let result = try? world.kubectl("get", "pods", "-n", "jhub", "-w", "--request-timeout", "5s")
            watched.withLock { $0 = result }
            finished.signal()
        }
        #expect(waitUntil { world.cluster.server.openWatchCount == 1 })
        world.cluster.server.modify(.pods, namespace: "jhub", name: "nb") { setPath(&$0, ["metadata", "labels", "watched"], "yes") }
        finished.wait()
        let watch = try #require(watched.withLock { $0 })
        #expect(watch.stdout.range(of: #"NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nnb\s+1/1\s+Running\s+0\s+\d+s\nnb\s+1/1\s+Running\s+0"#,
                                   options: .regularExpression) != nil, "\(watch.stdout) \(watch.stderr)")
        let widePods = try world.kubectl("get", "pods", "-n", "jhub", "-o", "wide")
        #expect(widePods.stdout.range(of: #"nb\s+1/1\s+Running\s+0\s+\d+s\s+<none>\s+gpu-1"#, options: .regularExpression) != nil, "\(widePods.stdout)")

        // describe finds the pod's events (core/v1 field selectors on involvedObject) written as events.k8s.io/v1.
        let describe = try world.kubectl("describe", "pod", "-n", "jhub", "nb")
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("QoS Class:") && describe.stdout.contains("Burstable"))
        #expect(describe.stdout.range(of: #"Normal\s+Nominated\s+\d+s\s+berth\.dev/provisioner\s+launching g5\.xlarge in us-east-1a"#, options: .regularExpression) != nil,
                "\(describe.stdout)")
        let describeNode = try world.kubectl("describe", "node", "gpu-1")
        #expect(describeNode.status == 0 && describeNode.stdout.contains("jhub") && describeNode.stdout.contains("nb"), "\(describeNode.stderr)")

        // One Event store: kubectl reads core/v1 what Berth wrote through events.k8s.io/v1.
        let events = try world.kubectl("get", "events", "-A")
        #expect(events.status == 0, "\(events.stderr)")
        #expect(events.stdout.range(of: #"jhub\s+\d+s\s+Normal\s+Nominated\s+pod/nb\s+launching g5\.xlarge"#, options: .regularExpression) != nil, "\(events.stdout)")
        let selected = try world.kubectl("get", "events", "-n", "jhub", "--field-selector", "involvedObject.name=nb,reason=Nominated", "-o", "name")
        #expect(selected.stdout.split(separator: "\n").count == 1, "\(selected.stdout) \(selected.stderr)")

        let resources = try world.kubectl("api-resources")
        #expect(resources.status == 0, "\(resources.stderr)")
        for line in [#"pods\s+po\s+v1\s+true\s+Pod"#, #"nodes\s+no\s+v1\s+false\s+Node"#, #"leases\s+coordination\.k8s\.io/v1\s+true\s+Lease"#,
                     #"events\s+ev\s+events\.k8s\.io/v1\s+true\s+Event"#, #"poddisruptionbudgets\s+pdb\s+policy/v1\s+true"#] {
            #expect(resources.stdout.range(of: line, options: .regularExpression) != nil, "\(line) in \(resources.stdout)")
        }
        let unknown = try world.kubectl("get", "widgets")
        #expect(unknown.status != 0 && unknown.stderr.contains("the server doesn't have a resource type \"widgets\""), "\(unknown.stderr)")
    }

    /// kubectl's writes: auth can-i and drain post protobuf bodies (SelfSubjectAccessReview,
    /// Eviction); cordon patches; create is validated on the server (fieldValidation=Strict,
    /// found in the OpenAPI v3 index), honours --dry-run=server, and gets the create-time defaults.
    @Test func kubectlCordonDrainCreateDelete() throws {
        let world = try World()
        try world.populate()
        let canI = try world.kubectl("auth", "can-i", "create", "pods")
        #expect(canI.status == 0 && canI.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "yes", "\(canI.stdout) \(canI.stderr)")

        let cordon = try world.kubectl("cordon", "gpu-1")
        #expect(cordon.status == 0 && cordon.stdout.contains("node/gpu-1 cordoned"), "\(cordon.stderr)")
        #expect(world.cluster.server.object(.nodes, name: "gpu-1")?["spec"]?["unschedulable"] == true)
        let drain = try world.kubectl("drain", "gpu-1", "--ignore-daemonsets", "--timeout", "30s")
        #expect(drain.status == 0, "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stdout.contains("evicting pod jhub/nb") || drain.stderr.contains("evicting pod jhub/nb"), "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stderr.contains("ignoring DaemonSet-managed Pods: kube-system/nvidia-device-plugin-x1"), "\(drain.stderr)")
        #expect(world.cluster.server.object(.pods, namespace: "jhub", name: "nb") == nil)
        #expect(world.cluster.server.object(.pods, namespace: "kube-system", name: "nvidia-device-plugin-x1") != nil)

        let manifest = world.directory + "/pod.yaml"
        try """
        apiVersion: v1
        kind: Pod
        metadata: {name: hello, namespace: default}
        spec:
          containers:
          - {name: c, image: "busybox:1.36", resources: {limits: {cpu: 500m, memory: 128Mi}}}
        """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let dry = try world.kubectl("create", "-f", manifest, "--dry-run=server", "-o", "json")
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(try JSONParser.parse(Array(dry.stdout.utf8))["spec"]?["schedulerName"] == "default-scheduler")
        #expect(world.cluster.server.object(.pods, namespace: "default", name: "hello") == nil)
        let create = try world.kubectl("create", "-f", manifest)
        #expect(create.status == 0 && create.stdout.contains("pod/hello created"), "\(create.stderr)")
        let pod = try #require(world.cluster.server.object(.pods, namespace: "default", name: "hello"))
        #expect(pod["spec"]?["restartPolicy"] == "Always" && pod["spec"]?["dnsPolicy"] == "ClusterFirst")
        #expect(pod["spec"]?["terminationGracePeriodSeconds"] == 30 && pod["spec"]?["schedulerName"] == "default-scheduler")
        #expect(pod["spec"]?["containers"]?[0]?["imagePullPolicy"] == "IfNotPresent")
        #expect(pod["spec"]?["containers"]?[0]?["resources"]?["requests"] == ["cpu": "500m", "memory": "128Mi"])
        #expect(pod["status"]?["qosClass"] == "Guaranteed")
        try (try String(contentsOfFile: manifest, encoding: .utf8)).replacingOccurrences(of: "image:", with: "imagee:")
            .replacingOccurrences(of: "hello", with: "typo").write(toFile: manifest, atomically: true, encoding: .utf8)
        let typo = try world.kubectl("create", "-f", manifest)
        #expect(typo.status != 0 && typo.stderr.contains(#"strict decoding error: unknown field "spec.containers[0].imagee""#), "\(typo.stderr)")
        let delete = try world.kubectl("delete", "pod", "hello", "--timeout", "30s")
        #expect(delete.status == 0, "\(delete.stderr)")
        #expect(world.cluster.server.object(.pods, namespace: "default", name: "hello") == nil)
    }

    /// The official Python client's typed calls: lists and reads deserialise into its models
    /// (complete nodeInfo), create gets the defaults, dryRun=All persists nothing, both Event
    /// APIs serve the same events, an unknown resource is 404.
    @Test func pythonClientTypedCalls() throws {
        let world = try World()
        try world.populate()
        let python = Repository.root.appendingPathComponent(".build/tools/kubernetes-client/bin/python3").path
        let script = Repository.root.appendingPathComponent("Tests/tools/kube_typed_client.py").path
        try #require(FileManager.default.isExecutableFile(atPath: python),
                     "the Python Kubernetes client's venv is missing: run make tools (Tests/tools/setup.sh installs it)")
        let result = try run(python, [script, world.kubeconfig], timeout: .seconds(120))
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("node gpu-1 v1.31.0-fake Amazon Linux 2023 (Berth simulated) containerd://2.1.0"))
        #expect(lines.contains("created typed-client Always default-scheduler ClusterFirst 30 Guaranteed"))
        #expect(lines.contains("dry run not persisted 404"))
        #expect(lines.contains("core events 1 ['Nominated']") && lines.contains("events.k8s.io events 1"))
        #expect(lines.contains("unknown resource 404"))
    }
}
