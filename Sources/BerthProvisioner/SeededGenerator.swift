/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator whose sequence depends only on
/// its seed, for the simulation's reproducible randomness. Not for anything secret.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// A generator for one named thing (a launch id) under a seed: its draws do not depend on
    /// what else was drawn before, so concurrent launches stay reproducible whatever their order.
    public init(seed: UInt64, key: String) {
        // FNV-1a over the key's UTF-8 bytes, mixed into the seed.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        state = seed ^ hash
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

extension Duration {
    /// A duration drawn uniformly from `range`, to the nanosecond.
    static func random(in range: ClosedRange<Duration>, using generator: inout some RandomNumberGenerator) -> Duration {
        let span = range.upperBound - range.lowerBound
        let nanos = span.components.seconds * 1_000_000_000 + span.components.attoseconds / 1_000_000_000
        guard nanos > 0 else { return range.lowerBound }
        return range.lowerBound + .nanoseconds(Int64.random(in: 0...nanos, using: &generator))
    }
}

