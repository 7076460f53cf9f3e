/* fuzz_http.c -- libFuzzer target: the file server's request helpers, which see every client's
 * bytes before anything else does. The first byte picks the helper; each call is checked
 * against what its contract promises, not only for crashes:
 *   path: a decoded path has no empty, "." or dot-led segment, no leading '/', no backslash
 *         or control byte, fits the buffer, and is never longer than what was received;
 *   range: a satisfiable range lies inside the file and is not empty;
 *   If-None-Match, Content-Type, HASH.name: answers within their definitions. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_PATH 512u

static void check_path(const char *raw, size_t n, size_t cap)
{
    char out[FUZZ_MAX_PATH + 1];
    int st = rh_http_path_decode(raw, n, out, cap);
    if (st != 0) {
        if (st != 400 && st != 404 && st != 414)
            abort();
        return;
    }
    size_t len = strlen(out);
    if (len == 0 || len + 1 > cap || len >= n) /* decoding never lengthens; "/" is 404 */
        abort();
    if (n == 0 || raw[0] != '/')
        abort();
    size_t seg = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (i < len && (c < 0x20 || c == 0x7f || c == '\\'))
            abort();
        if (i == len || c == '/') {
            if (i == seg || out[seg] == '.') /* empty, ".", ".." or a dotfile */
                abort();
            seg = i + 1;
        }
    }
    /* Without '%' the path is its own decoding. */
    if (memchr(raw, '%', n) == NULL && (len != n - 1 || memcmp(out, raw + 1, len) != 0))
        abort();
}

static void check_range(const char *value, uint64_t fsize)
{
    rh_http_range r = {0, 0};
    rh_range_result rr = rh_http_range_parse(value, fsize, &r);
    if (rr == RH_RANGE_OK) {
        if (r.len == 0 || r.first >= fsize || r.len > fsize - r.first)
            abort();
    } else if (rr != RH_RANGE_NONE && rr != RH_RANGE_UNSATISFIABLE) {
        abort();
    }
}

static void check_misc(const char *s)
{
    static const char etag[] =
        "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"";
    char hex[65];
    bool m = rh_http_inm_match(s, etag);
    if (strcmp(s, "*") == 0 && !m)
        abort();
    if (strcmp(s, etag) == 0 && !m)
        abort();
    const char *ct = rh_http_content_type(s);
    if (ct == NULL || ct[0] == '\0')
        abort();
    if (rh_http_hash_prefixed(s, hex)) {
        if (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64)
            abort();
        const char *last = strrchr(s, '/');
        last = last ? last + 1 : s;
        if (memcmp(last, hex, 64) != 0 || last[64] != '.')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t pick = data[0];
    data++;
    size--;
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    switch (pick % 3) {
    case 0:
        if (size <= 4 * FUZZ_MAX_PATH) {
            /* The whole buffer, and one too small for the path (414 or a shorter result). */
            check_path(s, size, FUZZ_MAX_PATH + 1);
            check_path(s, size, 1 + (size_t)(pick / 3) % FUZZ_MAX_PATH);
        }
        break;
    case 1: {
        uint64_t fsize = 0;
        size_t k = size < 8 ? size : 8;
        for (size_t i = 0; i < k; i++)
            fsize = fsize << 8 | data[i];
        if (pick & 0x80)
            fsize &= 0xffffffu; /* small files too, where the clipping shows */
        check_range(s + k, fsize);
        break;
    }
    default:
        check_misc(s);
        break;
    }
    free(s);
    return 0;
}
