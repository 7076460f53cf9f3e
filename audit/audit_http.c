/* audit_http.c -- rhine-audit reads the log from any mirror or the origin over net/fetch. */
#include "audit/audit_log.h"

#include <string.h>

static rh_err http_get(void *ctx, const char *path, size_t max, rh_buf *out, rh_error *e)
{
    rh_audit_http *s = ctx;
    char url[RH_NET_MAX_URL];
    if (rh_url_join(s->base, path, url, sizeof url) != RH_OK)
        return rh_fail(e, RH_EINVAL, "%s/%s: URL too long", s->base, path);
    long status = 0;
    rh_buf_reset(out);
    return rh_http_get_buf(s->h, url, max, out, &status, e);
}

rh_err rh_audit_http_init(rh_audit_http *s, const char *base, const char *ca_file,
                          rh_log_src *src, rh_error *e)
{
    memset(s, 0, sizeof *s);
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof s->base)
        return rh_fail(e, RH_EINVAL, "%s: not a usable base URL", base);
    memcpy(s->base, base, n);
    rh_fetch_opts o;
    memset(&o, 0, sizeof o);
    o.http2 = true;
    o.user_agent = "rhine-audit/1";
    o.ca_file = ca_file;
    rh_err rc = rh_http_new(&o, &s->h, e);
    if (rc != RH_OK)
        return rc;
    src->get = http_get;
    src->ctx = s;
    return RH_OK;
}

void rh_audit_http_cleanup(rh_audit_http *s)
{
    rh_http_free(s->h);
    s->h = NULL;
}

