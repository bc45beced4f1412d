import BerthModel
import CoreMetrics
import Dispatch
import Foundation
import Logging
import Synchronization

/// What an informer tells its handlers (on the informer's thread, in event order).
public struct InformerHandlers: Sendable {
    public var onAdd: @Sendable (JSON) -> Void
    public var onUpdate: @Sendable (_ old: JSON, _ new: JSON) -> Void
    public var onDelete: @Sendable (JSON) -> Void

    public init(onAdd: @escaping @Sendable (JSON) -> Void = { _ in },
                onUpdate: @escaping @Sendable (JSON, JSON) -> Void = { _, _ in },
                onDelete: @escaping @Sendable (JSON) -> Void = { _ in }) {
        self.onAdd = onAdd
        self.onUpdate = onUpdate
        self.onDelete = onDelete
    }
}

/// A local cache of one resource kept current by list + watch (client-go's Reflector + Store):
/// list once (paginated, 500 a page), then watch from the list's resourceVersion with bookmarks;
/// after a dropped connection resume from the last resourceVersion seen; after 410 Gone (the
/// server no longer has that history) list again — `resourceVersionMatch=NotOlderThan` the last
/// version seen, so the cache never goes back in time — and reconcile the cache, telling handlers
/// what changed. Failed lists and watches, and watches that end at once without an event, are
/// retried after an exponential backoff with jitter (``WatchBackoff``), logged at most once per
/// `logInterval`, and counted (`berth_kube_informer_lists_total`,
/// `berth_kube_informer_watch_restarts_total{reason}`).
/// With a `selection`, the cache holds only the parts of each object it names — decoded from the
/// list pages and the watch stream without building the rest (`JSONTape`) — so a cluster's
/// managedFields, env and container statuses cost nothing resident. The selection must keep
/// `metadata.name`, `namespace` and `resourceVersion`; handlers see the projections.
/// Runs on its own thread; reads (`get`, `list`) never touch the network.
public final class Informer: Sendable {
    public let resource: KubeResource
    private let client: KubeClient
    private let namespace: String?
    private let labelSelector: String?
    private let fieldSelector: String?
    private let logger: Logger
    private let backoff: WatchBackoff
    private let clock: any InformerClock
    private let random: @Sendable () -> Double
    private let metrics: InformerMetrics
    private let watchTimeoutSeconds: Int
    private let pageSize: Int
    private let selection: JSONSelection?

    private struct State {
        var store: [String: Stored] = [:]
        var resourceVersion = ""
        var synced = false
        var stopped = false
        var handlers: [InformerHandlers] = []
        var stream: WatchStream?
        var lists = 0
        var watches = 0
        var lastError: String?
        var started = false
        var throttle: LogThrottle
        /// Waits taken before a list or watch, in order (for tests and the log).
        var waits: [Duration] = []
    }
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    public init(client: KubeClient, resource: KubeResource, namespace: String? = nil,
                labelSelector: String? = nil, fieldSelector: String? = nil,
                backoff: WatchBackoff = WatchBackoff(), clock: any InformerClock = SystemInformerClock(),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                watchTimeoutSeconds: Int = 300, pageSize: Int = 500, logInterval: Duration = .seconds(30),
                selecting selection: JSONSelection? = nil,
                metricsFactory: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "berth.kube.informer")) {
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.backoff = backoff
        self.clock = clock
        self.random = random
        self.metrics = InformerMetrics(resource: resource, factory: metricsFactory)
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.pageSize = pageSize
        self.selection = selection
        state = Mutex(State(throttle: LogThrottle(interval: logInterval)))
        var logger = logger
        logger[metadataKey: "resource"] = "\(resource)"
        self.logger = logger
    }

    public func addHandlers(_ handlers: InformerHandlers) {
        state.withLock { $0.handlers.append(handlers) }
    }

    /// True once the first list is in the cache.
    public var hasSynced: Bool { state.withLock { $0.synced } }
    public var resourceVersion: String { state.withLock { $0.resourceVersion } }
    /// Lists done (1 + one per 410 Gone) and watches opened, for tests and metrics.
    public var listCount: Int { state.withLock { $0.lists } }
    public var watchCount: Int { state.withLock { $0.watches } }
    public var lastError: String? { state.withLock { $0.lastError } }
    /// The backoff waits taken so far, in order.
    public var waits: [Duration] { state.withLock { $0.waits } }

    /// The cached object at `namespace/name` (or `name` when cluster-scoped).
    public func get(_ key: String) -> JSON? { state.withLock { $0.store[key] }?.json }
    public func list() -> [JSON] { state.withLock { Array($0.store.values) }.map(\.json) }
    public var count: Int { state.withLock { $0.store.count } }
    /// Every cached object's key and resourceVersion, without decoding any: a reader that keeps
    /// its own derived cache asks `get` only for what changed.
    public func resourceVersions() -> [(key: String, resourceVersion: String)] {
        state.withLock { state in state.store.map { ($0.key, $0.value.resourceVersion) } }
    }

    /// One cached object: the whole tree, or with a selection its projection as compact JSON
    /// bytes (one allocation, about a tenth of the tree's size), decoded when read.
    struct Stored: Sendable {
        var resourceVersion: String
        private var whole: JSON?
        private var bytes: [UInt8]

        init(_ object: JSON, resourceVersion: String, compact: Bool) {
            self.resourceVersion = resourceVersion
            if compact {
                whole = nil
                bytes = JSONWriter.bytes(object)
            } else {
                whole = object
                bytes = []
            }
        }

        var json: JSON { whole ?? (try? JSONParser.parse(bytes)) ?? .null }
    }

    public func start() {
        let first = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        let thread = Thread { [self] in
            run()
            done.signal()
        }
        thread.name = "berth-informer-\(resource.plural)"
        thread.start()
    }

    /// Stops the watch and waits for the thread to finish.
    public func stop() {
        let (stream, started) = state.withLock { state -> (WatchStream?, Bool) in
            let first = !state.stopped
            state.stopped = true
            return (state.stream, state.started && first)
        }
        stream?.cancel()
        wake.signal()
        if started { done.wait() }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func run() {
        var needList = true
        var failures = 0
        while !stopped {
            if needList {
                do throws(KubeError) {
                    try relist()
                    needList = false
                    failures = 0
                } catch {
                    failures += 1
                    pause(failures, after: "list failed", error: error)
                    continue
                }
            }
            switch watchOnce() {
            case .ended:
                failures = 0  // the server's timeout: resume at once
                metrics.restarted(.timeout)
            case .short(let lasted):
                failures += 1
                metrics.restarted(.short)
                pause(failures, after: "watch closed after \(lasted) without an event", error: nil)
            case .gone:
                needList = true
                failures = 0
                metrics.restarted(.expired)
            case .failed(let what, let error):
                failures += 1
                metrics.restarted(.error)
                pause(failures, after: what, error: error)
            case .stopped:
                return
            }
        }
    }

    private enum Outcome {
        case ended
        /// Ended on its own before `backoff.minimumWatch` without any event.
        case short(Duration)
        case gone
        case failed(String, KubeError)
        case stopped
    }

    private func watchOnce() -> Outcome {
        let resourceVersion = state.withLock { $0.resourceVersion }
        let options = WatchOptions(resourceVersion: resourceVersion, labelSelector: labelSelector, fieldSelector: fieldSelector,
                                   allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds)
        let opened = clock.now
        let stream: WatchStream
        do throws(KubeError) {
            stream = try client.watch(resource, namespace: namespace, options: options,
                                      readTimeout: .seconds(watchTimeoutSeconds + 30))
        } catch {
            if error.isGone { return .gone }
            return .failed("watch failed", error)
        }
        let cancelledEarly = state.withLock { state -> Bool in
            state.watches += 1
            if state.stopped { return true }
            state.stream = stream
            return false
        }
        defer { state.withLock { $0.stream = nil } }
        if cancelledEarly { stream.cancel(); return .stopped }
        var events = 0
        while true {
            let event: WatchEvent?
            do throws(KubeError) {
                event = try stream.next(selecting: selection)
            } catch {
                stream.cancel()
                return stopped ? .stopped : .failed("watch interrupted", error)
            }
            guard let event else {
                if stopped { return .stopped }
                let lasted = clock.now - opened
                return events == 0 && lasted < backoff.minimumWatch ? .short(lasted) : .ended
            }
            events += 1
            switch event.kind {
            case .error:
                let status = event.status
                stream.cancel()
                if status?.code == 410 {
                    logger.info("watch history expired; relisting", metadata: ["message": "\(status?.message ?? "")"])
                    return .gone
                }
                return .failed("watch error event", KubeError.watch("ERROR event: \(status?.message ?? "\(event.object)")"))
            case .bookmark:
                state.withLock { $0.resourceVersion = event.resourceVersion }
            case .added, .modified, .deleted:
                apply(event)
            }
        }
    }

    private func apply(_ event: WatchEvent) {
        guard let meta = try? ObjectMeta(json: event.object["metadata"]) else {
            logger.warning("watch event without usable metadata ignored")
            return
        }
        let key = meta.key
        let stored = Stored(event.object, resourceVersion: meta.resourceVersion, compact: selection != nil)
        let (handlers, previous) = state.withLock { state -> ([InformerHandlers], Stored?) in
            let old = state.store[key]
            if event.kind == .deleted { state.store[key] = nil } else { state.store[key] = stored }
            if !meta.resourceVersion.isEmpty { state.resourceVersion = meta.resourceVersion }
            return (state.handlers, old)
        }
        let old = handlers.isEmpty ? nil : previous?.json
        for handler in handlers {
            switch (event.kind, old) {
            case (.deleted, _): handler.onDelete(event.object)
            case (_, let old?): handler.onUpdate(old, event.object)
            case (_, nil): handler.onAdd(event.object)
            }
        }
    }

    /// Lists everything and reconciles the cache with it (a relist after 410 reports the
    /// differences as add/update/delete, like client-go's DeltaFIFO Replace).
    private func relist() throws(KubeError) {
        // The first list reads the latest state; later ones ask for a state not older than what
        // the cache has (servable from the apiserver's watch cache, never a step back in time).
        let known = state.withLock { $0.resourceVersion }
        var options = ListOptions(labelSelector: labelSelector, fieldSelector: fieldSelector)
        if !known.isEmpty {
            options.resourceVersion = known
            options.resourceVersionMatch = .notOlderThan
        }
        // Built page by page: the whole list is never held as trees.
        var fresh: [String: Stored] = [:]
        let compact = selection != nil
        let listVersion = try client.listEachPage(resource, namespace: namespace, options: options, pageSize: pageSize, selecting: selection,
                                                  restart: { fresh.removeAll() }) { (page: ObjectList) throws(KubeError) -> Void in
            if fresh.isEmpty { fresh.reserveCapacity(page.items.count + (page.remainingItemCount ?? 0)) }
            for item in page.items {
                let meta = try ObjectMeta(json: item["metadata"])
                fresh[meta.key] = Stored(item, resourceVersion: meta.resourceVersion, compact: compact)
            }
        }
        let (handlers, old) = state.withLock { state -> ([InformerHandlers], [String: Stored]) in
            let old = state.store
            state.store = fresh
            state.resourceVersion = listVersion
            state.synced = true
            state.lists += 1
            return (state.handlers, old)
        }
        metrics.listed()
        if !known.isEmpty {
            logger.info("relisted", metadata: ["objects": "\(fresh.count)", "resourceVersion": "\(listVersion)"])
        }
        for handler in handlers {
            for (key, object) in fresh {
                if let previous = old[key] {
                    if previous.resourceVersion != object.resourceVersion { handler.onUpdate(previous.json, object.json) }
                } else {
                    handler.onAdd(object.json)
                }
            }
            for (key, object) in old where fresh[key] == nil { handler.onDelete(object.json) }
        }
    }

    /// Records the failure, logs it (rate-limited) and waits the backoff (`stop()` interrupts).
    private func pause(_ failures: Int, after what: String, error: KubeError?) {
        let wait = backoff.delay(failures: failures, random: random())
        let now = clock.now
        let (allowed, suppressed) = state.withLock { state -> (Bool, Int) in
            if let error { state.lastError = "\(error)" }
            state.waits.append(wait)
            return state.throttle.allow(at: now)
        }
        if allowed {
            var metadata: Logger.Metadata = ["failures": "\(failures)", "retryIn": "\(wait)"]
            if let error { metadata["error"] = "\(error)" }
            if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
            logger.warning("\(what); backing off", metadata: metadata)
        }
        if !stopped { clock.wait(wait, interrupt: wake) }
    }
}
