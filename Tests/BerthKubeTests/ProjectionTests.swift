import BerthKube
import BerthKubeSim
import BerthModel
import BerthTestSupport
import Foundation
import Testing

/// An informer with a selection caches projections, from the first list and from the watch alike.
@Suite struct ProjectionTests {
    static let selection: JSONSelection = .members([
        "metadata": .members(["name": .all, "namespace": .all, "resourceVersion": .all]),
        "spec": .members(["nodeName": .all, "containers": .elements(.members(["resources": .all]))]),
        "status": .members(["phase": .all]),
    ])

    @Test func informerKeepsOnlyTheSelectedFields() throws {
        try withFakeCluster { cluster in
            let realistic = RealisticObjects.pod(7, nodes: 10)
            #expect(JSONWriter.bytes(realistic).count > 6_000)
            cluster.server.write(.pods, realistic)
            let informer = Informer(client: cluster.client, resource: .pods, backoff: .fast, selecting: Self.selection)
            let log = EventLog()
            informer.addHandlers(log.handlers)
            informer.start()
            defer { informer.stop() }
            #expect(waitUntil { informer.hasSynced && cluster.server.openWatchCount == 1 })
            let key = "\(realistic["metadata"]?["namespace"]?.stringValue ?? "")/\(EventLog.name(realistic))"
            let listed = try #require(informer.get(key))
            #expect(listed == Self.expected(realistic, resourceVersion: listed["metadata"]?["resourceVersion"]))
            // A change arrives through the watch, projected the same way.
            let second = RealisticObjects.pod(8, nodes: 10)
            cluster.server.write(.pods, second)
            let secondKey = "\(second["metadata"]?["namespace"]?.stringValue ?? "")/\(EventLog.name(second))"
            #expect(waitUntil { informer.get(secondKey) != nil })
            let watched = try #require(informer.get(secondKey))
            #expect(watched == Self.expected(second, resourceVersion: watched["metadata"]?["resourceVersion"]))
            #expect(JSONWriter.bytes(watched).count < 400)
            #expect(log.all.count == 2)
            #expect(informer.resourceVersions().count == 2)
        }
    }

    /// What the selection keeps of a pod: built by hand from the whole object.
    static func expected(_ pod: JSON, resourceVersion: JSON?) -> JSON {
        let containers = (pod["spec"]?["containers"]?.arrayValue ?? []).map { container -> JSON in
            ["resources": container["resources"] ?? .null]
        }
        var metadata: JSONObject = ["name": pod["metadata"]?["name"] ?? .null, "namespace": pod["metadata"]?["namespace"] ?? .null]
        metadata["resourceVersion"] = resourceVersion
        return ["metadata": .object(metadata), "spec": ["nodeName": pod["spec"]?["nodeName"] ?? .null, "containers": .array(containers)],
                "status": ["phase": pod["status"]?["phase"] ?? .null]]
    }
}
