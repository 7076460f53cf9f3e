/* http_util.h -- pure request helpers of the file server: path decoding, Range, caching headers. */
#ifndef RH_HTTP_UTIL_H
#define RH_HTTP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode and validate a request path (the part before '?', as received). On success writes the
 * decoded path relative to the root (no leading '/', NUL-terminated) to out and returns 0.
 * Otherwise returns the HTTP status to answer:
 *   400: not starting with '/', bad %-escape (not two hex digits), %00, control characters;
 *   404: "..", ".", dotfile or empty segments ("//", trailing '/', "/"), backslash, %2F;
 *   414: longer than outcap - 1 after decoding.
 * Only unreserved path characters need no escape; everything is decoded exactly once. */
int rh_http_path_decode(const char *raw, size_t rawlen, char *out, size_t outcap);

/* A parsed single byte range [first, first + len). */
typedef struct rh_http_range {
    uint64_t first;
    uint64_t len;
} rh_http_range;

typedef enum rh_range_result {
    RH_RANGE_NONE = 0,      /* no usable Range: serve 200 with the whole file */
    RH_RANGE_OK,            /* serve 206 with *r */
    RH_RANGE_UNSATISFIABLE, /* serve 416 with Content-Range: bytes * / size */
} rh_range_result;

/* RFC 9110 14.2: parse a Range header value against a file of `size` bytes. Accepts one range
 * "bytes=a-b", "bytes=a-" or "bytes=-n" (b clipped to size - 1). Several ranges, other units or
 * a malformed value -> RH_RANGE_NONE (the header is ignored). */
rh_range_result rh_http_range_parse(const char *value, uint64_t size, rh_http_range *r);

/* RFC 9110 13.1.2: does an If-None-Match value match etag (a quoted tag, e.g. "\"ab..\"")?
 * Weak comparison ("W/" prefixes ignored); "*" matches any. */
bool rh_http_inm_match(const char *value, const char *etag);

/* True when path (decoded, relative, no leading '/') gets the short max-age: an entry starting
 * with '/' matches as a suffix of "/" + path, any other entry the last segment exactly. */
bool rh_http_is_short_cache(const char *path, const char *const *list);

/* Content-Type by extension: .json application/json, .zst application/zstd, else text/plain. */
const char *rh_http_content_type(const char *path);

/* Reason phrase of a status code ("OK", "Not Found", ...); "Unknown" for others. */
const char *rh_http_reason(int status);

/* True when name is 64 lower-case hex digits followed by '.', i.e. "HASH.name" (last segment).
 * Copies the 64 hex digits + NUL into hex65 when true. */
bool rh_http_hash_prefixed(const char *path, char hex65[65]);

#endif
