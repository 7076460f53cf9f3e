/* fcache.h -- a bounded LRU cache of open served files (fd + fstat + ETag) keyed by path, and
 * of the bytes of the small ones. */
#ifndef RH_FCACHE_H
#define RH_FCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

typedef struct rh_fcache rh_fcache;

/* One open file. Shared by the cache and by every response that serves it: responses read it
 * with pread at their own offset only, so one descriptor serves any number of them. */
typedef struct rh_fent rh_fent;
struct rh_fent {
    int fd;                      /* O_RDONLY regular file, opened with rh_open_beneath */
    struct stat st;              /* fstat when cached (revalidated on every hit) */
    char hex[65];                /* lower-case hex sha256: the ETag */
    const unsigned char *data;   /* the whole file (st.st_size bytes) when held in memory
                                    (rh_fcache_load), else NULL; freed only while no response
                                    holds the entry, so a holder reads it to the end */
    /* private */
    struct rh_fmem *mem;         /* the accounting data counts in, while data is set */
    unsigned long long checked;  /* the stamp of the last revalidation */
    unsigned refs;               /* 1 while cached + 1 per holder */
    bool cached;
    unsigned hash;
    rh_fent *hnext;
    struct rh_flink {
        rh_fent *prev, *next;
    } use, bytes;                /* the cache's LRU lists: every entry; those holding bytes */
    size_t klen;
    char key[];
};

/* A cache of at most max_entries files (at least 1). NULL on OOM. */
rh_fcache *rh_fcache_new(size_t max_entries);

/* Drops every cached entry; entries still held by a response live until released (their fd
 * stays open until then). Accepts NULL. */
void rh_fcache_free(rh_fcache *c);

/* The entry cached for rel, with one reference for the caller, or NULL. A hit is revalidated
 * with fstat(2) on its descriptor unless it was already revalidated under the same stamp
 * (the server passes rh_fcache_stamp of the loop's time): if the file was
 * unlinked, renamed, linked or unlinked elsewhere (ctime), or changed size, mtime or inode,
 * the entry is evicted and NULL returned, so a file removed from the served tree before the
 * stamp was taken is never served from the cache. stamp 0 always revalidates. */
rh_fent *rh_fcache_get(rh_fcache *c, const char *rel, unsigned long long stamp);

/* The stamp for a time (seconds, microseconds): one per interval_ms, never 0. The server
 * passes the event loop's cached time and RH_HTTPD_FD_RECHECK_MS. */
unsigned long long rh_fcache_stamp(long long sec, long long usec, unsigned interval_ms);

/* Caches fd (a regular file opened under rel, fstat *st taken under stamp, ETag hex) and returns its entry with
 * one reference for the caller; the cache owns fd from here on (closed when the entry is
 * evicted and released). Evicts the least recently used entry when full and replaces an
 * existing entry of the same name. NULL on OOM: nothing cached and fd still the caller's. */
rh_fent *rh_fcache_put(rh_fcache *c, const char *rel, int fd, const struct stat *st,
                       const char hex[65], unsigned long long stamp);

/* Holds the bytes of a small cached file in memory, so that responses copy them from there
 * instead of reading the file each time (a pread(2) of 4 KiB was 13% of the server's CPU
 * under the small-file load). Only for e still in c, with 0 < st_size <= the per-file bound
 * of rh_fcache_set_memory; the file is read whole and fstat'ed again, and nothing is held
 * unless it is the same file as when cached (size, mtime, ctime, inode). To make room, the
 * bytes of the least recently used entries that no response holds are freed (their
 * descriptors stay cached; a later load may read them again), looking at a bounded number
 * of entries, and never the bytes of an entry used under e's stamp (the files in use then
 * do not fit: e is read from its file instead of churning memory). The budget counts every byte still allocated, also those of evicted entries a
 * response still holds: when those fill it, nothing more is loaded and files are read as
 * before. True when e->data is set. The server loads a file when a response is about to
 * copy its body (not for HEAD, 304, or sendfile on cleartext HTTP/1.1). */
bool rh_fcache_load(rh_fcache *c, rh_fent *e);

/* The memory rh_fcache_load may use: at most max_bytes in all and files of at most
 * max_file bytes (0 for either: never). The default is 0 (a cache of descriptors only). */
void rh_fcache_set_memory(rh_fcache *c, size_t max_bytes, size_t max_file);

/* Bytes of files held in memory and still allocated, by cached entries and by evicted ones a
 * response still holds (never above the budget). */
size_t rh_fcache_bytes(const rh_fcache *c);

/* Drops one reference; the last one closes the fd and frees the entry. Accepts NULL. */
void rh_fent_release(rh_fent *e);

/* Evicts every entry (e.g. the served tree changed). */
void rh_fcache_flush(rh_fcache *c);

/* Evicts up to n least recently used entries that no response holds (descriptors short).
 * Returns how many descriptors were closed. */
size_t rh_fcache_trim(rh_fcache *c, size_t n);

/* Entries cached now (never above max_entries). */
size_t rh_fcache_count(const rh_fcache *c);

/* The bound given to rh_fcache_new (at least 1). */
size_t rh_fcache_max(const rh_fcache *c);

#endif
