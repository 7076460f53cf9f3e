/* fetch.h -- blocking, bounded single HTTP(S) GETs over libcurl with a reusable handle
 * (connection reuse, HTTP/2 over TLS, plain http://), Range resume and If-None-Match. */
#ifndef RH_FETCH_H
#define RH_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

/* Defaults of rh_fetch_opts fields left 0, and the transport's own ceilings. */
#define RH_NET_CONNECT_TIMEOUT_MS 10000L  /* TCP + TLS handshake */
#define RH_NET_LOW_SPEED_LIMIT    1024L   /* bytes/s below which a transfer is "slow" ... */
#define RH_NET_LOW_SPEED_TIME_S   30L     /* ... for this many seconds: abort (slow retrieval) */
#define RH_NET_MAX_REDIRS         3L      /* http(s) redirects followed (never to other schemes) */
#define RH_NET_MAX_ETAG           256     /* bytes of an ETag kept (longer ones are ignored) */
#define RH_NET_MAX_URL            8192    /* bytes of a URL the transport builds or accepts */

/* Options of one handle; copied by rh_http_new (ca_file is duplicated). Zero = default. */
typedef struct rh_fetch_opts {
    const char *ca_file;     /* PEM CA bundle for https://; NULL = system default */
    long connect_timeout_ms; /* 0: RH_NET_CONNECT_TIMEOUT_MS */
    long low_speed_limit;    /* bytes/s; 0: RH_NET_LOW_SPEED_LIMIT */
    long low_speed_time_s;   /* seconds; 0: RH_NET_LOW_SPEED_TIME_S */
    long total_timeout_ms;   /* whole transfer; 0: no total limit (low-speed limit still holds) */
    bool http2;              /* offer h2 by ALPN on https:// (HTTP/1.1 on http:// then) */
    bool h2c;                /* http:// with HTTP/2 prior knowledge (server must speak h2c) */
    const char *user_agent;  /* NULL: "rhine/1" */
} rh_fetch_opts;

/* Body sink: receives the response body in order, starting at the requested offset. Return
 * RH_OK to continue; any other code aborts the transfer and rh_http_get returns that code with
 * the sink's message (e.g. RH_EHASH from a verifying sink). */
typedef rh_err (*rh_fetch_sink)(void *ctx, const uint8_t *p, size_t n, rh_error *e);

typedef struct rh_fetch_req {
    const char *url;           /* http://, https:// or file:// (tests); required */
    uint64_t max_bytes;        /* more body bytes than this (counted from offset) is
                                * RH_ETOOBIG "url: more than N bytes"; 0 = refuse any body */
    uint64_t offset;           /* > 0: "Range: bytes=offset-"; a 200 answer is skipped up to
                                * offset by the transport, so the sink always sees offset.. */
    const char *if_none_match; /* ETag (with its quotes) or NULL: a 304 answer ends with
                                * res->not_modified and no body */
    rh_fetch_sink sink;        /* required */
    void *sink_ctx;
} rh_fetch_req;

typedef struct rh_fetch_result {
    long status;               /* final HTTP status (200, 206, 304); 200 for file:// */
    bool not_modified;         /* 304 to If-None-Match */
    uint64_t bytes;            /* body bytes given to the sink */
    char etag[RH_NET_MAX_ETAG]; /* the response's ETag (with quotes) or "" */
    double connect_s;          /* seconds until connected (0 when reused) */
    double total_s;            /* seconds for the whole transfer */
    bool http2;                /* the response came over HTTP/2 */
} rh_fetch_result;

/* One reusable transfer handle: keeps connections (and TLS sessions) alive between calls. Not
 * safe for concurrent use; use one handle per thread (handles share nothing). */
typedef struct rh_http rh_http;

/* Process-wide libcurl initialisation (curl_global_init), run once (pthread_once); rh_http_new
 * calls it, so programs need not. Long-running programs with threads should call it from main()
 * before starting them. Never undone (libcurl's state lives as long as the process).
 * Returns RH_OK or RH_ENET. */
rh_err rh_net_global_init(rh_error *e);

/* New handle with options o (NULL = all defaults). Returns RH_OK, RH_ENOMEM, RH_ENET. */
rh_err rh_http_new(const rh_fetch_opts *o, rh_http **out, rh_error *e);
void rh_http_free(rh_http *h); /* accepts NULL */

/* Blocking GET of req->url, body streamed to req->sink. res (optional) is filled on RH_OK.
 * Returns:
 *   RH_OK        2xx (200, or 206 with a Content-Range starting at offset) or 304 (if_none_match)
 *   RH_ENOTFOUND "url: HTTP 404" (also 410; a missing file:// file)
 *   RH_ETOOBIG   "url: more than N bytes" (Content-Length or streamed count past max_bytes)
 *   RH_ENET      "url: HTTP 503", "url: timed out after N ms", "url: too slow (less than N bytes/s
 *                for S s)", "url: <curl's reason>" (connect, TLS, protocol), or a 206 whose range
 *                is not the one asked for
 *   RH_EINVAL    bad arguments (NULL url/sink, URL longer than RH_NET_MAX_URL)
 *   the sink's code (with its message) when the sink refused bytes. */
rh_err rh_http_get(rh_http *h, const rh_fetch_req *req, rh_fetch_result *res, rh_error *e)
    __attribute__((warn_unused_result));

/* Convenience: GET url into out (appended; the buffer's own ceiling also holds) refusing more
 * than max bytes. status (optional) receives the HTTP status. Same returns as rh_http_get. */
rh_err rh_http_get_buf(rh_http *h, const char *url, uint64_t max, rh_buf *out, long *status,
                       rh_error *e) __attribute__((warn_unused_result));

/* Join base and a relative path with exactly one '/' between them into out (outsz bytes).
 * Returns RH_OK or RH_ETOOBIG (out too small). out written only on success. */
rh_err rh_url_join(const char *base, const char *rel, char *out, size_t outsz);

#endif
