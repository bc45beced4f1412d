import BerthModel

/// The instance types the scheduler may launch, in a fixed order (the order ties are broken in).
public struct InstanceCatalog: Sendable, Equatable {
    public var types: [InstanceType]

    public init(types: [InstanceType]) {
        self.types = types
    }

    public subscript(name: String) -> InstanceType? { types.first { $0.name == name } }

    /// The same types, each launched with a root volume of `gib` (what the cloud will give).
    public func withRootVolume(gib: Int) -> InstanceCatalog {
        var result = self
        for index in result.types.indices { result.types[index].rootVolumeGiB = gib }
        return result
    }

    public static let defaultZones = ["us-east-1a", "us-east-1b", "us-east-1c"]

    /// The EC2 GPU types of us-east-1 with on-demand prices (Karpenter's generated pricing table,
    /// aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go, 2026-07), GPU memory per GPU in MiB as EC2's DescribeInstanceTypes reports
    /// it, and ENI-limited max pods from Karpenter's zz_generated.vpclimits.go. One on-demand
    /// offering per zone.
    public static func builtIn(zones: [String] = defaultZones) -> InstanceCatalog {
        // name, GPU, GPUs, vCPU, memory GiB, $/h, max pods
        let rows: [(String, String, Int, Int, Double, Double, Int)] = [
            ("g4dn.xlarge", "t4", 1, 4, 16, 0.526, 29),
            ("g4dn.2xlarge", "t4", 1, 8, 32, 0.752, 29),
            ("g4dn.4xlarge", "t4", 1, 16, 64, 1.204, 29),
            ("g4dn.8xlarge", "t4", 1, 32, 128, 2.176, 58),
            ("g4dn.12xlarge", "t4", 4, 48, 192, 3.912, 234),
            ("g4dn.metal", "t4", 8, 96, 384, 7.824, 737),
            ("g5.xlarge", "a10g", 1, 4, 16, 1.006, 58),
            ("g5.2xlarge", "a10g", 1, 8, 32, 1.212, 58),
            ("g5.4xlarge", "a10g", 1, 16, 64, 1.624, 234),
            ("g5.8xlarge", "a10g", 1, 32, 128, 2.448, 234),
            ("g5.12xlarge", "a10g", 4, 48, 192, 5.672, 737),
            ("g5.24xlarge", "a10g", 4, 96, 384, 8.144, 737),
            ("g5.48xlarge", "a10g", 8, 192, 768, 16.288, 345),
            ("g6.xlarge", "l4", 1, 4, 16, 0.8048, 58),
            ("g6.2xlarge", "l4", 1, 8, 32, 0.9776, 58),
            ("g6.4xlarge", "l4", 1, 16, 64, 1.3232, 234),
            ("g6.8xlarge", "l4", 1, 32, 128, 2.0144, 234),
            ("g6.12xlarge", "l4", 4, 48, 192, 4.6016, 234),
            ("g6.48xlarge", "l4", 8, 192, 768, 13.3504, 737),
            ("g6e.xlarge", "l40s", 1, 4, 32, 1.861, 58),
            ("g6e.2xlarge", "l40s", 1, 8, 64, 2.2421, 58),
            ("g6e.12xlarge", "l40s", 4, 48, 384, 10.4926, 292),
            ("g6e.48xlarge", "l40s", 8, 192, 1536, 30.1312, 492),
            ("p3.2xlarge", "v100", 1, 8, 61, 3.06, 58),
            ("p3.8xlarge", "v100", 4, 32, 244, 12.24, 234),
            ("p3.16xlarge", "v100", 8, 64, 488, 24.48, 234),
            ("p4d.24xlarge", "a100", 8, 96, 1152, 21.9576, 737),
            ("p5.48xlarge", "h100", 8, 192, 2048, 55.04, 100),
        ]
        let gpuMemoryMiB = ["t4": 16384, "a10g": 24576, "l4": 22888, "l40s": 45776, "v100": 16384, "a100": 40960, "h100": 81920]
        return InstanceCatalog(types: rows.map { row in
            InstanceType(
                name: row.0, vcpu: row.3, memoryMiB: Int64(row.4 * 1024), gpuName: row.1, gpuCount: row.2,
                gpuMemoryMiB: gpuMemoryMiB[row.1] ?? 0, maxPods: row.6,
                offerings: zones.map { Offering(zone: $0, capacityType: "on-demand", pricePerHour: row.5) })
        })
    }
}

extension InstanceCatalog {
    /// The built-in catalog with a catalog file's entries laid over it: an entry replaces the
    /// built-in type of its name (another region's prices, say) or adds a type. The file is a JSON
    /// (or YAML) list in `berth catalog -o json`'s shape — `name`, `vcpu`, `memoryMiB`,
    /// `pricePerHour` required; `gpus`, `gpuName`, `gpuMemoryMiB`, `arch` (amd64), `maxPods` (110),
    /// `zones` (the catalog's) optional; `note` ignored — read strictly.
    /// The fields of an entry in `berth catalog -o json`'s shape.
    public static let fileFields = ["name", "gpus", "gpuName", "gpuMemoryMiB", "vcpu", "memoryMiB", "arch", "pricePerHour", "maxPods", "zones", "rootVolumeGiB", "note"]

    public func overlaid(with json: JSON, source: String, zones: [String] = InstanceCatalog.defaultZones) throws(ConfigError) -> InstanceCatalog {
        guard let list = json.arrayValue else {
            throw ConfigError(path: source, message: "expected a list of instance types (berth catalog -o json), found \(json.typeName)")
        }
        var result = self
        var seen = Set<String>()
        for (index, element) in list.enumerated() {
            let path = "\(source): [\(index)]"
            let reader = try FieldReader(element, path: path, allowed: Self.fileFields)
            guard let name = try reader.string("name"), !name.isEmpty else { throw ConfigError(path: reader.childPath("name"), message: "is required") }
            guard seen.insert(name).inserted else { throw ConfigError(path: reader.childPath("name"), message: "\"\(name)\" is listed twice") }
            func count(_ key: String, required: Bool = false, default value: Int = 0) throws(ConfigError) -> Int {
                guard let number = try reader.number(key) else {
                    if required { throw ConfigError(path: reader.childPath(key), message: "is required") }
                    return value
                }
                guard number == number.rounded(), number >= 0, number < 1e9 else {
                    throw ConfigError(path: reader.childPath(key), message: "must be a whole number >= 0, found \(number)")
                }
                return Int(number)
            }
            guard let price = try reader.number("pricePerHour") else { throw ConfigError(path: reader.childPath("pricePerHour"), message: "is required") }
            guard price >= 0, price.isFinite else { throw ConfigError(path: reader.childPath("pricePerHour"), message: "must be >= 0, found \(price)") }
            let vcpu = try count("vcpu", required: true)
            guard vcpu > 0 else { throw ConfigError(path: reader.childPath("vcpu"), message: "must be at least 1") }
            let arch = try reader.string("arch") ?? "amd64"
            guard ["amd64", "arm64"].contains(arch) else { throw ConfigError(path: reader.childPath("arch"), message: "\"\(arch)\" is not one of amd64, arm64") }
            let gpus = try count("gpus")
            let type = InstanceType(
                name: name, vcpu: vcpu, memoryMiB: Int64(try count("memoryMiB", required: true)), gpuName: try reader.string("gpuName") ?? "",
                gpuCount: gpus, gpuMemoryMiB: try count("gpuMemoryMiB"), arch: arch, maxPods: try count("maxPods", default: 110),
                offerings: (try reader.stringList("zones") ?? zones).map { Offering(zone: $0, capacityType: "on-demand", pricePerHour: price) },
                rootVolumeGiB: try count("rootVolumeGiB", default: InstanceType.defaultRootVolumeGiB))
            guard type.rootVolumeGiB >= 8 else { throw ConfigError(path: reader.childPath("rootVolumeGiB"), message: "must be at least 8") }
            if let existing = result.types.firstIndex(where: { $0.name == name }) {
                result.types[existing] = type
            } else {
                result.types.append(type)
            }
        }
        return result
    }
}
