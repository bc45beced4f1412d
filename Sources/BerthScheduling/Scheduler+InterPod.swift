import BerthModel

/// The constrained path: pods with required pod affinity or anti-affinity, `DoNotSchedule`
/// topology spread or host ports (and pods another pod's anti-affinity names) are placed one at a
/// time, each check seeing every pod already on, nominated to or planned for each node — on nodes
/// that exist or are launching, then on nodes opened this round, then on a new node whose zone
/// satisfies them. A pod whose constraints cannot be modelled gets a node of its own.
extension Scheduler {
    /// Who is where: one slot per node given to `solve`, then one per node the plan opens.
    struct Occupancy {
        var zones: [String?]
        var pods: [[PodRequirements]]
        let existing: Int

        init(nodes: [NodeState], plan: SchedulingPlan, pending: [PodRequirements]) {
            existing = nodes.count
            zones = nodes.map { $0.labels[WellKnownLabel.zone] }
            pods = nodes.map(\.pods)
            let slot = Dictionary(nodes.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { first, _ in first })
            for placement in plan.placements {
                if let n = slot[placement.node] { pods[n].append(pending[placement.pod]) }
            }
            for node in plan.nodes {
                zones.append(node.zone)
                pods.append(node.pods.map { pending[$0] })
            }
        }

        /// Slots in the same domain as `slot` (a node not opened yet: `slot == pods.count`, in `zone`).
        func domain(_ domain: TopologyDomain, of slot: Int, zone: String?) -> [Int] {
            switch domain {
            case .hostname: return slot < pods.count ? [slot] : []
            case .zone:
                guard let zone else { return slot < pods.count ? [slot] : [] }
                return zones.indices.filter { zones[$0] == zone }
            }
        }

        /// Why `pod` may not go to `slot` (in `zone`); nil when it may. `spreadZones`: the zones the
        /// pod could be placed in at all (the domains its zone spread is measured over).
        func failure(_ pod: PodRequirements, slot: Int, zone: String?, spreadZones: Set<String>) -> String? {
            let constraints = pod.interPod
            let here = slot < pods.count ? pods[slot] : []
            if !constraints.hostPorts.isEmpty {
                for other in here {
                    if let port = other.interPod.hostPorts.first(where: constraints.hostPorts.contains) {
                        return "host port \(port) is taken by \(other.id)"
                    }
                }
            }
            for term in constraints.antiAffinity {
                for s in domain(term.domain, of: slot, zone: zone) {
                    if let other = pods[s].first(where: { term.selects($0, ownNamespace: pod.namespace) }) {
                        return "pod anti-affinity (\(term.domain.rawValue)) with \(other.id)"
                    }
                }
            }
            // Symmetry: a pod already there whose own anti-affinity names this one.
            for domainKind in [TopologyDomain.hostname, .zone] {
                for s in domain(domainKind, of: slot, zone: zone) {
                    for other in pods[s] where other.interPod.antiAffinity.contains(where: { $0.domain == domainKind && $0.selects(pod, ownNamespace: other.namespace) }) {
                        return "the pod anti-affinity of \(other.id) (\(domainKind.rawValue))"
                    }
                }
            }
            for term in constraints.affinity {
                let near = domain(term.domain, of: slot, zone: zone).contains { s in pods[s].contains { term.selects($0, ownNamespace: pod.namespace) } }
                if near { continue }
                // Upstream's first-pod rule: no pod matches anywhere, and the pod matches its own term.
                let anywhere = pods.contains { $0.contains { term.selects($0, ownNamespace: pod.namespace) } }
                if anywhere || !term.selects(pod, ownNamespace: pod.namespace) {
                    return "pod affinity (\(term.domain.rawValue)) with pods matching \(term.selector.matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"
                }
            }
            for spread in constraints.spread {
                func count(_ slots: [Int]) -> Int {
                    slots.reduce(0) { total, s in total + pods[s].filter { $0.namespace == pod.namespace && spread.selector.matches($0.labels) }.count }
                }
                let own = spread.selector.matches(pod.labels) ? 1 : 0
                let here = count(domain(spread.domain, of: slot, zone: zone))
                // A new node is always a possible hostname domain with no pod: the minimum is 0.
                var minimum = 0
                if spread.domain == .zone {
                    guard let zone else { return "topology spread by zone, and the node has no zone" }
                    minimum = spreadZones.union([zone]).map { z in count(zones.indices.filter { zones[$0] == z }) }.min() ?? 0
                }
                if here + own - minimum > spread.maxSkew {
                    return "topology spread (\(spread.domain.rawValue), maxSkew \(spread.maxSkew)): \(here) matching pod(s) there, \(minimum) in the emptiest domain"
                }
            }
            return nil
        }
    }

    func placeConstrained(
        _ index: Int, pending: [PodRequirements], group g: Int, groups: inout [Group], nodes: [NodeState], free: inout [Resources],
        usage: inout [PoolUsage], openFree: inout [Resources], occupancy: inout Occupancy, plan: inout SchedulingPlan
    ) {
        let pod = pending[index]
        let request = pod.requests
        let unmodelled = pod.interPod.unmodelled
        var spreadZones = Set(groups[g].compatibleNodes.compactMap { nodes[$0].labels[WellKnownLabel.zone] })
        for candidate in groups[g].candidates {
            for o in candidate.offerings { spreadZones.insert(catalog.types[candidate.type].offerings[o].zone) }
        }
        var lastFailure: String?
        if unmodelled == nil {
            // 1. Nodes that exist or are launching.
            for n in groups[g].compatibleNodes where request.fits(in: free[n]) && (request.gpus == 0 || nodes[n].gpuResource == pod.gpuResource) {
                if let failure = occupancy.failure(pod, slot: n, zone: occupancy.zones[n], spreadZones: spreadZones) {
                    lastFailure = "node \(nodes[n].name): \(failure)"
                    continue
                }
                free[n] -= request
                occupancy.pods[n].append(pod)
                plan.placements.append(.init(pod: index, node: nodes[n].name))
                return
            }
            // 2. Nodes opened this round for the same constraints (never a notebook's own).
            if !pod.isNotebook {
                for k in groups[g].openNodes where request.fits(in: openFree[k]) {
                    let slot = occupancy.existing + k
                    if let failure = occupancy.failure(pod, slot: slot, zone: occupancy.zones[slot], spreadZones: spreadZones) {
                        lastFailure = "a new \(plan.nodes[k].instanceType): \(failure)"
                        continue
                    }
                    openFree[k] -= request
                    occupancy.pods[slot].append(pod)
                    plan.nodes[k].pods.append(index)
                    return
                }
            }
        }
        func unschedulable(_ reason: String) { plan.unschedulable.append(.init(pod: index, reason: reason)) }
        if request.gpus > 0, let name = pod.gpuResource, name != gpuResource {
            return unschedulable("requests \(name); the instance catalog offers \(gpuResource) only")
        }
        let candidates = groups[g].candidates
        if candidates.isEmpty { return unschedulable(groups[g].reason) }
        // 3. A new node: the first candidate that fits, within limits, in a zone the constraints allow.
        var rejected: [Rejection] = []
        var limitReasons: [String] = []
        for candidate in candidates {
            let type = catalog.types[candidate.type]
            guard request.fits(in: allocatable[candidate.type]) else {
                if rejected.count < 6 {
                    rejected.append(Rejection(
                        instanceType: type.name, pool: pools[candidate.pool].name,
                        cause: .tooSmall(needs: request, has: allocatable[candidate.type], gpuResource: pod.gpuResource)))
                }
                continue
            }
            for o in candidate.offerings {
                let offering = type.offerings[o]
                if let why = pools[candidate.pool].limits.exceeded(by: capacity[candidate.type], price: offering.pricePerHour, usage: usage[candidate.pool]) {
                    let prefix = "pool \(pools[candidate.pool].name): "
                    if !limitReasons.contains(where: { $0.hasPrefix(prefix) }) { limitReasons.append(prefix + why) }
                    continue
                }
                if unmodelled == nil, let failure = occupancy.failure(pod, slot: occupancy.pods.count, zone: offering.zone, spreadZones: spreadZones) {
                    lastFailure = "a new node in \(offering.zone): \(failure)"
                    continue
                }
                usage[candidate.pool].add(capacity: capacity[candidate.type], price: offering.pricePerHour)
                let dedicated = pod.isNotebook || unmodelled != nil
                if !dedicated { groups[g].openNodes.append(plan.nodes.count) }
                openFree.append(allocatable[candidate.type] - request)
                occupancy.zones.append(offering.zone)
                occupancy.pods.append([pod])
                plan.nodes.append(.init(
                    instanceType: type.name, pool: pools[candidate.pool].name, zone: offering.zone, capacityType: offering.capacityType,
                    pricePerHour: offering.pricePerHour, pods: [index], rejected: rejected, role: dedicated ? .notebook : .shared))
                return
            }
        }
        var reasons = limitReasons
        if let lastFailure { reasons.append("no node satisfies its placement constraints (last tried: \(lastFailure))") }
        unschedulable(reasons.isEmpty ? "no instance type is big enough" : reasons.joined(separator: "; "))
    }
}
