import Foundation

/// A Node's `spec.providerID` as Berth's clouds write it: `<scheme>:///<zone>/<instance id>`
/// (`aws:///us-east-1a/i-0123456789abcdef0`, `sim:///us-east-1a/i-...`).
public struct ProviderID: Sendable, Hashable, LosslessStringConvertible {
    public var scheme: String
    public var zone: String
    public var instanceID: String

    public init(scheme: String, zone: String, instanceID: String) {
        self.scheme = scheme
        self.zone = zone
        self.instanceID = instanceID
    }

    /// Nil unless the text is exactly `<scheme>:///<zone>/<id>` with all three non-empty.
    public init?(_ description: String) {
        guard let separator = description.range(of: ":///") else { return nil }
        let scheme = description[..<separator.lowerBound]
        let path = description[separator.upperBound...].split(separator: "/", omittingEmptySubsequences: false)
        guard !scheme.isEmpty, path.count == 2, !path[0].isEmpty, !path[1].isEmpty else { return nil }
        self.init(scheme: String(scheme), zone: String(path[0]), instanceID: String(path[1]))
    }

    public var description: String { "\(scheme):///\(zone)/\(instanceID)" }
}
