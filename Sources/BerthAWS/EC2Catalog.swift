import BerthScheduling
import Foundation

/// The instance types EC2 describes, turned into Berth's `InstanceType`s: GPU info, vCPU, memory,
/// architecture and ENI-limited max pods from DescribeInstanceTypes; on-demand prices from the
/// configured table (EC2 has no price API); spot prices from DescribeSpotPriceHistory.
public struct EC2Catalog: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var type: InstanceType
        /// nil when the price table does not know the type: it then has no on-demand offering.
        public var onDemandPricePerHour: Double?
    }

    public var entries: [Entry]
    /// Where the on-demand prices came from (`the AWS Price List for ap-northeast-2`).
    public var pricesFrom = "the built-in us-east-1 table"
    /// Set when the prices are not the region's own (the built-in table outside us-east-1, the
    /// Price List unreachable): say it where the catalog is used.
    public var priceWarning: String?

    /// What the scheduler may launch: types with at least one priced offering.
    public var schedulable: InstanceCatalog {
        InstanceCatalog(types: entries.map(\.type).filter { !$0.offerings.isEmpty })
    }

    /// Types described by EC2 that the price table does not know.
    public var unpriced: [String] { entries.filter { $0.onDemandPricePerHour == nil }.map(\.name) }

    public subscript(name: String) -> Entry? { entries.first { $0.name == name } }

    /// Builds the catalog of `types` (already filtered to what the cloud may launch): in family
    /// order, then by size (vCPU), then name. `offered`
    /// (`type/zone` keys from DescribeInstanceTypeOfferings) limits each type's zones; nil: every zone.
    public static func build(
        types: [EC2API.InstanceTypeInfo], onDemandPrices: [String: Double], spotPrices: [EC2API.SpotPrice], zones: [String],
        offered: Set<String>? = nil, rootVolumeGiB: Int = InstanceType.defaultRootVolumeGiB
    ) -> EC2Catalog {
        var spot: [String: [String: Double]] = [:]
        for price in spotPrices where zones.contains(price.zone) {
            spot[price.instanceType, default: [:]][price.zone] = price.price
        }
        let entries = types.map { info -> Entry in
            let price = onDemandPrices[info.name]
            let typeZones = zones.filter { offered?.contains("\(info.name)/\($0)") ?? true }
            var offerings: [Offering] = []
            if let price, info.usageClasses.isEmpty || info.usageClasses.contains("on-demand") {
                offerings += typeZones.map { Offering(zone: $0, capacityType: "on-demand", pricePerHour: price) }
            }
            for zone in typeZones {
                if let spotPrice = spot[info.name]?[zone] { offerings.append(Offering(zone: zone, capacityType: "spot", pricePerHour: spotPrice)) }
            }
            let maxPods = info.maxNetworkInterfaces > 0 && info.ipv4PerInterface > 1
                ? info.maxNetworkInterfaces * (info.ipv4PerInterface - 1) + 2 : 110
            let type = InstanceType(
                name: info.name, vcpu: info.vcpu, memoryMiB: info.memoryMiB, gpuName: labelValue(info.gpuName), gpuCount: info.gpuCount,
                gpuMemoryMiB: info.gpuMemoryMiB, gpuManufacturer: labelValue(info.gpuManufacturer), arch: arch(info.architectures),
                maxPods: maxPods, offerings: offerings, rootVolumeGiB: rootVolumeGiB)
            return Entry(type: type, onDemandPricePerHour: price)
        }
        return EC2Catalog(entries: entries.sorted { a, b in
            if a.type.family != b.type.family { return a.type.family < b.type.family }
            if a.type.vcpu != b.type.vcpu { return a.type.vcpu < b.type.vcpu }
            return a.name < b.name
        })
    }

    /// Karpenter's label values for GPU names: lower case, spaces as dashes (`Radeon Pro V520` → `radeon-pro-v520`).
    static func labelValue(_ name: String) -> String {
        name.lowercased().replacingOccurrences(of: " ", with: "-")
    }

    /// Kubernetes' names: x86_64 → amd64, arm64 stays.
    static func arch(_ architectures: [String]) -> String {
        if architectures.contains("x86_64") { return "amd64" }
        if architectures.contains("arm64") { return "arm64" }
        return architectures.first ?? "amd64"
    }
}

extension EC2Catalog.Entry {
    public var name: String { type.name }
}
