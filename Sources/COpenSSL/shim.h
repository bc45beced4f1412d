#ifndef BERTH_COPENSSL_SHIM_H
#define BERTH_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

// Wrappers for OpenSSL macros (SSL_CTX_ctrl / BIO_ctrl under the hood) that Swift cannot import.

static inline int berth_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

/// The options every Berth server context gets: no renegotiation, server cipher order, no
/// compression, and EOF without close_notify reported as a plain close (not an error).
static inline void berth_SSL_CTX_set_server_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
}

static inline long berth_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

/// Read-ahead: one read(2) fetches as many records as the socket holds (a 2.5 KB request is one
/// syscall, not header + body reads plus an EAGAIN probe). Callers must then loop on SSL_has_pending.
static inline void berth_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) {
    SSL_CTX_set_read_ahead(ctx, yes);
}

static inline long berth_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

/// Takes ownership of `x509` on success (add0).
static inline int berth_SSL_CTX_add0_chain_cert(SSL_CTX *ctx, X509 *x509) {
    return (int)SSL_CTX_add0_chain_cert(ctx, x509);
}

static inline int berth_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

static inline long berth_BIO_get_mem_data(BIO *bio, char **out) {
    return BIO_get_mem_data(bio, out);
}

/// ALPN: select "http/1.1" when the client offers it. A client that offers ALPN without
/// http/1.1 still gets a connection without ALPN (NOACK) instead of a fatal alert, as
/// most HTTP/1.1 servers do; clients sending no ALPN never reach this callback.
static inline int berth_alpn_select_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                           const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *selected = NULL;
    unsigned char selectedLength = 0;
    if (SSL_select_next_proto(&selected, &selectedLength, http11, sizeof(http11) - 1, in, inlen)
            == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        *outlen = selectedLength;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static inline void berth_SSL_CTX_select_alpn_http11(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, berth_alpn_select_http11, NULL);
}

/// The negotiated ALPN protocol copied into `buffer` (NUL-terminated); returns its length (0: none).
static inline int berth_SSL_get_alpn(const SSL *ssl, char *buffer, int capacity) {
    const unsigned char *data = NULL;
    unsigned int length = 0;
    SSL_get0_alpn_selected(ssl, &data, &length);
    if (data == NULL || length == 0 || (int)length >= capacity) { if (capacity > 0) buffer[0] = 0; return 0; }
    memcpy(buffer, data, length);
    buffer[length] = 0;
    return (int)length;
}

// Client side.

/// SNI: the host name sent in the ClientHello (a macro over SSL_ctrl).
static inline int berth_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/// The options every Berth client context gets: no renegotiation, no compression, EOF without
/// close_notify reported as a plain close.
static inline void berth_SSL_CTX_set_client_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
}

#endif
