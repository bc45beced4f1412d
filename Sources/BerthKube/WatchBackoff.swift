import BerthModel
import CoreMetrics
import Dispatch

/// Time as an informer's thread sees it: a monotonic reading and a wait that `stop()` can cut
/// short. Injected so that tests step time instead of sleeping (the informer runs on a thread of
/// its own, so the async `Clock` protocol does not fit).
public protocol InformerClock: Sendable {
    /// Monotonic time since an arbitrary origin.
    var now: Duration { get }
    /// Waits `duration`, or less when `interrupt` is signalled.
    func wait(_ duration: Duration, interrupt: DispatchSemaphore)
}

/// The real clock (the continuous clock; waits block the thread on the semaphore).
public struct SystemInformerClock: InformerClock {
    private let origin = ContinuousClock.now
    public init() {}
    public var now: Duration { ContinuousClock.now - origin }
    public func wait(_ duration: Duration, interrupt: DispatchSemaphore) {
        guard duration > .zero else { return }
        _ = interrupt.wait(timeout: .now() + duration.seconds)
    }
}

/// When an informer waits before opening its next watch (client-go's reflector: exponential
/// backoff with jitter after a failed or very short watch, reset once a watch works).
///
/// A watch is *short* when it ended on its own before `minimumWatch` without delivering a single
/// event: a proxy or load balancer closing every watch at once, an apiserver shutting down. Short
/// and failed watches (and failed lists) count as failures; the n-th failure in a row waits
/// `initial * 2^(n-1)` capped at `cap`, stretched by up to `jitter` (0.5: up to 50 % longer) so that
/// many clients do not come back in step. A watch that lasted or delivered events resets the count
/// and the next one opens at once (the server's own `timeoutSeconds` ends healthy watches).
public struct WatchBackoff: Sendable, Equatable {
    public var initial: Duration
    public var cap: Duration
    public var jitter: Double
    public var minimumWatch: Duration

    /// client-go's reflector defaults: 800 ms doubling to 30 s; a watch under 1 s with no events is short.
    public init(initial: Duration = .milliseconds(800), cap: Duration = .seconds(30), jitter: Double = 0.5,
                minimumWatch: Duration = .seconds(1)) {
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self.minimumWatch = minimumWatch
    }

    /// The wait after `failures` failures in a row (>= 1); `random` in [0, 1).
    public func delay(failures: Int, random: Double) -> Duration {
        let doublings = min(max(0, failures - 1), 30)
        let base = min(cap.seconds, initial.seconds * Double(1 << doublings))
        let stretched = base * (1 + jitter * min(max(random, 0), 1))
        return .nanoseconds(Int64(min(stretched, cap.seconds * (1 + jitter)) * 1e9))
    }
}

/// Lets a repeated warning through at most once per `interval`, counting what it held back.
struct LogThrottle {
    let interval: Duration
    private var last: Duration?
    private(set) var suppressed = 0

    init(interval: Duration) { self.interval = interval }

    /// True when a line may be logged now; then `suppressed` tells how many were held back before it.
    mutating func allow(at now: Duration) -> (allowed: Bool, suppressed: Int) {
        if let last, now - last < interval {
            suppressed += 1
            return (false, 0)
        }
        last = now
        defer { suppressed = 0 }
        return (true, suppressed)
    }
}

/// An informer's Prometheus series (through swift-metrics).
struct InformerMetrics: Sendable {
    enum Restart: String, CaseIterable {
        /// The server ended a healthy watch (its timeoutSeconds).
        case timeout
        /// The watch ended on its own at once without events (a proxy closing it).
        case short
        /// The watch could not be opened or broke (transport, decoding, ERROR event).
        case error
        /// The server no longer has the history to resume from (410): a relist follows.
        case expired
    }
    private let relists: CoreMetrics.Counter
    private let restarts: [Restart: CoreMetrics.Counter]

    init(resource: KubeResource, factory: (any MetricsFactory)?) {
        let factory: any MetricsFactory = factory ?? MetricsSystem.factory
        let name = resource.qualifiedName
        relists = CoreMetrics.Counter(label: "berth_kube_informer_lists_total", dimensions: [("resource", name)], factory: factory)
        var restarts: [Restart: CoreMetrics.Counter] = [:]
        for reason in Restart.allCases {
            restarts[reason] = CoreMetrics.Counter(label: "berth_kube_informer_watch_restarts_total",
                                                   dimensions: [("resource", name), ("reason", reason.rawValue)], factory: factory)
        }
        self.restarts = restarts
    }

    func listed() { relists.increment() }
    func restarted(_ reason: Restart) { restarts[reason]?.increment() }
}
