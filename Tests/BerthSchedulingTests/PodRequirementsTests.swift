import BerthModel
import BerthScheduling
import Testing

@Suite struct PodRequirementsTests {
    func requirements(_ yaml: String, zones: [String]? = nil) throws -> PodRequirements {
        try PodRequirements(pod: try YAMLReader.document(yaml), volumeZones: zones)
    }

    /// Effective request = max(sum of containers + sidecars, each init container + earlier
    /// sidecars) + overhead; a missing request defaults to the limit.
    @Test func kubernetesEffectiveRequests() throws {
        let pod = try requirements(
            """
            metadata: {name: train, namespace: ml}
            spec:
              overhead: {cpu: 100m}
              initContainers:
              - {name: sidecar, restartPolicy: Always, resources: {requests: {cpu: 200m, memory: 64Mi}}}
              - {name: download, resources: {requests: {cpu: "3", memory: 1Gi}}}
              containers:
              - {name: a, resources: {requests: {cpu: 500m, memory: 2Gi}, limits: {nvidia.com/gpu: 2, memory: 4Gi}}}
              - {name: b, resources: {limits: {cpu: "1", memory: 512Mi, ephemeral-storage: 1Gi}}}
            """)
        #expect(pod.id == "ml/train")
        // CPU: containers 0.5 + 1 + sidecar 0.2 = 1.7 < init 3 + sidecar 0.2 = 3.2; + 0.1 overhead.
        #expect(pod.requests.cpuMilli == 3300)
        // Memory: 2Gi + 512Mi + 64Mi > 1Gi + 64Mi.
        #expect(pod.requests.memory == (2048 + 512 + 64) << 20)
        #expect(pod.requests.ephemeralStorage == 1 << 30)
        #expect(pod.requests.gpus == 2)
        #expect(pod.requests.pods == 1)
        #expect(pod.gpuResource == "nvidia.com/gpu")
        #expect(!pod.isNotebook)
    }

    @Test func constraintsAreRead() throws {
        let pod = try requirements(
            """
            metadata: {name: jupyter-alice, namespace: jhub, labels: {component: singleuser-server}}
            spec:
              nodeSelector: {kubernetes.io/arch: amd64}
              tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
              affinity:
                nodeAffinity:
                  requiredDuringSchedulingIgnoredDuringExecution:
                    nodeSelectorTerms:
                    - matchExpressions: [{key: karpenter.k8s.aws/instance-gpu-name, operator: In, values: [a10g]}]
                    - matchFields: [{key: metadata.name, operator: In, values: [node-1]}]
              containers: [{name: nb, resources: {limits: {nvidia.com/gpu: 1, example.com/fpga: 1}}}]
            """, zones: ["us-east-1b", "us-east-1a", "us-east-1b"])
        #expect(pod.isNotebook)
        #expect(pod.constraints.nodeSelector == [LabelRequirement(key: "kubernetes.io/arch", operator: .in, values: ["amd64"])])
        #expect(pod.constraints.tolerations == [Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule")])
        #expect(pod.constraints.requiredTerms.count == 2)
        #expect(pod.constraints.requiredTerms.first == [LabelRequirement(key: "karpenter.k8s.aws/instance-gpu-name", operator: .in, values: ["a10g"])])
        #expect(pod.constraints.zones == ["us-east-1a", "us-east-1b"])
        #expect(pod.unsupportedResources == ["example.com/fpga"])
    }

    @Test func badQuantityNamesPodFieldAndValue() throws {
        #expect {
            try requirements("metadata: {name: x, namespace: y}\nspec: {containers: [{name: a, resources: {requests: {memory: 1.5.5Gi}}}]}")
        } throws: { error in
            (error as? SchedulingError)?.description
                == "pod y/x: spec.containers[0].resources.requests.memory: invalid quantity \"1.5.5Gi\": unknown suffix \".5Gi\" (expected Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent such as e3)"
        }
    }
}
