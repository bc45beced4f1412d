import BerthTestSupport
import Foundation
import Testing

/// `berth mutate` as a user runs it: the built binary, real files, exit codes and stderr.
@Suite struct MutateCommandTests {
    static let manifests = Repository.fixtures.appendingPathComponent("manifests")

    func file(_ name: String) -> String { Self.manifests.appendingPathComponent(name).path }

    @Test func yamlOutputKeepsOrderValuesAndTypes() throws {
        let result = try berth(["mutate", "-f", file("airflow-task.yaml")])
        #expect(result.status == 0, "\(result.stderr)")
        let text = result.stdout
        // The string "True" stays a quoted string, the list of args keeps its order.
        #expect(text.contains("kubernetes_pod_operator: \"True\""))
        #expect(text.contains("- python\n    - -m\n    - etl.extract"))
        #expect(text.contains("operator: NotIn"))
        #expect(text.hasPrefix("apiVersion: v1\nkind: Pod\nmetadata:\n  name: etl-daily-extract-7f9c2\n"))
    }

    @Test func multiDocumentFileKeepsDocumentOrder() throws {
        let result = try berth(["mutate", "-f", file("deployment-and-service.yaml"), "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let list = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let items = list?["items"] as? [[String: Any]]
        #expect(items?.map { $0["kind"] as? String } == ["Deployment", "Service"])
        let replicas = (items?.first?["spec"] as? [String: Any])?["replicas"]
        #expect((replicas as? NSNumber)?.intValue == 2)
    }

    @Test func standardInputAndVerboseExplanation() throws {
        let input = try Data(contentsOf: Self.manifests.appendingPathComponent("device-plugin-daemonset-pod.yaml"))
        let result = try berth(["mutate", "-f", "-", "-o", "patch", "-v"], input: input)
        #expect(result.status == 0)
        #expect(result.stdout == "[]\n")
        #expect(result.stderr.contains("exempt (owned by a DaemonSet)"))
    }

    @Test(arguments: [
        ("kind: Pod\nspec:\n  containers: nope\n", "berth: <stdin>: document 1 (line 1): spec.containers: expected a list, found a string\n"),
        ("apiVersion: v1\nkind: Pod\nspec: {containers: []}\n---\napiVersion: v1\nmetadata: {name: x}\n",
         "berth: <stdin>: document 2 (line 5): kind: is missing: every document needs apiVersion and kind\n"),
        ("a: [1,\n", "berth: <stdin>: line 2: YAML syntax: did not find expected node content while parsing a flow node\n"),
        ("{\"kind\": \"Pod\",}", "berth: <stdin>: invalid JSON: expected a quoted member name at line 1, column 16\n"),
    ])
    func badInputIsOneClearLineAndNoOutput(input: String, message: String) throws {
        let result = try berth(["mutate", "-f", "-"], input: Data(input.utf8))
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == message)
    }

    @Test func unknownConfigFieldIsNamedWithItsPath() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("berth-config-\(UUID().uuidString).yaml")
        try "apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nwebhook:\n  gpuResource: [amd.com/gpu]\n".write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let result = try berth(["mutate", "-f", file("bare-gpu-pod.yaml"), "--config", config.path])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("berth: config \(config.path): webhook.gpuResource: unknown field \"gpuResource\"; allowed fields: gpuResources,"))
    }

    @Test func missingFileAndPatchOfManyDocuments() throws {
        let missing = try berth(["mutate", "-f", "/nonexistent/pod.yaml"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "berth: /nonexistent/pod.yaml: cannot read the file (missing or not readable)\n")
        let many = try berth(["mutate", "-f", file("deployment-and-service.yaml"), "-o", "patch"])
        #expect(many.status == 1)
        #expect(many.stderr.contains("-o patch needs exactly one document, found 2"))
    }

    @Test func usageErrorsExitWith64() throws {
        let result = try berth(["mutate", "-f", file("bare-gpu-pod.yaml"), "-o", "xml"])
        #expect(result.status == 64)
    }
}

func berth(_ arguments: [String], input: Data? = nil) throws -> CommandResult {
    try run(Repository.berthBinary, arguments, input: input)
}
