/* metadata.h -- the TUF 1.0 metadata model: root, timestamp, snapshot, targets (with
 * delegations), parsed from exact bytes into structs, verified against keys and thresholds,
 * serialised back (unknown fields kept) and signed. No I/O. */
#ifndef RH_METADATA_H
#define RH_METADATA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/hash.h"
#include "manifest/keys.h"
#include "manifest/rh_error.h"

typedef enum rh_role { RH_ROLE_ROOT, RH_ROLE_TIMESTAMP, RH_ROLE_SNAPSHOT, RH_ROLE_TARGETS } rh_role;
#define RH_ROLE_COUNT 4

const char *rh_role_name(rh_role r); /* "root", "timestamp", "snapshot", "targets" */

/* Hashes of a META or TARGETS entry. Algorithms other than sha256/sha512 are counted, not kept. */
typedef struct rh_hashes {
    bool has_sha256;
    bool has_sha512;
    uint8_t sha256[RH_SHA256_LEN];
    uint8_t sha512[RH_SHA512_LEN];
    size_t n_unknown;
} rh_hashes;

/* One entry of timestamp "meta" or snapshot "meta". */
typedef struct rh_metafile {
    char *name;        /* "snapshot.json", "targets.json", "<role>.json" */
    uint64_t version;
    int64_t length;    /* -1 when absent */
    bool has_hashes;
    rh_hashes hashes;
} rh_metafile;

/* Key IDs authorised for a role and how many distinct ones must sign. */
typedef struct rh_rolekeys {
    char **keyids;
    size_t nkeyids;
    uint64_t threshold; /* >= 1 (parse rejects 0) */
} rh_rolekeys;

typedef struct rh_root_md {
    bool consistent_snapshot;
    rh_pubkey *keys; /* every key of "keys", keyid computed and checked against the dict key */
    size_t nkeys;
    rh_rolekeys roles[RH_ROLE_COUNT]; /* indexed by rh_role; all four are required */
} rh_root_md;

typedef struct rh_target {
    char *path;
    uint64_t length;
    rh_hashes hashes;
    const json_t *custom; /* borrowed from signed_obj; NULL when absent */
} rh_target;

typedef struct rh_delegated_role {
    char *name;
    rh_rolekeys keys;
    bool terminating;
    char **paths;              /* NULL/0 when path_hash_prefixes is used instead */
    size_t npaths;
    char **path_hash_prefixes; /* lower-case hex prefixes of sha256(target path) */
    size_t nprefixes;
} rh_delegated_role;

typedef struct rh_targets_md {
    rh_target *targets;
    size_t ntargets;
    bool has_delegations;
    rh_pubkey *keys;             /* delegations.keys */
    size_t nkeys;
    rh_delegated_role *roles;    /* delegations.roles, in order (order matters: TUF 5.6.7) */
    size_t nroles;
} rh_targets_md;

typedef struct rh_sig {
    char *keyid;
    uint8_t *sig; /* hex-decoded */
    size_t len;
} rh_sig;

typedef struct rh_metadata {
    rh_role type;
    char *spec_version;
    uint64_t version;
    int64_t expires;      /* seconds since the epoch, UTC ("YYYY-MM-DDTHH:MM:SSZ") */
    json_t *signed_obj;   /* the parsed "signed" object, owned; unknown fields live here */
    bool lean;            /* from rh_metadata_parse_lean: signed_obj's "targets" is {} and
                           * every rh_target.custom NULL */
    uint8_t *canonical;   /* canonical JSON of signed_obj: the bytes signatures sign (a lean
                           * document loses it once the TUF engine has verified it) */
    size_t canonical_len;
    rh_sig *sigs;
    size_t nsigs;
    union {
        rh_root_md root;
        rh_metafile timestamp; /* its one "snapshot.json" entry */
        struct {
            rh_metafile *meta;
            size_t nmeta;
        } snapshot;
        rh_targets_md targets;
    } u;
} rh_metadata;

/* Parse a signed envelope {"signatures":[...],"signed":{...}} from its exact bytes (strict JSON,
 * at most max bytes). Checks "_type" equals the expected role type (RH_ETYPE), every field's
 * type and presence, spec_version major 1, version >= 1, expires format, threshold >= 1, and
 * that each key's ID matches the dict key it is stored under. src names the file or URL.
 * Returns RH_OK, RH_EPARSE, RH_ETYPE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_metadata_parse(const uint8_t *data, size_t len, size_t max, rh_role expected,
                         const char *src, rh_metadata **out, rh_error *e)
    __attribute__((warn_unused_result));
void rh_metadata_free(rh_metadata *m); /* accepts NULL */

/* rh_metadata_parse for a large targets document, without holding its JSON tree: the entries
 * of "signed.targets" are parsed one at a time into m->u.targets (same order, paths, lengths
 * and hashes) and into the canonical bytes, so memory is the canonical form plus about 150
 * bytes per target instead of about 1.7 KB. What it leaves out: the entries' "custom" fields
 * (every rh_target.custom is NULL) and the entries in signed_obj (its "targets" is {}; m->lean
 * is set and rh_metadata_to_signed returns NULL). For a mirror, which needs neither. Every
 * other role, and any document it does not take in its stride, goes to rh_metadata_parse:
 * it accepts exactly what that parse accepts, and errors are that parse's. */
rh_err rh_metadata_parse_lean(const uint8_t *data, size_t len, size_t max, rh_role expected,
                              const char *src, rh_metadata **out, rh_error *e)
    __attribute__((warn_unused_result));

/* Verify that at least role->threshold distinct key IDs listed in role->keyids, each with a key
 * in keys[], produced a valid signature over m->canonical (a key signing twice counts once;
 * unknown key IDs and bad signatures are ignored). rolename is for the message.
 * Returns RH_OK or RH_ESIG. */
rh_err rh_metadata_verify(const rh_metadata *m, const rh_pubkey *keys, size_t nkeys,
                          const rh_rolekeys *role, const char *rolename, rh_error *e)
    __attribute__((warn_unused_result));

/* Verify m against the keys and threshold that root assigns to role `role`. */
rh_err rh_root_verify_role(const rh_metadata *root, rh_role role, const rh_metadata *m,
                           rh_error *e) __attribute__((warn_unused_result));

/* Verify data against every hash listed in h (sha256/sha512; if h lists only unknown algorithms
 * that is RH_EHASH too). Returns RH_OK or RH_EHASH. */
rh_err rh_hashes_check(const rh_hashes *h, const uint8_t *data, size_t len, const char *src,
                       rh_error *e) __attribute__((warn_unused_result));

/* Lookups; NULL when absent. */
const rh_metafile *rh_snapshot_find(const rh_metadata *snapshot, const char *name);
const rh_target *rh_targets_find(const rh_metadata *targets, const char *path);
const rh_pubkey *rh_keys_find(const rh_pubkey *keys, size_t nkeys, const char *keyid);

/* TUF 5.6.7.1: does delegated role r cover target path? "paths" patterns use shell-style
 * matching where '*' does not cross '/'; path_hash_prefixes match sha256(path) hex prefixes. */
bool rh_delegation_matches(const rh_delegated_role *r, const char *target_path);

/* Serialise the typed fields back into a new "signed" object; fields the model does not know
 * are copied from m->signed_obj, so parse -> serialise -> canonical gives the same bytes.
 * NULL for a lean document (rh_metadata_parse_lean). */
json_t *rh_metadata_to_signed(const rh_metadata *m);

/* Sign: build {"signatures":[{"keyid","sig"},...],"signed":signed_obj} with one Ed25519
 * signature per key over the canonical JSON of signed_obj, and append it to out as canonical
 * JSON. Returns RH_OK, RH_ETYPE, RH_ECRYPTO, RH_ENOMEM. */
rh_err rh_metadata_sign(const json_t *signed_obj, rh_privkey *const *keys, size_t nkeys,
                        rh_buf *out, rh_error *e) __attribute__((warn_unused_result));

/* Parse/format "YYYY-MM-DDTHH:MM:SSZ". Format writes 21 bytes including NUL. */
rh_err rh_time_parse(const char *s, int64_t *out);
void rh_time_format(int64_t t, char out[21]);

#endif
