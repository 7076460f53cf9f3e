/* audit_log.h -- the auditor's view of a Rhine transparency log: fetch the checkpoint, entry
 * bundles and hash tiles (C2SP tlog-tiles) from any mirror or the origin, verify the signed
 * checkpoint and witness cosignatures, rebuild the tree (RFC 9162) and compare every byte; prove
 * an old checkpoint consistent with the current one from the tiles alone. */
#ifndef RH_AUDIT_LOG_H
#define RH_AUDIT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/limits.h"
#include "manifest/merkle.h"
#include "manifest/note.h"
#include "manifest/rh_error.h"
#include "net/fetch.h"

#define RH_AUDIT_MAX_ENTRY      4096              /* bytes of one log entry (origin/tlog.h) */
#define RH_AUDIT_MAX_SOURCE_REV 1024              /* bytes of a source revision */
#define RH_AUDIT_MAX_ENTRIES    ((uint64_t)1 << 22) /* entries the auditor replays in memory */
#define RH_AUDIT_TILE_LEVELS    8                 /* tile levels of a 64-bit tree */
#define RH_AUDIT_MAX_BUNDLE     ((size_t)RH_TILE_WIDTH * (2 + RH_AUDIT_MAX_ENTRY))
#define RH_AUDIT_MAX_WITNESSES  64

/* Where the log is: get(path relative to the base, e.g. "log/checkpoint") into out, at most max
 * bytes. Returns RH_OK, RH_ENOTFOUND, RH_ETOOBIG, RH_ENET or another error with a message. */
typedef rh_err (*rh_audit_get_fn)(void *ctx, const char *path, size_t max, rh_buf *out,
                                  rh_error *e);
typedef struct rh_audit_src {
    rh_audit_get_fn get;
    void *ctx;
} rh_audit_src;

/* An HTTP(S) (or file://) base URL through net/fetch. */
typedef struct rh_audit_http {
    rh_http *h;
    char base[RH_NET_MAX_URL];
} rh_audit_http;
rh_err rh_audit_http_init(rh_audit_http *s, const char *base, rh_audit_src *src, rh_error *e)
    __attribute__((warn_unused_result));
void rh_audit_http_cleanup(rh_audit_http *s);

/* One log entry (the origin's format, parsed independently of the writer). */
typedef struct rh_audit_entry {
    char role[RH_MAX_ROLE_NAME + 1];
    uint64_t version, length;
    uint8_t sha256[32];
    bool has_source_rev;
    char source_rev[RH_AUDIT_MAX_SOURCE_REV + 1];
    bool has_recipe;
    uint8_t build_recipe_sha256[32];
    bool has_time;
    int64_t time;
} rh_audit_entry;

/* Strict: canonical JSON {"length","provenance"?:{"build_recipe_sha256"?,"source_rev"?},
 * "role","sha256","time"?,"version"}, nothing else, lower-case hex, no timestamp role,
 * provenance only on targets roles. Returns RH_OK or RH_EPARSE. */
rh_err rh_audit_entry_parse(const uint8_t *p, size_t n, const char *src, rh_audit_entry *out,
                            rh_error *e) __attribute__((warn_unused_result));

/* Who must have signed a checkpoint. */
typedef struct rh_audit_keys {
    rh_note_key log;
    rh_note_key witnesses[RH_AUDIT_MAX_WITNESSES];
    size_t nwitnesses;
    size_t quorum; /* cosignatures required from witnesses (0 = none) */
} rh_audit_keys;

/* Verifies a signed checkpoint note: the log key's signature, every known witness line, and
 * at least keys->quorum witness cosignatures (tlog-cosignature/v1). *cp owned by the caller
 * (rh_checkpoint_cleanup); *ncosig (optional) gets the cosigners. Returns RH_OK, RH_ESIG,
 * RH_EPARSE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_audit_checkpoint(const uint8_t *note, size_t len, const char *src,
                           const rh_audit_keys *keys, rh_checkpoint *cp, size_t *ncosig,
                           rh_error *e) __attribute__((warn_unused_result));

/* A whole log, verified. */
typedef struct rh_audit_log {
    rh_checkpoint cp;
    uint8_t *note; /* the checkpoint as served */
    size_t notelen;
    size_t ncosig;
    uint64_t size;
    uint8_t *data;       /* every entry's bytes, back to back */
    size_t *off;         /* entry i is data[off[i] .. off[i + 1]) */
    rh_audit_entry *ent; /* parsed */
} rh_audit_log;

/* Fetches log/checkpoint, verifies it (rh_audit_checkpoint), fetches every entry bundle,
 * rebuilds the tree and compares its root with the checkpoint, then fetches every hash tile and
 * compares it byte for byte with the rebuilt tree; parses every entry. The first difference is
 * the error with its evidence (path, position, expected and served hash).
 * Returns RH_OK; RH_ELOG (log inconsistent), RH_ESIG, RH_EPARSE (malformed checkpoint, bundle or
 * entry); RH_ENOTFOUND / RH_ENET (could not fetch); RH_ETOOBIG; RH_ENOMEM. */
rh_err rh_audit_log_read(const rh_audit_src *src, const rh_audit_keys *keys, rh_audit_log **out,
                         rh_error *e) __attribute__((warn_unused_result));
void rh_audit_log_free(rh_audit_log *log); /* accepts NULL */

/* Append-only check: old (a signed checkpoint kept from earlier) against the current
 * log/checkpoint, with an RFC 9162 consistency proof built from the current hash tiles only and
 * verified against both roots. cur_note (optional) receives the current checkpoint as served.
 * Returns RH_OK; RH_ELOG (shrunk, forked or rewritten log: both checkpoints are the evidence);
 * RH_ESIG; RH_EPARSE; RH_ENOTFOUND / RH_ENET; RH_ENOMEM. */
rh_err rh_audit_consistency(const rh_audit_src *src, const rh_audit_keys *keys,
                            const uint8_t *old_note, size_t old_len, rh_buf *cur_note,
                            rh_error *e) __attribute__((warn_unused_result));

#endif
