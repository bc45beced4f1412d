import BerthModel

/// The cluster port: what the provisioning loop reads from and does to Kubernetes. `KubeCluster`
/// (BerthController) implements it over the API server; tests and the simulation may implement it
/// in memory. Methods may block on I/O; the runtime calls them off its own executor.
public protocol ClusterPort: Sendable {
    /// The pods and nodes as they are now (`cloudInstances` is left nil: the runtime fills it).
    /// - Throws: when the view cannot be built (caches not synced): the round is skipped.
    func snapshot() async throws -> ClusterSnapshot

    /// Adds labels and taints to a node, removes labels and taints (taints by key and effect).
    func updateNode(name: String, labels: [String: String], removeLabels: [String], addTaints: [Taint], removeTaints: [Taint]) async throws

    /// Adds annotations to a pod (`namespace/name`).
    func annotatePod(pod: String, annotations: [String: String]) async throws

    /// Evicts through the Eviction API: `.evicted` (also when the pod is already gone) or
    /// `.evictionFailed` (a PodDisruptionBudget's 429, or any error, with its message).
    func evict(pod: String) async -> ActionResult

    /// Deletes the Node (gone already counts as done).
    func deleteNode(name: String) async throws

    /// Deletes the pod (`namespace/name`; gone already counts as done), without asking its budget.
    func deletePod(pod: String) async throws

    /// Records a Kubernetes Event (best effort: failures are logged, never thrown).
    func record(_ event: ProvisionerEvent) async
}
