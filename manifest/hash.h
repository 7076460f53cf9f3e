/* hash.h -- streaming SHA-256/SHA-512 through OpenSSL EVP, hex, constant-time compare. */
#ifndef RH_HASH_H
#define RH_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/rh_error.h"

#define RH_SHA256_LEN 32
#define RH_SHA512_LEN 64

typedef enum rh_hash_alg { RH_SHA256, RH_SHA512 } rh_hash_alg;

typedef struct rh_hash rh_hash; /* opaque streaming context */

rh_hash *rh_hash_new(rh_hash_alg alg);                    /* NULL on OOM */
void rh_hash_free(rh_hash *h);                            /* accepts NULL */
rh_err rh_hash_update(rh_hash *h, const void *p, size_t n);
/* Writes rh_hash_len(alg) bytes to out; the context can then be freed (or reset). */
rh_err rh_hash_final(rh_hash *h, uint8_t *out);
rh_err rh_hash_reset(rh_hash *h);
size_t rh_hash_len(rh_hash_alg alg);

/* One-shot. out must hold rh_hash_len(alg) bytes. */
rh_err rh_hash_once(rh_hash_alg alg, const void *p, size_t n, uint8_t *out);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void rh_hex_encode(const uint8_t *p, size_t n, char *out);
/* Strict hex decode: exactly 2*outlen hex digits (either case). RH_EPARSE otherwise. */
rh_err rh_hex_decode(const char *hex, uint8_t *out, size_t outlen)
    __attribute__((warn_unused_result));

/* Value of one hex digit (either case), -1 when c is not one. */
int rh_hex_digit(int c);

/* Constant-time equality of two n-byte buffers (CRYPTO_memcmp). */
bool rh_ct_equal(const void *a, const void *b, size_t n) __attribute__((warn_unused_result));

#endif
