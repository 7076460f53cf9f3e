/* afile.c -- durable file writes shared by origin, keys, mirror and client: temp file in the
 * same directory, fsync, rename (or link, never replacing), fsync the directory. */
#include "manifest/afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


char *rh_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + 1 + lb + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

rh_err rh_file_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return RH_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return RH_OK;
}

rh_err rh_file_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return RH_EIO;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return RH_OK;
}

rh_err rh_file_sync_dir(const char *dir, rh_error *e)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return rh_fail(e, RH_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    rh_err rc = RH_OK;
    if (fsync(dfd) != 0)
        rc = rh_fail(e, RH_EIO, "%s: fsync failed: %s", dir, strerror(errno));
    close(dfd);
    return rc;
}

rh_err rh_file_read(const char *path, size_t max, rh_buf *out, rh_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return rh_fail(e, RH_ENOTFOUND, "%s: does not exist", path);
        return rh_fail(e, RH_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    rh_err rc = RH_OK;
    uint8_t chunk[8192];
    size_t total = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = rh_fail(e, RH_EIO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        total += (size_t)r;
        if (total > max) {
            rc = rh_fail(e, RH_ETOOBIG, "%s: more than the limit of %zu bytes", path, max);
            break;
        }
        if (rh_buf_append(out, chunk, (size_t)r) != RH_OK) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
            break;
        }
    }
    close(fd);
    return rc;
}

int rh_file_temp(const char *dir, const char *name, mode_t mode, char **tmp_out, rh_error *e)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *tmp = malloc(dl + 2 + nl + sizeof RH_FILE_TEMP_SUFFIX);
    if (tmp == NULL) {
        rh_fail(e, RH_ENOMEM, "%s/%s: out of memory", dir, name);
        return -1;
    }
    memcpy(tmp, dir, dl);
    tmp[dl] = '/';
    tmp[dl + 1] = '.';
    memcpy(tmp + dl + 2, name, nl);
    memcpy(tmp + dl + 2 + nl, RH_FILE_TEMP_SUFFIX, sizeof RH_FILE_TEMP_SUFFIX);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rh_fail(e, RH_EIO, "%s/%s: cannot create a temporary file: %s", dir, name,
                strerror(errno));
        free(tmp);
        return -1;
    }
    if (fchmod(fd, mode) != 0) {
        rh_fail(e, RH_EIO, "%s: chmod failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    *tmp_out = tmp;
    return fd;
}

rh_err rh_file_write_atomic(const char *dir, const char *name, const uint8_t *data, size_t len,
                          bool replace, mode_t mode, rh_error *e)
{
    rh_err rc = RH_OK;
    char *tmp = NULL, *final = rh_path_join(dir, name);
    if (final == NULL)
        return rh_fail(e, RH_ENOMEM, "%s/%s: out of memory", dir, name);
    int fd = rh_file_temp(dir, name, mode, &tmp, e);
    if (fd < 0) {
        rc = e != NULL ? e->code : RH_EIO;
        goto out;
    }
    if (rh_file_write_all(fd, data, len) != RH_OK || fsync(fd) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto out;
    }
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
        rc = rh_fail(e, RH_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (replace) {
        if (rename(tmp, final) != 0) {
            rc = rh_fail(e, RH_EIO, "%s: rename failed: %s", final, strerror(errno));
            goto out;
        }
    } else {
        /* link(2) fails with EEXIST atomically: a published file is never replaced. */
        if (link(tmp, final) != 0) {
            rc = rh_fail(e, RH_EIO, "%s: %s", final,
                         errno == EEXIST ? "exists already (published files are immutable)"
                                         : strerror(errno));
            goto out;
        }
        unlink(tmp);
    }
    free(tmp);
    tmp = NULL;
    rc = rh_file_sync_dir(dir, e);
out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(final);
    return rc;
}

