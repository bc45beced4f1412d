public struct TLSServerConfiguration: Sendable {
    /// PEM: the leaf certificate first, then any intermediates.
    public var certificateFile: String
    /// PEM private key matching the leaf certificate.
    public var privateKeyFile: String
    /// When set: client certificates are required and verified against these CAs (PEM).
    public var clientCAFile: String?
    /// How often the files are checked for changes.
    public var reloadInterval: Duration = .seconds(5)

    public init(certificateFile: String, privateKeyFile: String, clientCAFile: String? = nil, reloadInterval: Duration = .seconds(5)) {
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.clientCAFile = clientCAFile
        self.reloadInterval = reloadInterval
    }
}
