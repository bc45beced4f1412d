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

    /// Parses `https://host[:port]` (the kubeconfig `server` field); a path prefix is not supported.
    public static func server(_ url: String, source: String) throws(KubeError) -> (host: String, port: Int, tls: Bool) {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") { tls = true; rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { tls = false; rest = url.dropFirst(7) }
        else { throw .configuration(source: source, message: "server \"\(url)\" must start with https:// or http://") }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/") else {
            throw .configuration(source: source, message: "server \"\(url)\": a path prefix is not supported")
        }
        var host = String(rest)
        var port = tls ? 443 : 80
        if host.hasPrefix("[") {  // [v6]:port
            guard let close = host.firstIndex(of: "]") else { throw .configuration(source: source, message: "server \"\(url)\": bad IPv6 address") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    throw .configuration(source: source, message: "server \"\(url)\": bad port")
                }
                port = value
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else {
                throw .configuration(source: source, message: "server \"\(url)\": bad port")
            }
            port = value
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw .configuration(source: source, message: "server \"\(url)\" has no host") }
        return (host, port, tls)
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
