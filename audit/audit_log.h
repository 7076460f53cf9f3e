/* audit_log.h -- where rhine-audit reads a transparency log from: any mirror or the origin over
 * HTTP(S) (or file://) through net/fetch. The verification itself is manifest/tlog_verify.h. */
#ifndef RH_AUDIT_LOG_H
#define RH_AUDIT_LOG_H

#include "manifest/tlog_verify.h"
#include "net/fetch.h"

/* An HTTP(S) (or file://) base URL through net/fetch. */
typedef struct rh_audit_http {
    rh_http *h;
    char base[RH_NET_MAX_URL];
} rh_audit_http;
/* Fills src with a source reading "<base>/<path>" (ca_file: PEM CA bundle for https, NULL =
 * the system default). Returns RH_OK, RH_EINVAL, RH_ENOMEM. */
rh_err rh_audit_http_init(rh_audit_http *s, const char *base, const char *ca_file,
                          rh_log_src *src, rh_error *e)
    __attribute__((warn_unused_result));
void rh_audit_http_cleanup(rh_audit_http *s);

#endif
