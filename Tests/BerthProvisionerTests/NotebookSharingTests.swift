import BerthAdmission
import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// Notebooks share big nodes: when the cheapest type that fits has at least 4x the GPUs a
/// notebook asks for, one node per notebook would pay for GPUs nobody uses.
@Suite struct NotebookSharingTests {
    @Test func eightOneGPUA100NotebooksGetOneP4d() throws {
        var world = CoreWorld()
        world.round()
        for index in 0..<8 { world.add(notebook("nb-\(index)", gpuType: "a100")) }
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["p4d.24xlarge"])
        let request = try #require(world.launches.first)
        #expect(request.labels[WebhookConfig.nodeRoleLabel] == NodeRole.sharedNotebooks.rawValue)
        #expect(world.core.claims.values.first?.nominated.count == 8)

        // The node's role admits notebooks (the webhook's NotIn [shared]): when one stops, the
        // next A100 notebook takes its GPU rather than a new p4d.
        world.registerAll()
        world.round()
        world.bindNominated()
        world.pods["jupyter/nb-0"] = nil
        world.run(for: 5)
        world.add(notebook("late", gpuType: "a100"))
        world.run(for: 2)
        #expect(world.launches.count == 1)
        #expect(world.events("NotLaunching").map(\.regarding) == [.pod("jupyter/late")])
    }

    @Test func belowTheRatioNotebooksKeepTheirOwnNodes() {
        // 1-GPU T4 notebooks: the cheapest type that fits has 1 GPU.
        var world = CoreWorld()
        world.round()
        for index in 0..<3 { world.add(notebook("nb-\(index)")) }
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.xlarge", "g4dn.xlarge", "g4dn.xlarge"])
        // 2-GPU A100 notebooks on 8-GPU nodes: 4x, shared; with a ratio of 5, not.
        var config = ProvisionerConfig()
        config.notebookSharingRatio = 5
        var strict = CoreWorld(config: config)
        strict.round()
        for index in 0..<2 { strict.add(notebook("nb-\(index)", gpus: 2, gpuType: "a100")) }
        strict.run(for: 2)
        #expect(strict.launches.count == 2)
    }

    @Test func sharingCanBeTurnedOff() throws {
        let json = try JSONParser.parse(#"{"notebookSharing": {"enabled": false}}"#)
        let config = try ProvisionerConfig(config: json, path: "provisioner")
        #expect(config.effectiveNotebookSharingRatio == nil)
        var world = CoreWorld(config: config)
        world.round()
        for index in 0..<8 { world.add(notebook("nb-\(index)", gpuType: "a100")) }
        world.run(for: 2)
        #expect(world.launches.count == 8)
        #expect(throws: ConfigError.self) { try ProvisionerConfig(config: try JSONParser.parse(#"{"notebookSharing": {"gpuRatio": 1}}"#), path: "provisioner") }
    }
}
