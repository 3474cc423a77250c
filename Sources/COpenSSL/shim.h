#ifndef HAPPY_COPENSSL_SHIM_H
#define HAPPY_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>
/* Wrappers for OpenSSL function-like macros, one header per owning module. */
#include "shim_crypto.h"
#include "shim_tls.h"
#endif
