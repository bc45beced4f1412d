import BerthModel

extension MutationPolicy {
    /// The parts of a pod the policy reads, for `JSONTape(parsing:selecting:)`: every label (the
    /// policy checks that all of them are strings, as `berth mutate` does on a tree), the
    /// annotations Berth knows, tolerations, node selection and container resources. Everything else (env, volumes, managedFields, a 100 KB
    /// last-applied-configuration) is checked and skipped, never built.
    public var podSelection: JSONSelection {
        let annotationKeys = [
            "kubernetes.io/config.mirror", config.skipAnnotation, config.gpuTypeAnnotation, config.doNotDisruptAnnotation,
            config.mutatedAnnotation,
        ]
        let resources = JSONSelection.members(["resources": .members(["limits": .all, "requests": .all])])
        return .members([
            "kind": .all,
            "metadata": .members([
                "name": .all,
                "namespace": .all,
                "labels": .all,
                "annotations": .members(annotationKeys.map { JSONSelection.SelectedMember($0, .all) }),
                "ownerReferences": .elements(.members(["kind": .all])),
            ]),
            "spec": .members([
                "nodeName": .all,
                "tolerations": .all,
                "nodeSelector": .members([JSONSelection.SelectedMember(config.gpuNodeLabelKey, .all)]),
                "affinity": .members(["nodeAffinity": .members(["requiredDuringSchedulingIgnoredDuringExecution": .all])]),
                "containers": .elements(resources),
                "initContainers": .elements(resources),
            ]),
        ])
    }
}
