/* keys.h -- TUF public keys and signatures through OpenSSL EVP: Ed25519 sign and verify;
 * verify-only ecdsa-sha2-nistp256 and rsassa-pss-sha256; key IDs as the TUF spec defines them. */
#ifndef RH_KEYS_H
#define RH_KEYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

#define RH_KEYID_HEX_LEN 64 /* sha256 hex */

typedef struct rh_pubkey {
    char keyid[RH_KEYID_HEX_LEN + 1]; /* sha256 of canonical JSON of the key object, hex */
    char *keytype;                    /* "ed25519", "ecdsa" or "ecdsa-sha2-nistp256", "rsa" */
    char *scheme;                     /* "ed25519", "ecdsa-sha2-nistp256", "rsassa-pss-sha256" */
    char *public_value;               /* keyval.public as in the metadata */
    void *pkey;                       /* EVP_PKEY *, NULL when the type is unsupported */
} rh_pubkey;

/* Parse one TUF key object ({"keytype","scheme","keyval":{"public"}}) and compute its key ID
 * over the canonical JSON of the whole object (TUF spec: KEYID = sha256 of canonical key object).
 * Ed25519 public values are 64 hex chars; ECDSA and RSA public values are PEM
 * (SubjectPublicKeyInfo); ECDSA must be on P-256. An unknown keytype/scheme is not an error:
 * pkey stays NULL and verification with the key always fails (TUF: ignore unknown keys).
 * src names the metadata file. Returns RH_OK, RH_EPARSE, RH_ETYPE, RH_ENOMEM. */
rh_err rh_pubkey_from_json(const json_t *keyobj, const char *src, rh_pubkey *out, rh_error *e)
    __attribute__((warn_unused_result));
void rh_pubkey_cleanup(rh_pubkey *k);  /* frees the members; accepts zeroed structs */

/* true only when sig is a valid signature by k over msg under k's scheme. Never errors. */
bool rh_pubkey_verify(const rh_pubkey *k, const uint8_t *msg, size_t msglen,
                      const uint8_t *sig, size_t siglen) __attribute__((warn_unused_result));

/* Private keys (Ed25519 only; the origin's signing keys). */
typedef struct rh_privkey rh_privkey;

rh_err rh_privkey_generate(rh_privkey **out, rh_error *e);
/* PKCS#8 PEM file, written 0600 via temp file + fsync + rename. */
rh_err rh_privkey_save(const rh_privkey *k, const char *path, rh_error *e);
rh_err rh_privkey_load(const char *path, rh_privkey **out, rh_error *e);
void rh_privkey_free(rh_privkey *k); /* wipes; accepts NULL */
/* New reference to the TUF key object of the public half:
 * {"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"<64 hex>"}} */
json_t *rh_privkey_public_json(const rh_privkey *k);
/* Key ID of the public half (hex, 64 chars + NUL into out). */
rh_err rh_privkey_keyid(const rh_privkey *k, char out[RH_KEYID_HEX_LEN + 1]);
/* Ed25519 signature (64 bytes) of msg into sig. */
rh_err rh_privkey_sign(const rh_privkey *k, const uint8_t *msg, size_t msglen, uint8_t sig[64],
                       rh_error *e);

#endif
