import BerthModel

/// Decides where pending pods go: onto nodes that exist or are launching when they fit, else onto
/// new nodes of the cheapest instance type that fits (one per notebook; other pods packed when
/// packing is cheaper per pod). Pure: it returns a `SchedulingPlan` and touches nothing.
///
/// Speed comes from doing per-instance-type work once and per-pod work in integers:
/// - `init` precomputes each type's allocatable resources and, per pool, the types and offerings
///   its requirements admit;
/// - `solve` groups pods by constraints (tolerations, selector, affinity, zones: hashed once per
///   pod) and evaluates labels only once per group and instance type, giving a price-sorted
///   candidate list; then pods with identical requests form a shape, and a shape scans the
///   candidates once, with cursors that only move forward (capacity and limits only shrink).
public struct Scheduler: Sendable {
    public let catalog: InstanceCatalog
    public let pools: [Pool]
    public let overhead: NodeOverhead
    /// The extended resource the catalog's GPUs are advertised as.
    public let gpuResource: String
    /// Notebooks share a new node when the cheapest type that fits has at least this many times
    /// the GPUs each asks for; nil: every notebook gets its own node.
    public let notebookSharingRatio: Int?
    /// Whether new nodes get their `alternatives` (for a launch that falls back within one cloud
    /// call); off for plans nobody launches (`berth plan`, benchmarks), where it only costs.
    public var computesAlternatives = false

    let allocatable: [Resources]
    let capacity: [Resources]
    let typeLabels: [[String: String]]
    /// Every label key of the catalog, with its value per type (`nil` when a type lacks it): a
    /// requirement is resolved to a column once per group, then read by index, not by hashing.
    let labelColumns: [String: [String?]]
    /// Pool indices, highest weight first (config order among equals).
    let poolOrder: [Int]
    /// Per pool: the types its requirements admit, each with its admitted offering indices.
    let poolTypes: [[(type: Int, offerings: [Int])]]

    public init(
        catalog: InstanceCatalog, pools: [Pool], overhead: NodeOverhead = NodeOverhead(), gpuResource: String = "nvidia.com/gpu",
        notebookSharingRatio: Int? = nil
    ) {
        self.catalog = catalog
        self.notebookSharingRatio = notebookSharingRatio
        self.pools = pools
        self.overhead = overhead
        self.gpuResource = gpuResource
        allocatable = catalog.types.map(overhead.allocatable)
        capacity = catalog.types.map(\.capacity)
        let labels = catalog.types.map(\.labels)
        typeLabels = labels
        var columns: [String: [String?]] = [:]
        for (index, typeLabels) in labels.enumerated() {
            for (key, value) in typeLabels {
                columns[key, default: [String?](repeating: nil, count: labels.count)][index] = value
            }
        }
        labelColumns = columns
        poolOrder = pools.indices.sorted { pools[$0].weight != pools[$1].weight ? pools[$0].weight > pools[$1].weight : $0 < $1 }
        poolTypes = pools.map { pool in
            catalog.types.indices.compactMap { typeIndex in
                let type = catalog.types[typeIndex]
                let offerings = type.offerings.indices.filter { o in
                    let offering = type.offerings[o]
                    return pool.capacityTypes.contains(offering.capacityType)
                        && pool.requirements.allSatisfy { $0.matches(value: Scheduler.label($0.key, pool: pool, labels: labels[typeIndex], offering: offering)) }
                }
                return offerings.isEmpty ? nil : (typeIndex, offerings)
            }
        }
    }

    /// One-shot form: precomputes for this catalog and these pools, then solves.
    public static func solve(
        pending: [PodRequirements], nodes: [NodeState] = [], catalog: InstanceCatalog, pools: [Pool], overhead: NodeOverhead = NodeOverhead(),
        unavailableOfferings: Set<OfferingKey> = []
    ) -> SchedulingPlan {
        Scheduler(catalog: catalog, pools: pools, overhead: overhead).solve(pending: pending, nodes: nodes, unavailableOfferings: unavailableOfferings)
    }

    /// The offerings of `instanceType` that pool `pool` may launch (its requirements and capacity
    /// types), cheapest first; empty when the pool or type is unknown or not admitted.
    public func offerings(pool: String, instanceType: String) -> [Offering] {
        guard let p = pools.firstIndex(where: { $0.name == pool }),
            let entry = poolTypes[p].first(where: { catalog.types[$0.type].name == instanceType })
        else { return [] }
        let type = catalog.types[entry.type]
        return entry.offerings.map { type.offerings[$0] }.sorted { $0.pricePerHour < $1.pricePerHour }
    }

    /// The offerings of `instanceType` a warm node of pool `pool` may be launched from: the pool's
    /// that notebooks may buy (`notebookCapacityTypes`), and on-demand only for the stopped tier
    /// (a spot instance cannot be stopped and started at will). Cheapest first.
    public func warmOfferings(pool: String, instanceType: String, stopped: Bool) -> [Offering] {
        guard let notebookTypes = pools.first(where: { $0.name == pool })?.notebookCapacityTypes else { return [] }
        return offerings(pool: pool, instanceType: instanceType).filter {
            notebookTypes.contains($0.capacityType) && (!stopped || $0.capacityType == "on-demand")
        }
    }

    /// The pool a warm schedule's nodes come from: its own, or the first pool (in config order)
    /// that may launch its type for each tier it asks for; nil when none may. The config check
    /// and the provisioner both ask this, so they cannot disagree.
    public func warmPool(for schedule: WarmSchedule) -> String? {
        let names = schedule.pool.map { [$0] } ?? pools.map(\.name)
        return names.first { name in
            (schedule.running == 0 || !warmOfferings(pool: name, instanceType: schedule.instanceType, stopped: false).isEmpty)
                && (schedule.stopped == 0 || !warmOfferings(pool: name, instanceType: schedule.instanceType, stopped: true).isEmpty)
        }
    }

    /// A node label as a node launched from this pool, type and offering would carry it.
    static func label(_ key: String, pool: Pool, labels: [String: String], offering: Offering?) -> String? {
        if key == WellKnownLabel.zone { return offering?.zone }
        if key == WellKnownLabel.capacityType { return offering?.capacityType }
        if key == WellKnownLabel.nodePool { return pool.name }
        if !pool.labels.isEmpty, let value = pool.labels[key] { return value }
        return labels[key]
    }

    struct Candidate {
        var pool: Int
        var type: Int
        var offering: Int
        var price: Double
        var rank: Int
        /// Every offering of the type the group accepts and may launch (the cheapest is `offering`).
        var offerings: [Int] = []
    }

    struct Group {
        var candidates: [Candidate] = []
        var compatibleNodes: [Int] = []
        var reason = ""
        var openNodes: [Int] = []
    }

    /// Pods of one group share constraints and kind: notebooks may buy only their pools'
    /// `notebookCapacityTypes`.
    struct GroupKey: Hashable {
        var constraints: PodConstraints
        var notebook: Bool
    }

    struct ShapeKey: Hashable {
        var group: Int
        var requests: Resources
        var gpuResource: String?
        var notebook: Bool
    }

    struct Shape {
        var key: ShapeKey
        var pods: [Int]
    }

    public func solve(pending: [PodRequirements], nodes: [NodeState] = [], unavailableOfferings: Set<OfferingKey> = []) -> SchedulingPlan {
        var plan = SchedulingPlan()
        var usage = [PoolUsage](repeating: PoolUsage(), count: pools.count)
        for node in nodes {
            if let p = pools.firstIndex(where: { $0.name == node.pool }) { usage[p].add(capacity: node.capacity, price: node.pricePerHour) }
        }
        var free = nodes.map { $0.allocatable - $0.requested }

        var groupOf: [GroupKey: Int] = [:]
        var groups: [Group] = []
        var shapeOf: [ShapeKey: Int] = [:]
        var shapes: [Shape] = []
        // Anti-affinity is symmetric: a pod some other pod's required anti-affinity names takes the
        // constrained path too.
        var antiTerms: [(term: PodAffinityTerm, namespace: String)] = []
        for node in nodes {
            for pod in node.pods { for term in pod.interPod.antiAffinity { antiTerms.append((term, pod.namespace)) } }
        }
        for pod in pending { for term in pod.interPod.antiAffinity { antiTerms.append((term, pod.namespace)) } }
        var constrained: [(pod: Int, group: Int)] = []
        for index in pending.indices {
            // Fields are read in place: copying a whole PodRequirements costs retains per pod.
            if !pending[index].unsupportedResources.isEmpty {
                plan.unschedulable.append(.init(pod: index, reason: "requests \(pending[index].unsupportedResources.joined(separator: ", ")), which no node offers"))
                continue
            }
            let group: Int
            let groupKey = GroupKey(constraints: pending[index].constraints, notebook: pending[index].isNotebook)
            if let known = groupOf[groupKey] {
                group = known
            } else {
                group = groups.count
                groups.append(makeGroup(pending[index].constraints, notebook: pending[index].isNotebook, nodes: nodes, unavailable: unavailableOfferings))
                groupOf[groupKey] = group
            }
            if !pending[index].interPod.isEmpty || antiTerms.contains(where: { $0.term.selects(pending[index], ownNamespace: $0.namespace) }) {
                constrained.append((index, group))
                continue
            }
            let requests = pending[index].requests
            let key = ShapeKey(
                group: group, requests: requests, gpuResource: requests.gpus > 0 ? pending[index].gpuResource : nil, notebook: pending[index].isNotebook)
            if let shape = shapeOf[key] {
                shapes[shape].pods.append(index)
            } else {
                shapeOf[key] = shapes.count
                shapes.append(Shape(key: key, pods: [index]))
            }
        }
        // First-fit-decreasing: the largest requests (GPUs, then CPU, then memory) go first.
        let order = shapes.indices.sorted { a, b in
            let x = shapes[a].key.requests, y = shapes[b].key.requests
            if x.gpus != y.gpus { return x.gpus > y.gpus }
            if x.cpuMilli != y.cpuMilli { return x.cpuMilli > y.cpuMilli }
            if x.memory != y.memory { return x.memory > y.memory }
            return a < b
        }
        var openFree: [Resources] = []
        for s in order {
            place(shapes[s], groups: &groups, nodes: nodes, free: &free, usage: &usage, openFree: &openFree, plan: &plan)
        }
        if !constrained.isEmpty {
            // Pods tied to other pods, one at a time (largest first), once everything else is placed.
            var occupancy = Occupancy(nodes: nodes, plan: plan, pending: pending)
            constrained.sort { a, b in
                let x = pending[a.pod].requests, y = pending[b.pod].requests
                return (x.gpus, x.cpuMilli, x.memory, b.pod) > (y.gpus, y.cpuMilli, y.memory, a.pod)
            }
            for entry in constrained {
                placeConstrained(
                    entry.pod, pending: pending, group: entry.group, groups: &groups, nodes: nodes, free: &free, usage: &usage, openFree: &openFree,
                    occupancy: &occupancy, plan: &plan)
            }
        }
        plan.unschedulable.sort { $0.pod < $1.pod }
        if computesAlternatives { addAlternatives(to: &plan, pending: pending, groups: groups, usage: usage) }
        return plan
    }

    /// At most this many alternatives per new node (Karpenter sends CreateFleet at most 60 types;
    /// with their zones this stays under EC2's 300 overrides in most regions, and the cloud caps it).
    public static let maxAlternatives = 299

    /// Fills each new node's `alternatives`: the other offerings of its group's candidates in its
    /// pool on which all its pods fit, within the pool's limits with the node's own share taken out.
    private func addAlternatives(to plan: inout SchedulingPlan, pending: [PodRequirements], groups: [Group], usage: [PoolUsage]) {
        for n in plan.nodes.indices {
            let node = plan.nodes[n]
            guard node.group >= 0, node.typeIndex >= 0, let p = pools.firstIndex(where: { $0.name == node.pool }) else { continue }
            var total = Resources.zero
            for pod in node.pods { total += pending[pod].requests }
            var others = usage[p]
            others.remove(capacity: capacity[node.typeIndex], price: node.pricePerHour)
            var options: [(price: Double, type: Int, offering: Int)] = []
            for candidate in groups[node.group].candidates where candidate.pool == p && total.fits(in: allocatable[candidate.type]) {
                let type = catalog.types[candidate.type]
                for o in candidate.offerings {
                    let offering = type.offerings[o]
                    if candidate.type == node.typeIndex && offering.zone == node.zone && offering.capacityType == node.capacityType { continue }
                    if pools[p].limits.exceeded(by: capacity[candidate.type], price: offering.pricePerHour, usage: others) != nil { continue }
                    options.append((offering.pricePerHour, candidate.type, o))
                }
            }
            options.sort { ($0.price, $0.type, $0.offering) < ($1.price, $1.type, $1.offering) }
            plan.nodes[n].alternatives = options.prefix(Self.maxAlternatives).map {
                SchedulingPlan.LaunchOption(instanceType: catalog.types[$0.type].name, offering: catalog.types[$0.type].offerings[$0.offering])
            }
        }
    }

    private func makeGroup(_ constraints: PodConstraints, notebook: Bool, nodes: [NodeState], unavailable: Set<OfferingKey>) -> Group {
        var group = Group()
        for (index, node) in nodes.enumerated() where node.schedulable && constraints.tolerates(node.taints) == nil {
            guard constraints.matches({ node.labels[$0] }) else { continue }
            if notebook, let pool = pools.first(where: { $0.name == node.pool }),
                let capacityType = node.labels[WellKnownLabel.capacityType], !pool.notebookCapacityTypes.contains(capacityType)
            {
                continue  // a notebook never joins a spot node of a pool that keeps notebooks on on-demand
            }
            if let zones = constraints.zones, !zones.contains(node.labels[WellKnownLabel.zone] ?? "") { continue }
            group.compatibleNodes.append(index)
        }
        // Zone and capacity type live on offerings: only constraints naming them are evaluated per offering.
        let perOffering = constraints.zones != nil || ([constraints.nodeSelector] + constraints.requiredTerms).contains { term in
            term.contains { $0.key == WellKnownLabel.zone || $0.key == WellKnownLabel.capacityType }
        }
        var reasons: [String] = []
        var unmatchedPools: [(slot: Int, pool: Int)] = []  // explained only if nothing matches at all
        for (rank, p) in poolOrder.enumerated() {
            let pool = pools[p]
            if let taint = constraints.tolerates(pool.taints) {
                reasons.append("pool \(pool.name): taint \(taint) not tolerated")
                continue
            }
            let selector = constraints.nodeSelector.map { compile($0, pool: pool) }
            let terms = constraints.requiredTerms.map { $0.map { compile($0, pool: pool) } }
            func matches(_ type: Int, _ offering: Offering?) -> Bool {
                for requirement in selector where !requirement.matches(type: type, offering: offering) { return false }
                if terms.isEmpty { return true }
                for term in terms where term.allSatisfy({ $0.matches(type: type, offering: offering) }) { return true }
                return false
            }
            var matched = false, unavailableSeen = false, capacityTypeSeen = false
            for entry in poolTypes[p] {
                let type = catalog.types[entry.type]
                if !perOffering, !matches(entry.type, nil) { continue }
                var best: Candidate?
                for o in entry.offerings {
                    let offering = type.offerings[o]
                    if perOffering {
                        guard matches(entry.type, offering) else { continue }
                        if let zones = constraints.zones, !zones.contains(offering.zone) { continue }
                    }
                    if notebook && !pool.notebookCapacityTypes.contains(offering.capacityType) {
                        capacityTypeSeen = true
                        continue
                    }
                    matched = true
                    if !offering.available || (!unavailable.isEmpty && unavailable.contains(OfferingKey(instanceType: type.name, zone: offering.zone, capacityType: offering.capacityType))) {
                        unavailableSeen = true
                        continue
                    }
                    // One candidate per type: its cheapest offering (zone order breaks ties).
                    if best == nil || offering.pricePerHour < best!.price {
                        best = Candidate(pool: p, type: entry.type, offering: o, price: offering.pricePerHour, rank: rank, offerings: best?.offerings ?? [])
                    }
                    best?.offerings.append(o)
                }
                if var best {
                    best.offerings.sort { (type.offerings[$0].pricePerHour, $0) < (type.offerings[$1].pricePerHour, $1) }
                    group.candidates.append(best)
                }
            }
            if !matched && capacityTypeSeen {
                reasons.append("pool \(pool.name): notebooks may only use \(pool.notebookCapacityTypes.joined(separator: ", ")) (notebookCapacityTypes)")
            } else if !matched {
                unmatchedPools.append((reasons.count, p))
                reasons.append("")
            } else if unavailableSeen && !group.candidates.contains(where: { $0.pool == p }) {
                reasons.append("pool \(pool.name): every matching offering is unavailable (insufficient capacity)")
            }
        }
        if pools.isEmpty { reasons.append("no pools are configured") }
        if group.candidates.isEmpty {
            for entry in unmatchedPools {
                reasons[entry.slot] = "pool \(pools[entry.pool].name): " + noMatchReason(constraints, pool: pools[entry.pool], poolIndex: entry.pool)
            }
        }
        group.candidates.sort { a, b in
            if a.rank != b.rank { return a.rank < b.rank }
            if a.price != b.price { return a.price < b.price }
            return a.type < b.type
        }
        group.reason = reasons.filter { !$0.isEmpty }.joined(separator: "; ")
        return group
    }

    /// A requirement resolved against one pool: offering keys are read from the offering, every
    /// other key is evaluated once per instance type here.
    struct CompiledRequirement {
        enum Source { case type, zone, capacityType }
        var requirement: LabelRequirement
        var source: Source
        var byType: [Bool]

        func matches(type: Int, offering: Offering?) -> Bool {
            switch source {
            case .type: return byType[type]
            case .zone: return offering.map { requirement.matches(value: $0.zone) } ?? true
            case .capacityType: return offering.map { requirement.matches(value: $0.capacityType) } ?? true
            }
        }
    }

    private func compile(_ requirement: LabelRequirement, pool: Pool) -> CompiledRequirement {
        switch requirement.key {
        case WellKnownLabel.zone: return CompiledRequirement(requirement: requirement, source: .zone, byType: [])
        case WellKnownLabel.capacityType: return CompiledRequirement(requirement: requirement, source: .capacityType, byType: [])
        default: break
        }
        let constant: String?? = requirement.key == WellKnownLabel.nodePool ? .some(pool.name) : pool.labels[requirement.key].map { .some($0) }
        let byType: [Bool]
        if let constant {
            byType = [Bool](repeating: requirement.matches(value: constant), count: catalog.types.count)
        } else if let column = labelColumns[requirement.key] {
            byType = column.map { requirement.matches(value: $0) }
        } else {
            byType = [Bool](repeating: requirement.matches(value: nil), count: catalog.types.count)
        }
        return CompiledRequirement(requirement: requirement, source: .type, byType: byType)
    }

    private func noMatchReason(_ constraints: PodConstraints, pool: Pool, poolIndex: Int) -> String {
        guard let first = poolTypes[poolIndex].first else { return "its requirements admit no instance type" }
        if let zones = constraints.zones {
            let offered = Set(poolTypes[poolIndex].flatMap { entry in entry.offerings.map { catalog.types[entry.type].offerings[$0].zone } })
            if offered.isDisjoint(with: zones) {
                return "its volumes are in zone \(zones.joined(separator: ", ")), where the pool launches nothing"
            }
        }
        // Explain with the cheapest admitted type; every type failed, this one is representative.
        let cheapest = poolTypes[poolIndex].min { catalog.types[$0.type].pricePerHour < catalog.types[$1.type].pricePerHour } ?? first
        let offering = catalog.types[cheapest.type].offerings[cheapest.offerings[0]]
        let failure = constraints.firstFailure { Scheduler.label($0, pool: pool, labels: typeLabels[cheapest.type], offering: offering) }
        return "no instance type matches the pod's \(failure ?? "zone restriction") (e.g. \(catalog.types[cheapest.type].name))"
    }

    private func place(
        _ shape: Shape, groups: inout [Group], nodes: [NodeState], free: inout [Resources], usage: inout [PoolUsage],
        openFree: inout [Resources], plan: inout SchedulingPlan
    ) {
        let request = shape.key.requests
        let pods = shape.pods
        var next = 0
        let g = shape.key.group

        // 1. Nodes that exist or are launching: first fit; a node that cannot take this shape now
        //    never can later in this solve, so the cursor only moves forward.
        let compatible = groups[g].compatibleNodes
        var cursor = 0
        while next < pods.count && cursor < compatible.count {
            let n = compatible[cursor]
            if request.fits(in: free[n]) && (request.gpus == 0 || nodes[n].gpuResource == shape.key.gpuResource) {
                free[n] -= request
                plan.placements.append(.init(pod: pods[next], node: nodes[n].name))
                next += 1
            } else {
                cursor += 1
            }
        }
        guard next < pods.count else { return }

        func unschedulable(_ reason: String) {
            for pod in pods[next...] { plan.unschedulable.append(.init(pod: pod, reason: reason)) }
        }
        if request.gpus > 0, let name = shape.key.gpuResource, name != gpuResource {
            return unschedulable("requests \(name); the instance catalog offers \(gpuResource) only")
        }
        let candidates = groups[g].candidates
        if candidates.isEmpty { return unschedulable(groups[g].reason) }

        // 2. The first candidate big enough; the ones before it are explained.
        var rejected: [Rejection] = []
        var firstFit = -1
        for (index, candidate) in candidates.enumerated() {
            if request.fits(in: allocatable[candidate.type]) {
                firstFit = index
                break
            }
            if rejected.count < 6 {
                rejected.append(
                    Rejection(
                        instanceType: catalog.types[candidate.type].name, pool: pools[candidate.pool].name,
                        cause: .tooSmall(needs: request, has: allocatable[candidate.type], gpuResource: shape.key.gpuResource)))
            }
        }
        if firstFit < 0 {
            // Name the largest candidate: if it cannot, nothing can.
            let largest = candidates.max { a, b in
                let x = allocatable[a.type], y = allocatable[b.type]
                return (x.gpus, x.cpuMilli, x.memory) < (y.gpus, y.cpuMilli, y.memory)
            }!
            let why = request.shortfall(in: allocatable[largest.type], gpuResource: shape.key.gpuResource) ?? "does not fit"
            return unschedulable("no instance type is big enough (largest, \(catalog.types[largest.type].name): \(why))")
        }

        var limitReasons: [String] = []
        func limitBlocked(_ candidate: Candidate) -> Bool {
            guard let why = pools[candidate.pool].limits.exceeded(by: capacity[candidate.type], price: candidate.price, usage: usage[candidate.pool]) else {
                return false
            }
            // One reason per pool: the cheapest blocked type's, met first in price order.
            let prefix = "pool \(pools[candidate.pool].name): "
            if !limitReasons.contains(where: { $0.hasPrefix(prefix) }) { limitReasons.append(prefix + why) }
            if rejected.count < 10, !rejected.contains(where: { $0.instanceType == catalog.types[candidate.type].name }) {
                rejected.append(Rejection(instanceType: catalog.types[candidate.type].name, pool: pools[candidate.pool].name, cause: .limit(why)))
            }
            return true
        }
        func open(_ candidate: Candidate, pods slice: ArraySlice<Int>, role: NodeRole) {
            let type = catalog.types[candidate.type]
            let offering = type.offerings[candidate.offering]
            usage[candidate.pool].add(capacity: capacity[candidate.type], price: candidate.price)
            var remaining = allocatable[candidate.type]
            for _ in slice { remaining -= request }
            if role != .notebook { groups[g].openNodes.append(plan.nodes.count) }
            openFree.append(remaining)
            plan.nodes.append(
                .init(
                    instanceType: type.name, pool: pools[candidate.pool].name, zone: offering.zone, capacityType: offering.capacityType,
                    pricePerHour: candidate.price, pods: Array(slice), rejected: rejected, role: role, group: g, typeIndex: candidate.type))
        }

        if shape.key.notebook {
            // 3a. A notebook gets its own node: notebooks stop at different times, and a shared node
            //     lives until the last one stops (aws#5379).
            //     Except on big nodes: when the cheapest type that fits has at least
            //     `notebookSharingRatio` times the GPUs a notebook asks for (an 8-GPU p4d.24xlarge for
            //     1-GPU notebooks), notebooks share it, each with its whole GPUs.
            var index = firstFit
            while next < pods.count {
                // Shared notebook nodes opened this round (this group holds notebooks only).
                var cursor = 0
                let shared = groups[g].openNodes
                while next < pods.count && cursor < shared.count {
                    if request.fits(in: openFree[shared[cursor]]) {
                        openFree[shared[cursor]] -= request
                        plan.nodes[shared[cursor]].pods.append(pods[next])
                        next += 1
                    } else {
                        cursor += 1
                    }
                }
                guard next < pods.count else { return }
                while index < candidates.count && (!request.fits(in: allocatable[candidates[index].type]) || limitBlocked(candidates[index])) {
                    index += 1
                }
                guard index < candidates.count else { return unschedulable(limitReasons.joined(separator: "; ")) }
                let gpus = Int64(catalog.types[candidates[index].type].gpuCount)
                if let ratio = notebookSharingRatio, request.gpus > 0, gpus >= Int64(ratio) * request.gpus {
                    let count = Int(allocatable[candidates[index].type].count(of: request, cap: Int64(pods.count - next)))
                    open(candidates[index], pods: pods[next..<next + count], role: .sharedNotebooks)
                    next += count
                } else {
                    open(candidates[index], pods: pods[next..<next + 1], role: .notebook)
                    next += 1
                }
            }
            return
        }

        // 3b. Other pods: fill nodes opened this round for the same constraints first ...
        let openNodes = groups[g].openNodes
        var openCursor = 0
        while next < pods.count && openCursor < openNodes.count {
            let n = openNodes[openCursor]
            if request.fits(in: openFree[n]) {
                openFree[n] -= request
                plan.nodes[n].pods.append(pods[next])
                next += 1
            } else {
                openCursor += 1
            }
        }
        // ... then open the type with the lowest price per pod for the pods left (so two 1-GPU
        // pods get two g4dn.xlarge, never a 4-GPU node, unless a shared node is cheaper).
        var excluded: [Bool] = []  // candidates blocked by a limit; allocated on the first one
        while next < pods.count {
            let left = Int64(pods.count - next)
            var best = -1
            var bestCount: Int64 = 0
            var bestCost = Double.infinity
            for index in firstFit..<candidates.count where excluded.isEmpty || !excluded[index] {
                let candidate = candidates[index]
                if best >= 0 {
                    // A lower-weight pool is only a fallback: stay in the pool rank of the best so far.
                    if candidate.rank != candidates[best].rank { break }
                    // Prices only rise from here: nothing later can beat bestCost even if it took all pods left.
                    if candidate.price / Double(left) >= bestCost { break }
                }
                let count = allocatable[candidate.type].count(of: request, cap: left)
                guard count > 0 else { continue }
                let cost = candidate.price / Double(count)
                if cost < bestCost - 1e-12 {
                    best = index
                    bestCount = count
                    bestCost = cost
                }
            }
            guard best >= 0 else { return unschedulable(limitReasons.isEmpty ? "no instance type fits" : limitReasons.joined(separator: "; ")) }
            if limitBlocked(candidates[best]) {
                if excluded.isEmpty { excluded = [Bool](repeating: false, count: candidates.count) }
                excluded[best] = true
                continue
            }
            repeat {
                open(candidates[best], pods: pods[next..<next + Int(bestCount)], role: .shared)
                next += Int(bestCount)
            } while Int64(pods.count - next) >= bestCount && next < pods.count && !limitBlocked(candidates[best])
        }
    }
}
