/// A Kubernetes resource quantity (`500m`, `2`, `16Gi`, `1e3`) as an exact count of milli-units,
/// enough for scheduling arithmetic (k8s.io/apimachinery/pkg/api/resource). Values beyond
/// Int64 milli-units (~9.2e15) are rejected rather than rounded.
public struct ResourceQuantity: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milli: Int64

    public init(milli: Int64) { self.milli = milli }
    public init(_ units: Int) { milli = Int64(units) * 1000 }

    public init?(_ text: String) {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            bytes.removeFirst()
        }
        var digitsEnd = 0
        while digitsEnd < bytes.count, (bytes[digitsEnd] >= 48 && bytes[digitsEnd] <= 57) || bytes[digitsEnd] == 46 { digitsEnd += 1 }
        let number = String(decoding: bytes[..<digitsEnd], as: UTF8.self)
        let suffix = String(decoding: bytes[digitsEnd...], as: UTF8.self)
        guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, number != "." else { return nil }
        // Scale as (multiplier, decimal exponent) applied to milli-units.
        var binary: Int64 = 1
        var exponent = 0
        switch suffix {
        case "": break
        case "m": exponent = -3
        case "k": exponent = 3
        case "M": exponent = 6
        case "G": exponent = 9
        case "T": exponent = 12
        case "P": exponent = 15
        case "Ki": binary = 1 << 10
        case "Mi": binary = 1 << 20
        case "Gi": binary = 1 << 30
        case "Ti": binary = 1 << 40
        case "Pi": binary = 1 << 50
        default:
            guard suffix.first == "e" || suffix.first == "E", let value = Int(suffix.dropFirst()) else { return nil }
            exponent = value
        }
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        let integer = parts[0]
        let fraction = parts.count > 1 ? parts[1] : ""
        // milli = (integer.fraction) * binary * 10^(exponent + 3), rounded up like upstream.
        var digits = String(integer) + fraction
        var scale = exponent + 3 - fraction.count
        while digits.count > 1 && digits.first == "0" { digits.removeFirst() }
        guard var value = Int64(digits.isEmpty ? "0" : digits) else { return nil }
        let (scaled, overflow) = value.multipliedReportingOverflow(by: binary)
        guard !overflow else { return nil }
        value = scaled
        while scale > 0 {
            let (next, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = next
            scale -= 1
        }
        if scale < 0 {
            var divisor: Int64 = 1
            for _ in 0..<(-scale) {
                guard divisor <= Int64.max / 10 else { value = value > 0 ? 1 : 0; divisor = 1; break }
                divisor *= 10
            }
            value = (value + divisor - 1) / divisor  // round up: 0.1m is 1m upstream
        }
        milli = negative ? -value : value
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.milli < rhs.milli }
    public static func + (lhs: Self, rhs: Self) -> Self { Self(milli: lhs.milli &+ rhs.milli) }
    public static func - (lhs: Self, rhs: Self) -> Self { Self(milli: lhs.milli &- rhs.milli) }
    public static let zero = ResourceQuantity(milli: 0)

    public var description: String {
        milli % 1000 == 0 ? "\(milli / 1000)" : "\(milli)m"
    }
}
