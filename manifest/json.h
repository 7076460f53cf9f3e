/* json.h -- strict JSON parsing (on jansson) and TUF canonical JSON encoding. */
#ifndef RH_JSON_H
#define RH_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

/* Parse len bytes of JSON strictly: at most max bytes (RH_ETOOBIG), nesting at most
 * RH_MAX_JSON_DEPTH (RH_ETOOBIG), duplicate object keys rejected, no trailing data, valid UTF-8,
 * no NUL byte anywhere (nor \u0000 in strings), numbers that are not integers rejected (TUF
 * metadata has none).
 * src names the input (file or URL) in every message. On success *out owns a new reference.
 * Returns RH_OK, RH_EPARSE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_json_parse(const uint8_t *data, size_t len, size_t max, const char *src, json_t **out,
                     rh_error *e) __attribute__((warn_unused_result));

/* One JSON value at the start of data[0..len), leading whitespace allowed and any bytes after
 * it left alone: as strict as rh_json_parse (duplicate keys, NUL in strings and non-integer
 * numbers rejected) but without a size or depth check (see rh_json_depth_ok) and without a
 * message. *used is the bytes it took, whitespace included. NULL on any error. For scanners
 * that walk a large document one member at a time (rh_metadata_parse_lean). */
json_t *rh_json_parse_one(const uint8_t *data, size_t len, size_t *used);

/* Is the nesting of data[0..len) within RH_MAX_JSON_DEPTH (the check rh_json_parse makes)? */
bool rh_json_depth_ok(const uint8_t *data, size_t len);

/* Canonical JSON as the TUF implementations produce it (securesystemslib encode_canonical,
 * python-tuf, go-tuf, tuf-js): object keys sorted by their UTF-8 bytes, no whitespace, in strings
 * only '"' and '\\' escaped (every other byte raw), integers only (reals rejected: RH_ETYPE),
 * true/false/null. Appends to out. Returns RH_OK, RH_ETYPE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_cjson_encode(const json_t *v, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

/* The canonical form of the string s[0..n) (a key or a value), appended to out. */
rh_err rh_cjson_string(const char *s, size_t n, rh_buf *out) __attribute__((warn_unused_result));

#endif
