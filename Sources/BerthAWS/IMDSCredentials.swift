import Foundation

/// The instance profile's credentials from the EC2 instance metadata service, IMDSv2 only:
/// `PUT /latest/api/token` first, then the role name and its credentials with that token.
public struct IMDSCredentials: AWSCredentialProvider {
    public let endpoint: AWSEndpoint

    public init(endpoint: AWSEndpoint = AWSEndpoint(secure: false, host: "169.254.169.254")) {
        self.endpoint = endpoint
    }

    public var name: String { "instance metadata (\(endpoint))" }

    public func fetch() async throws(AWSError) -> AWSCredentials {
        // Short timeouts: off EC2 nothing answers, and this is the chain's last resort.
        let http = try AWSHTTP(endpoint: endpoint, connectTimeout: .seconds(1), readTimeout: .seconds(2))
        let host = ("Host", endpoint.hostHeader)
        let tokenResponse = try await http.send(action: "IMDS token", method: "PUT", target: "/latest/api/token",
                                          headers: [host, ("X-aws-ec2-metadata-token-ttl-seconds", "21600")])
        guard tokenResponse.status == 200 else {
            throw .credentials(source: name, message: "PUT /latest/api/token: HTTP \(tokenResponse.status)")
        }
        let token = String(decoding: tokenResponse.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = ("X-aws-ec2-metadata-token", token)
        let base = "/latest/meta-data/iam/security-credentials/"
        let roles = try await http.send(action: "IMDS role", method: "GET", target: base, headers: [host, auth])
        guard roles.status == 200 else {
            throw .credentials(source: name, message: "GET \(base): HTTP \(roles.status) (no instance profile attached?)")
        }
        guard let role = String(decoding: roles.body, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw .credentials(source: name, message: "GET \(base): no role name in the answer")
        }
        let path = base + SigV4Signer.encode(role)
        let answer = try await http.send(action: "IMDS credentials", method: "GET", target: path, headers: [host, auth])
        guard answer.status == 200 else { throw .credentials(source: name, message: "GET \(path): HTTP \(answer.status)") }
        return try ContainerCredentials.decode(answer.body, source: name)
    }
}
