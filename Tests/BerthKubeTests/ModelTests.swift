import BerthKube
import BerthModel
import Testing

@Suite struct ModelTests {
    /// The upstream round-trip fixtures populate every field of the newest API: the views must
    /// read what they need and tolerate everything else.
    @Test func fixturesDecode() throws {
        let pod = try Pod(json: try fixture("core.v1.Pod.json"))
        #expect(pod.metadata.name == "nameValue")
        #expect(pod.metadata.namespace == "namespaceValue")
        #expect(pod.metadata.labels["labelsKey"] == "labelsValue")
        #expect(pod.metadata.deletionTimestamp == "2009-01-01T01:01:01Z")
        #expect(pod.nodeName == "nodeNameValue")
        #expect(pod.tolerations.first?.key == "keyValue")
        #expect(pod.requiredNodeAffinity.count == 1)

        let node = try Node(json: try fixture("core.v1.Node.json"))
        #expect(node.metadata.name == "nameValue")
        #expect(node.taints.first == Taint(key: "keyValue", value: "valueValue", effect: "effectValue"))
        #expect(node.allocatable["allocatableKey"] == .zero)

        let lease = try Lease(json: try fixture("coordination.k8s.io.v1.Lease.json"))
        #expect(lease.holderIdentity == "holderIdentityValue")
        #expect(lease.leaseDurationSeconds == 2)
        #expect(lease.leaseTransitions == 5)

        let status = try #require(APIStatus(json: try fixture("core.v1.Status.json")))
        #expect(status.message == "messageValue")
        #expect(status.retryAfterSeconds == 5)
        #expect(status.causes == ["messageValue"])

        for name in ["core.v1.Event.json", "policy.v1.PodDisruptionBudget.json", "policy.v1.Eviction.json", "core.v1.Binding.json"] {
            let meta = try ObjectMeta(json: try fixture(name)["metadata"])
            #expect(meta.name == "nameValue", "\(name)")
        }
    }

    @Test(arguments: [
        (#"{"metadata": {"labels": "app=x"}}"#, "metadata.labels: expected an object, found a string"),
        (#"{"metadata": {"name": 5}}"#, "metadata.name: expected a string, found a number"),
        (#"{"spec": {"containers": {"name": "x"}}}"#, "spec.containers: expected a list, found an object"),
        (#"{"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "lots"}}}]}}"#, "invalid quantity \"lots\""),
        (#"{"status": {"conditions": [{"type": true}]}}"#, "status.conditions[0].type: expected a string"),
        (#"[]"#, "expected an object, found a list"),
    ])
    func wrongTypesAreNamed(text: String, expected: String) throws {
        #expect {
            _ = try Pod(json: try JSONParser.parse(text))
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test func podRequestsFollowTheScheduler() throws {
        let json = try JSONParser.parse(#"""
        {"metadata": {"name": "p"}, "spec": {
          "containers": [{"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "nvidia.com/gpu": 1}}},
                         {"resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}}],
          "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
          "overhead": {"memory": "100Mi"}}}
        """#)
        let pod = try Pod(json: json)
        #expect(pod.requests["cpu"] == Quantity(2))
        #expect(pod.requests["nvidia.com/gpu"] == Quantity(1))
        #expect(pod.requests["memory"] == Quantity(milli: (1 << 30) * 1000 + (100 << 20) * 1000))
    }

    @Test func watchEventLines() throws {
        let event = try WatchEvent.decode(Array(#"{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"7"}}}"#.utf8))
        #expect(event.kind == .added)
        #expect(event.resourceVersion == "7")
        for (line, expected) in [
            ("not json", "watch event"), (#"{"type":"ADDED"}"#, "object"), (#"{"type":"EXPLODED","object":{}}"#, "unknown type"),
            (#"{"type":1,"object":{}}"#, "type: expected a string"), (#"{"type":"ADDED","object":{"metadata":"#, "watch event"),
        ] {
            #expect(performing: { _ = try WatchEvent.decode(Array(line.utf8)) }, throws: { "\($0)".contains(expected) })
        }
    }
}
