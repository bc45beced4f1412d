import BerthModel
import BerthNet
import Foundation

/// How to reach and authenticate to one apiserver; made by `KubeConfigLoader` from a kubeconfig
/// or the in-cluster service account, or by hand in tests.
public struct KubeClientConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// nil: plain HTTP (only for tests and local proxies).
    public var tls: TLSClientConfiguration?
    public var credentials: KubeCredentials
    /// A path the apiserver is served under (`https://host/prefix`: a gateway or an API proxy),
    /// without a trailing slash; "" for none. Every request path is appended to it.
    public var pathPrefix = ""
    /// The kubeconfig's `proxy-url`: requests go through an HTTP CONNECT tunnel.
    public var proxy: HTTPProxy?
    /// Client-side rate limit, client-go's defaults (rest.Config QPS 5, Burst 10).
    public var qps: Double = 5
    public var burst: Int = 10
    public var timeout: Duration = .seconds(30)
    /// Attempts for a request that fails in a retryable way (429/5xx with Retry-After, connection loss).
    public var maxAttempts = 5
    /// Longest wait between attempts (Retry-After is capped to this).
    public var maxRetryWait: Duration = .seconds(10)
    public var userAgent = "berth/0 (linux) kubernetes-client"

    public init(host: String, port: Int, tls: TLSClientConfiguration?, credentials: KubeCredentials = .none) {
        self.host = host
        self.port = port
        self.tls = tls
        self.credentials = credentials
    }

    /// Parses `https://host[:port][/prefix]` (the kubeconfig `server` field).
    public static func server(_ url: String, source: String) throws(KubeError) -> (host: String, port: Int, tls: Bool, pathPrefix: String) {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") { tls = true; rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { tls = false; rest = url.dropFirst(7) }
        else { throw .configuration(source: source, message: "server \"\(url)\" must start with https:// or http://") }
        var pathPrefix = ""
        if let slash = rest.firstIndex(of: "/") {
            pathPrefix = String(rest[slash...])
            rest = rest[..<slash]
            while pathPrefix.hasSuffix("/") { pathPrefix.removeLast() }
            guard !pathPrefix.contains("?"), !pathPrefix.contains("#") else {
                throw .configuration(source: source, message: "server \"\(url)\": a query or fragment is not allowed")
            }
        }
        let (host, port) = try hostAndPort(rest, defaultPort: tls ? 443 : 80, what: "server \"\(url)\"", source: source)
        return (host, port, tls, pathPrefix)
    }

    /// Parses the kubeconfig `proxy-url`: `http://[user:password@]host[:port]` (client-go also
    /// takes https and socks5 proxies; Berth does not, and says so). Credentials in the URL become
    /// a `Proxy-Authorization: Basic` header; error messages never repeat them.
    public static func proxy(_ url: String, source: String) throws(KubeError) -> HTTPProxy {
        guard url.hasPrefix("http://") else {
            let scheme = url.split(separator: ":", maxSplits: 1).first.map(String.init) ?? url
            throw .configuration(source: source, message: "proxy-url: scheme \"\(scheme)\" is not supported (only http:// proxies, reached with CONNECT)")
        }
        var rest = url.dropFirst(7)
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...].allSatisfy({ $0 == "/" }) else {
                throw .configuration(source: source, message: "proxy-url: a path is not allowed")
            }
            rest = rest[..<slash]
        }
        var authorization: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let user = percentDecoded(parts[0]), password = parts.count > 1 ? percentDecoded(parts[1]) : ""
            authorization = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        }
        let (host, port) = try hostAndPort(rest, defaultPort: 80, what: "proxy-url", source: source)
        return HTTPProxy(host: host, port: port, authorization: authorization)
    }

    /// `%XX` escapes decoded (a `+` stays a `+` in user info, as Go's url package reads it).
    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hostAndPort(_ text: Substring, defaultPort: Int, what: String, source: String) throws(KubeError) -> (String, Int) {
        var host = String(text)
        var port = defaultPort
        if host.hasPrefix("[") {  // [v6]:port
            guard let close = host.firstIndex(of: "]") else { throw .configuration(source: source, message: "\(what): bad IPv6 address") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    throw .configuration(source: source, message: "\(what): bad port")
                }
                port = value
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else {
                throw .configuration(source: source, message: "\(what): bad port")
            }
            port = value
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw .configuration(source: source, message: "\(what) has no host") }
        return (host, port)
    }
}

/// How requests are authenticated (a client certificate is part of `tls`).
public enum KubeCredentials: Sendable {
    case none
    case bearerToken(String)
    /// A token file re-read when it changes (a projected service-account token rotates hourly).
    case tokenFile(String)
    case exec(ExecCredentialPlugin)
}

/// A kubeconfig `users[].user.exec` entry (client.authentication.k8s.io).
public struct ExecCredentialPlugin: Sendable {
    public var command: String
    public var arguments: [String]
    public var environment: [(name: String, value: String)]
    public var apiVersion: String
    public var installHint: String?
    /// The kubeconfig it came from, for error messages.
    public var source: String
    /// With `provideClusterInfo: true`, the cluster as the plugin is told of it in
    /// `KUBERNETES_EXEC_INFO` (`spec.cluster`: server, tls-server-name, insecure-skip-tls-verify,
    /// certificate-authority-data, proxy-url, disable-compression, config); nil otherwise.
    public var clusterInfo: JSON?

    public init(command: String, arguments: [String] = [], environment: [(name: String, value: String)] = [],
                apiVersion: String = "client.authentication.k8s.io/v1", installHint: String? = nil, source: String = "kubeconfig") {
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.apiVersion = apiVersion
        self.installHint = installHint
        self.source = source
    }
}
