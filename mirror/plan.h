/* plan.h -- the mirror's pure sync planner: from the trusted repository and what the data
 * directory already holds, decide what to fetch, what to publish (in dependency order) and what
 * superseded files to garbage-collect. No I/O. */
#ifndef RH_MIRROR_PLAN_H
#define RH_MIRROR_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/hash.h"
#include "manifest/limits.h"
#include "manifest/rh_error.h"

/* Longest relative path of a file in the served tree ("targets/<dir>/<64 hex>.<name>"). */
#define RH_MIRROR_MAX_RELPATH (RH_MAX_TARGET_PATH + 96)

/* One trusted metadata file of the new version. */
typedef struct rh_plan_meta {
    const char *filename; /* as published: "3.targets.json", "timestamp.json", ... */
    const char *role;     /* "root", "timestamp", "snapshot", "targets" or a delegated role */
    uint64_t version;
    bool staged;          /* its verified bytes wait in staging/metadata/<filename> */
} rh_plan_meta;

/* One target of the new version, by its served relative path (see rh_plan_target_relpath). */
typedef struct rh_plan_target {
    const char *relpath;
    uint64_t length;
} rh_plan_target;

/* A served file no longer referenced, and since when (seconds since the epoch). */
typedef struct rh_plan_old {
    char *relpath;
    int64_t since;
} rh_plan_old;

typedef struct rh_plan_in {
    const rh_plan_meta *meta;     /* every trusted metadata file (roots included) */
    size_t nmeta;
    const rh_plan_target *targets; /* every target of every trusted targets role */
    size_t ntargets;
    const char *const *present;   /* relative paths of the files now in public/ */
    size_t npresent;
    const rh_plan_old *superseded; /* from the state file */
    size_t nsuperseded;
    int64_t now;                  /* reference time */
    int64_t grace;                /* seconds a superseded file stays served */
} rh_plan_in;

typedef struct rh_plan {
    size_t *fetch;        /* indexes into in->targets to download (one per distinct relpath) */
    size_t nfetch;
    char **publish;       /* relative paths to move from staging to public, in this order */
    size_t npublish;
    char **gc;            /* relative paths to delete from public (grace period over) */
    size_t ngc;
    rh_plan_old *superseded; /* the new superseded map (sorted by relpath) */
    size_t nsuperseded;
} rh_plan;

/* Plan one sync round. Rules:
 * - fetch: every target whose relpath is not present (each relpath once).
 * - publish order (DESIGN 5.4): the fetched targets, then staged metadata: delegated targets
 *   roles, the top-level targets, the snapshot, the roots (ascending version), timestamp.json
 *   last. A staged immutable file already present is not published again (it is the same
 *   verified file); timestamp.json is published whenever staged.
 * - superseded: a present file that the new version does not reference (roots excepted: they
 *   are kept forever, clients walk the chain) keeps the time it was first found unreferenced,
 *   or gets now; a referenced or vanished file leaves the map.
 * - gc: superseded files whose since + grace <= now.
 * Returns RH_OK, RH_EINVAL (NULL arrays with counts), RH_ENOMEM. out is written only on
 * success; free it with rh_plan_cleanup. */
rh_err rh_plan_make(const rh_plan_in *in, rh_plan *out, rh_error *e)
    __attribute__((warn_unused_result));
void rh_plan_cleanup(rh_plan *p); /* accepts NULL and a zeroed plan */

/* The served relative path of a consistent-snapshot target: "targets/<dir>/<hex>.<name>" for
 * target path "<dir>/<name>" ("targets/<hex>.<name>" without a directory), hex = lower-case
 * sha256. The path must pass rh_tpath_check. Returns RH_OK, RH_EPATH, RH_ETOOBIG (outsz). */
rh_err rh_plan_target_relpath(const char *path, const uint8_t sha256[RH_SHA256_LEN], char *out,
                              size_t outsz, rh_error *e) __attribute__((warn_unused_result));

/* Percent-encode a relative path for a URL: A-Z a-z 0-9 - . _ ~ / kept, every other byte %XX.
 * Returns RH_OK or RH_ETOOBIG (outsz too small; 3 * strlen + 1 always suffices). */
rh_err rh_plan_url_path(const char *relpath, char *out, size_t outsz);

#endif
