import BerthModel
import Foundation

/// EKS Pod Identity (and ECS task roles): `GET` of `AWS_CONTAINER_CREDENTIALS_FULL_URI` with the
/// token of `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (re-read each time) in `Authorization`;
/// JSON `{AccessKeyId, SecretAccessKey, Token, Expiration}` back.
public struct ContainerCredentials: AWSCredentialProvider {
    public let url: AWSEndpoint
    public let authorization: Authorization
    private let files: AWSFileReader

    public enum Authorization: Sendable {
        case none
        case token(String)
        case tokenFile(String)
    }

    public init(url: AWSEndpoint, authorization: Authorization, files: AWSFileReader = .disk) {
        self.url = url
        self.authorization = authorization
        self.files = files
    }

    public var name: String { "container credentials (\(url))" }

    /// The hosts plain HTTP may be used with (the SDKs' rule): loopback, the ECS and EKS Pod
    /// Identity agent addresses.
    public static func allowsPlainHTTP(_ endpoint: AWSEndpoint) -> Bool {
        endpoint.isLoopback || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"].contains(endpoint.host)
    }

    public func fetch() async throws(AWSError) -> AWSCredentials {
        var headers = [("Accept", "application/json")]
        switch authorization {
        case .none: break
        case .token(let token): headers.append(("Authorization", token))
        case .tokenFile(let path): headers.append(("Authorization", try files.token(path, source: name)))
        }
        headers.append(("Host", url.hostHeader))
        let http = try AWSHTTP(endpoint: url, connectTimeout: .seconds(2), readTimeout: .seconds(5))
        let response = try await http.send(action: "container credentials", method: "GET", target: url.path, headers: headers)
        guard response.status == 200 else {
            throw .credentials(source: name, message: "HTTP \(response.status): \(XMLNode.preview(response.body))")
        }
        return try Self.decode(response.body, source: name)
    }

    struct Document: Decodable {
        var AccessKeyId: String?
        var SecretAccessKey: String?
        var Token: String?
        var Expiration: String?
        var Code: String?
        var Message: String?
    }

    /// The JSON both the container endpoints and IMDS answer with.
    static func decode(_ body: [UInt8], source: String) throws(AWSError) -> AWSCredentials {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(body))
        } catch {
            throw .malformedResponse(action: source, reason: "not a credentials JSON document: \(XMLNode.preview(body))")
        }
        if let code = document.Code, code != "Success" {
            throw .credentials(source: source, message: "\(code): \(document.Message ?? "")")
        }
        guard let key = document.AccessKeyId, !key.isEmpty, let secret = document.SecretAccessKey, !secret.isEmpty else {
            throw .malformedResponse(action: source, reason: "AccessKeyId or SecretAccessKey missing")
        }
        var expiration: Date?
        if let text = document.Expiration {
            guard let date = RFC3339.parse(text) else { throw .malformedResponse(action: source, reason: "Expiration is not a date: \(text)") }
            expiration = date
        }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: document.Token, expiration: expiration)
    }
}
