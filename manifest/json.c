/* json.c -- strict JSON parsing on jansson and TUF canonical JSON encoding. */
#include "manifest/json.h"

#include <stdlib.h>
#include <string.h>

#include "manifest/limits.h"

/* Nesting depth of arrays/objects, counted outside strings; jansson's own cap is far higher. */
static size_t max_depth(const uint8_t *p, size_t n)
{
    size_t depth = 0, deepest = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest)
                deepest = depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

/* Reject reals anywhere in the tree (TUF metadata uses integers only). */
static int has_real(const json_t *v, int depth)
{
    if (depth > RH_MAX_JSON_DEPTH)
        return 1;
    if (json_is_real(v))
        return 1;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (has_real(x, depth + 1)) return 1;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) if (has_real(x, depth + 1)) return 1;
    }
    return 0;
}

rh_err rh_json_parse(const uint8_t *data, size_t len, size_t max, const char *src, json_t **out,
                     rh_error *e)
{
    if (src == NULL)
        src = "(input)";
    if (len > max)
        return rh_fail(e, RH_ETOOBIG, "%s: %zu bytes, more than the limit of %zu", src, len, max);
    if (max_depth(data, len) > RH_MAX_JSON_DEPTH)
        return rh_fail(e, RH_ETOOBIG, "%s: JSON nested deeper than %d", src, RH_MAX_JSON_DEPTH);
    /* Never JSON, and jansson reads one right after a number or literal as the token's end and
     * goes on ({"a":1<NUL>} parses): refused here, where every parse starts. */
    const uint8_t *nul = len > 0 ? memchr(data, 0, len) : NULL;
    if (nul != NULL)
        return rh_fail(e, RH_EPARSE, "%s: JSON contains a NUL byte (offset %zu)", src,
                       (size_t)(nul - data));
    json_error_t jerr;
    json_t *v = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        return rh_fail(e, RH_EPARSE, "%s:%d:%d: invalid JSON: %s", src, jerr.line, jerr.column,
                       jerr.text);
    if (has_real(v, 0)) {
        json_decref(v);
        return rh_fail(e, RH_EPARSE, "%s: JSON contains a non-integer number", src);
    }
    *out = v;
    return RH_OK;
}

json_t *rh_json_parse_one(const uint8_t *data, size_t len, size_t *used)
{
    json_error_t jerr;
    json_t *v = json_loadb((const char *)data, len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &jerr);
    if (v == NULL)
        return NULL;
    if (has_real(v, 0) || jerr.position < 0 || (size_t)jerr.position > len ||
        memchr(data, 0, (size_t)jerr.position) != NULL) { /* see rh_json_parse */
        json_decref(v);
        return NULL;
    }
    *used = (size_t)jerr.position;
    return v;
}

bool rh_json_depth_ok(const uint8_t *data, size_t len)
{
    return max_depth(data, len) <= RH_MAX_JSON_DEPTH;
}

static rh_err enc_string(const char *s, size_t n, rh_buf *out)
{
    rh_err rc = rh_buf_appendc(out, '"');
    for (size_t i = 0; rc == RH_OK && i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            rc = rh_buf_appendc(out, '\\');
        if (rc == RH_OK)
            rc = rh_buf_appendc(out, s[i]);
    }
    return rc == RH_OK ? rh_buf_appendc(out, '"') : rc;
}

struct kv {
    const char *key;
    size_t len;
    json_t *val;
};

static int cmp_kv(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static rh_err enc_value(const json_t *v, rh_buf *out, int depth, rh_error *e)
{
    if (depth > RH_MAX_JSON_DEPTH)
        return rh_fail(e, RH_ETOOBIG, "canonical JSON: nested deeper than %d", RH_MAX_JSON_DEPTH);
    switch (json_typeof(v)) {
    case JSON_NULL:
        return rh_buf_append(out, "null", 4);
    case JSON_TRUE:
        return rh_buf_append(out, "true", 4);
    case JSON_FALSE:
        return rh_buf_append(out, "false", 5);
    case JSON_INTEGER:
        return rh_buf_appendf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return rh_fail(e, RH_ETYPE, "canonical JSON: non-integer number");
    case JSON_STRING:
        return enc_string(json_string_value(v), json_string_length(v), out);
    case JSON_ARRAY: {
        rh_err rc = rh_buf_appendc(out, '[');
        for (size_t i = 0; rc == RH_OK && i < json_array_size(v); i++) {
            if (i > 0)
                rc = rh_buf_appendc(out, ',');
            if (rc == RH_OK)
                rc = enc_value(json_array_get(v, i), out, depth + 1, e);
        }
        return rc == RH_OK ? rh_buf_appendc(out, ']') : rc;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        struct kv *kvs = n ? calloc(n, sizeof *kvs) : NULL;
        if (n && kvs == NULL)
            return RH_ENOMEM;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            kvs[i].key = k;
            kvs[i].len = klen;
            kvs[i].val = x;
            i++;
        }
        if (n > 1)
            qsort(kvs, n, sizeof *kvs, cmp_kv);
        rh_err rc = rh_buf_appendc(out, '{');
        for (i = 0; rc == RH_OK && i < n; i++) {
            if (i > 0)
                rc = rh_buf_appendc(out, ',');
            if (rc == RH_OK)
                rc = enc_string(kvs[i].key, kvs[i].len, out);
            if (rc == RH_OK)
                rc = rh_buf_appendc(out, ':');
            if (rc == RH_OK)
                rc = enc_value(kvs[i].val, out, depth + 1, e);
        }
        free(kvs);
        return rc == RH_OK ? rh_buf_appendc(out, '}') : rc;
    }
    }
    return rh_fail(e, RH_ETYPE, "canonical JSON: unknown value type");
}

rh_err rh_cjson_string(const char *s, size_t n, rh_buf *out)
{
    return enc_string(s, n, out);
}

rh_err rh_cjson_encode(const json_t *v, rh_buf *out, rh_error *e)
{
    if (v == NULL)
        return rh_fail(e, RH_EINVAL, "canonical JSON: no value");
    rh_err rc = enc_value(v, out, 0, e);
    if (rc == RH_ENOMEM || rc == RH_ETOOBIG)
        rh_fail(e, rc, "canonical JSON: %s", rh_err_name(rc));
    return rc;
}
