import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthTestSupport
import Foundation
import Testing

/// kubeconfigs as users have them: a proxy in front of the apiserver, a server under a path
/// prefix, exec plugins that need the cluster's details, several files in KUBECONFIG.
@Suite struct KubeConfigAsUsersHaveItTests {
    /// `proxy-url` with credentials: every request (and a watch) goes through a CONNECT tunnel,
    /// authenticated with the URL's user and password (percent-decoded) as Basic; TLS is end to
    /// end with the apiserver. Wrong credentials fail with the proxy's 407 and never show the password.
    @Test func proxyURLTunnelsEveryRequestWithTheURLsCredentials() throws {
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey)
        defer { server.stop() }
        let expected = "Basic " + Data("berth:p@ss:w/rd".utf8).base64EncodedString()
        let proxy = try ConnectProxy(requiredAuthorization: expected)
        defer { proxy.stop() }
        let directory = try scratchDirectory("proxy")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func kubeconfig(password: String) throws -> String {
            let text = """
            current-context: c
            clusters: [{name: k, cluster: {server: "https://localhost:\(server.port)", certificate-authority-data: \(base64File(kubePKI.caCertificate)), proxy-url: "http://berth:\(password)@127.0.0.1:\(proxy.port)"}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            users: [{name: u, user: {token: test-token}}]
            """
            let path = directory + "/config-\(password.count)"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let configuration = try KubeConfigLoader.kubeconfig(explicitPath: try kubeconfig(password: "p%40ss%3Aw%2Frd"), environment: [:])
        #expect(configuration.proxy == HTTPProxy(host: "127.0.0.1", port: proxy.port, authorization: expected))
        let client = try KubeClient(configuration)
        server.write(.nodes, ["metadata": ["name": "n1"]])
        #expect(try client.list(.nodes).items.count == 1)
        let informer = Informer(client: client, resource: .nodes, backoff: .fast)
        informer.start()
        defer { informer.stop() }
        #expect(waitUntil { informer.hasSynced && server.openWatchCount == 1 })
        server.write(.nodes, ["metadata": ["name": "n2"]])
        #expect(waitUntil { informer.get("n2") != nil })
        #expect(!proxy.requests.isEmpty)
        #expect(proxy.requests.allSatisfy { $0 == .init(line: "CONNECT localhost:\(server.port) HTTP/1.1", authorization: expected) })

        let wrong = try KubeClient(try KubeConfigLoader.kubeconfig(explicitPath: try kubeconfig(password: "nope"), environment: [:]))
        #expect(performing: { _ = try wrong.list(.nodes) }, throws: { error in
            let text = "\(error)"
            return text.contains("refused CONNECT: HTTP/1.1 407 Proxy Authentication Required") && !text.contains("nope")
        })
    }

    /// Without proxy-url, HTTPS_PROXY from the environment applies as client-go's transport applies
    /// it (Go's ProxyFromEnvironment): credentials in it, NO_PROXY hosts, domains, CIDRs and
    /// loopback excluded.
    @Test func httpsProxyFromTheEnvironment() throws {
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey)
        defer { server.stop() }
        let expected = "Basic " + Data("env:secret".utf8).base64EncodedString()
        let proxy = try ConnectProxy(requiredAuthorization: expected, hosts: ["apiserver.berth.test": "127.0.0.1"])
        defer { proxy.stop() }
        let directory = try scratchDirectory("envproxy")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func kubeconfig(_ server: String) throws -> String {
            let path = directory + "/config-\(abs(server.hashValue))"
            try """
            current-context: c
            clusters: [{name: k, cluster: {server: "\(server)", tls-server-name: localhost, certificate-authority-data: \(base64File(kubePKI.caCertificate))}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            users: [{name: u, user: {token: test-token}}]
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let environment = ["HTTPS_PROXY": "http://env:secret@127.0.0.1:\(proxy.port)", "NO_PROXY": "10.0.0.0/8,.cluster.local,other.test:443"]
        let configuration = try KubeConfigLoader.kubeconfig(explicitPath: try kubeconfig("https://apiserver.berth.test:\(server.port)"), environment: environment)
        #expect(configuration.proxy == HTTPProxy(host: "127.0.0.1", port: proxy.port, authorization: expected))
        _ = try KubeClient(configuration).list(.nodes)
        #expect(proxy.requests == [.init(line: "CONNECT apiserver.berth.test:\(server.port) HTTP/1.1", authorization: expected)])
        // Hosts the environment exempts, and loopback, go direct.
        for host in ["https://10.100.0.1", "https://kubernetes.default.svc.cluster.local", "https://other.test", "https://localhost:\(server.port)", "https://127.0.0.1:6443"] {
            #expect(try KubeConfigLoader.kubeconfig(explicitPath: try kubeconfig(host), environment: environment).proxy == nil, "\(host)")
        }
        // A port-qualified entry only exempts that port; ".cluster.local" is not "cluster.local" itself.
        for host in ["https://other.test:6443", "https://cluster.local"] {
            #expect(try KubeConfigLoader.kubeconfig(explicitPath: try kubeconfig(host), environment: environment).proxy != nil, "\(host)")
        }
        // A proxy Berth cannot use is an error naming where it came from, not a silent direct connection.
        let path = try kubeconfig("https://apiserver.berth.test")
        #expect(performing: { _ = try KubeConfigLoader.kubeconfig(explicitPath: path, environment: ["HTTPS_PROXY": "socks5://proxy:1080"]) },
                throws: { "\($0)".contains("environment HTTPS_PROXY: proxy-url: scheme \"socks5\" is not supported") })
    }

    @Test(arguments: [
        ("socks5://127.0.0.1:1080", "scheme \"socks5\" is not supported"),
        ("http://127.0.0.1:99999", "proxy-url: bad port"),
        ("http://127.0.0.1:3128/some/path", "proxy-url: a path is not allowed"),
    ])
    func badProxyURLsAreClearErrors(url: String, message: String) throws {
        #expect(performing: { _ = try KubeClientConfiguration.proxy(url, source: "kc: cluster \"k\"") },
                throws: { "\($0)".contains(message) && "\($0)".hasPrefix("kc: cluster \"k\"") })
    }

    /// A server URL with a path (Rancher's /k8s/clusters/<id>, an API gateway): every request,
    /// watches included, goes under it.
    @Test func serverWithAPathPrefix() throws {
        var options = FakeKubeAPIServer.Options()
        options.pathPrefix = "/k8s/clusters/c-1"
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey, options: options)
        defer { server.stop() }
        let text = """
        current-context: c
        clusters: [{name: k, cluster: {server: "https://localhost:\(server.port)/k8s/clusters/c-1/", certificate-authority-data: \(base64File(kubePKI.caCertificate))}}]
        contexts: [{name: c, context: {cluster: k, user: u}}]
        users: [{name: u, user: {token: test-token}}]
        """
        let configuration = try KubeConfigLoader.resolve(files: [(try YAMLReader.document(text), "/tmp/kc")], context: nil)
        #expect(configuration.pathPrefix == "/k8s/clusters/c-1")
        let client = try KubeClient(configuration)
        _ = try client.create(.nodes, ["metadata": ["name": "n1"]])
        #expect(try client.get(.nodes, name: "n1")["metadata"]?["name"] == "n1")
        let informer = Informer(client: client, resource: .nodes, backoff: .fast)
        informer.start()
        defer { informer.stop() }
        #expect(waitUntil { informer.hasSynced && server.openWatchCount == 1 && informer.get("n1") != nil })
        #expect(server.requests.allSatisfy { $0.split(separator: " ")[1].hasPrefix("/k8s/clusters/c-1/api/v1/nodes") })
    }

    /// `provideClusterInfo: true`: the plugin finds the cluster in KUBERNETES_EXEC_INFO (server,
    /// CA as data even when the kubeconfig names a file, the exec extension as config); without
    /// it, only `interactive`.
    @Test func execPluginGetsTheClusterWhenAsked() throws {
        let server = try FakeKubeAPIServer(certificateFile: kubePKI.serverCertificate, privateKeyFile: kubePKI.serverKey)
        defer { server.stop() }
        let directory = try scratchDirectory("execinfo")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = """
        #!/bin/sh
        printf '%s' "$KUBERNETES_EXEC_INFO" > "\(directory)/info-$1.json"
        printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"test-token"}}'
        """
        try script.write(toFile: directory + "/plugin", atomically: true, encoding: .utf8)
        chmod(directory + "/plugin", 0o755)
        try FileManager.default.copyItem(atPath: kubePKI.caCertificate, toPath: directory + "/ca.crt")
        for provide in [true, false] {
            let text = """
            current-context: c
            clusters:
            - name: k
              cluster:
                server: https://localhost:\(server.port)
                certificate-authority: ca.crt
                tls-server-name: localhost
                extensions:
                - name: client.authentication.k8s.io/exec
                  extension: {audience: berth, region: eu-west-1}
            contexts: [{name: c, context: {cluster: k, user: u}}]
            users:
            - name: u
              user:
                exec: {apiVersion: client.authentication.k8s.io/v1, command: ./plugin, args: ["\(provide)"], provideClusterInfo: \(provide), interactiveMode: Never}
            """
            try text.write(toFile: directory + "/config", atomically: true, encoding: .utf8)
            let client = try KubeClient(try KubeConfigLoader.kubeconfig(explicitPath: directory + "/config", environment: [:]))
            _ = try client.list(.nodes)
            let info = try JSONParser.parse(readBytes(directory + "/info-\(provide).json"))
            #expect(info["kind"] == "ExecCredential" && info["apiVersion"] == "client.authentication.k8s.io/v1")
            #expect(info["spec"]?["interactive"] == false)
            if provide {
                let cluster = try #require(info["spec"]?["cluster"])
                #expect(cluster["server"]?.stringValue == "https://localhost:\(server.port)")
                #expect(cluster["tls-server-name"] == "localhost")
                #expect(cluster["certificate-authority-data"]?.stringValue == base64File(kubePKI.caCertificate))
                #expect(cluster["config"] == ["audience": "berth", "region": "eu-west-1"])
            } else {
                #expect(info["spec"]?["cluster"] == nil)
            }
        }
    }

    /// KUBECONFIG with several files, merged as kubectl merges them (the judge: `kubectl config
    /// view --minify --raw` over the same files): the first file to set current-context wins, the
    /// first to define a cluster, user or context name wins it whole, empty and missing entries
    /// are skipped, relative paths are relative to the file that names them.
    @Test func severalKubeconfigFilesMergeAsKubectlMergesThem() throws {
        let directory = try scratchDirectory("merge")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/b", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: kubePKI.caCertificate, toPath: directory + "/b/ca.crt")
        let a = """
        apiVersion: v1
        kind: Config
        current-context: work
        users: [{name: me, user: {token: token-from-a}}]
        """
        let b = """
        apiVersion: v1
        kind: Config
        current-context: home
        clusters: [{name: eks, cluster: {server: "https://b.example:6443/prefix", certificate-authority: ca.crt, proxy-url: "http://127.0.0.1:3128"}}]
        contexts: [{name: work, context: {cluster: eks, user: me}}, {name: home, context: {cluster: other, user: me}}]
        users: [{name: me, user: {token: token-from-b}}]
        """
        let c = """
        apiVersion: v1
        kind: Config
        clusters: [{name: eks, cluster: {server: "https://c.example"}}, {name: other, cluster: {server: "https://other.example"}}]
        contexts: [{name: work, context: {cluster: other, user: me}}]
        """
        for (name, text) in [("a", a), ("b/config", b), ("c", c)] { try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8) }
        let list = "\(directory)/a::\(directory)/missing:\(directory)/b/config:\(directory)/c:\(directory)/a"
        let configuration = try KubeConfigLoader.kubeconfig(environment: ["KUBECONFIG": list, "HOME": directory])
        #expect(configuration.host == "b.example" && configuration.port == 6443 && configuration.pathPrefix == "/prefix")
        #expect(configuration.proxy == HTTPProxy(host: "127.0.0.1", port: 3128))
        #expect(configuration.tls?.trustedCAPEM == readBytes(kubePKI.caCertificate))
        guard case .bearerToken(let token) = configuration.credentials else { Issue.record("no token"); return }
        #expect(token == "token-from-a")

        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = list
        environment["HOME"] = directory
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["kubectl", "config", "view", "--minify", "--raw", "--flatten", "-o", "json"]
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let view = try JSONParser.parse(Array(data))
        #expect(view["current-context"] == "work")
        let cluster = view["clusters"]?.arrayValue?.first?["cluster"]
        #expect(cluster?["server"] == "https://b.example:6443/prefix")
        #expect(cluster?["proxy-url"] == "http://127.0.0.1:3128")
        #expect(cluster?["certificate-authority-data"]?.stringValue == base64File(kubePKI.caCertificate))
        #expect(view["users"]?.arrayValue?.first?["user"]?["token"] == "token-from-a")
    }
}
