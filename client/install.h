/* install.h -- receive a target's bytes, verify them against the signed length and hashes
 * while streaming, then (only once they verified) decompress (zstd) and verify the signed
 * uncompressed length and sha256, and move the result into place atomically: temp file next to
 * dest, fsync, rename. On any failure nothing is left behind: no partial dest, no temp file. */
#ifndef RH_INSTALL_H
#define RH_INSTALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/hash.h"
#include "manifest/metadata.h"
#include "manifest/rh_error.h"

/* What the installed file must be. */
typedef struct rh_install_spec {
    const char *dest;          /* final path; the temp file is created in its directory */
    const char *src;           /* names the origin of the bytes in messages (mirror URL) */
    uint64_t length;           /* signed length of the downloaded bytes */
    const rh_hashes *hashes;   /* signed hashes of the downloaded bytes (sha256/sha512) */
    bool decompress;           /* zstd-decompress and check the fields below */
    uint64_t out_length;       /* custom.rhine.length: the uncompressed length */
    uint8_t out_sha256[RH_SHA256_LEN]; /* custom.rhine.sha256 */
    /* Progress: called after every chunk with bytes received so far and length. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} rh_install_spec;

typedef struct rh_install rh_install;

/* Create the temp file ("<dest dir>/.<dest name>.rhine-XXXXXX", mode 0644).
 * spec is copied (pointers inside must outlive the install). Returns RH_OK, RH_EINVAL, RH_EIO,
 * RH_ENOMEM, RH_EHASH (hashes list no sha256/sha512). */
rh_err rh_install_new(const rh_install_spec *spec, rh_install **out, rh_error *e)
    __attribute__((warn_unused_result));

/* Feed the next bytes (a net/fetch sink: ctx is the rh_install). More than spec->length bytes
 * is RH_ETOOBIG; RH_EIO on write errors. After an error the install can only be freed. */
rh_err rh_install_write(void *ctx, const uint8_t *p, size_t n, rh_error *e)
    __attribute__((warn_unused_result));

/* Check the target (TUF 5.7.3: length and hashes), then decompress it (output past out_length
 * is RH_ETOOBIG: zstd bomb; RH_EPARSE for a corrupt or truncated frame) and check custom.rhine,
 * fsync the temp file, rename it to dest, fsync the directory. Returns RH_OK, RH_EHASH (length or
 * hash differ), RH_ETOOBIG, RH_EPARSE, RH_EIO. On failure the temp files are removed and dest
 * untouched. */
rh_err rh_install_commit(rh_install *in, rh_error *e) __attribute__((warn_unused_result));

/* Free; removes the temp file unless committed. Accepts NULL. */
void rh_install_free(rh_install *in);

/* Does the file at path already hold exactly what spec describes (length and hashes of the
 * final content: the uncompressed ones when spec->decompress)? Reads at most that length + 1.
 * Returns RH_OK (yes), RH_EHASH (differs), RH_ENOTFOUND (no such file), RH_EIO. */
rh_err rh_install_check_existing(const rh_install_spec *spec, rh_error *e)
    __attribute__((warn_unused_result));

#endif
