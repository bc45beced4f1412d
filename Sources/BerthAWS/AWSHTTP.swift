import BerthNet
import Dispatch
import Foundation

/// One HTTP(S) client per endpoint, with the errors turned into `AWSError`s that name the action.
final class AWSHTTP: Sendable {
    let endpoint: AWSEndpoint
    private let client: HTTPClient

    init(endpoint: AWSEndpoint, connectTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(30)) throws(AWSError) {
        self.endpoint = endpoint
        var configuration = HTTPClientConfiguration(host: endpoint.host, port: endpoint.port, tls: endpoint.secure ? TLSClientConfiguration() : nil)
        configuration.connectTimeout = connectTimeout
        configuration.readTimeout = readTimeout
        configuration.maxBodyBytes = 32 * 1024 * 1024
        do {
            client = try HTTPClient(configuration)
        } catch {
            throw .invalidConfiguration("\(endpoint): cannot set up the HTTP client: \(error)")
        }
    }

    /// Sends on a Dispatch thread: the client blocks, and a slow AWS answer must not hold one of
    /// the few threads Swift concurrency runs every task on.
    func send(action: String, method: String, target: String, headers: [(String, String)], body: [UInt8] = []) async throws(AWSError) -> HTTPClientResponse {
        let request = HTTPClientRequest(method: method, target: target, headers: HTTPHeaders(headers), body: body)
        let client = self.client
        do throws(NetError) {
            return try await Offload.run { () throws(NetError) -> HTTPClientResponse in try client.execute(request) }
        } catch {
            throw .transport(action: action, endpoint: endpoint.description, reason: error.description)
        }
    }
}

/// `application/x-www-form-urlencoded` as botocore writes Query API bodies: RFC 3986 encoding
/// with a space as `+`. AWS hashes the bytes it receives, whatever the encoding; a verifier that
/// rebuilds the body from the decoded form (moto does) gets these same bytes back only this way.
enum FormEncoding {
    static func encode(_ parameters: [(String, String)]) -> String {
        parameters.map { field($0.0) + "=" + field($0.1) }.joined(separator: "&")
    }

    static func field(_ text: String) -> String {
        SigV4Signer.encode(text).replacingOccurrences(of: "%20", with: "+")
    }
}
