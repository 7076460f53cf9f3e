/* install.c -- fetch, verify, decompress, verify again, then temp + fsync + rename.
 *
 * DESIGN 7 order, strictly: the compressed bytes are hashed while they stream into a temp file
 * of their own, and only once their signed length and hashes match does the decompressor see
 * them. A hostile mirror therefore never feeds the zstd decoder a single unsigned byte; the cost
 * is one extra write and read of the (compressed) payload, which the page cache absorbs. */
#include "client/install.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/zst.h"

#define RH_INSTALL_CHUNK (256u * 1024) /* bytes read per step when decompressing */

struct rh_install {
    rh_install_spec spec;
    char tmp[PATH_MAX];    /* the final content, renamed to dest on success */
    char ztmp[PATH_MAX];   /* the downloaded compressed bytes (decompress only) */
    char dir[PATH_MAX];
    int fd, zfd;
    bool committed;
    bool failed;
    uint64_t got;          /* downloaded bytes */
    uint64_t out;          /* bytes written to the temp file */
    rh_hash *h256, *h512;  /* over the downloaded bytes, as signed */
    rh_hash *o256;         /* over the decompressed bytes */
    int write_errno;
};

static rh_err write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return RH_EIO;
        p += k;
        n -= (size_t)k;
    }
    return RH_OK;
}

/* Output of the decompressor (or of the raw path): hash it and write it to the temp file. */
static rh_err out_sink(void *ctx, const uint8_t *p, size_t n)
{
    rh_install *in = ctx;
    if (in->o256 && rh_hash_update(in->o256, p, n) != RH_OK)
        return RH_ECRYPTO;
    if (write_all(in->fd, p, n) != RH_OK) {
        in->write_errno = errno ? errno : EIO;
        return RH_EIO;
    }
    in->out += n;
    return RH_OK;
}

/* Split dest into its directory and base name. */
static rh_err split_dest(const char *dest, char *dir, size_t dirsz, const char **base)
{
    const char *slash = strrchr(dest, '/');
    if (!slash) {
        if (dirsz < 2)
            return RH_ETOOBIG;
        memcpy(dir, ".", 2);
        *base = dest;
    } else {
        size_t dl = (size_t)(slash - dest);
        if (dl == 0)
            dl = 1; /* "/name" */
        if (dl + 1 > dirsz)
            return RH_ETOOBIG;
        memcpy(dir, dest, dl);
        dir[dl] = '\0';
        *base = slash + 1;
    }
    return **base ? RH_OK : RH_EINVAL;
}

rh_err rh_install_new(const rh_install_spec *spec, rh_install **out, rh_error *e)
{
    if (!spec || !spec->dest || !spec->hashes || !out)
        return rh_fail(e, RH_EINVAL, "install: bad arguments");
    const char *src = spec->src ? spec->src : spec->dest;
    if (!spec->hashes->has_sha256 && !spec->hashes->has_sha512)
        return rh_fail(e, RH_EHASH, "%s: the target lists no sha256 or sha512 hash", src);
    rh_install *in = calloc(1, sizeof(*in));
    if (!in)
        return rh_fail(e, RH_ENOMEM, "install: out of memory");
    in->spec = *spec;
    in->fd = -1;
    in->zfd = -1;
    rh_err rc;
    const char *base;
    if ((rc = split_dest(spec->dest, in->dir, sizeof(in->dir), &base)) != RH_OK) {
        rc = rh_fail(e, rc == RH_ETOOBIG ? RH_EIO : rc, "%s: not a usable file name", spec->dest);
        goto fail;
    }
    if (snprintf(in->tmp, sizeof(in->tmp), "%s/.%s.rhine-XXXXXX", in->dir, base) >=
        (int)sizeof(in->tmp)) {
        rc = rh_fail(e, RH_EIO, "%s: file name too long", spec->dest);
        goto fail;
    }
    in->fd = mkstemp(in->tmp);
    if (in->fd < 0) {
        in->tmp[0] = '\0';
        rc = rh_fail(e, RH_EIO, "%s: cannot create a temporary file in %s: %s", spec->dest,
                     in->dir, strerror(errno));
        goto fail;
    }
    if (fchmod(in->fd, 0644) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: chmod: %s", in->tmp, strerror(errno));
        goto fail;
    }
    if (spec->decompress) {
        size_t tl = strlen(in->tmp);
        if (tl + sizeof ".zst" > sizeof(in->ztmp)) {
            rc = rh_fail(e, RH_EIO, "%s: file name too long", spec->dest);
            goto fail;
        }
        memcpy(in->ztmp, in->tmp, tl);
        memcpy(in->ztmp + tl, ".zst", sizeof ".zst");
        in->zfd = open(in->ztmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (in->zfd < 0) {
            in->ztmp[0] = '\0';
            rc = rh_fail(e, RH_EIO, "%s: cannot create a temporary file in %s: %s", spec->dest,
                         in->dir, strerror(errno));
            goto fail;
        }
    }
    if ((spec->hashes->has_sha256 && !(in->h256 = rh_hash_new(RH_SHA256))) ||
        (spec->hashes->has_sha512 && !(in->h512 = rh_hash_new(RH_SHA512))) ||
        (spec->decompress && !(in->o256 = rh_hash_new(RH_SHA256)))) {
        rc = rh_fail(e, RH_ENOMEM, "install: out of memory");
        goto fail;
    }
    *out = in;
    return RH_OK;
fail:
    rh_install_free(in);
    return rc;
}

rh_err rh_install_write(void *ctx, const uint8_t *p, size_t n, rh_error *e)
{
    rh_install *in = ctx;
    const char *src = in->spec.src ? in->spec.src : in->spec.dest;
    if (in->failed)
        return rh_fail(e, RH_EINVAL, "%s: install already failed", src);
    rh_err rc = RH_OK;
    /* TUF 5.7.3: never accept more than the signed length (endless data). */
    if ((uint64_t)n > in->spec.length - in->got) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: more than the signed length of %" PRIu64 " bytes",
                     src, in->spec.length);
        goto out;
    }
    in->got += n;
    if ((in->h256 && rh_hash_update(in->h256, p, n) != RH_OK) ||
        (in->h512 && rh_hash_update(in->h512, p, n) != RH_OK)) {
        rc = rh_fail(e, RH_ECRYPTO, "%s: hashing failed", src);
        goto out;
    }
    if (in->zfd >= 0) { /* compressed: kept aside until it verifies */
        if (write_all(in->zfd, p, n) != RH_OK)
            rc = rh_fail(e, RH_EIO, "%s: write: %s", in->ztmp, strerror(errno ? errno : EIO));
    } else if (out_sink(in, p, n) != RH_OK) {
        rc = rh_fail(e, RH_EIO, "%s: write: %s", in->tmp, strerror(in->write_errno));
    }
    if (rc == RH_OK && in->spec.progress)
        in->spec.progress(in->spec.progress_ctx, in->got, in->spec.length);
out:
    if (rc != RH_OK)
        in->failed = true;
    return rc;
}

/* Decompress the verified compressed temp file into the output temp file (hashed on the way). */
static rh_err decompress_verified(rh_install *in, const char *src, rh_error *e)
{
    rh_zdec *z = NULL;
    uint8_t *buf = malloc(RH_INSTALL_CHUNK);
    rh_err rc = buf ? rh_zdec_new(in->spec.out_length, src, out_sink, in, &z) : RH_ENOMEM;
    if (rc != RH_OK) {
        rc = rh_fail(e, rc, "%s: cannot start the decompressor", src);
        goto out;
    }
    if (lseek(in->zfd, 0, SEEK_SET) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: seek: %s", in->ztmp, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t k = read(in->zfd, buf, RH_INSTALL_CHUNK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = rh_fail(e, RH_EIO, "%s: read: %s", in->ztmp, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        rh_error ze;
        rh_error_clear(&ze);
        rc = rh_zdec_update(z, buf, (size_t)k, &ze);
        if (rc == RH_EIO && in->write_errno)
            rc = rh_fail(e, RH_EIO, "%s: write: %s", in->tmp, strerror(in->write_errno));
        else if (rc != RH_OK)
            rc = rh_fail(e, rc, "%s", ze.msg[0] ? ze.msg : rh_err_name(rc)); /* ze names src */
        if (rc != RH_OK)
            goto out;
    }
    uint64_t total = 0;
    if ((rc = rh_zdec_finish(z, &total, e)) != RH_OK)
        goto out;
    /* DESIGN 3: custom.rhine holds the uncompressed length and sha256. */
    if (total != in->spec.out_length || in->out != in->spec.out_length)
        rc = rh_fail(e, RH_EHASH,
                     "%s: decompresses to %" PRIu64 " bytes, the signed length is %" PRIu64, src,
                     total, in->spec.out_length);
out:
    rh_zdec_free(z);
    free(buf);
    return rc;
}

static rh_err check_digest(rh_hash *h, const uint8_t *want, size_t len, const char *what,
                           const char *src, rh_error *e)
{
    uint8_t got[RH_SHA512_LEN];
    if (rh_hash_final(h, got) != RH_OK)
        return rh_fail(e, RH_ECRYPTO, "%s: hashing failed", src);
    if (!rh_ct_equal(got, want, len))
        return rh_fail(e, RH_EHASH, "%s: %s differs from the signed one", src, what);
    return RH_OK;
}

rh_err rh_install_commit(rh_install *in, rh_error *e)
{
    const rh_install_spec *s = &in->spec;
    const char *src = s->src ? s->src : s->dest;
    rh_err rc;
    if (in->failed) {
        rc = rh_fail(e, RH_EINVAL, "%s: install already failed", src);
        goto out;
    }
    /* TUF 5.7.3: the target's length and hashes must match the trusted targets metadata. */
    if (in->got != s->length) {
        rc = rh_fail(e, RH_EHASH, "%s: got %" PRIu64 " bytes, the signed length is %" PRIu64,
                     src, in->got, s->length);
        goto out;
    }
    if (in->h256 && (rc = check_digest(in->h256, s->hashes->sha256, RH_SHA256_LEN, "sha256",
                                       src, e)) != RH_OK)
        goto out;
    if (in->h512 && (rc = check_digest(in->h512, s->hashes->sha512, RH_SHA512_LEN, "sha512",
                                       src, e)) != RH_OK)
        goto out;
    if (in->zfd >= 0) {
        if ((rc = decompress_verified(in, src, e)) != RH_OK)
            goto out;
        if ((rc = check_digest(in->o256, s->out_sha256, RH_SHA256_LEN,
                               "sha256 of the uncompressed content", src, e)) != RH_OK)
            goto out;
    }
    if (fsync(in->fd) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: fsync: %s", in->tmp, strerror(errno));
        goto out;
    }
    if (close(in->fd) != 0) {
        in->fd = -1;
        rc = rh_fail(e, RH_EIO, "%s: close: %s", in->tmp, strerror(errno));
        goto out;
    }
    in->fd = -1;
    if (rename(in->tmp, s->dest) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: rename: %s", s->dest, strerror(errno));
        goto out;
    }
    in->committed = true;
    int dfd = open(in->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: the file itself is complete either way */
        close(dfd);
    }
    rc = RH_OK;
out:
    if (rc != RH_OK)
        in->failed = true;
    return rc;
}

void rh_install_free(rh_install *in)
{
    if (!in)
        return;
    if (in->fd >= 0)
        close(in->fd);
    if (in->zfd >= 0)
        close(in->zfd);
    if (!in->committed && in->tmp[0])
        unlink(in->tmp);
    if (in->ztmp[0])
        unlink(in->ztmp);
    rh_hash_free(in->h256);
    rh_hash_free(in->h512);
    rh_hash_free(in->o256);
    free(in);
}

rh_err rh_install_check_existing(const rh_install_spec *spec, rh_error *e)
{
    const char *p = spec->dest;
    uint64_t want = spec->decompress ? spec->out_length : spec->length;
    bool want256 = spec->decompress || spec->hashes->has_sha256;
    bool want512 = !spec->decompress && spec->hashes->has_sha512;
    if (!want256 && !want512)
        return rh_fail(e, RH_EHASH, "%s: no hash to compare", p);
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer (DESIGN 10.6: nothing
     * hangs); only a regular file can already hold the target, anything else is replaced. */
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? rh_fail(e, RH_ENOTFOUND, "%s: no such file", p)
                               : rh_fail(e, RH_EIO, "%s: %s", p, strerror(errno));
    rh_err rc = RH_OK;
    rh_hash *h256 = NULL, *h512 = NULL;
    uint8_t buf[65536];
    uint64_t total = 0;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rh_fail(e, RH_EHASH, "%s: not a regular file", p);
        goto out;
    }
    h256 = want256 ? rh_hash_new(RH_SHA256) : NULL;
    h512 = want512 ? rh_hash_new(RH_SHA512) : NULL;
    if ((want256 && !h256) || (want512 && !h512)) {
        rc = rh_fail(e, RH_ENOMEM, "install: out of memory");
        goto out;
    }
    for (;;) {
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = rh_fail(e, RH_EIO, "%s: read: %s", p, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        total += (uint64_t)k;
        if (total > want) {
            rc = rh_fail(e, RH_EHASH, "%s: longer than %" PRIu64 " bytes", p, want);
            goto out;
        }
        if ((h256 && rh_hash_update(h256, buf, (size_t)k) != RH_OK) ||
            (h512 && rh_hash_update(h512, buf, (size_t)k) != RH_OK)) {
            rc = rh_fail(e, RH_ECRYPTO, "%s: hashing failed", p);
            goto out;
        }
    }
    if (total != want) {
        rc = rh_fail(e, RH_EHASH, "%s: %" PRIu64 " bytes, want %" PRIu64, p, total, want);
        goto out;
    }
    if (h256 && (rc = check_digest(h256, spec->decompress ? spec->out_sha256
                                                           : spec->hashes->sha256,
                                   RH_SHA256_LEN, "sha256", p, e)) != RH_OK)
        goto out;
    if (h512 && (rc = check_digest(h512, spec->hashes->sha512, RH_SHA512_LEN, "sha512", p, e)) !=
                    RH_OK)
        goto out;
out:
    rh_hash_free(h256);
    rh_hash_free(h512);
    close(fd);
    return rc;
}
