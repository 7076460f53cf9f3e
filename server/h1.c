/* h1.c -- HTTP/1.1 connections: libhttp-parser in, keep-alive and pipelining, sendfile out. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <http_parser.h>

#include "server/http_util.h"
#include "server/httpd_int.h"
#include "server/outpool.h"

struct rh_h1 {
    rh_conn *c;
    http_parser parser;
    rh_httpd_req req;
    rh_buf name, value;      /* the header field being received */
    bool in_value;
    int err_status;          /* set by a callback that aborts the parse */
    bool paused;             /* a response was queued; parse the next one later */
    bool in_message;
    /* A file body under TLS, read into the output as it drains (a mapped file would kill
     * the server with SIGBUS if it shrank while being sent). */
    int body_fd;             /* -1: none */
    rh_fent *body_fent;      /* the cache reference when body_fd is a cached file */
    uint64_t body_off, body_left;
};

static void body_release(rh_h1 *p)
{
    if (p->body_fent != NULL)
        rh_fent_release(p->body_fent);
    else if (p->body_fd >= 0)
        close(p->body_fd);
    p->body_fd = -1;
    p->body_fent = NULL;
    p->body_left = 0;
}

/* Reads the pending file body into the output up to its high mark. A short read (the file
 * shrank) ends the connection: the headers promised a length that cannot be sent. */
static void body_pump(rh_h1 *p)
{
    rh_conn *c = p->c;
    while (p->body_left > 0 && evbuffer_get_length(c->out) < RH_HTTPD_OUT_HIGH) {
        size_t n = p->body_left < RH_OUTPOOL_CHUNK ? (size_t)p->body_left : RH_OUTPOOL_CHUNK;
        uint8_t *chunk = rh_outpool_get(c->srv->opool);
        ssize_t r;
        bool mem = p->body_fent != NULL && p->body_fent->data != NULL;
        if (chunk == NULL) {
            c->close_now = true;
            return;
        }
        if (mem) {
            memcpy(chunk, p->body_fent->data + p->body_off, n); /* a small file held in memory */
            r = (ssize_t)n;
        } else {
            do {
                r = pread(p->body_fd, chunk, n, (off_t)p->body_off);
            } while (r < 0 && errno == EINTR);
        }
        if (r <= 0) {
            rh_outpool_put(chunk);
            body_release(p);
            c->close_now = true;
            return;
        }
        if (rh_outpool_hand(c->out, chunk, (size_t)r, NULL) != RH_OK) {
            c->close_now = true;
            return;
        }
        if (mem)
            c->srv->stats.file_mem_bytes += (uint64_t)r;
        p->body_off += (uint64_t)r;
        p->body_left -= (uint64_t)r;
    }
    if (p->body_left == 0)
        body_release(p);
}

static int h1_fail(rh_h1 *p, int status)
{
    if (p->err_status == 0)
        p->err_status = status;
    return -1;
}

static int flush_header(rh_h1 *p)
{
    rh_err rc;
    if (!p->in_value && p->name.len == 0)
        return 0;
    rc = rh_req_add_header(&p->req, (const char *)(p->name.data ? p->name.data : (uint8_t *)""),
                           p->name.len,
                           (const char *)(p->value.data ? p->value.data : (uint8_t *)""),
                           p->value.len);
    rh_buf_reset(&p->name);
    rh_buf_reset(&p->value);
    p->in_value = false;
    if (rc == RH_ETOOBIG)
        return h1_fail(p, 431);
    if (rc != RH_OK)
        return h1_fail(p, 503);
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    rh_h1 *p = hp->data;
    rh_req_reset(&p->req);
    rh_buf_reset(&p->name);
    rh_buf_reset(&p->value);
    p->in_value = false;
    p->in_message = true;
    /* Bound the time to receive the request head (slowloris). */
    struct timeval tv = {(time_t)(p->c->srv->o.handshake_timeout_ms / 1000),
                         (suseconds_t)(p->c->srv->o.handshake_timeout_ms % 1000) * 1000};
    evtimer_add(p->c->timer, &tv);
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    rh_h1 *p = hp->data;
    if (rh_buf_append(&p->req.target, at, len) != RH_OK)
        return h1_fail(p, 414);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    rh_h1 *p = hp->data;
    if (p->in_value && flush_header(p) != 0)
        return -1;
    if (p->req.hdr_bytes + p->name.len + len > p->c->srv->o.max_header_bytes ||
        rh_buf_append(&p->name, at, len) != RH_OK)
        return h1_fail(p, 431);
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    rh_h1 *p = hp->data;
    p->in_value = true;
    if (p->req.hdr_bytes + p->name.len + p->value.len + len > p->c->srv->o.max_header_bytes ||
        rh_buf_append(&p->value, at, len) != RH_OK)
        return h1_fail(p, 431);
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    rh_h1 *p = hp->data;
    rh_httpd *h = p->c->srv;
    const char *m = http_method_str((enum http_method)hp->method);
    const char *expect;

    if (flush_header(p) != 0)
        return -1;
    evtimer_del(p->c->timer);
    snprintf(p->req.method, sizeof(p->req.method), "%s", m);
    p->req.version = hp->http_major == 1 && hp->http_minor == 0 ? 10 : 11;
    p->req.copies_body = p->c->ssl != NULL; /* cleartext: sendfile */
    if (hp->http_major != 1)
        return h1_fail(p, 505);
    if (p->req.target.len == 0)
        return h1_fail(p, 400);
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > h->o.max_body_bytes)
        return h1_fail(p, 413);
    if (hp->method == HTTP_CONNECT)
        return h1_fail(p, 405);
    expect = rh_httpd_req_header(&p->req, "expect");
    if (expect != NULL) {
        if (strcasecmp(expect, "100-continue") != 0)
            return h1_fail(p, 417);
        if (p->req.version == 11)
            evbuffer_add(p->c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    rh_h1 *p = hp->data;
    if (rh_buf_append(&p->req.body, at, len) != RH_OK)
        return h1_fail(p, 413);
    return 0;
}

static void release_fent(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    (void)seg;
    (void)flags;
    rh_fent_release(arg);
}

static void write_response(rh_h1 *p, rh_resp *r, bool keep_alive)
{
    rh_conn *c = p->c;
    struct evbuffer *out = c->out;
    rh_httpd *h = c->srv;

    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nServer: rhine\r\nDate: %s\r\n",
                        r->status, rh_http_reason(r->status), rh_httpd_date(h));
    /* RFC 9110 8.6: a 304 carries no Content-Length (it would describe the 200 body). */
    if (r->status != 304)
        evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n", r->content_length);
    if (r->content_type)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", r->content_type);
    if (r->etag[0])
        evbuffer_add_printf(out, "ETag: %s\r\n", r->etag);
    if (r->cache_control)
        evbuffer_add_printf(out, "Cache-Control: %s\r\n", r->cache_control);
    if (r->accept_ranges)
        evbuffer_add_printf(out, "Accept-Ranges: bytes\r\n");
    if (r->content_range[0])
        evbuffer_add_printf(out, "Content-Range: %s\r\n", r->content_range);
    if (r->allow)
        evbuffer_add_printf(out, "Allow: %s\r\n", r->allow);
    if (!keep_alive)
        evbuffer_add_printf(out, "Connection: close\r\n");
    evbuffer_add(out, "\r\n", 2);
    if (r->has_body && r->mem != NULL) {
        evbuffer_add(out, r->mem, r->mem_len);
    } else if (r->has_body && r->fd >= 0 && r->content_length > 0 && c->ssl != NULL) {
        p->body_fd = r->fd;
        p->body_fent = r->fent;
        p->body_off = r->file_off;
        p->body_left = r->content_length;
        r->fd = -1;
        r->fent = NULL;
        body_pump(p);
    } else if (r->has_body && r->fd >= 0 && r->content_length > 0) {
        /* The segment owns the fd (or the cache reference) from here on; sendfile on
         * cleartext (explicit offsets, so a cached fd is shared). */
        struct evbuffer_file_segment *seg = evbuffer_file_segment_new(
            r->fd, (ev_off_t)r->file_off, (ev_off_t)r->content_length,
            r->fent != NULL ? 0 : EVBUF_FS_CLOSE_ON_FREE);
        if (seg != NULL) {
            if (r->fent != NULL)
                evbuffer_file_segment_add_cleanup_cb(seg, release_fent, r->fent);
            r->fent = NULL;
            r->fd = -1;
            if (evbuffer_add_file_segment(out, seg, 0, (ev_off_t)r->content_length) != 0)
                c->close_now = true;
            evbuffer_file_segment_free(seg);
        } else {
            c->close_now = true; /* headers promised a body we cannot send */
        }
    }
    rh_resp_cleanup(r);
}

static int on_message_complete(http_parser *hp)
{
    rh_h1 *p = hp->data;
    rh_resp r;
    bool keep;

    p->in_message = false;
    if (rh_req_finish(&p->req) != RH_OK)
        return h1_fail(p, 503);
    rh_serve(p->c->srv, &p->req, &r);
    keep = http_should_keep_alive(hp) && !r.close;
    write_response(p, &r, keep);
    if (!keep)
        p->c->close_after_flush = true;
    /* Pause: the read loop decides whether to go on (pipelining) or wait for the output. */
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings h1_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

rh_err rh_h1_start(rh_conn *c)
{
    rh_h1 *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return RH_ENOMEM;
    p->c = c;
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
    rh_req_init(&p->req, c->srv);
    rh_buf_init(&p->name, c->srv->o.max_header_bytes);
    rh_buf_init(&p->value, c->srv->o.max_header_bytes);
    p->body_fd = -1;
    c->h1 = p;
    c->state = C_H1;
    c->srv->stats.h1_conns++;
    return RH_OK;
}

void rh_h1_free(rh_h1 *p)
{
    if (p == NULL)
        return;
    body_release(p);
    rh_req_cleanup(&p->req);
    rh_buf_cleanup(&p->name);
    rh_buf_cleanup(&p->value);
    free(p);
}

static void h1_error(rh_h1 *p, int status)
{
    rh_resp r;
    rh_resp_error(p->c->srv, &r, status, false, true);
    write_response(p, &r, false);
    rh_conn_linger(p->c);
}

void rh_h1_on_read(rh_conn *c)
{
    rh_h1 *p = c->h1;
    struct evbuffer *in = c->in;
    struct evbuffer *out = c->out;

    while (!c->close_now && !c->close_after_flush && !p->paused) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        n = http_parser_execute(&p->parser, &h1_settings, v.iov_base, v.iov_len);
        e = HTTP_PARSER_ERRNO(&p->parser);
        evbuffer_drain(in, n);
        if (e == HPE_PAUSED) {
            http_parser_pause(&p->parser, 0);
            if (c->close_after_flush)
                break;
            if (p->parser.upgrade) {
                /* Upgrade: h2c and friends are answered as plain HTTP/1.1; resync the parser. */
                p->parser.upgrade = 0;
            }
            if (evbuffer_get_length(out) >= RH_HTTPD_OUT_HIGH || p->body_left > 0) {
                p->paused = true; /* resume from rh_h1_on_write */
                rh_conn_read(c, false);
            }
            continue;
        }
        if (e != HPE_OK) {
            evtimer_del(c->timer);
            h1_error(p, p->err_status ? p->err_status
                        : e == HPE_HEADER_OVERFLOW ? 431 : 400);
            return;
        }
        if (n != v.iov_len) {
            /* The parser stopped early without pausing (an upgrade it will not parse). */
            h1_error(p, 400);
            return;
        }
    }
    /* The client closed its side: once every complete request it sent is answered (a partial
     * one never will be), close after the output. */
    if (c->peer_eof && !p->paused && !c->close_now && !c->close_after_flush) {
        c->close_after_flush = true;
        c->linger = false;
    }
    if (c->close_after_flush)
        rh_conn_read(c, false);
}

void rh_h1_on_write(rh_conn *c)
{
    rh_h1 *p = c->h1;
    if (p->body_left > 0) {
        body_pump(p);
        if (p->body_left > 0 || c->close_now)
            return;
    }
    if (p->paused && !c->close_after_flush &&
        evbuffer_get_length(c->out) < RH_HTTPD_OUT_HIGH / 2) {
        p->paused = false;
        rh_conn_read(c, true);
        rh_h1_on_read(c);
    }
}

bool rh_h1_on_timeout(rh_conn *c)
{
    /* Keep a connection whose response is still being written (a long download). */
    return (evbuffer_get_length(c->out) > 0 || c->h1->body_left > 0) && !c->h1->in_message;
}
