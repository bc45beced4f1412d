import BerthAdmission
import BerthModel
import Testing

@Suite struct ConfigTests {
    @Test func emptyFileMeansDefaults() throws {
        #expect(try BerthConfig(yaml: "", source: "c.yaml") == BerthConfig())
        #expect(try BerthConfig(yaml: "apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\n", source: "c.yaml") == BerthConfig())
    }

    @Test func everyWebhookFieldIsReadable() throws {
        let config = try BerthConfig(yaml: """
            apiVersion: berth.dev/v1alpha1
            kind: BerthConfig
            webhook:
              gpuResources: [nvidia.com/gpu, amd.com/gpu]
              notebookSelectors:
                - matchLabels: {app: notebook}
                - matchExpressions: [{key: team, operator: In, values: [ml]}]
              exemptNamespaces: [berth-system]
              gpuTaints: [{key: gpu, effect: NoExecute}]
              gpuNodeLabel: {key: accelerator, value: "yes"}
              gpuTypeAnnotation: example.com/gpu
              gpuTypeLabel: example.com/gpu-name
              skipAnnotation: example.com/skip
              doNotDisruptAnnotation: example.com/keep
              mutatedAnnotation: example.com/mutated
              protectGPUNotebooks: false
              keepOtherPodsOffGPUNodes: false
            """, source: "c.yaml")
        let webhook = config.webhook
        #expect(webhook.gpuResources.map(\.pattern) == ["nvidia.com/gpu", "amd.com/gpu"])
        #expect(webhook.notebookSelectors == [
            LabelSelector(matchLabels: ["app": "notebook"]),
            LabelSelector(matchExpressions: [LabelRequirement(key: "team", operator: .in, values: ["ml"])]),
        ])
        #expect(webhook.exemptNamespaces == ["berth-system"])
        #expect(webhook.gpuTaints == [Taint(key: "gpu", effect: "NoExecute")])
        #expect(webhook.gpuNodeLabelKey == "accelerator" && webhook.gpuNodeLabelValue == "yes")
        #expect(webhook.gpuTypeAnnotation == "example.com/gpu" && webhook.gpuTypeLabel == "example.com/gpu-name")
        #expect(webhook.skipAnnotation == "example.com/skip" && webhook.doNotDisruptAnnotation == "example.com/keep")
        #expect(webhook.mutatedAnnotation == "example.com/mutated")
        #expect(!webhook.protectGPUNotebooks && !webhook.keepOtherPodsOffGPUNodes)
    }

    @Test(arguments: [
        ("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nwebhook:\n  gpuTaint: []\n",
         "c.yaml: webhook.gpuTaint: unknown field \"gpuTaint\"; allowed fields: gpuResources, notebookSelectors, exemptNamespaces, gpuTaints, gpuNodeLabel, gpuTypeAnnotation, gpuTypeLabel, skipAnnotation, doNotDisruptAnnotation, mutatedAnnotation, protectGPUNotebooks, keepOtherPodsOffGPUNodes"),
        ("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nconsolidation: true\n",
         "c.yaml: consolidation: unknown field \"consolidation\"; allowed fields: apiVersion, kind, webhook"),
        ("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nWebhook: {}\n",
         "c.yaml: Webhook: unknown field \"Webhook\" (did you mean \"webhook\"?); allowed fields: apiVersion, kind, webhook"),
        ("apiVersion: v1\nkind: BerthConfig\n", "c.yaml: apiVersion: must be \"berth.dev/v1alpha1\", found \"v1\""),
        ("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nwebhook:\n  gpuTaints: [{key: a, effect: Sometimes}]\n",
         "c.yaml: webhook.gpuTaints[0].effect: \"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute"),
        ("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nwebhook:\n  protectGPUNotebooks: \"yes\"\n",
         "c.yaml: webhook.protectGPUNotebooks: expected true or false, found a string"),
        ("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nwebhook:\n  notebookSelectors: [{matchExpressions: [{key: a, operator: In}]}]\n",
         "c.yaml: webhook.notebookSelectors[0].matchExpressions[0]: operator In needs at least one value"),
        ("apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nwebhook: [1]\n", "c.yaml: webhook: expected an object, found a list"),
        ("apiVersion: berth.dev/v1alpha1\nkind: [", "c.yaml: line 3: YAML syntax: did not find expected node content"),
    ])
    func badConfigNamesTheFieldAndWhatIsAllowed(text: String, message: String) {
        let error = #expect(throws: ConfigError.self) { _ = try BerthConfig(yaml: text, source: "c.yaml") }
        #expect(error?.description.hasPrefix(message) == true, "\(String(describing: error))")
    }
}
