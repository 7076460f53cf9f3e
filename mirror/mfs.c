/* mfs.c -- the mirror's file-system helpers (bounded reads, durable writes, walks). */
#define _GNU_SOURCE /* syncfs(2) */
#include "mirror/mfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/afile.h"

char *rh_mfs_join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na + nb + 2 > PATH_MAX)
        return NULL;
    char *s = malloc(na + nb + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

void rh_mfs_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

rh_err rh_mfs_read(const char *path, size_t max, rh_buf *out, rh_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return rh_fail(e, RH_ENOTFOUND, "%s: no such file", path);
        return rh_fail(e, RH_EIO, "%s: %s", path, strerror(errno));
    }
    rh_err rc = RH_OK;
    size_t total = 0;
    uint8_t chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = rh_fail(e, RH_EIO, "%s: read: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        total += (size_t)r;
        if (total > max) {
            rc = rh_fail(e, RH_ETOOBIG, "%s: more than %zu bytes", path, max);
            break;
        }
        rc = rh_buf_append(out, chunk, (size_t)r);
        if (rc != RH_OK) {
            rh_fail(e, rc, "%s: %s", path, rc == RH_ENOMEM ? "out of memory" : "too big");
            break;
        }
    }
    close(fd);
    return rc;
}

rh_err rh_mfs_write(const char *path, const void *data, size_t n, rh_error *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return rh_fail(e, RH_EIO, "%s: %s", path, strerror(errno));
    rh_err rc = RH_OK;
    if (rh_file_write_all(fd, data, n) != RH_OK)
        rc = rh_fail(e, RH_EIO, "%s: write: %s", path, strerror(errno));
    if (rc == RH_OK && fsync(fd) != 0)
        rc = rh_fail(e, RH_EIO, "%s: fsync: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == RH_OK)
        rc = rh_fail(e, RH_EIO, "%s: close: %s", path, strerror(errno));
    if (rc != RH_OK)
        unlink(path);
    return rc;
}

/* fsync(2) dir, or syncfs(2) the whole file system holding it. */
static rh_err dir_sync(const char *dir, bool whole_fs, rh_error *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rh_fail(e, RH_EIO, "%s: %s", dir, strerror(errno));
    rh_err rc = RH_OK;
    if (whole_fs ? syncfs(fd) != 0 : (fsync(fd) != 0 && errno != EINVAL))
        rc = rh_fail(e, RH_EIO, "%s: %s: %s", dir, whole_fs ? "syncfs" : "fsync",
                     strerror(errno));
    close(fd);
    return rc;
}

rh_err rh_mfs_fsync_dir(const char *dir, rh_error *e)
{
    return dir_sync(dir, false, e);
}

rh_err rh_mfs_syncfs(const char *path, rh_error *e)
{
    return dir_sync(path, true, e);
}

static rh_err dir_of(const char *path, char *out, size_t outsz, rh_error *e)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    if (n + 1 > outsz)
        return rh_fail(e, RH_ETOOBIG, "%s: path too long", path);
    if (slash == NULL)
        memcpy(out, ".", 2);
    else {
        memcpy(out, slash == path ? "/" : path, n);
        out[n] = '\0';
    }
    return RH_OK;
}

rh_err rh_mfs_write_atomic(const char *path, const void *data, size_t n, rh_error *e)
{
    char dir[PATH_MAX];
    rh_err rc = dir_of(path, dir, sizeof dir, e);
    if (rc != RH_OK)
        return rc;
    const char *slash = strrchr(path, '/');
    return rh_file_write_atomic(dir, slash == NULL ? path : slash + 1, data, n, true, 0644, e);
}

static rh_err mkdirs(const char *dir, bool durable, rh_error *e)
{
    char p[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p)
        return rh_fail(e, RH_ETOOBIG, "%s: path too long", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        struct stat st;
        if (stat(p, &st) != 0) {
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                rh_err rc = rh_fail(e, RH_EIO, "%s: mkdir: %s", p, strerror(errno));
                return rc;
            }
            char parent[PATH_MAX];
            if (durable && dir_of(p, parent, sizeof parent, NULL) == RH_OK &&
                rh_mfs_fsync_dir(parent, NULL) != RH_OK)
                parent[0] = '\0'; /* best effort: the rename that follows is fsynced */
        } else if (!S_ISDIR(st.st_mode)) {
            return rh_fail(e, RH_EIO, "%s: not a directory", p);
        }
        p[i] = c;
    }
    return RH_OK;
}

rh_err rh_mfs_mkdirs(const char *dir, rh_error *e)
{
    return mkdirs(dir, true, e);
}

static rh_err mkparent(const char *path, bool durable, rh_error *e)
{
    char dir[PATH_MAX];
    rh_err rc = dir_of(path, dir, sizeof dir, e);
    if (rc != RH_OK)
        return rc;
    return mkdirs(dir, durable, e);
}

rh_err rh_mfs_mkparent(const char *path, rh_error *e)
{
    return mkparent(path, true, e);
}

rh_err rh_mfs_mkparent_nosync(const char *path, rh_error *e)
{
    return mkparent(path, false, e);
}

static rh_err list_rec(const char *base, const char *rel, int depth, char ***v, size_t *n,
                       size_t *cap, rh_error *e)
{
    if (depth > RH_MIRROR_MAX_DEPTH)
        return rh_fail(e, RH_ETOOBIG, "%s/%s: nested too deep", base, rel);
    char *full = rh_mfs_join(base, rel);
    if (full == NULL)
        return rh_fail(e, RH_ENOMEM, "%s/%s: out of memory or too long", base, rel);
    DIR *d = opendir(full);
    if (d == NULL) {
        rh_err rc = RH_OK;
        if (errno != ENOENT && errno != ENOTDIR)
            rc = rh_fail(e, RH_EIO, "%s: %s", full, strerror(errno));
        free(full);
        return rc;
    }
    rh_err rc = RH_OK;
    struct dirent *de;
    while (rc == RH_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *r = rh_mfs_join(rel, de->d_name);
        if (r == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory or too long", full);
            break;
        }
        char *f = rh_mfs_join(base, r);
        struct stat st;
        if (f == NULL) {
            free(r);
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory or too long", full);
            break;
        }
        if (lstat(f, &st) != 0) {
            free(f);
            free(r);
            continue; /* vanished meanwhile */
        }
        free(f);
        if (S_ISDIR(st.st_mode)) {
            rc = list_rec(base, r, depth + 1, v, n, cap, e);
            free(r);
        } else if (S_ISREG(st.st_mode)) {
            if (*n >= RH_MIRROR_MAX_FILES) {
                free(r);
                rc = rh_fail(e, RH_ETOOBIG, "%s: more than %u files", base,
                             RH_MIRROR_MAX_FILES);
                break;
            }
            if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                char **nv = realloc(*v, nc * sizeof *nv);
                if (nv == NULL) {
                    free(r);
                    rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", base);
                    break;
                }
                *v = nv;
                *cap = nc;
            }
            (*v)[(*n)++] = r;
        } else {
            free(r);
        }
    }
    closedir(d);
    free(full);
    return rc;
}

rh_err rh_mfs_list(const char *base, const char *sub, char ***v, size_t *n, rh_error *e)
{
    size_t cap = *n; /* callers start from an exact-size or empty vector */
    return list_rec(base, sub, 0, v, n, &cap, e);
}

static bool prune_rec(const char *dir, int depth)
{
    if (depth > RH_MIRROR_MAX_DEPTH)
        return false;
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    bool empty = true;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *f = rh_mfs_join(dir, de->d_name);
        struct stat st;
        if (f != NULL && lstat(f, &st) == 0 && S_ISDIR(st.st_mode) && prune_rec(f, depth + 1) &&
            rmdir(f) == 0) {
            free(f);
            continue;
        }
        free(f);
        empty = false;
    }
    closedir(d);
    return empty;
}

void rh_mfs_prune_dirs(const char *dir)
{
    (void)prune_rec(dir, 0);
}
