/* fleet.h -- the fleet page: what the origin serves, what each mirror serves and reports, the
 * verdict per mirror (ok, warn, stale, lying, down), and the HTML/JSON rendering of it all. */
#ifndef RH_FLEET_H
#define RH_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/hash.h"
#include "manifest/rh_error.h"

/* Ceilings of the fleet poller and page. */
#define RH_FLEET_MAX_STATUS_BYTES (256u * 1024)        /* one mirror's status JSON */
#define RH_FLEET_SPOT_MAX_BYTES   (64u * 1024 * 1024)  /* largest target spot-checked */
#define RH_FLEET_HISTORY          4096                 /* origin timestamp versions remembered */
#define RH_FLEET_MAX_PROBLEMS     8                    /* problems listed per mirror */
#define RH_FLEET_MAX_FAILURES     16                   /* failure reasons shown per mirror */
#define RH_FLEET_TEXT             256                  /* bytes of one problem or label */
#define RH_FLEET_CERT_WARN_S      (14 * 86400)         /* certificate expiring soon: warn */
#define RH_FLEET_PAGE_MAX         (8u * 1024 * 1024)   /* rendered HTML or JSON */

/* Verdicts, in increasing severity; a mirror's health is its worst problem's. */
typedef enum rh_fleet_health {
    RH_FLEET_OK = 0,
    RH_FLEET_WARN,  /* serving verified bytes, but something needs attention */
    RH_FLEET_STALE, /* behind the origin for longer than allowed, or expired metadata */
    RH_FLEET_LYING, /* serves bytes that do not verify or differ from the origin's */
    RH_FLEET_DOWN   /* could not be reached */
} rh_fleet_health;

const char *rh_fleet_health_name(rh_fleet_health h); /* "ok", "warn", "stale", "lying", "down" */

/* A timestamp.json seen at the origin or at a mirror (already signature-checked by the caller). */
typedef struct rh_fleet_ts {
    uint64_t version;
    uint8_t sha256[RH_SHA256_LEN]; /* of the exact bytes served */
    int64_t expires;
    uint64_t snapshot_version;
} rh_fleet_ts;

/* The origin timestamps the fleet has seen: version, bytes' hash, when first seen. Sorted by
 * version; the oldest entries are dropped past RH_FLEET_HISTORY. */
typedef struct rh_fleet_seen {
    uint64_t version;
    uint8_t sha256[RH_SHA256_LEN];
    int64_t first_seen;
} rh_fleet_seen;

typedef struct rh_fleet_history {
    rh_fleet_seen *v;
    size_t n, cap;
} rh_fleet_history;

void rh_fleet_history_init(rh_fleet_history *h);
void rh_fleet_history_cleanup(rh_fleet_history *h);
/* Record ts as seen at time now (a version already known keeps its first hash and time).
 * Returns RH_OK, RH_ENOMEM. */
rh_err rh_fleet_history_add(rh_fleet_history *h, const rh_fleet_ts *ts, int64_t now);
const rh_fleet_seen *rh_fleet_history_find(const rh_fleet_history *h, uint64_t version);

/* One failure reason and its count, as the mirror reports it. */
typedef struct rh_fleet_failure {
    char reason[64];
    uint64_t count;
} rh_fleet_failure;

/* One row of the page: everything known about one mirror after a poll. -1 means unknown. */
typedef struct rh_fleet_row {
    char name[64];
    char region[32];
    char url[512];
    rh_fleet_health health;
    char problems[RH_FLEET_MAX_PROBLEMS][RH_FLEET_TEXT];
    rh_fleet_health problem_sev[RH_FLEET_MAX_PROBLEMS];
    size_t nproblems;
    /* Served versions: timestamp and snapshot from the mirror's verified timestamp.json, the
     * others as the mirror's status reports them. */
    int64_t v_root, v_timestamp, v_snapshot, v_targets;
    /* Observed by the fleet against the origin's history. */
    int64_t lag_versions, lag_seconds;
    bool lag_lower_bound; /* lag_seconds counts from the fleet's start, the real lag is longer */
    /* Reported by the mirror's status. */
    bool status_ok;
    int64_t reported_lag_versions, reported_lag_seconds, last_sync, sync_duration_ms;
    rh_fleet_failure failures[RH_FLEET_MAX_FAILURES];
    size_t nfailures;
    /* Byte checks: timestamp.json against the origin, one target's length and sha256. */
    int ts_verified;        /* 1 verified, 0 failed, -1 not checked */
    int spot_verified;      /* 1 verified, 0 failed, -1 not checked */
    char spot_target[RH_FLEET_TEXT];
    int64_t cert_expiry;    /* notAfter of the TLS certificate, -1 for http:// or unknown */
    int64_t polled_at;
} rh_fleet_row;

/* Blank row (every number -1, health ok) for a mirror. Strings are truncated to fit. */
void rh_fleet_row_init(rh_fleet_row *r, const char *name, const char *region, const char *url);

/* Add a problem; raises r->health to sev when worse. Problems past RH_FLEET_MAX_PROBLEMS only
 * raise the health. */
void rh_fleet_row_problem(rh_fleet_row *r, rh_fleet_health sev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Judge a mirror's (signature-verified) timestamp against the origin's current one and the
 * history, at time now; stale_after is the lag in seconds tolerated. Sets v_timestamp,
 * v_snapshot, lag_versions, lag_seconds, ts_verified and adds problems:
 *   expired timestamp                          -> stale
 *   same version as the origin, other bytes     -> lying (split view or forgery)
 *   older version whose bytes differ from what the origin served for that version -> lying
 *   behind the origin for longer than stale_after -> stale
 * A mirror ahead of origin (the origin moved during the poll) is not a problem.
 */
void rh_fleet_judge_ts(const rh_fleet_history *h, const rh_fleet_ts *origin,
                       const rh_fleet_ts *mirror, int64_t now, int64_t stale_after,
                       rh_fleet_row *r);

/* Judge the TLS certificate's notAfter: expired -> down (TLS clients refuse the mirror);
 * expiring within RH_FLEET_CERT_WARN_S -> warn. Sets r->cert_expiry. */
void rh_fleet_judge_cert(int64_t not_after, int64_t now, rh_fleet_row *r);

/*
 * Read a mirror's status JSON (/.well-known/rhine/status) into the row's reported fields:
 * versions per role, lag in versions and seconds, last successful sync, sync duration and
 * verification failures by reason. Fields the document lacks stay -1. Returns RH_OK,
 * RH_EPARSE (not a JSON object; message names src), RH_ETOOBIG, RH_ENOMEM.
 */
rh_err rh_fleet_parse_status(const uint8_t *data, size_t len, const char *src, rh_fleet_row *r,
                             rh_error *e) __attribute__((warn_unused_result));

/* What the page shows about the origin. */
typedef struct rh_fleet_origin_view {
    char url[512];
    bool ok;
    char error[RH_ERRMSG_MAX];
    uint64_t ts_version, snapshot_version, targets_version, root_version;
    int64_t ts_expires;
    size_t ntargets;
} rh_fleet_origin_view;

typedef struct rh_fleet_view {
    rh_fleet_origin_view origin;
    rh_fleet_row *rows;
    size_t nrows;
    int64_t generated_at;
    int64_t stale_after;
    uint64_t round;
} rh_fleet_view;

/* The page: self-contained HTML (inline CSS, no scripts or external assets) that reloads every
 * refresh_s seconds, unhealthy rows first and marked. Appends to out. RH_ENOMEM, RH_ETOOBIG. */
rh_err rh_fleet_render_html(const rh_fleet_view *v, unsigned refresh_s, rh_buf *out);
/* The same as JSON: {"generated_at", "origin": {...}, "mirrors": [{...}]}. */
rh_err rh_fleet_render_json(const rh_fleet_view *v, rh_buf *out);
/* What the fleet observes, in Prometheus text format, one series per mirror labelled
 * {mirror, region}: rhine_fleet_mirror_up, rhine_fleet_mirror_lying, rhine_fleet_mirror_stale,
 * rhine_fleet_mirror_lag_versions, rhine_fleet_mirror_lag_seconds,
 * rhine_fleet_mirror_cert_expiry_timestamp_seconds (unknown values are left out), and
 * rhine_fleet_origin_up. Label values are escaped. RH_ENOMEM, RH_ETOOBIG. */
rh_err rh_fleet_render_metrics(const rh_fleet_view *v, rh_buf *out);

#endif
