/* outpool.h -- reusable output chunks handed to libevent by reference (no copy, no page faults). */
#ifndef RH_OUTPOOL_H
#define RH_OUTPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "manifest/rh_error.h"

struct evbuffer;

#define RH_OUTPOOL_CHUNK (64u * 1024 - 64) /* bytes of one chunk: four whole TLS records */
#define RH_OUTPOOL_KEEP  64u               /* free chunks kept for reuse (4 MiB) */

typedef struct rh_outpool rh_outpool;

/* A pool that keeps up to keep free chunks. NULL on OOM. */
rh_outpool *rh_outpool_new(size_t keep);

/* Frees the free chunks; chunks still inside an evbuffer are freed when libevent releases them
 * (which may happen after this call, e.g. at a deferred bufferevent finalize). Accepts NULL. */
void rh_outpool_free(rh_outpool *p);

/* A chunk of RH_OUTPOOL_CHUNK writable bytes, NULL on OOM. */
uint8_t *rh_outpool_get(rh_outpool *p);

/* Returns an unused chunk to the pool. Accepts NULL. */
void rh_outpool_put(uint8_t *chunk);

/* Appends the first len bytes of chunk to out without copying; the chunk goes back to its
 * pool once libevent has written (or dropped) them. On failure (RH_ENOMEM) the chunk is
 * returned to the pool and nothing is appended. */
rh_err rh_outpool_hand(struct evbuffer *out, uint8_t *chunk, size_t len);

#endif
