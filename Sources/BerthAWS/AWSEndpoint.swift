import Foundation

/// Where an AWS API (or a credential source) answers: `https://ec2.us-east-1.amazonaws.com`, or an
/// override such as `http://127.0.0.1:5000` for tests and private endpoints.
public struct AWSEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// The path requests go to ("/" for the Query APIs).
    public var path: String

    public init(secure: Bool, host: String, port: Int? = nil, path: String = "/") {
        self.secure = secure
        self.host = host
        self.port = port ?? (secure ? 443 : 80)
        self.path = path.isEmpty ? "/" : path
    }

    /// Parses `scheme://host[:port][/path]`. `what` names the setting in the error.
    public init(url text: String, what: String) throws(AWSError) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw .invalidConfiguration("\(what): \"\(text)\" is not a URL (expected https://host[:port])")
        }
        guard scheme == "https" || scheme == "http" else {
            throw .invalidConfiguration("\(what): \"\(text)\": scheme must be https or http, not \(scheme)")
        }
        let unbracketed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.init(secure: scheme == "https", host: unbracketed, port: url.port, path: url.path)
    }

    public static func ec2(region: String) -> AWSEndpoint {
        AWSEndpoint(secure: true, host: "ec2.\(region).amazonaws.com")
    }

    /// The regional STS endpoint (the SDKs' default since 2024); the global one without a region.
    public static func sts(region: String?) -> AWSEndpoint {
        AWSEndpoint(secure: true, host: region.map { "sts.\($0).amazonaws.com" } ?? "sts.amazonaws.com")
    }

    /// The Host header (and what SigV4 signs): the port only when it is not the scheme's default.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }

    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public var description: String { "\(secure ? "https" : "http")://\(hostHeader)\(path == "/" ? "" : path)" }
}
