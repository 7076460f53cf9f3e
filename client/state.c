/* state.c -- atomic writes and bounded reads of the client's trusted-metadata files. */
#include "client/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/afile.h"

rh_err rh_state_filename(const char *role, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    char enc[RH_ROLE_FILENAME_MAX];
    rh_err rc = rh_role_filename(role, enc, sizeof(enc));
    if (rc != RH_OK)
        return rc;
    /* Upper-case letters are %XX-encoded too: on a case-insensitive file system (macOS,
     * Windows) a delegated role "Root" or "Timestamp" would otherwise overwrite root.json or
     * timestamp.json. Top-level names are lower-case, so their files keep their names. A
     * maximal name is at most 3 bytes per byte of the role either way. */
    char name[RH_ROLE_FILENAME_MAX];
    size_t o = 0;
    for (size_t i = 0; enc[i] != '\0'; i++) {
        if (enc[i] == '%') { /* an escape from rh_role_filename: copy it as it is */
            memcpy(name + o, enc + i, 3);
            o += 3;
            i += 2;
        } else if (enc[i] >= 'A' && enc[i] <= 'Z') {
            name[o++] = '%';
            name[o++] = hex[(unsigned char)enc[i] >> 4];
            name[o++] = hex[(unsigned char)enc[i] & 15];
        } else {
            name[o++] = enc[i];
        }
    }
    name[o] = '\0';
    if ((size_t)snprintf(out, outsz, "%s.json", name) >= outsz)
        return RH_EINVAL;
    return RH_OK;
}

rh_err rh_state_write(const char *dir, const char *name, const uint8_t *p, size_t n,
                      rh_error *e)
{
    /* Temp file in dir, fsync, rename over the old file, fsync dir: a crash keeps the old or
     * the new bytes, never a mix (manifest/afile). */
    return rh_file_write_atomic(dir, name, p, n, true, 0644, e);
}

rh_err rh_state_read(const char *path, size_t max, rh_buf *out, rh_error *e)
{
    /* O_NONBLOCK: a FIFO would block the open until a writer came (DESIGN 10.6: nothing
     * hangs); only regular files are read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? rh_fail(e, RH_ENOTFOUND, "%s: no such file", path)
                               : rh_fail(e, RH_EIO, "%s: %s", path, strerror(errno));
    rh_err rc = RH_OK;
    size_t total = 0;
    uint8_t buf[16384];
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rh_fail(e, RH_EIO, "%s: not a regular file", path);
        goto out;
    }
    for (;;) {
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = rh_fail(e, RH_EIO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        total += (size_t)k;
        if (total > max) {
            rc = rh_fail(e, RH_ETOOBIG, "%s: more than %zu bytes", path, max);
            goto out;
        }
        if ((rc = rh_buf_append(out, buf, (size_t)k)) != RH_OK) {
            rc = rh_fail(e, rc, "%s: %s", path, rc == RH_ENOMEM ? "out of memory" : "too big");
            goto out;
        }
    }
out:
    close(fd);
    return rc;
}
