/* h2.c -- HTTP/2 connections: an nghttp2 server session fed bytes in, bytes out (mem_recv/send). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#include "server/httpd_int.h"
#include "server/outpool.h"

/* Output is gathered into pooled chunks (server/outpool.c) handed to the connection by
 * reference: TLS gets whole 16 KiB records and one write(2) carries several responses. A pass
 * that produced only this much is copied instead, so the chunk is reused at once. */
#define H2_OUT_COPY_MAX 2048u
#define H2_SPARE_STREAMS 16u         /* finished streams kept per connection for reuse */
#define H2_SPARE_BYTES   (4u * 1024) /* ... only when their request buffers are this small */

typedef struct h2_stream {
    struct h2_stream *prev, *next;
    int32_t id;
    rh_httpd_req req;
    rh_resp resp;
    bool responded;
    bool body_too_big;
    bool uri_too_long;
    uint64_t left;               /* file body bytes not yet handed to a DATA frame */
    size_t mem_pos;
} h2_stream;

struct rh_h2 {
    rh_conn *c;
    nghttp2_session *s;
    h2_stream *streams;
    bool write_blocked;          /* output above the high mark: mem_send paused */
    /* The chunk that h2_flush() fills (one pass of nghttp2_session_mem_send), handed to the
     * output when full and at the end of the pass. */
    uint8_t *obase;
    size_t ocap, oused;
    unsigned ocommits;           /* chunks handed over so far (a frame may straddle two) */
    rh_outacct *acct;            /* chunks handed over and not yet written */
    h2_stream *spare;            /* finished streams kept for reuse (no malloc per request) */
    unsigned nspare;
};

static void stream_destroy(h2_stream *st)
{
    rh_req_cleanup(&st->req);
    rh_resp_cleanup(&st->resp);
    free(st);
}

/* Request buffers small enough to keep with a spare stream (bigger ones are freed). */
static bool stream_small(const h2_stream *st)
{
    return st->req.target.cap + st->req.hstore.cap + st->req.body.cap + st->req.path_cap <=
           H2_SPARE_BYTES;
}

static void stream_free(rh_h2 *p, h2_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        p->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (p->nspare >= H2_SPARE_STREAMS || !stream_small(st)) {
        stream_destroy(st);
        return;
    }
    rh_req_reset(&st->req);      /* keeps the buffers' memory */
    rh_resp_cleanup(&st->resp);
    st->prev = NULL;
    st->next = p->spare;
    p->spare = st;
    p->nspare++;
}

/* A blank stream: a spare one, or a new one. NULL on OOM. */
static h2_stream *stream_new(rh_h2 *p)
{
    h2_stream *st = p->spare;
    if (st != NULL) {
        p->spare = st->next;
        p->nspare--;
        /* Every field but the (already reset) request, which keeps its buffers. */
        st->prev = st->next = NULL;
        st->id = 0;
        memset(&st->resp, 0, sizeof(st->resp));
        st->responded = st->body_too_big = st->uri_too_long = false;
        st->left = 0;
        st->mem_pos = 0;
    } else {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return NULL;
        rh_req_init(&st->req, p->c->srv);
    }
    st->resp.fd = -1;
    return st;
}

/* Hands the staged bytes to the connection's output (false on OOM). */
static bool stage_commit(rh_h2 *p)
{
    struct evbuffer *out = p->c->out;
    uint8_t *chunk = p->obase;
    size_t n = p->oused;
    bool ok = true;

    if (chunk == NULL)
        return true;
    p->obase = NULL;
    p->ocap = p->oused = 0;
    p->ocommits++;
    if (n <= H2_OUT_COPY_MAX) {
        ok = n == 0 || evbuffer_add(out, chunk, n) == 0;
        rh_outpool_put(chunk);
    } else {
        ok = rh_outpool_hand(out, chunk, n, p->acct) == RH_OK;
    }
    return ok;
}

/* Output at the high mark: queued bytes, or whole chunks pinned by them (small commits of a
 * slow reader: see rh_outacct). */
static bool out_full(rh_h2 *p)
{
    size_t queued = evbuffer_get_length(p->c->out) + p->oused;
    return queued >= RH_HTTPD_OUT_HIGH ||
           rh_outacct_chunks(p->acct) * RH_OUTPOOL_CHUNK >= RH_HTTPD_OUT_HIGH;
}

/* Returns an unfinished chunk to the pool without sending it (connection going away). */
static void stage_drop(rh_h2 *p)
{
    rh_outpool_put(p->obase);
    p->obase = NULL;
    p->ocap = p->oused = 0;
}

/* At least one free byte in the staged chunk (handing over a full one). false on OOM. */
static bool stage_room(rh_h2 *p)
{
    if (p->obase != NULL && p->oused < p->ocap)
        return true;
    if (!stage_commit(p))
        return false;
    if ((p->obase = rh_outpool_get(p->c->srv->opool)) == NULL)
        return false;
    p->ocap = RH_OUTPOOL_CHUNK;
    p->oused = 0;
    return true;
}

static bool stage_put(rh_h2 *p, const void *data, size_t n)
{
    const uint8_t *d = data;
    while (n > 0) {
        size_t k;
        if (!stage_room(p))
            return false;
        k = p->ocap - p->oused < n ? p->ocap - p->oused : n;
        memcpy(p->obase + p->oused, d, k);
        p->oused += k;
        d += k;
        n -= k;
    }
    return true;
}

/* n file bytes at off, read straight into the staged output. false on a short read (the file
 * shrank), a read error or OOM. */
static bool stage_pread(rh_h2 *p, int fd, uint64_t off, size_t n)
{
    while (n > 0) {
        struct iovec iov[2];
        uint8_t *next = NULL;
        size_t k;
        ssize_t r;
        if (!stage_room(p))
            return false;
        k = p->ocap - p->oused < n ? p->ocap - p->oused : n;
        iov[0].iov_base = p->obase + p->oused;
        iov[0].iov_len = k;
        if (k < n) {
            /* The frame runs past this chunk: one preadv fills its end and the next one. */
            if ((next = rh_outpool_get(p->c->srv->opool)) == NULL)
                return false;
            iov[1].iov_base = next;
            iov[1].iov_len = n - k < RH_OUTPOOL_CHUNK ? n - k : RH_OUTPOOL_CHUNK;
        }
        do {
            r = preadv(fd, iov, next != NULL ? 2 : 1, (off_t)off);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) {
            rh_outpool_put(next);
            return false;
        }
        if ((size_t)r <= k) {
            p->oused += (size_t)r;
            rh_outpool_put(next);
        } else {
            p->oused += k; /* full: hand it over, continue in the next chunk */
            if (!stage_commit(p)) {
                rh_outpool_put(next);
                return false;
            }
            p->obase = next;
            p->ocap = RH_OUTPOOL_CHUNK;
            p->oused = (size_t)r - k;
        }
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return true;
}

/* n bytes of a small file held in memory by the open-file cache, copied into the output. */
static bool stage_mem(rh_h2 *p, const uint8_t *d, size_t n)
{
    if (!stage_put(p, d, n))
        return false;
    p->c->srv->stats.file_mem_bytes += n;
    return true;
}

static ssize_t data_read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    h2_stream *st = src->ptr;
    size_t n;
    (void)s;
    (void)id;
    (void)ud;

    if (st->resp.mem != NULL) {
        n = st->resp.mem_len - st->mem_pos;
        if (n > length)
            n = length;
        memcpy(buf, st->resp.mem + st->mem_pos, n);
        st->mem_pos += n;
        if (st->mem_pos == st->resp.mem_len)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    /* File bodies: send_data_cb preads the payload straight into the output (no copies), or
     * copies it from the open-file cache's memory for a small file held there. */
    n = st->left < length ? (size_t)st->left : length;
    st->left -= n;
    if (st->left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return (ssize_t)n;
}

static int send_data_cb(nghttp2_session *s, nghttp2_frame *f, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *ud)
{
    rh_h2 *p = ud;
    h2_stream *st = src->ptr;
    size_t start = p->oused;
    unsigned commits = p->ocommits;
    uint8_t pad[256];
    (void)s;

    memset(pad, 0, sizeof(pad));
    if (f->data.padlen > 0)
        pad[0] = (uint8_t)(f->data.padlen - 1); /* RFC 9113 6.1: Pad Length, then padding */
    if (stage_put(p, framehd, 9) && (f->data.padlen == 0 || stage_put(p, pad, 1)) &&
        (st->resp.fent != NULL && st->resp.fent->data != NULL
             ? stage_mem(p, st->resp.fent->data + st->resp.file_off, length)
             : stage_pread(p, st->resp.fd, st->resp.file_off, length)) &&
        (f->data.padlen <= 1 || stage_put(p, pad + 1, f->data.padlen - 1))) {
        st->resp.file_off += length;
        /* One mem_send call would otherwise run NO_COPY frames for the whole flow-control
         * window (a client may open gigabytes): stop at the high mark like h2_flush(). */
        if (out_full(p))
            return NGHTTP2_ERR_PAUSE;
        return 0;
    }
    if (p->ocommits == commits && p->obase != NULL && start <= p->oused) {
        p->oused = start; /* nothing of the frame left the stage: reset just this stream */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return NGHTTP2_ERR_CALLBACK_FAILURE; /* half a frame is out: the connection must go */
}

#define NV(n, v)                                                                     \
    (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),           \
                 NGHTTP2_NV_FLAG_NO_COPY_NAME}

/* v in decimal, NUL-terminated (cap >= 21 holds any uint64_t; shorter buffers get the low
 * digits only, never an overflow). No printf on the per-request path. */
static void dec_u64(char *out, size_t cap, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < sizeof(tmp));
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

static void respond(rh_h2 *p, h2_stream *st)
{
    rh_resp *r = &st->resp;
    nghttp2_nv nva[12];
    size_t n = 0;
    char status[8], clen[24];
    nghttp2_data_provider prd, *pprd = NULL;

    st->responded = true;
    dec_u64(status, sizeof(status), (uint64_t)r->status); /* 100..599 */
    dec_u64(clen, sizeof(clen), r->content_length);
    nva[n++] = NV(":status", status);
    nva[n++] = NV("server", "rhine");
    nva[n++] = NV("date", rh_httpd_date(p->c->srv));
    if (r->status != 304)
        nva[n++] = NV("content-length", clen);
    if (r->content_type)
        nva[n++] = NV("content-type", r->content_type);
    if (r->etag[0]) /* nghttp2 never adds an etag to the HPACK table (test_httpd.py) */
        nva[n++] = NV("etag", r->etag);
    if (r->cache_control)
        nva[n++] = NV("cache-control", r->cache_control);
    if (r->accept_ranges)
        nva[n++] = NV("accept-ranges", "bytes");
    if (r->content_range[0])
        nva[n++] = NV("content-range", r->content_range);
    if (r->allow)
        nva[n++] = NV("allow", r->allow);
    if (r->has_body && ((r->mem != NULL && r->mem_len > 0) ||
                        (r->fd >= 0 && r->content_length > 0))) {
        st->left = r->content_length;
        prd.source.ptr = st;
        prd.read_callback = data_read_cb;
        pprd = &prd;
    }
    if (nghttp2_submit_response(p->s, st->id, nva, n, pprd) != 0)
        nghttp2_submit_rst_stream(p->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

static void handle_request(rh_h2 *p, h2_stream *st)
{
    rh_httpd *h = p->c->srv;

    st->req.version = 20;
    st->req.copies_body = true;
    if (st->uri_too_long) {
        rh_resp_error(h, &st->resp, 414, false, false);
    } else if (st->body_too_big) {
        rh_resp_error(h, &st->resp, 413, false, false);
    } else if (st->req.method[0] == '\0' || st->req.target.len == 0) {
        rh_resp_error(h, &st->resp, 400, false, false);
    } else if (rh_req_finish(&st->req) != RH_OK) {
        rh_resp_error(h, &st->resp, 503, false, false);
    } else {
        rh_serve(h, &st->req, &st->resp);
    }
    respond(p, st);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    rh_h2 *p = ud;
    h2_stream *st;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = stream_new(p);
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->id = f->hd.stream_id;
    st->next = p->streams;
    if (p->streams)
        p->streams->prev = st;
    p->streams = st;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    rh_h2 *p = ud;
    h2_stream *st;
    rh_err rc = RH_OK;
    (void)flags;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st == NULL)
        return 0;
    st->req.hdr_bytes += nlen + vlen + 32;
    if (st->req.hdr_bytes > p->c->srv->o.max_header_bytes) {
        /* RFC 9113 10.5.1: a header list beyond SETTINGS_MAX_HEADER_LIST_SIZE is abuse. */
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->req.hdr_bytes -= nlen + vlen + 32; /* rh_req_add_header counts again */
    if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
        if (vlen >= sizeof(st->req.method))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        memcpy(st->req.method, value, vlen);
        st->req.method[vlen] = '\0';
        st->req.hdr_bytes += nlen + vlen + 32;
    } else if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
        if (rh_buf_append(&st->req.target, value, vlen) != RH_OK)
            st->uri_too_long = true;
        st->req.hdr_bytes += nlen + vlen + 32;
    } else if (nlen == 10 && memcmp(name, ":authority", 10) == 0) {
        rc = rh_req_add_header(&st->req, "host", 4, (const char *)value, vlen);
    } else if (nlen > 0 && name[0] == ':') {
        st->req.hdr_bytes += nlen + vlen + 32;
    } else {
        rc = rh_req_add_header(&st->req, (const char *)name, nlen, (const char *)value, vlen);
    }
    if (rc != RH_OK) {
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    (void)flags;
    (void)ud;
    if (st == NULL || st->responded || st->body_too_big)
        return 0;
    if (rh_buf_append(&st->req.body, data, len) != RH_OK)
        st->body_too_big = true;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    rh_h2 *p = ud;
    h2_stream *st;

    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st == NULL || st->responded)
        return 0;
    if (st->body_too_big || (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        handle_request(p, st);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    rh_h2 *p = ud;
    (void)s;
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR)
        p->c->srv->stats.h2_goaways++;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    rh_h2 *p = ud;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    (void)code;
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_free(p, st);
    }
    return 0;
}

static void h2_flush(rh_conn *c)
{
    rh_h2 *p = c->h2;

    p->write_blocked = false;
    for (;;) {
        const uint8_t *data;
        ssize_t n;
        if (out_full(p)) {
            p->write_blocked = true;
            break;
        }
        n = nghttp2_session_mem_send(p->s, &data); /* may run send_data_cb */
        if (n < 0) {
            stage_drop(p);
            c->close_now = true;
            return;
        }
        if (n == 0) {
            /* Done, or send_data_cb paused at the high mark. */
            p->write_blocked = out_full(p);
            break;
        }
        if (!stage_put(p, data, (size_t)n)) {
            stage_drop(p);
            c->close_now = true;
            return;
        }
    }
    if (!stage_commit(p)) { /* one pass, handed over in whole chunks */
        c->close_now = true;
        return;
    }
    if (!nghttp2_session_want_read(p->s) && !nghttp2_session_want_write(p->s))
        c->close_after_flush = true;
}

rh_err rh_h2_start(rh_conn *c)
{
    rh_httpd *h = c->srv;
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    rh_h2 *p;
    rh_err rc = RH_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->o.max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h->o.max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        goto out;
    p->c = c;
    if ((p->acct = rh_outacct_new()) == NULL)
        goto out;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
    /* Rapid reset (CVE-2023-44487): a token bucket of RST_STREAMs, GOAWAY when empty. */
    nghttp2_option_set_stream_reset_rate_limit(opt, h->o.rst_burst, h->o.rst_rate);
    /* CONTINUATION flood (CVE-2024-27316 family): bound frames per header block. */
    nghttp2_option_set_max_continuations(opt, RH_HTTPD_MAX_CONTINUATIONS);
    nghttp2_option_set_no_closed_streams(opt, 1);
    if (nghttp2_session_server_new2(&p->s, cbs, p, opt) != 0)
        goto out;
    if (nghttp2_submit_settings(p->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
        goto out;
    c->h2 = p;
    c->state = C_H2;
    h->stats.h2_conns++;
    p = NULL;
    rc = RH_OK;
out:
    if (p != NULL) {
        nghttp2_session_del(p->s);
        rh_outacct_release(p->acct);
        free(p);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rc == RH_OK)
        h2_flush(c);
    return rc;
}

void rh_h2_free(rh_h2 *p)
{
    if (p == NULL)
        return;
    nghttp2_session_del(p->s); /* does not call on_stream_close */
    stage_drop(p);
    while (p->streams != NULL)
        stream_free(p, p->streams);
    while (p->spare != NULL) {
        h2_stream *st = p->spare;
        p->spare = st->next;
        stream_destroy(st);
    }
    rh_outacct_release(p->acct); /* chunks still in libevent's hands keep it */
    free(p);
}

void rh_h2_on_read(rh_conn *c)
{
    rh_h2 *p = c->h2;
    struct evbuffer *in = c->in;

    while (!c->close_now) {
        struct evbuffer_iovec v;
        ssize_t n;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        n = nghttp2_session_mem_recv(p->s, v.iov_base, v.iov_len);
        if (n < 0) {
            /* Bad preface, flood or a fatal protocol error: tell the peer why (GOAWAY; a
             * no-op when nghttp2 already queued one), then close once it is written. */
            nghttp2_session_terminate_session(
                p->s, (n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
                          ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
            evbuffer_drain(in, evbuffer_get_length(in));
            h2_flush(c);
            c->close_after_flush = true;
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    h2_flush(c);
    if (p->write_blocked)
        rh_conn_read(c, false); /* backpressure until the client reads */
}

void rh_h2_on_write(rh_conn *c)
{
    rh_h2 *p = c->h2;
    bool was_blocked = p->write_blocked;
    h2_flush(c);
    if (was_blocked && !p->write_blocked && !c->close_after_flush && !c->close_now) {
        rh_conn_read(c, true);
        if (evbuffer_get_length(c->in) > 0)
            rh_h2_on_read(c);
    }
}

bool rh_h2_on_timeout(rh_conn *c)
{
    rh_h2 *p = c->h2;
    if (p->streams != NULL || evbuffer_get_length(c->out) > 0)
        return true;
    nghttp2_session_terminate_session(p->s, NGHTTP2_NO_ERROR);
    h2_flush(c);
    c->close_after_flush = true;
    return true;
}
