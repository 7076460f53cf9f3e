/* rhine/client.h -- librhine-client: the embeddable Rhine update client. A full TUF 1.0 client
 * (pinned root, persisted trusted metadata, rollback and freeze protection) that fetches
 * zstd-compressed payloads from a list of mirrors with failover, verifies them before and after
 * decompression and installs them atomically.
 *
 * Threads: a rhine_client handle is not safe for concurrent use; use one handle per thread
 * (handles share nothing but libcurl's process-wide initialisation, which is thread-safe).
 * Errors: every call returns a rhine_code; rhine_client_errmsg() then says where and why, as
 * "<mirror url>: <reason>" or "<file>: <reason>". */
#ifndef RHINE_CLIENT_H
#define RHINE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rhine_code {
    RHINE_OK = 0,
    RHINE_ERR_NOMEM,      /* out of memory */
    RHINE_ERR_INVALID,    /* bad argument or call */
    RHINE_ERR_CONFIG,     /* configuration file or options invalid */
    RHINE_ERR_IO,         /* local file system (state dir, destination) */
    RHINE_ERR_NETWORK,    /* no mirror answered usefully: connect, timeout, HTTP status */
    RHINE_ERR_NOT_FOUND,  /* the target is not in the trusted metadata */
    RHINE_ERR_VERIFY,     /* a mirror served bytes that failed verification (signature,
                           * length, hash, version, malformed metadata, corrupt payload) */
    RHINE_ERR_EXPIRED,    /* the freshest metadata any mirror offers has expired (freeze) */
    RHINE_ERR_ROLLBACK,   /* a mirror offered an older version than already trusted */
    RHINE_ERR_TOO_BIG,    /* more bytes than signed or allowed (endless data, zstd bomb) */
    /* Transparency (rhine_client_set_witnesses; never returned without it): */
    RHINE_ERR_QUORUM,     /* no log checkpoint is cosigned by the quorum of witnesses: a split
                           * view, or witnesses behind or unreachable; the message lists what
                           * each mirror showed (size, root prefix, cosigners) */
    RHINE_ERR_LOG_FORK,   /* the witnessed log is not an append-only extension of the
                           * checkpoint stored by an earlier run; both are kept in
                           * <state_dir>/log.evidence */
    RHINE_ERR_UNLOGGED,   /* signed metadata that is not in the witnessed log: "unlogged:
                           * N.targets.json: ..." */
    RHINE_ERR_COUNT
} rhine_code;

/* Short stable name of a code ("network", "verify", ...). Never NULL. */
const char *rhine_code_name(rhine_code c);

/* One mirror: a base URL serving <url>/metadata/ and <url>/targets/ (Rhine layout), or explicit
 * metadata and targets base URLs (any TUF repository). http://, https:// (file:// for tests). */
typedef struct rhine_mirror {
    const char *url;          /* base URL; may be NULL when both URLs below are given */
    const char *metadata_url; /* NULL: <url>/metadata */
    const char *targets_url;  /* NULL: <url>/targets (NULL with url NULL: no target downloads) */
    const char *region;       /* label, may be NULL */
    long priority;            /* lower is tried first; among equals, healthier and faster first */
} rhine_mirror;

/* Install targets' verified bytes as they are, without the zstd step (generic TUF targets).
 * Without this flag a target with "custom": {"rhine": {length, sha256}} is decompressed and the
 * result checked against those; a target without it is installed as is. */
#define RHINE_FLAG_RAW_TARGETS 0x1u

typedef struct rhine_client_opts {
    const char *root_file;      /* pinned initial root.json; NULL: state_dir/root.json must exist */
    const char *state_dir;      /* required: directory of trusted metadata, "<role>.json" each */
    const char *ca_file;        /* PEM CA bundle for https:// mirrors; NULL: system default */
    const rhine_mirror *mirrors; /* 1..1024 mirrors (copied) */
    size_t nmirrors;
    long timeout_s;             /* per transfer; 0: 300 */
    long low_speed_limit;       /* bytes/s; 0: 1024 */
    long low_speed_time_s;      /* abort after this long below low_speed_limit; 0: 30 */
    unsigned flags;             /* RHINE_FLAG_* */
} rhine_client_opts;

typedef struct rhine_client rhine_client;

/* Create a client from options (copied). Nothing is fetched yet. On failure *out is untouched and
 * errbuf (optional, errlen bytes) receives the message. Returns RHINE_OK, RHINE_ERR_INVALID,
 * RHINE_ERR_NOMEM, RHINE_ERR_NETWORK (libcurl initialisation). */
rhine_code rhine_client_new(const rhine_client_opts *o, rhine_client **out, char *errbuf,
                            size_t errlen);

/* Create a client from a YAML client configuration (root, state, ca, mirrors [{url, region,
 * priority}], timeout, low_speed_limit, low_speed_time, and optionally witnesses {log_key,
 * quorum, keys [{name, key}]}, which turns transparency on as rhine_client_set_witnesses; keys
 * are verifier keys or paths of files holding one). Returns as rhine_client_new, plus
 * RHINE_ERR_CONFIG ("FILE:LINE:COL: key: reason") and RHINE_ERR_IO. */
rhine_code rhine_client_new_from_config(const char *config_path, rhine_client **out,
                                        char *errbuf, size_t errlen);

void rhine_client_free(rhine_client *c); /* accepts NULL */

/* Transparency (DESIGN 8), off by default. From now on an update trusts new root, snapshot and
 * targets metadata (delegated roles included, also when a fetch meets them) only when
 *  - some checkpoint served at <url>/log/checkpoint by the mirrors (those configured with a base
 *    url) is signed by log_key and cosigned by at least quorum distinct witnesses, cosignatures
 *    being united across mirrors serving the same checkpoint text (the largest such checkpoint
 *    is chosen), else RHINE_ERR_QUORUM;
 *  - that checkpoint and the one stored in <state_dir>/log.checkpoint by the last successful
 *    update (which needs only log_key) are one append-only history: the smaller one's root is
 *    the root of the first entries of the larger one's tree, read through a mirror and verified
 *    against its own signed checkpoint (a mirror serving tiles or bundles that do not verify is
 *    skipped, never taken for a fork), else RHINE_ERR_LOG_FORK;
 *  - its log has an entry with the role, version, length and sha256 of each such file's exact
 *    bytes, else RHINE_ERR_UNLOGGED (the next mirror's metadata is tried).
 * Nothing is persisted before these checks pass; then the stored checkpoint's log entries
 * (<state_dir>/log.entries, so that the next update fetches only the tiles after the whole
 * ones it holds) and the checkpoint (with the cosignatures) are stored atomically. An update
 * that fetched no new root, snapshot or targets checks nothing.
 * log_key: the log's C2SP verifier key "name+id+base64" (Ed25519, type 0x01); witness_keys:
 * nwitnesses (1..64) distinct verifier keys of type 0x04 (tlog-cosignature/v1), named as in
 * their cosignatures; quorum: 1..nwitnesses. Call before the first update. Returns RHINE_OK,
 * RHINE_ERR_INVALID (bad key or quorum; see rhine_client_errmsg), RHINE_ERR_NOMEM. */
rhine_code rhine_client_set_witnesses(rhine_client *c, const char *log_key,
                                      const char *const *witness_keys, size_t nwitnesses,
                                      size_t quorum);

/* Message of the last failed call on c ("" after a success). Valid until the next call. */
const char *rhine_client_errmsg(const rhine_client *c);

/* Refresh the trusted metadata (TUF 5.3-5.6: root chain, timestamp, snapshot, targets) from the
 * first mirror that yields a complete verified set, in failover order. Every newly trusted file
 * is written atomically into the state directory. Returns RHINE_OK or the code of the most
 * relevant failure (a verification failure wins over network errors); the message names the
 * mirror. A mirror that failed verification is skipped for the rest of this handle's life. */
rhine_code rhine_client_update(rhine_client *c);

/* Progress of a download: bytes received so far and the signed length. */
typedef void (*rhine_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Fetch target (its TUF path; "NAME" also finds "NAME.zst") into dest_path: runs
 * rhine_client_update first if this handle has not updated yet, finds the target (delegations
 * included), downloads it from the mirrors in failover order with the signed length as byte
 * limit, verifies length and hashes while streaming, decompresses and verifies again (see
 * RHINE_FLAG_RAW_TARGETS), then writes a temporary file next to dest_path, fsyncs and renames
 * it. dest_path is never left partial and no temporary file is left on failure. If dest_path
 * already holds exactly the verified content, nothing is downloaded. progress may be NULL.
 * Returns RHINE_OK, RHINE_ERR_NOT_FOUND, RHINE_ERR_VERIFY, RHINE_ERR_TOO_BIG,
 * RHINE_ERR_NETWORK, RHINE_ERR_IO, ... (the update's codes). */
rhine_code rhine_client_fetch(rhine_client *c, const char *target, const char *dest_path,
                              rhine_progress_fn progress, void *ctx);

typedef struct rhine_target_info {
    const char *path;         /* TUF target path */
    const char *role;         /* targets role that lists it */
    uint64_t length;          /* signed length of the (compressed) bytes */
    char sha256[65];          /* hex; "" when the target lists no sha256 */
    bool has_content;         /* custom.rhine present: the fields below are valid */
    uint64_t content_length;  /* custom.rhine.length: uncompressed length */
    char content_sha256[65];  /* custom.rhine.sha256 (hex) */
} rhine_target_info;

/* Called once per target; return non-zero to stop the walk (rhine_client_list then returns
 * RHINE_OK). info is valid during the call only. */
typedef int (*rhine_list_fn)(void *ctx, const rhine_target_info *info);

/* Visit every target of every trusted targets role (runs rhine_client_update first if needed;
 * only delegated roles already trusted are listed). */
rhine_code rhine_client_list(rhine_client *c, rhine_list_fn fn, void *ctx);

typedef struct rhine_role_status {
    bool present;        /* trusted metadata of this role is known */
    uint64_t version;
    int64_t expires;     /* seconds since the epoch (UTC) */
    bool expired;        /* at the time of the call */
} rhine_role_status;

typedef struct rhine_status {
    rhine_role_status root, timestamp, snapshot, targets;
    size_t ntargets;          /* targets listed by the top-level targets role */
    bool updated;             /* rhine_client_update succeeded on this handle */
    const char *last_mirror;  /* base (or metadata) URL of the mirror last used; NULL if none */
} rhine_status;

/* Trusted state: after a successful update on this handle, the verified in-memory state;
 * otherwise what the state directory holds, each file checked against the persisted root's
 * keys (files that do not verify are reported absent). No network access. Returns RHINE_OK,
 * RHINE_ERR_IO (no usable root), RHINE_ERR_VERIFY, RHINE_ERR_NOMEM. Pointers in *out are valid
 * until the next call on c. */
rhine_code rhine_client_status(rhine_client *c, rhine_status *out);

/* Start a state directory: verify that root_file is a root signed by its own threshold and
 * write it as state_dir/root.json (atomically; the directory is created if missing). errbuf as
 * for rhine_client_new. Returns RHINE_OK, RHINE_ERR_IO, RHINE_ERR_VERIFY, RHINE_ERR_TOO_BIG,
 * RHINE_ERR_NOMEM. */
rhine_code rhine_state_init(const char *state_dir, const char *root_file, char *errbuf,
                            size_t errlen);

/* The local file name of a target as python-tuf's ngclient chooses it: the target path
 * percent-encoded with nothing kept but A-Z a-z 0-9 - . _ ~ (so '/' becomes %2F).
 * Returns RHINE_OK, RHINE_ERR_INVALID (empty path, out too small). */
rhine_code rhine_target_filename(const char *target, char *out, size_t outsz);

#ifdef __cplusplus
}
#endif

#endif
