import Foundation

/// RFC 3339 / ISO 8601 timestamps as Kubernetes and AWS write them: `2026-11-30T10:50:45Z`, with
/// or without fractional seconds (Kubernetes' `MicroTime` has six digits, moto nine; the
/// formatter takes at most three, so longer fractions are cut to milliseconds).
public enum RFC3339 {
    public static func parse(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: trimmed) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: trimmed) { return date }
        if let dot = trimmed.firstIndex(of: "."), let zone = trimmed[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
            let digits = trimmed[trimmed.index(after: dot)..<zone].prefix(3)
            return fractional.date(from: String(trimmed[..<dot]) + "." + digits + String(trimmed[zone...]))
        }
        return nil
    }

    /// UTC, whole seconds (`Time`), or with six fractional digits (`MicroTime`).
    public static func string(_ date: Date, micro: Bool = false) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        if !micro { return formatter.string(from: date) }
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let micros = Int(((date.timeIntervalSince1970 - seconds) * 1_000_000).rounded(.down))
        let base = formatter.string(from: Date(timeIntervalSince1970: seconds))
        return String(base.dropLast()) + "." + String(format: "%06d", micros) + "Z"
    }
}
