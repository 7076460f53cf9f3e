/* rh_error.h -- the one error enum of Rhine, and a first-failure-wins message buffer. */
#ifndef RH_ERROR_H
#define RH_ERROR_H

#include <stddef.h>

typedef enum rh_err {
    RH_OK = 0,
    RH_ENOMEM,    /* allocation failed */
    RH_EINVAL,    /* caller passed a bad argument */
    RH_EPARSE,    /* input is malformed (JSON, YAML, zstd frame, HTTP) */
    RH_ETOOBIG,   /* input exceeds a limit of limits.h or a signed length */
    RH_ESIG,      /* signature invalid or threshold not met */
    RH_EEXPIRED,  /* metadata expired at the reference time */
    RH_EROLLBACK, /* version lower than trusted */
    RH_EVERSION,  /* version mismatch (URL vs content, snapshot vs targets, ...) */
    RH_EHASH,     /* length or hash differs from what was signed */
    RH_EPATH,     /* unsafe target path or role name */
    RH_ETYPE,     /* wrong _type, spec_version or field type */
    RH_ECONFIG,   /* configuration file error */
    RH_ECRYPTO,   /* the crypto library failed (not a verification failure) */
    RH_EIO,       /* file system error */
    RH_ENET,      /* transport error: connect, timeout, HTTP status */
    RH_ENOTFOUND, /* target or role not found */
    RH_ELOG,      /* transparency log proof or checkpoint invalid */
    RH_ERR_COUNT
} rh_err;

/* Short, stable name of a code ("signature", "expired", ...). Never NULL. */
const char *rh_err_name(rh_err code);

#define RH_ERRMSG_MAX 512

/* Carries the first failure: code plus a message naming where and why. */
typedef struct rh_error {
    rh_err code;
    char msg[RH_ERRMSG_MAX];
} rh_error;

void rh_error_clear(rh_error *e);

/* Record a failure unless one is already recorded (first failure wins). e may be NULL.
 * Returns code, so callers can write `return rh_fail(e, RH_EPARSE, "%s: ...", src);`. */
rh_err rh_fail(rh_error *e, rh_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an already-recorded message with "prefix: " (adds context on the way up). */
void rh_error_prefix(rh_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
