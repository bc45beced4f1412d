import BerthController
import BerthKube
import BerthKubeSim
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Prometheus
import Testing

/// Warm capacity end to end on the embedded API server: a running warm node handed to a notebook
/// in seconds, a stopped one (its Node kept, NotReady, tainted) started for the next, and the
/// metrics that show it.
@Suite(.serialized) struct WarmStoryTests {
    func labels(_ world: StoryWorld, _ node: String) -> [String: String] {
        var result: [String: String] = [:]
        for member in world.server.object(.nodes, name: node)?["metadata"]?["labels"]?.objectValue ?? JSONObject() { result[member.key] = member.value.stringValue }
        return result
    }

    func taints(_ world: StoryWorld, _ node: String) -> [String] {
        world.server.object(.nodes, name: node)?["spec"]?["taints"]?.arrayValue?.compactMap { taint in
            guard let key = taint["key"]?.stringValue else { return nil }
            return key + "=" + (taint["value"]?.stringValue ?? "")
        } ?? []
    }

    func warmNodes(_ world: StoryWorld, _ value: String) -> [String] {
        world.server.objects(.nodes).compactMap { node in
            node["metadata"]?["labels"]?["berth.dev/warm"]?.stringValue == value ? node["metadata"]?["name"]?.stringValue : nil
        }
    }

    @Test func aRunningWarmNodeThenAStoppedOneServeTwoNotebooks() async throws {
        var config = ProvisionerConfig()
        config.warm.mode = .schedule
        config.warm.schedules = [WarmSchedule(days: Set(1...7), from: 0, to: 24 * 60, timeZone: "UTC", running: 1, stopped: 1, instanceType: "g4dn.xlarge")]
        let world = try StoryWorld(config: config)
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["berth_notebook_time_to_running_seconds"] = ProvisionerMetrics.timeToRunningBuckets
        // Berth's own pod: Events about warm capacity as a whole go there.
        _ = world.server.write(.pods, ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "berth-provisioner-0", "namespace": "berth-system"],
                                       "spec": ["containers": [["name": "berth", "image": "berth:0.1.0"]]], "status": ["phase": "Running"]])
        try world.startReplica(metrics: factory, adjust: { $0.selfPod = "berth-system/berth-provisioner-0" })

        // One node waits up, tainted berth.dev/warm=true; the other was prepared, then stopped.
        let ready = try await world.tick(until: {
            let stopped = await world.liveInstances.filter { $0.state == .stopped }
            return warmNodes(world, "true").count == 1 && stopped.count == 1
        }, limit: 400)
        #expect(ready != nil)
        let running = try #require(warmNodes(world, "true").first)
        let stopped = try #require(warmNodes(world, "stopped").first)
        #expect(taints(world, running).contains("berth.dev/warm=true"))
        #expect(taints(world, stopped).contains("berth.dev/warm=stopped"), "its Node stays, tainted")
        #expect(world.server.object(.nodes, name: stopped) != nil)
        let wanted = try #require(world.events(reason: "WarmCapacity").first)
        #expect(wanted["regarding"]?["name"]?.stringValue == "berth-provisioner-0")
        #expect(wanted["note"]?.stringValue?.contains("g4dn.xlarge (pool gpu): 1 running, 1 stopped") == true)

        // Alice gets the running node within the batch window, not a launch.
        let launched = await world.cloud.allRecords().count
        _ = world.server.write(.pods, try notebookPod("alice"))
        let alice = try #require(try await world.tick(until: { world.podPhase("jhub/alice") == "Running" }, limit: 30))
        #expect(alice <= 5, "\(alice) s")
        #expect(world.podNode("jhub/alice") == running)
        #expect(labels(world, running)["berth.dev/warm"] == nil && !taints(world, running).contains("berth.dev/warm=true"), "no longer warm")

        // The running tier is refilled by starting the stopped node; Bob, right behind, is handed it.
        _ = world.server.write(.pods, try notebookPod("bob"))
        let bob = try #require(try await world.tick(until: { world.podPhase("jhub/bob") == "Running" }, limit: 120))
        #expect(world.podNode("jhub/bob") == stopped, "the stopped node, started")
        #expect(bob <= 62, "a start (35-60 s), not a cold launch: \(bob) s")
        #expect(!taints(world, stopped).contains { $0.hasPrefix("berth.dev/warm") })
        #expect(!world.events(reason: "WarmNodeStarting").isEmpty)
        // Refills are launched for both tiers; Alice and Bob cost no cold launch of their own.
        let records = await world.cloud.allRecords()
        #expect(records.count > launched)
        #expect(records.dropFirst(launched).allSatisfy { $0.labels["berth.dev/warm"] != nil }, "only warm refills launched")

        var text: [UInt8] = []
        registry.emit(into: &text)
        let metrics = String(decoding: text, as: UTF8.self)
        #expect(metrics.contains(#"berth_notebook_time_to_running_seconds_count{start="warm-running"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"berth_notebook_time_to_running_seconds_count{start="warm-stopped"} 1"#), "\(metrics)")
        #expect(metrics.contains("berth_warm_nodes{state=\"running\"}"))
        #expect(metrics.contains("berth_warm_price_per_hour_dollars"))
    }
}
