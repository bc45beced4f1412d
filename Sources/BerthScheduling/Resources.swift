/// The resources the scheduler fits, as plain integers so a fit check is five comparisons and
/// no allocation: CPU in millicores, memory and ephemeral storage in bytes, GPUs (of the pod's one
/// GPU resource name) and pod slots.
public struct Resources: Sendable, Hashable {
    public var cpuMilli: Int64
    public var memory: Int64
    public var ephemeralStorage: Int64
    public var gpus: Int64
    public var pods: Int64

    public init(cpuMilli: Int64 = 0, memory: Int64 = 0, ephemeralStorage: Int64 = 0, gpus: Int64 = 0, pods: Int64 = 0) {
        self.cpuMilli = cpuMilli
        self.memory = memory
        self.ephemeralStorage = ephemeralStorage
        self.gpus = gpus
        self.pods = pods
    }

    public static let zero = Resources()

    @inlinable public func fits(in available: Resources) -> Bool {
        cpuMilli <= available.cpuMilli && memory <= available.memory && gpus <= available.gpus
            && pods <= available.pods && ephemeralStorage <= available.ephemeralStorage
    }

    @inlinable public static func + (lhs: Resources, rhs: Resources) -> Resources {
        Resources(
            cpuMilli: lhs.cpuMilli + rhs.cpuMilli, memory: lhs.memory + rhs.memory,
            ephemeralStorage: lhs.ephemeralStorage + rhs.ephemeralStorage, gpus: lhs.gpus + rhs.gpus, pods: lhs.pods + rhs.pods)
    }

    @inlinable public static func - (lhs: Resources, rhs: Resources) -> Resources {
        Resources(
            cpuMilli: lhs.cpuMilli - rhs.cpuMilli, memory: lhs.memory - rhs.memory,
            ephemeralStorage: lhs.ephemeralStorage - rhs.ephemeralStorage, gpus: lhs.gpus - rhs.gpus, pods: lhs.pods - rhs.pods)
    }

    @inlinable public static func += (lhs: inout Resources, rhs: Resources) { lhs = lhs + rhs }
    @inlinable public static func -= (lhs: inout Resources, rhs: Resources) { lhs = lhs - rhs }

    /// How many pods of `shape` fit in `self` (at most `cap`).
    @inlinable public func count(of shape: Resources, cap: Int64) -> Int64 {
        var n = cap
        if shape.cpuMilli > 0 { n = min(n, cpuMilli / shape.cpuMilli) }
        if shape.memory > 0 { n = min(n, memory / shape.memory) }
        if shape.gpus > 0 { n = min(n, gpus / shape.gpus) }
        if shape.pods > 0 { n = min(n, pods / shape.pods) }
        if shape.ephemeralStorage > 0 { n = min(n, ephemeralStorage / shape.ephemeralStorage) }
        return max(0, n)
    }

    /// Why `self` does not fit in `available`: the first short dimension, for a person.
    public func shortfall(in available: Resources, gpuResource: String?) -> String? {
        if cpuMilli > available.cpuMilli { return "needs \(Format.cpu(cpuMilli)) vCPU, has \(Format.cpu(available.cpuMilli))" }
        if memory > available.memory { return "needs \(Format.bytes(memory)) memory, has \(Format.bytes(available.memory))" }
        if gpus > available.gpus { return "needs \(gpus) \(gpuResource ?? "GPU"), has \(available.gpus)" }
        if ephemeralStorage > available.ephemeralStorage {
            return "needs \(Format.bytes(ephemeralStorage)) ephemeral storage, has \(Format.bytes(available.ephemeralStorage))"
        }
        if pods > available.pods { return "needs \(pods) pod slots, has \(available.pods)" }
        return nil
    }
}

/// Numbers for people: `6`, `3.75` vCPU; `7.5Gi`, `512Mi` of memory; `$0.526`.
enum Format {
    static func cpu(_ milli: Int64) -> String {
        if milli % 1000 == 0 { return String(milli / 1000) }
        return decimal(Double(milli) / 1000, places: milli % 10 == 0 ? 2 : 3)
    }

    static func bytes(_ bytes: Int64) -> String {
        let gib = Double(bytes) / Double(1 << 30)
        if gib >= 1 { return decimal(gib, places: 1) + "Gi" }
        return decimal(Double(bytes) / Double(1 << 20), places: 0) + "Mi"
    }

    static func price(_ value: Double) -> String { "$" + decimal(value, places: 4) }

    /// Fixed decimals without Foundation, trailing zeros trimmed.
    static func decimal(_ value: Double, places: Int) -> String {
        var factor = 1.0
        for _ in 0..<places { factor *= 10 }
        let scaled = (value * factor).rounded()
        let whole = Int64(scaled / factor)
        var fraction = Int64(abs(scaled - Double(whole) * factor))
        guard places > 0, fraction != 0 else { return String(whole) }
        var digits = places
        while fraction % 10 == 0 { fraction /= 10; digits -= 1 }
        var text = String(fraction)
        while text.count < digits { text = "0" + text }
        return "\(value < 0 && whole == 0 ? "-" : "")\(whole).\(text)"
    }
}
