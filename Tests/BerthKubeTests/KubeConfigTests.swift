import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// A scratch directory per test.
func scratchDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "berthkube-\(label)-\(getpid())-\(UUID().uuidString.prefix(6))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func base64File(_ path: String) -> String { Data(readBytes(path)).base64EncodedString() }

@Suite struct KubeConfigTests {
    @Test func tokenKubeconfigWithCAFileAndCurrentContext() throws {
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey)
        defer { server.stop() }
        let directory = try scratchDirectory("token")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: kubePKI.caCertificate, toPath: directory + "/ca.crt")
        let kubeconfig = """
        apiVersion: v1
        kind: Config
        current-context: fake
        clusters:
        - name: fake
          cluster:
            server: https://localhost:\(server.port)
            certificate-authority: ca.crt
        - name: elsewhere
          cluster: {server: "https://127.0.0.1:1"}
        contexts:
        - name: fake
          context: {cluster: fake, user: robot}
        - name: broken
          context: {cluster: elsewhere, user: robot}
        users:
        - name: robot
          user: {token: test-token}
        """
        try kubeconfig.write(toFile: directory + "/config", atomically: true, encoding: .utf8)
        // $KUBECONFIG with a missing entry first: the existing file is used.
        let configuration = try KubeConfigLoader.kubeconfig(environment: ["KUBECONFIG": "\(directory)/missing:\(directory)/config"])
        #expect(configuration.host == "localhost" && configuration.port == server.port)
        let client = try KubeClient(configuration)
        #expect(try client.list(.nodes).items.isEmpty)

        let other = try KubeConfigLoader.kubeconfig(explicitPath: directory + "/config", context: "broken", environment: [:])
        #expect(other.host == "127.0.0.1" && other.port == 1)
        #expect(performing: { _ = try KubeConfigLoader.kubeconfig(explicitPath: directory + "/config", context: "nope", environment: [:]) },
                throws: { "\($0)".contains("context \"nope\" not found") })
        // ~/.kube/config through HOME.
        try FileManager.default.createDirectory(atPath: directory + "/.kube", withIntermediateDirectories: true)
        try kubeconfig.replacingOccurrences(of: "certificate-authority: ca.crt", with: "certificate-authority: ../ca.crt")
            .write(toFile: directory + "/.kube/config", atomically: true, encoding: .utf8)
        #expect(try KubeConfigLoader.kubeconfig(environment: ["HOME": directory]).port == server.port)
    }

    @Test func clientCertificateKubeconfigWithInlineData() throws {
        var options = FakeKubeAPIServer.Options()
        options.clientCAFile = kubePKI.caCertificate
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey, options: options)
        defer { server.stop() }
        let text = """
        apiVersion: v1
        kind: Config
        current-context: certs
        clusters:
        - name: fake
          cluster:
            server: https://127.0.0.1:\(server.port)
            certificate-authority-data: \(base64File(kubePKI.caCertificate))
        contexts:
        - {name: certs, context: {cluster: fake, user: admin}}
        users:
        - name: admin
          user:
            client-certificate-data: \(base64File(kubePKI.directory + "/client.pem"))
            client-key-data: \(base64File(kubePKI.directory + "/client.key"))
        """
        let configuration = try KubeConfigLoader.resolve(files: [(try YAMLReader.document(text), "/tmp/inline")], context: nil)
        let client = try KubeClient(configuration)
        _ = try client.create(.namespaces, namespace: nil, ["metadata": ["name": "ml"]])
        #expect(server.object(.namespaces, name: "ml") != nil)

        // Without the certificate the TLS handshake is refused.
        var anonymous = configuration
        anonymous.tls?.clientCertificatePEM = nil
        anonymous.tls?.clientKeyPEM = nil
        anonymous.maxAttempts = 1
        #expect(performing: { _ = try KubeClient(anonymous).list(.nodes) }, throws: { $0 is KubeError })
    }

    @Test func insecureSkipVerifyAndWrongCA() throws {
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey)
        defer { server.stop() }
        func config(_ cluster: String) throws -> KubeClientConfiguration {
            try KubeConfigLoader.resolve(files: [(try YAMLReader.document("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://localhost:\(server.port)", \(cluster)}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            users: [{name: u, user: {token: test-token}}]
            """), "/tmp/x")], context: nil)
        }
        #expect(try KubeClient(try config("insecure-skip-tls-verify: true")).list(.nodes).items.isEmpty)
        // No CA given: the system trust store does not know the test CA.
        var untrusted = try config("tls-server-name: localhost")
        untrusted.maxAttempts = 1
        #expect(performing: { _ = try KubeClient(untrusted).list(.nodes) }, throws: { error in
            guard case KubeError.transport(.certificateVerification, _, _) = error else { return false }
            return true
        })
    }

    /// The exec plugin (a shell script, as `aws eks get-token` would be) runs once per token
    /// lifetime; after `expirationTimestamp` it runs again; a 401 also forces a fresh token.
    @Test func execPluginTokenCachedUntilExpiry() throws {
        var options = FakeKubeAPIServer.Options()
        options.tokens = ["exec-token-1": .allowed, "exec-token-2": .allowed, "exec-token-3": .allowed]
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey, options: options)
        defer { server.stop() }
        let directory = try scratchDirectory("exec")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = """
        #!/bin/sh
        # Counts its runs; each run hands out the next token, valid for 10 minutes.
        [ -n "$KUBERNETES_EXEC_INFO" ] || { echo "no KUBERNETES_EXEC_INFO" >&2; exit 3; }
        [ "$CLUSTER" = "fake" ] || { echo "env not passed" >&2; exit 4; }
        n=$(( $(cat "\(directory)/count" 2>/dev/null || echo 0) + 1 ))
        echo $n > "\(directory)/count"
        expiry=$(date -u -d "+600 seconds" +%Y-%m-%dT%H:%M:%SZ)
        printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token-%s","expirationTimestamp":"%s"}}' "$n" "$expiry"
        """
        try script.write(toFile: directory + "/get-token.sh", atomically: true, encoding: .utf8)
        chmod(directory + "/get-token.sh", 0o755)
        let kubeconfig = """
        current-context: eks
        clusters: [{name: k, cluster: {server: "https://localhost:\(server.port)", certificate-authority-data: \(base64File(kubePKI.caCertificate))}}]
        contexts: [{name: eks, context: {cluster: k, user: aws}}]
        users:
        - name: aws
          user:
            exec:
              apiVersion: client.authentication.k8s.io/v1
              command: ./get-token.sh
              args: [eks, get-token]
              env: [{name: CLUSTER, value: fake}]
              interactiveMode: Never
        """
        try kubeconfig.write(toFile: directory + "/config", atomically: true, encoding: .utf8)
        let configuration = try KubeConfigLoader.kubeconfig(explicitPath: directory + "/config", environment: [:])
        let clock = Mutex(Date())
        let credentials = CredentialSource(configuration.credentials, now: { clock.withLock { $0 } })
        let client = try KubeClient(configuration, credentials: credentials)
        for _ in 0..<3 { _ = try client.list(.nodes) }
        #expect(credentials.refreshCount == 1)
        // Past the expiry: the plugin runs again.
        clock.withLock { $0 = $0.addingTimeInterval(601) }
        _ = try client.list(.nodes)
        #expect(credentials.refreshCount == 2)
        // The server stops accepting the current token: one 401, a fresh token, success.
        // (Back to real time: the tokens the script hands out expire 10 minutes from now.)
        clock.withLock { $0 = Date() }
        server.failNext(1, status: 401, pathContains: "/nodes")
        _ = try client.list(.nodes)
        #expect(credentials.refreshCount == 3)
        #expect(try String(contentsOfFile: directory + "/count", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "3")
    }

    /// An exec plugin may hand out a client certificate instead of a token; the client presents it.
    @Test func execPluginClientCertificate() throws {
        var options = FakeKubeAPIServer.Options()
        options.clientCAFile = kubePKI.caCertificate
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey, options: options)
        defer { server.stop() }
        let directory = try scratchDirectory("execcert")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credential: JSON = [
            "apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
            "status": ["clientCertificateData": .string(String(decoding: readBytes(kubePKI.directory + "/client.pem"), as: UTF8.self)),
                       "clientKeyData": .string(String(decoding: readBytes(kubePKI.directory + "/client.key"), as: UTF8.self))],
        ]
        try JSONWriter.string(credential).write(toFile: directory + "/credential.json", atomically: true, encoding: .utf8)
        try "#!/bin/sh\ncat '\(directory)/credential.json'\n".write(toFile: directory + "/plugin", atomically: true, encoding: .utf8)
        chmod(directory + "/plugin", 0o755)
        var configuration = FakeCluster.configuration(port: server.port)
        configuration.credentials = .exec(ExecCredentialPlugin(command: directory + "/plugin", apiVersion: "client.authentication.k8s.io/v1beta1"))
        let client = try KubeClient(configuration)
        #expect(try client.list(.nodes).items.isEmpty)
        #expect(client.credentials.refreshCount == 1)
        #expect(try client.credentials.authorization() == nil)
    }

    @Test(arguments: [
        ("exit 7", "exited with status 7"),
        ("echo not-json", "not an ExecCredential"),
        (#"echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"x"}}'"#, "does not match"),
        (#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}}'"#, "status.token is missing"),
        (#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientKeyData":"k"}}'"#, "must be given together"),
    ])
    func execPluginFailuresAreClear(body: String, expected: String) throws {
        let directory = try scratchDirectory("execfail")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "#!/bin/sh\n\(body)\n".write(toFile: directory + "/plugin", atomically: true, encoding: .utf8)
        chmod(directory + "/plugin", 0o755)
        let source = CredentialSource(.exec(ExecCredentialPlugin(command: directory + "/plugin")))
        #expect(performing: { _ = try source.authorization() }, throws: { "\($0)".contains(expected) })
    }

    /// In-cluster: env + service-account directory; the projected token rotates and is re-read.
    @Test func inClusterTokenRotation() throws {
        var options = FakeKubeAPIServer.Options()
        options.tokens = ["sa-token-1": .allowed, "sa-token-2": .allowed]
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey, options: options)
        defer { server.stop() }
        let directory = try scratchDirectory("sa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: kubePKI.caCertificate, toPath: directory + "/ca.crt")
        try "sa-token-1\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        var configuration = try KubeConfigLoader.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(server.port)],
            serviceAccountDirectory: directory)
        configuration.qps = 0
        let clock = Mutex(Date())
        let credentials = CredentialSource(configuration.credentials, now: { clock.withLock { $0 } })
        let client = try KubeClient(configuration, credentials: credentials)
        _ = try client.list(.nodes)
        try "sa-token-2\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        options.tokens = [:]  // (the server still accepts both; the point is which one is sent)
        clock.withLock { $0 = $0.addingTimeInterval(61) }
        _ = try client.list(.nodes)
        #expect(credentials.refreshCount == 2)
        #expect(try credentials.authorization() == "Bearer sa-token-2")
        #expect(performing: { _ = try KubeConfigLoader.inCluster(environment: [:]) },
                throws: { "\($0)".contains("KUBERNETES_SERVICE_HOST") })
    }

    @Test(arguments: [
        ("clusters: [{name: k, cluster: {server: 'ftp://x'}}]", "must start with https://"),
        ("clusters: [{name: k, cluster: {server: 'https://x:99999'}}]", "bad port"),
        ("clusters: [{name: k, cluster: {server: 'https://x', certificate-authority-data: '!!!'}}]", "not valid base64"),
        ("clusters: [{name: k, cluster: {server: 'https://x', certificate-authority: /nonexistent/ca.crt}}]", "/nonexistent/ca.crt"),
        ("clusters: {k: 1}", "clusters: expected a list"),
    ])
    func badKubeconfigsNameTheProblem(clusters: String, expected: String) throws {
        let text = """
        current-context: c
        \(clusters)
        contexts: [{name: c, context: {cluster: k, user: u}}]
        users: [{name: u, user: {token: t}}]
        """
        #expect(performing: { _ = try KubeConfigLoader.resolve(files: [(try YAMLReader.document(text), "kc.yaml")], context: nil) },
                throws: { "\($0)".contains(expected) })
    }
}
