@testable import BerthAWS
import BerthModel
import BerthNet
import Foundation
import Synchronization
import Testing

@Suite struct CredentialChainTests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
    static let sessionToken = "FwoGZXIvYXdzSESSIONTOKEN//////////"

    @Test func environmentComesFirst() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let file = try dir.write("credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = filesecret\n")
        let chain = AWSCredentialChain(environment: [
            "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SESSION_TOKEN": Self.sessionToken,
            "AWS_SHARED_CREDENTIALS_FILE": file, "AWS_ROLE_ARN": "arn:aws:iam::1:role/x", "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent",
        ])
        let provider = try chain.source()
        #expect(provider.name == "environment")
        let credentials = try await provider.fetch()
        #expect(credentials == AWSCredentials(accessKeyID: "AKIAENV", secretAccessKey: Self.secret, sessionToken: Self.sessionToken))
    }

    @Test func halfAnEnvironmentIsAnErrorWithoutTheSecret() throws {
        #expect {
            _ = try AWSCredentialChain(environment: ["AWS_SECRET_ACCESS_KEY": Self.secret]).source()
        } throws: { error in
            let text = "\(error)"
            return text.contains("AWS_ACCESS_KEY_ID is not") && !text.contains(Self.secret)
        }
        #expect {
            _ = try AWSCredentialChain(environment: ["AWS_ACCESS_KEY_ID": "AKIAONLY"]).source()
        } throws: { error in "\(error)".contains("AWS_SECRET_ACCESS_KEY is not") }
    }

    @Test func webIdentityAsksSTSUnsigned() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let tokenFile = try dir.write("token", "eyJhbGciOiJSUzI1NiJ9.projected-token\n")
        let sts = try StubServer { request, _ in
            StubServer.xml(200, """
                <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
                  <AssumeRoleWithWebIdentityResult><Credentials>
                    <AccessKeyId>ASIASTS</AccessKeyId><SecretAccessKey>\(Self.secret)</SecretAccessKey>
                    <SessionToken>\(Self.sessionToken)</SessionToken><Expiration>2026-11-30T12:00:00Z</Expiration>
                  </Credentials></AssumeRoleWithWebIdentityResult>
                  <ResponseMetadata><RequestId>abc</RequestId></ResponseMetadata>
                </AssumeRoleWithWebIdentityResponse>
                """)
        }
        defer { sts.shutdown() }
        let chain = AWSCredentialChain(environment: [
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/berth", "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
            "AWS_ROLE_SESSION_NAME": "berth-test", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_STS": sts.url,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/never",
        ])
        let provider = try chain.source()
        #expect(provider.name == "web identity (arn:aws:iam::123456789012:role/berth)")
        let credentials = try await provider.fetch()
        #expect(credentials.accessKeyID == "ASIASTS")
        #expect(credentials.secretAccessKey == Self.secret)
        #expect(credentials.sessionToken == Self.sessionToken)
        #expect(credentials.expiration == RFC3339.parse("2026-11-30T12:00:00Z"))
        let request = try #require(sts.requests.first)
        #expect(request.method == "POST")
        #expect(request.headers["Authorization"] == nil)
        let form = StubServer.form(request)
        #expect(form["Action"] == "AssumeRoleWithWebIdentity")
        #expect(form["Version"] == "2011-06-15")
        #expect(form["RoleArn"] == "arn:aws:iam::123456789012:role/berth")
        #expect(form["RoleSessionName"] == "berth-test")
        #expect(form["WebIdentityToken"] == "eyJhbGciOiJSUzI1NiJ9.projected-token")
    }

    /// `AWS_ENDPOINT_URL_<SERVICE>` first, then `AWS_ENDPOINT_URL`, as the SDKs read them.
    @Test func endpointOverridesFromTheEnvironment() throws {
        let both = AWSCredentialChain(environment: ["AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL": "https://aws.example.com"])
        #expect(try both.endpointOverride(service: "EC2")?.description == "http://127.0.0.1:5000")
        #expect(try both.endpointOverride(service: "STS")?.description == "https://aws.example.com")
        #expect(try both.stsEndpoint(region: "eu-west-1").description == "https://aws.example.com")
        let none = AWSCredentialChain(environment: [:])
        #expect(try none.endpointOverride(service: "EC2") == nil)
        #expect(try none.stsEndpoint(region: "eu-west-1") == .sts(region: "eu-west-1"))
    }

    @Test func webIdentityRefusedNamesTheRoleNotTheToken() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let tokenFile = try dir.write("token", "secret-projected-token")
        let sts = try StubServer { _, _ in
            StubServer.xml(400, """
                <ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key</Message></Error><RequestId>r-1</RequestId></ErrorResponse>
                """)
        }
        defer { sts.shutdown() }
        let provider = WebIdentityCredentials(roleARN: "arn:aws:iam::1:role/berth", tokenFile: tokenFile, sessionName: "s",
                                              sts: try AWSEndpoint(url: sts.url, what: "test"), region: "us-east-1")
        await #expect {
            _ = try await provider.fetch()
        } throws: { error in
            let text = "\(error)"
            return text.contains("InvalidIdentityToken") && text.contains("arn:aws:iam::1:role/berth") && text.contains("r-1")
                && !text.contains("secret-projected-token")
        }
        #expect(sts.requests.count == 1, "a 400 is not retried")
    }

    @Test func podIdentitySendsTheTokenFile() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let tokenFile = try dir.write("eks-pod-identity-token", "pod-identity-token\n")
        let agent = try StubServer { request, _ in
            guard request.headers["Authorization"] == "pod-identity-token" else { return HTTPResponse(status: 401) }
            return HTTPResponse(status: 200, body: Array("""
                {"AccessKeyId":"ASIAPOD","SecretAccessKey":"\(Self.secret)","Token":"\(Self.sessionToken)","AccountId":"1","Expiration":"2026-11-30T11:00:00Z"}
                """.utf8))
        }
        defer { agent.shutdown() }
        let chain = AWSCredentialChain(environment: [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": agent.url + "/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
        ])
        let credentials = try await chain.source().fetch()
        #expect(credentials.accessKeyID == "ASIAPOD")
        #expect(credentials.sessionToken == Self.sessionToken)
        #expect(credentials.expiration == RFC3339.parse("2026-11-30T11:00:00Z"))
        #expect(agent.requests.map(\.target) == ["/v1/credentials"])
    }

    @Test func podIdentityOverPlainHTTPOnlyToTheAgent() {
        #expect {
            _ = try AWSCredentialChain(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds"]).source()
        } throws: { error in "\(error)".contains("plain http is allowed only") }
        #expect(throws: Never.self) {
            _ = try AWSCredentialChain(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"]).source()
        }
    }

    @Test func sharedFilesWithAProfile() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let credentials = try dir.write("credentials", """
            # comment
            [default]
            aws_access_key_id = AKIADEFAULT
            aws_secret_access_key = defaultsecret

            [dev]
            aws_access_key_id=AKIADEV
            aws_secret_access_key=\(Self.secret)
            aws_session_token = devtoken
            """)
        let config = try dir.write("config", """
            [default]
            region = us-east-1
            [profile dev]
            region = eu-central-1
            s3 =
              max_concurrent_requests = 20
            [sso-session corp]
            sso_region = us-east-1
            """)
        let base = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config, "AWS_EC2_METADATA_DISABLED": "true"]
        let dev = AWSCredentialChain(environment: base.merging(["AWS_PROFILE": "dev"]) { $1 })
        let provider = try dev.source()
        #expect(provider.name.hasPrefix("profile dev"))
        #expect(try await provider.fetch() == AWSCredentials(accessKeyID: "AKIADEV", secretAccessKey: Self.secret, sessionToken: "devtoken"))
        #expect(try dev.region() == "eu-central-1")
        let byDefault = AWSCredentialChain(environment: base)
        #expect(try await byDefault.source().fetch().accessKeyID == "AKIADEFAULT")
        #expect(try byDefault.region() == "us-east-1")

        #expect {
            _ = try AWSCredentialChain(environment: base.merging(["AWS_PROFILE": "prod"]) { $1 }).source()
        } throws: { error in "\(error)".contains("profile prod is in neither \(credentials) nor \(config)") }
    }

    @Test(arguments: [
        ("[default\naws_access_key_id = A\n", "line 1: section header \"[default\" lacks the closing ]"),
        ("[default]\naws_access_key_id A\n", "line 2: expected \"key = value\" or a [section]"),
        ("aws_access_key_id = A\n[default]\n", "line 1: \"aws_access_key_id\" comes before any [section]"),
    ])
    func badCredentialsFilesNameFileAndLine(text: String, message: String) throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let file = try dir.write("credentials", text)
        #expect {
            _ = try AWSCredentialChain(environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "HOME": dir.path]).source()
        } throws: { error in
            "\(error)" == "AWS credentials from \(file): \(message)"
        }
    }

    @Test func imdsV2AsksForATokenFirst() async throws {
        let imds = try StubServer { request, _ in
            if request.method == "PUT" && request.target == "/latest/api/token" {
                guard request.headers["X-aws-ec2-metadata-token-ttl-seconds"] != nil else { return HTTPResponse(status: 400) }
                return HTTPResponse(status: 200, body: Array("imds-token".utf8))
            }
            guard request.headers["X-aws-ec2-metadata-token"] == "imds-token" else { return HTTPResponse(status: 401) }
            switch request.target {
            case "/latest/meta-data/iam/security-credentials/":
                return HTTPResponse(status: 200, body: Array("berth-node-role".utf8))
            case "/latest/meta-data/iam/security-credentials/berth-node-role":
                return HTTPResponse(status: 200, body: Array("""
                    {"Code":"Success","LastUpdated":"2026-11-30T10:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS",
                     "SecretAccessKey":"\(Self.secret)","Token":"\(Self.sessionToken)","Expiration":"2026-11-30T16:00:00Z"}
                    """.utf8))
            default:
                return HTTPResponse(status: 404)
            }
        }
        defer { imds.shutdown() }
        let chain = AWSCredentialChain(environment: ["HOME": "/nonexistent", "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url])
        let provider = try chain.source()
        #expect(provider is IMDSCredentials)
        let credentials = try await provider.fetch()
        #expect(credentials.accessKeyID == "ASIAIMDS")
        #expect(credentials.expiration == RFC3339.parse("2026-11-30T16:00:00Z"))
        #expect(imds.requests.map { "\($0.method) \($0.target)" } == [
            "PUT /latest/api/token", "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/berth-node-role",
        ])
        #expect {
            _ = try AWSCredentialChain(environment: ["HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"]).source()
        } throws: { error in "\(error)".contains("IMDS is disabled") }
    }

    @Test(arguments: [
        ("not json", "not a credentials JSON document"),
        (#"{"Code":"Success","AccessKeyId":"A"}"#, "AccessKeyId or SecretAccessKey missing"),
        (#"{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"tomorrow"}"#, "Expiration is not a date: tomorrow"),
        (#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"no role"}"#, "AssumeRoleUnauthorizedAccess: no role"),
    ])
    func malformedCredentialDocuments(body: String, message: String) {
        #expect {
            _ = try ContainerCredentials.decode(Array(body.utf8), source: "test")
        } throws: { error in "\(error)".contains(message) }
    }

    /// A source that counts its fetches and can be told to fail.
    final class CountingSource: AWSCredentialProvider {
        let clock: TestClock
        let fetched = Atomic<Int>(0)
        let failing = Atomic<Bool>(false)
        init(clock: TestClock) { self.clock = clock }
        var name: String { "counting" }
        func fetch() async throws(AWSError) -> AWSCredentials {
            if failing.load(ordering: .relaxed) { throw .credentials(source: name, message: "STS unreachable") }
            let count = fetched.add(1, ordering: .relaxed).newValue
            return AWSCredentials(accessKeyID: "ASIA\(count)", secretAccessKey: "s", sessionToken: "t",
                                  expiration: clock.now.addingTimeInterval(3600))
        }
    }

    @Test func temporaryCredentialsAreRefreshedBeforeTheyExpire() async throws {
        let clock = TestClock()
        let source = CountingSource(clock: clock)
        let cache = RefreshingCredentials(source, refreshBefore: 300, now: clock.function)
        #expect(try await cache.fetch().accessKeyID == "ASIA1")
        clock.advance(3000)  // 10 minutes left: still cached
        #expect(try await cache.fetch().accessKeyID == "ASIA1")
        clock.advance(301)  // under 5 minutes left: refreshed
        #expect(try await cache.fetch().accessKeyID == "ASIA2")
        #expect(cache.fetchCount == 2)

        // A failed refresh keeps the old credentials while they still work, then fails.
        source.failing.store(true, ordering: .relaxed)
        clock.advance(3400)  // 200 s left
        #expect(try await cache.fetch().accessKeyID == "ASIA2")
        clock.advance(200)  // expired
        await #expect(throws: AWSError.credentials(source: "counting", message: "STS unreachable")) { _ = try await cache.fetch() }
        source.failing.store(false, ordering: .relaxed)
        #expect(try await cache.fetch().accessKeyID == "ASIA3")
    }

    /// A source that counts the fetches it started and holds each until the gate opens.
    final class GatedSource: AWSCredentialProvider {
        private let gate = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))
        let started = Atomic<Int>(0)
        var name: String { "gated" }
        func fetch() async throws(AWSError) -> AWSCredentials {
            let count = started.add(1, ordering: .relaxed).newValue
            await withCheckedContinuation { continuation in
                let open = gate.withLock { gate in
                    if !gate.open { gate.waiting.append(continuation) }
                    return gate.open
                }
                if open { continuation.resume() }
            }
            return AWSCredentials(accessKeyID: "ASIA\(count)", secretAccessKey: "s", sessionToken: "t", expiration: Date().addingTimeInterval(3600))
        }
        func open() {
            let waiting = gate.withLock { gate in
                gate.open = true
                defer { gate.waiting = [] }
                return gate.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    @Test func concurrentCallersShareOneRefresh() async throws {
        let source = GatedSource()
        let cache = RefreshingCredentials(source)
        let keys = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await cache.fetch().accessKeyID } }
            // Every caller is in before the source answers: one asked it, seven wait for that refresh.
            let deadline = ContinuousClock.now + .seconds(10)
            while !(source.started.load(ordering: .relaxed) == 1 && cache.waitingCount == 7), ContinuousClock.now < deadline {
                await Task.yield()
            }
            #expect(cache.waitingCount == 7)
            source.open()
            var keys: [String] = []
            for try await key in group { keys.append(key) }
            return keys
        }
        #expect(keys == Array(repeating: "ASIA1", count: 8))
        #expect(source.started.load(ordering: .relaxed) == 1)
        #expect(cache.fetchCount == 1)
        #expect(cache.waitingCount == 0)
    }

    @Test func longTermKeysAreFetchedOnce() async throws {
        let cache = RefreshingCredentials(StaticCredentials(name: "environment", credentials: AWSCredentials(accessKeyID: "A", secretAccessKey: "S")))
        for _ in 0..<3 { _ = try await cache.fetch() }
        #expect(cache.fetchCount == 1)
    }

    @Test func secretsNeverPrinted() {
        let credentials = AWSCredentials(accessKeyID: "ASIAPRINT", secretAccessKey: Self.secret, sessionToken: Self.sessionToken,
                                         expiration: Date(timeIntervalSince1970: 0))
        let provider = StaticCredentials(name: "environment", credentials: credentials)
        for text in ["\(credentials)", String(describing: credentials), String(reflecting: credentials), "\(provider)", String(reflecting: provider)] {
            #expect(text.contains("ASIAPRINT"))
            #expect(!text.contains(Self.secret))
            #expect(!text.contains(Self.sessionToken))
        }
    }
}
