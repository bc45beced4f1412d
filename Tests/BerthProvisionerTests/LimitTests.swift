import BerthModel
import BerthProvisioner
import BerthScheduling
import Foundation
import Testing

/// Pool limits are a ceiling: every node of the pool that still costs money counts — launching,
/// running, draining, winding down, being terminated.
@Suite struct LimitTests {
    static func limited(gpus: Int64 = 4, price: Double = 4) -> ProvisionerConfig {
        var config = ProvisionerConfig()
        config.pools[0].limits.gpus = gpus
        config.pools[0].limits.pricePerHour = price
        return config
    }

    /// The case: a g4dn.12xlarge (4 GPUs, $3.912/h) winding down with one job left; four
    /// more jobs must not get a second one (8 GPUs at $7.82/h under limits of 4 GPUs and $4/h).
    @Test func aWindingDownNodeStillCounts() throws {
        var world = CoreWorld(config: Self.limited())
        world.round()
        world.add(gpuPod("train-big", gpus: 3, cpu: 4000, memory: 16 << 30))
        world.add(gpuPod("train-small", gpus: 1, cpu: 1000, memory: 4 << 30))
        world.run(for: 2)
        #expect(world.launches.map { $0.candidates[0].name } == ["g4dn.12xlarge"])
        world.registerAll()
        world.round()
        world.bindNominated()
        world.pods["jupyter/train-big"] = nil
        world.run(for: 62)
        let node = try #require(world.pods["jupyter/train-small"]?.nodeName)
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.windingDownTaint) == true)
        for index in 0..<4 { world.add(gpuPod("train-\(index)", gpus: 1, cpu: 8000, memory: 16 << 30)) }
        world.run(for: 3)
        #expect(world.launches.count == 1, "\(world.launches.map { $0.candidates[0].name })")
        #expect(world.events("FailedProvisioning").count == 4)
        #expect(world.events("FailedProvisioning").first?.message.contains("limit") == true)
    }

    @Test func aDrainingNodeStillCounts() throws {
        var world = CoreWorld(config: Self.limited(gpus: 1, price: 1))
        let node = try world.nodeThatServedANotebook()
        world.add(cpuPod("stray", on: node))
        world.protectedByBudget = ["airflow/stray"]
        world.run(for: 62)
        #expect(world.nodes[node]?.taints.contains(ProvisionerCore.disruptedTaint) == true, "draining, held by the budget")
        world.add(notebook("bob"))
        world.run(for: 2)
        #expect(world.launches.count == 1)
        #expect(world.events("FailedProvisioning").map(\.regarding) == [.pod("jupyter/bob")])
    }

    /// Random arrivals, departures, bindings, registrations, capacity failures, lost answers and
    /// time steps: after every round, what runs in the cloud is within the pool's limits.
    @Test(arguments: 0..<24)
    func limitsAreNeverExceeded(seed: UInt64) {
        let limits = PoolLimits(gpus: 6, nodes: 4, pricePerHour: 6)
        var config = ProvisionerConfig()
        config.pools[0].limits = limits
        config.consolidation = seed % 2 == 0
        var world = CoreWorld(config: config, seed: seed)
        var random = SeededGenerator(seed: seed &* 7919 &+ 1)
        let catalog = InstanceCatalog.builtIn()
        var counter = 0
        world.round()
        for step in 0..<400 {
            switch random.next() % 11 {
            case 0, 1:
                counter += 1
                let gpus = Int64(random.next() % 4) + 1
                if random.next() % 2 == 0 {
                    world.add(notebook("nb-\(counter)", gpus: min(gpus, 2)))
                } else {
                    world.add(gpuPod("job-\(counter)", gpus: gpus, cpu: Int64(random.next() % 8 + 1) * 1000))
                }
            case 2, 9:
                if let key = world.pods.keys.sorted().randomElement(using: &random) { world.pods[key] = nil }
            case 3:
                world.registerAll()
            case 4, 10:
                world.bindNominated()
            case 5:
                let zone = InstanceCatalog.defaultZones.randomElement(using: &random)!
                let type = catalog.types.randomElement(using: &random)!.name
                world.outOfCapacity.formSymmetricDifference([OfferingKey(instanceType: type, zone: zone)])
            case 6:
                world.loseLaunchAnswers = random.next() % 4 == 0
            case 7:
                if let name = world.nodes.keys.sorted().randomElement(using: &random) { world.nodes[name]?.unschedulable.toggle() }
            case 8:
                // A stray pod whose budget refuses eviction: drains last.
                if let name = world.nodes.keys.sorted().randomElement(using: &random) {
                    counter += 1
                    world.add(cpuPod("stray-\(counter)", on: name))
                    world.protectedByBudget.insert("airflow/stray-\(counter)")
                }
            default:
                break
            }
            world.advance(Double(random.next() % 90) + 1)
            world.round(list: random.next() % 3 == 0)
            let running = world.instances.values.compactMap { catalog[$0.instanceType] }
            let gpus = running.reduce(0) { $0 + $1.gpuCount }
            let price = world.instances.values.reduce(0) { $0 + $1.pricePerHour }
            #expect(Int64(gpus) <= limits.gpus! && Int64(running.count) <= limits.nodes! && price <= limits.pricePerHour! + 1e-9,
                    "seed \(seed) step \(step): \(running.map(\.name)) = \(gpus) GPUs, $\(price)/h")
            if Int64(gpus) > limits.gpus! { return }
        }
    }
}
