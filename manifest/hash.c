/* hash.c -- streaming SHA-256/SHA-512 through OpenSSL EVP, strict hex, constant-time compare. */
#include "manifest/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct rh_hash {
    rh_hash_alg alg;
    EVP_MD_CTX *ctx;
};

static const EVP_MD *md_of(rh_hash_alg alg)
{
    switch (alg) {
    case RH_SHA256:
        return EVP_sha256();
    case RH_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

size_t rh_hash_len(rh_hash_alg alg)
{
    switch (alg) {
    case RH_SHA256:
        return RH_SHA256_LEN;
    case RH_SHA512:
        return RH_SHA512_LEN;
    }
    return 0;
}

rh_hash *rh_hash_new(rh_hash_alg alg)
{
    if (md_of(alg) == NULL)
        return NULL;
    rh_hash *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->alg = alg;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, md_of(alg), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void rh_hash_free(rh_hash *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

rh_err rh_hash_update(rh_hash *h, const void *p, size_t n)
{
    if (h == NULL || (p == NULL && n > 0))
        return RH_EINVAL;
    if (n == 0)
        return RH_OK;
    return EVP_DigestUpdate(h->ctx, p, n) == 1 ? RH_OK : RH_ECRYPTO;
}

rh_err rh_hash_final(rh_hash *h, uint8_t *out)
{
    if (h == NULL || out == NULL)
        return RH_EINVAL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1 || mdlen != rh_hash_len(h->alg))
        return RH_ECRYPTO;
    memcpy(out, md, mdlen);
    return RH_OK;
}

rh_err rh_hash_reset(rh_hash *h)
{
    if (h == NULL)
        return RH_EINVAL;
    return EVP_DigestInit_ex(h->ctx, md_of(h->alg), NULL) == 1 ? RH_OK : RH_ECRYPTO;
}

rh_err rh_hash_once(rh_hash_alg alg, const void *p, size_t n, uint8_t *out)
{
    const EVP_MD *md = md_of(alg);
    if (md == NULL || out == NULL || (p == NULL && n > 0))
        return RH_EINVAL;
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    static const unsigned char empty[1] = {0};
    if (EVP_Digest(n > 0 ? p : empty, n, dig, &dlen, md, NULL) != 1 || dlen != rh_hash_len(alg))
        return RH_ECRYPTO;
    memcpy(out, dig, dlen);
    return RH_OK;
}

void rh_hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

int rh_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

rh_err rh_hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
    if (hex == NULL || (out == NULL && outlen > 0))
        return RH_EINVAL;
    /* Check the whole input (exact length, only hex digits) before writing anything. */
    for (size_t i = 0; i < 2 * outlen; i++)
        if (rh_hex_digit(hex[i]) < 0) /* also stops at a NUL: too short */
            return RH_EPARSE;
    if (hex[2 * outlen] != '\0')
        return RH_EPARSE;
    for (size_t i = 0; i < outlen; i++)
        out[i] = (uint8_t)((rh_hex_digit(hex[2 * i]) << 4) | rh_hex_digit(hex[2 * i + 1]));
    return RH_OK;
}

bool rh_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return CRYPTO_memcmp(a, b, n) == 0;
}
