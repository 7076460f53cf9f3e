/* dl.h -- the mirror's target downloader: libcurl multi, one HTTP/2 connection per upstream with
 * many multiplexed streams, streaming into staging files while hashing, resume with Range,
 * bounded by the signed length, retries with backoff, and failover to the next upstream. */
#ifndef RH_MIRROR_DL_H
#define RH_MIRROR_DL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/metadata.h"
#include "manifest/rh_error.h"

#define RH_DL_BACKOFF_MS     250L   /* first retry delay; doubled per retry ... */
#define RH_DL_BACKOFF_MAX_MS 8000L  /* ... up to this */
#define RH_DL_CONNECT_MS     10000L /* TCP + TLS handshake of one connection */
#define RH_DL_BUFFER         (16L * 1024) /* libcurl receive buffer per transfer */
#define RH_DL_CONNS          8L     /* HTTP/2 connections per upstream, opened at once (fewer
                                     * when ceil(items / concurrency) is less) */
#define RH_DL_H1_CONNS       16L    /* HTTP/1.1 connections (one transfer each), see below */
#define RH_DL_MAX_INFLIGHT   800L   /* transfers in flight: bounds memory (each holds a receive
                                     * buffer, a handle and hash state: under 40 KiB) and open
                                     * staging files (also at most half of RLIMIT_NOFILE) */
#define RH_DL_START_BATCH    32L    /* transfers set up per pass of the event loop */
#define RH_DL_FLUSH_QUEUE    64u    /* writes and closes queued for the writer's threads */
#define RH_DL_WRITERS        4u     /* writer threads (lanes): direct writes wait for the device,
                                     * so a few run at once */
#define RH_DL_WARM_WAIT_MS   1000L  /* rh_dl_run waits this long at most for the warm-up */
#define RH_DL_FD_WAITS       100L   /* out of file descriptors: a start is put off this often ... */
#define RH_DL_FD_WAIT_MS     100L   /* ... by this long, before the item fails with RH_EIO */
#define RH_DL_WBUF           (128u * 1024) /* write buffer of a transfer (smaller for a file
                                            * that is smaller): one write each, and on a VM
                                            * each direct write is an exit to the host (64 KiB
                                            * measured 0.25 s slower per GiB) ... */
#define RH_DL_WBUF_TOTAL     (4u * 1024 * 1024) /* ... while the run's buffers stay under this */
#define RH_DL_DIRECT_MIN     RH_DL_WBUF /* files with this much left to fetch are written with
                                         * O_DIRECT (writer.h) */

typedef struct rh_dl_item {
    const char *relpath; /* "targets/<dir>/<hex>.<name>": URL path under each upstream and the
                          * file under the staging directory */
    uint64_t length;     /* the signed length: more is refused, less is a truncation */
    const rh_hashes *hashes; /* the signed hashes (sha256 required) */
} rh_dl_item;

typedef struct rh_dl_opts {
    const char *const *upstreams; /* base URLs, tried in order */
    size_t nupstreams;
    const char *staging;          /* directory receiving the verified files */
    const char *ca;               /* CA bundle for https://, NULL = system */
    long concurrency;             /* HTTP/2 streams per connection (the upstream's
                                   * SETTINGS_MAX_CONCURRENT_STREAMS may lower it): with
                                   * RH_DL_CONNS connections, concurrency * RH_DL_CONNS transfers
                                   * are in flight, at most RH_DL_MAX_INFLIGHT; over HTTP/1.1,
                                   * min(concurrency, RH_DL_H1_CONNS) */
    long timeout_s;               /* one transfer */
    long low_speed_limit;         /* bytes/s ... */
    long low_speed_time;          /* ... for this long: abort the transfer */
    long retries;                 /* further attempts per upstream after a network failure */
    const atomic_bool *cancel;    /* may be NULL; when set, the run stops with RH_ENET */
    struct rh_dl_warm *warm;      /* may be NULL: connections opened ahead (rh_dl_warm_start),
                                   * taken over and freed by rh_dl_run */
    size_t wbufs;                 /* write buffers of the run; 0 (the mirror's choice):
                                   * RH_DL_WBUF_TOTAL / RH_DL_WBUF. Tests set fewer to run
                                   * out of them. */
} rh_dl_opts;

/* Opens RH_DL_CONNS connections to upstream (TCP and TLS handshakes, then one HEAD of its
 * metadata/timestamp.json each) on a thread, while the caller does other work: the mirror
 * starts it when a new snapshot is coming from a distant upstream, and its targets metadata
 * arrives while the handshakes complete, so the first transfers of rh_dl_run do not wait a
 * round trip for their connections. ca as for rh_dl_opts. NULL when it cannot start (then
 * rh_dl_run opens its own). Hand it to rh_dl_run in opts->warm, or free it. */
typedef struct rh_dl_warm rh_dl_warm;
rh_dl_warm *rh_dl_warm_start(const char *upstream, const char *ca);
void rh_dl_warm_free(rh_dl_warm *w); /* waits for the thread; accepts NULL */

typedef struct rh_dl_stats {
    uint64_t bytes;                /* body bytes received */
    uint64_t objects;              /* files verified into staging */
    uint64_t resumed;              /* transfers continued from a partial staging file */
    uint64_t refetched;            /* ... whose hash then differed: fetched again from byte 0
                                    * (same upstream, once) before it counts as RH_EHASH */
    uint64_t direct_bytes;         /* bytes written to staging with O_DIRECT (no page cache) */
    uint64_t copied_bytes;         /* bytes that found no free write buffer and followed their
                                    * file's queued writes as copies */
    uint64_t failures[RH_ERR_COUNT]; /* failed transfers by code (RH_EHASH, RH_ETOOBIG, ...) */
} rh_dl_stats;

/* Whether cleartext http:// upstreams are spoken to as h2c (prior knowledge). libcurl before
 * 8.0.0 fails every request after the first on a reused prior-knowledge connection ("Error in
 * the HTTP2 framing layer", curl issue #10634), so with those versions http:// upstreams get
 * HTTP/1.1 over up to RH_DL_H1_CONNS connections instead; https:// is always h2 by ALPN over
 * RH_DL_CONNS connections. */
bool rh_dl_h2c_ok(void);

/* Download items[0..n) into staging. A finished transfer is replaced at once, so the number in
 * flight stays at its bound until the queue runs dry; the first RH_DL_CONNS transfers open their
 * connections together, the rest wait for a free stream on one of them (CURLOPT_PIPEWAIT). A staging file left by an earlier attempt is resumed
 * (its prefix re-hashed, the rest asked for with Range); a complete one is only verified.
 * A transfer that is refused by its upstream (404), longer than signed or with a different hash
 * moves the item to the next upstream at once (a resumed one whose hash differs is first
 * fetched again whole from the same upstream: the local prefix may be what was wrong); a network failure, a timeout, a slow or
 * truncated transfer is retried with backoff (opts->retries times) and then moves on. Bytes
 * reach the staging file through a write buffer per transfer (RH_DL_WBUF, within
 * RH_DL_WBUF_TOTAL for the run): few large page-aligned writes instead of one per DATA frame,
 * made by RH_DL_WRITERS threads (writer.h) so that the loop does not wait for each write (only
 * for a full writer queue, and for a failed transfer's writes before it is resumed), and
 * direct (O_DIRECT, no copy into the page cache) for a file with RH_DL_DIRECT_MIN bytes or
 * more to fetch from an aligned offset. When the run's buffers are all in use, bytes follow a
 * file's queued writes as copies (a staging file stays a prefix of what was received, also
 * after a failed write or a crash of the process).
 * Each verified file is closed by the writer after its last write (the writeback started of a
 * large file that went through the page cache), and before RH_OK is returned one syncfs(2) of the
 * staging file system (its descriptor opened before the first write, so no write-back error is
 * missed) makes files and directories durable, instead of an fsync per file and directory:
 * nothing may be renamed out of staging before this returns RH_OK.
 * stats (optional) accumulates. Returns RH_OK when every item is verified in
 * staging; otherwise the error of the first item that no upstream could deliver ("URL: reason"):
 * RH_EHASH, RH_ETOOBIG, RH_ENOTFOUND, RH_ENET, RH_EIO (staging, e.g. disk full, or no file
 * descriptor for RH_DL_FD_WAITS * RH_DL_FD_WAIT_MS), RH_ENOMEM,
 * RH_EINVAL. */
rh_err rh_dl_run(const rh_dl_opts *o, const rh_dl_item *items, size_t n, rh_dl_stats *stats,
                 rh_error *e) __attribute__((warn_unused_result));

#endif
