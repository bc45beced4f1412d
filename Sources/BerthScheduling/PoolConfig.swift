import BerthModel

/// The `provisioner:` section of BerthConfig, read strictly like `webhook:` (unknown fields are
/// errors naming their path). Durations are Go-style strings (`500ms`, `60s`, `5m`, `1h30m`), as
/// in Kubernetes and Karpenter configuration.
public struct ProvisionerConfig: Sendable, Equatable {
    public var pools: [Pool] = [Pool.default]
    public var overhead = NodeOverhead()
    /// Tagged on every instance (`berth.dev/cluster`): what garbage collection and crash recovery
    /// list by. Two clusters sharing an account must not share it.
    public var clusterName = "berth"
    /// Whether the config set `clusterName` (with `--cloud aws` it must: two clusters in one
    /// account and region left at the default would adopt, and terminate, each other's instances).
    public var clusterNameIsExplicit = false
    /// The batch window: closes after `batchIdle` without a new pending pod, or `batchMax` in all.
    public var batchIdle: Duration = .seconds(1)
    public var batchMax: Duration = .seconds(10)
    /// A GPU node with no GPU pod for this long is drained and removed.
    public var emptyAfter: Duration = .seconds(60)
    /// A launch the cloud has not accepted by then is given up (the pods are retried).
    public var launchTimeout: Duration = .seconds(300)
    /// An instance whose Node has not registered by then is terminated (the pods are retried).
    public var registrationTimeout: Duration = .seconds(900)
    /// A Ready node whose GPUs are still not allocatable after this long is reported loudly (no
    /// device plugin?) and no longer waited for.
    public var gpuRegistrationTimeout: Duration = .seconds(300)
    /// How long an offering that reported insufficient capacity is skipped.
    public var unavailableOfferingTTL: Duration = .seconds(180)
    /// Nodes being drained at once, at most (the disruption budget).
    public var maxDisruptedNodes = 10
    /// Delete non-notebook GPU nodes whose pods fit on other nodes (off by default).
    public var consolidation = false
    /// Stop new pods from landing on shared multi-GPU nodes that are at most half used, so they
    /// empty and go (no eviction; on by default).
    public var windDownSharedNodes = true
    /// How long a drain may take: after it, the pods still on the node (held by a
    /// PodDisruptionBudget, say) are deleted (Karpenter's `terminationGracePeriod`).
    public var drainTimeout: Duration = .seconds(900)
    /// Notebooks share big nodes: when the cheapest type that fits a notebook has at least
    /// `notebookSharingRatio` times the GPUs it asks for (8-GPU p4d.24xlarge, 1-GPU notebooks),
    /// notebooks are packed onto such nodes, each with its whole GPUs (`notebookSharing`).
    public var shareBigNodesWithNotebooks = true
    public var notebookSharingRatio = 4
    /// The ratio the scheduler is given (nil when sharing is off).
    public var effectiveNotebookSharingRatio: Int? { shareBigNodesWithNotebooks ? notebookSharingRatio : nil }
    /// The `aws:` subsection as written: the EC2 cloud's settings, read strictly by BerthAWS
    /// (`EC2CloudConfiguration(config:path:)`), which this module does not know.
    public var aws: JSON?
    /// The `nodeClasses:` subsection as written (name → the cloud's node class: AMI, subnets,
    /// security groups, ...), read strictly by the cloud (BerthAWS `NodeClass`). Each pool may name
    /// one (`nodeClass:`); a name that is not here is an error at load.
    public var nodeClasses: JSON?
    /// Warm GPU capacity (`warm:`): off unless configured.
    public var warm = WarmConfig()

    public init() {}

    static let fields = [
        "clusterName", "pools", "daemonSetOverhead", "batchIdleDuration", "batchMaxDuration", "emptyAfter", "launchTimeout",
        "registrationTimeout", "gpuRegistrationTimeout", "unavailableOfferingTTL", "disruption", "notebookSharing", "aws", "nodeClasses", "warm",
    ]

    public init(config json: JSON, path: String) throws(ConfigError) {
        let reader = try FieldReader(json, path: path, allowed: Self.fields)
        if let name = try reader.string("clusterName") {
            guard !name.isEmpty, name.count <= 63, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }) else {
                throw ConfigError(path: reader.childPath("clusterName"), message: "must be 1-63 letters, digits, '-', '.' or '_', found \"\(name)\"")
            }
            clusterName = name
            clusterNameIsExplicit = true
        }
        if let pools = try reader.list("pools") {
            guard !pools.isEmpty else { throw ConfigError(path: reader.childPath("pools"), message: "needs at least one pool") }
            self.pools = []
            for element in pools {
                let pool = try PoolConfig.parse(json: element.value, path: element.path)
                if self.pools.contains(where: { $0.name == pool.name }) {
                    throw ConfigError(path: element.path + ".name", message: "pool \"\(pool.name)\" is defined twice")
                }
                self.pools.append(pool)
            }
        }
        if let overhead = try reader.object("daemonSetOverhead", allowed: ["cpu", "memory", "pods"]) {
            var daemonSets = Resources()
            daemonSets.cpuMilli = try PoolConfig.quantity(overhead, "cpu")?.milli ?? 0
            daemonSets.memory = try PoolConfig.quantity(overhead, "memory")?.value ?? 0
            daemonSets.pods = try PoolConfig.quantity(overhead, "pods")?.value ?? 0
            self.overhead = NodeOverhead(daemonSets: daemonSets)
        }
        func duration(_ key: String, into target: inout Duration, minimum: Duration = .zero) throws(ConfigError) {
            if let value = try reader.duration(key, minimum: minimum) { target = value }
        }
        try duration("batchIdleDuration", into: &batchIdle, minimum: .milliseconds(10))
        try duration("batchMaxDuration", into: &batchMax, minimum: .milliseconds(10))
        try duration("emptyAfter", into: &emptyAfter)
        try duration("launchTimeout", into: &launchTimeout, minimum: .seconds(1))
        try duration("registrationTimeout", into: &registrationTimeout, minimum: .seconds(1))
        try duration("gpuRegistrationTimeout", into: &gpuRegistrationTimeout, minimum: .seconds(1))
        try duration("unavailableOfferingTTL", into: &unavailableOfferingTTL)
        if batchMax < batchIdle {
            throw ConfigError(path: reader.childPath("batchMaxDuration"), message: "must not be shorter than batchIdleDuration")
        }
        aws = reader.value("aws")
        if let sharing = try reader.object("notebookSharing", allowed: ["enabled", "gpuRatio"]) {
            shareBigNodesWithNotebooks = try sharing.bool("enabled") ?? true
            if let ratio = try sharing.number("gpuRatio") {
                guard ratio == ratio.rounded(), ratio >= 2, ratio <= 64 else {
                    throw ConfigError(path: sharing.childPath("gpuRatio"), message: "must be a whole number from 2 to 64")
                }
                notebookSharingRatio = Int(ratio)
            }
        }
        nodeClasses = reader.value("nodeClasses")
        let classNames: [String]
        switch nodeClasses {
        case nil: classNames = []
        case .object(let object)?: classNames = object.keys
        case let other?: throw ConfigError(path: reader.childPath("nodeClasses"), message: "expected a map of name to node class, found \(other.typeName)")
        }
        for (index, pool) in pools.enumerated() {
            guard let name = pool.nodeClass, !classNames.contains(name) else { continue }
            throw ConfigError(path: "\(reader.childPath("pools"))[\(index)].nodeClass",
                              message: "\"\(name)\" is not in nodeClasses (\(classNames.isEmpty ? "none defined" : classNames.joined(separator: ", ")))")
        }
        if let section = reader.value("warm") {
            warm = try WarmConfig(config: section, path: reader.childPath("warm"), pools: pools)
        }
        if let disruption = try reader.object("disruption", allowed: ["maxDisruptedNodes", "consolidation", "windDownSharedNodes", "drainTimeout"]) {
            if let count = try disruption.number("maxDisruptedNodes") {
                guard count == count.rounded(), count >= 1, count <= 1000 else {
                    throw ConfigError(path: disruption.childPath("maxDisruptedNodes"), message: "must be a whole number from 1 to 1000")
                }
                maxDisruptedNodes = Int(count)
            }
            consolidation = try disruption.bool("consolidation") ?? false
            windDownSharedNodes = try disruption.bool("windDownSharedNodes") ?? true
            if let value = try disruption.duration("drainTimeout", minimum: .seconds(1)) {
                drainTimeout = value
            }
        }
    }
}

extension FieldReader {
    /// A Go duration (`90s`, `1m30s`) at `key`, at least `minimum`; nil when absent. A malformed
    /// one, or one under the minimum, is an error naming the field.
    public func duration(_ key: String, minimum: Duration = .zero) throws(ConfigError) -> Duration? {
        guard let text = try string(key) else { return nil }
        let value: Duration
        do { value = try GoDuration.parse(text) } catch { throw ConfigError(path: childPath(key), message: "\(error)") }
        guard value >= minimum else { throw ConfigError(path: childPath(key), message: "must be at least \(GoDuration.format(minimum)), found \"\(text)\"") }
        return value
    }
}

/// Go's `time.ParseDuration` subset Kubernetes configuration uses: a sequence of decimal numbers
/// with units `ms`, `s`, `m`, `h` (`90s`, `1m30s`, `1.5h`, `250ms`). No sign, no `us`/`ns`.
public enum GoDuration {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String) throws(ParseError) -> Duration {
        let fail = ParseError(description: "\"\(text)\" is not a duration such as 500ms, 60s, 5m or 1h30m")
        var chars = Substring(text)
        guard !chars.isEmpty else { throw fail }
        if chars == "0" { return .zero }
        var total = 0.0
        while !chars.isEmpty {
            let number = chars.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { throw fail }
            chars = chars.dropFirst(number.count)
            let unit = chars.prefix { $0.isASCII && $0.isLetter }
            chars = chars.dropFirst(unit.count)
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            default: throw fail
            }
        }
        guard total.isFinite, total < 1e9 else { throw fail }
        return .milliseconds(Int64((total * 1000).rounded()))
    }

    /// `1m30s`, `500ms`, `0s`.
    public static func format(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms == 0 { return "0s" }
        if ms < 1000 { return "\(ms)ms" }
        var rest = ms / 1000
        var text = ""
        if rest >= 3600 { text += "\(rest / 3600)h"; rest %= 3600 }
        if rest >= 60 { text += "\(rest / 60)m"; rest %= 60 }
        if rest > 0 || text.isEmpty { text += "\(rest)s" }
        if ms % 1000 != 0 { text += "\(ms % 1000)ms" }
        return text
    }
}

/// One entry of `provisioner.pools`.
public enum PoolConfig {
    static let fields = ["name", "requirements", "taints", "labels", "limits", "capacityTypes", "notebookCapacityTypes", "weight", "nodeClass"]
    static let limitFields = ["gpus", "cpu", "memory", "nodes", "pricePerHour"]
    static let capacityTypes = ["on-demand", "spot"]

    public static func parse(json: JSON, path: String) throws(ConfigError) -> Pool {
        let reader = try FieldReader(json, path: path, allowed: fields)
        guard let name = try reader.string("name"), !name.isEmpty else { throw ConfigError(path: reader.childPath("name"), message: "is required") }
        var pool = Pool(name: name, requirements: [])
        for element in try reader.list("requirements") ?? [] {
            pool.requirements.append(try requirement(element.value, path: element.path))
        }
        if let taints = try reader.list("taints") {
            pool.taints = []
            for element in taints { pool.taints.append(try taint(element.value, path: element.path)) }
        }
        pool.labels = try reader.stringMap("labels") ?? [:]
        pool.nodeClass = try reader.string("nodeClass")
        if let types = try reader.stringList("capacityTypes") {
            guard !types.isEmpty else { throw ConfigError(path: reader.childPath("capacityTypes"), message: "needs at least one of on-demand, spot") }
            for (index, type) in types.enumerated() where !capacityTypes.contains(type) {
                throw ConfigError(path: "\(reader.childPath("capacityTypes"))[\(index)]", message: "\"\(type)\" is not one of on-demand, spot")
            }
            pool.capacityTypes = types
        }
        if let types = try reader.stringList("notebookCapacityTypes") {
            guard !types.isEmpty else { throw ConfigError(path: reader.childPath("notebookCapacityTypes"), message: "needs at least one of on-demand, spot") }
            for (index, type) in types.enumerated() where !capacityTypes.contains(type) {
                throw ConfigError(path: "\(reader.childPath("notebookCapacityTypes"))[\(index)]", message: "\"\(type)\" is not one of on-demand, spot")
            }
            pool.notebookCapacityTypes = types
        }
        if let weight = try reader.number("weight") {
            guard weight == weight.rounded(), weight >= 0, weight <= 100 else {
                throw ConfigError(path: reader.childPath("weight"), message: "must be a whole number from 0 to 100")
            }
            pool.weight = Int(weight)
        }
        if let limits = try reader.object("limits", allowed: limitFields) {
            pool.limits.gpus = try quantity(limits, "gpus")?.value
            pool.limits.cpuMilli = try quantity(limits, "cpu")?.milli
            pool.limits.memory = try quantity(limits, "memory")?.value
            pool.limits.nodes = try quantity(limits, "nodes")?.value
            if let price = try limits.number("pricePerHour") {
                guard price >= 0 else { throw ConfigError(path: limits.childPath("pricePerHour"), message: "must not be negative") }
                pool.limits.pricePerHour = price
            }
        }
        return pool
    }

    /// A quantity written as a string (`64Gi`) or a number (`8`).
    static func quantity(_ reader: FieldReader, _ key: String) throws(ConfigError) -> Quantity? {
        guard let value = reader.value(key) else { return nil }
        let text: String
        switch value {
        case let .string(string): text = string
        case let .number(number): text = number
        default: throw ConfigError(path: reader.childPath(key), message: "expected a quantity such as 8, 500m or 64Gi, found \(value.typeName)")
        }
        do {
            let quantity = try Quantity.parse(text)
            guard quantity.milli >= 0 else { throw ConfigError(path: reader.childPath(key), message: "must not be negative") }
            return quantity
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(path: reader.childPath(key), message: "\(error)")
        }
    }

    static func requirement(_ json: JSON, path: String) throws(ConfigError) -> LabelRequirement {
        let fields = try FieldReader(json, path: path, allowed: ["key", "operator", "values"])
        guard let key = try fields.string("key"), !key.isEmpty else { throw ConfigError(path: fields.childPath("key"), message: "is required") }
        let name = try fields.string("operator") ?? ""
        guard let op = LabelRequirement.Operator(rawValue: name) else {
            throw ConfigError(
                path: fields.childPath("operator"),
                message: "\"\(name)\" is not one of \(LabelRequirement.Operator.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let values = try fields.stringList("values") ?? []
        if (op == .in || op == .notIn) && values.isEmpty {
            throw ConfigError(path: path, message: "operator \(op.rawValue) needs at least one value")
        }
        if (op == .exists || op == .doesNotExist) && !values.isEmpty {
            throw ConfigError(path: path, message: "operator \(op.rawValue) takes no values")
        }
        if (op == .gt || op == .lt) && (values.count != 1 || Int64(values[0]) == nil) {
            throw ConfigError(path: path, message: "operator \(op.rawValue) needs exactly one integer value")
        }
        return LabelRequirement(key: key, operator: op, values: values)
    }

    static let taintEffects = ["NoSchedule", "PreferNoSchedule", "NoExecute"]

    static func taint(_ json: JSON, path: String) throws(ConfigError) -> Taint {
        let fields = try FieldReader(json, path: path, allowed: ["key", "value", "effect"])
        guard let key = try fields.string("key"), !key.isEmpty else { throw ConfigError(path: fields.childPath("key"), message: "is required") }
        let effect = try fields.string("effect") ?? ""
        guard taintEffects.contains(effect) else {
            throw ConfigError(path: fields.childPath("effect"), message: "\"\(effect)\" is not one of \(taintEffects.joined(separator: ", "))")
        }
        return Taint(key: key, value: try fields.string("value") ?? "", effect: effect)
    }
}
