/* poll.h -- the fleet poller's I/O: read the origin's repository (over HTTP or from disk), then
 * ask every mirror for its status, timestamp.json, one target and its TLS certificate. */
#ifndef RH_FLEET_POLL_H
#define RH_FLEET_POLL_H

#include <stdint.h>

#include "fleet/fleet.h"
#include "manifest/config.h"
#include "manifest/rh_error.h"

#define RH_FLEET_TIMEOUT_MS     10000L /* default: one request to one mirror */
#define RH_FLEET_STALE_AFTER_S  600    /* default: lag tolerated before a mirror is stale */

typedef struct rh_fleet_opts {
    const rh_origin_config *cfg; /* mirrors and CA bundle; must outlive the poller */
    const char *origin_url;      /* repository base URL of the origin; NULL: file://cfg->repo */
    long timeout_ms;             /* 0: RH_FLEET_TIMEOUT_MS */
    int64_t stale_after;         /* seconds; 0: RH_FLEET_STALE_AFTER_S */
} rh_fleet_opts;

typedef struct rh_fleet rh_fleet;

/* New poller (no network yet). Returns RH_OK, RH_EINVAL (no config), RH_ENOMEM, RH_ENET. */
rh_err rh_fleet_new(const rh_fleet_opts *o, rh_fleet **out, rh_error *e);
void rh_fleet_free(rh_fleet *f); /* accepts NULL */

/*
 * One round at time now: the origin (root chain, timestamp, snapshot, top-level targets, each
 * checked against the origin's own root), then every mirror in config order. Unreachable or
 * lying servers are verdicts in the view, not errors. *out is a new view owned by the caller
 * (rh_fleet_view_free). Returns RH_OK or RH_ENOMEM. Not thread-safe: one caller at a time.
 */
rh_err rh_fleet_poll(rh_fleet *f, int64_t now, rh_fleet_view **out, rh_error *e);
void rh_fleet_view_free(rh_fleet_view *v); /* accepts NULL */

/* notAfter (seconds since the epoch) of the certificate an https:// URL's server presents; the
 * chain is not verified here (requests verify it). Returns RH_OK, RH_EINVAL (not https://),
 * RH_ENET (connect, handshake, timeout), RH_ECRYPTO. */
rh_err rh_fleet_cert_expiry(const char *url, long timeout_ms, int64_t *not_after, rh_error *e)
    __attribute__((warn_unused_result));

#endif
