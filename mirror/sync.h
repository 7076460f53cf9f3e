/* sync.h -- one sync round of the mirror (DESIGN 5): TUF refresh of the whole repository from an
 * upstream, targets downloaded into staging, atomic publish in dependency order, grace-period GC. */
#ifndef RH_MIRROR_SYNC_H
#define RH_MIRROR_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/config.h"
#include "manifest/rh_error.h"

/* Versions a served tree shows, by rh_role (root, timestamp, snapshot, targets). */
typedef struct rh_sync_versions {
    uint64_t v[4];
    int64_t timestamp_expires; /* of the served timestamp.json, 0 if none */
} rh_sync_versions;

typedef struct rh_sync_opts {
    const char *const *upstreams; /* base URLs, tried in order */
    size_t nupstreams;
    const char *root;             /* pinned initial root.json */
    const char *data;             /* data directory */
    const char *ca;               /* CA bundle, NULL = system */
    rh_mirror_sync params;
    const atomic_bool *cancel;    /* may be NULL */
    int64_t now;                  /* reference time; 0 = time(NULL) */
} rh_sync_opts;

typedef struct rh_sync_result {
    bool published;               /* a new version is served */
    rh_sync_versions served;      /* what public/ serves after the round */
    uint64_t upstream_timestamp;  /* newest timestamp version verified from an upstream (0) */
    int64_t upstream_timestamp_expires;
    uint64_t bytes, objects;      /* fetched (metadata and targets) */
    uint64_t failures[RH_ERR_COUNT]; /* verification and transfer failures met, by code */
    size_t published_files, collected_files;
    double seconds;
    double metadata_seconds;      /* of which: TUF metadata and log, until targets start ... */
    double targets_seconds;       /* ... downloading and making targets durable ... */
    double publish_seconds;       /* ... and renaming into public/ (0 when not reached) */
    char upstream[256];           /* the upstream whose metadata was used */
} rh_sync_result;

/* Run one round against data/ (created if missing). Takes DATA/.lock (RH_EIO "locked" when
 * another process syncs). The round fails before publishing anything unless the whole new
 * version verified and every target is in staging; public/ changes only by renames, timestamp
 * last. res (optional) is filled in every case (failures, upstream versions seen).
 * Returns RH_OK (published or nothing to do: see res->published), or the error of the last
 * upstream tried: RH_ESIG, RH_EEXPIRED, RH_EROLLBACK, RH_EVERSION, RH_EHASH, RH_ETOOBIG,
 * RH_EPARSE, RH_ETYPE, RH_ENOTFOUND, RH_ENET, RH_EPATH, RH_EIO, RH_ENOMEM, RH_ECONFIG. */
rh_err rh_mirror_sync_once(const rh_sync_opts *o, rh_sync_result *res, rh_error *e)
    __attribute__((warn_unused_result));

/* Versions served by data/public (parsed, not verified: everything there was verified before
 * it was published). Missing files give 0. */
void rh_mirror_served_versions(const char *data, rh_sync_versions *out);

/* The newest root served by data/public, else the pinned root file: exact bytes into out.
 * Returns RH_OK, RH_EIO, RH_ENOTFOUND, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_mirror_trusted_root(const char *data, const char *pinned, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

#endif
