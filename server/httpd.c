/* httpd.c -- listeners, TLS with ALPN, cleartext h2c/HTTP/1.1 sniffing, connection I/O. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "server/httpd_int.h"
#include "server/outpool.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define LINGER_MS 1000u
#define RH_HTTPD_IO_CHUNK (256u * 1024) /* bytes read or written per connection per event */
#define RH_HTTPD_READ_SPACE (16u * 1024 + 256) /* one TLS record's plaintext, and then some */
#define RH_HTTPD_OUT_LOW (RH_HTTPD_OUT_HIGH / 2) /* output at or below: ask the protocol for more */
#define LINGER_MAX_BYTES (256u * 1024)

/*
 * Connection I/O. Each connection owns its socket, its SSL (NULL for cleartext), an input and
 * an output evbuffer, and two persistent events: readable (with the handshake, then idle,
 * timeout) and writable (only while output waits for room in a full socket, with the same
 * timeout for a stalled reader). Output the protocol queues is written at the end of the same
 * callback, so a response normally leaves without a trip through the event loop and without
 * touching epoll; only a full socket arms the write event. TLS reads with read-ahead: one
 * read(2) fetches every record the socket holds (libevent's OpenSSL bufferevent read each
 * record in two and toggled write interest on every drain).
 *
 * Both events are edge-triggered (EV_ET), as in nginx. Level-triggered epoll puts a socket it
 * reported back on its ready list at once, so a connection served in one pass was polled in
 * the next ahead of those that became ready while the pass ran: under h2load's 50 connections
 * some were served up to 13% more often than others, and the slowest requests waited about
 * twice the median. Edge-triggered, connections are served in the order their requests came.
 * The price is that a wake-up is never repeated, so three rules keep a connection from
 * stalling with bytes nobody will announce again:
 *   - a read stops only at "would block" (or a cleartext read shorter than asked, which
 *     emptied the socket), never because OpenSSL's buffer ran dry;
 *   - input or output left by the per-callback budget (RH_HTTPD_IO_CHUNK) gets another pass
 *     after the next poll (c->more), and so does the socket when reading is turned back on;
 *   - the write event waits only for a socket that was full (or an SSL call that must write).
 */

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
    if (c->more)
        event_free(c->more);
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->in)
        evbuffer_free(c->in);
    if (c->out)
        evbuffer_free(c->out); /* returns queued output chunks to their pool */
    SSL_free(c->ssl);          /* no close_notify: like a dirty shutdown, which clients take */
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
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

/* Another pass for c after the next poll (a zero timer, not event_active: a connection with
 * endless input or output would otherwise chain passes without the loop polling the others). */
static void more_pass(rh_conn *c)
{
    struct timeval now = {0, 0};
    evtimer_add(c->more, &now);
}

void rh_conn_read(rh_conn *c, bool on)
{
    if (on && c->peer_eof)
        return; /* nothing more will come */
    if (on) {
        if (!c->reading && event_add(c->rev, &c->timeout) == 0) {
            c->reading = true;
            /* What arrived while reading was off may have been announced already, and
             * OpenSSL's read-ahead may hold records the socket no longer signals. (While
             * reading is on, a read stops only at "would block", with a pass scheduled, or
             * for the write event: SSL wants to write.) */
            more_pass(c);
        }
    } else if (c->reading) {
        event_del(c->rev);
        c->reading = false;
    }
}

/* The handshake, then the idle timeout, for both directions. */
static void conn_set_timeout(rh_conn *c, unsigned ms)
{
    c->timeout = ms_tv(ms);
    if (c->reading)
        event_add(c->rev, &c->timeout);
    if (c->writing)
        event_add(c->wev, &c->timeout);
}

static void set_write_event(rh_conn *c, bool on)
{
    if (on && !c->writing) {
        if (event_add(c->wev, &c->timeout) == 0)
            c->writing = true;
    } else if (!on && c->writing) {
        event_del(c->wev);
        c->writing = false;
    }
}

typedef enum { IO_OK, IO_EOF, IO_ERR } io_status;

/* An SSL call's failure as an io_status (IO_OK: try again when the socket is ready). */
static io_status ssl_status(rh_conn *c, int r, bool *want_write)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return IO_OK;
    case SSL_ERROR_WANT_WRITE:
        *want_write = true;
        return IO_OK;
    case SSL_ERROR_ZERO_RETURN:
        return IO_EOF; /* close_notify, or a bare EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
    default:
        ERR_clear_error(); /* the error queue is per thread: leave it empty for the next */
        return IO_ERR;
    }
}

/* Reads what the socket holds into c->in, at most RH_HTTPD_IO_CHUNK bytes. */
static io_status conn_fill(rh_conn *c)
{
    size_t total = 0;

    while (total < RH_HTTPD_IO_CHUNK) {
        struct evbuffer_iovec v;
        size_t room;
        int n;
        if (evbuffer_reserve_space(c->in, RH_HTTPD_READ_SPACE, &v, 1) < 1)
            return IO_ERR;
        if (v.iov_len > RH_HTTPD_READ_SPACE * 4)
            v.iov_len = RH_HTTPD_READ_SPACE * 4;
        room = v.iov_len;
        if (c->ssl != NULL) {
            n = SSL_read(c->ssl, v.iov_base, (int)v.iov_len);
            if (n <= 0) {
                bool ww = false;
                io_status st = ssl_status(c, n, &ww);
                if (ww)
                    c->io_wants_write = true;
                return st;
            }
        } else {
            ssize_t r = read(c->fd, v.iov_base, v.iov_len);
            if (r == 0)
                return IO_EOF;
            if (r < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? IO_OK
                                                                                : IO_ERR;
            n = (int)r;
        }
        v.iov_len = (size_t)n;
        if (evbuffer_commit_space(c->in, &v, 1) != 0)
            return IO_ERR;
        total += (size_t)n;
        /* A cleartext read shorter than asked emptied the socket. OpenSSL's read-ahead
         * buffer running dry says nothing about the socket: the next SSL_read finds out. */
        if (c->ssl == NULL && (size_t)n < room)
            return IO_OK;
    }
    more_pass(c); /* the budget is spent: the rest after the next poll */
    return IO_OK;
}

/* Writes c->out until it is empty or the socket is full (c->wblocked). -1: connection dead. */
static int conn_flush(rh_conn *c)
{
    size_t sent = 0;

    while (evbuffer_get_length(c->out) > 0 && sent < RH_HTTPD_IO_CHUNK) {
        if (c->ssl == NULL) {
            int n;
            errno = 0;
            n = evbuffer_write_atmost(c->out, c->fd, RH_HTTPD_IO_CHUNK - sent);
            if (n <= 0) {
                /* 0 is also sendfile(2) at the end of a file that shrank while being sent:
                 * the body promised cannot be completed, so the connection ends (waiting for
                 * the socket would spin on a writable socket forever). */
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    c->wblocked = true;
                    return 0;
                }
                return -1;
            }
            sent += (size_t)n;
            continue;
        }
        struct evbuffer_iovec v;
        size_t len;
        int n;
        bool ww = false;
        if (evbuffer_peek(c->out, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return -1; /* (never: queued bytes are always in a non-empty first chain) */
        /* The whole first chain (an output chunk is 64 KiB: four records in one call). After
         * WANT_WRITE the same bytes come first again, and at least as many of them, as
         * OpenSSL requires of a retry. */
        len = v.iov_len < INT_MAX ? v.iov_len : INT_MAX;
        n = SSL_write(c->ssl, v.iov_base, (int)len);
        if (n > 0) {
            evbuffer_drain(c->out, (size_t)n);
            sent += (size_t)n;
            continue;
        }
        /* WANT_READ (a renegotiation: refused) or an error ends the connection. */
        if (ssl_status(c, n, &ww) == IO_OK && ww) {
            c->wblocked = true;
            return 0;
        }
        return -1;
    }
    return 0;
}

static void dispatch_write(rh_conn *c)
{
    if (c->state == C_H1)
        rh_h1_on_write(c);
    else if (c->state == C_H2)
        rh_h2_on_write(c);
}

/* Called at the end of every callback: write what the protocol queued (and what it queues
 * once the output drains), then apply what it asked for. */
static void conn_after(rh_conn *c)
{
    /* One flush per callback, at most RH_HTTPD_IO_CHUNK: what the protocol queues once the
     * output drained waits for the next pass, so a large download takes its turn with the
     * other connections (writing on while the socket took more measured about 5% more CPU
     * per byte for large files, on this VM). */
    if (!c->close_now && !c->wblocked && evbuffer_get_length(c->out) > 0) {
        size_t before = evbuffer_get_length(c->out);
        if (conn_flush(c) != 0)
            c->close_now = true;
        else if (evbuffer_get_length(c->out) < before &&
                 evbuffer_get_length(c->out) <= RH_HTTPD_OUT_LOW)
            dispatch_write(c); /* may queue more: the write event sends it */
    }
    if (c->close_now) {
        conn_free(c);
        return;
    }
    /* Writable matters while a full socket holds output back and while an SSL call waits to
     * write. Output left by the budget, or queued by the protocol after the flush, goes out
     * in the next pass. */
    set_write_event(c, (c->wblocked && evbuffer_get_length(c->out) > 0) || c->io_wants_write);
    if (!c->wblocked && evbuffer_get_length(c->out) > 0)
        more_pass(c);
    if (!c->close_after_flush || c->state == C_LINGER)
        return;
    rh_conn_read(c, false);
    if (evbuffer_get_length(c->out) > 0)
        return;
    if (!c->linger) {
        conn_free(c);
        return;
    }
    /* Lingering close: half-close so the client reads our answer before we drop its unread
     * bytes (closing with unread input would send RST and could destroy the response).
     * Under TLS the FIN follows the last record: a dirty shutdown the client tolerates. */
    struct timeval tv = ms_tv(LINGER_MS);
    shutdown(c->fd, SHUT_WR);
    c->state = C_LINGER;
    evtimer_add(c->timer, &tv);
    rh_conn_read(c, true);
}

static void start_protocol(rh_conn *c, bool h2)
{
    rh_err rc;

    conn_set_timeout(c, c->srv->o.idle_timeout_ms);
    rc = h2 ? rh_h2_start(c) : rh_h1_start(c);
    if (rc != RH_OK) {
        c->close_now = true;
        return;
    }
    if (evbuffer_get_length(c->in) > 0) {
        if (h2)
            rh_h2_on_read(c);
        else
            rh_h1_on_read(c);
    }
}

static void sniff(rh_conn *c)
{
    char head[H2_PREFACE_LEN];
    size_t n = evbuffer_get_length(c->in);

    if (n > H2_PREFACE_LEN)
        n = H2_PREFACE_LEN;
    if (evbuffer_copyout(c->in, head, n) != (ev_ssize_t)n) {
        c->close_now = true;
        return;
    }
    if (memcmp(head, H2_PREFACE, n) != 0)
        start_protocol(c, false); /* RFC 9113 3.3: anything but the preface is HTTP/1.1 */
    else if (n == H2_PREFACE_LEN)
        start_protocol(c, true);  /* h2c with prior knowledge */
}

static void dispatch_read(rh_conn *c)
{
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
    case C_LINGER:
        c->lingered += evbuffer_get_length(c->in);
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
        if (c->lingered > LINGER_MAX_BYTES)
            c->close_now = true;
        break;
    case C_HANDSHAKE:
        break;
    }
}

static void tls_connected(rh_conn *c)
{
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;

    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    start_protocol(c, alen == 2 && memcmp(alpn, "h2", 2) == 0);
    /* The client's first requests may already sit in the read-ahead buffer. */
    if (!c->close_now && c->reading)
        event_active(c->rev, EV_READ, 0);
}

static void handshake(rh_conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    bool ww = false;

    if (r == 1) {
        tls_connected(c);
        return;
    }
    if (ssl_status(c, r, &ww) == IO_OK) {
        c->io_wants_write = ww;
        return;
    }
    c->srv->stats.tls_handshake_failures++;
    c->close_now = true;
}

/* The peer closed its side (or the connection failed). */
static void on_eof(rh_conn *c, io_status st)
{
    if (c->state == C_HANDSHAKE)
        c->srv->stats.tls_handshake_failures++;
    if (st == IO_EOF && c->state == C_H1 && evbuffer_get_length(c->in) > 0) {
        /* Pipelined requests still unparsed (HTTP/1.1 paused for its output): answer them,
         * then close (rh_h1_on_read). */
        c->peer_eof = true;
        rh_conn_read(c, false);
        return;
    }
    if (st == IO_ERR || c->state == C_LINGER || evbuffer_get_length(c->out) == 0) {
        c->close_now = true;
    } else {
        c->close_after_flush = true; /* the client half-closed: finish our answers */
        c->linger = false;
    }
}

/* No input for the idle timeout (or the handshake timeout). */
static void on_read_timeout(rh_conn *c)
{
    bool keep = false;
    if (c->state == C_H1)
        keep = rh_h1_on_timeout(c);
    else if (c->state == C_H2)
        keep = rh_h2_on_timeout(c);
    if (!keep)
        c->close_now = true;
}

static void read_ready(rh_conn *c)
{
    io_status st;

    if (c->state == C_HANDSHAKE) {
        handshake(c);
        return;
    }
    st = conn_fill(c);
    if (evbuffer_get_length(c->in) > 0)
        dispatch_read(c);
    if (st != IO_OK && !c->close_now)
        on_eof(c, st);
}

static void rev_cb(evutil_socket_t fd, short what, void *arg)
{
    rh_conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT)
        on_read_timeout(c);
    else
        read_ready(c);
    conn_after(c);
}

static void wev_cb(evutil_socket_t fd, short what, void *arg)
{
    rh_conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        c->close_now = true; /* the client stopped reading */
    } else {
        c->wblocked = false;
        if (c->io_wants_write) {
            c->io_wants_write = false;
            read_ready(c); /* the handshake or a read that had to write first */
        }
    }
    conn_after(c);
}

static void more_cb(evutil_socket_t fd, short what, void *arg)
{
    rh_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->reading)
        read_ready(c); /* input left by the budget, or reading turned back on */
    conn_after(c); /* output left by the budget */
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
    (void)sa;
    (void)salen;

    if (h->stats.conns_active >= h->o.max_conns) {
        h->stats.conns_rejected++;
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        h->stats.conns_rejected++;
        return;
    }
    c->srv = h;
    c->fd = fd;
    c->timeout = ms_tv(h->o.handshake_timeout_ms);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->stats.conns_active++;
    c->timer = evtimer_new(h->base, timer_cb, c);
    c->more = evtimer_new(h->base, more_cb, c);
    c->rev = event_new(h->base, fd, EV_READ | EV_PERSIST | EV_ET, rev_cb, c);
    c->wev = event_new(h->base, fd, EV_WRITE | EV_PERSIST | EV_ET, wev_cb, c);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    if (c->timer == NULL || c->more == NULL || c->rev == NULL || c->wev == NULL || c->in == NULL ||
        c->out == NULL)
        goto fail;
    if (tls) {
        if ((c->ssl = SSL_new(h->ssl_ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1)
            goto fail;
        SSL_set_accept_state(c->ssl);
        c->state = C_HANDSHAKE;
    } else {
        /* Cleartext file bodies go out with sendfile. */
        evbuffer_set_flags(c->out, EVBUFFER_FLAG_DRAINS_TO_FD);
        c->state = C_SNIFF;
    }
    rh_conn_read(c, true);
    if (!c->reading)
        goto fail;
    h->stats.conns_accepted++;
    return;
fail:
    ERR_clear_error();
    conn_free(c); /* closes fd */
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
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Not SSL_MODE_ENABLE_PARTIAL_WRITE: with it each record is its own call, and with
     * RELEASE_BUFFERS its own write buffer allocation (8% more CPU for large files). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1); /* one read(2) for all the records the socket holds */
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
    (void)rh_httpd_raise_nofile();
}

unsigned long rh_httpd_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < RH_HTTPD_NOFILE_WANT) {
        rlim_t want = RH_HTTPD_NOFILE_WANT;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
            want = rl.rlim_max;
        if (want > rl.rlim_cur) {
            struct rlimit nl = {.rlim_cur = want, .rlim_max = rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
                rl.rlim_cur = want;
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? ULONG_MAX : (unsigned long)rl.rlim_cur;
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
    rh_fcache_set_memory(h->files, RH_HTTPD_MEM_CACHE, RH_HTTPD_MEM_FILE_MAX);
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
    rh_outpool_free(h->opool); /* after the connections, whose output held chunks */
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
    if (rc == RH_OK)
        rc = rh_buf_appendf(out,
                            "# HELP %s_http_file_opens_total Files opened (open-file cache "
                            "misses).\n"
                            "# TYPE %s_http_file_opens_total counter\n"
                            "%s_http_file_opens_total %" PRIu64 "\n"
                            "# HELP %s_http_file_memory_loads_total Small cached files read into "
                            "memory.\n"
                            "# TYPE %s_http_file_memory_loads_total counter\n"
                            "%s_http_file_memory_loads_total %" PRIu64 "\n"
                            "# HELP %s_http_file_memory_bytes Bytes of small files held in "
                            "memory.\n"
                            "# TYPE %s_http_file_memory_bytes gauge\n"
                            "%s_http_file_memory_bytes %zu\n"
                            "# HELP %s_http_file_memory_served_bytes_total Body bytes served "
                            "from there instead of read from a file.\n"
                            "# TYPE %s_http_file_memory_served_bytes_total counter\n"
                            "%s_http_file_memory_served_bytes_total %" PRIu64 "\n",
                            prefix, prefix, prefix, s->file_opens, prefix, prefix, prefix,
                            s->file_mem_loads, prefix, prefix, prefix, rh_fcache_bytes(h->files),
                            prefix, prefix, prefix, s->file_mem_bytes);
    return rc;
}
