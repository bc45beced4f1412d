import BerthModel
import Dispatch
import Foundation
import Logging
import Synchronization

public struct LeaderElectionConfiguration: Sendable {
    public var namespace: String
    public var name: String
    /// This replica's identity (pod name + a random suffix, as client-go recommends).
    public var identity: String
    /// How long others wait after the last observed renewal before taking over.
    public var leaseDuration: Duration = .seconds(15)
    /// The leader stops acting when it could not renew for this long (< leaseDuration, so the
    /// old leader has stopped before anyone else may start).
    public var renewDeadline: Duration = .seconds(10)
    /// Interval between acquire/renew attempts.
    public var retryPeriod: Duration = .seconds(5)

    public init(namespace: String, name: String, identity: String) {
        self.namespace = namespace
        self.name = name
        self.identity = identity
    }
}

/// Leader election on a coordination.k8s.io/v1 Lease, after client-go's
/// tools/leaderelection: a candidate takes the lease when it is free or when its record has not
/// changed for `leaseDuration` *as observed on the candidate's own clock* (so clock skew between
/// replicas does not matter); the holder renews every `retryPeriod`; every write is an update
/// carrying the resourceVersion read, so two candidates racing for an expired lease cannot both
/// win (one gets 409 Conflict). A leader that has not renewed within `renewDeadline` considers
/// itself deposed; since renewDeadline < leaseDuration, no two replicas lead at once.
///
/// `step(now:)` is one decision and write (pure apart from the API call; tests drive it with
/// explicit times); `start` loops it on a thread.
public final class LeaderElector: Sendable {
    public let configuration: LeaderElectionConfiguration
    private let client: KubeClient
    private let logger: Logger

    private struct State {
        /// The last record seen and when (on our clock) it was first seen in that form.
        var observedHolder: String?
        var observedRenewTime: String?
        var observedAt: ContinuousClock.Instant?
        /// Our last successful acquire or renew.
        var lastRenewal: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    public init(client: KubeClient, configuration: LeaderElectionConfiguration, logger: Logger = Logger(label: "berth.kube.leader")) {
        self.client = client
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "identity"] = "\(configuration.identity)"
        self.logger = logger
    }

    /// Whether this replica may act at `now`: it renewed within the renew deadline.
    public func isLeader(at now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            guard let last = state.lastRenewal else { return false }
            return now - last < configuration.renewDeadline
        }
    }

    /// One attempt to acquire or renew the lease. Returns whether we hold it afterwards.
    /// `wallTime` is written into the Lease (acquireTime/renewTime) for humans and tools; the
    /// decisions use `now` only.
    @discardableResult
    public func step(now: ContinuousClock.Instant, wallTime: Date = Date()) -> Bool {
        do throws(KubeError) {
            let acquired = try tryAcquireOrRenew(now: now, wallTime: wallTime)
            if acquired { state.withLock { $0.lastRenewal = now } }
            return acquired
        } catch {
            logger.warning("lease update failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func tryAcquireOrRenew(now: ContinuousClock.Instant, wallTime: Date) throws(KubeError) -> Bool {
        let me = configuration.identity
        let stamp = RFC3339.string(wallTime, micro: true)
        let seconds = Int(configuration.leaseDuration.components.seconds)
        let existing: JSON
        do throws(KubeError) {
            existing = try client.get(.leases, namespace: configuration.namespace, name: configuration.name)
        } catch {
            guard error.isNotFound else { throw error }
            let lease: JSON = [
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": ["name": .string(configuration.name), "namespace": .string(configuration.namespace)],
                "spec": ["holderIdentity": .string(me), "leaseDurationSeconds": .number(seconds),
                         "acquireTime": .string(stamp), "renewTime": .string(stamp), "leaseTransitions": 0],
            ]
            do throws(KubeError) {
                _ = try client.create(.leases, namespace: configuration.namespace, lease)
            } catch {
                if error.isAlreadyExists { return false }  // someone else created it first
                throw error
            }
            observe(holder: me, renewTime: stamp, now: now)
            logger.info("acquired new lease")
            return true
        }
        let lease = try Lease(json: existing)
        let holder = lease.holderIdentity ?? ""
        let observedAt = observe(holder: holder, renewTime: lease.renewTime, now: now)
        let duration = lease.leaseDurationSeconds.map { Duration.seconds($0) } ?? configuration.leaseDuration
        if !holder.isEmpty && holder != me && now - observedAt < duration {
            return false  // held by another and not expired as far as we have observed
        }
        var updated = existing
        var spec = existing["spec"]?.objectValue ?? JSONObject()
        if holder != me {
            spec["acquireTime"] = .string(stamp)
            spec["leaseTransitions"] = .number(lease.leaseTransitions + (holder.isEmpty ? 0 : 1))
        }
        spec["holderIdentity"] = .string(me)
        spec["renewTime"] = .string(stamp)
        spec["leaseDurationSeconds"] = .number(seconds)
        if case .object(var object) = updated {
            object["spec"] = .object(spec)
            updated = .object(object)
        }
        do throws(KubeError) {
            _ = try client.update(.leases, namespace: configuration.namespace, updated)
        } catch {
            if error.isConflict { return false }  // another candidate wrote first
            throw error
        }
        if holder != me { logger.info("acquired lease", metadata: ["previousHolder": "\(holder)"]) }
        observe(holder: me, renewTime: stamp, now: now)
        return true
    }

    @discardableResult
    private func observe(holder: String, renewTime: String?, now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        state.withLock { state in
            if state.observedHolder != holder || state.observedRenewTime != renewTime || state.observedAt == nil {
                state.observedHolder = holder
                state.observedRenewTime = renewTime
                state.observedAt = now
            }
            return state.observedAt!
        }
    }

    /// Campaigns on a dedicated thread (the client blocks; it must not hold a Swift concurrency
    /// thread): calls `onStartedLeading` once leading, keeps renewing every `retryPeriod`, and
    /// calls `onStoppedLeading` when the renew deadline passes without a renewal (the loops must
    /// stop then) or `stop()` is called. After losing, it campaigns again.
    /// Callbacks run on the elector's thread.
    public func start(onStartedLeading: @escaping @Sendable () -> Void, onStoppedLeading: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            runLoop(onStartedLeading: onStartedLeading, onStoppedLeading: onStoppedLeading)
            finished.signal()
        }
        thread.name = "berth-leader-election"
        thread.start()
    }

    /// Stops campaigning; a leader stops (callback) and releases the lease so another replica
    /// need not wait for it to expire (client-go's ReleaseOnCancel). Waits for the thread.
    public func stop() {
        let running = control.withLock { control -> Bool in
            control.stopped = true
            return control.running
        }
        wake.signal()
        if running { finished.wait() }
    }

    private struct Control {
        var stopped = false
        var running = false
    }
    private let control = Mutex(Control())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    private var isStopped: Bool { control.withLock { $0.stopped } }

    private func pause(_ duration: Duration) {
        let seconds = duration.seconds
        _ = wake.wait(timeout: .now() + seconds)
    }

    private func runLoop(onStartedLeading: @Sendable () -> Void, onStoppedLeading: @Sendable () -> Void) {
        control.withLock { $0.running = true }
        let clock = ContinuousClock()
        while !isStopped {
            guard step(now: clock.now) else {
                pause(configuration.retryPeriod)
                continue
            }
            onStartedLeading()
            while !isStopped {
                pause(configuration.retryPeriod)
                if isStopped { break }
                _ = step(now: clock.now)
                if !isLeader(at: clock.now) { break }
            }
            let release = isStopped && isLeader(at: clock.now)
            state.withLock { $0.lastRenewal = nil }
            logger.info("stopped leading")
            onStoppedLeading()
            if release { releaseLease() }
        }
    }

    /// Gives the lease up: empty holder, 1 s duration (client-go's release()).
    private func releaseLease() {
        do throws(KubeError) {
            _ = try client.modify(.leases, namespace: configuration.namespace, name: configuration.name, attempts: 2) { lease throws(KubeError) in
                guard try Lease(json: lease).holderIdentity == configuration.identity, case .object(var top) = lease else { return }
                var spec = top["spec"]?.objectValue ?? JSONObject()
                spec["holderIdentity"] = .string("")
                spec["leaseDurationSeconds"] = 1
                top["spec"] = .object(spec)
                lease = .object(top)
            }
        } catch {
            logger.warning("could not release the lease", metadata: ["error": "\(error)"])
        }
    }
}
