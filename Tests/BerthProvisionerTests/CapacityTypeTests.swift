import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// Notebooks stay on on-demand capacity by default, even in a pool that allows spot: an
/// interruption kills a kernel's state. Jobs may use spot.
@Suite struct CapacityTypeTests {
    /// The built-in catalog with a spot offering at 40 % of the price beside each on-demand one.
    static func spotCatalog() -> InstanceCatalog {
        var catalog = InstanceCatalog.builtIn()
        for index in catalog.types.indices {
            let onDemand = catalog.types[index].offerings
            catalog.types[index].offerings = onDemand + onDemand.map { Offering(zone: $0.zone, capacityType: "spot", pricePerHour: $0.pricePerHour * 0.4) }
        }
        return catalog
    }

    static func spotPool(notebooks: [String]? = nil) -> ProvisionerConfig {
        var config = ProvisionerConfig()
        config.pools[0].capacityTypes = ["on-demand", "spot"]
        if let notebooks { config.pools[0].notebookCapacityTypes = notebooks }
        return config
    }

    @Test func notebooksGoOnDemandAndJobsToSpotByDefault() {
        var world = CoreWorld(config: Self.spotPool(), catalog: Self.spotCatalog())
        world.round()
        world.add(notebook("alice"))
        world.add(gpuPod("train", cpu: 1000))
        world.run(for: 2)
        let byPod = Dictionary(uniqueKeysWithValues: world.core.claims.values.flatMap { claim in claim.nominated.keys.map { ($0, claim.capacityType) } })
        #expect(byPod["jupyter/alice"] == "on-demand")
        #expect(byPod["jupyter/train"] == "spot")
    }

    @Test func aPoolMayLetNotebooksUseSpot() {
        var world = CoreWorld(config: Self.spotPool(notebooks: ["on-demand", "spot"]), catalog: Self.spotCatalog())
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        #expect(world.core.claims.values.map(\.capacityType) == ["spot"])
    }

    @Test func aSpotOnlyPoolExplainsWhyANotebookGetsNothing() {
        var config = Self.spotPool()
        config.pools[0].capacityTypes = ["spot"]
        var world = CoreWorld(config: config, catalog: Self.spotCatalog())
        world.round()
        world.add(notebook("alice"))
        world.run(for: 2)
        #expect(world.launches.isEmpty)
        #expect(world.events("FailedProvisioning").first?.message.contains("notebookCapacityTypes") == true)
    }

    @Test func theSettingIsReadStrictly() throws {
        let pool = try PoolConfig.parse(json: try JSONParser.parse(#"{"name": "gpu", "notebookCapacityTypes": ["spot"]}"#), path: "pools[0]")
        #expect(pool.notebookCapacityTypes == ["spot"])
        #expect(Pool(name: "x").notebookCapacityTypes == ["on-demand"])
        #expect(throws: ConfigError.self) { try PoolConfig.parse(json: try JSONParser.parse(#"{"name": "gpu", "notebookCapacityTypes": ["reserved"]}"#), path: "pools[0]") }
    }
}
