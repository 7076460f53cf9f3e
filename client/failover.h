/* failover.h -- the order in which the client tries its mirrors: a pure function of each
 * mirror's configured priority and what this handle measured (failures, latency, lies). */
#ifndef RH_FAILOVER_H
#define RH_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Weight of a new latency sample in the smoothed latency (exponential moving average). */
#define RH_FAILOVER_EWMA_NEW 0.3

typedef struct rh_mirror_health {
    int64_t priority;   /* from the configuration: lower is tried first */
    bool bad;           /* served bytes that failed verification: skipped for the run */
    unsigned failures;  /* consecutive failures (connect, timeout, HTTP error, stale) */
    double latency_s;   /* smoothed latency of successful transfers; < 0 when unmeasured */
} rh_mirror_health;

/* Write into order[] the indices of the usable (not bad) mirrors of m[0..n), in the order to
 * try them: priority ascending; then fewer consecutive failures; then measured latency
 * ascending, a measured mirror before an unmeasured one; then configuration order (stable).
 * Returns how many indices were written (0 when every mirror is bad). */
size_t rh_failover_order(const rh_mirror_health *m, size_t n, size_t *order);

/* Record the outcome of one transfer on h: success with its latency in seconds (resets the
 * failure count, updates the moving average), failure, or a verification failure (bad). */
void rh_failover_ok(rh_mirror_health *h, double latency_s);
void rh_failover_failed(rh_mirror_health *h);
void rh_failover_lied(rh_mirror_health *h);

#endif
