/* serve.c -- the protocol-neutral request logic: handler hook, then safe static file serving. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/http_util.h"
#include "server/httpd_int.h"
#include "server/safe_open.h"

void rh_req_init(rh_httpd_req *r, const rh_httpd *h)
{
    memset(r, 0, sizeof(*r));
    rh_buf_init(&r->target, h->o.max_uri);
    rh_buf_init(&r->hstore, (size_t)h->o.max_header_bytes * 2 + 64);
    rh_buf_init(&r->body, h->o.max_body_bytes);
}

void rh_req_cleanup(rh_httpd_req *r)
{
    rh_buf_cleanup(&r->target);
    rh_buf_cleanup(&r->hstore);
    rh_buf_cleanup(&r->body);
    free(r->path);
    r->path = NULL;
    r->path_cap = 0;
}

void rh_req_reset(rh_httpd_req *r)
{
    rh_buf_reset(&r->target);
    rh_buf_reset(&r->hstore);
    rh_buf_reset(&r->body);
    if (r->path != NULL)
        r->path[0] = '\0'; /* the allocation is kept for the next request */
    r->query = NULL;
    r->nhdrs = 0;
    r->hdr_bytes = 0;
    r->method[0] = '\0';
    r->version = 0;
    r->head = false;
    r->copies_body = false;
}

rh_err rh_req_add_header(rh_httpd_req *r, const char *name, size_t nlen, const char *value,
                         size_t vlen)
{
    rh_err rc;
    size_t noff;

    r->hdr_bytes += nlen + vlen + 32;
    if (r->nhdrs >= RH_HTTPD_MAX_HEADERS || r->hdr_bytes > r->hstore.max / 2)
        return RH_ETOOBIG;
    noff = r->hstore.len;
    if ((rc = rh_buf_append(&r->hstore, name, nlen)) != RH_OK ||
        (rc = rh_buf_appendc(&r->hstore, '\0')) != RH_OK)
        return rc;
    for (size_t i = 0; i < nlen; i++) {
        uint8_t *ch = &r->hstore.data[noff + i];
        if (*ch >= 'A' && *ch <= 'Z')
            *ch = (uint8_t)(*ch - 'A' + 'a');
    }
    r->name_off[r->nhdrs] = noff;
    r->val_off[r->nhdrs] = r->hstore.len;
    if ((rc = rh_buf_append(&r->hstore, value, vlen)) != RH_OK ||
        (rc = rh_buf_appendc(&r->hstore, '\0')) != RH_OK)
        return rc;
    r->nhdrs++;
    return RH_OK;
}

rh_err rh_req_finish(rh_httpd_req *r)
{
    const char *t = r->target.data ? (const char *)r->target.data : "";
    size_t n = r->target.len;
    char *q;

    if (r->path == NULL || r->path_cap < n + 1) {
        char *p = malloc(n + 1 > 128 ? n + 1 : 128);
        if (p == NULL)
            return RH_ENOMEM;
        free(r->path);
        r->path = p;
        r->path_cap = n + 1 > 128 ? n + 1 : 128;
    }
    memcpy(r->path, t, n);
    r->path[n] = '\0';
    r->query = NULL;
    q = strpbrk(r->path, "?#");
    if (q != NULL) {
        bool is_query = *q == '?';
        *q = '\0';
        if (is_query) {
            char *hash = strchr(q + 1, '#');
            if (hash)
                *hash = '\0';
            r->query = q + 1;
        }
    }
    r->head = strcmp(r->method, "HEAD") == 0;
    return RH_OK;
}

const char *rh_httpd_req_method(const rh_httpd_req *r) { return r->method; }
const char *rh_httpd_req_path(const rh_httpd_req *r) { return r->path ? r->path : ""; }
const char *rh_httpd_req_query(const rh_httpd_req *r) { return r->query; }
int rh_httpd_req_version(const rh_httpd_req *r) { return r->version; }

const char *rh_httpd_req_header(const rh_httpd_req *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++) {
        if (strcasecmp((const char *)r->hstore.data + r->name_off[i], name) == 0)
            return (const char *)r->hstore.data + r->val_off[i];
    }
    return NULL;
}

const uint8_t *rh_httpd_req_body(const rh_httpd_req *r, size_t *len)
{
    static const uint8_t empty[1] = {0};
    *len = r->body.len;
    return r->body.data ? r->body.data : empty;
}

/* Lets go of the file body (the cached entry or our own descriptor). */
static void resp_drop_file(rh_resp *r)
{
    if (r->fent != NULL)
        rh_fent_release(r->fent);
    else if (r->fd >= 0)
        close(r->fd);
    r->fent = NULL;
    r->fd = -1;
}

void rh_resp_cleanup(rh_resp *r)
{
    resp_drop_file(r);
    free(r->mem);
    r->mem = NULL;
}

static void resp_blank(rh_resp *out, int status)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    out->status = status;
}

void rh_resp_error(rh_httpd *h, rh_resp *out, int status, bool head, bool close)
{
    char text[96];
    int n = snprintf(text, sizeof(text), "%d %s\n", status, rh_http_reason(status));

    resp_blank(out, status);
    out->close = close;
    out->content_type = "text/plain";
    out->cache_control = "no-store";
    if (status == 405)
        out->allow = "GET, HEAD";
    out->content_length = (uint64_t)n;
    out->has_body = !head;
    if (!head) {
        out->mem = malloc((size_t)n);
        if (out->mem == NULL) {
            out->content_length = 0; /* still a valid (empty) answer */
        } else {
            memcpy(out->mem, text, (size_t)n);
            out->mem_len = (size_t)n;
        }
    }
    rh_httpd_count(h, status, head ? 0 : out->mem_len);
}

static bool run_handler(rh_httpd *h, const rh_httpd_req *req, rh_resp *out)
{
    rh_httpd_resp hr;

    if (h->o.handler == NULL)
        return false;
    memset(&hr, 0, sizeof(hr));
    if (!h->o.handler(h->o.handler_ctx, req, &hr))
        return false;
    if (hr.status < 100 || hr.status > 599 || (hr.body_len > 0 && hr.body == NULL)) {
        rh_resp_error(h, out, 500, req->head, false);
        return true;
    }
    resp_blank(out, hr.status);
    out->content_type = hr.content_type ? hr.content_type : "text/plain";
    out->cache_control = hr.cache_control ? hr.cache_control : "no-store";
    out->content_length = hr.body_len;
    out->has_body = !req->head && hr.status != 204 && hr.status != 304;
    if (out->has_body && hr.body_len > 0) {
        out->mem = malloc(hr.body_len);
        if (out->mem == NULL) {
            rh_resp_error(h, out, 503, req->head, false);
            return true;
        }
        memcpy(out->mem, hr.body, hr.body_len);
        out->mem_len = hr.body_len;
    }
    if (!out->has_body && hr.status != 304)
        out->content_length = req->head ? hr.body_len : 0;
    rh_httpd_count(h, hr.status, out->mem_len);
    return true;
}

/* Opens rel beneath the root, from the open-file cache when it is a content-addressed
 * "HASH.name" (immutable). Fills *st and hex (the ETag); *fent is the cache reference or NULL.
 * Returns the fd, or -1 with the HTTP status to answer in *status. */
static int open_file(rh_httpd *h, const char *rel, struct stat *st, char hex[65],
                     rh_fent **fent, int *status)
{
    bool cacheable = rh_http_hash_prefixed(rel, hex);
    bool from_name = cacheable && h->o.etag_from_name;
    unsigned long long stamp = 0;
    unsigned long gen;
    struct timeval now;
    rh_fent *e;
    int fd;

    *fent = NULL;
    if (cacheable && h->files != NULL) {
        gen = atomic_load_explicit(&h->files_gen, memory_order_acquire);
        if (gen != h->files_gen_seen) {
            rh_fcache_flush(h->files); /* the served tree changed: reopen everything */
            h->files_gen_seen = gen;
        }
        /* One stamp per RH_HTTPD_FD_RECHECK_MS of the loop's cached time: a cached file is
         * revalidated with fstat at most that often, so a file another process unlinks or
         * replaces is served for at most that long afterwards (the mirror's own changes
         * flush the cache: rh_httpd_files_changed). Once per loop pass, as before, cost
         * 0.34 fstat per request and 4-6% of the CPU under the small-file load: every file
         * is a cold inode. */
        if (event_base_gettimeofday_cached(h->base, &now) == 0)
            stamp = rh_fcache_stamp(now.tv_sec, now.tv_usec, RH_HTTPD_FD_RECHECK_MS);
        if ((e = rh_fcache_get(h->files, rel, stamp)) != NULL) {
            *st = e->st;
            memcpy(hex, e->hex, 65);
            *fent = e;
            return e->fd;
        }
    }
    fd = rh_open_beneath(h->rootfd, rel, RH_OPEN_AUTO, st);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && h->files != NULL &&
        rh_fcache_trim(h->files, RH_HTTPD_FD_CACHE / 4) > 0)
        fd = rh_open_beneath(h->rootfd, rel, RH_OPEN_AUTO, st);
    if (fd < 0) {
        *status = (errno == EMFILE || errno == ENFILE) ? 503 : 404;
        return -1;
    }
    h->stats.file_opens++;
    if (!from_name) {
        bool hashed = false;
        if (rh_etag_get(h->etags, fd, st, hex, &hashed, NULL) != RH_OK) {
            close(fd);
            *status = 500;
            return -1;
        }
        if (hashed)
            h->stats.etag_hashes++;
    }
    if (cacheable && h->files != NULL)
        *fent = rh_fcache_put(h->files, rel, fd, st, hex, stamp); /* NULL on OOM: uncached */
    return fd;
}

static void serve_file(rh_httpd *h, const rh_httpd_req *req, rh_resp *out)
{
    char rel[RH_HTTPD_MAX_URI + 1];
    size_t cap = h->o.max_uri + 1 < sizeof(rel) ? h->o.max_uri + 1 : sizeof(rel);
    struct stat st;
    char hex[65];
    int status, fd;
    rh_fent *fent;
    const char *inm, *range;
    rh_http_range rg;
    rh_range_result rr = RH_RANGE_NONE;

    status = rh_http_path_decode(req->path, strlen(req->path), rel, cap);
    if (status != 0) {
        rh_resp_error(h, out, status, req->head, status == 400);
        return;
    }
    fd = open_file(h, rel, &st, hex, &fent, &status);
    if (fd < 0) {
        rh_resp_error(h, out, status, req->head, false);
        return;
    }
    resp_blank(out, 200);
    out->fd = fd;
    out->fent = fent;
    out->etag[0] = '"'; /* the quoted 64 hex digits */
    memcpy(out->etag + 1, hex, 64);
    out->etag[65] = '"';
    out->etag[66] = '\0';
    out->content_type = rh_http_content_type(rel);
    out->cache_control = rh_http_is_short_cache(rel, h->o.short_cache_paths)
                             ? h->short_cc : "public, max-age=31536000, immutable";
    out->accept_ranges = true;

    inm = rh_httpd_req_header(req, "if-none-match");
    if (inm != NULL && rh_http_inm_match(inm, out->etag)) {
        /* RFC 9110 13.1.2: a matching If-None-Match on GET/HEAD answers 304, no body. */
        out->status = 304;
        out->has_body = false;
        out->content_length = 0;
        resp_drop_file(out);
        out->content_type = NULL;
        rh_httpd_count(h, 304, 0);
        return;
    }
    range = rh_httpd_req_header(req, "range");
    if (range != NULL) {
        const char *ifr = rh_httpd_req_header(req, "if-range");
        /* RFC 9110 13.1.5: If-Range with another (or a weak) tag means "send it all". */
        if (ifr == NULL || strcmp(ifr, out->etag) == 0)
            rr = rh_http_range_parse(range, (uint64_t)st.st_size, &rg);
    }
    if (rr == RH_RANGE_UNSATISFIABLE) {
        resp_drop_file(out);
        char etag[72];
        memcpy(etag, out->etag, sizeof(etag));
        rh_resp_error(h, out, 416, req->head, false);
        memcpy(out->etag, etag, sizeof(etag));
        snprintf(out->content_range, sizeof(out->content_range), "bytes */%" PRIu64,
                 (uint64_t)st.st_size);
        return;
    }
    if (rr == RH_RANGE_OK) {
        out->status = 206;
        out->file_off = rg.first;
        out->content_length = rg.len;
        snprintf(out->content_range, sizeof(out->content_range),
                 "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, rg.first, rg.first + rg.len - 1,
                 (uint64_t)st.st_size);
    } else {
        out->content_length = (uint64_t)st.st_size;
    }
    out->has_body = !req->head && out->content_length > 0;
    if (!out->has_body)
        resp_drop_file(out);
    else if (out->fent != NULL && out->fent->data == NULL && req->copies_body &&
             rh_fcache_load(h->files, out->fent))
        h->stats.file_mem_loads++; /* small: served from memory from now on */
    rh_httpd_count(h, out->status, out->has_body ? out->content_length : 0);
}

void rh_serve(rh_httpd *h, const rh_httpd_req *req, rh_resp *out)
{
    if (run_handler(h, req, out))
        return;
    if (strcmp(req->method, "GET") != 0 && !req->head) {
        rh_resp_error(h, out, 405, false, false);
        return;
    }
    serve_file(h, req, out);
}
