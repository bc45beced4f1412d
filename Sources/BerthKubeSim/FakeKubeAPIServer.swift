import BerthKube
import BerthModel
import BerthNet
import Foundation
import Logging
import Synchronization

/// **A test double of kube-apiserver**, in process, over BerthNet's TLS server on port 0. It keeps
/// objects in memory with the semantics Berth's client and controllers depend on, each modelled on
/// upstream behaviour (cited where it is implemented):
/// - one global resourceVersion, bumped by every write (etcd's revision); a no-op update does not
///   bump it; `409 Conflict` for an update or precondition carrying a stale resourceVersion, with
///   the Status upstream's NewConflict builds (details name, group, kind = the resource);
/// - merge, strategic merge (the list keys Berth meets) and JSON patches; a JSON patch applied as
///   the apiserver's library does (a null `test` passes on an absent member) and, when it does not
///   apply, upstream's 422 `Invalid` with the library's message as the cause; pods and nodes
///   always carry `spec` and `status`, as the apiserver serialises them;
/// - list with label and field selectors (unsupported fields are a 400 as upstream) and `limit` /
///   `continue` pagination with `remainingItemCount` (pages are served from current state, not from
///   a snapshot: a test double simplification); `resourceVersionMatch` validated as upstream
///   (422 without a resourceVersion or with `continue`; both values are served the current state);
/// - watch (chunked, one JSON event per line) from a resourceVersion, with `allowWatchBookmarks`;
///   with selectors, an object that starts or stops matching is ADDED or DELETED for that watch;
///   and an ERROR event with a 410 Status when the requested version is older than the retained
///   history (`compactHistory()`), as the watch cache answers "too old resource version";
///   `timeoutSeconds` ends the watch cleanly (bookmarks are sent on `sendBookmarks()`, not on a
///   timer as upstream does about once a minute);
/// - status subresources for pods, nodes and PodDisruptionBudgets (the main resource ignores status
///   changes and the reverse);
/// - finalizers + deletionTimestamp: deleting an object with finalizers only marks it; removing
///   the last finalizer deletes it;
/// - `pods/eviction` honouring PodDisruptionBudgets (429 with a DisruptionBudget cause), `pods/binding`;
/// - bearer-token authentication (401) and per-token denial (403).
/// - what kubectl and client-go tools need of a cluster (README, "berth serve --simulated"):
///   discovery, aggregated when asked, and an OpenAPI v3 index (`FakeDiscovery`), Tables (`FakeTables`), core/v1 and
///   events.k8s.io/v1 Events from one store (`FakeEvents`), the protobuf bodies kubectl sends
///   (`FakeProtobuf`), `dryRun=All`, `fieldValidation=Strict` and Pod defaults (`FakeDefaults`);
///   only the resources discovery lists are served (404 otherwise).
/// Not modelled: admission beyond the hook, validation beyond what is listed, graceful pod deletion
/// (pods without finalizers go at once), server-side apply, field managers, protobuf answers, h2.
/// Test hooks: `failNext`, `answerNextRaw`, `beforeRequest`, `closeWatchesAtOnce`, `dropWatches`, `sendWatchLine`, `sendBookmarks`,
/// direct reads/writes (`object`, `write`, `remove`) that behave like another API client.
public final class FakeKubeAPIServer: Sendable {
    public enum TokenAccess: Sendable { case allowed, forbidden }

    public struct Options: Sendable {
        /// Bearer tokens accepted (401 for others, or without one).
        public var tokens: [String: TokenAccess] = ["test-token": .allowed]
        /// When set, TLS requires a client certificate signed by this CA and such a client is
        /// authenticated without a token.
        public var clientCAFile: String?
        /// Watch events kept for resuming; older resourceVersions get 410.
        public var historyLimit = 10_000
        /// Where to listen (0: any free port).
        public var host = "127.0.0.1"
        public var port = 0
        /// A mutating admission step on create (as the apiserver calls webhooks): returns the object
        /// to store, or throws to deny with the error's description (400 Forbidden-style Status).
        public var admission: (@Sendable (KubeResource, JSON) throws -> JSON)?
        /// Serve the API under this path (e.g. "/k8s/clusters/c-1", as a gateway does); "" at the root.
        public var pathPrefix = ""
        public init() {}
    }

    public let port: Int
    public let options: Options
    let state: FakeAPIStore
    private let server: HTTPServer

    /// Starts serving on 127.0.0.1:0 with the given certificate (SAN localhost, 127.0.0.1).
    public init(certificateFile: String, privateKeyFile: String, options: Options = Options()) throws {
        self.options = options
        let state = FakeAPIStore(FakeAPIState(historyLimit: options.historyLimit))
        self.state = state
        var configuration = HTTPServerConfiguration(host: options.host, port: options.port)
        configuration.eventLoopCount = 1
        configuration.idleTimeout = .seconds(60)
        let tls = try TLSContextStore(
            configuration: TLSServerConfiguration(certificateFile: certificateFile, privateKeyFile: privateKeyFile,
                                                  clientCAFile: options.clientCAFile, reloadInterval: .seconds(3600)),
            logger: Logger(label: "fake-apiserver"))
        var logger = Logger(label: "fake-apiserver")
        logger.logLevel = .error
        let responder = FakeAPIResponder(state: state, options: options)
        server = HTTPServer(configuration: configuration, tls: tls, responder: responder, logger: logger)
        port = try server.start()
    }

    public func stop() {
        state.withLock { state in
            state.closeWatches(abort: true)
            state.hooks.removeAll()
        }
        _ = server.shutdown(timeout: .seconds(2))
    }

    public var serverURL: String { "https://127.0.0.1:\(port)" }

    // MARK: - Test hooks

    /// The current global resourceVersion.
    public var resourceVersion: Int { state.withLock { $0.revision } }

    /// Every request seen: "METHOD target".
    public var requests: [String] { state.withLock { $0.requestLog } }

    public var openWatchCount: Int { state.withLock { $0.watchers.filter { !$0.stream.isCancelled }.count } }

    /// The next `count` requests whose path contains `pathContains` get `status` (with a Status body
    /// and, when given, a Retry-After header).
    public func failNext(_ count: Int, status: Int, retryAfter: Int? = nil, pathContains: String = "") {
        state.withLock { $0.failures.append(.init(remaining: count, status: status, retryAfter: retryAfter, pathContains: pathContains, raw: nil)) }
    }

    /// The next request whose path contains `pathContains` gets exactly this status and body
    /// (malformed answers: truncated JSON, wrong types).
    public func answerNextRaw(status: Int, body: String, pathContains: String = "") {
        state.withLock { $0.failures.append(.init(remaining: 1, status: status, retryAfter: nil, pathContains: pathContains, raw: Array(body.utf8))) }
    }

    /// Runs `action` each time (at most `times`) a request with this method whose path contains
    /// `pathContains` arrives, before the request is served: another client's write landing just
    /// ahead of it (a race made deterministic). The action may use the other hooks (`modify`, ...).
    public func beforeRequest(method: String, pathContains: String, times: Int = .max, _ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.hooks.append(.init(method: method, pathContains: pathContains, remaining: times, action: action)) }
    }

    /// While on, every watch is answered 200 and ended at once without an event, as a proxy or
    /// load balancer with a short idle timeout in front of the apiserver does.
    public func closeWatchesAtOnce(_ on: Bool) { state.withLock { $0.closeWatchesAtOnce = on } }

    /// Drops every watch connection without ending the chunked body (a network failure).
    public func dropWatches() { state.withLock { $0.closeWatches(abort: true) } }

    /// Forgets watch history: resuming from any resourceVersion before now gets 410.
    public func compactHistory() { state.withLock { $0.compact() } }

    /// Sends a BOOKMARK with the current resourceVersion to every watch that asked for them.
    public func sendBookmarks() { state.withLock { $0.sendBookmarks() } }

    /// Sends a raw line (e.g. not JSON) to every open watch.
    public func sendWatchLine(_ line: String) {
        state.withLock { state in
            for watcher in state.watchers { watcher.stream.push(Array((line + "\n").utf8)) }
        }
    }

    public func object(_ resource: KubeResource, namespace: String? = nil, name: String) -> JSON? {
        state.withLock { $0.objects[resource.qualifiedName]?[FakeAPIState.key(namespace, name)] }
    }

    public func objects(_ resource: KubeResource) -> [JSON] {
        state.withLock { state in
            (state.objects[resource.qualifiedName] ?? [:]).sorted { $0.key < $1.key }.map(\.value)
        }
    }

    /// Creates or replaces an object as another client would (new resourceVersion, watch event).
    @discardableResult
    public func write(_ resource: KubeResource, _ object: JSON) -> JSON {
        state.withLock { $0.upsert(resource, object) }
    }

    /// Changes an object in place as another client would; nil when it does not exist.
    @discardableResult
    public func modify(_ resource: KubeResource, namespace: String? = nil, name: String, _ change: (inout JSON) -> Void) -> JSON? {
        state.withLock { state in
            guard var object = state.objects[resource.qualifiedName]?[FakeAPIState.key(namespace, name)] else { return nil }
            change(&object)
            return state.upsert(resource, object)
        }
    }

    /// Deletes an object outright (ignoring finalizers), as garbage collection would.
    public func remove(_ resource: KubeResource, namespace: String? = nil, name: String) {
        state.withLock { $0.removeObject(resource, key: FakeAPIState.key(namespace, name)) }
    }
}

/// The state shared by the server's hooks and its responder.
final class FakeAPIStore: Sendable {
    private let mutex: Mutex<FakeAPIState>
    init(_ state: consuming FakeAPIState) { mutex = Mutex(state) }
    func withLock<T>(_ body: (inout FakeAPIState) throws -> T) rethrows -> T { try mutex.withLock { try body(&$0) } }
}

/// All mutable state, behind one lock: writes and watch fan-out happen atomically, so a watch
/// registered at resourceVersion N sees every event after N exactly once.
struct FakeAPIState: ~Copyable {
    struct Failure {
        var remaining: Int
        var status: Int
        var retryAfter: Int?
        var pathContains: String
        var raw: [UInt8]?
    }
    struct HistoryEntry {
        var revision: Int
        var resource: String
        var type: String
        var object: JSON
        /// The object before this change (nil for ADDED), for selector transitions.
        var previous: JSON?
    }
    struct Watcher {
        var resource: String
        var namespace: String?
        var labels: FakeLabelSelector?
        var fields: FakeFieldSelector?
        var bookmarks: Bool
        var kind: String
        var apiVersion: String
        var stream: HTTPBodyStream
        /// Events watched through core/v1: shown (and selected) in the core shape.
        var coreEvents = false
        /// A watch asking for Tables (`kubectl get -w`): each event's object is a one-row Table of
        /// this resource, with rows carrying what `includeObject` asks.
        var table: (resource: KubeResource, include: String)?
    }

    var revision = 1
    var objects: [String: [String: JSON]] = [:]
    var history: [HistoryEntry] = []
    /// Watches may resume from any revision >= this.
    var oldestResumable = 1
    let historyLimit: Int
    var watchers: [Watcher] = []
    var failures: [Failure] = []
    var requestLog: [String] = []
    var uidCounter = 0
    var closeWatchesAtOnce = false
    struct Hook {
        var method: String
        var pathContains: String
        var remaining: Int
        var action: @Sendable () -> Void
    }
    var hooks: [Hook] = []

    init(historyLimit: Int) { self.historyLimit = historyLimit }

    static func key(_ namespace: String?, _ name: String) -> String {
        guard let namespace, !namespace.isEmpty else { return name }
        return "\(namespace)/\(name)"
    }

    static func key(of object: JSON) -> String {
        key(object["metadata"]?["namespace"]?.stringValue, object["metadata"]?["name"]?.stringValue ?? "")
    }

    mutating func nextUID() -> String {
        uidCounter += 1
        let hex = String(uidCounter, radix: 16).leftPad(12)
        return "00000000-0000-4000-8000-\(hex)"
    }

    mutating func bump() -> Int {
        revision += 1
        return revision
    }

    /// Stores `object` under a new revision and tells watchers (`type` ADDED/MODIFIED/DELETED).
    mutating func record(_ resource: KubeResource, _ object: JSON, type: String) -> JSON {
        let revision = bump()
        var stored = object
        setMeta(&stored, "resourceVersion", .string(String(revision)))
        // Pods and nodes always carry spec and status (Go structs, never omitted when empty).
        if resource == .pods || resource == .nodes {
            for field in ["spec", "status"] where stored[field] == nil { setTop(&stored, field, .object([:])) }
        }
        let key = Self.key(of: stored)
        let previous = objects[resource.qualifiedName]?[key]
        if type == "DELETED" {
            objects[resource.qualifiedName]?[key] = nil
        } else {
            objects[resource.qualifiedName, default: [:]][key] = stored
        }
        history.append(HistoryEntry(revision: revision, resource: resource.qualifiedName, type: type, object: stored, previous: previous))
        if history.count > historyLimit {
            let dropped = history.count - historyLimit
            oldestResumable = history[dropped - 1].revision
            history.removeFirst(dropped)
        }
        notify(resource.qualifiedName, type: type, object: stored, previous: previous)
        return stored
    }

    /// Server-side create-or-replace for test hooks.
    mutating func upsert(_ resource: KubeResource, _ object: JSON) -> JSON {
        var object = object
        let key = Self.key(of: object)
        let existing = objects[resource.qualifiedName]?[key]
        if object["kind"] == nil { setTop(&object, "kind", .string(resource.kind)) }
        if object["apiVersion"] == nil { setTop(&object, "apiVersion", .string(resource.apiVersion)) }
        if let existing {
            setMeta(&object, "uid", existing["metadata"]?["uid"] ?? .string(nextUID()))
            setMeta(&object, "creationTimestamp", existing["metadata"]?["creationTimestamp"] ?? .string(RFC3339.string(Date())))
            if let deletion = existing["metadata"]?["deletionTimestamp"] { setMeta(&object, "deletionTimestamp", deletion) }
        } else {
            if object["metadata"]?["uid"] == nil { setMeta(&object, "uid", .string(nextUID())) }
            if object["metadata"]?["creationTimestamp"] == nil { setMeta(&object, "creationTimestamp", .string(RFC3339.string(Date()))) }
        }
        // Removing the last finalizer of an object being deleted deletes it (upstream registry
        // store: deletion completes when finalizers are empty).
        if existing?["metadata"]?["deletionTimestamp"] != nil && (object["metadata"]?["finalizers"]?.arrayValue ?? []).isEmpty {
            return record(resource, object, type: "DELETED")
        }
        return record(resource, object, type: existing == nil ? "ADDED" : "MODIFIED")
    }

    mutating func removeObject(_ resource: KubeResource, key: String) {
        guard let object = objects[resource.qualifiedName]?[key] else { return }
        _ = record(resource, object, type: "DELETED")
    }

    func notify(_ resource: String, type: String, object: JSON, previous: JSON?) {
        for watcher in watchers where watcher.resource == resource {
            if let (eventType, eventObject) = watcher.translate(type: type, object: object, previous: previous) {
                watcher.stream.push(Self.eventLine(type: eventType, object: watcher.output(eventObject)))
            }
        }
    }

    static func eventLine(type: String, object: JSON) -> [UInt8] {
        var line = JSONWriter.bytes(["type": .string(type), "object": object])
        line.append(10)
        return line
    }

    mutating func compact() {
        history.removeAll()
        oldestResumable = revision
    }

    mutating func sendBookmarks() {
        watchers.removeAll { $0.stream.isCancelled }
        for watcher in watchers where watcher.bookmarks {
            let bookmark: JSON = ["kind": .string(watcher.kind), "apiVersion": .string(watcher.apiVersion),
                                  "metadata": ["resourceVersion": .string(String(revision))]]
            watcher.stream.push(Self.eventLine(type: "BOOKMARK", object: bookmark))
        }
    }

    mutating func closeWatches(abort: Bool) {
        for watcher in watchers { if abort { watcher.stream.abort() } else { watcher.stream.finish() } }
        watchers.removeAll()
    }
}

extension FakeAPIState.Watcher {
    /// What a watcher with selectors sees of a change, as the apiserver's watch cache decides
    /// (k8s.io/apiserver storage/cacher cacheWatcher.convertToWatchEvent): an object that starts
    /// matching is ADDED, one that stops matching is DELETED (the previous object at the new
    /// resourceVersion), one that matches before and after is MODIFIED.
    func translate(type: String, object: JSON, previous: JSON?) -> (String, JSON)? {
        let previousPasses = previous.map(matches) ?? false
        if type == "DELETED" {
            return previousPasses || matches(object) ? ("DELETED", object) : nil
        }
        switch (matches(object), previousPasses) {
        case (true, true): return ("MODIFIED", object)
        case (true, false): return ("ADDED", object)
        case (false, true):
            var gone = previous!
            setMeta(&gone, "resourceVersion", object["metadata"]?["resourceVersion"])
            return ("DELETED", gone)
        case (false, false): return nil
        }
    }

    func matches(_ object: JSON) -> Bool {
        if let namespace, object["metadata"]?["namespace"]?.stringValue != namespace { return false }
        if let labels, !labels.matches(object.labels) { return false }
        if let fields, !fields.matches(view(object)) { return false }
        return true
    }

    /// The object as this watch's client sees it (for selection).
    func view(_ object: JSON) -> JSON { coreEvents ? FakeEvents.toCore(object) : object }

    /// What an event carries: the object as seen, or its one-row Table.
    func output(_ object: JSON) -> JSON {
        let seen = view(object)
        guard let table else { return seen }
        return FakeTables.table(table.resource, [seen], include: table.include,
                                resourceVersion: seen["metadata"]?["resourceVersion"]?.stringValue ?? "", continueToken: nil)
    }
}

func setMeta(_ object: inout JSON, _ key: String, _ value: JSON?) {
    guard case .object(var top) = object else { return }
    var meta = top["metadata"]?.objectValue ?? JSONObject()
    meta[key] = value
    top["metadata"] = .object(meta)
    object = .object(top)
}

func setTop(_ object: inout JSON, _ key: String, _ value: JSON?) {
    guard case .object(var top) = object else { return }
    top[key] = value
    object = .object(top)
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
