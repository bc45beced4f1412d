import BerthModel
import Foundation

/// IRSA on EKS: the projected service-account token (`AWS_WEB_IDENTITY_TOKEN_FILE`, re-read on
/// every fetch because the kubelet rotates it) exchanged for the role's temporary credentials with
/// STS `AssumeRoleWithWebIdentity`, an unsigned call (the token is the proof).
public struct WebIdentityCredentials: AWSCredentialProvider {
    public let roleARN: String
    public let tokenFile: String
    public let sessionName: String
    public let sts: AWSEndpoint
    public let region: String
    private let files: AWSFileReader

    public init(roleARN: String, tokenFile: String, sessionName: String, sts: AWSEndpoint, region: String, files: AWSFileReader = .disk) {
        self.roleARN = roleARN
        self.tokenFile = tokenFile
        self.sessionName = sessionName
        self.sts = sts
        self.region = region
        self.files = files
    }

    public var name: String { "web identity (\(roleARN))" }

    public func fetch() async throws(AWSError) -> AWSCredentials {
        let token = try files.token(tokenFile, source: name)
        let client = try AWSQueryClient(endpoint: sts, region: region, service: "sts", version: "2011-06-15", credentials: nil,
                                        retry: AWSRetryPolicy(maxAttempts: 3))
        let root: XMLNode
        do throws(AWSError) {
            root = try await client.call("AssumeRoleWithWebIdentity", [
                ("RoleArn", roleARN), ("RoleSessionName", sessionName), ("WebIdentityToken", token),
            ])
        } catch {
            // AWS's message may quote the request; never the token, but say where it came from.
            throw .credentials(source: name, message: error.description)
        }
        guard let credentials = root.first("Credentials") else {
            throw .malformedResponse(action: "AssumeRoleWithWebIdentity", reason: "no Credentials element")
        }
        return try Self.read(credentials, action: "AssumeRoleWithWebIdentity")
    }

    /// `<Credentials><AccessKeyId/><SecretAccessKey/><SessionToken/><Expiration/></Credentials>`
    static func read(_ node: XMLNode, action: String) throws(AWSError) -> AWSCredentials {
        guard let key = node.string("AccessKeyId"), !key.isEmpty, let secret = node.string("SecretAccessKey"), !secret.isEmpty else {
            throw .malformedResponse(action: action, reason: "Credentials lack AccessKeyId or SecretAccessKey")
        }
        guard let expirationText = node.string("Expiration"), let expiration = RFC3339.parse(expirationText) else {
            throw .malformedResponse(action: action, reason: "Credentials.Expiration missing or not a date: \(node.string("Expiration") ?? "absent")")
        }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: node.string("SessionToken"), expiration: expiration)
    }
}
