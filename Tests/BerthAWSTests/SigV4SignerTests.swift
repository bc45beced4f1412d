import BerthAWS
import BerthTestSupport
import Foundation
import Testing

/// The signer against botocore's own (`botocore.auth.SigV4Auth`), byte for byte, over a table of
/// awkward requests — not against itself.
@Suite struct SigV4SignerTests {
    struct Case: Sendable {
        var name: String
        var request: SigV4Signer.Request
        var credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        var region = "us-east-1"
        var service = "ec2"
    }

    static let form = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
    static let cases: [Case] = [
        Case(name: "describe instance types", request: .init(method: "POST", host: "ec2.us-east-1.amazonaws.com", headers: form,
            body: Array("Action=DescribeInstanceTypes&Version=2016-11-15&MaxResults=100".utf8))),
        Case(name: "query with spaces, tilde, slash, unicode", request: .init(method: "GET", host: "ec2.eu-west-1.amazonaws.com",
            query: [("Filter.1.Name", "tag:berth.dev/cluster"), ("Filter.1.Value.1", "my cluster~é/ü"), ("Action", "DescribeInstances")]),
            region: "eu-west-1"),
        Case(name: "repeated keys and empty values", request: .init(method: "GET", host: "ec2.us-east-1.amazonaws.com",
            query: [("b", "2"), ("a", ""), ("b", "1"), ("a", "z"), ("Action", "DescribeRegions")])),
        Case(name: "session token", request: .init(method: "POST", host: "ec2.us-west-2.amazonaws.com", headers: form,
            body: Array("Action=TerminateInstances&InstanceId.1=i-0123456789abcdef0&Version=2016-11-15".utf8)),
            credentials: AWSCredentials(accessKeyID: "ASIAEXAMPLE", secretAccessKey: "secret/with+chars", sessionToken: "FwoGZXIvYXdzEJr//////////token=="),
            region: "us-west-2"),
        Case(name: "sts web identity", request: .init(method: "POST", host: "sts.amazonaws.com", headers: form,
            body: Array("Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fberth&Version=2011-06-15".utf8)),
            service: "sts"),
        Case(name: "header values with folded spaces", request: .init(method: "GET", host: "ec2.us-east-1.amazonaws.com",
            query: [("Action", "DescribeRegions")], headers: [("X-Custom", "  a   b\tc  "), ("x-custom", "second")])),
        Case(name: "path with reserved characters", request: .init(method: "GET", host: "example.amazonaws.com", path: "/a%20b/c~d/%C3%A9",
            query: [("Action", "X")]), service: "service"),
    ]

    static let timestamp = SigV4Signer.timestamp(epochSeconds: 1_796_035_845)  // 2026-11-30T...

    @Test func timestampsAreUTC() {
        #expect(SigV4Signer.timestamp(epochSeconds: 0) == "19700101T000000Z")
        #expect(SigV4Signer.timestamp(epochSeconds: 951_782_400) == "20000229T000000Z")
        #expect(SigV4Signer.timestamp(epochSeconds: 1_796_035_845) == "20261130T105045Z")
        #expect(SigV4Signer.timestamp(epochSeconds: -1) == "19691231T235959Z")
    }

    @Test func matchesBotocoreByteForByte() throws {
        var input: [[String: Any]] = []
        for item in Self.cases {
            var entry: [String: Any] = [
                "method": item.request.method, "host": item.request.host, "path": item.request.path,
                "query": item.request.query.map { [$0.0, $0.1] }, "headers": item.request.headers.map { [$0.0, $0.1] },
                "body": String(decoding: item.request.body, as: UTF8.self), "region": item.region, "service": item.service,
                "access": item.credentials.accessKeyID, "secret": item.credentials.secretAccessKey, "timestamp": Self.timestamp,
            ]
            if let token = item.credentials.sessionToken { entry["token"] = token }
            input.append(entry)
        }
        let script = """
            import json, sys
            from urllib.parse import quote
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            out = []
            for c in json.load(sys.stdin):
                query = "&".join(quote(k, safe="-_.~") + "=" + quote(v, safe="-_.~") for k, v in c["query"])
                url = "https://" + c["host"] + c["path"] + ("?" + query if query else "")
                request = AWSRequest(method=c["method"], url=url, data=c["body"].encode())
                for name, value in c["headers"]:
                    request.headers[name] = value  # botocore's HTTPHeaders keeps repeated names
                request.headers["X-Amz-Date"] = c["timestamp"]
                if c.get("token"):
                    request.headers["X-Amz-Security-Token"] = c["token"]
                request.context["timestamp"] = c["timestamp"]
                auth = SigV4Auth(Credentials(c["access"], c["secret"], c.get("token")), c["service"], c["region"])
                canonical = auth.canonical_request(request)
                sts = auth.string_to_sign(request, canonical)
                out.append({"canonical": canonical, "sts": sts, "signature": auth.signature(sts, request)})
            print(json.dumps(out))
            """
        let result = try run("python3", ["-c", script], input: try JSONSerialization.data(withJSONObject: input))
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: String]])
        #expect(expected.count == Self.cases.count)
        for (item, botocore) in zip(Self.cases, expected) {
            let signed = SigV4Signer(region: item.region, service: item.service)
                .sign(item.request, credentials: item.credentials, timestamp: Self.timestamp)
            #expect(signed.canonicalRequest == botocore["canonical"], "\(item.name)")
            #expect(signed.stringToSign == botocore["sts"], "\(item.name)")
            #expect(signed.signature == botocore["signature"], "\(item.name)")
            let authorization = signed.headers.first { $0.0 == "Authorization" }?.1 ?? ""
            #expect(authorization.hasSuffix("Signature=\(botocore["signature"] ?? "?")"))
        }
    }

    @Test func credentialsNeverPrintTheirSecrets() {
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "topsecret", sessionToken: "tokentoken")
        #expect(!"\(credentials)".contains("topsecret"))
        #expect(!"\(credentials)".contains("tokentoken"))
        #expect("\(credentials)".contains("AKID"))
    }
}
