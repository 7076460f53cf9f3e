/* flusher.h -- a thread that starts the writeback of finished staging files and closes them,
 * so the download loop never waits for the disk queue (sync_file_range(2) blocks while the
 * device's queue is full: up to half a second in one measured sync, with every transfer
 * stalled behind it). Durability still comes from the one syncfs(2) at the end of a run. */
#ifndef RH_MIRROR_FLUSHER_H
#define RH_MIRROR_FLUSHER_H

#include <stddef.h>

typedef struct rh_flusher rh_flusher;

/* A flusher with room for cap queued descriptors; NULL when out of memory or no thread could
 * be started (rh_flusher_put then works inline). */
rh_flusher *rh_flusher_new(size_t cap);

/* Take ownership of fd: start its writeback (SYNC_FILE_RANGE_WRITE, a hint whose errors are
 * left to the later syncfs) and close it, on the flusher's thread; inline when f is NULL or
 * its queue is full. */
void rh_flusher_put(rh_flusher *f, int fd);

/* Finish what is queued, stop the thread and free f (NULL is fine). Every descriptor put is
 * closed when this returns. */
void rh_flusher_free(rh_flusher *f);

#endif
