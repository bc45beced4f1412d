import BerthModel
import BerthNet
import Foundation

/// What an EKS cluster's nodes need to join it, as EKS `DescribeCluster` says.
public struct EKSClusterFacts: Sendable, Equatable {
    public var name: String
    public var endpoint: String
    /// Base64 of the PEM, as DescribeCluster gives it.
    public var certificateAuthority: String
    public var serviceCIDR: String
    /// `1.31`.
    public var version: String

    public init(name: String, endpoint: String, certificateAuthority: String, serviceCIDR: String, version: String) {
        self.name = name
        self.endpoint = endpoint
        self.certificateAuthority = certificateAuthority
        self.serviceCIDR = serviceCIDR
        self.version = version
    }

    /// The cluster DNS service's address: the tenth of the service CIDR (10.100.0.10, 172.20.0.10).
    public var dnsIP: String? { Self.dnsIP(serviceCIDR: serviceCIDR) }

    public static func dnsIP(serviceCIDR: String) -> String? {
        let base = serviceCIDR.split(separator: "/").first.map(String.init) ?? serviceCIDR
        let octets = base.split(separator: ".").compactMap { UInt32($0) }
        guard octets.count == 4, octets.allSatisfy({ $0 < 256 }) else { return nil }
        let address = (octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]) + 10
        return [24, 16, 8, 0].map { String((address >> UInt32($0)) & 255) }.joined(separator: ".")
    }

    public var cluster: EKSCluster {
        EKSCluster(name: name, apiServerEndpoint: endpoint, certificateAuthority: certificateAuthority, serviceCIDR: serviceCIDR)
    }
}

/// EKS's REST-JSON API (SigV4 service `eks`): the one read Berth makes, `DescribeCluster`.
public final class EKSAPI: Sendable {
    public let endpoint: AWSEndpoint
    public let region: String
    private let credentials: any AWSCredentialProvider
    private let http: AWSHTTP
    private let retry: AWSRetryPolicy
    private let sleep: @Sendable (Duration) async -> Void
    private let now: @Sendable () -> Date
    private let recorder: AWSCallRecorder?

    public static func endpoint(region: String) -> AWSEndpoint { AWSEndpoint(secure: true, host: "eks.\(region).amazonaws.com") }

    public init(endpoint: AWSEndpoint, region: String, credentials: any AWSCredentialProvider, retry: AWSRetryPolicy = AWSRetryPolicy(),
                sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) },
                now: @escaping @Sendable () -> Date = { Date() }, recorder: AWSCallRecorder? = nil) throws(AWSError) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.retry = retry
        self.sleep = sleep
        self.now = now
        self.recorder = recorder
        http = try AWSHTTP(endpoint: endpoint)
    }

    /// A signed GET of `path` (under the endpoint's), with `query`, its JSON answer.
    func get(_ action: String, path relative: String, query: [(String, String)] = []) async throws(AWSError) -> JSON {
        recorder?.record(service: "eks", action: action)
        let path = (endpoint.path == "/" ? "" : endpoint.path) + relative
        let target = query.isEmpty ? path : path + "?" + query.map { SigV4Signer.encode($0.0) + "=" + SigV4Signer.encode($0.1) }.joined(separator: "&")
        return try await AWSRetries.run(retry: retry, credentials: credentials, sleep: sleep, random: { Double.random(in: 0..<1) }) { () async throws(AWSError) -> JSON in
            let current = try await credentials.fetch()
            let request = SigV4Signer.Request(method: "GET", host: endpoint.hostHeader, path: path, query: query)
            let signed = SigV4Signer(region: region, service: "eks")
                .sign(request, credentials: current, timestamp: SigV4Signer.timestamp(epochSeconds: Int64(now().timeIntervalSince1970)))
            let response = try await http.send(action: action, method: "GET", target: target, headers: signed.headers)
            guard (200..<300).contains(response.status) else {
                throw AWSJSONClient.serviceError(operation: action, status: response.status, body: response.body, requestID: response.headers["x-amzn-RequestId"],
                                                 errorType: response.headers["x-amzn-ErrorType"])
            }
            do { return try JSONParser.parse(response.body) } catch { throw .malformedResponse(action: action, reason: "not JSON: \(error)") }
        }
    }

    /// The principal ARNs of the cluster's access entries (`ListAccessEntries`, every page).
    public func listAccessEntries(cluster: String) async throws(AWSError) -> [String] {
        var principals: [String] = []
        var token: String?
        var pages = 0
        repeat {
            var query = [("maxResults", "100")]
            if let token { query.append(("nextToken", token)) }
            let answer = try await get("ListAccessEntries", path: "/clusters/" + SigV4Signer.encode(cluster) + "/access-entries", query: query)
            principals += answer["accessEntries"]?.arrayValue?.compactMap(\.stringValue) ?? []
            token = answer["nextToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            pages += 1
            if pages > 1000 { throw .malformedResponse(action: "ListAccessEntries", reason: "nextToken never ends") }
        } while token != nil
        return principals
    }

    /// The cluster's endpoint, CA, service CIDR and version. A cluster that does not exist is
    /// `ResourceNotFoundException` with EKS's message naming it.
    public func describeCluster(name: String) async throws(AWSError) -> EKSClusterFacts {
        let action = "DescribeCluster"
        let answer = try await get(action, path: "/clusters/" + SigV4Signer.encode(name))
        guard let cluster = answer["cluster"] else { throw .malformedResponse(action: action, reason: "no cluster object") }
        func field(_ value: String?, _ what: String) throws(AWSError) -> String {
            guard let value, !value.isEmpty else { throw .malformedResponse(action: action, reason: "cluster \(name) has no \(what)") }
            return value
        }
        return EKSClusterFacts(
            name: name, endpoint: try field(cluster["endpoint"]?.stringValue, "endpoint"),
            certificateAuthority: try field(cluster["certificateAuthority"]?["data"]?.stringValue, "certificateAuthority.data"),
            serviceCIDR: try field(cluster["kubernetesNetworkConfig"]?["serviceIpv4Cidr"]?.stringValue, "kubernetesNetworkConfig.serviceIpv4Cidr"),
            version: try field(cluster["version"]?.stringValue, "version"))
    }
}

/// SSM's `GetParameter` (JSON 1.1, `AmazonSSM`): the EKS-optimised AMIs' public parameters.
public struct SSMAPI: Sendable {
    public let client: AWSJSONClient

    public init(client: AWSJSONClient) { self.client = client }

    /// The parameter's value, or nil when there is no such parameter (`ParameterNotFound`).
    public func parameter(_ name: String) async throws(AWSError) -> String? {
        let answer: JSON
        do {
            answer = try await client.call("GetParameter", ["Name": .string(name)])
        } catch where error.code == "ParameterNotFound" {
            return nil
        }
        guard let value = answer["Parameter"]?["Value"]?.stringValue else {
            throw .malformedResponse(action: "GetParameter", reason: "\(name): no Parameter.Value")
        }
        return value
    }
}
