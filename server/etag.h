/* etag.h -- a bounded cache of file sha256 digests keyed by (dev, ino, size, mtime, ctime). */
#ifndef RH_ETAG_H
#define RH_ETAG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "manifest/rh_error.h"

typedef struct rh_etag_cache rh_etag_cache;

/* entries is rounded up to a power of two (at least 16); the table is direct-mapped, so a
 * colliding file evicts the older entry. NULL on OOM. */
rh_etag_cache *rh_etag_cache_new(size_t entries);
void rh_etag_cache_free(rh_etag_cache *c); /* accepts NULL */

/* The lower-case hex sha256 of the open regular file fd whose fstat is *st, from the cache or
 * by reading it once (pread, never the whole file in memory). *hashed (may be NULL) tells
 * whether the file was read. Returns RH_OK, RH_EIO (read failed or the file changed size while
 * read; nothing cached), RH_ECRYPTO. hex is written only on success. */
rh_err rh_etag_get(rh_etag_cache *c, int fd, const struct stat *st, char hex[65], bool *hashed,
                   rh_error *err);

#endif
