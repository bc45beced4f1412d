@testable import BerthAWS
import BerthNet
import Foundation
import Synchronization
import Testing

/// The Query API client against a local fault-injecting stub: signing, retries with backoff,
/// error documents, malformed answers.
@Suite struct QueryClientTests {
    final class Sleeps: Sendable {
        let list = Mutex<[Duration]>([])
        var recorded: [Duration] { list.withLock { $0 } }
        var function: @Sendable (Duration) async -> Void { { delay in self.list.withLock { $0.append(delay) } } }
    }

    static let credentials = StaticCredentials(name: "test", credentials: AWSCredentials(
        accessKeyID: "AKIATEST", secretAccessKey: "test/secret+key", sessionToken: "session-token"))

    func client(_ stub: StubServer, sleeps: Sleeps, maxAttempts: Int = 4) throws -> AWSQueryClient {
        try AWSQueryClient(
            endpoint: try AWSEndpoint(url: stub.url, what: "test"), region: "us-west-2", service: "ec2", version: "2016-11-15",
            credentials: Self.credentials, retry: AWSRetryPolicy(maxAttempts: maxAttempts, baseDelay: .milliseconds(100), maxDelay: .seconds(1)),
            sleep: sleeps.function, random: { 0.5 }, now: { Date(timeIntervalSince1970: 1_796_035_845) })
    }

    static let ok = StubServer.xml(200, "<DescribeRegionsResponse><requestId>r</requestId><regionInfo/></DescribeRegionsResponse>")

    @Test func requestsAreFormEncodedAndSigned() async throws {
        let stub = try StubServer { _, _ in Self.ok }
        defer { stub.shutdown() }
        let root = try await client(stub, sleeps: Sleeps()).call("DescribeRegions", [("Filter.1.Name", "region-name"), ("Filter.1.Value.1", "us west/2~é")])
        #expect(root.name == "DescribeRegionsResponse")
        let request = try #require(stub.requests.first)
        #expect(request.method == "POST" && request.target == "/")
        #expect(String(decoding: request.body, as: UTF8.self)
            == "Action=DescribeRegions&Version=2016-11-15&Filter.1.Name=region-name&Filter.1.Value.1=us+west%2F2~%C3%A9")
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8")
        #expect(request.headers["Host"] == "127.0.0.1:\(stub.port)")
        #expect(request.headers["X-Amz-Date"] == "20261130T105045Z")
        #expect(request.headers["X-Amz-Security-Token"] == "session-token")
        let authorization = try #require(request.headers["Authorization"])
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIATEST/20261130/us-west-2/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="))
        // The signature is the signer's over exactly these bytes.
        let expected = SigV4Signer(region: "us-west-2", service: "ec2").sign(
            .init(method: "POST", host: "127.0.0.1:\(stub.port)", headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: request.body),
            credentials: Self.credentials.credentials, timestamp: "20261130T105045Z")
        #expect(authorization.hasSuffix("Signature=\(expected.signature)"))
    }

    @Test(arguments: [
        StubServer.ec2Error(503, code: "RequestLimitExceeded", message: "Request limit exceeded."),
        StubServer.ec2Error(400, code: "Throttling", message: "Rate exceeded"),
        StubServer.ec2Error(500, code: "InternalError", message: "An internal error has occurred"),
        HTTPResponse(status: 502, body: Array("<html>Bad Gateway</html>".utf8)),
    ])
    func throttlingAnd5xxAreRetriedWithBackoff(failure: HTTPResponse) async throws {
        let stub = try StubServer { _, index in index < 2 ? failure : Self.ok }
        defer { stub.shutdown() }
        let sleeps = Sleeps()
        _ = try await client(stub, sleeps: sleeps).call("DescribeRegions")
        #expect(stub.requests.count == 3)
        // Full jitter with random 0.5: half of 100 ms, then half of 200 ms.
        #expect(sleeps.recorded == [.milliseconds(50), .milliseconds(100)])
    }

    @Test func retriesStopAtMaxAttemptsWithAWSsError() async throws {
        let stub = try StubServer { _, _ in StubServer.ec2Error(503, code: "RequestLimitExceeded", message: "Request limit exceeded.") }
        defer { stub.shutdown() }
        let sleeps = Sleeps()
        await #expect {
            _ = try await client(stub, sleeps: sleeps, maxAttempts: 4).call("CreateFleet")
        } throws: { error in
            guard case AWSError.service(let failure) = error else { return false }
            return failure == AWSServiceError(action: "CreateFleet", code: "RequestLimitExceeded", message: "Request limit exceeded.",
                                              requestID: "req-RequestLimitExceeded", status: 503)
        }
        #expect(stub.requests.count == 4)
        #expect(sleeps.recorded == [.milliseconds(50), .milliseconds(100), .milliseconds(200)])
    }

    @Test func backoffIsCapped() {
        let policy = AWSRetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        #expect(policy.delay(retry: 0, random: 0.999) < .milliseconds(100))
        #expect(policy.delay(retry: 20, random: 1) == .seconds(1))
        #expect(policy.delay(retry: 3, random: 0) == .zero)
    }

    @Test func clientErrorsAreNotRetriedAndKeepCodeMessageAndRequestID() async throws {
        let stub = try StubServer { _, _ in
            StubServer.ec2Error(401, code: "AuthFailure", message: "AWS was not able to validate the provided access credentials")
        }
        defer { stub.shutdown() }
        let sleeps = Sleeps()
        await #expect {
            _ = try await client(stub, sleeps: sleeps).call("DescribeInstances")
        } throws: { error in
            let text = "\(error)"
            return (error as? AWSError)?.code == "AuthFailure"
                && text == "DescribeInstances: AuthFailure: AWS was not able to validate the provided access credentials (HTTP 401, request id req-AuthFailure)"
                && !text.contains("test/secret+key")
        }
        #expect(stub.requests.count == 1)
        #expect(sleeps.recorded.isEmpty)
    }

    @Test(arguments: [
        ("<DescribeInstancesResponse><reservationSet>", "invalid XML at line"),
        ("", "empty body where XML was expected"),
        ("{\"json\": true}", "invalid XML at line 1"),
    ])
    func malformedAnswersNameTheAction(body: String, message: String) async throws {
        let stub = try StubServer { _, _ in HTTPResponse(status: 200, body: Array(body.utf8)) }
        defer { stub.shutdown() }
        await #expect {
            _ = try await client(stub, sleeps: Sleeps()).call("DescribeInstances")
        } throws: { error in
            guard case AWSError.malformedResponse(let action, let reason) = error else { return false }
            return action == "DescribeInstances" && reason.contains(message)
        }
    }

    @Test func lostConnectionsAreRetriedThenReported() async throws {
        // A port nothing listens on: every attempt fails to connect.
        let stub = try StubServer { _, _ in Self.ok }
        let url = stub.url
        stub.shutdown()
        let sleeps = Sleeps()
        let client = try AWSQueryClient(
            endpoint: try AWSEndpoint(url: url, what: "test"), region: "us-east-1", service: "ec2", version: "2016-11-15",
            credentials: Self.credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: sleeps.function, random: { 0 })
        await #expect {
            _ = try await client.call("DescribeInstances")
        } throws: { error in
            guard case AWSError.transport(let action, let endpoint, _) = error else { return false }
            return action == "DescribeInstances" && endpoint == url
        }
        #expect(sleeps.recorded.count == 1)
    }

    @Test(arguments: [
        ("ftp://example.com", "scheme must be https or http"),
        ("not a url", "is not a URL"),
    ])
    func badEndpointsAreClearErrors(url: String, message: String) {
        #expect {
            _ = try AWSEndpoint(url: url, what: "--endpoint")
        } throws: { error in "\(error)".hasPrefix("--endpoint: ") && "\(error)".contains(message) }
    }
}

extension QueryClientTests {
    final class Rotating: AWSCredentialProvider {
        let count = Atomic<Int>(0)
        var name: String { "rotating" }
        func fetch() async throws(AWSError) -> AWSCredentials {
            let n = count.add(1, ordering: .relaxed).newValue
            return AWSCredentials(accessKeyID: "ASIA\(n)", secretAccessKey: "s", sessionToken: "t\(n)", expiration: .distantFuture)
        }
    }

    @Test func expiredTokenFetchesNewCredentialsOnce() async throws {
        let stub = try StubServer { request, _ in
            request.headers["X-Amz-Security-Token"] == "t1"
                ? StubServer.ec2Error(400, code: "ExpiredToken", message: "The security token included in the request is expired") : Self.ok
        }
        defer { stub.shutdown() }
        let credentials = RefreshingCredentials(Rotating())
        let client = try AWSQueryClient(endpoint: try AWSEndpoint(url: stub.url, what: "test"), region: "us-east-1", service: "ec2",
                                        version: "2016-11-15", credentials: credentials, sleep: { _ in })
        _ = try await client.call("DescribeRegions")
        #expect(stub.requests.map { $0.headers["X-Amz-Security-Token"] } == ["t1", "t2"])
        #expect(credentials.fetchCount == 2)
    }
}
