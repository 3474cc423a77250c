#ifndef HAPPY_SHIM_CRYPTO_H
#define HAPPY_SHIM_CRYPTO_H
/* static inline wrappers used by HappyKit/Crypto */
#endif
