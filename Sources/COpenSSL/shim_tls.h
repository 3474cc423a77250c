#ifndef HAPPY_SHIM_TLS_H
#define HAPPY_SHIM_TLS_H
/* static inline wrappers used by HappyKit/Net (TLS) */
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* SNI (function-like macro in OpenSSL). */
static inline long happy_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

/* TLS >= 1.2, moving write buffers (retries after WANT_WRITE), partial writes,
   a peer that closes without close_notify reads as EOF. */
static inline int happy_tls_ctx_configure(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 1;
}

/* Host name / IP check on the peer certificate. */
static inline int happy_tls_set_expected_ip(SSL *ssl, const char *ip) {
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip);
}
#endif
