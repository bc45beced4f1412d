import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// `berth serve` as a process: flags, JSON logs, certificate rotation, SIGTERM.
@Suite(.serialized) struct ServeCommandTests {
    static let reviewPath = Repository.fixtures.appendingPathComponent("admission/z2jh-gpu-notebook.review.json").path

    /// A running `berth serve`, its stdout gathered line by line.
    final class Server {
        let process = Process()
        final class Output: Sendable {
            let text = Mutex<String>("")
        }
        let output = Output()
        let finished = DispatchSemaphore(value: 0)
        var port = 0
        var metricsPort = 0

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: Repository.berthBinary)
            process.arguments = ["serve", "--bind-address", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
                + (arguments.contains { $0.hasPrefix("--provisioner") || $0 == "--simulated" } ? [] : ["--provisioner=false"]) + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let handle = pipe.fileHandleForReading
            Thread { [output, finished] in
                while true {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    output.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
                }
                finished.signal()
            }.start()
        }

        var log: String { output.text.withLock { $0 } }

        /// Waits for the "serving" line and reads the bound ports from it.
        func waitUntilServing() throws {
            guard waitUntil(timeout: .seconds(20), { log.contains("berth webhook serving") || !process.isRunning }) else {
                throw TestFailure("berth serve did not start: \(log)")
            }
            guard let line = log.split(separator: "\n").first(where: { $0.contains("berth webhook serving") }),
                let fields = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String],
                let port = fields["port"].flatMap(Int.init), let metricsPort = fields["metricsPort"].flatMap(Int.init)
            else { throw TestFailure("no serving line: \(log)") }
            self.port = port
            self.metricsPort = metricsPort
        }

        func terminate() -> Int32 {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            _ = finished.wait(timeout: .now() + 30)
            process.waitUntilExit()
            return process.terminationStatus
        }

        deinit {
            if process.isRunning { process.terminate() }
        }
    }

    @Test func sigtermAnswersTheRequestInFlightThenExitsZero() throws {
        let pki = try TestPKI.make(label: "berth-serve")
        defer { pki.remove() }
        let server = try Server(["--tls-cert-file", pki.serverCertificate, "--tls-private-key-file", pki.serverKey, "--shutdown-delay", "0"])
        try server.waitUntilServing()

        // A client sends the headers and half the review, waits for our word, then the rest.
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = """
            import socket, ssl, sys
            port, ca, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            body = open(path, "rb").read()
            ctx = ssl.create_default_context(cafile=ca)
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
            s.sendall(b"POST /mutate HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body))
            s.sendall(body[: len(body) // 2])
            print("half sent", flush=True)
            sys.stdin.readline()
            s.sendall(body[len(body) // 2 :])
            response = b""
            while b"\\r\\n\\r\\n" not in response or not response.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                response += chunk
            print(response.split(b"\\r\\n")[0].decode(), "uid" if b"705ab4f5-6393-11e8-b7cc-42010a800002" in response else "no-uid", flush=True)
            """
        client.arguments = ["python3", "-c", script, String(server.port), pki.caCertificate, Self.reviewPath]
        let clientIn = Pipe(), clientOut = Pipe()
        client.standardInput = clientIn
        client.standardOutput = clientOut
        try client.run()
        let firstLine = clientOut.fileHandleForReading.availableData
        #expect(String(decoding: firstLine, as: UTF8.self).contains("half sent"))

        kill(server.process.processIdentifier, SIGTERM)
        #expect(waitUntil { server.log.contains("shutting down") })
        // No new connections once shutdown began.
        let refused = try run("curl", ["-sS", "--max-time", "5", "--cacert", pki.caCertificate, "https://localhost:\(server.port)/healthz"])
        #expect(refused.status != 0)

        clientIn.fileHandleForWriting.write(Data("go\n".utf8))
        let answer = String(decoding: clientOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(answer.contains("HTTP/1.1 200 OK uid"), "\(answer)")
        #expect(server.terminate() == 0)
        #expect(server.log.contains("stopped: every request answered"))
    }

    /// A rollout: 64 kept-alive connections send reviews back to back while the replica gets
    /// SIGTERM. Readiness fails at once, every request keeps being answered through the delay,
    /// then each connection is closed after an answer (`Connection: close`), never under a
    /// request: not one request is lost. New connections are refused only after the delay.
    @Test func sigtermUnderLoadLosesNoRequest() throws {
        let pki = try TestPKI.make(label: "berth-serve")
        defer { pki.remove() }
        let server = try Server(["--tls-cert-file", pki.serverCertificate, "--tls-private-key-file", pki.serverKey,
                                 "--shutdown-delay", "1", "--shutdown-timeout", "10"])
        try server.waitUntilServing()
        let load = try python("""
            import http.client, json, os, signal, ssl, sys, threading, time
            port, metrics, ca, review, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
            body = open(review, "rb").read()
            ctx = ssl.create_default_context(cafile=ca)
            lock = threading.Lock()
            stats = {"answered": 0, "answeredAfterSignal": 0, "lost": 0, "notOk": 0, "closedByServer": 0, "errors": []}
            signalled = threading.Event()

            def worker():
                conn = None
                deadline = time.time() + 30
                while time.time() < deadline:
                    if conn is None:
                        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
                        try:
                            conn.connect()
                        except OSError:
                            return  # no longer accepting connections: this client would go to another replica
                    try:
                        conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
                        response = conn.getresponse()
                        response.read()
                    except Exception as error:  # the request was sent and no answer came
                        with lock:
                            stats["lost"] += 1
                            stats["errors"].append(repr(error))
                        conn.close()
                        conn = None
                        continue
                    with lock:
                        stats["answered"] += 1
                        if response.status != 200: stats["notOk"] += 1
                        if signalled.is_set(): stats["answeredAfterSignal"] += 1
                    if response.will_close:
                        with lock: stats["closedByServer"] += 1
                        conn.close()
                        conn = None

            threads = [threading.Thread(target=worker) for _ in range(64)]
            for thread in threads: thread.start()
            while True:
                with lock:
                    if stats["answered"] >= 500: break
                time.sleep(0.01)
            os.kill(pid, signal.SIGTERM)
            signalled.set()
            ready = None
            for _ in range(100):  # readiness turns 503 while requests are still answered
                c = http.client.HTTPConnection("127.0.0.1", metrics, timeout=5)
                try:
                    c.request("GET", "/readyz"); ready = c.getresponse().status
                except OSError:
                    pass
                if ready == 503: break
                time.sleep(0.01)
            stats["readyzAfterSignal"] = ready
            for thread in threads: thread.join()
            stats["errors"] = stats["errors"][:5]
            print(json.dumps(stats))
            """, arguments: [String(server.port), String(server.metricsPort), pki.caCertificate, Self.reviewPath,
                              String(server.process.processIdentifier)], timeout: .seconds(120))
        #expect(load.status == 0, "\(load.stderr)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(load.stdout.utf8)) as? [String: Any], "\(load.stdout)")
        #expect(stats["lost"] as? Int == 0, "\(stats)")
        #expect(stats["notOk"] as? Int == 0, "\(stats)")
        #expect((stats["answeredAfterSignal"] as? Int ?? 0) > 64, "\(stats)")
        #expect(stats["readyzAfterSignal"] as? Int == 503, "\(stats)")
        #expect((stats["closedByServer"] as? Int ?? 0) >= 1, "\(stats)")
        #expect(server.terminate() == 0)
        #expect(server.log.contains("stopped: every request answered"), "\(server.log.suffix(2000))")
    }

    @Test func debugLogsDescribeEachReviewButNeverThePodsSecrets() throws {
        let pki = try TestPKI.make(label: "berth-serve")
        defer { pki.remove() }
        let server = try Server(["--tls-cert-file", pki.serverCertificate, "--tls-private-key-file", pki.serverKey, "--log-level", "debug"])
        try server.waitUntilServing()
        let result = try run("curl", ["-sS", "--cacert", pki.caCertificate, "-H", "Content-Type: application/json",
                                      "--data-binary", "@" + Self.reviewPath, "https://localhost:\(server.port)/mutate"])
        #expect(result.stdout.contains("\"allowed\":true"))
        #expect(server.terminate() == 0)
        let log = server.log
        #expect(log.contains("\"msg\":\"admission review\""))
        #expect(log.contains("\"class\":\"gpu-notebook\""))
        // The pod's JUPYTERHUB_API_TOKEN value.
        #expect(!log.contains("8c2d6b1f4a0e4c6fb1a0d5e7c9b3a2f1"))
        for line in log.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
    }

    @Test func rotatedCertificateIsServedWithoutARestart() throws {
        let pki = try TestPKI.make(label: "berth-rotate")
        defer { pki.remove() }
        // A Kubernetes Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..2026_a (swapped atomically).
        let volume = pki.directory + "/volume"
        let first = volume + "/..2026_a", second = volume + "/..2026_b"
        try FileManager.default.createDirectory(atPath: first, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
        try pki.issue(name: "tls", serial: "4096", commonName: "localhost", into: first)
        try pki.issue(name: "tls", serial: "8192", commonName: "localhost", into: second)
        try FileManager.default.createSymbolicLink(atPath: volume + "/..data", withDestinationPath: "..2026_a")
        try FileManager.default.createSymbolicLink(atPath: volume + "/tls.crt", withDestinationPath: "..data/tls.pem")
        try FileManager.default.createSymbolicLink(atPath: volume + "/tls.key", withDestinationPath: "..data/tls.key")

        let server = try Server(["--tls-cert-file", volume + "/tls.crt", "--tls-private-key-file", volume + "/tls.key"])
        try server.waitUntilServing()
        func servedSerial() throws -> String {
            let result = try run("sh", ["-c", "openssl s_client -connect 127.0.0.1:\(server.port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial"])
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try servedSerial() == "serial=1000")  // 4096

        // The kubelet's swap: a new ..data link renamed over the old one.
        try FileManager.default.createSymbolicLink(atPath: volume + "/..data_tmp", withDestinationPath: "..2026_b")
        #expect(rename(volume + "/..data_tmp", volume + "/..data") == 0)
        #expect(waitUntil(timeout: .seconds(15)) { (try? servedSerial()) == "serial=2000" })  // 8192
        #expect(server.log.contains("TLS certificate reloaded"))
        #expect(server.terminate() == 0)
    }

    @Test func startupErrorsAreOneClearLine() throws {
        let missing = try run(Repository.berthBinary, ["serve", "--tls-cert-file", "/nonexistent/tls.crt", "--tls-private-key-file", "/nonexistent/tls.key", "--port", "0", "--metrics-port", "0"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("berth: serve: "), "\(missing.stderr)")
        #expect(missing.stderr.contains("/nonexistent/tls.crt"))
        let nothing = try run(Repository.berthBinary, ["serve", "--webhook=false", "--provisioner=false"])
        #expect(nothing.status == 1)
        #expect(nothing.stderr == "berth: nothing to run: --webhook=false and --provisioner=false\n", "\(nothing.stderr)")
        let demo = try run(Repository.berthBinary, ["serve", "--tls-cert-file", "x", "--tls-private-key-file", "y", "--demo"])
        #expect(demo.status == 64)
        #expect(demo.stderr.contains("--demo needs --simulated"))
        // On AWS the catalog comes from EC2: a --catalog would be ignored, so it is refused.
        let catalog = try run(Repository.berthBinary, ["serve", "--webhook=false", "--catalog", "types.json"])
        #expect(catalog.status == 64)
        #expect(catalog.stderr.contains("--catalog is for the simulated cloud"), "\(catalog.stderr)")
        let badConfig = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bad-\(getpid()).yaml").path
        try "apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  emptyAfter: soon\n".write(toFile: badConfig, atomically: true, encoding: .utf8)
        let config = try run(Repository.berthBinary, ["serve", "--tls-cert-file", "x", "--tls-private-key-file", "y", "--config", badConfig])
        #expect(config.status == 1)
        #expect(config.stderr.contains("provisioner.emptyAfter: \"soon\" is not a duration"), "\(config.stderr)")
        // --cloud aws: the EC2 settings are checked before any call is made.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-aws-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
            users: [{name: u, user: {token: t}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """.write(toFile: directory + "/kubeconfig", atomically: true, encoding: .utf8)
        // No silent default identity on AWS: clusterName must be set.
        try "apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  aws: {region: us-east-1}\n".write(toFile: directory + "/berth.yaml", atomically: true, encoding: .utf8)
        let anonymous = try run(Repository.berthBinary, ["serve", "--webhook=false", "--metrics-port", "0", "--cloud", "aws", "--kubeconfig", directory + "/kubeconfig", "--config", directory + "/berth.yaml"])
        #expect(anonymous.status == 1)
        #expect(anonymous.stderr.hasPrefix("berth: serve: --cloud aws needs provisioner.clusterName in the config"), "\(anonymous.stderr)")
        try "apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  clusterName: prod-eks\n  aws: {region: us-east-1}\n".write(toFile: directory + "/berth.yaml", atomically: true, encoding: .utf8)
        let aws = try run(Repository.berthBinary, ["serve", "--webhook=false", "--metrics-port", "0", "--cloud", "aws", "--kubeconfig", directory + "/kubeconfig", "--config", directory + "/berth.yaml"])
        #expect(aws.status == 1)
        #expect(aws.stderr == "berth: serve: pool gpu has no nodeClass, so config provisioner.aws.launchTemplate is required to launch its instances (name, id or managed)\n", "\(aws.stderr)")
        let tooBig = try run(Repository.berthBinary, ["serve", "--tls-cert-file", "x", "--tls-private-key-file", "y", "--max-body-bytes", "9000000"])
        #expect(tooBig.status == 64)
        #expect(tooBig.stderr.contains("--max-body-bytes must be between 1 and 7340032"))
    }

    /// `make run` in miniature: the embedded cluster and cloud in real time with short delays; the
    /// log tells the whole story in order, and SIGTERM ends it cleanly.
    @Test func simulatedDemoTellsTheWholeStory() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("berth-demo-\(getpid()).yaml").path
        try "apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  emptyAfter: 1s\n  batchIdleDuration: 100ms\n".write(toFile: config, atomically: true, encoding: .utf8)
        let pki = try TestPKI.make(label: "berth-demo")
        let server = try Server([
            "--simulated", "--demo", "--tls-cert-file", pki.serverCertificate, "--tls-private-key-file", pki.serverKey,
            "--simulated-ca-file", pki.caCertificate, "--simulated-apiserver-port", "0", "--simulated-boot-seconds", "1",
            "--simulated-gpu-seconds", "0.5", "--demo-notebook-seconds", "1", "--config", config,
        ])
        #expect(waitUntil(timeout: .seconds(60)) { server.log.contains("nothing is billed any more") }, "\(server.log)")
        let steps = [
            "webhook: pod jhub/jupyter-alice mutated", "launching g4dn.xlarge", "registered and Ready", "device plugin advertises",
            "demo: notebook running", "demo: notebook stopped", "reason\":\"Disrupting", "terminated g4dn.xlarge",
            "is gone",
        ]
        let log = server.log
        var position = log.startIndex
        for step in steps {
            guard let found = log.range(of: step, range: position..<log.endIndex) else {
                Issue.record("missing or out of order: \(step)\n\(log)")
                break
            }
            position = found.upperBound
        }
        #expect(log.contains("reason\":\"Initialized"))
        #expect(server.terminate() == 0)
    }
}
