/* origin_plan.h -- the origin's pure core: which payloads changed, and the next signed objects
 * (targets, snapshot, timestamp, root) built from data. No I/O, no clock, no keys. */
#ifndef RH_ORIGIN_PLAN_H
#define RH_ORIGIN_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/hash.h"
#include "manifest/metadata.h"
#include "manifest/rh_error.h"

#define RH_ORIGIN_SPEC_VERSION "1.0.31"
#define RH_ORIGIN_TARGET_SUFFIX ".zst"
/* A stored target is "<64 hex>.<name>.zst" in one directory entry: NAME_MAX (255) bounds it. */
#define RH_ORIGIN_MAX_NAME (255 - RH_SHA256_LEN * 2 - 1 - 4)
#define RH_ORIGIN_PROVENANCE_FIELD "x-rhine-provenance"

/* One payload of the source tree: its path relative to the source root, and what it holds. */
typedef struct rh_src_file {
    char *relpath;                 /* "dir/name", validated by rh_origin_path_check */
    uint64_t length;               /* uncompressed bytes */
    uint8_t sha256[RH_SHA256_LEN]; /* of the uncompressed bytes */
} rh_src_file;

typedef enum rh_plan_action {
    RH_PLAN_KEEP,   /* same uncompressed length and sha256 as the current entry: reuse it */
    RH_PLAN_CHANGE, /* the path exists in the current targets with other content */
    RH_PLAN_ADD     /* new path */
} rh_plan_action;

typedef struct rh_plan_item {
    const rh_src_file *src;  /* borrowed from the caller's array */
    char *target_path;       /* relpath + ".zst" */
    rh_plan_action action;
    json_t *entry;           /* KEEP: the current entry, shared (a reference: never change it
                              * in place, replace it); else NULL until the caller sets it (owned,
                              * see rh_target_entry_new) after compressing */
} rh_plan_item;

typedef struct rh_publish_plan {
    rh_plan_item *items;     /* one per source file, in the source order */
    size_t nitems;
    char **removed;          /* target paths of the current targets not produced any more */
    size_t nremoved;
    size_t nadded, nchanged, nkept;
} rh_publish_plan;

/* Check a relative payload path: '/'-separated components, each non-empty, not "." or "..",
 * valid UTF-8 without control characters (C0, DEL, C1), backslash, '%', '?' or '#'
 * (URL-meaningful), at most RH_ORIGIN_MAX_NAME bytes per component and RH_MAX_TARGET_PATH
 * minus 4 in total. src names the file in the message (escaped: bytes outside printable ASCII
 * and backslash as \xNN). Returns RH_OK or RH_EPATH. */
rh_err rh_origin_path_check(const char *relpath, const char *src, rh_error *e)
    __attribute__((warn_unused_result));

/* Compare the source files (sorted by relpath, unique) with the "targets" object of the current
 * targets metadata (NULL or empty for none). An entry is kept when its custom.rhine length and
 * sha256 equal the source file's. Fills *out (caller runs rh_publish_plan_cleanup).
 * Returns RH_OK, RH_EINVAL (unsorted/duplicate input), RH_ENOMEM. */
rh_err rh_plan_publish(const rh_src_file *files, size_t nfiles, const json_t *current_targets,
                       rh_publish_plan *out, rh_error *e) __attribute__((warn_unused_result));
void rh_publish_plan_cleanup(rh_publish_plan *p); /* accepts a zeroed plan */

/* The "targets" object of the plan: every item's entry (each must be set). New reference, NULL
 * on OOM or when an entry is missing. */
json_t *rh_plan_targets_object(const rh_publish_plan *p);

/* A targets entry: {"length": zlen, "hashes": {"sha256": hex(zsha)},
 *                   "custom": {"rhine": {"length": ulen, "sha256": hex(usha)}}}. NULL on OOM. */
json_t *rh_target_entry_new(uint64_t zlen, const uint8_t zsha[RH_SHA256_LEN], uint64_t ulen,
                            const uint8_t usha[RH_SHA256_LEN]);

/* The stored file of a target under consistent snapshots (TUF 5.7.3): for path "d/n.zst" and
 * sha256 H, "d/H.n.zst". Returns a new string, NULL on OOM. */
char *rh_target_stored_path(const char *target_path, const char *sha256_hex);

/* The sha256 hex (64 chars) of a targets entry's "hashes", NULL when absent or malformed. */
const char *rh_target_entry_sha256(const json_t *entry);

/* Next version of a role: one more than both the trusted chain's version and the highest
 * N.<role>.json on disk (a crashed publish may have left an unreferenced file behind, and
 * published files are never overwritten). */
uint64_t rh_next_version(uint64_t current, uint64_t highest_on_disk);

/* Re-sign when at most half the lifetime is left (or the metadata already expired). */
bool rh_needs_resign(int64_t now, int64_t expires, int64_t lifetime);

/* Signed objects (new references, NULL on OOM or a bad argument). expires is seconds since the
 * epoch. targets is shared (a reference, not a copy: do not change it while the result is in
 * use). provenance may be NULL (then no field). */
json_t *rh_signed_targets_new(uint64_t version, int64_t expires, const json_t *targets,
                              const json_t *provenance);
/* The snapshot/timestamp's one META entry names `name` ("targets.json" / "snapshot.json"):
 * {"version": v, "length": len, "hashes": {"sha256": hex}}. */
json_t *rh_meta_entry_new(uint64_t version, uint64_t length, const uint8_t sha[RH_SHA256_LEN]);
/* snapshot: "meta" is borrowed (copied); timestamp: meta = {"snapshot.json": entry}. */
json_t *rh_signed_snapshot_new(uint64_t version, int64_t expires, const json_t *meta);
json_t *rh_signed_timestamp_new(uint64_t version, int64_t expires, uint64_t snapshot_version,
                                uint64_t snapshot_length, const uint8_t sha[RH_SHA256_LEN]);

/* A root with no keys and every role empty (threshold 1): fill it with rh_root_set_role. */
json_t *rh_signed_root_new(uint64_t version, int64_t expires, bool consistent_snapshot);
/* Give role `role` exactly the n keys (TUF key objects with their key IDs) and threshold;
 * keys no role references any more are removed from "keys". Modifies root in place.
 * Returns RH_OK, RH_EINVAL (threshold 0 or > n, n 0, not a root object), RH_ENOMEM. */
rh_err rh_root_set_role(json_t *root, rh_role role, json_t *const *keys,
                        const char *const *keyids, size_t n, uint64_t threshold, rh_error *e)
    __attribute__((warn_unused_result));
/* Copy of a signed object (any role) with version and expires replaced: the next version of
 * unchanged content (a re-signature, or a root rotation before rh_root_set_role). */
json_t *rh_signed_next(const json_t *signed_obj, uint64_t version, int64_t expires);

/* Parse a duration "N[smhd]" (e.g. "365d", "12h") into seconds (1 .. 100 years).
 * Returns RH_OK or RH_EINVAL. */
rh_err rh_duration_parse(const char *s, int64_t *out) __attribute__((warn_unused_result));

#endif
