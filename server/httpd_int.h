/* httpd_int.h -- internals shared by the server's files: connections, requests, responses. */
#ifndef RH_HTTPD_INT_H
#define RH_HTTPD_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "manifest/buf.h"
#include "server/etag.h"
#include "server/fcache.h"
#include "server/httpd.h"

/* One request as received (either protocol). Header names are lower-cased. */
struct rh_httpd_req {
    char method[24];
    rh_buf target;              /* raw request-target, bounded by max_uri */
    rh_buf hstore;              /* "name\0value\0" pairs, bounded by max_header_bytes */
    size_t name_off[RH_HTTPD_MAX_HEADERS];
    size_t val_off[RH_HTTPD_MAX_HEADERS];
    size_t nhdrs;
    size_t hdr_bytes;           /* RFC 9113 6.5.2 accounting: name + value + 32 each */
    rh_buf body;                /* bounded by max_body_bytes */
    char *path;                 /* target up to '?', NUL-terminated (owned, kept by reset) */
    size_t path_cap;            /* bytes allocated at path */
    const char *query;          /* points into path's allocation, or NULL */
    int version;                /* 10, 11, 20 */
    bool head;                  /* method is HEAD */
    bool copies_body;           /* a file body is copied out (TLS or h2), not sendfile'd: a
                                   small file is then worth holding in memory */
};

void rh_req_init(rh_httpd_req *r, const rh_httpd *h);
void rh_req_cleanup(rh_httpd_req *r);
void rh_req_reset(rh_httpd_req *r);
/* Adds one header (name lower-cased). RH_ETOOBIG past the count or byte limit. */
rh_err rh_req_add_header(rh_httpd_req *r, const char *name, size_t nlen, const char *value,
                         size_t vlen);
/* Splits target into path and query. RH_ENOMEM. */
rh_err rh_req_finish(rh_httpd_req *r);

/* A response ready to be written by either protocol. */
typedef struct rh_resp {
    int status;
    const char *content_type;    /* NULL: no Content-Type */
    const char *cache_control;   /* NULL: none */
    const char *allow;           /* NULL: none */
    char etag[72];               /* quoted, or "" */
    char content_range[96];      /* value, or "" */
    bool accept_ranges;
    uint64_t content_length;     /* header value (HEAD: of the would-be body) */
    bool has_body;               /* false for HEAD, 304, 1xx */
    int fd;                      /* file body, -1 when none */
    rh_fent *fent;               /* when fd is a cached file: our reference, else NULL */
    uint64_t file_off;
    uint8_t *mem;                /* memory body (owned), NULL when none */
    size_t mem_len;
    bool close;                  /* h1: close the connection after this response */
} rh_resp;

void rh_resp_cleanup(rh_resp *r); /* closes fd (or releases fent), frees mem */

/* Decide the response to a complete request: the handler first, then the file server.
 * Counts the response in the stats. Never fails: errors become 4xx/5xx responses. */
void rh_serve(rh_httpd *h, const rh_httpd_req *req, rh_resp *out);

/* A short text error response (counted in the stats); head suppresses the body. */
void rh_resp_error(rh_httpd *h, rh_resp *out, int status, bool head, bool close);

/* The Date header value for now (cached per second). */
const char *rh_httpd_date(rh_httpd *h);

typedef enum conn_state { C_HANDSHAKE, C_SNIFF, C_H1, C_H2, C_LINGER } conn_state;

typedef struct rh_h1 rh_h1;
typedef struct rh_h2 rh_h2;

typedef struct rh_conn {
    rh_httpd *srv;
    struct rh_conn *prev, *next;
    evutil_socket_t fd;
    SSL *ssl;                    /* NULL: cleartext */
    struct event *rev;           /* readable (persistent, with c->timeout) while reading */
    struct event *wev;           /* writable (persistent, with c->timeout) while output waits */
    struct evbuffer *in, *out;
    struct timeval timeout;      /* the handshake's, then the idle timeout */
    struct event *timer;         /* h1 header timeout, linger timeout */
    struct event *more;          /* another pass after the next poll (httpd.c: edge-triggered) */
    bool reading;                /* rev is added */
    bool writing;                /* wev is added */
    bool wblocked;               /* the socket was full: wait for wev */
    bool io_wants_write;         /* an SSL handshake or read must write first */
    bool peer_eof;               /* the client half-closed with requests still to answer */
    conn_state state;
    bool close_now;              /* free at the end of the current callback */
    bool close_after_flush;      /* stop reading; free once the output is written */
    bool linger;                 /* with close_after_flush: half-close, drain, then free */
    size_t lingered;             /* bytes discarded while lingering */
    rh_h1 *h1;
    rh_h2 *h2;
} rh_conn;

struct rh_httpd {
    struct event_base *base;
    rh_httpd_opts o;             /* defaults filled in */
    int rootfd;
    SSL_CTX *ssl_ctx;
    struct evconnlistener *l_tls, *l_clear;
    int port_tls, port_clear;
    rh_etag_cache *etags;
    rh_fcache *files;            /* open HASH.name files */
    struct rh_outpool *opool;    /* h2 output chunks */
    atomic_ulong files_gen;      /* bumped by rh_httpd_files_changed (any thread) */
    unsigned long files_gen_seen; /* the generation the cache holds (loop thread) */
    rh_httpd_stats stats;
    rh_conn *conns;
    char short_cc[48];           /* "public, max-age=N" */
    time_t date_t;
    char date[40];
};

void rh_httpd_count(rh_httpd *h, int status, uint64_t bytes);

/* Protocol entry points (h1.c, h2.c), driven by httpd.c. Each may set c->close_now or
 * c->close_after_flush instead of freeing the connection. */
rh_err rh_h1_start(rh_conn *c);
void rh_h1_on_read(rh_conn *c);
void rh_h1_on_write(rh_conn *c);      /* output fell below the low watermark */
bool rh_h1_on_timeout(rh_conn *c);    /* idle timeout: true to keep the connection */
void rh_h1_free(rh_h1 *p);

rh_err rh_h2_start(rh_conn *c);
void rh_h2_on_read(rh_conn *c);
void rh_h2_on_write(rh_conn *c);
bool rh_h2_on_timeout(rh_conn *c);
void rh_h2_free(rh_h2 *p);

/* Close gracefully: after the output drains, half-close and discard input briefly. */
void rh_conn_linger(rh_conn *c);

/* Reading on or off (backpressure: the protocol stops reading while its output is full). */
void rh_conn_read(rh_conn *c, bool on);

#endif
