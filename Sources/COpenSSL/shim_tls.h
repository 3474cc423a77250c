#ifndef HAPPY_SHIM_TLS_H
#define HAPPY_SHIM_TLS_H
/* static inline wrappers used by HappyKit/Net (TLS) */
#endif
