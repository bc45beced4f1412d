import COpenSSL
import Glibc

/// Owns one configured `SSL_CTX` (server side) and frees it in deinit.
///
/// `@unchecked Sendable`: the context is fully configured in `init` and never mutated afterwards;
/// OpenSSL documents creating `SSL` objects from one `SSL_CTX` on many threads as safe
/// (reference counts and the session cache are locked internally).
final class SSLContext: @unchecked Sendable {
    let pointer: OpaquePointer
    /// When the served (leaf) certificate expires, seconds since 1970 (nil if it cannot be read).
    private(set) var notAfter: Int?

    /// TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only. TLS 1.3 keeps OpenSSL's (all AEAD).
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// PEM contents are passed in (not paths) so that exactly the bytes compared for reload are loaded.
    init(certificatePEM: [UInt8], privateKeyPEM: [UInt8], clientCAPEM: [UInt8]?, files: TLSServerConfiguration) throws(NetError) {
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw OpenSSLErrorQueue.error("SSL_CTX_new") }
        pointer = ctx  // freed by deinit from here on, including when init throws below

        guard berth_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 else {
            throw OpenSSLErrorQueue.error("SSL_CTX_set_min_proto_version")
        }
        guard SSL_CTX_set_cipher_list(ctx, Self.tls12Ciphers) == 1 else {
            throw OpenSSLErrorQueue.error("SSL_CTX_set_cipher_list")
        }
        berth_SSL_CTX_set_server_options(ctx)
        guard berth_SSL_CTX_set1_groups_list(ctx, files.groups) == 1 else {
            throw NetError.tls(operation: "TLS key-exchange groups \"\(files.groups)\" (OpenSSL names such as X25519:P-256:P-384)", queue: OpenSSLErrorQueue.drain())
        }
        // Partial writes + moving buffers: our output buffer may be reallocated between retries.
        // No SSL_MODE_RELEASE_BUFFERS: freeing and reallocating the record buffers on every
        // request cost ~40% of throughput (27k vs 45k req/s measured). Memory stays bounded:
        // about 34 KB of record buffers per connection, times maxConnections.
        _ = berth_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        berth_SSL_CTX_set_read_ahead(ctx, 1)
        _ = berth_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER))
        let sessionContext: [UInt8] = Array("berth".utf8)
        _ = SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
        berth_SSL_CTX_select_alpn_http11(ctx)

        notAfter = try Self.useCertificateChain(ctx, pem: certificatePEM, file: files.certificateFile)
        try Self.usePrivateKey(ctx, pem: privateKeyPEM, file: files.privateKeyFile, certificateFile: files.certificateFile)
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw NetError.certificate(
                file: files.privateKeyFile,
                reason: "private key does not match the certificate in \(files.certificateFile)",
                queue: OpenSSLErrorQueue.drain())
        }
        if let clientCAPEM, let caFile = files.clientCAFile {
            try Self.useClientCAs(ctx, pem: clientCAPEM, file: caFile)
        }
    }

    deinit { SSL_CTX_free(pointer) }

    static func readCertificates(pem: [UInt8], file: String) throws(NetError) -> [OpaquePointer] {
        let result: Result<[OpaquePointer], NetError> = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                return .failure(OpenSSLErrorQueue.error("BIO_new_mem_buf"))
            }
            defer { BIO_free(bio) }
            var certificates: [OpaquePointer] = []
            guard let leaf = PEM_read_bio_X509_AUX(bio, nil, nil, nil) else {
                return .failure(.certificate(file: file, reason: "no PEM certificate found", queue: OpenSSLErrorQueue.drain()))
            }
            certificates.append(leaf)
            while let next = PEM_read_bio_X509(bio, nil, nil, nil) { certificates.append(next) }
            OpenSSLErrorQueue.clear()  // the loop ends with "no start line", which is expected
            return .success(certificates)
        }
        return try result.get()
    }

    /// Returns the leaf's notAfter (seconds since 1970), when it can be read.
    @discardableResult
    static func useCertificateChain(_ ctx: OpaquePointer, pem: [UInt8], file: String) throws(NetError) -> Int? {
        var certificates = try readCertificates(pem: pem, file: file)
        let leaf = certificates.removeFirst()
        defer { X509_free(leaf) }  // SSL_CTX_use_certificate takes its own reference
        var expiry = tm()
        let notAfter: Int? = X509_get0_notAfter(leaf).flatMap { ASN1_TIME_to_tm($0, &expiry) == 1 ? Int(timegm(&expiry)) : nil }
        guard SSL_CTX_use_certificate(ctx, leaf) == 1 else {
            certificates.forEach { X509_free($0) }
            throw .certificate(file: file, reason: "certificate rejected", queue: OpenSSLErrorQueue.drain())
        }
        for (index, intermediate) in certificates.enumerated() {
            guard berth_SSL_CTX_add0_chain_cert(ctx, intermediate) == 1 else {
                certificates[index...].forEach { X509_free($0) }
                throw .certificate(file: file, reason: "chain certificate rejected", queue: OpenSSLErrorQueue.drain())
            }
        }
        return notAfter
    }

    static func usePrivateKey(_ ctx: OpaquePointer, pem: [UInt8], file: String, certificateFile: String) throws(NetError) {
        let result: Result<Void, NetError> = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                return .failure(OpenSSLErrorQueue.error("BIO_new_mem_buf"))
            }
            defer { BIO_free(bio) }
            guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
                return .failure(.certificate(file: file, reason: "no PEM private key found", queue: OpenSSLErrorQueue.drain()))
            }
            defer { EVP_PKEY_free(key) }
            guard SSL_CTX_use_PrivateKey(ctx, key) == 1 else {
                return .failure(.certificate(file: file, reason: "private key rejected (does it match the certificate in \(certificateFile)?)", queue: OpenSSLErrorQueue.drain()))
            }
            return .success(())
        }
        try result.get()
    }

    private static func useClientCAs(_ ctx: OpaquePointer, pem: [UInt8], file: String) throws(NetError) {
        let certificates = try readCertificates(pem: pem, file: file)
        defer { certificates.forEach { X509_free($0) } }
        guard let store = SSL_CTX_get_cert_store(ctx) else { throw OpenSSLErrorQueue.error("SSL_CTX_get_cert_store") }
        for certificate in certificates {
            guard X509_STORE_add_cert(store, certificate) == 1, SSL_CTX_add_client_CA(ctx, certificate) == 1 else {
                throw .certificate(file: file, reason: "client CA rejected", queue: OpenSSLErrorQueue.drain())
            }
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
    }
}
