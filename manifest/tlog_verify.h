/* tlog_verify.h -- a verifier's view of a Rhine transparency log (DESIGN 8): read the checkpoint,
 * entry bundles and hash tiles (C2SP tlog-tiles) through a caller's source, verify the signed
 * checkpoint and witness cosignatures, rebuild the tree (RFC 9162) and compare every byte; prove
 * an old checkpoint consistent with a newer one from the tiles alone. Pure: all I/O goes through
 * the source's callback. Used by rhine-audit, the mirror (witness) and the client (quorum). */
#ifndef RH_TLOG_VERIFY_H
#define RH_TLOG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/limits.h"
#include "manifest/merkle.h"
#include "manifest/note.h"
#include "manifest/rh_error.h"

#define RH_LOGV_MAX_ENTRY      4096              /* bytes of one log entry (origin/tlog.h) */
#define RH_LOGV_MAX_SOURCE_REV 1024              /* bytes of a source revision */
#define RH_LOGV_MAX_ENTRIES    ((uint64_t)1 << 22) /* entries the auditor replays in memory */
#define RH_LOGV_TILE_LEVELS    8                 /* tile levels of a 64-bit tree */
#define RH_LOGV_MAX_BUNDLE     ((size_t)RH_TILE_WIDTH * (2 + RH_LOGV_MAX_ENTRY))
#define RH_LOGV_MAX_WITNESSES  64

/* Where the log is: get(path relative to the base, e.g. "log/checkpoint") into out, at most max
 * bytes; out holds only this file on return (reset it first: the verifier reuses one buffer). Returns RH_OK, RH_ENOTFOUND, RH_ETOOBIG, RH_ENET or another error with a message. */
typedef rh_err (*rh_log_get_fn)(void *ctx, const char *path, size_t max, rh_buf *out,
                                  rh_error *e);
typedef struct rh_log_src {
    rh_log_get_fn get;
    void *ctx;
} rh_log_src;

/* One log entry (the origin's format, parsed independently of the writer). */
typedef struct rh_log_entry {
    char role[RH_MAX_ROLE_NAME + 1];
    uint64_t version, length;
    uint8_t sha256[32];
    bool has_source_rev;
    char source_rev[RH_LOGV_MAX_SOURCE_REV + 1];
    bool has_recipe;
    uint8_t build_recipe_sha256[32];
    bool has_time;
    int64_t time;
} rh_log_entry;

/* An entry as a view keeps it: rh_log_entry's fields, with the role and the source revision
 * in the view's string pool. About 110 bytes and the two strings per entry, where an
 * rh_log_entry takes 1.4 KB for its fixed-size strings: a client or a witnessing mirror holds
 * one per entry of the whole log. */
typedef struct rh_log_ventry {
    const char *role;
    uint64_t version, length;
    uint8_t sha256[32];
    bool has_source_rev;
    const char *source_rev; /* "" without one */
    bool has_recipe;
    uint8_t build_recipe_sha256[32];
    bool has_time;
    int64_t time;
} rh_log_ventry;

/* Strict: canonical JSON {"length","provenance"?:{"build_recipe_sha256"?,"source_rev"?},
 * "role","sha256","time"?,"version"}, nothing else, lower-case hex, no timestamp role,
 * provenance only on targets roles. Returns RH_OK or RH_EPARSE. */
rh_err rh_log_entry_parse(const uint8_t *p, size_t n, const char *src, rh_log_entry *out,
                            rh_error *e) __attribute__((warn_unused_result));

/* Who must have signed a checkpoint. */
typedef struct rh_log_keys {
    rh_note_key log;
    rh_note_key witnesses[RH_LOGV_MAX_WITNESSES];
    size_t nwitnesses;
    size_t quorum; /* cosignatures required from witnesses (0 = none) */
} rh_log_keys;

/* Verifies a signed checkpoint note: the log key's signature, every known witness line, and
 * at least keys->quorum witness cosignatures (tlog-cosignature/v1). *cp owned by the caller
 * (rh_checkpoint_cleanup); *ncosig (optional) gets the cosigners. Returns RH_OK, RH_ESIG,
 * RH_EPARSE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_log_checkpoint_verify(const uint8_t *note, size_t len, const char *src,
                           const rh_log_keys *keys, rh_checkpoint *cp, size_t *ncosig,
                           rh_error *e) __attribute__((warn_unused_result));

/* A whole log, verified. */
typedef struct rh_log_view {
    rh_checkpoint cp;
    uint8_t *note; /* the checkpoint as served */
    size_t notelen;
    size_t ncosig;
    uint64_t size;
    uint8_t *data;       /* every entry's bytes, back to back */
    size_t *off;         /* entry i is data[off[i] .. off[i + 1]) */
    rh_log_ventry *ent;  /* parsed */
    struct rh_log_strs *strs; /* the entries' roles and source revisions */
} rh_log_view;

/* Bytes a view holds on the heap for its entries: their bytes, offsets, parsed fields and
 * strings (not the checkpoint note). */
size_t rh_log_view_bytes(const rh_log_view *log);

/* Fetches log/checkpoint, verifies it (rh_log_checkpoint_verify), fetches every entry bundle,
 * rebuilds the tree and compares its root with the checkpoint, then fetches every hash tile and
 * compares it byte for byte with the rebuilt tree; parses every entry. The first difference is
 * the error with its evidence (path, position, expected and served hash).
 * Returns RH_OK; RH_ELOG (log inconsistent), RH_ESIG, RH_EPARSE (malformed checkpoint, bundle or
 * entry); RH_ENOTFOUND / RH_ENET (could not fetch); RH_ETOOBIG; RH_ENOMEM. */
rh_err rh_log_read(const rh_log_src *src, const rh_log_keys *keys, rh_log_view **out,
                         rh_error *e) __attribute__((warn_unused_result));
/* The same with a checkpoint note the caller already holds (cpsrc names it in messages): the
 * tiles and bundles of its tree are read through src. */
rh_err rh_log_read_note(const rh_log_src *src, const rh_log_keys *keys, const uint8_t *cpnote,
                        size_t cplen, const char *cpsrc, rh_log_view **out, rh_error *e)
    __attribute__((warn_unused_result));
/* The same for a reader that keeps the entries it verified before (known, from an earlier
 * checkpoint of this log; may be NULL): the entries of every whole tile known holds are taken
 * from it, only the bundles from there on are fetched, and the tree of both must hash to the
 * checkpoint's root. A known that is not this log's prefix fails that check (RH_ELOG): then
 * only a read without it (rh_log_read_note) tells a fork from a source serving bad bundles.
 * Hash tiles are not read: the root decides (a client's use; a mirror that serves the tiles
 * compares them with rh_log_read_note). Returns as rh_log_read_note. */
rh_err rh_log_read_after(const rh_log_src *src, const rh_log_keys *keys, const uint8_t *cpnote,
                         size_t cplen, const char *cpsrc, const rh_log_view *known,
                         rh_log_view **out, rh_error *e) __attribute__((warn_unused_result));
/* Appends the view's entries to out as one bundle (each a 2-byte big-endian length and the
 * bytes), to keep them. RH_OK, RH_ENOMEM or RH_ETOOBIG (out's max). */
rh_err rh_log_view_entries(const rh_log_view *log, rh_buf *out)
    __attribute__((warn_unused_result));
/* A view of cp's tree from entries kept by rh_log_view_entries (src names them): exactly
 * cp->size entries, whose tree must hash to cp->root; each parsed. The view has cp's origin,
 * size and root and no note. Returns RH_OK, RH_ELOG (not cp's entries, or malformed),
 * RH_EPARSE (an entry), RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_log_view_from_entries(const uint8_t *p, size_t len, const char *src,
                                const rh_checkpoint *cp, rh_log_view **out, rh_error *e)
    __attribute__((warn_unused_result));
void rh_log_view_free(rh_log_view *log); /* accepts NULL */

/* The RFC 9162 root of the view's first size entries (size <= log->size): what a smaller
 * signed checkpoint of the same log must say. Since the view is verified against its own
 * signed checkpoint, a smaller checkpoint with another root proves the log forked; the served
 * tiles, which anyone can forge, take no part. Returns RH_OK, RH_EINVAL (size too large),
 * RH_ECRYPTO. */
rh_err rh_log_view_prefix_root(const rh_log_view *log, uint64_t size, uint8_t root[32])
    __attribute__((warn_unused_result));
/* The entry logging <version>.<role>.json, or NULL; *index (optional) receives its position.
 * Versions are unique per role in a verified log (the origin refuses to log one twice). */
const rh_log_ventry *rh_log_view_find(const rh_log_view *log, const char *role, uint64_t version,
                                      uint64_t *index);

/* Append-only check: old (a signed checkpoint kept from earlier) against the current
 * log/checkpoint, with an RFC 9162 consistency proof built from the current hash tiles and
 * verified against both roots. Tiles are not signed: when the proof fails for a larger tree,
 * the current tree is read whole (rh_log_read_note) and decides. cur_note (optional) receives
 * the current checkpoint as served, whatever the verdict, once it was fetched. Returns RH_OK; RH_ELOG only when proven (shrunk, or
 * rewritten: two signed roots of one size, or a verified larger tree whose first entries give
 * another root: both checkpoints are the evidence); RH_EHASH when the tiles or entries served
 * are not the signed log's (the source's fault: nothing proven); RH_ESIG; RH_EPARSE (a
 * checkpoint, or an entry of a tree read whole); RH_ENOTFOUND / RH_ENET; RH_ETOOBIG (a tree
 * past RH_LOGV_MAX_ENTRIES, a file past its bound); RH_ENOMEM. */
rh_err rh_log_consistency(const rh_log_src *src, const rh_log_keys *keys,
                            const uint8_t *old_note, size_t old_len, rh_buf *cur_note,
                            rh_error *e) __attribute__((warn_unused_result));

/* The same with the current checkpoint given: cur_note verifies under keys (quorum included),
 * old_note under the log key alone; the proof comes from the hash tiles of cur_note's tree read
 * through src. Returns as rh_log_consistency. */
rh_err rh_log_consistency_notes(const rh_log_src *src, const rh_log_keys *keys,
                                const uint8_t *old_note, size_t old_len, const uint8_t *cur_note,
                                size_t cur_len, rh_error *e) __attribute__((warn_unused_result));

#endif
