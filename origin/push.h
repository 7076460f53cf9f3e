/* push.h -- tells mirrors about a new timestamp: POST <mirror>/push carrying the signed
 * timestamp.json, from a thread of its own so serving never waits on a slow mirror. */
#ifndef RH_ORIGIN_PUSH_H
#define RH_ORIGIN_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "manifest/config.h"
#include "manifest/rh_error.h"

#define RH_PUSH_CONNECT_MS 2000L /* per mirror: connect (and TLS) */
#define RH_PUSH_TOTAL_MS   5000L /* per mirror: the whole POST */
#define RH_PUSH_RETRIES    2     /* further attempts for a mirror that failed, 1 s apart */

typedef struct rh_pusher rh_pusher;

/* Starts the push thread for mirrors[0..n) (copied). ca: CA bundle for https:// mirrors, NULL
 * for the system's. Returns RH_OK, RH_ENOMEM, RH_ENET (libcurl init), RH_EIO (thread). */
rh_err rh_pusher_new(const rh_origin_mirror *mirrors, size_t n, const char *ca, rh_pusher **out,
                     rh_error *e);

/* Queue timestamp bytes for every mirror. Pushes are merged, never dropped: bytes queued while
 * a round runs replace older queued bytes and start one more round. */
rh_err rh_pusher_send(rh_pusher *p, const uint8_t *ts, size_t n);

/* Stops the thread (an unfinished round is abandoned after its current POST) and frees.
 * Accepts NULL. */
void rh_pusher_free(rh_pusher *p);

#endif
