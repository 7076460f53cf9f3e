/* httpd.h -- the static-file HTTP server shared by origin and mirror: h2 + HTTP/1.1 over TLS
 * (ALPN), h2c prior knowledge + HTTP/1.1 in cleartext, on a caller-owned libevent loop. */
#ifndef RH_HTTPD_H
#define RH_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

struct event_base;

/* Default limits (each settable in rh_httpd_opts; 0 there means "use the default"). */
#define RH_HTTPD_MAX_STREAMS        100u            /* h2 SETTINGS_MAX_CONCURRENT_STREAMS */
#define RH_HTTPD_MAX_HEADER_BYTES   (16u * 1024)    /* header list: h1 -> 431, h2 -> GOAWAY */
#define RH_HTTPD_MAX_HEADERS        100u            /* header fields per request */
#define RH_HTTPD_MAX_CONNS          1024u           /* concurrent connections, the rest closed */
#define RH_HTTPD_MAX_BODY_BYTES     (64u * 1024)    /* request body for the hook -> 413 beyond */
#define RH_HTTPD_MAX_URI            8192u           /* request target bytes -> 414 beyond */
#define RH_HTTPD_IDLE_TIMEOUT_MS    30000u          /* no traffic on an idle connection */
#define RH_HTTPD_HANDSHAKE_MS       10000u          /* TLS handshake + h1 request headers */
#define RH_HTTPD_RST_BURST          200u            /* h2 rapid reset: RST_STREAM token bucket */
#define RH_HTTPD_RST_RATE           50u             /* ... tokens regenerated per second */
#define RH_HTTPD_MAX_CONTINUATIONS  8u              /* h2 CONTINUATION frames per header block */
#define RH_HTTPD_SHORT_MAX_AGE      60u             /* Cache-Control max-age of mutable paths */
#define RH_HTTPD_ETAG_CACHE         4096u           /* entries of the sha256 ETag cache */
#define RH_HTTPD_OUT_HIGH           (256u * 1024)   /* queued output that pauses a connection */
#define RH_HTTPD_FD_CACHE           8192u           /* open HASH.name files kept (LRU), at most
                                                       a quarter of RLIMIT_NOFILE */
#define RH_HTTPD_NOFILE_WANT        65536u          /* soft RLIMIT_NOFILE raised towards this */
#define RH_HTTPD_MEM_CACHE          (4u << 20)      /* bytes of small cached files held in
                                                       memory (LRU), served without a read;
                                                       small beside the mirror's 64 MiB */
#define RH_HTTPD_MEM_FILE_MAX       (16u * 1024)    /* ... each at most this size */
#define RH_HTTPD_FD_RECHECK_MS      100u            /* a cached file is revalidated (fstat) at
                                                       most once per this many ms */

/* Which listener rh_httpd_port() reports. */
typedef enum rh_httpd_listener { RH_HTTPD_TLS = 0, RH_HTTPD_CLEAR = 1 } rh_httpd_listener;

typedef struct rh_httpd rh_httpd;
typedef struct rh_httpd_req rh_httpd_req; /* one request, valid during the handler call only */

/* A dynamic answer from the handler. body is copied before the handler returns. */
typedef struct rh_httpd_resp {
    int status;                 /* 100..599 */
    const char *content_type;   /* NULL -> "text/plain" */
    const char *cache_control;  /* NULL -> "no-store" */
    const void *body;           /* may be NULL when body_len == 0 */
    size_t body_len;
} rh_httpd_resp;

/* Called for every complete request (any method, body already read and bounded) before file
 * serving. Return true after filling *resp to answer, false to decline (the file server then
 * answers: GET/HEAD serve files, other methods get 405). Must not block. */
typedef bool (*rh_httpd_handler_fn)(void *ctx, const rh_httpd_req *req, rh_httpd_resp *resp);

typedef struct rh_httpd_opts {
    const char *root;            /* directory to serve (required) */
    const char *listen_tls;      /* "ADDR:PORT" or "[ADDR6]:PORT", NULL for none; port 0 = any */
    const char *listen_clear;    /* cleartext h2c (prior knowledge) + HTTP/1.1, NULL for none */
    const char *tls_cert;        /* PEM chain, required with listen_tls */
    const char *tls_key;         /* PEM key, required with listen_tls */
    rh_httpd_handler_fn handler; /* may be NULL */
    void *handler_ctx;
    /* Paths with a short max-age: an entry starting with '/' matches as a suffix of the path,
     * any other entry matches the last path segment exactly. NULL-terminated; NULL -> default
     * {"timestamp.json", "/log/checkpoint"}. */
    const char *const *short_cache_paths;
    unsigned short_max_age;      /* seconds; 0 -> RH_HTTPD_SHORT_MAX_AGE */
    /* When true, a file whose name starts with 64 lower-case hex digits and a dot (the
     * consistent-snapshot "HASH.name" targets) gets that hash as its ETag without reading it.
     * Only set this when every such file in the tree was verified against its name (the mirror
     * verifies sha256 before publishing). Otherwise the file is hashed once and cached. */
    bool etag_from_name;
    /* Limits; 0 means the RH_HTTPD_ default. */
    unsigned max_streams, max_header_bytes, max_conns, max_body_bytes, max_uri;
    unsigned idle_timeout_ms, handshake_timeout_ms;
    unsigned rst_burst, rst_rate;
} rh_httpd_opts;

/* A new event base tuned for serving (epoll change list: a write interest added and removed
 * within one loop pass costs no epoll_ctl). Use it instead of event_base_new() for the loop
 * that runs the server; NULL on failure. Free with event_base_free(). */
struct event_base *rh_httpd_base_new(void);

/* Process-wide tuning for a process that serves: glibc's malloc keeps up to
 * RH_HTTPD_HEAP_KEEP bytes of free memory at the top of the heap instead of giving it back at
 * once (M_TRIM_THRESHOLD). Connections and streams come and go by the thousand per second;
 * with the default threshold (128 KiB) the heap shrank and grew again once every 40 to 100
 * requests, each time a brk(2) and page faults on the regrown pages, which on a VM are exits
 * to the host. It never raises the peak, only keeps it. Setting it turns off glibc's sliding
 * mmap threshold, so that is set too (RH_HTTPD_MMAP_MIN): blocks below it (the ETag hasher's
 * 256 KiB buffer, request bodies, a sync round's metadata) come from the heap and are reused,
 * not mapped and faulted in afresh each time. Call once, before serving; a no-op under ASan,
 * whose allocator ignores it.
 * It also raises the soft RLIMIT_NOFILE to the hard limit, at most RH_HTTPD_NOFILE_WANT
 * (rh_httpd_raise_nofile). */
#define RH_HTTPD_HEAP_KEEP (32 << 20)
#define RH_HTTPD_MMAP_MIN  (4 << 20)
void rh_httpd_tune_process(void);

/* Raises the soft RLIMIT_NOFILE towards RH_HTTPD_NOFILE_WANT, never above the hard limit and
 * never down, and returns the soft limit in force afterwards. Debian's default soft limit is
 * 1024 (the hard one is far higher): a server sized by a quarter of it kept 256 files open,
 * and a client of 10,000 files in a shuffled order reopened nearly every one. Nothing here
 * uses select(2), so descriptors above 1023 are safe; libevent uses epoll and libcurl poll. */
unsigned long rh_httpd_raise_nofile(void);

/* Gives the free heap kept above back to the system, in every arena: for a burst that is over
 * (the mirror daemon calls it after each sync round, whose thread would otherwise keep up to
 * RH_HTTPD_HEAP_KEEP of freed transfer state until the next round). */
void rh_httpd_trim_heap(void);

/* Starts listening on the base. Returns RH_OK, RH_EINVAL (bad options), RH_EIO (root not a
 * directory), RH_ENET (bind/listen), RH_ECRYPTO (certificate/key), RH_ENOMEM. *out is set only
 * on success; the caller runs the loop and frees with rh_httpd_free() before the base.
 * Strings in opts are copied or used only here, except short_cache_paths and handler_ctx,
 * which must outlive the server. The process must ignore SIGPIPE (writes to closed peers). */
rh_err rh_httpd_new(struct event_base *base, const rh_httpd_opts *opts, rh_httpd **out,
                    rh_error *err);

/* Closes every listener and connection (in-flight responses are cut). Accepts NULL. */
void rh_httpd_free(rh_httpd *h);

/* The bound port of a listener (useful with port 0), 0 when that listener is not configured. */
int rh_httpd_port(const rh_httpd *h, rh_httpd_listener which);

/* Switch the served directory atomically: requests parsed after this call resolve paths under
 * the new root; responses already started keep their open files. RH_EIO if not a directory. */
rh_err rh_httpd_set_root(rh_httpd *h, const char *root, rh_error *err);

/* Tell the server that files were removed from or replaced in the served tree (e.g. after a
 * mirror's publish + GC): the next request drops every cached open file and opens anew. Safe to
 * call from any thread (one atomic increment). A cached file is revalidated with fstat on every
 * hit anyway (unlinked, renamed or changed files are reopened); this call also covers what
 * fstat cannot see, such as a directory renamed out of the tree. Accepts NULL. */
void rh_httpd_files_changed(rh_httpd *h);

/* Reload the TLS certificate and key (e.g. on SIGHUP); new connections use them. On error the
 * old ones stay in use. RH_ECRYPTO, RH_EINVAL (no TLS listener). */
rh_err rh_httpd_reload_tls(rh_httpd *h, const char *cert, const char *key, rh_error *err);

/* Request accessors (valid only during the handler call). */
const char *rh_httpd_req_method(const rh_httpd_req *r);   /* "GET", "POST", ... */
const char *rh_httpd_req_path(const rh_httpd_req *r);     /* raw path, no query, not decoded */
const char *rh_httpd_req_query(const rh_httpd_req *r);    /* after '?', or NULL */
/* Case-insensitive header lookup; the first value, or NULL when absent. */
const char *rh_httpd_req_header(const rh_httpd_req *r, const char *name);
const uint8_t *rh_httpd_req_body(const rh_httpd_req *r, size_t *len); /* never NULL */
int rh_httpd_req_version(const rh_httpd_req *r);          /* 10, 11 or 20 */

/* Counters since start. Statuses outside 100..599 are not counted. */
typedef struct rh_httpd_stats {
    uint64_t requests[600];      /* responses by status code */
    uint64_t bytes[600];         /* response body bytes by status code */
    uint64_t conns_accepted, conns_rejected, conns_active;
    uint64_t h2_conns, h1_conns, tls_handshake_failures;
    uint64_t h2_goaways;         /* connections torn down for protocol abuse */
    uint64_t etag_hashes;        /* files hashed for an ETag (cache misses) */
    uint64_t file_opens;         /* files opened (open-file cache misses) */
    uint64_t file_mem_loads;     /* small cached files read into memory (rh_fcache_load) */
    uint64_t file_mem_bytes;     /* body bytes copied from there instead of read from a file */
} rh_httpd_stats;

void rh_httpd_stats_get(const rh_httpd *h, rh_httpd_stats *out);

/* Appends the counters in Prometheus text format, metric names starting with prefix
 * (e.g. "rhine_mirror"): <prefix>_http_requests_total{code="200"} ... RH_ENOMEM, RH_ETOOBIG. */
rh_err rh_httpd_stats_prometheus(const rh_httpd *h, const char *prefix, rh_buf *out);

#endif
