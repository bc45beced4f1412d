/// The cloud port: the handful of calls the provisioning loop makes to a cloud. Two adapters
/// implement it: ``SimulatedCloud`` (the embedded default, for `make run` and the simulation) and
/// EC2 (its own module). ``FakeCloudProvider`` stands in for it in the provisioner's unit tests.
///
/// Every method throws only ``CloudError``; each documents which case, and when. Methods may be
/// called concurrently and retried: `create` is idempotent on the request's launch id, `delete` is
/// safe to repeat (the second call says ``CloudError/notFound(providerID:)``, which callers treat as
/// done). Nothing here sleeps or retries on its own: backing off is the caller's decision.
public protocol CloudProvider: Sendable {
    /// Launches one instance for `request`: the first candidate offering (types in the order given,
    /// cheapest first; each type's offerings in order; offerings marked `available == false`
    /// skipped) that has capacity. The instance carries `request.tags`; the Node it registers
    /// carries `request.labels` and `request.taints`.
    ///
    /// Idempotent on `request.launchID`: a retried create (after a timeout, a crash) returns the
    /// instance the first successful call launched, in its current state, even if the retry's
    /// candidates differ; never a second instance. A failed create launches nothing and records no
    /// token, so a retry with other candidates launches normally.
    ///
    /// - Throws: ``CloudError/insufficientCapacity(offerings:)`` when no candidate offering had
    ///   capacity, naming every offering tried (the caller marks them unavailable for a while and
    ///   retries with the next cheapest); ``CloudError/invalidRequest(_:)`` for an empty launch id,
    ///   no candidates, or candidates this cloud does not sell; ``CloudError/throttled(operation:)``
    ///   when the API rate limit was hit (nothing launched; retry later with the same launch id);
    ///   ``CloudError/refused(action:code:message:)`` when the cloud refuses the launch as configured
    ///   (permissions, an image or subnet that does not exist, a rejected parameter: nothing launched,
    ///   and retrying the same request cannot help);
    ///   ``CloudError/other(_:)`` for anything else (the outcome is unknown: retry with the same
    ///   launch id, never a new one).
    func create(_ request: LaunchRequest) async throws(CloudError) -> CloudInstance

    /// Terminates the instance. Returns once termination has begun; the instance then disappears
    /// from `get` and `list`.
    ///
    /// - Throws: ``CloudError/notFound(providerID:)`` when the instance does not exist or is
    ///   already terminated or terminating — callers treat it as success (Karpenter's
    ///   NodeClaimNotFound); ``CloudError/invalidRequest(_:)`` for a provider id of another cloud
    ///   or malformed; ``CloudError/throttled(operation:)``, ``CloudError/other(_:)`` as for create.
    func delete(providerID: String) async throws(CloudError)

    /// The instance with this provider id, in its current state (pending, running, stopping or
    /// stopped).
    ///
    /// - Throws: ``CloudError/notFound(providerID:)`` when it does not exist or is terminated;
    ///   ``CloudError/invalidRequest(_:)``, ``CloudError/throttled(operation:)``,
    ///   ``CloudError/other(_:)`` as for delete.
    func get(providerID: String) async throws(CloudError) -> CloudInstance

    /// Every instance tagged with this cluster (``CloudTag/cluster`` equal to `clusterTag`) that is
    /// not terminated, oldest launch first: what garbage collection compares with the Nodes, and
    /// what a restarted provisioner rebuilds its launches from.
    ///
    /// - Throws: ``CloudError/throttled(operation:)``, ``CloudError/other(_:)``.
    func list(clusterTag: String) async throws(CloudError) -> [CloudInstance]

    /// Stops a running instance (warm capacity's stopped tier). Its root volume, and the images
    /// pulled onto it, are kept and are all that is billed while it is stopped; its id, private
    /// address and so its Node's name stay. Returns once stopping has begun: the instance then
    /// reports ``CloudInstance/State/stopping``, then ``CloudInstance/State/stopped``, in `get`
    /// and `list`. Stopping an instance already stopping or stopped is not an error.
    ///
    /// - Throws: ``CloudError/notFound(providerID:)`` when it does not exist or is terminated;
    ///   ``CloudError/invalidRequest(_:)`` for a malformed or foreign provider id, or an instance
    ///   that cannot be stopped (still pending; spot; an instance-store root volume);
    ///   ``CloudError/refused(action:code:message:)`` when permissions forbid it;
    ///   ``CloudError/throttled(operation:)``, ``CloudError/other(_:)`` as for delete.
    func stop(providerID: String) async throws(CloudError)

    /// Starts a stopped instance: it boots again with the same id and volume (`pending`, then
    /// `running`); its kubelet registers the same Node, its GPUs become allocatable again.
    /// Starting an instance already pending or running is not an error.
    ///
    /// - Throws: ``CloudError/notFound(providerID:)`` when it does not exist or is terminated;
    ///   ``CloudError/invalidRequest(_:)`` for a malformed or foreign provider id, or an instance
    ///   still stopping (retry once it is stopped);
    ///   ``CloudError/insufficientCapacity(offerings:)`` naming its own offering when the zone has
    ///   no capacity for its type now (EC2's InsufficientInstanceCapacity on start: nothing
    ///   started, the instance stays stopped); ``CloudError/refused(action:code:message:)``,
    ///   ``CloudError/throttled(operation:)``, ``CloudError/other(_:)`` as for stop.
    func start(providerID: String) async throws(CloudError)
}
