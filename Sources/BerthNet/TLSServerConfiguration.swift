public struct TLSServerConfiguration: Sendable {
    /// PEM: the leaf certificate first, then any intermediates.
    public var certificateFile: String
    /// PEM private key matching the leaf certificate.
    public var privateKeyFile: String
    /// When set: client certificates are required and verified against these CAs (PEM).
    public var clientCAFile: String?
    /// How often the files are checked for changes.
    public var reloadInterval: Duration = .seconds(5)
    /// Key-exchange groups offered, in preference order (OpenSSL's names, colon-separated).
    /// Finite-field groups are left out by default: a ClientHello offering only ffdhe8192 costs the
    /// server ~100 ms of CPU per handshake against ~0.2 ms for X25519, for free to the client.
    public var groups = TLSServerConfiguration.defaultGroups
    public static let defaultGroups = "X25519:P-256:P-384"

    public init(certificateFile: String, privateKeyFile: String, clientCAFile: String? = nil, reloadInterval: Duration = .seconds(5)) {
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.clientCAFile = clientCAFile
        self.reloadInterval = reloadInterval
    }
}
