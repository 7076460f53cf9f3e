/* rh_error.c -- error names and the first-failure-wins message buffer. */
#include "manifest/rh_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[RH_ERR_COUNT] = {
    [RH_OK] = "ok",           [RH_ENOMEM] = "out of memory",  [RH_EINVAL] = "invalid argument",
    [RH_EPARSE] = "malformed", [RH_ETOOBIG] = "too big",       [RH_ESIG] = "signature",
    [RH_EEXPIRED] = "expired", [RH_EROLLBACK] = "rollback",    [RH_EVERSION] = "version mismatch",
    [RH_EHASH] = "hash mismatch", [RH_EPATH] = "unsafe path",  [RH_ETYPE] = "wrong type",
    [RH_ECONFIG] = "config",   [RH_ECRYPTO] = "crypto",        [RH_EIO] = "io",
    [RH_ENET] = "network",     [RH_ENOTFOUND] = "not found",   [RH_ELOG] = "log",
};

const char *rh_err_name(rh_err code)
{
    if ((int)code < 0 || code >= RH_ERR_COUNT || names[code] == NULL)
        return "unknown";
    return names[code];
}

void rh_error_clear(rh_error *e)
{
    if (e != NULL) {
        e->code = RH_OK;
        e->msg[0] = '\0';
    }
}

rh_err rh_fail(rh_error *e, rh_err code, const char *fmt, ...)
{
    if (e == NULL || e->code != RH_OK)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void rh_error_prefix(rh_error *e, const char *fmt, ...)
{
    if (e == NULL || e->code == RH_OK)
        return;
    char pre[RH_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pre, sizeof pre - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t plen = strlen(pre), mlen = strlen(e->msg);
    memcpy(pre + plen, ": ", 2);
    plen += 2;
    if (plen >= sizeof e->msg)
        return;
    if (mlen > sizeof e->msg - 1 - plen)
        mlen = sizeof e->msg - 1 - plen; /* keep the prefix, truncate the tail */
    memmove(e->msg + plen, e->msg, mlen);
    memcpy(e->msg, pre, plen);
    e->msg[plen + mlen] = '\0';
}
