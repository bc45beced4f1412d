/// A Kubernetes resource quantity (`500m`, `2`, `1.5`, `8Gi`, `16G`, `1e3`, `100Ki`), held exactly as
/// an integer count of thousandths. Parsing follows apimachinery's `resource.ParseQuantity` grammar:
/// a signed decimal number, then either a binary suffix (Ki..Ei), a decimal suffix (n, u, m, "",
/// k, M, G, T, P, E) or a decimal exponent (`e3`, `E-2`). Like `Quantity.MilliValue()`, anything
/// finer than a thousandth is rounded up, so `1n` of CPU is still `1m`.
/// Shared by the scheduler and the Kubernetes client: one parser for one grammar.
public struct Quantity: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The value times 1000: millicores for CPU, thousandths of a byte for memory.
    public var milli: Int64

    public init(milli: Int64) { self.milli = milli }
    public init(_ whole: Int64) { self.milli = whole * 1000 }

    /// The value rounded up to a whole unit: bytes for memory, GPUs for extended resources.
    public var value: Int64 {
        milli >= 0 ? (milli + 999) / 1000 : -((-milli) / 1000)
    }

    public static func < (lhs: Quantity, rhs: Quantity) -> Bool { lhs.milli < rhs.milli }

    public var description: String {
        if milli % 1000 == 0 { return String(milli / 1000) }
        return "\(milli)m"
    }

    public static let zero = Quantity(milli: 0)
    public static func + (lhs: Quantity, rhs: Quantity) -> Quantity { Quantity(milli: lhs.milli &+ rhs.milli) }
    public static func - (lhs: Quantity, rhs: Quantity) -> Quantity { Quantity(milli: lhs.milli &- rhs.milli) }

    public init(parsing text: String) throws(QuantityError) {
        self = try Quantity.parse(text)
    }

    public static func parse(_ text: String) throws(QuantityError) -> Quantity {
        func fail(_ reason: String) -> QuantityError { QuantityError(value: text, reason: reason) }
        let bytes = Array(text.utf8)
        var index = 0
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        // Significant digits with leading zeros dropped; `scale` is the power of ten they carry.
        var digits: [UInt8] = []
        var scale = 0
        var sawDigit = false
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
            sawDigit = true
            if !(digits.isEmpty && bytes[index] == 0x30) { digits.append(bytes[index] - 0x30) }
            index += 1
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                sawDigit = true
                if !(digits.isEmpty && bytes[index] == 0x30) { digits.append(bytes[index] - 0x30) }
                scale -= 1
                index += 1
            }
        }
        guard sawDigit else { throw fail("expected a number such as 500m, 2, 1.5, 8Gi") }
        var exponent = 0
        var binary: Int64 = 1
        let suffix = String(decoding: bytes[index...], as: UTF8.self)
        switch suffix {
        case "": break
        case "n": exponent = -9
        case "u": exponent = -6
        case "m": exponent = -3
        case "k": exponent = 3
        case "M": exponent = 6
        case "G": exponent = 9
        case "T": exponent = 12
        case "P": exponent = 15
        case "E": exponent = 18
        case "Ki": binary = 1 << 10
        case "Mi": binary = 1 << 20
        case "Gi": binary = 1 << 30
        case "Ti": binary = 1 << 40
        case "Pi": binary = 1 << 50
        case "Ei": binary = 1 << 60
        default:
            guard let first = suffix.first, first == "e" || first == "E",
                let value = Int(suffix.dropFirst()), suffix.count > 1, suffix.dropFirst().first != "+" || suffix.count > 2,
                abs(value) <= 100
            else { throw fail("unknown suffix \"\(suffix)\" (expected Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent such as e3)") }
            exponent = value
        }
        // value × 1000 = digits × 10^(scale + exponent + 3) × binary
        let power = scale + exponent + 3
        let tooLarge = fail("too large")
        var mantissa: Int64 = 0
        var dropped = false  // non-zero digits below a thousandth: round up
        let kept = power >= 0 ? digits.count : max(0, digits.count + power)
        for (position, digit) in digits.enumerated() {
            if position < kept {
                let (times, o1) = mantissa.multipliedReportingOverflow(by: 10)
                let (plus, o2) = times.addingReportingOverflow(Int64(digit))
                if o1 || o2 { throw tooLarge }
                mantissa = plus
            } else if digit != 0 {
                dropped = true
            }
        }
        if power > 0 {
            for _ in 0..<power {
                let (times, overflow) = mantissa.multipliedReportingOverflow(by: 10)
                if overflow { if mantissa == 0 { break }; throw tooLarge }
                mantissa = times
            }
        }
        if binary != 1 {
            // Binary suffixes multiply the exact decimal value; dropped fractions need the
            // remainder, so redo the division exactly when digits were cut off.
            if power < 0 {
                var exact: Int64 = 0
                for digit in digits {
                    let (times, o1) = exact.multipliedReportingOverflow(by: 10)
                    let (plus, o2) = times.addingReportingOverflow(Int64(digit))
                    if o1 || o2 { throw tooLarge }
                    exact = plus
                }
                let (product, overflow) = exact.multipliedReportingOverflow(by: binary)
                if overflow { throw tooLarge }
                var divisor: Int64 = 1
                for _ in 0..<(-power) {
                    let (next, o) = divisor.multipliedReportingOverflow(by: 10)
                    if o { divisor = Int64.max; break }
                    divisor = next
                }
                mantissa = product / divisor
                dropped = product % divisor != 0
            } else {
                let (product, overflow) = mantissa.multipliedReportingOverflow(by: binary)
                if overflow { throw tooLarge }
                mantissa = product
            }
        }
        if dropped {
            let (plus, overflow) = mantissa.addingReportingOverflow(1)
            if overflow { throw tooLarge }
            mantissa = plus
        }
        return Quantity(milli: negative ? -mantissa : mantissa)
    }
}

/// A quantity that does not parse: the text seen and why.
public struct QuantityError: Error, Equatable, CustomStringConvertible {
    public var value: String
    public var reason: String

    public init(value: String, reason: String) {
        self.value = value
        self.reason = reason
    }

    public var description: String { "invalid quantity \"\(value)\": \(reason)" }
}

extension Duration {
    /// The duration in seconds, as a `TimeInterval` holds it (inlinable: control loops call it often).
    @inlinable public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
