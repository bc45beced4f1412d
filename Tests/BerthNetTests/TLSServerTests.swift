@testable import BerthNet
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// The server over TLS, driven with curl, Python's ssl/http.client and openssl s_client.
@Suite struct TLSServerTests {
    let pki = TestPKI.shared

    private func curl(_ port: Int, _ extra: [String]) throws -> CommandResult {
        try run("curl", ["-sS", "--http1.1", "--cacert", pki.caCertificate, "--max-time", "20"] + extra)
    }

    private func sClient(_ port: Int, _ extra: [String], input: String = "") throws -> CommandResult {
        try run("openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost",
                            "-CAfile", pki.caCertificate] + extra, input: input)
    }

    /// The serial of the certificate the server presents, e.g. "03E9".
    private func servedSerial(_ port: Int) throws -> String {
        let session = try sClient(port, ["-showcerts"])
        let serial = try run("openssl", ["x509", "-noout", "-serial"], input: session.stdout)
        return serial.stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
    }

    @Test func curlPostsAndReusesTheConnection() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let url = "https://localhost:\(port)/mutate?timeout=10s"
            let result = try curl(port, [
                "-w", "|%{http_code}|%{num_connects}\n", "--data-binary", "one", url,
                "--next", "--cacert", pki.caCertificate, "-w", "|%{http_code}|%{num_connects}\n", "--data-binary", "two", url,
                "--next", "--cacert", pki.caCertificate, "-w", "|%{http_code}|%{num_connects}\n", "--data-binary", "three", url,
            ])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "one|200|1\ntwo|200|0\nthree|200|0\n")
        }
    }

    @Test func curlChunkedUpload() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let result = try run("curl", ["-sS", "--http1.1", "--cacert", pki.caCertificate, "-H", "Transfer-Encoding: chunked",
                                          "--data-binary", "@-", "https://localhost:\(port)/chunked"],
                                 input: String(repeating: "chunk-", count: 2000))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == String(repeating: "chunk-", count: 2000))
        }
    }

    @Test func oversizedBodyGets413() throws {
        let file = NSTemporaryDirectory() + "berthnet-big-\(getpid()).bin"
        try Data(count: 8 * 1024 * 1024).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try withServer(tls: try makeTLSStore()) { _, port in
            for expect in ["Expect:", "Expect: 100-continue"] {
                let result = try curl(port, ["-o", "/dev/null", "-w", "%{http_code}", "-H", expect,
                                             "--data-binary", "@" + file, "https://localhost:\(port)/big"])
                #expect(result.stdout == "413", "\(expect): \(result.stderr) \(result.status)")
            }
        }
    }

    @Test func largeBodiesAndDripFedRequestsOverTLS() throws {
        let observer = RecordingObserver()
        try withServer(tls: try makeTLSStore(), observer: observer) { _, port in
            let result = try python("""
            import socket, ssl, time, http.client
            ctx = ssl.create_default_context(cafile="\(pki.caCertificate)")
            conn = http.client.HTTPSConnection("localhost", \(port), context=ctx)
            body = bytes(range(256)) * (3 * 4096 - 1)  # just under 3 MiB
            conn.request("POST", "/big", body=body)
            r = conn.getresponse()
            print(r.status, r.read() == body)
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost")
            for piece in [b"POST /drip HTTP/1.1\\r\\nHo", b"st: x\\r\\nContent-Length: 4\\r\\n", b"\\r\\nab", b"cd"]:
                s.sendall(piece)
                time.sleep(0.05)
            data = b""
            while not data.endswith(b"abcd"):
                chunk = s.recv(65536)
                if not chunk: break
                data += chunk
            print(data.split(b"\\r\\n")[0].decode(), data.endswith(b"abcd"))
            """)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "200 True\nHTTP/1.1 200 OK True\n")
            #expect(waitUntil { observer.statuses == [200, 200] })
            #expect(observer.started.load(ordering: .relaxed) == 2)
        }
    }

    @Test func idleTLSConnectionReleasesBuffersThenStillWorksThenTimesOut() throws {
        let configuration = testConfiguration { $0.idleTimeout = .milliseconds(2500) }
        try withServer(configuration: configuration, tls: try makeTLSStore()) { server, port in
            let result = try python("""
            import socket, ssl, time
            ctx = ssl.create_default_context(cafile="\(pki.caCertificate)")
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost")
            def ask(path):
                s.sendall(b"GET " + path + b" HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    data += s.recv(65536)
                return data.split(b"\\r\\n")[0].decode()
            print(ask(b"/before"))
            time.sleep(1.3)  # past the 1 s buffer release
            print(ask(b"/after"))
            start = time.monotonic()
            print(repr(s.recv(100)), time.monotonic() - start < 10)  # closed by the idle timeout
            """)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "HTTP/1.1 200 OK\nHTTP/1.1 200 OK\nb'' True\n")
            #expect(waitUntil { server.connectionCount == 0 })
        }
    }

    @Test func pythonHTTPClientKeepsAlive() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let result = try python("""
            import ssl, http.client
            ctx = ssl.create_default_context(cafile="\(pki.caCertificate)")
            ctx.set_alpn_protocols(["http/1.1"])
            conn = http.client.HTTPSConnection("localhost", \(port), context=ctx)
            for i in range(3):
                conn.request("POST", "/py/%d" % i, body=b"x" * 2500, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                print(r.status, len(body), r.getheader("X-Path"))
            print("alpn", conn.sock.selected_alpn_protocol(), conn.sock.version())
            """)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "200 2500 /py/0\n200 2500 /py/1\n200 2500 /py/2\nalpn http/1.1 TLSv1.3\n")
        }
    }

    @Test func pipeliningOverTLS() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let result = try python("""
            import socket, ssl
            ctx = ssl.create_default_context(cafile="\(pki.caCertificate)")
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost")
            s.sendall(b"GET /one HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nPOST /two HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nabc")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                data += chunk
            print([l for l in data.decode().split("\\r\\n") if l.startswith("X-Path") or l.startswith("HTTP/")])
            """)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "['HTTP/1.1 200 OK', 'X-Path: /one', 'HTTP/1.1 200 OK', 'X-Path: /two']\n")
        }
    }

    @Test func malformedAndFloodedRequestsOverTLS() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let result = try python("""
            import socket, ssl
            ctx = ssl.create_default_context(cafile="\(pki.caCertificate)")
            def ask(raw):
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost")
                s.sendall(raw)
                data = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except (ConnectionResetError, ssl.SSLError):
                        break
                    if not chunk: break
                    data += chunk
                print(data.split(b"\\r\\n")[0].decode())
            ask(b"GARBAGE\\r\\n\\r\\n")
            ask(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n" + b"X-Flood: " + b"a" * 40000 + b"\\r\\n\\r\\n")
            """)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "HTTP/1.1 400 Bad Request\nHTTP/1.1 431 Request Header Fields Too Large\n")
        }
    }

    @Test func manyIdleConnectionsDoNotDelayARealRequest() throws {
        // One client with 350 waiting connections: above the default per-client share, raised here.
        let configuration = testConfiguration { $0.maxWaitingConnectionsPerClient = 1000 }
        try withServer(configuration: configuration, tls: try makeTLSStore()) { server, port in
            let result = try python("""
            import socket, ssl, http.client
            ctx = ssl.create_default_context(cafile="\(pki.caCertificate)")
            idle = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost") for _ in range(300)]
            raw = [socket.create_connection(("127.0.0.1", \(port))) for _ in range(50)]  # never handshake
            conn = http.client.HTTPSConnection("localhost", \(port), context=ctx, timeout=10)
            conn.request("POST", "/real", body=b"payload")
            r = conn.getresponse()
            print(r.status, r.read().decode(), len(idle), len(raw))
            """)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "200 payload 300 50\n")
        }
    }

    @Test func protocolVersionsAndALPN() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            let modern = try sClient(port, ["-alpn", "http/1.1"])
            #expect(modern.stdout.contains("ALPN protocol: http/1.1"))
            #expect(modern.stdout.contains("Verify return code: 0 (ok)"))
            let tls13 = try sClient(port, ["-tls1_3"])
            #expect(tls13.stdout.contains("New, TLSv1.3, Cipher is TLS_"))
            let tls12 = try sClient(port, ["-tls1_2"])
            #expect(tls12.stdout.contains("New, TLSv1.2, Cipher is ECDHE-"))
            #expect(tls12.stdout.contains("GCM") || tls12.stdout.contains("CHACHA20"))
            let noALPN = try sClient(port, [])
            #expect(noALPN.stdout.contains("No ALPN negotiated"))
            let otherALPN = try sClient(port, ["-alpn", "h2"])  // tolerated, no ALPN selected
            #expect(otherALPN.stdout.contains("No ALPN negotiated"))
            for old in ["-tls1", "-tls1_1"] {
                let refused = try sClient(port, [old, "-cipher", "DEFAULT@SECLEVEL=0"])
                #expect(refused.status != 0)
                #expect(!refused.stdout.contains("Cipher is ECDHE"), "\(old) accepted")
            }
            let cbc = try sClient(port, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"])
            #expect(cbc.status != 0)
            #expect(!cbc.stdout.contains("Cipher is ECDHE"))
        }
    }

    /// A ClientHello offering only a finite-field group (ffdhe8192: ~100 ms of server CPU per
    /// handshake) is refused; the elliptic-curve groups work; the list is configurable.
    @Test func keyExchangeGroupsAreEllipticCurvesOnly() throws {
        try withServer(tls: try makeTLSStore()) { _, port in
            for group in ["ffdhe8192", "ffdhe2048"] {
                let refused = try sClient(port, ["-tls1_3", "-groups", group])
                #expect(refused.status != 0, "\(group) accepted")
                #expect(!refused.stdout.contains("Cipher is TLS_"), "\(group) accepted")
            }
            for group in ["X25519", "P-256", "P-384"] {
                let accepted = try sClient(port, ["-tls1_3", "-groups", group])
                #expect(accepted.stdout.contains("Cipher is TLS_"), "\(group) refused: \(accepted.stderr)")
            }
            let tls12 = try sClient(port, ["-tls1_2", "-groups", "ffdhe8192"])
            #expect(tls12.status != 0 && !tls12.stdout.contains("New, TLSv1.2"), "ffdhe over TLS 1.2 accepted")
        }
        var only384 = pki.tlsConfiguration
        only384.groups = "P-384"
        try withServer(tls: try makeTLSStore(only384)) { _, port in
            let x25519 = try sClient(port, ["-tls1_3", "-groups", "X25519"])
            let p384 = try sClient(port, ["-tls1_3", "-groups", "P-384"])
            #expect(x25519.status != 0)
            #expect(p384.stdout.contains("Cipher is TLS_"))
        }
        var bogus = pki.tlsConfiguration
        bogus.groups = "X25519:nonsense"
        #expect(throws: NetError.self) { _ = try makeTLSStore(bogus) }
    }

    /// A flood of ClientHellos ready at once is handshaken a budget's worth per loop turn, with
    /// answers to established connections in between — not all in one turn.
    @Test func handshakesAreBudgetedPerLoopTurn() throws {
        // One captured ClientHello, replayed on every connection (the attack costs the client nothing).
        let hello = try python("""
            import ssl, sys
            ctx = ssl.create_default_context(cafile="\(pki.caCertificate)")
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
            try: tls.do_handshake()
            except ssl.SSLWantReadError: pass
            sys.stdout.write(outgoing.read().hex())
            """)
        let helloBytes = try #require(hexBytes(hello.stdout))
        let hold = HoldingResponder()
        let configuration = testConfiguration {
            $0.eventLoopCount = 1
            $0.handshakeBudgetPerTurn = .nanoseconds(1)  // one handshake step per turn
        }
        try withServer(configuration: configuration, tls: try makeTLSStore(), responder: hold) { server, port in
            // Hold the loop inside a responder while 48 connections queue up with their ClientHello.
            let held = Thread { _ = try? run("curl", ["-sS", "--cacert", pki.caCertificate, "--max-time", "20", "https://localhost:\(port)/hold"]) }
            held.start()
            #expect(waitUntil(timeout: .seconds(10)) { hold.entered.load(ordering: .relaxed) })
            let flood = try (0..<48).map { _ in try RawClient(port: port, receiveTimeout: 10) }
            for client in flood { client.send(helloBytes) }
            hold.release()
            // Every one gets its ServerHello (a TLS handshake record, 0x16) ...
            for client in flood {
                var first: UInt8 = 0
                #expect(recv(client.fd, &first, 1, 0) == 1 && first == 0x16)
            }
            // ... one per turn (a request answered afterwards means those turns have ended).
            let after = try curl(port, ["https://localhost:\(port)/after"])
            #expect(after.status == 0, "\(after.stderr)")
            #expect(server.mostHandshakesInATurn <= 1, "\(server.mostHandshakesInATurn) handshakes in one turn")
        }
    }

    /// Readiness on the plain port reports the TLS side: ready with a valid certificate, not once it expired.
    @Test func readinessReportsAnExpiredCertificate() throws {
        let store = try makeTLSStore()
        #expect(store.readinessProblem() == nil)
        let problem = store.readinessProblem(now: Int(Int32.max) * 4)  // far past the test certificate's notAfter
        #expect(problem?.contains("expired") == true, "\(problem ?? "nil")")
    }

    @Test func plainHTTPOnTheTLSPortFailsTheHandshakeOnly() throws {
        let observer = RecordingObserver()
        try withServer(tls: try makeTLSStore(), observer: observer) { server, port in
            let plain = try RawClient(port: port, receiveTimeout: 5)
            plain.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            _ = plain.readToEnd()  // an alert at most, then close
            #expect(waitUntil { server.handshakeFailureCount == 1 })
            #expect(observer.handshakeFailures.load(ordering: .relaxed) == 1)
            let result = try curl(port, ["https://localhost:\(port)/after"])
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    @Test func clientCertificateIsRequiredWhenConfigured() throws {
        var configuration = pki.tlsConfiguration
        configuration.clientCAFile = pki.caCertificate
        try withServer(tls: try makeTLSStore(configuration)) { _, port in
            let anonymous = try curl(port, ["-w", "%{http_code}", "--data-binary", "x", "https://localhost:\(port)/"])
            #expect(anonymous.status != 0)
            #expect(!anonymous.stdout.contains("200"))
            let authenticated = try curl(port, ["-w", "|%{http_code}", "--cert", pki.clientCertificate, "--key", pki.clientKey,
                                                "--data-binary", "x", "https://localhost:\(port)/"])
            #expect(authenticated.status == 0, "\(authenticated.stderr)")
            #expect(authenticated.stdout == "x|200")
        }
    }

    @Test func certificateRotationInPlace() throws {
        let directory = NSTemporaryDirectory() + "berthnet-rotate-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: pki.serverCertificate, toPath: directory + "/server.pem")
        try FileManager.default.copyItem(atPath: pki.serverKey, toPath: directory + "/server.key")
        let failures = Mutex<[String]>([])
        let store = try makeTLSStore(TLSServerConfiguration(certificateFile: directory + "/server.pem",
                                                            privateKeyFile: directory + "/server.key",
                                                            reloadInterval: .seconds(3600))) { result in
            if case .failure(let error) = result { failures.withLock { $0.append("\(error)") } }
        }
        try withServer(tls: store) { _, port in
            #expect(try servedSerial(port) == "03E9")
            #expect(store.reloadIfChanged() == false)
            try pki.issue(name: "server", serial: "2002", commonName: "localhost", into: directory)
            #expect(store.reloadIfChanged() == true)
            #expect(try servedSerial(port) == "07D2")
            try "garbage".write(toFile: directory + "/server.pem", atomically: true, encoding: .utf8)
            #expect(store.reloadIfChanged() == false)
            #expect(failures.withLock { $0.count } == 1)
            #expect(failures.withLock { $0.first?.contains("server.pem") } == true)
            #expect(try servedSerial(port) == "07D2")
            #expect(store.reloadIfChanged() == false)  // the same bad contents are not retried
        }
    }

    @Test func certificateRotationBySecretVolumeSymlinkSwapIsPolled() throws {
        // The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/, swapped by rename.
        let directory = NSTemporaryDirectory() + "berthnet-secret-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory + "/..2026_01", withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: directory) }
        try fm.copyItem(atPath: pki.serverCertificate, toPath: directory + "/..2026_01/tls.crt")
        try fm.copyItem(atPath: pki.serverKey, toPath: directory + "/..2026_01/tls.key")
        try fm.createSymbolicLink(atPath: directory + "/..data", withDestinationPath: "..2026_01")
        try fm.createSymbolicLink(atPath: directory + "/tls.crt", withDestinationPath: "..data/tls.crt")
        try fm.createSymbolicLink(atPath: directory + "/tls.key", withDestinationPath: "..data/tls.key")
        let store = try makeTLSStore(TLSServerConfiguration(certificateFile: directory + "/tls.crt", privateKeyFile: directory + "/tls.key",
                                                            reloadInterval: .milliseconds(200)))
        try withServer(tls: store) { _, port in
            #expect(try servedSerial(port) == "03E9")
            try fm.createDirectory(atPath: directory + "/..2026_02", withIntermediateDirectories: true)
            try pki.issue(name: "server", serial: "4004", commonName: "localhost", into: directory + "/..2026_02")
            try fm.moveItem(atPath: directory + "/..2026_02/server.pem", toPath: directory + "/..2026_02/tls.crt")
            try fm.moveItem(atPath: directory + "/..2026_02/server.key", toPath: directory + "/..2026_02/tls.key")
            try fm.createSymbolicLink(atPath: directory + "/..data_tmp", withDestinationPath: "..2026_02")
            #expect(rename(directory + "/..data_tmp", directory + "/..data") == 0)
            #expect(waitUntil(timeout: .seconds(10)) { store.generation == 2 })  // picked up by the loop's poll
            #expect(try servedSerial(port) == "0FA4")
        }
    }

    @Test func badInitialPairThrowsNamingTheFile() throws {
        #expect {
            _ = try makeTLSStore(TLSServerConfiguration(certificateFile: "/nonexistent/cert.pem", privateKeyFile: pki.serverKey))
        } throws: { "\($0)".contains("/nonexistent/cert.pem") }
        #expect {
            _ = try makeTLSStore(TLSServerConfiguration(certificateFile: pki.serverCertificate, privateKeyFile: pki.clientKey))
        } throws: { "\($0)".contains("match the certificate") && "\($0)".contains(pki.clientKey) }
    }
}
