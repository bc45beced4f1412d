import BerthKube
import BerthKubeSim
import BerthModel
import BerthTestSupport
import Foundation
import MetricsTestKit
import Synchronization
import Testing

/// Records what an informer's handlers saw, in order.
final class EventLog: Sendable {
    private let entries = Mutex<[String]>([])
    var all: [String] { entries.withLock { $0 } }
    func append(_ entry: String) { entries.withLock { $0.append(entry) } }
    func count(_ prefix: String) -> Int { all.filter { $0.hasPrefix(prefix) }.count }

    var handlers: InformerHandlers {
        InformerHandlers(
            onAdd: { self.append("add \(Self.name($0))") },
            onUpdate: { _, new in self.append("update \(Self.name(new))") },
            onDelete: { self.append("delete \(Self.name($0))") })
    }

    static func name(_ object: JSON) -> String { object["metadata"]?["name"]?.stringValue ?? "?" }
}

@Suite struct WatchTests {
    @Test func rawWatchStreamsEventsAsTheyHappen() throws {
        try withFakeCluster { cluster in
            let list = try cluster.client.list(.nodes)
            let stream = try cluster.client.watch(.nodes, options: WatchOptions(resourceVersion: list.resourceVersion))
            defer { stream.cancel() }
            cluster.server.write(.nodes, ["metadata": ["name": "n1"]])
            let added = try #require(try stream.next())
            #expect(added.kind == .added)
            #expect(EventLog.name(added.object) == "n1")
            cluster.server.sendBookmarks()
            let bookmark = try #require(try stream.next())
            #expect(bookmark.kind == .bookmark)
            #expect(bookmark.resourceVersion == String(cluster.server.resourceVersion))
            cluster.server.remove(.nodes, name: "n1")
            #expect(try stream.next()?.kind == .deleted)
            // A line that is not JSON is a clear decoding error, not a crash.
            cluster.server.sendWatchLine("<<not json>>")
            #expect(performing: { _ = try stream.next() }, throws: { "\($0)".contains("cannot decode watch event") && "\($0)".contains("<<not json>>") })
        }
    }

    @Test func informerSurvivesADroppedConnectionWithoutRelisting() throws {
        try withFakeCluster { cluster in
            cluster.server.write(.pods, pod("before"))
            let informer = Informer(client: cluster.client, resource: .pods, namespace: "default",
                                    backoff: .fast)
            let log = EventLog()
            informer.addHandlers(log.handlers)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            #expect(informer.get("default/before") != nil)

            cluster.server.write(.pods, pod("one"))
            #expect(waitUntil { informer.get("default/one") != nil })
            cluster.server.dropWatches()
            // Written while no watch is open: delivered when the watch resumes from the last version.
            cluster.server.write(.pods, pod("during-outage"))
            cluster.server.remove(.pods, namespace: "default", name: "before")
            #expect(waitUntil { informer.get("default/during-outage") != nil && informer.get("default/before") == nil })
            #expect(informer.listCount == 1)
            #expect(informer.watchCount >= 2)
            #expect(log.all == ["add before", "add one", "add during-outage", "delete before"])
        }
    }

    @Test func informerRelistsAfter410AndReconciles() throws {
        try withFakeCluster { cluster in
            cluster.server.write(.nodes, ["metadata": ["name": "keep"]])
            cluster.server.write(.nodes, ["metadata": ["name": "goes"]])
            let informer = Informer(client: cluster.client, resource: .nodes, backoff: .fast)
            let log = EventLog()
            informer.addHandlers(log.handlers)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })

            // The connection drops; meanwhile history is compacted: resuming gets a 410 ERROR event.
            cluster.server.dropWatches()
            cluster.server.remove(.nodes, name: "goes")
            cluster.server.write(.nodes, ["metadata": ["name": "new"]])
            cluster.server.compactHistory()
            #expect(waitUntil { informer.listCount == 2 && informer.count == 2 })
            #expect(informer.get("new") != nil && informer.get("goes") == nil)
            // The cache is swapped before the handlers hear of it: wait for them, then count.
            #expect(waitUntil { log.count("delete goes") >= 1 && log.count("add new") >= 1 })
            #expect(log.count("delete goes") == 1 && log.count("add new") == 1)
            // And keeps watching after the relist.
            #expect(waitUntil { cluster.server.openWatchCount == 1 })
            cluster.server.write(.nodes, ["metadata": ["name": "after"]])
            #expect(waitUntil { informer.get("after") != nil })
        }
    }

    @Test func bookmarksMoveTheResumePoint() throws {
        try withFakeCluster { cluster in
            let informer = Informer(client: cluster.client, resource: .leases, namespace: "kube-system",
                                    backoff: .fast)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            // Changes elsewhere move the global version; a bookmark tells the informer.
            for index in 0..<3 { cluster.server.write(.nodes, ["metadata": ["name": .string("n\(index)")]]) }
            cluster.server.sendBookmarks()
            let current = String(cluster.server.resourceVersion)
            #expect(waitUntil { informer.resourceVersion == current })
            #expect(cluster.server.requests.contains { $0.contains("allowWatchBookmarks=true") })
        }
    }

    @Test func informerRecoversFromAGarbledLine() throws {
        try withFakeCluster { cluster in
            let informer = Informer(client: cluster.client, resource: .nodes, backoff: .fast)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            cluster.server.sendWatchLine(#"{"type":"ADDED","object":"#)
            #expect(waitUntil { informer.lastError?.contains("cannot decode watch event") == true })
            cluster.server.write(.nodes, ["metadata": ["name": "after-garbage"]])
            #expect(waitUntil { informer.get("after-garbage") != nil })
            #expect(informer.listCount == 1)
        }
    }

    @Test func serverSideWatchTimeoutResumesWithoutRelisting() throws {
        try withFakeCluster { cluster in
            let informer = Informer(client: cluster.client, resource: .nodes, backoff: .fast,
                                    watchTimeoutSeconds: 1)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.watchCount >= 2 })
            #expect(informer.listCount == 1)
            #expect(informer.lastError == nil)
            cluster.server.write(.nodes, ["metadata": ["name": "late"]])
            #expect(waitUntil { informer.get("late") != nil })
        }
    }

    /// Some apiservers (and proxies in front of them) answer an expired watch with HTTP 410
    /// instead of an ERROR event; the informer relists either way. A 500 opening the watch is
    /// retried with backoff, keeping the resume point.
    @Test func http410AndServerErrorsOpeningAWatch() throws {
        try withFakeCluster { cluster in
            let informer = Informer(client: cluster.client, resource: .nodes, backoff: .fast)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            cluster.server.failNext(1, status: 410, pathContains: "/api/v1/nodes")
            cluster.server.dropWatches()
            #expect(waitUntil { informer.listCount == 2 && cluster.server.openWatchCount == 1 })
            cluster.server.failNext(2, status: 500, pathContains: "/api/v1/nodes")
            cluster.server.dropWatches()
            #expect(waitUntil { cluster.server.openWatchCount == 1 && informer.lastError?.contains("500") == true })
            #expect(informer.listCount == 2)
            cluster.server.write(.nodes, ["metadata": ["name": "after"]])
            #expect(waitUntil { informer.get("after") != nil })
        }
    }

    /// The provisioner watches pending pods (`spec.nodeName=`): binding a pod must remove it
    /// from that cache (the watch cache sends DELETED when an object stops matching).
    @Test func selectorWatchSeesObjectsLeaveAndEnter() throws {
        try withFakeCluster { cluster in
            cluster.server.write(.pods, pod("pending", phase: "Pending"))
            let informer = Informer(client: cluster.client, resource: .pods, fieldSelector: "spec.nodeName=",
                                    backoff: .fast)
            let log = EventLog()
            informer.addHandlers(log.handlers)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            #expect(informer.get("default/pending") != nil)
            FakeKubelet(server: cluster.server).registerNode(name: "n1")
            FakeScheduler(server: cluster.server).schedulePendingPods()
            #expect(waitUntil { informer.get("default/pending") == nil })
            cluster.server.write(.pods, pod("new", phase: "Pending"))
            cluster.server.write(.pods, pod("bound-from-start", node: "n1"))
            #expect(waitUntil { informer.get("default/new") != nil })
            #expect(informer.get("default/bound-from-start") == nil)
            #expect(log.all == ["add pending", "delete pending", "add new"])
        }
    }

    /// A proxy that ends every watch at once: the informer waits 800 ms, 1.6 s, 3.2 s ... (with
    /// jitter, capped at 30 s) before each reopening instead of spinning, resumes from its
    /// resourceVersion without relisting, says so in the log at most once per 30 s, and counts the
    /// restarts. Time is the stepping clock's: every wait is exact and nothing sleeps.
    @Test func aWatchClosedAtOnceIsReopenedAfterABackoff() throws {
        try withFakeCluster { cluster in
            cluster.server.write(.nodes, ["metadata": ["name": "n1"]])
            cluster.server.closeWatchesAtOnce(true)
            let clock = SteppingClock()
            let metrics = TestMetrics()
            let logs = LogRecorder()
            let informer = Informer(client: cluster.client, resource: .nodes, clock: clock, random: { 0.5 },
                                    metricsFactory: metrics, logger: logs.logger)
            informer.start()
            #expect(waitUntil { informer.watchCount >= 12 })
            informer.stop()
            let watches = informer.watchCount
            let waits = clock.waits
            // One wait before every reopening, doubling from 0.8 s x 1.25 (the jitter drawn) to the cap.
            #expect(waits.count >= watches - 1)
            let expected: [Duration] = [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32), .seconds(37.5), .seconds(37.5)]
            #expect(Array(waits.prefix(expected.count)) == expected)
            // At most one watch a second over the whole run.
            #expect(clock.now >= .seconds(watches - 1))
            #expect(informer.listCount == 1)
            #expect(informer.get("n1") != nil)
            #expect(cluster.server.requests.filter { $0.contains("watch=true") }.allSatisfy { $0.contains("resourceVersion=2") })
            let restarts = try metrics.expectCounter("berth_kube_informer_watch_restarts_total", [("resource", "nodes"), ("reason", "short")])
            #expect(restarts.totalValue >= Int64(watches - 1))
            // Rate-limited: the first short watch is logged; the next line comes 30 s later and counts what it held back.
            let warnings = logs.all.filter { $0.level == .warning && $0.message.contains("without an event; backing off") }
            #expect(warnings.count >= 1 && warnings.count < waits.count)
            #expect(warnings.first?.metadata["retryIn"] == "1.0 seconds")
            // Waits of 1, 2, 4, 8, 16 s: the next line is at 31 s and says it held back 4.
            #expect(warnings.count >= 2 && warnings[1].metadata["suppressed"] == "4" && warnings[1].metadata["retryIn"] == "32.0 seconds")
        }
    }

    /// A relist after 410 asks for a state not older than the cache's (served from the watch
    /// cache), 500 a page by default; later pages carry only the continue token.
    @Test func relistsArePaginatedAndNotOlderThanTheCache() throws {
        try withFakeCluster { cluster in
            for index in 0..<7 { cluster.server.write(.nodes, ["metadata": ["name": .string("n\(index)")]]) }
            let metrics = TestMetrics()
            let informer = Informer(client: cluster.client, resource: .nodes, backoff: .fast, pageSize: 3, metricsFactory: metrics)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            let known = informer.resourceVersion
            cluster.server.dropWatches()
            cluster.server.write(.nodes, ["metadata": ["name": "n7"]])
            cluster.server.compactHistory()
            #expect(waitUntil { informer.listCount == 2 && cluster.server.openWatchCount == 1 })
            let pages = cluster.server.requests.filter { $0.hasPrefix("GET /api/v1/nodes?") && !$0.contains("watch=true") }
            try #require(pages.count == 6)
            #expect(pages[0] == "GET /api/v1/nodes?limit=3")
            #expect(pages[1].contains("continue=") && !pages[1].contains("resourceVersion"))
            #expect(pages[3] == "GET /api/v1/nodes?limit=3&resourceVersion=\(known)&resourceVersionMatch=NotOlderThan")
            #expect(pages[4].contains("continue=") && !pages[4].contains("resourceVersion"))
            #expect(informer.count == 8)
            let lists = try metrics.expectCounter("berth_kube_informer_lists_total", [("resource", "nodes")])
            let expired = try metrics.expectCounter("berth_kube_informer_watch_restarts_total", [("resource", "nodes"), ("reason", "expired")])
            #expect(lists.totalValue == 2 && expired.totalValue == 1)
        }
    }

    /// The apiserver's ListOptions validation, which the fake shares.
    @Test func resourceVersionMatchIsValidatedAsUpstream() throws {
        try withFakeCluster { cluster in
            // The client never sends a match without a version.
            _ = try cluster.client.list(.nodes, options: ListOptions(resourceVersionMatch: .notOlderThan))
            #expect(performing: { _ = try cluster.client.request("GET", "/api/v1/nodes?resourceVersionMatch=NotOlderThan") },
                    throws: { "\($0)".contains("422 Invalid: ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided") })
            let list = try cluster.client.list(.nodes, options: ListOptions(resourceVersion: "1", resourceVersionMatch: .notOlderThan))
            #expect(list.resourceVersion == String(cluster.server.resourceVersion))
        }
    }

    @Test func stopWithoutStartReturns() throws {
        try withFakeCluster { cluster in
            Informer(client: cluster.client, resource: .nodes).stop()
        }
    }

    @Test func watchTooOldGets410() throws {
        try withFakeCluster { cluster in
            cluster.server.write(.nodes, ["metadata": ["name": "a"]])
            let old = String(cluster.server.resourceVersion - 1)
            cluster.server.compactHistory()
            let stream = try cluster.client.watch(.nodes, options: WatchOptions(resourceVersion: old))
            let event = try #require(try stream.next())
            #expect(event.kind == .error)
            #expect(event.status?.code == 410)
            #expect(try stream.next() == nil)
        }
    }
}

@Suite struct WatchLoadTests {
    /// Thousands of events pushed as fast as the server can: the informer sees every one, in order.
    @Test func informerKeepsUpWithABurst() throws {
        try withFakeCluster { cluster in
            let informer = Informer(client: cluster.client, resource: .pods, backoff: .fast)
            let seen = Atomic<Int>(0)
            informer.addHandlers(InformerHandlers(onAdd: { _ in seen.wrappingAdd(1, ordering: .relaxed) },
                                                  onUpdate: { _, _ in seen.wrappingAdd(1, ordering: .relaxed) }))
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            for index in 0..<3000 {
                cluster.server.write(.pods, pod("p\(index % 500)", labels: ["generation": String(index)]))
            }
            #expect(waitUntil(timeout: .seconds(20)) { seen.load(ordering: .relaxed) == 3000 })
            #expect(informer.count == 500)
            #expect(informer.resourceVersion == String(cluster.server.resourceVersion))
            #expect(informer.listCount == 1 && informer.watchCount == 1)
        }
    }
}
