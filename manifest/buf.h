/* buf.h -- a growable byte buffer with a hard ceiling (curl's dynbuf idea). */
#ifndef RH_BUF_H
#define RH_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "manifest/rh_error.h"

typedef struct rh_buf {
    uint8_t *data; /* NUL-terminated after every append (not counted in len) */
    size_t len;
    size_t cap;
    size_t max;    /* appends that would pass max fail with RH_ETOOBIG */
} rh_buf;

void rh_buf_init(rh_buf *b, size_t max);
void rh_buf_cleanup(rh_buf *b);             /* frees; b can be re-initialised */
void rh_buf_reset(rh_buf *b);               /* len = 0, keeps memory */
rh_err rh_buf_append(rh_buf *b, const void *p, size_t n); /* RH_ENOMEM, RH_ETOOBIG */
/* Room for n more bytes, exactly (appends double the capacity when they run out of it). */
rh_err rh_buf_reserve(rh_buf *b, size_t n);
rh_err rh_buf_appendc(rh_buf *b, char c);
rh_err rh_buf_appendf(rh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (who frees them); b is left empty. NULL when empty. */
uint8_t *rh_buf_take(rh_buf *b, size_t *len);

#endif
