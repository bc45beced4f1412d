import BerthModel
import BerthNet
import Foundation

/// Builds a `KubeClientConfiguration` the way client-go's clientcmd does (the subset Berth needs).
public enum KubeConfigLoader {
    /// In a pod: `KUBERNETES_SERVICE_HOST`/`PORT`, the service-account token (re-read as it rotates)
    /// and CA (k8s.io/client-go/rest.InClusterConfig).
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws(KubeError) -> KubeClientConfiguration {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let portText = environment["KUBERNETES_SERVICE_PORT"], let port = Int(portText) else {
            throw .configuration(source: "in-cluster", message: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (not running in a pod?)")
        }
        let tokenFile = serviceAccountDirectory + "/token"
        let caFile = serviceAccountDirectory + "/ca.crt"
        guard FileManager.default.isReadableFile(atPath: tokenFile) else {
            throw .configuration(source: tokenFile, message: "service-account token not readable")
        }
        let ca = try readFile(caFile, what: "service-account CA")
        var configuration = KubeClientConfiguration(host: host, port: port, tls: TLSClientConfiguration(trustedCAPEM: ca),
                                                    credentials: .tokenFile(tokenFile))
        configuration.proxy = try proxyFromEnvironment(host: host, port: port, tls: true, environment: environment)
        return configuration
    }

    /// The kubeconfig files: `explicitPath`, else `$KUBECONFIG` (a colon-separated list, merged:
    /// the first file to define a name wins, like clientcmd), else `~/.kube/config`.
    public static func kubeconfig(
        explicitPath: String? = nil, context: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(KubeError) -> KubeClientConfiguration {
        let paths: [String]
        if let explicitPath {
            paths = [explicitPath]
        } else if let list = environment["KUBECONFIG"], !list.isEmpty {
            paths = list.split(separator: ":").map(String.init).filter { FileManager.default.fileExists(atPath: $0) }
            if paths.isEmpty { throw .configuration(source: "KUBECONFIG", message: "none of \(list) exists") }
        } else {
            paths = [(environment["HOME"] ?? NSHomeDirectory()) + "/.kube/config"]
        }
        var files: [(json: JSON, path: String)] = []
        for path in paths {
            let bytes = try readFile(path, what: "kubeconfig")
            let json: JSON
            do throws(YAMLError) {
                json = try YAMLReader.document(String(decoding: bytes, as: UTF8.self))
            } catch {
                throw .configuration(source: path, message: "not valid YAML: \(error)")
            }
            files.append((json, path))
        }
        var configuration = try resolve(files: files, context: context)
        // Without proxy-url, the environment's proxy settings apply, as in client-go's transport.
        if configuration.proxy == nil {
            configuration.proxy = try proxyFromEnvironment(host: configuration.host, port: configuration.port, tls: configuration.tls != nil,
                                                           environment: environment)
        }
        return configuration
    }

    /// The proxy Go's `http.ProxyFromEnvironment` picks for this server: `HTTPS_PROXY` (or
    /// `https_proxy`) for an https server, `HTTP_PROXY` for http; none for loopback hosts or a host
    /// `NO_PROXY` names (`*`, a host or domain — which also covers its subdomains; `.domain` only
    /// the subdomains —, an IP, a CIDR, each optionally with `:port`).
    static func proxyFromEnvironment(host: String, port: Int, tls: Bool, environment: [String: String]) throws(KubeError) -> HTTPProxy? {
        func value(_ name: String) -> String? {
            let text = environment[name] ?? environment[name.lowercased()] ?? ""
            return text.isEmpty ? nil : text
        }
        let name = tls ? "HTTPS_PROXY" : "HTTP_PROXY"
        guard let url = value(name) else { return nil }
        let lowered = host.lowercased()
        if lowered == "localhost" || lowered.hasSuffix(".localhost") || lowered.hasPrefix("127.") || lowered == "::1" { return nil }
        for rawEntry in (value("NO_PROXY") ?? "").split(separator: ",") {
            var entry = rawEntry.trimmingCharacters(in: .whitespaces).lowercased()
            if entry.isEmpty { continue }
            if entry == "*" { return nil }
            if entry.contains("/") {
                if CIDR(entry)?.contains(lowered) == true { return nil }
                continue
            }
            if let colon = entry.lastIndex(of: ":"), !entry.contains("]"), entry.filter({ $0 == ":" }).count == 1 {
                guard Int(entry[entry.index(after: colon)...]) == port else { continue }
                entry = String(entry[..<colon])
            }
            if entry.hasPrefix("*.") { entry.removeFirst() }
            if entry.hasPrefix(".") {
                if lowered.hasSuffix(entry) { return nil }
            } else if lowered == entry || lowered.hasSuffix("." + entry) {
                return nil
            }
        }
        return try KubeClientConfiguration.proxy(url, source: "environment \(name)")
    }

    /// An IPv4 CIDR (NO_PROXY's `10.0.0.0/8`).
    struct CIDR {
        let network: UInt32
        let mask: UInt32

        init?(_ text: String) {
            let parts = text.split(separator: "/")
            guard parts.count == 2, let bits = Int(parts[1]), (0...32).contains(bits), let address = CIDR.ipv4(String(parts[0])) else { return nil }
            mask = bits == 0 ? 0 : UInt32.max << UInt32(32 - bits)
            network = address & mask
        }

        func contains(_ host: String) -> Bool {
            guard let address = CIDR.ipv4(host) else { return false }
            return address & mask == network
        }

        static func ipv4(_ text: String) -> UInt32? {
            let octets = text.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt32($0) }
            guard octets.count == 4, octets.allSatisfy({ $0 < 256 }), text.split(separator: ".").count == 4 else { return nil }
            return octets.reduce(0) { $0 << 8 | $1 }
        }
    }

    /// Resolves a merged kubeconfig; `files` in precedence order.
    public static func resolve(files: [(json: JSON, path: String)], context requested: String?) throws(KubeError) -> KubeClientConfiguration {
        let sourceNames = files.map(\.path).joined(separator: ":")
        var currentContext: String?
        for file in files where currentContext == nil {
            if let name = file.json["current-context"]?.stringValue, !name.isEmpty { currentContext = name }
        }
        guard let contextName = requested ?? currentContext else {
            throw .configuration(source: sourceNames, message: "no current-context set and no --context given")
        }
        guard let (contextEntry, _) = try named("contexts", contextName, in: files) else {
            throw .configuration(source: sourceNames, message: "context \"\(contextName)\" not found")
        }
        let clusterName = contextEntry["context"]?["cluster"]?.stringValue ?? ""
        let userName = contextEntry["context"]?["user"]?.stringValue ?? ""
        guard let (clusterEntry, clusterFile) = try named("clusters", clusterName, in: files),
              let cluster = clusterEntry["cluster"] else {
            throw .configuration(source: sourceNames, message: "context \"\(contextName)\": cluster \"\(clusterName)\" not found")
        }
        let clusterSource = "\(clusterFile): cluster \"\(clusterName)\""
        guard let server = cluster["server"]?.stringValue else {
            throw .configuration(source: clusterSource, message: "no server")
        }
        let (host, port, useTLS, pathPrefix) = try KubeClientConfiguration.server(server, source: clusterSource)
        var proxy: HTTPProxy?
        if let proxyURL = cluster["proxy-url"]?.stringValue, !proxyURL.isEmpty {
            proxy = try KubeClientConfiguration.proxy(proxyURL, source: clusterSource)
            guard useTLS else {
                throw .configuration(source: clusterSource, message: "proxy-url needs an https server (the tunnel is CONNECT)")
            }
        }
        var tls = TLSClientConfiguration()
        tls.insecureSkipVerify = cluster["insecure-skip-tls-verify"]?.boolValue ?? false
        tls.serverName = cluster["tls-server-name"]?.stringValue
        tls.trustedCAPEM = try pem(cluster, data: "certificate-authority-data", file: "certificate-authority",
                                   relativeTo: clusterFile, source: clusterSource)
        var credentials = KubeCredentials.none
        if !userName.isEmpty {
            guard let (userEntry, userFile) = try named("users", userName, in: files) else {
                throw .configuration(source: sourceNames, message: "context \"\(contextName)\": user \"\(userName)\" not found")
            }
            let user = userEntry["user"] ?? .object([:])
            let userSource = "\(userFile): user \"\(userName)\""
            tls.clientCertificatePEM = try pem(user, data: "client-certificate-data", file: "client-certificate", relativeTo: userFile, source: userSource)
            tls.clientKeyPEM = try pem(user, data: "client-key-data", file: "client-key", relativeTo: userFile, source: userSource)
            if (tls.clientCertificatePEM == nil) != (tls.clientKeyPEM == nil) {
                throw .configuration(source: userSource, message: "client-certificate and client-key must be given together")
            }
            if let token = user["token"]?.stringValue, !token.isEmpty {
                credentials = .bearerToken(token)
            } else if let tokenFile = user["tokenFile"]?.stringValue, !tokenFile.isEmpty {
                credentials = .tokenFile(absolute(tokenFile, relativeTo: userFile))
            } else if let exec = user["exec"] {
                var plugin = try execPlugin(exec, kubeconfig: userFile, source: userSource)
                if exec["provideClusterInfo"]?.boolValue == true {
                    plugin.clusterInfo = clusterInfo(cluster, server: server, caPEM: tls.trustedCAPEM)
                }
                credentials = .exec(plugin)
            } else if user["auth-provider"] != nil {
                throw .configuration(source: userSource, message: "auth-provider is not supported; use an exec credential plugin")
            }
        }
        var configuration = KubeClientConfiguration(host: host, port: port, tls: useTLS ? tls : nil, credentials: credentials)
        configuration.pathPrefix = pathPrefix
        configuration.proxy = proxy
        if useTLS == false && tls.clientCertificatePEM != nil {
            throw .configuration(source: clusterSource, message: "client certificates need an https server")
        }
        configuration.timeout = .seconds(30)
        return configuration
    }

    /// `spec.cluster` of the ExecCredential (client.authentication.k8s.io Cluster): the kubeconfig
    /// cluster's fields, the CA always as data, and the `client.authentication.k8s.io/exec`
    /// extension as `config`.
    static func clusterInfo(_ cluster: JSON, server: String, caPEM: [UInt8]?) -> JSON {
        var info: JSONObject = ["server": .string(server)]
        if let name = cluster["tls-server-name"]?.stringValue, !name.isEmpty { info["tls-server-name"] = .string(name) }
        if cluster["insecure-skip-tls-verify"]?.boolValue == true { info["insecure-skip-tls-verify"] = true }
        if let caPEM, !caPEM.isEmpty { info["certificate-authority-data"] = .string(Data(caPEM).base64EncodedString()) }
        if let proxy = cluster["proxy-url"]?.stringValue, !proxy.isEmpty { info["proxy-url"] = .string(proxy) }
        if cluster["disable-compression"]?.boolValue == true { info["disable-compression"] = true }
        for extensionEntry in cluster["extensions"]?.arrayValue ?? [] where extensionEntry["name"]?.stringValue == "client.authentication.k8s.io/exec" {
            if let config = extensionEntry["extension"] { info["config"] = config }
        }
        return .object(info)
    }

    private static func execPlugin(_ exec: JSON, kubeconfig: String, source: String) throws(KubeError) -> ExecCredentialPlugin {
        guard let command = exec["command"]?.stringValue, !command.isEmpty else {
            throw .configuration(source: source, message: "exec: command is required")
        }
        guard let apiVersion = exec["apiVersion"]?.stringValue,
              ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"].contains(apiVersion) else {
            throw .configuration(source: source, message: "exec: apiVersion must be client.authentication.k8s.io/v1 or v1beta1")
        }
        // clientcmd: a command with a path separator is relative to the kubeconfig's directory.
        let resolved = command.contains("/") ? absolute(command, relativeTo: kubeconfig) : command
        let arguments = exec["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let environment = (exec["env"]?.arrayValue ?? []).compactMap { entry -> (name: String, value: String)? in
            guard let name = entry["name"]?.stringValue, let value = entry["value"]?.stringValue else { return nil }
            return (name, value)
        }
        return ExecCredentialPlugin(command: resolved, arguments: arguments, environment: environment,
                                    apiVersion: apiVersion, installHint: exec["installHint"]?.stringValue, source: source)
    }

    private static func named(_ list: String, _ name: String, in files: [(json: JSON, path: String)]) throws(KubeError) -> (JSON, String)? {
        for file in files {
            guard let entries = file.json[list] else { continue }
            guard let array = entries.arrayValue else {
                if entries.isNull { continue }
                throw .configuration(source: file.path, message: "\(list): expected a list, found \(entries.typeName)")
            }
            if let entry = array.first(where: { $0["name"]?.stringValue == name }) { return (entry, file.path) }
        }
        return nil
    }

    private static func pem(_ json: JSON, data: String, file: String, relativeTo kubeconfig: String, source: String) throws(KubeError) -> [UInt8]? {
        if let encoded = json[data]?.stringValue, !encoded.isEmpty {
            guard let decoded = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                throw .configuration(source: source, message: "\(data) is not valid base64")
            }
            return Array(decoded)
        }
        if let path = json[file]?.stringValue, !path.isEmpty {
            return try readFile(absolute(path, relativeTo: kubeconfig), what: file)
        }
        return nil
    }

    static func absolute(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        return (URL(fileURLWithPath: file).deletingLastPathComponent().path as NSString).appendingPathComponent(path)
    }

    static func readFile(_ path: String, what: String) throws(KubeError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration(source: path, message: "\(what) file cannot be read")
        }
        return Array(data)
    }
}
