/* config.h -- YAML configuration of the origin, mirrors and clients: schema-driven loading
 * (libyaml events) into typed structs, with errors that point at FILE:LINE:COL and the key path. */
#ifndef RH_CONFIG_H
#define RH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/note.h"
#include "manifest/rh_error.h"

/* Ceilings of the loader (besides RH_MAX_CONFIG_BYTES of limits.h). */
#define RH_CONFIG_MAX_DEPTH 16     /* nesting of mappings and sequences */
#define RH_CONFIG_MAX_NODES 65536  /* scalars, mappings and sequences in one file */
#define RH_CONFIG_MAX_LIST  1024   /* entries in one list (mirrors, upstreams, keys) */

/*
 * Common rules for all three files:
 * - One YAML document whose top level is a mapping. Unknown keys, duplicate keys, aliases,
 *   null values and empty strings are errors.
 * - Durations: "30s", "5m", "24h", "7d" or plain seconds ("90"). Stored as int64_t seconds.
 * - Sizes: "512", "64KiB", "64MiB", "4GiB", "1TiB" (powers of 1024; "KB"/"MB"/"GB" are powers of
 *   1000). Stored as uint64_t bytes.
 * - Booleans: true or false only.
 * - Paths: a relative path is taken relative to the directory of the config file; the stored
 *   string is that joined path (an absolute path is kept as is).
 * - Addresses ("listen"): "host:port", host a name, IPv4 address or "[IPv6]"; port 0..65535
 *   (0 = any free port, which the daemon writes to port_file).
 * - URLs: must start with "http://" or "https://"; stored without trailing '/'.
 * Errors: RH_ECONFIG with "FILE:LINE:COL: key.path: reason" (1-based line and column; list
 * entries appear as mirrors[0].url), RH_ETOOBIG for files over RH_MAX_CONFIG_BYTES, RH_EIO when
 * the file cannot be read, RH_ENOMEM. The out struct is written only on success.
 */

/* One mirror the origin pushes new timestamps to. */
typedef struct rh_origin_mirror {
    char *name;   /* required: short name shown on the fleet page, e.g. "eu-1" */
    char *region; /* required: e.g. "eu", "na", "ap-sg" */
    char *url;    /* required: push URL base; the origin POSTs to <url>/push */
} rh_origin_mirror;

typedef struct rh_origin_config {
    char *repo;       /* required path: repository directory (metadata/, targets/, log/) */
    char *keys;       /* path: online keys directory (timestamp and snapshot keys only; root and
                       * targets keys stay offline); NULL when absent */
    char *listen;     /* address for HTTPS (h2 + HTTP/1.1); needs tls_cert and tls_key */
    char *listen_h2c; /* address for cleartext HTTP/2 (h2c) and HTTP/1.1 */
    char *tls_cert;   /* path: PEM certificate chain */
    char *tls_key;    /* path: PEM private key of tls_cert */
    char *port_file;  /* path: the daemon writes its bound port(s) here */
    char *ca;         /* path: CA bundle to verify https:// mirrors when pushing; NULL = system */
    int64_t timestamp_expiry; /* seconds a timestamp is valid: 60s..365d, default 1d */
    int64_t refresh_interval; /* seconds between timestamp re-signs: 1s..30d, default 1h;
                               * must be shorter than timestamp_expiry */
    rh_origin_mirror *mirrors; /* 0..RH_CONFIG_MAX_LIST mirrors to push to */
    size_t nmirrors;
    bool has_log;     /* the "log" section was given */
    struct {
        char *key;    /* required in log: path of the log's signed-note private key */
        char *origin; /* required in log: log name, the checkpoint's first line */
    } log;
} rh_origin_config;

typedef struct rh_mirror_sync {
    int64_t concurrency;      /* HTTP/2 streams per connection (up to 8 connections per
                               * upstream, mirror/dl.h): 1..256, default 100 */
    int64_t poll_interval;    /* seconds between polls without push: 1s..1d, default 60s */
    int64_t timeout;          /* seconds for one transfer: 1s..1d, default 300s */
    uint64_t low_speed_limit; /* bytes/s below which a transfer is slow: 1..1GiB, default 1024 */
    int64_t low_speed_time;   /* seconds a transfer may stay slow: 1s..1h, default 30s */
    int64_t retries;          /* retries per transfer: 0..10, default 3 */
    int64_t grace_period;     /* seconds superseded versions are kept: 0..30d, default 24h */
    uint64_t max_target_size; /* largest target accepted: 1..1TiB, default 4GiB */
} rh_mirror_sync;

typedef struct rh_mirror_config {
    char *name;        /* required: this mirror's name, e.g. "eu-1" */
    char *region;      /* required: e.g. "eu" */
    char **upstreams;  /* required: 1..RH_CONFIG_MAX_LIST repository base URLs (origin or
                        * another mirror), tried in order */
    size_t nupstreams;
    char *root;        /* required path: pinned initial root.json */
    char *data;        /* required path: data directory (served tree, staging, state) */
    char *listen;      /* address for HTTPS; needs tls_cert and tls_key */
    char *listen_h2c;  /* address for cleartext h2c / HTTP/1.1 */
    char *tls_cert;    /* path */
    char *tls_key;     /* path */
    char *ca;          /* path: CA bundle for upstream TLS; NULL = system default */
    char *port_file;   /* path */
    char *log_key;     /* the transparency log's verifier key: the C2SP vkey "name+id+base64"
                        * or the path of a file holding it (read with rh_config_vkey);
                        * NULL: the log is neither mirrored nor checked */
    rh_mirror_sync sync; /* all defaults when the section is absent */
    bool has_witness;  /* the "witness" section was given (needs log_key) */
    struct {
        char *key;     /* required in witness: path of the cosigning Ed25519 key (PKCS#8) */
        char *name;    /* witness name in cosignatures; NULL = the mirror's name */
    } witness;
} rh_mirror_config;

typedef struct rh_client_mirror {
    char *url;        /* required: repository base URL (serves /metadata/ and /targets/) */
    char *region;     /* optional region label; NULL when absent */
    int64_t priority; /* 0..1000000, default 100; lower is tried first, before health/latency */
} rh_client_mirror;

typedef struct rh_client_witness {
    char *name;       /* required: witness name as in its cosignatures */
    char *key;        /* required: witness public key (vkey or file path: rh_config_vkey) */
} rh_client_witness;

typedef struct rh_client_config {
    char *root;       /* required path: pinned initial root.json */
    char *state;      /* required path: directory of trusted metadata (rollback protection) */
    char *ca;         /* path: CA bundle for mirror TLS; NULL = system default */
    rh_client_mirror *mirrors; /* required: 1..RH_CONFIG_MAX_LIST */
    size_t nmirrors;
    int64_t timeout;          /* seconds for one transfer: 1s..1d, default 300s */
    uint64_t low_speed_limit; /* bytes/s: 1..1GiB, default 1024 */
    int64_t low_speed_time;   /* seconds: 1s..1h, default 30s */
    bool has_witnesses;       /* the "witnesses" section was given */
    struct {
        char *log_key;              /* required: the log's verifier key (vkey or file path) */
        int64_t quorum;             /* required: cosignatures needed, 1..nkeys */
        rh_client_witness *keys;    /* required: 1..RH_CONFIG_MAX_LIST */
        size_t nkeys;
    } witnesses;
} rh_client_config;

/* A verifier key as configs give it (log_key, witness keys): the C2SP vkey itself (it holds
 * '+'), or the path of a file whose first line is one (paths are anchored when the config is
 * loaded). Returns RH_OK, RH_EPARSE, RH_EIO (file unreadable), naming the file. */
rh_err rh_config_vkey(const char *spec, rh_note_key *out, rh_error *e)
    __attribute__((warn_unused_result));

/* Load a config file (at most RH_MAX_CONFIG_BYTES). path names the file in messages. */
rh_err rh_config_load_origin(const char *path, rh_origin_config *out, rh_error *e)
    __attribute__((warn_unused_result));
rh_err rh_config_load_mirror(const char *path, rh_mirror_config *out, rh_error *e)
    __attribute__((warn_unused_result));
rh_err rh_config_load_client(const char *path, rh_client_config *out, rh_error *e)
    __attribute__((warn_unused_result));

/* The same from memory: name appears in messages and its directory anchors relative paths
 * (a name without '/' leaves relative paths as they are). */
rh_err rh_config_parse_origin(const char *name, const char *data, size_t len,
                              rh_origin_config *out, rh_error *e)
    __attribute__((warn_unused_result));
rh_err rh_config_parse_mirror(const char *name, const char *data, size_t len,
                              rh_mirror_config *out, rh_error *e)
    __attribute__((warn_unused_result));
rh_err rh_config_parse_client(const char *name, const char *data, size_t len,
                              rh_client_config *out, rh_error *e)
    __attribute__((warn_unused_result));

/* Free every member and zero the struct; accept NULL and zeroed structs. */
void rh_origin_config_cleanup(rh_origin_config *c);
void rh_mirror_config_cleanup(rh_mirror_config *c);
void rh_client_config_cleanup(rh_client_config *c);

/* Parsers shared with other code (command-line flags): "30s"/"5m"/"24h"/"7d"/plain seconds,
 * and "64MiB"/"1GiB"/plain bytes. Return RH_OK or RH_EPARSE (also on overflow). */
rh_err rh_parse_duration(const char *s, int64_t *out) __attribute__((warn_unused_result));
rh_err rh_parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

#endif
