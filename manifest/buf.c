/* buf.c -- growable byte buffer with a hard ceiling. */
#include "manifest/buf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rh_buf_init(rh_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void rh_buf_cleanup(rh_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void rh_buf_reset(rh_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = 0;
}

/* Room for n more bytes (and the NUL): the capacity doubles, or is exactly that (reserve). */
static rh_err grow_by(rh_buf *b, size_t n, bool exact)
{
    if (n > b->max || b->len > b->max - n)
        return RH_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return RH_OK;
    size_t cap = exact ? need : b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return RH_ENOMEM;
    b->data = p;
    b->cap = cap;
    return RH_OK;
}

static rh_err grow(rh_buf *b, size_t n)
{
    return grow_by(b, n, false);
}

rh_err rh_buf_reserve(rh_buf *b, size_t n)
{
    return grow_by(b, n, true);
}

rh_err rh_buf_append(rh_buf *b, const void *p, size_t n)
{
    rh_err rc = grow(b, n);
    if (rc != RH_OK)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return RH_OK;
}

rh_err rh_buf_appendc(rh_buf *b, char c)
{
    return rh_buf_append(b, &c, 1);
}

rh_err rh_buf_appendf(rh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return RH_EINVAL;
    rh_err rc = grow(b, (size_t)n);
    if (rc != RH_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return RH_OK;
}

uint8_t *rh_buf_take(rh_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
