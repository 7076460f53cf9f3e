/* httpd.c -- listeners, TLS with ALPN, cleartext h2c/HTTP/1.1 sniffing, connection lifecycle. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "server/httpd_int.h"
#include "server/outpool.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define LINGER_MS 1000u
#define RH_HTTPD_IO_CHUNK (256u * 1024) /* bytes per read/write syscall at most */
#define LINGER_MAX_BYTES (256u * 1024)

static void conn_free(rh_conn *c)
{
    rh_httpd *h = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    rh_h1_free(c->h1);
    rh_h2_free(c->h2);
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev);
    h->stats.conns_active--;
    free(c);
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

void rh_conn_linger(rh_conn *c)
{
    c->close_after_flush = true;
    c->linger = true;
}

/* Called at the end of every callback: apply what the protocol layer asked for. */
static void conn_after(rh_conn *c)
{
    struct evbuffer *out;

    if (c->close_now) {
        conn_free(c);
        return;
    }
    if (!c->close_after_flush || c->state == C_LINGER)
        return;
    bufferevent_disable(c->bev, EV_READ);
    out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) > 0)
        return;
    if (!c->linger) {
        conn_free(c);
        return;
    }
    /* Lingering close: half-close so the client reads our answer before we drop its unread
     * bytes (closing with unread input would send RST and could destroy the response).
     * Under TLS the FIN follows the last record: a dirty shutdown the client tolerates. */
    struct timeval tv = ms_tv(LINGER_MS);
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    c->state = C_LINGER;
    evtimer_add(c->timer, &tv);
    bufferevent_enable(c->bev, EV_READ);
}

static void start_protocol(rh_conn *c, bool h2)
{
    rh_httpd *h = c->srv;
    struct timeval idle = ms_tv(h->o.idle_timeout_ms);
    rh_err rc;

    bufferevent_set_timeouts(c->bev, &idle, &idle);
    rc = h2 ? rh_h2_start(c) : rh_h1_start(c);
    if (rc != RH_OK) {
        c->close_now = true;
        return;
    }
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        if (h2)
            rh_h2_on_read(c);
        else
            rh_h1_on_read(c);
    }
}

static void sniff(rh_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char head[H2_PREFACE_LEN];
    size_t n = evbuffer_get_length(in);

    if (n > H2_PREFACE_LEN)
        n = H2_PREFACE_LEN;
    if (evbuffer_copyout(in, head, n) != (ev_ssize_t)n) {
        c->close_now = true;
        return;
    }
    if (memcmp(head, H2_PREFACE, n) != 0)
        start_protocol(c, false); /* RFC 9113 3.3: anything but the preface is HTTP/1.1 */
    else if (n == H2_PREFACE_LEN)
        start_protocol(c, true);  /* h2c with prior knowledge */
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    rh_conn *c = arg;
    switch (c->state) {
    case C_SNIFF:
        sniff(c);
        break;
    case C_H1:
        rh_h1_on_read(c);
        break;
    case C_H2:
        rh_h2_on_read(c);
        break;
    case C_LINGER: {
        struct evbuffer *in = bufferevent_get_input(bev);
        c->lingered += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (c->lingered > LINGER_MAX_BYTES)
            c->close_now = true;
        break;
    }
    case C_HANDSHAKE:
        break;
    }
    conn_after(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    rh_conn *c = arg;
    (void)bev;
    if (c->state == C_H1 && !c->close_now)
        rh_h1_on_write(c);
    else if (c->state == C_H2 && !c->close_now)
        rh_h2_on_write(c);
    conn_after(c);
}

static void tls_connected(rh_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;

    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    start_protocol(c, alen == 2 && memcmp(alpn, "h2", 2) == 0);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    rh_conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == C_HANDSHAKE)
            tls_connected(c);
    } else if (what & BEV_EVENT_TIMEOUT) {
        bool keep = false;
        if ((what & BEV_EVENT_READING) && c->state == C_H1)
            keep = rh_h1_on_timeout(c);
        else if ((what & BEV_EVENT_READING) && c->state == C_H2)
            keep = rh_h2_on_timeout(c);
        if (keep && !c->close_after_flush && !c->close_now)
            bufferevent_enable(bev, EV_READ);
        else if (!keep)
            c->close_now = true;
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->state == C_HANDSHAKE)
            c->srv->stats.tls_handshake_failures++;
        if ((what & BEV_EVENT_ERROR) || c->state == C_LINGER ||
            evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            c->close_now = true;
        } else {
            c->close_after_flush = true; /* the client half-closed: finish our answers */
            c->linger = false;
        }
    }
    conn_after(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    rh_conn *c = arg;
    (void)fd;
    (void)what;
    /* The h1 request-head deadline or the end of a lingering close. */
    c->close_now = true;
    conn_after(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    rh_httpd *h = arg;
    bool tls = l == h->l_tls;
    rh_conn *c = NULL;
    int one = 1;
    struct timeval hs = ms_tv(h->o.handshake_timeout_ms);
    (void)sa;
    (void)salen;

    if (h->stats.conns_active >= h->o.max_conns) {
        h->stats.conns_rejected++;
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->srv = h;
    c->tls = tls;
    c->timer = evtimer_new(h->base, timer_cb, c);
    if (c->timer == NULL)
        goto fail;
    if (tls) {
        SSL *ssl = SSL_new(h->ssl_ctx);
        if (ssl == NULL)
            goto fail;
        c->bev = bufferevent_openssl_socket_new(h->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->bev == NULL) {
            SSL_free(ssl);
            goto fail;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->state = C_HANDSHAKE;
    } else {
        c->bev = bufferevent_socket_new(h->base, fd,
                                        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->bev == NULL)
            goto fail;
        c->state = C_SNIFF;
    }
    /* libevent reads/writes 16 KiB per callback by default: far too little for files. */
    bufferevent_set_max_single_read(c->bev, RH_HTTPD_IO_CHUNK);
    bufferevent_set_max_single_write(c->bev, RH_HTTPD_IO_CHUNK);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, RH_HTTPD_OUT_HIGH / 2, 0);
    bufferevent_set_timeouts(c->bev, &hs, &hs);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->stats.conns_active++;
    h->stats.conns_accepted++;
    return;
fail:
    if (c != NULL && c->timer != NULL)
        event_free(c->timer);
    if (c == NULL || c->bev == NULL)
        evutil_closesocket(fd);
    free(c);
    h->stats.conns_rejected++;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char protos[] = "\x02h2\x08http/1.1";
    unsigned char *sel = NULL;
    (void)ssl;
    (void)arg;
    /* Server preference: h2 first, then http/1.1; anything else is answered without ALPN. */
    if (SSL_select_next_proto(&sel, outlen, protos, sizeof(protos) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static rh_err make_ssl_ctx(const char *cert, const char *key, SSL_CTX **out, rh_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    unsigned long e;
    char msg[256];

    if (ctx == NULL)
        return rh_fail(err, RH_ECRYPTO, "httpd: SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        e = ERR_get_error();
        ERR_error_string_n(e, msg, sizeof(msg));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return rh_fail(err, RH_ECRYPTO, "%s: cannot load certificate: %s", cert, msg);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        e = ERR_get_error();
        ERR_error_string_n(e, msg, sizeof(msg));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return rh_fail(err, RH_ECRYPTO, "%s: cannot load key matching %s: %s", key, cert, msg);
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    *out = ctx;
    return RH_OK;
}

static rh_err open_root(const char *root, int *fd_out, rh_error *err)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rh_fail(err, RH_EIO, "%s: cannot open served root: %s", root, strerror(errno));
    *fd_out = fd;
    return RH_OK;
}

/* "1.2.3.4:80" or "[::1]:80"; port 0 allowed (any free port). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, int *len)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    const char *h0 = addr;
    size_t hl;
    char *end;
    unsigned long port;

    if (colon == NULL || colon[1] == '\0')
        return -1;
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535)
        return -1;
    hl = (size_t)(colon - addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        h0 = addr + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, h0, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        *len = (int)sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *len = (int)sizeof(struct sockaddr_in6);
        return 0;
    }
    return -1;
}

static rh_err listen_on(rh_httpd *h, const char *addr, struct evconnlistener **l, int *port,
                        rh_error *err)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    socklen_t sl = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (parse_addr(addr, &ss, &len) != 0)
        return rh_fail(err, RH_EINVAL, "httpd: listen address \"%s\": expected ADDR:PORT", addr);
    *l = evconnlistener_new_bind(h->base, accept_cb, h,
                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                 511, (struct sockaddr *)&ss, len);
    if (*l == NULL)
        return rh_fail(err, RH_ENET, "httpd: cannot listen on %s: %s", addr, strerror(errno));
    if (getsockname(evconnlistener_get_fd(*l), (struct sockaddr *)&ss, &sl) != 0)
        return rh_fail(err, RH_ENET, "httpd: getsockname on %s: %s", addr, strerror(errno));
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return RH_OK;
}

void rh_httpd_tune_process(void)
{
    /* Each returns 0 when refused (another allocator): nothing is lost. */
    (void)mallopt(M_MMAP_THRESHOLD, RH_HTTPD_MMAP_MIN);
    (void)mallopt(M_TRIM_THRESHOLD, RH_HTTPD_HEAP_KEEP);
}

void rh_httpd_trim_heap(void)
{
    (void)malloc_trim(0);
}

struct event_base *rh_httpd_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b = NULL;
    if (cfg == NULL)
        return NULL;
    (void)event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return b != NULL ? b : event_base_new();
}

/* RH_HTTPD_FD_CACHE, but never more than a quarter of the descriptor limit: connections and
 * in-flight uncached files need the rest. */
static size_t fd_cache_size(void)
{
    struct rlimit rl;
    size_t n = RH_HTTPD_FD_CACHE;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < n)
        n = (size_t)(rl.rlim_cur / 4);
    return n > 0 ? n : 1;
}

#define DEFAULT(field, value) \
    do {                      \
        if (h->o.field == 0)  \
            h->o.field = (value); \
    } while (0)

rh_err rh_httpd_new(struct event_base *base, const rh_httpd_opts *opts, rh_httpd **out,
                    rh_error *err)
{
    rh_httpd *h = NULL;
    rh_err rc;

    if (base == NULL || opts == NULL || out == NULL || opts->root == NULL)
        return rh_fail(err, RH_EINVAL, "httpd: base, options and root are required");
    if (opts->listen_tls == NULL && opts->listen_clear == NULL)
        return rh_fail(err, RH_EINVAL, "httpd: no listener configured");
    if (opts->listen_tls != NULL && (opts->tls_cert == NULL || opts->tls_key == NULL))
        return rh_fail(err, RH_EINVAL, "httpd: TLS listener %s needs a certificate and key",
                       opts->listen_tls);
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return rh_fail(err, RH_ENOMEM, "httpd: out of memory");
    h->base = base;
    h->o = *opts;
    h->rootfd = -1;
    DEFAULT(max_streams, RH_HTTPD_MAX_STREAMS);
    DEFAULT(max_header_bytes, RH_HTTPD_MAX_HEADER_BYTES);
    DEFAULT(max_conns, RH_HTTPD_MAX_CONNS);
    DEFAULT(max_body_bytes, RH_HTTPD_MAX_BODY_BYTES);
    DEFAULT(max_uri, RH_HTTPD_MAX_URI);
    DEFAULT(idle_timeout_ms, RH_HTTPD_IDLE_TIMEOUT_MS);
    DEFAULT(handshake_timeout_ms, RH_HTTPD_HANDSHAKE_MS);
    DEFAULT(rst_burst, RH_HTTPD_RST_BURST);
    DEFAULT(rst_rate, RH_HTTPD_RST_RATE);
    DEFAULT(short_max_age, RH_HTTPD_SHORT_MAX_AGE);
    if (h->o.max_uri > RH_HTTPD_MAX_URI)
        h->o.max_uri = RH_HTTPD_MAX_URI; /* the decode buffer is sized by the constant */
    snprintf(h->short_cc, sizeof(h->short_cc), "public, max-age=%u", h->o.short_max_age);
    h->o.root = NULL; /* not kept: the caller's string may go away */
    h->o.listen_tls = h->o.listen_clear = h->o.tls_cert = h->o.tls_key = NULL;
    h->etags = rh_etag_cache_new(RH_HTTPD_ETAG_CACHE);
    if (h->etags == NULL) {
        rc = rh_fail(err, RH_ENOMEM, "httpd: out of memory");
        goto out;
    }
    if ((h->files = rh_fcache_new(fd_cache_size())) == NULL ||
        (h->opool = rh_outpool_new(RH_OUTPOOL_KEEP)) == NULL) {
        rc = rh_fail(err, RH_ENOMEM, "httpd: out of memory");
        goto out;
    }
    atomic_init(&h->files_gen, 0);
    if ((rc = open_root(opts->root, &h->rootfd, err)) != RH_OK)
        goto out;
    if (opts->listen_tls != NULL) {
        if ((rc = make_ssl_ctx(opts->tls_cert, opts->tls_key, &h->ssl_ctx, err)) != RH_OK)
            goto out;
        if ((rc = listen_on(h, opts->listen_tls, &h->l_tls, &h->port_tls, err)) != RH_OK)
            goto out;
    }
    if (opts->listen_clear != NULL &&
        (rc = listen_on(h, opts->listen_clear, &h->l_clear, &h->port_clear, err)) != RH_OK)
        goto out;
    *out = h;
    h = NULL;
    rc = RH_OK;
out:
    rh_httpd_free(h);
    return rc;
}

void rh_httpd_free(rh_httpd *h)
{
    if (h == NULL)
        return;
    while (h->conns != NULL)
        conn_free(h->conns);
    if (h->l_tls)
        evconnlistener_free(h->l_tls);
    if (h->l_clear)
        evconnlistener_free(h->l_clear);
    SSL_CTX_free(h->ssl_ctx);
    if (h->rootfd >= 0)
        close(h->rootfd);
    rh_etag_cache_free(h->etags);
    rh_fcache_free(h->files); /* after the connections: responses released their entries */
    rh_outpool_free(h->opool); /* chunks still queued in a closing bufferevent outlive it */
    free(h);
}

int rh_httpd_port(const rh_httpd *h, rh_httpd_listener which)
{
    return which == RH_HTTPD_TLS ? h->port_tls : h->port_clear;
}

rh_err rh_httpd_set_root(rh_httpd *h, const char *root, rh_error *err)
{
    int fd = -1;
    rh_err rc = open_root(root, &fd, err);
    if (rc != RH_OK)
        return rc;
    /* One loop thread: the swap is atomic for requests; open files keep their old root. */
    close(h->rootfd);
    h->rootfd = fd;
    rh_fcache_flush(h->files); /* cached files belong to the old tree */
    return RH_OK;
}

void rh_httpd_files_changed(rh_httpd *h)
{
    if (h != NULL)
        atomic_fetch_add_explicit(&h->files_gen, 1, memory_order_release);
}

rh_err rh_httpd_reload_tls(rh_httpd *h, const char *cert, const char *key, rh_error *err)
{
    SSL_CTX *ctx;
    rh_err rc;
    if (h->l_tls == NULL)
        return rh_fail(err, RH_EINVAL, "httpd: no TLS listener to reload");
    if ((rc = make_ssl_ctx(cert, key, &ctx, err)) != RH_OK)
        return rc;
    SSL_CTX_free(h->ssl_ctx); /* live SSL objects hold their own reference */
    h->ssl_ctx = ctx;
    return RH_OK;
}

const char *rh_httpd_date(rh_httpd *h)
{
    time_t now = time(NULL);
    if (now != h->date_t) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(h->date, sizeof(h->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        h->date_t = now;
    }
    return h->date;
}

void rh_httpd_count(rh_httpd *h, int status, uint64_t bytes)
{
    if (status < 100 || status > 599)
        return;
    h->stats.requests[status]++;
    h->stats.bytes[status] += bytes;
}

void rh_httpd_stats_get(const rh_httpd *h, rh_httpd_stats *out)
{
    *out = h->stats;
}

rh_err rh_httpd_stats_prometheus(const rh_httpd *h, const char *prefix, rh_buf *out)
{
    const rh_httpd_stats *s = &h->stats;
    rh_err rc;

    rc = rh_buf_appendf(out, "# HELP %s_http_requests_total HTTP responses by status code.\n"
                             "# TYPE %s_http_requests_total counter\n", prefix, prefix);
    for (int i = 100; rc == RH_OK && i < 600; i++)
        if (s->requests[i])
            rc = rh_buf_appendf(out, "%s_http_requests_total{code=\"%d\"} %" PRIu64 "\n",
                                prefix, i, s->requests[i]);
    if (rc == RH_OK)
        rc = rh_buf_appendf(out, "# HELP %s_http_response_bytes_total Body bytes by status.\n"
                                 "# TYPE %s_http_response_bytes_total counter\n", prefix, prefix);
    for (int i = 100; rc == RH_OK && i < 600; i++)
        if (s->requests[i])
            rc = rh_buf_appendf(out, "%s_http_response_bytes_total{code=\"%d\"} %" PRIu64 "\n",
                                prefix, i, s->bytes[i]);
    if (rc == RH_OK)
        rc = rh_buf_appendf(
            out,
            "# TYPE %s_http_connections_accepted_total counter\n"
            "%s_http_connections_accepted_total %" PRIu64 "\n"
            "# TYPE %s_http_connections_rejected_total counter\n"
            "%s_http_connections_rejected_total %" PRIu64 "\n"
            "# TYPE %s_http_connections_active gauge\n"
            "%s_http_connections_active %" PRIu64 "\n"
            "# TYPE %s_http_h2_goaways_total counter\n"
            "%s_http_h2_goaways_total %" PRIu64 "\n"
            "# TYPE %s_http_tls_handshake_failures_total counter\n"
            "%s_http_tls_handshake_failures_total %" PRIu64 "\n",
            prefix, prefix, s->conns_accepted, prefix, prefix, s->conns_rejected, prefix,
            prefix, s->conns_active, prefix, prefix, s->h2_goaways, prefix, prefix,
            s->tls_handshake_failures);
    if (rc == RH_OK)
        rc = rh_buf_appendf(out,
                            "# HELP %s_http_output_chunks Output chunks (64 KiB) being filled or "
                            "queued for clients.\n"
                            "# TYPE %s_http_output_chunks gauge\n"
                            "%s_http_output_chunks %zu\n",
                            prefix, prefix, prefix, rh_outpool_live(h->opool));
    if (rc == RH_OK)
        rc = rh_buf_appendf(out,
                            "# HELP %s_http_protocol_connections_total Connections by protocol.\n"
                            "# TYPE %s_http_protocol_connections_total counter\n"
                            "%s_http_protocol_connections_total{protocol=\"h2\"} %" PRIu64 "\n"
                            "%s_http_protocol_connections_total{protocol=\"http/1.1\"} %" PRIu64
                            "\n",
                            prefix, prefix, prefix, s->h2_conns, prefix, s->h1_conns);
    return rc;
}
