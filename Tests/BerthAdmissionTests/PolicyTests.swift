import BerthAdmission
import BerthModel
import Testing

@Suite struct PolicyTests {
    let mutator = ManifestMutator(policy: MutationPolicy())

    func mutate(_ name: String, document index: Int = 0) throws -> (original: JSON, result: ManifestMutator.Result) {
        let original = try Fixtures.documents(name)[index]
        return (original, try mutator.mutate(original))
    }

    func patchText(_ result: ManifestMutator.Result) -> String { JSONWriter.string(result.patch.json) }

    @Test func z2jhGPUNotebookGetsTolerationAffinityAndProtection() throws {
        let (_, result) = try mutate("z2jh-gpu-notebook.yaml")
        #expect(result.pods.first?.mutation.podClass == .gpuNotebook)
        // The existing hub toleration is kept: Berth appends (a z2jh profile's list is replaced, not merged).
        #expect(patchText(result) == """
            [{"op":"add","path":"/spec/tolerations/-","value":{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}},\
            {"op":"add","path":"/spec/affinity","value":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":\
            {"nodeSelectorTerms":[{"matchExpressions":[{"key":"nvidia.com/gpu.present","operator":"In","values":["true"]},\
            {"key":"berth.dev/node-role","operator":"NotIn","values":["shared"]}]}]}}}},\
            {"op":"add","path":"/metadata/annotations/karpenter.sh~1do-not-disrupt","value":"true"},\
            {"op":"add","path":"/metadata/annotations/berth.dev~1mutated","value":"gpu-notebook"}]
            """)
        #expect(result.pods.first?.mutation.kinds == [.gpuToleration, .gpuAffinity, .notebookNodeAffinity, .doNotDisrupt])
    }

    @Test func notebooksMayShareNodesWhenConfiguredTo() throws {
        var config = WebhookConfig()
        config.keepNotebooksOffSharedNodes = false
        let original = try Fixtures.documents("z2jh-gpu-notebook.yaml")[0]
        let result = try ManifestMutator(policy: MutationPolicy(config: config)).mutate(original)
        #expect(!patchText(result).contains("berth.dev/node-role"))
        #expect(result.pods.first?.mutation.kinds == [.gpuToleration, .gpuAffinity, .doNotDisrupt])
        // A plain GPU pod (not a notebook) never gets the notebook requirement.
        let job = try ManifestMutator(policy: MutationPolicy()).mutate(try Fixtures.documents("bare-gpu-pod.yaml")[0])
        #expect(!patchText(job).contains("berth.dev/node-role"))
    }

    @Test func kubeflowNotebookWithoutTolerationsGetsTheList() throws {
        let (_, result) = try mutate("kubeflow-gpu-notebook.yaml")
        #expect(result.pods.first?.mutation.podClass == .gpuNotebook)
        let ops = result.patch.operations
        #expect(ops.first == .add(JSONPointer(["spec", "tolerations"]), [["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"]]))
        #expect(result.mutated["metadata"]?["annotations"]?["karpenter.sh/do-not-disrupt"] == "true")
        #expect(ops.allSatisfy { $0.op == .add })
    }

    @Test func everyNodeSelectorTermGetsTheRequirementAndNoTermIsAdded() throws {
        let (original, result) = try mutate("gpu-two-zones.yaml")
        #expect(result.pods.first?.mutation.podClass == .gpu)
        let terms = result.mutated["spec"]?["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?["nodeSelectorTerms"]?.arrayValue
        #expect(terms?.count == 2)
        for (index, term) in (terms ?? []).enumerated() {
            let expressions = term["matchExpressions"]?.arrayValue ?? []
            #expect(expressions.count == 3, "term \(index)")
            #expect(expressions.contains(["key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]]))
            // berth.dev/gpu-type: A10G is normalised to Karpenter's lowercase label value.
            #expect(expressions.contains(["key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["a10g"]]))
        }
        // Preferred affinity is untouched.
        #expect(result.mutated["spec"]?["affinity"]?["nodeAffinity"]?["preferredDuringSchedulingIgnoredDuringExecution"]
            == original["spec"]?["affinity"]?["nodeAffinity"]?["preferredDuringSchedulingIgnoredDuringExecution"])
        #expect(result.pods.first?.mutation.kinds == [.gpuToleration, .gpuAffinity, .gpuTypeAffinity])
        // Not a notebook: no do-not-disrupt.
        #expect(result.mutated["metadata"]?["annotations"]?["karpenter.sh/do-not-disrupt"] == nil)
    }

    @Test func airflowPodThatToleratesEverythingIsKeptOffGPUNodes() throws {
        let (_, result) = try mutate("airflow-task.yaml")
        #expect(result.pods.first?.mutation.podClass == .other)
        #expect(patchText(result) == """
            [{"op":"add","path":"/spec/affinity","value":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":\
            {"nodeSelectorTerms":[{"matchExpressions":[{"key":"nvidia.com/gpu.present","operator":"NotIn","values":["true"]}]}]}}}},\
            {"op":"add","path":"/metadata/annotations","value":{"berth.dev/mutated":"non-gpu"}}]
            """)
    }

    @Test func devicePluginDaemonSetPodIsNeverTouched() throws {
        let (_, result) = try mutate("device-plugin-daemonset-pod.yaml")
        #expect(result.patch.isEmpty)
        #expect(result.pods.first?.mutation.exemptReason == "owned by a DaemonSet")
    }

    @Test func podWithoutLabelsAnnotationsOrAffinityGetsEveryStructure() throws {
        let (_, result) = try mutate("bare-gpu-pod.yaml")
        let paths = result.patch.operations.map(\.path.description)
        #expect(paths == ["/spec/tolerations", "/spec/affinity", "/metadata/annotations"])
        #expect(result.pods.first?.mutation.podClass == .gpu)
    }

    @Test func podWithoutMetadataGetsMetadata() throws {
        let pod: JSON = ["apiVersion": "v1", "kind": "Pod", "spec": ["containers": [["name": "c", "image": "busybox"]]]]
        let result = try mutator.mutate(pod)
        #expect(result.patch.operations.last?.path == JSONPointer(["metadata"]))
        #expect(result.mutated["metadata"]?["annotations"]?["berth.dev/mutated"] == "non-gpu")
    }

    @Test func migOnlyInAnInitContainerMakesAGPUPod() throws {
        let (_, result) = try mutate("mig-init-container.yaml")
        #expect(result.pods.first?.mutation.gpuResources == ["nvidia.com/mig-1g.10gb"])
        #expect(result.pods.first?.mutation.podClass == .gpu)
        // The NoExecute not-ready toleration does not tolerate the GPU taint: one is added.
        #expect(result.patch.operations.first?.path.description == "/spec/tolerations/-")
    }

    @Test func deploymentTemplateIsMutatedAndServicePassesThrough() throws {
        let documents = try Fixtures.documents("deployment-and-service.yaml")
        let deployment = try mutator.mutate(documents[0])
        #expect(deployment.patch.operations.map(\.path.description) == [
            "/spec/template/spec/tolerations", "/spec/template/spec/affinity", "/spec/template/metadata/annotations",
        ])
        let service = try mutator.mutate(documents[1])
        #expect(service.patch.isEmpty)
        #expect(service.mutated == documents[1])
    }

    @Test func cronJobTemplateAndListItems() throws {
        let cronJob: JSON = [
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": ["name": "nightly"],
            "spec": ["schedule": "0 3 * * *", "jobTemplate": ["spec": ["template": ["spec": ["containers": [["name": "c", "image": "x"]]]]]]],
        ]
        let result = try mutator.mutate(cronJob)
        #expect(result.patch.operations.first?.path.description == "/spec/jobTemplate/spec/template/spec/affinity")
        let list: JSON = ["apiVersion": "v1", "kind": "List", "items": [cronJob, ["apiVersion": "v1", "kind": "ConfigMap"]]]
        let listResult = try mutator.mutate(list)
        #expect(listResult.patch.operations.first?.path.description == "/items/0/spec/jobTemplate/spec/template/spec/affinity")
    }

    @Test(arguments: [
        ("kube-system", [String: String](), JSON.null, "namespace kube-system is exempt"),
        ("team-a", ["kubernetes.io/config.mirror": "abc"], JSON.null, "mirror pod"),
        ("team-a", ["berth.dev/skip": "true"], JSON.null, "annotated berth.dev/skip=true"),
        ("team-a", [:], JSON.string("node-1"), "already bound to node node-1"),
        ("berth-system", [:], JSON.null, "namespace berth-system is exempt"),
    ])
    func exemptPodsAreNeverTouched(namespace: String, annotations: [String: String], nodeName: JSON, reason: String) throws {
        var config = WebhookConfig()
        config.exemptNamespaces = ["berth-system"]
        var spec: JSONObject = ["containers": [["name": "c", "resources": ["limits": ["nvidia.com/gpu": 1]]]]]
        if !nodeName.isNull { spec["nodeName"] = nodeName }
        let pod: JSON = [
            "metadata": ["name": "p", "annotations": .object(JSONObject(annotations.map { .init(key: $0.key, value: .string($0.value)) }))],
            "spec": .object(spec),
        ]
        let mutation = try MutationPolicy(config: config).mutation(for: pod, namespace: namespace)
        #expect(mutation.exemptReason == reason)
        #expect(mutation.patch.isEmpty)
    }

    @Test(arguments: [
        ["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"] as JSON,  // ExtendedResourceToleration's
        ["operator": "Exists"] as JSON,  // keyless Exists tolerates everything
        ["key": "nvidia.com/gpu", "operator": "Equal", "value": "true"] as JSON,
    ])
    func existingTolerationThatCoversTheTaintIsEnough(toleration: JSON) throws {
        let pod: JSON = ["spec": ["tolerations": [toleration], "containers": [["name": "c", "resources": ["limits": ["nvidia.com/gpu": 1]]]]]]
        let mutation = try MutationPolicy().mutation(for: pod, namespace: "ml")
        #expect(!mutation.patch.operations.contains { $0.path.tokens.contains("tolerations") })
        #expect(!mutation.kinds.contains(.gpuToleration))
    }

    /// The webhook matches tolerations on the raw review (no Strings made): it must decide exactly
    /// as `Toleration.tolerates` does, for matches and near misses alike.
    @Test(arguments: [
        ["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"] as JSON,
        ["operator": "Exists"] as JSON,
        ["key": "nvidia.com/gpu", "operator": "Equal", "value": "true"] as JSON,
        ["key": "nvidia.com/gpu", "value": "true", "effect": ""] as JSON,
        ["key": "nvidia.com/gpu", "operator": "Equal", "value": "false"] as JSON,
        ["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"] as JSON,
        ["key": "nvidia.com/gpu.present", "operator": "Exists"] as JSON,
        ["key": "nvidia.com/gpu", "operator": "Matches"] as JSON,
        ["key": "nvidia.com/gpu", "operator": "Equal"] as JSON,
        ["key": 1, "operator": "Exists", "effect": true] as JSON,
        ["key": "nvidia.com/gpu\u{1}", "operator": "Exists"] as JSON,
        [:] as JSON,
    ])
    func tolerationsReadFromTheReviewDecideAsTolerationDoes(toleration: JSON) throws {
        let pod: JSON = ["spec": ["tolerations": [toleration], "containers": [["name": "c", "resources": ["limits": ["nvidia.com/gpu": 1]]]]]]
        let policy = MutationPolicy()
        let fromTree = try policy.mutation(for: pod, namespace: "ml")
        let fromTape = try policy.mutation(for: JSONTape(parsing: JSONWriter.bytes(pod)).root, namespace: "ml")
        let tolerated = policy.config.gpuTaints.allSatisfy { Toleration(json: toleration).tolerates($0) }
        #expect(fromTape.patch == fromTree.patch)
        #expect(fromTape.kinds.contains(.gpuToleration) == !tolerated)
        #expect(fromTree.kinds.contains(.gpuToleration) == !tolerated)
    }

    @Test func escapedTolerationFieldsAreReadDecoded() throws {
        let text = #"{"spec":{"tolerations":[{"key":"nvidia.com\/gpu","operator":"Exist\u0073"}],"containers":[{"name":"c","resources":{"limits":{"nvidia.com/gpu":1}}}]}}"#
        let mutation = try MutationPolicy().mutation(for: JSONTape(parsing: Array(text.utf8)).root, namespace: "ml")
        #expect(!mutation.kinds.contains(.gpuToleration))
    }

    @Test func keysWithSlashAndTildeAreEscaped() throws {
        var config = WebhookConfig()
        config.mutatedAnnotation = "example.com/berth~mutated"
        config.doNotDisruptAnnotation = "example.com/keep"
        let pod: JSON = [
            "metadata": ["labels": ["component": "singleuser-server"], "annotations": ["a/b~c": "kept"]],
            "spec": ["containers": [["name": "c", "resources": ["limits": ["nvidia.com/gpu": 1]]]]],
        ]
        let mutation = try MutationPolicy(config: config).mutation(for: pod, namespace: "jhub")
        let paths = mutation.patch.operations.map(\.path.description)
        #expect(paths.contains("/metadata/annotations/example.com~1keep"))
        #expect(paths.contains("/metadata/annotations/example.com~1berth~0mutated"))
        let mutated = try mutation.patch.apply(to: pod)
        #expect(mutated["metadata"]?["annotations"]?["example.com/berth~mutated"] == "gpu-notebook")
        #expect(mutated["metadata"]?["annotations"]?["a/b~c"] == "kept")
    }

    @Test func nonGPUPodThatChoseGPUNodesItselfIsLeftAlone() throws {
        let pod: JSON = ["spec": ["nodeSelector": ["nvidia.com/gpu.present": "true"], "containers": [["name": "dcgm-exporter"]]]]
        let mutation = try MutationPolicy().mutation(for: pod, namespace: "monitoring")
        #expect(mutation.podClass == .other)
        #expect(mutation.patch.isEmpty)
    }

    @Test func emptyTermMatchesNothingAndStaysEmpty() throws {
        let pod: JSON = [
            "spec": [
                "affinity": ["nodeAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": ["nodeSelectorTerms": [
                    [:], ["matchExpressions": [["key": "zone", "operator": "In", "values": ["a"]]]],
                ]]]],
                "containers": [["name": "c"]],
            ],
        ]
        let mutation = try MutationPolicy().mutation(for: pod, namespace: "apps")
        #expect(mutation.patch.operations.map(\.path.description) == [
            "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/1/matchExpressions/-",
            "/metadata",
        ])
    }

    @Test func invalidGPUTypeIsIgnoredWithAWarning() throws {
        let pod: JSON = [
            "metadata": ["annotations": ["berth.dev/gpu-type": "a10g; rm -rf"]],
            "spec": ["containers": [["name": "c", "resources": ["limits": ["nvidia.com/gpu": 1]]]]],
        ]
        let mutation = try MutationPolicy().mutation(for: pod, namespace: "ml")
        #expect(mutation.warnings.count == 1)
        #expect(!mutation.kinds.contains(.gpuTypeAffinity))
    }

    @Test func switchesTurnBehaviourOff() throws {
        var config = WebhookConfig()
        config.keepOtherPodsOffGPUNodes = false
        config.protectGPUNotebooks = false
        let policy = MutationPolicy(config: config)
        let other = try policy.mutation(for: try Fixtures.documents("airflow-task.yaml")[0], namespace: "airflow")
        #expect(other.patch.isEmpty)
        let notebook = try policy.mutation(for: try Fixtures.documents("z2jh-gpu-notebook.yaml")[0], namespace: "jhub")
        #expect(!notebook.kinds.contains(.doNotDisrupt))
    }

    static let malformed: [(JSON, String)] = {
        var cases: [(JSON, String)] = []
        cases.append((["kind": "Pod", "spec": ["containers": "x"]], "spec.containers: expected a list, found a string"))
        cases.append((["kind": "Pod", "spec": [:]], "spec.containers: is missing"))
        cases.append((["kind": "Pod"], "spec: is missing"))
        cases.append((["kind": "Pod", "metadata": ["labels": ["a": 1]], "spec": ["containers": []]], "metadata.labels.a: expected a string, found a number"))
        let limits: JSON = ["resources": ["limits": [1]]]
        cases.append((["kind": "Deployment", "spec": ["template": ["spec": ["containers": [limits]]]]],
            "spec.template.spec.containers[0].resources.limits: expected an object, found a list"))
        cases.append((["apiVersion": "v1"], "kind: is missing: every document needs apiVersion and kind"))
        cases.append((["kind": "Pod", "spec": ["tolerations": [1], "containers": []]], "spec.tolerations[0]: expected an object, found a number"))
        return cases
    }()

    @Test(arguments: malformed)
    func malformedDocumentsNameTheField(document: JSON, message: String) {
        let error = #expect(throws: ManifestMutator.Failure.self) { _ = try mutator.mutate(document) }
        #expect(error?.description == message)
    }

    /// Every fixture: the mutated pod, mutated again, gives an empty patch; undoing the adds gives
    /// back the original byte for byte.
    @Test(arguments: Fixtures.manifestNames)
    func idempotentAndLossless(name: String) throws {
        for original in try Fixtures.documents(name) {
            let first = try mutator.mutate(original)
            // Cached value bytes (PatchValues) write exactly what writing the values would.
            for pod in first.pods {
                #expect(pod.mutation.patch.serialized() == JSONWriter.bytes(pod.mutation.patch.json), "\(name)")
            }
            let second = try mutator.mutate(first.mutated)
            #expect(second.patch.isEmpty, "\(name): second pass patched \(JSONWriter.string(second.patch.json))")
            let restored = try first.patch.removingAdds(from: first.mutated)
            #expect(JSONWriter.bytes(restored) == JSONWriter.bytes(original), "\(name)")
        }
    }
}
