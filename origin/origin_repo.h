/* origin_repo.h -- the origin's repository operations: init, publish, refresh, rotate.
 * Each takes the paths of exactly the keys it signs with, so a network-facing process that
 * holds only keys/online/ (snapshot, timestamp) can run rh_origin_refresh and nothing else. */
#ifndef RH_ORIGIN_REPO_H
#define RH_ORIGIN_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/metadata.h"
#include "manifest/rh_error.h"

#define RH_ORIGIN_MAX_PATH       4096  /* bytes in a repository or key path we build */
#define RH_ORIGIN_MAX_ROOT_KEYS  16    /* root-1.pem .. root-16.pem */
#define RH_ORIGIN_DEFAULT_LEVEL  9     /* zstd level: 19 costs ~10x the time for ~5% */
#define RH_ORIGIN_CONFIG_FILE    "origin.json" /* <repo>/origin.json: lifetimes, not served */

/* Key files under the keys directory (DESIGN 2: root and targets offline, the rest online). */
#define RH_ORIGIN_KEYS_OFFLINE   "offline"
#define RH_ORIGIN_KEYS_ONLINE    "online"
#define RH_ORIGIN_DEFAULT_LOG    "rhine.example/log" /* default transparency log name */

/* Seconds each role's metadata is valid for when signed now. */
typedef struct rh_origin_lifetimes {
    int64_t life[RH_ROLE_COUNT]; /* indexed by rh_role */
} rh_origin_lifetimes;
void rh_origin_lifetimes_default(rh_origin_lifetimes *l); /* 365d, 1d, 7d, 90d */

/* Paths of the key files of a keys directory (no file is opened). */
typedef struct rh_origin_keypaths {
    char root[RH_ORIGIN_MAX_ROOT_KEYS][RH_ORIGIN_MAX_PATH]; /* offline/root-<i>.pem */
    char targets[RH_ORIGIN_MAX_PATH];                      /* offline/targets.pem */
    char snapshot[RH_ORIGIN_MAX_PATH];                     /* online/snapshot.pem */
    char timestamp[RH_ORIGIN_MAX_PATH];                    /* online/timestamp.pem */
} rh_origin_keypaths;
/* Returns RH_OK or RH_EINVAL (keys_dir too long). */
rh_err rh_origin_keypaths_init(rh_origin_keypaths *kp, const char *keys_dir, rh_error *e)
    __attribute__((warn_unused_result));

typedef void (*rh_origin_warn_fn)(void *ctx, const char *msg);

/* init: new keys and a valid, empty repository (versions 1). repo and keys must be absent or
 * empty directories. Root has consistent_snapshot true. */
typedef struct rh_origin_init_opts {
    const char *repo, *keys;
    unsigned root_keys, root_threshold; /* 1..RH_ORIGIN_MAX_ROOT_KEYS, 1..root_keys */
    rh_origin_lifetimes lifetimes;
    int64_t now;
    const char *log_origin; /* transparency log name (checkpoint origin line); NULL = default */
} rh_origin_init_opts;
rh_err rh_origin_init(const rh_origin_init_opts *o, rh_error *e)
    __attribute__((warn_unused_result));

/* publish: the source tree becomes the next targets version (see README of origin/). */
typedef struct rh_origin_publish_opts {
    const char *repo, *source;
    const char *targets_key, *snapshot_key, *timestamp_key; /* PEM paths */
    int level;                                              /* zstd 1..19 */
    const char *source_rev;                                 /* provenance, may be NULL */
    const char *build_recipe;                               /* file path, may be NULL */
    int64_t now;
    rh_origin_warn_fn warn; /* skipped files; may be NULL */
    void *warn_ctx;
} rh_origin_publish_opts;

typedef struct rh_origin_publish_result {
    bool unchanged; /* no new version was made */
    uint64_t targets_version, snapshot_version, timestamp_version;
    size_t nfiles, nadded, nchanged, nremoved, nkept, nrestored;
    uint64_t bytes_read, bytes_written; /* of the payloads compressed this run */
} rh_origin_publish_result;

rh_err rh_origin_publish(const rh_origin_publish_opts *o, rh_origin_publish_result *res,
                         rh_error *e) __attribute__((warn_unused_result));

/* refresh: needs only the online keys. New timestamp when force or when it expires within half
 * its lifetime; new snapshot (then timestamp) when the snapshot does. */
typedef struct rh_origin_refresh_result {
    bool snapshot_signed, timestamp_signed;
    uint64_t snapshot_version, timestamp_version;
    bool targets_expiring, root_expiring; /* within half their lifetime: offline keys needed */
} rh_origin_refresh_result;

rh_err rh_origin_refresh(const char *repo, const char *snapshot_key, const char *timestamp_key,
                         bool force, int64_t now, rh_origin_refresh_result *res, rh_error *e)
    __attribute__((warn_unused_result));

/* rotate: a new key for role (all root keys for RH_ROLE_ROOT, same count and threshold), a new
 * root version signed by the old and the new root keys; the rotated role's metadata re-signed
 * by the old and the new key first, so the repository verifies under root N and N+1 at every
 * instant. Old key files are kept as <name>.old-<new root version>.pem. */
typedef struct rh_origin_rotate_result {
    uint64_t root_version;
    char keyid[RH_KEYID_HEX_LEN + 1]; /* the (first) new key */
} rh_origin_rotate_result;

rh_err rh_origin_rotate(const char *repo, const char *keys_dir, rh_role role, int64_t now,
                        rh_origin_rotate_result *res, rh_error *e)
    __attribute__((warn_unused_result));

#endif
