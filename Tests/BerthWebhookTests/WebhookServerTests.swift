import BerthAdmission
import BerthNet
import BerthTestSupport
import BerthWebhook
import Foundation
import Logging
import Testing

/// The webhook served for real on 127.0.0.1:0 and spoken to by real clients: curl, Python's
/// ssl + http.client, openssl s_client.
@Suite(.serialized) struct WebhookServerTests {
    static let reviewPath = Repository.fixtures.appendingPathComponent("admission/z2jh-gpu-notebook.review.json").path

    final class Running {
        let server: WebhookServer
        let port: Int
        let metricsPort: Int
        let pki: TestPKI

        init(maxBodyBytes: Int = 3 * 1024 * 1024, adjust: (inout WebhookServer.Configuration) -> Void = { _ in }) throws {
            pki = try TestPKI.make(label: "berth-webhook")
            var configuration = WebhookServer.Configuration(
                tls: TLSServerConfiguration(certificateFile: pki.serverCertificate, privateKeyFile: pki.serverKey))
            configuration.host = "127.0.0.1"
            configuration.port = 0
            configuration.metricsPort = 0
            configuration.maxBodyBytes = maxBodyBytes
            adjust(&configuration)
            var logger = Logger(label: "berth-webhook-tests")
            logger.logLevel = .warning
            server = try WebhookServer(configuration: configuration, config: BerthConfig(), logger: logger)
            (port, metricsPort) = try server.start()
        }

        var url: String { "https://localhost:\(port)" }

        func curl(_ arguments: [String], input: Data? = nil) throws -> CommandResult {
            try run("curl", ["-sS", "--cacert", pki.caCertificate, "-w", "\n%{http_code}"] + arguments, input: input)
        }

        deinit {
            _ = server.shutdown(timeout: .seconds(5))
            pki.remove()
        }
    }

    /// Splits curl's `-w "\n%{http_code}"` tail from the body.
    static func split(_ result: CommandResult) -> (body: String, code: Int) {
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.dropLast().joined(separator: "\n"), Int(lines.last ?? "") ?? -1)
    }

    @Test(arguments: ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
    func curlGetsTheSamePatchAsBerthMutate(apiVersion: String) throws {
        let running = try Running()
        var review = try String(contentsOfFile: Self.reviewPath, encoding: .utf8)
        review = review.replacingOccurrences(of: "\"apiVersion\":\"admission.k8s.io/v1\"", with: "\"apiVersion\":\"\(apiVersion)\"")
        let result = try running.curl(["-H", "Content-Type: application/json", "--data-binary", "@-", running.url + "/mutate"], input: Data(review.utf8))
        let (body, code) = Self.split(result)
        #expect(code == 200, "\(result.stderr)")
        let response = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(response["apiVersion"] as? String == apiVersion)
        #expect(response["kind"] as? String == "AdmissionReview")
        let answer = try #require(response["response"] as? [String: Any])
        #expect(answer["uid"] as? String == "705ab4f5-6393-11e8-b7cc-42010a800002")
        #expect(answer["allowed"] as? Bool == true)
        #expect(answer["patchType"] as? String == "JSONPatch")
        let patch = try #require(Data(base64Encoded: answer["patch"] as? String ?? ""))

        // `berth mutate -o patch` on the same pod prints the same bytes.
        let reviewObject = try JSONSerialization.jsonObject(with: Data(review.utf8)) as? [String: Any]
        let pod = try JSONSerialization.data(withJSONObject: (reviewObject?["request"] as? [String: Any])?["object"] ?? [:])
        let mutate = try run(Repository.berthBinary, ["mutate", "-f", "-", "-o", "patch"], input: pod)
        #expect(mutate.status == 0, "\(mutate.stderr)")
        #expect(String(decoding: patch, as: UTF8.self) + "\n" == mutate.stdout)
    }

    @Test func pythonKeepsOneConnectionForManyReviews() throws {
        let running = try Running()
        let script = """
            import http.client, json, ssl, sys
            port, ca, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            ctx = ssl.create_default_context(cafile=ca)
            ctx.set_alpn_protocols(["http/1.1"])
            conn = http.client.HTTPSConnection("localhost", port, context=ctx)
            review = json.load(open(path))
            socks = set()
            for i in range(5):
                review["request"]["uid"] = "uid-%d" % i
                conn.request("POST", "/mutate", body=json.dumps(review), headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                answer = json.loads(r.read())
                assert r.status == 200, r.status
                assert answer["response"]["uid"] == "uid-%d" % i, answer
                socks.add(id(conn.sock))
            print("connections", len(socks), "alpn", conn.sock.selected_alpn_protocol(), "tls", conn.sock.version())
            """
        let result = try python(script, arguments: [String(running.port), running.pki.caCertificate, Self.reviewPath])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("connections 1 alpn http/1.1 tls TLSv1.3"), "\(result.stdout)")
    }

    @Test func opensslNegotiatesHTTP11AndVerifies() throws {
        let running = try Running()
        let result = try run("openssl", [
            "s_client", "-connect", "127.0.0.1:\(running.port)", "-servername", "localhost", "-alpn", "http/1.1",
            "-CAfile", running.pki.caCertificate, "-verify_return_error", "-ign_eof",
        ], input: "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let output = result.stdout + result.stderr
        #expect(output.contains("ALPN protocol: http/1.1"), "\(output)")
        #expect(output.contains("Verify return code: 0 (ok)"), "\(output)")
        #expect(output.contains("HTTP/1.1 200"), "\(output)")
    }

    @Test func badRequestsGetClearAnswersAndTheServerKeepsServing() throws {
        let running = try Running()
        let mutate = running.url + "/mutate"
        let cases: [([String], Data?, Int, String)] = [
            (["-H", "Content-Type: application/json", "--data-binary", "@-", mutate], Data("{\"apiVersion\":".utf8), 400, "malformed JSON"),
            (["-H", "Content-Type: application/json", "--data-binary", "@-", mutate], Data(), 400, "empty body"),
            (["-H", "Content-Type: application/json", "--data-binary", "@-", mutate], Data("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}".utf8), 400, "no \\\"request\\\""),
            (["-H", "Content-Type: text/plain", "--data-binary", "@-", mutate], Data("x".utf8), 415, "Content-Type must be application/json"),
            ([mutate], nil, 405, "method not allowed"),
            ([running.url + "/nope"], nil, 404, "not found"),
        ]
        for (arguments, input, expectedCode, text) in cases {
            let (body, code) = Self.split(try running.curl(arguments, input: input))
            #expect(code == expectedCode, "\(arguments): \(body)")
            #expect(body.contains(text), "\(arguments): \(body)")
        }
        let (_, code) = Self.split(try running.curl(["-H", "Content-Type: application/json", "--data-binary", "@" + Self.reviewPath, mutate]))
        #expect(code == 200)
    }

    @Test func bodyLimitIsConfigurable() throws {
        let running = try Running(maxBodyBytes: 64 * 1024)
        let big = Data(repeating: UInt8(ascii: " "), count: 100 * 1024)
        let (_, code) = Self.split(try running.curl(["-H", "Content-Type: application/json", "--data-binary", "@-", running.url + "/mutate"], input: big))
        #expect(code == 413)
    }

    @Test func healthOnBothPortsAndMetricsCountWhatHappened() throws {
        let running = try Running()
        for url in [running.url + "/healthz", running.url + "/readyz", "http://127.0.0.1:\(running.metricsPort)/healthz", "http://127.0.0.1:\(running.metricsPort)/readyz"] {
            let (body, code) = Self.split(try running.curl([url]))
            #expect(code == 200 && body.trimmingCharacters(in: .whitespacesAndNewlines) == "ok", "\(url)")
        }
        _ = try running.curl(["-H", "Content-Type: application/json", "--data-binary", "@" + Self.reviewPath, running.url + "/mutate"])
        _ = try running.curl(["-H", "Content-Type: application/json", "--data-binary", "nope", running.url + "/mutate"])
        let (metrics, code) = Self.split(try running.curl(["http://127.0.0.1:\(running.metricsPort)/metrics"]))
        #expect(code == 200)
        #expect(metrics.contains("berth_webhook_requests_total{path=\"/mutate\",code=\"200\"} 1"), "\(metrics)")
        #expect(metrics.contains("berth_webhook_requests_total{path=\"/mutate\",code=\"400\"} 1"))
        #expect(metrics.contains("berth_webhook_admission_reviews_total{result=\"gpu-notebook\"} 1"))
        #expect(metrics.contains("berth_webhook_mutations_total{mutation=\"do-not-disrupt\"} 1"))
        #expect(metrics.contains("berth_webhook_request_duration_seconds_count"))

        // Shutting down: readiness fails first, so the Service stops sending traffic.
        running.server.health.beginShutdown()
        let (_, readyCode) = Self.split(try running.curl(["http://127.0.0.1:\(running.metricsPort)/readyz"]))
        #expect(readyCode == 503)
    }

    /// One client holding more idle connections than either port's table (TLS and metrics) locks
    /// nobody out: the longest idle give way, the review is answered, the probe gets through.
    @Test func idleFloodsOnBothPortsLockNobodyOut() throws {
        let running = try Running {
            $0.maxConnections = 48
            $0.metricsMaxConnections = 12
        }
        let flood = try python("""
            import socket, ssl, subprocess, sys
            port, metrics, ca, review = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
            ctx = ssl.create_default_context(cafile=ca)
            tls = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") for _ in range(80)]
            plain = [socket.create_connection(("127.0.0.1", metrics)) for _ in range(30)]
            def curl(*args):
                r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", *args], capture_output=True, text=True)
                return r.stdout or r.stderr.strip()
            answers = [curl("-H", "Content-Type: application/json", "--data-binary", "@" + review, f"https://localhost:{port}/mutate") for _ in range(5)]
            answers += [curl(f"http://127.0.0.1:{metrics}/healthz") for _ in range(5)]
            print(" ".join(answers), len(tls), len(plain))
            """, arguments: [String(running.port), String(running.metricsPort), running.pki.caCertificate, Self.reviewPath])
        #expect(flood.status == 0, "\(flood.stderr)")
        #expect(flood.stdout == "200 200 200 200 200 200 200 200 200 200 80 30\n")
    }

    /// The metrics port's /readyz, which the chart's probes use, fails when the TLS side cannot serve.
    @Test func readinessOnTheMetricsPortReportsTheTLSSide() {
        let broken = MetricsResponder(metrics: WebhookMetrics(), health: HealthState { "the serving certificate tls.crt expired" })
        let answer = broken.respond(to: HTTPRequest(method: "GET", target: "/readyz"))
        #expect(answer.status == 503)
        #expect(String(decoding: answer.body, as: UTF8.self).contains("TLS not ready: the serving certificate tls.crt expired"))
        #expect(broken.respond(to: HTTPRequest(method: "GET", target: "/healthz")).status == 200)
        #expect(MetricsResponder(metrics: WebhookMetrics(), health: HealthState()).respond(to: HTTPRequest(method: "GET", target: "/readyz")).status == 200)
    }
}
