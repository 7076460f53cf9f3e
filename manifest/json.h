/* json.h -- strict JSON parsing (on jansson) and TUF canonical JSON encoding. */
#ifndef RH_JSON_H
#define RH_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

/* Parse len bytes of JSON strictly: at most max bytes (RH_ETOOBIG), nesting at most
 * RH_MAX_JSON_DEPTH (RH_ETOOBIG), duplicate object keys rejected, no trailing data, valid UTF-8,
 * no NUL in strings, numbers that are not integers rejected (TUF metadata has none).
 * src names the input (file or URL) in every message. On success *out owns a new reference.
 * Returns RH_OK, RH_EPARSE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_json_parse(const uint8_t *data, size_t len, size_t max, const char *src, json_t **out,
                     rh_error *e) __attribute__((warn_unused_result));

/* Canonical JSON as the TUF implementations produce it (securesystemslib encode_canonical,
 * python-tuf, go-tuf, tuf-js): object keys sorted by their UTF-8 bytes, no whitespace, in strings
 * only '"' and '\\' escaped (every other byte raw), integers only (reals rejected: RH_ETYPE),
 * true/false/null. Appends to out. Returns RH_OK, RH_ETYPE, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_cjson_encode(const json_t *v, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

#endif
