#ifndef HAPPY_SHIM_TLS_H
#define HAPPY_SHIM_TLS_H
/* static inline wrappers used by HappyNet (TLS) */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* SNI (function-like macro in OpenSSL). */
static inline long happy_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

/* TLS >= 1.2, moving write buffers (retries after WANT_WRITE), partial writes. A peer
   that closes without close_notify is an error (SSL_R_UNEXPECTED_EOF_WHILE_READING), not
   a clean EOF: the reader decides whether the stream may have been truncated. */
static inline int happy_tls_ctx_configure(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_AUTO_RETRY);
    SSL_CTX_clear_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 1;
}

/* Host name / IP check on the peer certificate. 1 on success. */
static inline int happy_tls_set_expected_ip(SSL *ssl, const char *ip) {
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip);
}

/* 1 when the handshake ended with a peer certificate that passed verification. */
static inline int happy_tls_peer_verified(SSL *ssl) {
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL) return 0;
    X509_free(cert);
    return SSL_get_verify_result(ssl) == X509_V_OK ? 1 : 0;
}

/* 1 when the queued error is "unexpected eof while reading" (no close_notify). */
static inline int happy_tls_error_is_unexpected_eof(unsigned long e) {
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}
#endif
