import Foundation

/// The one IAM read `berth check` makes: the roles of an instance profile (`GetInstanceProfile`,
/// Query API 2010-05-08, the global endpoint, signed for us-east-1).
public struct IAMAPI: Sendable {
    public static let version = "2010-05-08"
    public static let endpoint = AWSEndpoint(secure: true, host: "iam.amazonaws.com")
    public let client: AWSQueryClient

    public init(client: AWSQueryClient) { self.client = client }

    /// The ARNs of the profile's roles; `profile` is a name or an instance-profile ARN.
    public func instanceProfileRoles(_ profile: String) async throws(AWSError) -> [String] {
        let name = profile.hasPrefix("arn:") ? String(profile.split(separator: "/").last ?? Substring(profile)) : profile
        let root = try await client.call("GetInstanceProfile", [("InstanceProfileName", name)])
        // IAM's lists are <member>s, not EC2's <item>s.
        return root.first("InstanceProfile")?.child("Roles")?.children("member").compactMap { $0.string("Arn") } ?? []
    }

    /// The names of the profile's roles, nil when there is no such profile.
    public func instanceProfileRoleNames(_ name: String) async throws(AWSError) -> [String]? {
        do {
            let root = try await client.call("GetInstanceProfile", [("InstanceProfileName", name)])
            return root.first("InstanceProfile")?.child("Roles")?.children("member").compactMap { $0.string("RoleName") } ?? []
        } catch where error.code == "NoSuchEntity" {
            return nil
        }
    }

    public func createInstanceProfile(_ name: String, tags: [String: String]) async throws(AWSError) {
        var parameters = [("InstanceProfileName", name)]
        for (index, key) in tags.keys.sorted().enumerated() {
            parameters += [("Tags.member.\(index + 1).Key", key), ("Tags.member.\(index + 1).Value", tags[key]!)]
        }
        _ = try await client.call("CreateInstanceProfile", parameters)
    }

    public func addRole(_ role: String, toInstanceProfile name: String) async throws(AWSError) {
        _ = try await client.call("AddRoleToInstanceProfile", [("InstanceProfileName", name), ("RoleName", role)])
    }
}
