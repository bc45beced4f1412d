import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import Foundation
import Synchronization
import Testing

@Suite struct ClientTests {
    @Test func createGetUpdateDeleteOverTLS() throws {
        try withFakeCluster { cluster in
            let client = cluster.client
            let created = try client.create(.pods, namespace: "default", pod("a", labels: ["app": "x"]))
            let meta = try ObjectMeta(json: created["metadata"])
            #expect(meta.namespace == "default")
            #expect(!meta.uid.isEmpty)
            #expect(Int(meta.resourceVersion)! > 1)

            let fetched = try Pod(json: try client.get(.pods, namespace: "default", name: "a"))
            #expect(fetched.metadata.labels == ["app": "x"])
            #expect(fetched.isReady)

            #expect(performing: { _ = try client.create(.pods, namespace: "default", pod("a")) },
                    throws: { ($0 as? KubeError)?.isAlreadyExists == true })
            #expect(performing: { _ = try client.get(.pods, namespace: "default", name: "missing") },
                    throws: { error in
                        guard let error = error as? KubeError, error.isNotFound else { return false }
                        return "\(error)".contains("pods \"missing\" not found")
                    })

            try client.delete(.pods, namespace: "default", name: "a")
            #expect(cluster.server.object(.pods, namespace: "default", name: "a") == nil)
            // Keep-alive: every call above went over one connection.
            #expect(client.connectionsOpened == 1)
        }
    }

    @Test func staleUpdateIsAConflictAndModifyRetries() throws {
        try withFakeCluster { cluster in
            let client = cluster.client
            let created = try client.create(.nodes, namespace: nil, ["metadata": ["name": "n1", "labels": ["a": "1"]]])
            // Another writer changes the node after our read.
            cluster.server.modify(.nodes, name: "n1") { setLabel(&$0, "other", "yes") }
            #expect(performing: { _ = try client.update(.nodes, created) }, throws: { error in
                guard let error = error as? KubeError, error.isConflict else { return false }
                return "\(error)".contains("the object has been modified")
            })
            // modify() rereads and retries: one concurrent write on the first attempt.
            let attempts = Atomic<Int>(0)
            let server = cluster.server
            let result = try client.modify(.nodes, name: "n1") { object throws(KubeError) in
                if attempts.wrappingAdd(1, ordering: .relaxed).newValue == 1 {
                    server.modify(.nodes, name: "n1") { setLabel(&$0, "racer", "1") }
                }
                setLabel(&object, "berth", "mine")
            }
            #expect(attempts.load(ordering: .relaxed) == 2)
            let labels = try ObjectMeta(json: result["metadata"]).labels
            #expect(labels["berth"] == "mine" && labels["racer"] == "1" && labels["other"] == "yes")
        }
    }

    @Test func listWithSelectorsAndPagination() throws {
        try withFakeCluster { cluster in
            for index in 0..<25 {
                cluster.server.write(.pods, pod("p\(String(index).leftPadded(2))", labels: ["gpu": index % 2 == 0 ? "yes" : "no"],
                                                node: index < 5 ? "node-a" : nil))
            }
            cluster.server.write(.pods, pod("other-ns", namespace: "team", labels: ["gpu": "yes"]))
            let client = cluster.client
            let first = try client.list(.pods, namespace: "default", options: ListOptions(limit: 10))
            #expect(first.items.count == 10)
            #expect(!first.continueToken.isEmpty)
            #expect(first.remainingItemCount == 15)
            let second = try client.list(.pods, namespace: "default", options: ListOptions(limit: 10, continueToken: first.continueToken))
            #expect(try second.items.map { try ObjectMeta(json: $0["metadata"]).name }.first == "p10")
            #expect(second.resourceVersion == first.resourceVersion)

            let all = try client.listAll(.pods, namespace: "default", pageSize: 7)
            #expect(all.items.count == 25)
            #expect(Set(try all.items.map { try ObjectMeta(json: $0["metadata"]).name }).count == 25)
            #expect(cluster.server.requests.filter { $0.contains("limit=7") }.count == 4)

            #expect(try client.listAll(.pods, options: ListOptions(labelSelector: "gpu=yes")).items.count == 14)
            #expect(try client.listAll(.pods, namespace: "default", options: ListOptions(labelSelector: "gpu in (yes),gpu!=no")).items.count == 13)
            #expect(try client.list(.pods, options: ListOptions(fieldSelector: "spec.nodeName=node-a")).items.count == 5)
            #expect(try client.list(.pods, options: ListOptions(fieldSelector: "metadata.namespace!=default")).items.count == 1)
            #expect(performing: { _ = try client.list(.pods, options: ListOptions(fieldSelector: "spec.secret=x")) },
                    throws: { ($0 as? KubeError)?.statusCode == 400 && "\($0)".contains("field label not supported") })

            // A continue token from before a compaction is 410 Expired, as upstream.
            let page = try client.list(.pods, namespace: "default", options: ListOptions(limit: 5))
            cluster.server.write(.pods, pod("late"))
            cluster.server.compactHistory()
            #expect(performing: { _ = try client.list(.pods, namespace: "default", options: ListOptions(limit: 5, continueToken: page.continueToken)) },
                    throws: { ($0 as? KubeError)?.isGone == true })
        }
    }

    @Test func evictionBlockedByADisruptionBudget() throws {
        try withFakeCluster { cluster in
            let client = cluster.client
            for name in ["web-1", "web-2"] { cluster.server.write(.pods, pod(name, labels: ["app": "web"])) }
            cluster.server.write(.pods, pod("web-3", labels: ["app": "web"], ready: false))
            cluster.server.write(.pods, pod("lonely", labels: ["app": "solo"]))
            _ = try client.create(.podDisruptionBudgets, namespace: "default", [
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": ["name": "web-pdb"], "spec": ["minAvailable": 2, "selector": ["matchLabels": ["app": "web"]]],
            ])
            // 2 healthy, 2 needed: evicting a healthy pod is refused with 429 and the budget named.
            #expect(performing: { try client.evict(namespace: "default", name: "web-1") }, throws: { error in
                guard case KubeError.evictionBlocked(let status, "default", "web-1") = error else { return false }
                return status.code == 429 && status.causes.first == "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
            })
            #expect(cluster.server.object(.pods, namespace: "default", name: "web-1") != nil)
            // An unready pod goes (the budget is met without it); so does a pod no budget covers.
            try client.evict(namespace: "default", name: "web-3")
            try client.evict(namespace: "default", name: "lonely")
            #expect(cluster.server.object(.pods, namespace: "default", name: "web-3") == nil)
            #expect(cluster.server.object(.pods, namespace: "default", name: "lonely") == nil)
            // Eviction is never retried by the client: one request per call.
            #expect(cluster.server.requests.filter { $0.contains("web-1/eviction") }.count == 1)
            // Budget relaxed: the eviction passes.
            _ = try client.patch(.podDisruptionBudgets, namespace: "default", name: "web-pdb", ["spec": ["minAvailable": 1]])
            try client.evict(namespace: "default", name: "web-1")
            #expect(performing: { try client.evict(namespace: "default", name: "web-2") }, throws: { $0 is KubeError })
        }
    }

    @Test func finalizersPreconditionsAndStatus() throws {
        try withFakeCluster { cluster in
            let client = cluster.client
            let node = try client.create(.nodes, namespace: nil, ["metadata": ["name": "gpu-1", "finalizers": ["berth.dev/termination"]],
                                                        "spec": ["providerID": "aws:///us-east-1a/i-1"]])
            let meta = try ObjectMeta(json: node["metadata"])
            #expect(performing: { try client.delete(.nodes, name: "gpu-1", preconditionUID: "wrong") },
                    throws: { ($0 as? KubeError)?.isConflict == true })
            let marked = try client.delete(.nodes, name: "gpu-1", preconditionUID: meta.uid, preconditionResourceVersion: meta.resourceVersion)
            #expect(try ObjectMeta(json: marked["metadata"]).deletionTimestamp != nil)
            #expect(cluster.server.object(.nodes, name: "gpu-1") != nil)

            // Status subresource: spec changes through /status are ignored, status changes kept.
            _ = try client.patch(.nodes, name: "gpu-1", ["status": ["allocatable": ["nvidia.com/gpu": "4"]], "spec": ["unschedulable": true]],
                                 subresource: "status")
            let current = try Node(json: try client.get(.nodes, name: "gpu-1"))
            #expect(current.allocatable["nvidia.com/gpu"] == Quantity(4))
            #expect(current.unschedulable == false)

            // Strategic merge patch merges finalizers; removing the last one completes the deletion.
            _ = try client.patch(.nodes, name: "gpu-1", ["metadata": ["finalizers": ["other/finalizer"]]], type: .strategicMerge)
            #expect(try ObjectMeta(json: client.get(.nodes, name: "gpu-1")["metadata"]).finalizers == ["berth.dev/termination", "other/finalizer"])
            _ = try client.patch(.nodes, name: "gpu-1", ["metadata": ["finalizers": nil]])
            #expect(performing: { _ = try client.get(.nodes, name: "gpu-1") }, throws: { ($0 as? KubeError)?.isNotFound == true })
        }
    }

    @Test func eventsAndLeasesAndJSONPatch() throws {
        try withFakeCluster { cluster in
            let client = cluster.client
            let created = try client.create(.pods, namespace: "ml", pod("nb", namespace: "ml"))
            let event = try client.recordEvent(regarding: created, reason: "Provisioning", action: "Launch",
                                               note: "launching g5.xlarge", reportingInstance: "berth-0")
            #expect(event["regarding"]?["name"]?.stringValue == "nb")
            #expect(event["eventTime"]?.stringValue?.hasSuffix("Z") == true)
            #expect(cluster.server.objects(.events).count == 1)
            _ = try client.patch(.pods, namespace: "ml", name: "nb",
                                 [["op": "add", "path": "/metadata/annotations", "value": ["berth.dev/x": "1"]]], type: .json)
            #expect(try ObjectMeta(json: client.get(.pods, namespace: "ml", name: "nb")["metadata"]).annotations["berth.dev/x"] == "1")
        }
    }

    @Test func authenticationErrorsKeepTheStatus() throws {
        var options = FakeKubeAPIServer.Options()
        options.tokens = ["good": .allowed, "denied": .forbidden]
        try withFakeCluster(options: options, adjust: { $0.credentials = .bearerToken("wrong") }) { cluster in
            #expect(performing: { _ = try cluster.client.list(.pods) }, throws: { error in
                guard let error = error as? KubeError else { return false }
                return error.statusCode == 401 && error.reason == "Unauthorized"
            })
            var configuration = FakeCluster.configuration(port: cluster.server.port, token: "denied")
            configuration.qps = 0
            let denied = try KubeClient(configuration)
            #expect(performing: { _ = try denied.list(.pods) }, throws: { ($0 as? KubeError)?.statusCode == 403 && "\($0)".contains("Forbidden") })
        }
    }

    @Test func retriesHonourRetryAfterAndConnectionLoss() throws {
        try withFakeCluster { cluster in
            cluster.server.write(.nodes, ["metadata": ["name": "n"]])
            cluster.server.failNext(2, status: 429, retryAfter: 0, pathContains: "/nodes")
            #expect(try Node(json: cluster.client.get(.nodes, name: "n")).metadata.name == "n")
            #expect(cluster.server.requests.filter { $0.hasPrefix("GET /api/v1/nodes/n") }.count == 3)

            // 503 with Retry-After too; 500 without Retry-After is not retried (client-go's checkWait).
            cluster.server.failNext(1, status: 503, retryAfter: 0, pathContains: "/nodes")
            _ = try cluster.client.get(.nodes, name: "n")
            cluster.server.failNext(1, status: 500, pathContains: "/nodes")
            #expect(performing: { _ = try cluster.client.get(.nodes, name: "n") }, throws: { ($0 as? KubeError)?.statusCode == 500 })

            // Gives up after maxAttempts, keeping the last Status.
            cluster.server.failNext(10, status: 429, retryAfter: 0, pathContains: "/nodes")
            #expect(performing: { _ = try cluster.client.get(.nodes, name: "n") }, throws: { ($0 as? KubeError)?.statusCode == 429 })
        }
        // Connection refused: retried, then reported with the address.
        var configuration = FakeCluster.configuration(port: 1)
        configuration.maxAttempts = 2
        let client = try KubeClient(configuration)
        #expect(performing: { _ = try client.get(.nodes, name: "n") }, throws: { error in
            guard case KubeError.transport(.connect, _, _) = error else { return false }
            return "\(error)".contains("localhost:1")
        })
    }

    @Test(arguments: [
        (200, #"{"kind":"Node","metadata":{"name":"n""#, "cannot decode the answer to GET /api/v1/nodes/n"),
        (200, #"{"kind":"PodList","items":{"a":1}}"#, "items: expected a list"),
        (500, "<html>proxy error</html>", "HTTP 500: <html>proxy error</html>"),
        (200, "", "cannot decode"),
    ])
    func malformedAnswersAreReportedClearly(status: Int, body: String, expected: String) throws {
        try withFakeCluster { cluster in
            cluster.server.answerNextRaw(status: status, body: body)
            #expect(performing: {
                if body.contains("PodList") { _ = try cluster.client.list(.pods) } else { _ = try Node(json: cluster.client.get(.nodes, name: "n")) }
            }, throws: { "\($0)".contains(expected) })
            // The client still works afterwards.
            let nodes = try cluster.client.list(.nodes)
            #expect(nodes.items.isEmpty)
        }
    }

    @Test func wrongTypesInAnAnswerNameTheField() throws {
        try withFakeCluster { cluster in
            cluster.server.answerNextRaw(status: 200, body: #"{"kind":"Node","metadata":{"name":"n","labels":["x"]}}"#)
            #expect(performing: { _ = try Node(json: cluster.client.get(.nodes, name: "n")) },
                    throws: { "\($0)".contains("metadata.labels: expected an object, found a list") })
        }
    }

    @Test func rateLimiterAllowsBurstThenQPS() {
        let start = ContinuousClock.now
        let limiter = RateLimiter(qps: 5, burst: 10, now: start)
        let waits = (0..<12).map { _ in limiter.reserve(now: start) }
        #expect(waits.prefix(10).allSatisfy { $0 == .zero })
        #expect(waits[10] == .milliseconds(200))
        #expect(waits[11] == .milliseconds(400))
        // After a second, 5 more tokens (minus the 2 borrowed).
        let later = start + .seconds(1)
        #expect((0..<3).map { _ in limiter.reserve(now: later) }.allSatisfy { $0 == .zero })
        #expect(limiter.reserve(now: later) > .zero)
    }
}

func setLabel(_ object: inout JSON, _ key: String, _ value: String) {
    guard case .object(var top) = object else { return }
    var meta = top["metadata"]?.objectValue ?? JSONObject()
    var labels = meta["labels"]?.objectValue ?? JSONObject()
    labels[key] = .string(value)
    meta["labels"] = .object(labels)
    top["metadata"] = .object(meta)
    object = .object(top)
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
