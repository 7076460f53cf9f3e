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

/* Chunks taken from p and not yet returned: being filled or queued in libevent. */
size_t rh_outpool_live(const rh_outpool *p);

/* Returns an unused chunk to the pool. Accepts NULL. */
void rh_outpool_put(uint8_t *chunk);

/* What one connection has handed to libevent and not yet got back. Its chunks count at their
 * whole size against the connection's output limit, whatever they hold: a client that reads
 * slowly and asks for small responses would otherwise pin a whole chunk per 2 KiB sent (up to
 * 8 MiB per connection under a 256 KiB limit). Shared by the connection and its chunks in
 * flight, and freed by the last of them to let go. */
typedef struct rh_outacct rh_outacct;

rh_outacct *rh_outacct_new(void); /* NULL on OOM */

/* Chunks handed with a and not yet given back. */
size_t rh_outacct_chunks(const rh_outacct *a);

/* The connection lets go of a (NULL is fine); chunks still in flight keep it until returned. */
void rh_outacct_release(rh_outacct *a);

/* Appends the first len bytes of chunk to out without copying; the chunk goes back to its
 * pool once libevent has written (or dropped) them, and counts in acct (may be NULL) until
 * then. On failure (RH_ENOMEM) the chunk is returned to the pool and nothing is appended. */
rh_err rh_outpool_hand(struct evbuffer *out, uint8_t *chunk, size_t len, rh_outacct *acct);

#endif
