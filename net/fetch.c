/* fetch.c -- blocking, bounded single HTTP(S) GETs over a reusable libcurl easy handle. */
#include "net/fetch.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rh_http {
    CURL *curl;
    rh_fetch_opts o;
    char *ca_file;
    char *user_agent;
    char errbuf[CURL_ERROR_SIZE];
};

/* State of one transfer, shared by the header and write callbacks. */
typedef struct xfer {
    const rh_fetch_req *req;
    CURL *curl;
    bool started;       /* first body byte seen: status checked */
    long status;
    bool bad_status;    /* non-2xx: body discarded, transfer aborted */
    bool toobig;
    bool bad_range;
    uint64_t skip;      /* bytes of a 200 answer to drop before offset */
    uint64_t given;     /* bytes given to the sink */
    bool has_crange;
    uint64_t crange_start;
    char etag[RH_NET_MAX_ETAG];
    rh_err sink_code;
    rh_error sink_err;
} xfer;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_OK;

static void global_init_once(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

rh_err rh_net_global_init(rh_error *e)
{
    if (pthread_once(&g_once, global_init_once) != 0 || g_init_rc != CURLE_OK)
        return rh_fail(e, RH_ENET, "libcurl: global initialisation failed");
    return RH_OK;
}

rh_err rh_http_new(const rh_fetch_opts *o, rh_http **out, rh_error *e)
{
    rh_err rc = rh_net_global_init(e);
    if (rc != RH_OK)
        return rc;
    rh_http *h = calloc(1, sizeof(*h));
    if (!h)
        return rh_fail(e, RH_ENOMEM, "http: out of memory");
    if (o)
        h->o = *o;
    h->o.ca_file = NULL;
    h->o.user_agent = NULL;
    if (o && o->ca_file && !(h->ca_file = strdup(o->ca_file)))
        goto oom;
    if (!(h->user_agent = strdup(o && o->user_agent ? o->user_agent : "rhine/1")))
        goto oom;
    if (h->o.connect_timeout_ms <= 0)
        h->o.connect_timeout_ms = RH_NET_CONNECT_TIMEOUT_MS;
    if (h->o.low_speed_limit <= 0)
        h->o.low_speed_limit = RH_NET_LOW_SPEED_LIMIT;
    if (h->o.low_speed_time_s <= 0)
        h->o.low_speed_time_s = RH_NET_LOW_SPEED_TIME_S;
    if (h->o.total_timeout_ms < 0)
        h->o.total_timeout_ms = 0;
    h->curl = curl_easy_init();
    if (!h->curl) {
        rh_http_free(h);
        return rh_fail(e, RH_ENET, "libcurl: cannot create a transfer handle");
    }
    *out = h;
    return RH_OK;
oom:
    rh_http_free(h);
    return rh_fail(e, RH_ENOMEM, "http: out of memory");
}

void rh_http_free(rh_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->ca_file);
    free(h->user_agent);
    free(h);
}

/* Case-insensitive "name:" prefix match of a raw header line; returns the trimmed value. */
static bool header_value(const char *line, size_t n, const char *name, const char **v,
                         size_t *vlen)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *p = line + nl + 1, *end = line + n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *v = p;
    *vlen = (size_t)(end - p);
    return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;
    const char *v;
    size_t vl;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or a 100): forget the previous one's headers. */
        x->etag[0] = '\0';
        x->has_crange = false;
    } else if (header_value(line, n, "etag", &v, &vl)) {
        if (vl < sizeof(x->etag)) {
            memcpy(x->etag, v, vl);
            x->etag[vl] = '\0';
        }
    } else if (header_value(line, n, "content-range", &v, &vl)) {
        /* RFC 9110 14.4: "bytes first-last/complete" */
        char tmp[128];
        if (vl < sizeof(tmp)) {
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            uint64_t first;
            if (sscanf(tmp, "bytes %" SCNu64 "-", &first) == 1) {
                x->has_crange = true;
                x->crange_start = first;
            }
        }
    }
    return n;
}

/* Status check at the first body byte (or after the transfer when there was no body). */
static bool check_start(xfer *x)
{
    long st = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &st);
    if (st == 0)
        st = 200; /* file:// */
    x->status = st;
    x->started = true;
    if (st < 200 || st > 299) {
        x->bad_status = true;
        return false;
    }
    const rh_fetch_req *r = x->req;
    if (st == 206) {
        if (!x->has_crange || x->crange_start != r->offset) {
            x->bad_range = true;
            return false;
        }
    } else if (r->offset > 0) {
        x->skip = r->offset; /* the server ignored the Range: drop what we already have */
    }
    curl_off_t cl = -1;
    curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (cl >= 0) {
        uint64_t body = (uint64_t)cl;
        uint64_t useful = body > x->skip ? body - x->skip : 0;
        if (useful > r->max_bytes) {
            x->toobig = true;
            return false;
        }
    }
    return true;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->started && !check_start(x))
        return 0;
    const uint8_t *b = (const uint8_t *)p;
    size_t left = n;
    if (x->skip > 0) {
        size_t k = x->skip < left ? (size_t)x->skip : left;
        x->skip -= k;
        b += k;
        left -= k;
    }
    if (left == 0)
        return n;
    if ((uint64_t)left > x->req->max_bytes - x->given) {
        x->toobig = true;
        return 0;
    }
    rh_err rc = x->req->sink(x->req->sink_ctx, b, left, &x->sink_err);
    if (rc != RH_OK) {
        x->sink_code = rc;
        return 0;
    }
    x->given += left;
    return n;
}

static rh_err setup(rh_http *h, const rh_fetch_req *req, xfer *x, struct curl_slist **hdrs)
{
    CURL *c = h->curl;
    char line[RH_NET_MAX_ETAG + 64];
    curl_easy_reset(c);
    h->errbuf[0] = '\0';
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                     \
    do {                                                                                  \
        if (rc == CURLE_OK)                                                               \
            rc = curl_easy_setopt(c, opt, val);                                           \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
    /* Redirects stay on http(s), never file://; and a request that started on https:// stays
     * there, so a mirror (or anyone who can inject a redirect into it) cannot move the rest
     * of the transfer to cleartext. CURLOPT_ACCEPT_ENCODING stays unset on purpose: bodies are
     * handed over and counted exactly as sent (no gzip bomb behind max_bytes). */
    SET(CURLOPT_REDIR_PROTOCOLS_STR,
        strncasecmp(req->url, "https://", 8) == 0 ? "https" : "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, RH_NET_MAX_REDIRS);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_USERAGENT, h->user_agent);
    SET(CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
    SET(CURLOPT_LOW_SPEED_LIMIT, h->o.low_speed_limit);
    SET(CURLOPT_LOW_SPEED_TIME, h->o.low_speed_time_s);
    if (h->o.total_timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, h->o.total_timeout_ms);
    if (h->ca_file)
        SET(CURLOPT_CAINFO, h->ca_file);
    long ver = CURL_HTTP_VERSION_1_1;
    if (h->o.h2c && strncasecmp(req->url, "http://", 7) == 0)
        ver = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    else if (h->o.http2)
        ver = CURL_HTTP_VERSION_2TLS;
    SET(CURLOPT_HTTP_VERSION, ver);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, x);
    if (req->offset > 0) {
        snprintf(line, sizeof(line), "%" PRIu64 "-", req->offset);
        SET(CURLOPT_RANGE, line);
    }
    if (req->if_none_match) {
        if (strlen(req->if_none_match) >= RH_NET_MAX_ETAG)
            return RH_EINVAL;
        snprintf(line, sizeof(line), "If-None-Match: %s", req->if_none_match);
        struct curl_slist *l = curl_slist_append(NULL, line);
        if (!l)
            return RH_ENOMEM;
        *hdrs = l;
        SET(CURLOPT_HTTPHEADER, l);
    }
#undef SET
    if (rc == CURLE_UNKNOWN_OPTION || rc == CURLE_UNSUPPORTED_PROTOCOL)
        return RH_ENET;
    if (rc == CURLE_OUT_OF_MEMORY)
        return RH_ENOMEM;
    return rc == CURLE_OK ? RH_OK : RH_ENET;
}

rh_err rh_http_get(rh_http *h, const rh_fetch_req *req, rh_fetch_result *res, rh_error *e)
{
    if (!h || !req || !req->url || !req->sink)
        return rh_fail(e, RH_EINVAL, "http: bad arguments");
    if (strlen(req->url) >= RH_NET_MAX_URL)
        return rh_fail(e, RH_EINVAL, "%.64s...: URL longer than %d bytes", req->url,
                       RH_NET_MAX_URL);
    xfer x;
    memset(&x, 0, sizeof(x));
    x.req = req;
    x.curl = h->curl;
    rh_error_clear(&x.sink_err);
    struct curl_slist *hdrs = NULL;
    const char *u = req->url;
    rh_err rc = setup(h, req, &x, &hdrs);
    if (rc != RH_OK) {
        rc = rh_fail(e, rc, "%s: cannot set up the transfer", u);
        goto out;
    }
    CURLcode cc = curl_easy_perform(h->curl);
    if (x.sink_code != RH_OK) {
        if (strncmp(x.sink_err.msg, u, strlen(u)) == 0) /* the sink named the URL itself */
            rc = rh_fail(e, x.sink_code, "%s", x.sink_err.msg);
        else if (x.sink_err.msg[0])
            rc = rh_fail(e, x.sink_code, "%s: %s", u, x.sink_err.msg);
        else
            rc = rh_fail(e, x.sink_code, "%s: refused by the receiver (%s)", u,
                         rh_err_name(x.sink_code));
        goto out;
    }
    if (x.toobig) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: more than %" PRIu64 " bytes", u, req->max_bytes);
        goto out;
    }
    if (cc == CURLE_OK && !x.started && !check_start(&x) && x.toobig) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: more than %" PRIu64 " bytes", u, req->max_bytes);
        goto out;
    }
    if (x.bad_status || (cc == CURLE_OK && x.status == 304)) {
        if (x.status == 304 && req->if_none_match) {
            if (res) {
                memset(res, 0, sizeof(*res));
                res->status = 304;
                res->not_modified = true;
                memcpy(res->etag, x.etag, sizeof(res->etag));
            }
            rc = RH_OK;
            goto out;
        }
        rc = rh_fail(e, x.status == 404 || x.status == 410 ? RH_ENOTFOUND : RH_ENET,
                     "%s: HTTP %ld", u, x.status);
        goto out;
    }
    if (x.bad_range) {
        rc = rh_fail(e, RH_ENET, "%s: HTTP 206 without a Content-Range starting at %" PRIu64, u,
                     req->offset);
        goto out;
    }
    if (cc != CURLE_OK) {
        const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
        if (cc == CURLE_OPERATION_TIMEDOUT && strstr(why, "too slow"))
            rc = rh_fail(e, RH_ENET, "%s: too slow (less than %ld bytes/s for %ld s)", u,
                         h->o.low_speed_limit, h->o.low_speed_time_s);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            rc = rh_fail(e, RH_ENET, "%s: timed out (%s)", u, why);
        else if (cc == CURLE_FILE_COULDNT_READ_FILE)
            rc = rh_fail(e, RH_ENOTFOUND, "%s: no such file", u);
        else if (cc == CURLE_OUT_OF_MEMORY)
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", u);
        else
            rc = rh_fail(e, RH_ENET, "%s: %s", u, why);
        goto out;
    }
    if (x.skip > 0) {
        rc = rh_fail(e, RH_ENET, "%s: body ended before offset %" PRIu64, u, req->offset);
        goto out;
    }
    if (res) {
        memset(res, 0, sizeof(*res));
        res->status = x.status;
        res->bytes = x.given;
        memcpy(res->etag, x.etag, sizeof(res->etag));
        double d = 0;
        if (curl_easy_getinfo(h->curl, CURLINFO_CONNECT_TIME, &d) == CURLE_OK)
            res->connect_s = d;
        if (curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME, &d) == CURLE_OK)
            res->total_s = d;
        long hv = 0;
        if (curl_easy_getinfo(h->curl, CURLINFO_HTTP_VERSION, &hv) == CURLE_OK)
            res->http2 = hv == CURL_HTTP_VERSION_2_0;
    }
    rc = RH_OK;
out:
    curl_slist_free_all(hdrs);
    return rc;
}

static rh_err buf_sink(void *ctx, const uint8_t *p, size_t n, rh_error *e)
{
    rh_buf *b = ctx;
    rh_err rc = rh_buf_append(b, p, n);
    if (rc == RH_ETOOBIG)
        return rh_fail(e, rc, "more than %zu bytes", b->max);
    if (rc != RH_OK)
        return rh_fail(e, rc, "out of memory");
    return RH_OK;
}

rh_err rh_http_get_buf(rh_http *h, const char *url, uint64_t max, rh_buf *out, long *status,
                       rh_error *e)
{
    if (!out)
        return rh_fail(e, RH_EINVAL, "http: bad arguments");
    rh_fetch_req req = {.url = url, .max_bytes = max, .sink = buf_sink, .sink_ctx = out};
    rh_fetch_result res;
    rh_err rc = rh_http_get(h, &req, &res, e);
    if (rc != RH_OK)
        return rc;
    if (status)
        *status = res.status;
    return RH_OK;
}

rh_err rh_url_join(const char *base, const char *rel, char *out, size_t outsz)
{
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    while (*rel == '/')
        rel++;
    size_t rl = strlen(rel);
    if (bl + 1 + rl + 1 > outsz)
        return RH_ETOOBIG;
    memcpy(out, base, bl);
    out[bl] = '/';
    memcpy(out + bl + 1, rel, rl + 1);
    return RH_OK;
}
