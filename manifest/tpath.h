/* tpath.h -- target-path validation, role-name file names (percent-encoding) and strict
 * percent-decoding of URL paths. No I/O. */
#ifndef RH_TPATH_H
#define RH_TPATH_H

#include <stddef.h>

#include "manifest/limits.h"
#include "manifest/rh_error.h"

/* Room for rh_role_filename's output: every byte of a maximal role name as %XX, plus NUL. */
#define RH_ROLE_FILENAME_MAX (3 * RH_MAX_ROLE_NAME + 1)

/* Check that path[0..len) is a safe relative target path: non-empty, at most
 * RH_MAX_TARGET_PATH bytes, valid UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF), no NUL, no control character (< 0x20 or 0x7f), no backslash, no leading '/', no
 * empty segment ("a//b", trailing '/'), no "." or ".." segment. Such a path can be joined under
 * a directory without leaving it.
 * Returns RH_OK or RH_EPATH with `target path "<escaped>": <reason>`. */
rh_err rh_tpath_check(const char *path, size_t len, rh_error *e)
    __attribute__((warn_unused_result));

/* Percent-encode role name `role` as python-tuf does for file names and URLs
 * (urllib.parse.quote(role, safe="")): A-Z a-z 0-9 - . _ ~ kept, every other byte %XX with
 * upper-case hex. Writes a NUL-terminated string to out.
 * Returns RH_OK; RH_EPATH for "", ".", ".." or a name longer than RH_MAX_ROLE_NAME bytes;
 * RH_EINVAL when out is NULL or outlen is too small (RH_ROLE_FILENAME_MAX always suffices).
 * out is written only on success. */
rh_err rh_role_filename(const char *role, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* Strict percent-decoding of a URL path in[0..inlen): "%XX" (either hex case) becomes the byte,
 * every other byte is copied ('+' stays '+': path, not form, semantics). Rejects "%00", a '%'
 * not followed by two hex digits, and a raw NUL. out receives the decoded bytes and a NUL;
 * *outlen (optional) the decoded length. Returns RH_OK, RH_EPARSE (malformed), RH_ETOOBIG
 * (outcap too small; inlen + 1 always suffices). out and *outlen are written only on success. */
rh_err rh_url_decode(const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen)
    __attribute__((warn_unused_result));

/* Write path[0..len) into out (size outcap >= 8) for a message: printable ASCII kept, '"' and
 * '\' backslash-escaped, every other byte as \xHH; ends with "..." when cut. Always
 * NUL-terminates. Returns out. */
char *rh_escape_for_msg(const char *path, size_t len, char *out, size_t outcap);

#endif
