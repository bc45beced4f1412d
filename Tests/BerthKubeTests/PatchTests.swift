@testable import BerthKube
import BerthKubeSim
import BerthModel
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// Writes to objects other clients write too: the fake answers conflicts and patches as
/// kube-apiserver does, and `patchList` changes a list without overwriting anyone.
@Suite struct PatchTests {
    /// A PUT carrying a stale resourceVersion: 409 with the Status k8s.io/apimachinery's
    /// NewConflict builds, byte for byte.
    @Test func stalePutIsAConflictWithUpstreamsStatus() throws {
        try withFakeCluster { cluster in
            let created = try cluster.client.create(.nodes, ["metadata": ["name": "n1"]])
            cluster.server.modify(.nodes, name: "n1") { setLabel(&$0, "other", "yes") }
            let response = try cluster.client.perform("PUT", "/api/v1/nodes/n1", body: JSONWriter.bytes(created), contentType: "application/json")
            #expect(response.status == 409)
            #expect(String(decoding: response.body, as: UTF8.self) == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on nodes \"n1\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"n1","kind":"nodes"},"code":409}"#)
            let lease = try cluster.client.create(.leases, namespace: "kube-system", ["metadata": ["name": "l"], "spec": [:]])
            cluster.server.modify(.leases, namespace: "kube-system", name: "l") { setLabel(&$0, "x", "1") }
            let leaseResponse = try cluster.client.perform("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l",
                                                           body: JSONWriter.bytes(lease), contentType: "application/json")
            let status = try JSONParser.parse(leaseResponse.body)
            #expect(status["details"] == ["name": "l", "group": "coordination.k8s.io", "kind": "leases"])
        }
    }

    /// JSON patches with `test` behave as the apiserver's library applies them — checked against
    /// `kubectl patch --local` (the same library): a null test passes where the member is absent,
    /// a failed test is the apiserver's 422.
    @Test func jsonPatchTestsAsTheApiserverAndKubectlDo() throws {
        try withFakeCluster { cluster in
            let node: JSON = ["apiVersion": "v1", "kind": "Node", "metadata": ["name": "n1"], "spec": ["providerID": "aws:///us-east-1a/i-1"]]
            _ = try cluster.client.create(.nodes, node)
            let taint: JSON = ["key": "berth.dev/disrupted", "effect": "NoSchedule"]
            let absent: JSON = [["op": "test", "path": "/spec/taints", "value": nil], ["op": "add", "path": "/spec/taints", "value": [taint]]]
            let patched = try cluster.client.patch(.nodes, name: "n1", absent, type: .json)
            #expect(patched["spec"]?["taints"] == [taint])
            // kubectl (evanphx/json-patch, as in the apiserver) agrees on the same document.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-patch-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let input = directory.appendingPathComponent("node.json")
            try Data(JSONWriter.bytes(node)).write(to: input)
            let kubectl = try run("kubectl", ["patch", "--local", "-f", input.path, "--type=json", "-p", JSONWriter.string(absent), "-o", "json"])
            #expect(kubectl.status == 0, "\(kubectl.stderr)")
            #expect(try JSONParser.parse(kubectl.stdout)["spec"]?["taints"] == [taint])
            // The same patch again: the list is there now, the null test fails (kubectl too).
            #expect(performing: { _ = try cluster.client.patch(.nodes, name: "n1", absent, type: .json) }, throws: { error in
                guard let error = error as? KubeError, case let .status(status, _, _) = error else { return false }
                return status.code == 422 && status.reason == "Invalid" && status.message == "the server rejected our request due to an error in our request"
                    && status.causes == ["testing value /spec/taints failed"]
            })
            try Data(JSONWriter.bytes(patched)).write(to: input)
            let again = try run("kubectl", ["patch", "--local", "-f", input.path, "--type=json", "-p", JSONWriter.string(absent), "-o", "json"])
            #expect(again.status != 0 && again.stderr.contains("testing value /spec/taints failed"))
        }
    }

    /// `patchList` against a second writer who changes the same list between Berth's read and its
    /// write: the test fails, Berth reads again and keeps the other writer's change.
    @Test func patchListKeepsAConcurrentChangeToTheList() throws {
        try withFakeCluster { cluster in
            let notReady: JSON = ["key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"]
            let mine: JSON = ["key": "berth.dev/disrupted", "effect": "NoSchedule"]
            _ = try cluster.client.create(.nodes, ["metadata": ["name": "n1"], "spec": ["taints": [notReady]]])
            let server = cluster.server
            // The node lifecycle controller removes not-ready just before Berth's first patch lands.
            server.beforeRequest(method: "PATCH", pathContains: "/nodes/n1", times: 1) {
                server.modify(.nodes, name: "n1") { node in
                    guard case .object(var top) = node, case .object(var spec)? = top["spec"] else { return }
                    spec["taints"] = .array([])
                    top["spec"] = .object(spec)
                    node = .object(top)
                }
            }
            let result = try cluster.client.patchList(.nodes, name: "n1", at: ["spec", "taints"]) { $0 + [mine] }
            #expect(result["spec"]?["taints"] == [mine])
            #expect(cluster.server.requests.filter { $0.hasPrefix("PATCH") }.count == 2)
            // Nothing to change: no write at all.
            _ = try cluster.client.patchList(.nodes, name: "n1", at: ["spec", "taints"]) { $0 }
            #expect(cluster.server.requests.filter { $0.hasPrefix("PATCH") }.count == 2)
        }
    }
}
