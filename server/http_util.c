/* http_util.c -- pure request helpers of the file server: path decoding, Range, caching headers. */
#include "server/http_util.h"

#include <string.h>
#include <strings.h>

#include "manifest/hash.h"

int rh_http_path_decode(const char *raw, size_t rawlen, char *out, size_t outcap)
{
    size_t o = 0;
    int status_404 = 0;

    if (outcap == 0)
        return 414;
    if (rawlen == 0 || raw[0] != '/')
        return 400;
    /* Fast path, the common request: visible ASCII without '%' or '\\' is its own decoding;
     * one pass copies it and checks the segments. */
    if (rawlen <= outcap) {
        bool bad_seg = false;
        unsigned char prev = '/';
        size_t i = 1;
        for (; i < rawlen; i++) {
            unsigned char c = (unsigned char)raw[i];
            if (c < 0x21 || c >= 0x7f || c == '%' || c == '\\')
                break;
            bad_seg |= prev == '/' && (c == '/' || c == '.');
            prev = c;
        }
        if (i == rawlen) {
            memcpy(out, raw + 1, rawlen - 1);
            out[rawlen - 1] = '\0';
            return rawlen == 1 || bad_seg || prev == '/' ? 404 : 0;
        }
    }
    /* First pass: decode into out, remembering a 404 cause but finishing the 400 checks so a
     * malformed request is always reported as malformed. */
    for (size_t i = 1; i < rawlen; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c < 0x21 || c >= 0x7f)
            return 400; /* RFC 3986: must be percent-encoded */
        if (c == '\\')
            status_404 = 1;
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= rawlen)
                return 400;
            hi = rh_hex_digit((unsigned char)raw[i + 1]);
            lo = rh_hex_digit((unsigned char)raw[i + 2]);
            if (hi < 0 || lo < 0)
                return 400;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            if (c == 0 || c < 0x20 || c == 0x7f)
                return 400;
            if (c == '/' || c == '\\')
                status_404 = 1; /* an encoded separator never names a file */
        }
        if (o + 1 >= outcap)
            return 414;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (status_404)
        return 404;
    /* Second pass on the decoded path: every segment non-empty and not starting with '.'. */
    if (o == 0)
        return 404;
    size_t seg = 0;
    for (size_t i = 0; i <= o; i++) {
        if (i == o || out[i] == '/') {
            if (i == seg || out[seg] == '.')
                return 404;
            seg = i + 1;
        }
    }
    return 0;
}

/* Parse decimal digits at *p into *v; false on no digits or overflow. */
static bool parse_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
        s++;
    }
    *p = s;
    *v = x;
    return true;
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

rh_range_result rh_http_range_parse(const char *value, uint64_t size, rh_http_range *r)
{
    const char *p;
    uint64_t a, b;

    if (value == NULL)
        return RH_RANGE_NONE;
    p = skip_ows(value);
    if (strncasecmp(p, "bytes=", 6) != 0)
        return RH_RANGE_NONE;
    p = skip_ows(p + 6);
    if (strchr(p, ',') != NULL)
        return RH_RANGE_NONE; /* several ranges: we answer 200 with the whole file */
    if (*p == '-') {
        p++;
        if (!parse_u64(&p, &b) || *skip_ows(p) != '\0')
            return RH_RANGE_NONE;
        if (b == 0 || size == 0)
            return RH_RANGE_UNSATISFIABLE; /* RFC 9110 14.1.3: suffix of zero length */
        if (b > size)
            b = size;
        r->first = size - b;
        r->len = b;
        return RH_RANGE_OK;
    }
    if (!parse_u64(&p, &a) || *p != '-')
        return RH_RANGE_NONE;
    p++;
    if (*skip_ows(p) == '\0') {
        b = UINT64_MAX;
    } else {
        if (!parse_u64(&p, &b) || *skip_ows(p) != '\0' || b < a)
            return RH_RANGE_NONE; /* RFC 9110 14.1.1: last < first is invalid */
    }
    if (a >= size)
        return RH_RANGE_UNSATISFIABLE;
    if (b >= size)
        b = size - 1;
    r->first = a;
    r->len = b - a + 1;
    return RH_RANGE_OK;
}

bool rh_http_inm_match(const char *value, const char *etag)
{
    size_t elen;
    const char *p;

    if (value == NULL || etag == NULL)
        return false;
    elen = strlen(etag);
    p = value;
    for (;;) {
        p = skip_ows(p);
        while (*p == ',')
            p = skip_ows(p + 1);
        if (*p == '\0')
            return false;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2; /* RFC 9110 13.1.2: If-None-Match uses the weak comparison */
        if (*p != '"')
            return false; /* malformed list: no match */
        const char *end = strchr(p + 1, '"');
        if (end == NULL)
            return false;
        if ((size_t)(end + 1 - p) == elen && memcmp(p, etag, elen) == 0)
            return true;
        p = end + 1;
    }
}

bool rh_http_is_short_cache(const char *path, const char *const *list)
{
    static const char *const def[] = {"timestamp.json", "/log/checkpoint", NULL};
    size_t plen = strlen(path);
    const char *last = strrchr(path, '/');

    last = last ? last + 1 : path;
    if (list == NULL)
        list = def;
    for (; *list != NULL; list++) {
        const char *e = *list;
        if (e[0] == '/') {
            size_t elen = strlen(e);
            /* e matches the suffix of "/" + path */
            if (elen == plen + 1 && memcmp(e + 1, path, plen) == 0)
                return true;
            if (elen <= plen && memcmp(path + plen - elen, e, elen) == 0)
                return true;
        } else if (strcmp(last, e) == 0) {
            return true;
        }
    }
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

const char *rh_http_content_type(const char *path)
{
    if (ends_with(path, ".json"))
        return "application/json";
    if (ends_with(path, ".zst"))
        return "application/zstd";
    return "text/plain";
}

const char *rh_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

bool rh_http_hash_prefixed(const char *path, char hex65[65])
{
    const char *last = strrchr(path, '/');
    last = last ? last + 1 : path;
    for (int i = 0; i < 64; i++) {
        char c = last[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    if (last[64] != '.')
        return false;
    memcpy(hex65, last, 64);
    hex65[64] = '\0';
    return true;
}
