import COpenSSL
import Glibc

/// What a TLS client trusts and presents. PEM contents, not paths: kubeconfigs carry base64 data
/// as often as file names, and the caller reads files (and so decides when to re-read them).
public struct TLSClientConfiguration: Sendable {
    /// CAs that may sign the server's certificate; nil uses the system's default trust store.
    public var trustedCAPEM: [UInt8]?
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// Skips certificate and host name verification (kubeconfig `insecure-skip-tls-verify`).
    public var insecureSkipVerify: Bool
    /// The name to send as SNI and check the certificate against, when it differs from the host
    /// connected to (kubeconfig `tls-server-name`).
    public var serverName: String?

    public init(trustedCAPEM: [UInt8]? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil,
                insecureSkipVerify: Bool = false, serverName: String? = nil) {
        self.trustedCAPEM = trustedCAPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.insecureSkipVerify = insecureSkipVerify
        self.serverName = serverName
    }
}

/// Owns one client-side `SSL_CTX`, configured once in init.
///
/// `@unchecked Sendable`: never mutated after init; OpenSSL allows creating `SSL` objects from one
/// `SSL_CTX` on many threads.
final class SSLClientContext: @unchecked Sendable {
    let pointer: OpaquePointer
    let configuration: TLSClientConfiguration

    init(_ configuration: TLSClientConfiguration) throws(NetError) {
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw OpenSSLErrorQueue.error("SSL_CTX_new") }
        pointer = ctx
        self.configuration = configuration
        guard berth_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 else {
            throw OpenSSLErrorQueue.error("SSL_CTX_set_min_proto_version")
        }
        berth_SSL_CTX_set_client_options(ctx)
        // ALPN: offer only http/1.1 (the apiserver also speaks h2; this client does not).
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        guard SSL_CTX_set_alpn_protos(ctx, alpn, UInt32(alpn.count)) == 0 else {
            throw OpenSSLErrorQueue.error("SSL_CTX_set_alpn_protos")
        }
        if configuration.insecureSkipVerify {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if let pem = configuration.trustedCAPEM {
                let certificates = try SSLContext.readCertificates(pem: pem, file: "certificate-authority")
                defer { certificates.forEach { X509_free($0) } }
                guard let store = SSL_CTX_get_cert_store(ctx) else { throw OpenSSLErrorQueue.error("SSL_CTX_get_cert_store") }
                for certificate in certificates where X509_STORE_add_cert(store, certificate) != 1 {
                    throw .certificate(file: "certificate-authority", reason: "CA certificate rejected", queue: OpenSSLErrorQueue.drain())
                }
            } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
                throw OpenSSLErrorQueue.error("SSL_CTX_set_default_verify_paths")
            }
        }
        switch (configuration.clientCertificatePEM, configuration.clientKeyPEM) {
        case let (certificatePEM?, keyPEM?):
            // The server's loading, shared: the leaf, its chain, the key.
            try SSLContext.useCertificateChain(ctx, pem: certificatePEM, file: "client-certificate")
            try SSLContext.usePrivateKey(ctx, pem: keyPEM, file: "client-key", certificateFile: "client-certificate")
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw .certificate(file: "client-key", reason: "private key does not match the client certificate", queue: OpenSSLErrorQueue.drain())
            }
        case (nil, nil):
            break
        default:
            throw .certificate(file: "client-certificate", reason: "a client certificate needs both the certificate and its key", queue: [])
        }
    }

    deinit { SSL_CTX_free(pointer) }
}
