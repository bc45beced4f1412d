import BerthModel

/// The `provisioner:` section of BerthConfig, read strictly like `webhook:` (unknown fields are
/// errors naming their path). Not yet a field of `BerthConfig`: whoever wires the provisioner adds
/// `provisioner` to its allowed fields and calls `ProvisionerConfig(config:path:)`.
public struct ProvisionerConfig: Sendable, Equatable {
    public var pools: [Pool] = [Pool.default]
    public var overhead = NodeOverhead()

    public init() {}

    static let fields = ["pools", "daemonSetOverhead"]

    public init(config json: JSON, path: String) throws(ConfigError) {
        let reader = try FieldReader(json, path: path, allowed: Self.fields)
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
    }
}

/// One entry of `provisioner.pools`.
public enum PoolConfig {
    static let fields = ["name", "requirements", "taints", "labels", "limits", "capacityTypes", "weight"]
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
        if let types = try reader.stringList("capacityTypes") {
            guard !types.isEmpty else { throw ConfigError(path: reader.childPath("capacityTypes"), message: "needs at least one of on-demand, spot") }
            for (index, type) in types.enumerated() where !capacityTypes.contains(type) {
                throw ConfigError(path: "\(reader.childPath("capacityTypes"))[\(index)]", message: "\"\(type)\" is not one of on-demand, spot")
            }
            pool.capacityTypes = types
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
