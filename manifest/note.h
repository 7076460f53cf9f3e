/* note.h -- C2SP signed notes (Ed25519), tlog-checkpoint bodies, tlog-cosignature/v1 witness
 * cosignatures, verifier keys (vkeys) and strict base64. Pure: bytes in, results out. */
#ifndef RH_NOTE_H
#define RH_NOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/keys.h"
#include "manifest/rh_error.h"

#define RH_NOTE_MAX_BYTES (64u * 1024)  /* a whole signed note (checkpoint + cosignatures) */
#define RH_NOTE_MAX_SIGS 100            /* signature lines per note (spec: accept at least 16) */
#define RH_NOTE_MAX_NAME 255            /* bytes in a key name */
#define RH_CHECKPOINT_MAX_ORIGIN 255    /* bytes in a checkpoint origin line */
#define RH_NOTE_ED25519_PUB_LEN 32
#define RH_NOTE_ED25519_SIG_LEN 64
#define RH_NOTE_COSIG_SIG_LEN (8 + 64)  /* tlog-cosignature: u64 timestamp || Ed25519 signature */

/* signed-note "Signature types". */
#define RH_NOTE_TYPE_ED25519 0x01   /* c2sp.org/signed-note Ed25519 */
#define RH_NOTE_TYPE_COSIG_V1 0x04  /* c2sp.org/tlog-cosignature, timestamped Ed25519 */

/* ---- base64 (RFC 4648 section 4), strict ---------------------------------------------- */
size_t rh_base64_len(size_t n); /* encoded length of n bytes, without NUL */
/* Writes rh_base64_len(n) characters and a NUL to out. */
void rh_base64_encode(const uint8_t *p, size_t n, char *out);
/* Decodes exactly len characters: padded, no whitespace, zero spare bits (the one canonical
 * spelling). Writes at most cap bytes and their count to *outlen. Returns RH_OK, RH_EPARSE,
 * RH_ETOOBIG (cap too small). */
rh_err rh_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen)
    __attribute__((warn_unused_result));

/* ---- keys ------------------------------------------------------------------------------ */
typedef struct rh_note_key {
    char name[RH_NOTE_MAX_NAME + 1];
    uint8_t type;                          /* RH_NOTE_TYPE_ED25519 or RH_NOTE_TYPE_COSIG_V1 */
    uint8_t pub[RH_NOTE_ED25519_PUB_LEN];  /* Ed25519 public key */
    uint32_t id;                           /* SHA-256(name || 0x0A || type || pub)[:4], BE */
    bool required;                         /* rh_note_verify fails unless this key signed */
} rh_note_key;

/* signed-note: key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]. */
rh_err rh_note_key_id(const char *name, uint8_t type, const uint8_t *pub, size_t publen,
                      uint32_t *out);
/* Checks the name (non-empty, at most RH_NOTE_MAX_NAME bytes, UTF-8 without Unicode spaces, '+'
 * or control characters) and the type, and computes the key ID; required = false.
 * Returns RH_OK, RH_EPARSE, RH_EINVAL. */
rh_err rh_note_key_init(rh_note_key *k, const char *name, uint8_t type,
                        const uint8_t pub[RH_NOTE_ED25519_PUB_LEN], rh_error *e)
    __attribute__((warn_unused_result));
/* Verifier key "<name>+<8 lower-case hex key ID>+<base64(type || pubkey)>" (signed-note
 * "verifier keys", as golang.org/x/mod/sumdb/note writes them). The key ID must match.
 * Returns RH_OK or RH_EPARSE. */
rh_err rh_note_vkey_parse(const char *vkey, rh_note_key *out, rh_error *e)
    __attribute__((warn_unused_result));
rh_err rh_note_vkey_format(const rh_note_key *k, rh_buf *out); /* appends; no newline */
/* The note key of an Ed25519 private key's public half under name and type. */
rh_err rh_note_key_from_privkey(const rh_privkey *sk, const char *name, uint8_t type,
                                rh_note_key *out, rh_error *e)
    __attribute__((warn_unused_result));

/* ---- notes ----------------------------------------------------------------------------- */
typedef struct rh_note_sig {
    const char *name;   /* NUL-terminated, inside the note */
    uint32_t id;        /* key ID (first 4 bytes, big-endian) */
    const uint8_t *sig; /* signature bytes after the key ID */
    size_t siglen;
} rh_note_sig;

typedef struct rh_note {
    const uint8_t *text; /* the signed text, final newline included, NUL after it */
    size_t textlen;
    size_t nsigs;
    rh_note_sig sigs[RH_NOTE_MAX_SIGS];
    uint8_t *mem; /* owned storage behind text, names and signatures */
} rh_note;

/* signed-note "Format": text ending in newline, a blank line, then 1..RH_NOTE_MAX_SIGS lines
 * "— <name> <base64(keyid || sig)>" (U+2014, spaces); valid UTF-8, no control characters but
 * newline, at most RH_NOTE_MAX_BYTES; the text ends at the last blank line.
 * src names the input in messages. Returns RH_OK, RH_EPARSE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_note_parse(const uint8_t *data, size_t len, const char *src, rh_note **out,
                     rh_error *e) __attribute__((warn_unused_result));
void rh_note_free(rh_note *n); /* accepts NULL */

typedef struct rh_note_result {
    bool ok;            /* keys[i] signed the note and the signature verified */
    uint64_t timestamp; /* cosignature time (RH_NOTE_TYPE_COSIG_V1 keys), else 0 */
} rh_note_result;

/* signed-note "Signatures": lines whose (name, key ID) match no key are ignored; a matching
 * line must verify (Ed25519 over the text; for cosignature/v1 keys over the cosigned message,
 * timestamp <= 2^63-1). results (nkeys entries, may be NULL) tell which keys signed.
 * Returns RH_OK when at least one key verified and every required key did; RH_ESIG when a
 * known key's signature fails, no known key signed, or a required key did not sign. */
rh_err rh_note_verify(const rh_note *n, const rh_note_key *keys, size_t nkeys,
                      rh_note_result *results, const char *src, rh_error *e)
    __attribute__((warn_unused_result));

/* tlog-cosignature "Ed25519 signed message": "cosignature/v1\ntime <ts>\n" || text. Appends. */
rh_err rh_note_cosig_message(const uint8_t *text, size_t len, uint64_t ts, rh_buf *out);
/* Appends "— <name> <base64(id || sig)>\n" (one signature line). */
rh_err rh_note_sigline(const rh_note_key *k, const uint8_t *sig, size_t siglen, rh_buf *out);
/* Appends the signature line of sk (type RH_NOTE_TYPE_ED25519, name) over text. */
rh_err rh_note_sign(const uint8_t *text, size_t len, const char *name, const rh_privkey *sk,
                    rh_buf *out, rh_error *e) __attribute__((warn_unused_result));
/* Appends the cosignature/v1 line of sk (type RH_NOTE_TYPE_COSIG_V1) over text at time ts. */
rh_err rh_note_cosign(const uint8_t *text, size_t len, const char *name, const rh_privkey *sk,
                      uint64_t ts, rh_buf *out, rh_error *e) __attribute__((warn_unused_result));

/* ---- checkpoints (c2sp.org/tlog-checkpoint) --------------------------------------------- */
typedef struct rh_checkpoint {
    char origin[RH_CHECKPOINT_MAX_ORIGIN + 1];
    uint64_t size;
    uint8_t root[32];
    char *extensions; /* NULL, or the extension lines, each newline-terminated; owned */
} rh_checkpoint;

/* Parses a note text: origin line (non-empty), tree size (decimal, no leading zeros),
 * root hash (base64 of 32 bytes), then optional non-empty extension lines; every line
 * newline-terminated. *out written only on success. Returns RH_OK, RH_EPARSE, RH_ENOMEM. */
rh_err rh_checkpoint_parse(const uint8_t *text, size_t len, const char *src, rh_checkpoint *out,
                           rh_error *e) __attribute__((warn_unused_result));
void rh_checkpoint_cleanup(rh_checkpoint *c); /* accepts zeroed structs */
/* Appends the checkpoint text. Returns RH_OK, RH_EINVAL (bad origin/extensions), RH_ENOMEM,
 * RH_ETOOBIG. */
rh_err rh_checkpoint_format(const rh_checkpoint *c, rh_buf *out);

#endif
