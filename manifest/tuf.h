/* tuf.h -- the TUF 1.0.x client workflow (spec section 5) as a pure engine: bytes come in
 * through a caller-supplied fetch callback, verified files go out through a persist callback;
 * no sockets, no files. Both the mirror (whole repository) and the client drive it. */
#ifndef RH_TUF_H
#define RH_TUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/metadata.h"
#include "manifest/rh_error.h"

/* Longest metadata file name the engine builds: "<20 digits>.<role, %XX-encoded>.json". */
#define RH_TUF_MAX_FILENAME (3 * RH_MAX_ROLE_NAME + 32)

typedef struct rh_tuf rh_tuf;

typedef struct rh_tuf_io {
    void *ctx;
    /* Fetch metadata file `name` ("2.root.json", "timestamp.json", "5.snapshot.json" or
     * "snapshot.json", "3.targets.json", "7.role%2Fname.json") by appending its bytes to out.
     * out is initialised by the engine with out->max == max, so rh_buf_append refuses more than
     * max bytes with RH_ETOOBIG; the engine also rejects out->len > max itself (endless data).
     * Return RH_OK, RH_ENOTFOUND when the file does not exist (HTTP 404), or any other code
     * (RH_ENET, RH_ETOOBIG, ...) with a message in e. Required. */
    rh_err (*fetch)(void *ctx, const char *name, size_t max, rh_buf *out, rh_error *e);
    /* Called once for every file the engine fetched, verified and now trusts, with its exact
     * bytes: role ("root", "timestamp", "snapshot", "targets" or the delegated role name), its
     * version, and the file name as published (N.root.json, timestamp.json, N.snapshot.json or
     * snapshot.json, N.<role>.json or <role>.json). A client persists it; a mirror stages it.
     * An error aborts the refresh with that code (the file stays trusted in memory). May be
     * NULL. Not called for files supplied through rh_tuf_load_root/rh_tuf_load_cached. */
    rh_err (*persist)(void *ctx, const char *role, uint64_t version, const char *filename,
                      const uint8_t *p, size_t n, rh_error *e);
    /* A lean engine, for a mirror, whose memory stays near the number of targets times 150
     * bytes: targets metadata is parsed with rh_metadata_parse_lean (no JSON tree, so no
     * "custom" fields: every rh_target.custom is NULL), and the top-level targets, once
     * verified and persisted, keeps neither its canonical form nor its bytes (its
     * rh_tuf_file.data is NULL; a later refresh of the same engine fetches it again). A
     * client, which reads custom, leaves it false. */
    bool lean_targets;
} rh_tuf_io;

/* One trusted metadata file (see rh_tuf_file_at). Pointers stay valid until the next call that
 * changes the engine (load, refresh, find_target) or rh_tuf_free. */
typedef struct rh_tuf_file {
    const char *role;         /* "root", "timestamp", "snapshot", "targets" or delegated name */
    uint64_t version;
    const char *filename;     /* as published (see persist) */
    const uint8_t *data;      /* the exact verified bytes (NULL: see rh_tuf_io.lean_targets) */
    size_t len;
    const rh_metadata *md;
    bool fetched;             /* fetched by this engine (false: from load_root/load_cached) */
} rh_tuf_file;

/* New engine using io (copied). Returns RH_OK, RH_EINVAL (io or io->fetch NULL), RH_ENOMEM. */
rh_err rh_tuf_new(const rh_tuf_io *io, rh_tuf **out);
void rh_tuf_free(rh_tuf *t); /* accepts NULL */

/* TUF 5.2: load the trusted root (pinned, or the newest one persisted). It must be signed by the
 * threshold of its own root keys. Expiry is not checked here (TUF 5.3.10 checks the final root
 * after the update loop). Only once per engine (RH_EINVAL otherwise). src names the file.
 * Returns RH_OK, RH_EINVAL, RH_EPARSE, RH_ETYPE, RH_ETOOBIG, RH_ESIG, RH_ENOMEM. */
rh_err rh_tuf_load_root(rh_tuf *t, const uint8_t *p, size_t n, const char *src, rh_error *e)
    __attribute__((warn_unused_result));

/* Offer previously trusted metadata of role rolename ("timestamp", "snapshot", "targets" or a
 * delegated role) for rollback protection and to skip downloads. Call after rh_tuf_load_root
 * and before rh_tuf_refresh. Only parsed here (type checked: RH_EPARSE/RH_ETYPE/...); the
 * signatures are checked by rh_tuf_refresh against the root current at that time, and a cached
 * file that does not verify is ignored, as the spec says for invalid local metadata. Expired
 * cached metadata still serves for rollback checks. A non-RH_OK return is advisory: the engine is
 * unchanged and the caller may continue. Returns RH_OK, RH_EINVAL (no root loaded, bad role
 * name, or a refresh already ran), RH_EPARSE, RH_ETYPE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_tuf_load_cached(rh_tuf *t, const char *rolename, const uint8_t *p, size_t n,
                          const char *src, rh_error *e);

/* TUF 5.3 (root chain: N+1.root.json until RH_ENOTFOUND, at most RH_MAX_ROOT_ROTATIONS, each
 * signed by the previous root's threshold and its own, the version inside exactly N+1 else
 * RH_EVERSION, final root not expired, fast-forward recovery: when the timestamp or snapshot key
 * IDs changed the trusted timestamp and snapshot are forgotten), 5.4 timestamp, 5.5 snapshot,
 * 5.6 top-level targets, all against the one reference time now (seconds since the epoch;
 * expires <= now is expired). Can be called again on the same engine (a long-running mirror):
 * the trusted state of the previous refresh is the baseline of the rollback checks.
 * Each step commits its role as soon as it is verified (and persists it); a failing step leaves
 * that role's trusted file as it was. A timestamp of the trusted version changes nothing and the
 * refresh carries on with the trusted snapshot and targets (no download when they still match).
 * When a new root or snapshot is trusted, the targets roles are re-established against it:
 * re-verified from memory when the snapshot still lists their version, fetched otherwise; until
 * then rh_tuf_trusted returns NULL for them.
 * Returns RH_OK, RH_EINVAL (no root), RH_ESIG, RH_EEXPIRED, RH_EROLLBACK, RH_EVERSION, RH_EHASH
 * (length or hash differs from the signed META entry), RH_ETOOBIG (more than the signed length or
 * the limits.h ceiling), RH_EPARSE, RH_ETYPE, RH_ENOTFOUND (timestamp.json or a file the snapshot
 * names is missing, or the snapshot lists no targets.json), RH_ENOMEM, or the code of the
 * fetch/persist callback. */
rh_err rh_tuf_refresh(rh_tuf *t, int64_t now, rh_error *e) __attribute__((warn_unused_result));

/* rh_tuf_refresh, then every delegated targets role reachable from targets (breadth-first,
 * delegations in order of appearance, each verified with its delegator's keys and threshold as
 * in TUF 5.6; a role reached twice or through a cycle is loaded once; at most RH_TUF_MAX_ROLES
 * roles). For mirrors, which must hold the whole repository: any role that fails (missing from
 * the snapshot, bad signature, expired, ...) fails the call with its code, as rh_tuf_refresh. */
rh_err rh_tuf_refresh_all(rh_tuf *t, int64_t now, rh_error *e)
    __attribute__((warn_unused_result));

/* Most targets roles one engine holds (top-level plus delegated), for rh_tuf_refresh_all. */
#define RH_TUF_MAX_ROLES 4096

/* TUF 5.6.7: find the targets entry for path after a successful refresh: pre-order depth-first
 * search of the delegation graph from "targets", delegations whose paths/path_hash_prefixes match
 * tried in listed order, a role visited once (cycles), at most RH_MAX_DELEGATIONS roles visited
 * (top-level targets included), a matching terminating delegation ends the search after its
 * subtree (no backtracking). Delegated roles not yet trusted are fetched, verified and persisted
 * on the way; a role already trusted through another delegator is verified again with the
 * current delegator's keys and threshold (TUF 5.6.3); every role visited must not be expired at
 * now. *out points into the engine (valid
 * as for rh_tuf_file). Where the spec says a role that cannot be loaded ends the search with
 * "not found", this returns the role's own error so the caller can tell a lying mirror.
 * Returns RH_OK, RH_EINVAL (the last refresh did not succeed), RH_EPATH (empty or longer than
 * RH_MAX_TARGET_PATH), RH_ENOTFOUND (no role visited lists path), RH_ETOOBIG (the search needed
 * more than RH_MAX_DELEGATIONS roles), or the refresh-style error of a delegated role. */
rh_err rh_tuf_find_target(rh_tuf *t, const char *path, int64_t now, const rh_target **out,
                          rh_error *e) __attribute__((warn_unused_result));

/* The trusted metadata of rolename ("root" = the newest trusted root, "timestamp", "snapshot",
 * "targets", or a delegated role); NULL when none is trusted. */
const rh_metadata *rh_tuf_trusted(const rh_tuf *t, const char *rolename);

/* Every trusted file: the roots walked, ascending (the loaded one first), then timestamp,
 * snapshot, targets and the delegated roles in the order they were trusted. i < rh_tuf_nfiles.
 * A mirror publishes from this list (targets roles, snapshot, roots, timestamp last). */
size_t rh_tuf_nfiles(const rh_tuf *t);
const rh_tuf_file *rh_tuf_file_at(const rh_tuf *t, size_t i);
/* The trusted file of rolename (same names as rh_tuf_trusted); NULL when none. */
const rh_tuf_file *rh_tuf_file_of(const rh_tuf *t, const char *rolename);

/* Versions of the root loaded by rh_tuf_load_root and of the newest trusted root (0 if none):
 * the walked chain is first..last, every file of it in rh_tuf_file_at. */
void rh_tuf_root_versions(const rh_tuf *t, uint64_t *first, uint64_t *last);

/* Visit every target of every trusted targets role (targets first, then delegated roles in
 * trust order). fn's error stops the walk and is returned. Returns RH_OK or fn's code. */
rh_err rh_tuf_foreach_target(const rh_tuf *t,
                             rh_err (*fn)(void *ctx, const char *rolename, const rh_target *tg,
                                          rh_error *e),
                             void *ctx, rh_error *e);

/* The published file name of role at version: "N.<role>.json" when consistent (root always),
 * "<role>.json" otherwise, "timestamp.json" always; the role name percent-encoded (TUF 5.6.7.2.2:
 * unreserved A-Za-z0-9-._~ kept, every other byte %XX, as rh_role_filename of tpath.h).
 * Returns RH_OK, RH_EPATH (role "", ".", ".." or longer than RH_MAX_ROLE_NAME), RH_ETOOBIG
 * (outsz too small). */
rh_err rh_tuf_filename(const char *role, uint64_t version, bool consistent, char *out,
                       size_t outsz);

#endif
