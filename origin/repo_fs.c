/* repo_fs.c -- the origin's file system work: atomic writes, scans, streaming payload storage. */
#define _GNU_SOURCE /* syncfs(2) */
#include "origin/repo_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/afile.h"
#include "manifest/zst.h"

rh_err rh_fs_rename(const char *dir, const char *from, const char *to, rh_error *e)
{
    char *a = rh_path_join(dir, from), *b = rh_path_join(dir, to);
    rh_err rc = RH_OK;
    if (a == NULL || b == NULL)
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", dir);
    else if (rename(a, b) != 0)
        rc = rh_fail(e, RH_EIO, "%s: rename to %s failed: %s", a, b, strerror(errno));
    else
        rc = rh_file_sync_dir(dir, e);
    free(a);
    free(b);
    return rc;
}

rh_err rh_fs_highest_version(const char *dir, const char *role, uint64_t *out, rh_error *e)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return rh_fail(e, RH_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    uint64_t best = 0;
    size_t rl = strlen(role);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t i = 0;
        uint64_t v = 0;
        while (n[i] >= '0' && n[i] <= '9' && i < 19) {
            v = v * 10 + (uint64_t)(n[i] - '0');
            i++;
        }
        if (i == 0 || n[0] == '0' || n[i] != '.' || strncmp(n + i + 1, role, rl) != 0 ||
            strcmp(n + i + 1 + rl, ".json") != 0)
            continue;
        if (v > best)
            best = v;
    }
    closedir(d);
    *out = best;
    return RH_OK;
}

rh_err rh_fs_absent_or_empty(const char *path, bool *out, rh_error *e)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            *out = true;
            return RH_OK;
        }
        return rh_fail(e, RH_EIO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        *out = false;
        return RH_OK;
    }
    DIR *d = opendir(path);
    if (d == NULL)
        return rh_fail(e, RH_EIO, "%s: cannot open directory: %s", path, strerror(errno));
    bool empty = true;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = false;
            break;
        }
    closedir(d);
    *out = empty;
    return RH_OK;
}

rh_err rh_fs_mkdir(const char *path, mode_t mode, rh_error *e)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return rh_fail(e, RH_EIO, "%s: cannot create directory: %s", path, strerror(errno));
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return rh_fail(e, RH_EIO, "%s: not a directory", path);
    if ((st.st_mode & 07777) != mode && chmod(path, mode) != 0)
        return rh_fail(e, RH_EIO, "%s: chmod failed: %s", path, strerror(errno));
    return RH_OK;
}

rh_err rh_fs_lock(const char *repo, int *fd, rh_error *e)
{
    char *p = rh_path_join(repo, ".rhine-origin.lock");
    if (p == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", repo);
    rh_err rc = RH_OK;
    int f = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        rc = rh_fail(e, RH_EIO, "%s: cannot open: %s", p, strerror(errno));
    } else if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: %s", p,
                     errno == EWOULDBLOCK ? "locked by another rhine-origin" : strerror(errno));
        close(f);
    } else {
        *fd = f;
    }
    free(p);
    return rc;
}

void rh_fs_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* ---- source scan ---------------------------------------------------------------------------*/

void rh_src_list_cleanup(rh_src_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->files[i].relpath);
    free(l->files);
    for (size_t i = 0; i < l->nskipped; i++)
        free(l->skipped[i]);
    free(l->skipped);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_src(const void *a, const void *b)
{
    return strcmp(((const rh_src_file *)a)->relpath, ((const rh_src_file *)b)->relpath);
}

static rh_err add_skipped(rh_src_list *l, const char *path, const char *why)
{
    char **s = realloc(l->skipped, (l->nskipped + 1) * sizeof *s);
    if (s == NULL)
        return RH_ENOMEM;
    l->skipped = s;
    size_t n = strlen(path) + strlen(why) + 16;
    if ((s[l->nskipped] = malloc(n)) == NULL)
        return RH_ENOMEM;
    snprintf(s[l->nskipped], n, "%s: %s, skipped", path, why);
    l->nskipped++;
    return RH_OK;
}

/* Stream fd through sha256; length and digest out. */
static rh_err hash_fd(int fd, const char *path, uint64_t *len, uint8_t sha[RH_SHA256_LEN],
                      rh_error *e)
{
    rh_err rc = RH_OK;
    uint8_t *chunk = malloc(RH_ORIGIN_IO_CHUNK);
    rh_hash *h = rh_hash_new(RH_SHA256);
    uint64_t total = 0;
    if (chunk == NULL || h == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, chunk, RH_ORIGIN_IO_CHUNK);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = rh_fail(e, RH_EIO, "%s: read failed: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        total += (uint64_t)r;
        if ((rc = rh_hash_update(h, chunk, (size_t)r)) != RH_OK) {
            rc = rh_fail(e, rc, "%s: hashing failed", path);
            goto out;
        }
    }
    if ((rc = rh_hash_final(h, sha)) != RH_OK) {
        rc = rh_fail(e, rc, "%s: hashing failed", path);
        goto out;
    }
    *len = total;
out:
    rh_hash_free(h);
    free(chunk);
    return rc;
}

/* Open a regular file without following a symlink; -1 with errno otherwise. */
static int open_regular(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* root/rel is a directory (rel "" for the root itself). */
static rh_err scan_dir(const char *root, const char *rel, int depth, rh_src_list *l, rh_error *e)
{
    rh_err rc = RH_OK;
    char *dirpath = rel[0] ? rh_path_join(root, rel) : strdup(root);
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    DIR *d = NULL;
    if (dirpath == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", root);
    if (depth > RH_ORIGIN_MAX_DEPTH) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: directories nested deeper than %d", dirpath,
                     RH_ORIGIN_MAX_DEPTH);
        goto out;
    }
    if ((d = opendir(dirpath)) == NULL) {
        rc = rh_fail(e, RH_EIO, "%s: cannot open directory: %s", dirpath, strerror(errno));
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (nnames == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (nn == NULL) {
                rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", dirpath);
                goto out;
            }
            names = nn;
            cap = nc;
        }
        if ((names[nnames] = strdup(de->d_name)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", dirpath);
            goto out;
        }
        nnames++;
    }
    if (nnames > 1)
        qsort(names, nnames, sizeof *names, cmp_str);
    for (size_t i = 0; i < nnames; i++) {
        char *crel = rel[0] ? rh_path_join(rel, names[i]) : strdup(names[i]);
        char *full = crel ? rh_path_join(root, crel) : NULL;
        struct stat st;
        if (crel == NULL || full == NULL) {
            free(crel);
            free(full);
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", dirpath);
            goto out;
        }
        if (lstat(full, &st) != 0) {
            rc = rh_fail(e, RH_EIO, "%s: %s", full, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if ((rc = rh_origin_path_check(crel, full, e)) == RH_OK)
                rc = scan_dir(root, crel, depth + 1, l, e);
        } else if (S_ISREG(st.st_mode)) {
            if ((rc = rh_origin_path_check(crel, full, e)) != RH_OK) {
                /* reported */
            } else if (l->n >= RH_ORIGIN_MAX_FILES) {
                rc = rh_fail(e, RH_ETOOBIG, "%s: more than %u files", root,
                             RH_ORIGIN_MAX_FILES);
            } else {
                int fd = open_regular(full);
                if (fd < 0) {
                    rc = rh_fail(e, RH_EIO, "%s: cannot open: %s", full, strerror(errno));
                } else {
                    if (l->n == l->cap) {
                        size_t nc = l->cap ? l->cap * 2 : 64;
                        rh_src_file *nf = realloc(l->files, nc * sizeof *nf);
                        if (nf == NULL)
                            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", full);
                        else {
                            l->files = nf;
                            l->cap = nc;
                        }
                    }
                    if (rc == RH_OK) {
                        rh_src_file *f = &l->files[l->n];
                        memset(f, 0, sizeof *f);
                        rc = hash_fd(fd, full, &f->length, f->sha256, e);
                        if (rc == RH_OK) {
                            f->relpath = crel;
                            crel = NULL;
                            l->n++;
                        }
                    }
                    close(fd);
                }
            }
        } else {
            const char *why = S_ISLNK(st.st_mode)    ? "symbolic link"
                              : S_ISFIFO(st.st_mode) ? "FIFO"
                              : S_ISSOCK(st.st_mode) ? "socket"
                                                     : "device or special file";
            if (add_skipped(l, full, why) != RH_OK)
                rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", full);
        }
        free(crel);
        free(full);
        if (rc != RH_OK)
            goto out;
    }
out:
    if (d != NULL)
        closedir(d);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(dirpath);
    return rc;
}

rh_err rh_fs_scan_source(const char *root, rh_src_list *out, rh_error *e)
{
    rh_src_list l;
    memset(&l, 0, sizeof l);
    struct stat st;
    if (stat(root, &st) != 0)
        return rh_fail(e, RH_EIO, "%s: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return rh_fail(e, RH_EIO, "%s: not a directory", root);
    rh_err rc = scan_dir(root, "", 0, &l, e);
    if (rc != RH_OK) {
        rh_src_list_cleanup(&l);
        return rc;
    }
    /* Bytewise order of full paths ("a.txt" < "a/b"), which directory order does not give. */
    if (l.n > 1)
        qsort(l.files, l.n, sizeof *l.files, cmp_src);
    *out = l;
    return RH_OK;
}

/* ---- payload storage -----------------------------------------------------------------------*/

typedef struct store_sink {
    int fd;
    rh_hash *h;
    uint64_t n;
} store_sink;

static rh_err sink_write(void *ctx, const uint8_t *p, size_t n)
{
    store_sink *s = ctx;
    if (rh_file_write_all(s->fd, p, n) != RH_OK)
        return RH_EIO;
    s->n += n;
    return rh_hash_update(s->h, p, n);
}

/* mkdir -p of the directory part of rel under base. */
static rh_err mkdirs_for(const char *base, const char *rel, rh_error *e)
{
    const char *slash = strrchr(rel, '/');
    if (slash == NULL)
        return RH_OK;
    size_t bl = strlen(base), dl = (size_t)(slash - rel);
    char *p = malloc(bl + 1 + dl + 1);
    if (p == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", base);
    memcpy(p, base, bl);
    p[bl] = '/';
    memcpy(p + bl + 1, rel, dl);
    p[bl + 1 + dl] = '\0';
    rh_err rc = RH_OK;
    for (char *c = p + bl + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char save = *c;
            *c = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                rc = rh_fail(e, RH_EIO, "%s: cannot create directory: %s", p, strerror(errno));
                break;
            }
            *c = save;
            if (save == '\0')
                break;
        }
    }
    free(p);
    return rc;
}

/* rh_file_temp's names: "." + name + RH_FILE_TEMP_SUFFIX. Stored names start with hex. */
static bool temp_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] == '.' && l > RH_FILE_TEMP_EXTRA && n[l - (RH_FILE_TEMP_EXTRA - 1)] == '.';
}

static rh_err remove_temps_at(int dfd, const char *path, int depth, size_t *removed,
                              rh_error *e)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return rh_fail(e, RH_EIO, "%s: cannot read directory: %s", path, strerror(errno));
    }
    rh_err rc = RH_OK;
    struct dirent *de;
    errno = 0;
    while (rc == RH_OK && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        struct stat st;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        /* A stored file needs no stat: this runs over every payload of every publish. */
        if (de->d_type == DT_REG && !temp_name(n))
            continue;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = rh_fail(e, RH_EIO, "%s/%s: %s", path, n, strerror(errno));
        } else if (S_ISDIR(st.st_mode) && depth < RH_ORIGIN_MAX_DEPTH) {
            char *sub = rh_path_join(path, n);
            int sfd = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub == NULL)
                rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
            else if (sfd < 0)
                rc = rh_fail(e, RH_EIO, "%s: cannot open directory: %s", sub, strerror(errno));
            else {
                rc = remove_temps_at(sfd, sub, depth + 1, removed, e);
                sfd = -1;
            }
            if (sfd >= 0)
                close(sfd);
            free(sub);
        } else if (S_ISREG(st.st_mode) && temp_name(n)) {
            if (unlinkat(dirfd(d), n, 0) != 0)
                rc = rh_fail(e, RH_EIO, "%s/%s: cannot remove: %s", path, n, strerror(errno));
            else
                (*removed)++;
        }
        errno = 0;
    }
    if (rc == RH_OK && errno != 0)
        rc = rh_fail(e, RH_EIO, "%s: cannot read directory: %s", path, strerror(errno));
    closedir(d);
    return rc;
}

rh_err rh_fs_remove_temps(const char *targets_dir, size_t *removed, rh_error *e)
{
    *removed = 0;
    int dfd = open(targets_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return rh_fail(e, RH_EIO, "%s: cannot open directory: %s", targets_dir, strerror(errno));
    return remove_temps_at(dfd, targets_dir, 0, removed, e);
}

rh_err rh_store_batch_init(rh_store_batch *b, const char *targets_dir, rh_error *e)
{
    memset(b, 0, sizeof *b);
    if ((b->dir = strdup(targets_dir)) == NULL) {
        b->sfd = -1;
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", targets_dir);
    }
    if ((b->sfd = open(targets_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return rh_fail(e, RH_EIO, "%s: cannot open directory: %s", targets_dir, strerror(errno));
    return RH_OK;
}

static rh_err batch_push(rh_store_batch *b, char *tmp, const uint8_t zsha[RH_SHA256_LEN])
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct rh_store_pending *v = realloc(b->v, cap * sizeof *v);
        if (v == NULL)
            return RH_ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n].tmp = tmp;
    memcpy(b->v[b->n++].zsha, zsha, RH_SHA256_LEN);
    return RH_OK;
}

/* The stored name of a pending file: its temp name is rh_file_temp's "<dir>/.<name>.XXXXXX"
 * for the target path <dir>/<name> under the targets directory. */
static char *final_name(const rh_store_batch *b, const struct rh_store_pending *p)
{
    const char *rel = p->tmp + strlen(b->dir) + 1, *base = strrchr(rel, '/');
    base = base != NULL ? base + 1 : rel;
    size_t dl = (size_t)(base - rel), nl = strlen(base) - RH_FILE_TEMP_EXTRA;
    char *target = malloc(dl + nl + 1), *stored = NULL, *f = NULL;
    char hex[RH_SHA256_LEN * 2 + 1];
    if (target != NULL) {
        memcpy(target, rel, dl);
        memcpy(target + dl, base + 1, nl);
        target[dl + nl] = '\0';
        rh_hex_encode(p->zsha, RH_SHA256_LEN, hex);
        if ((stored = rh_target_stored_path(target, hex)) != NULL)
            f = rh_path_join(b->dir, stored);
    }
    free(target);
    free(stored);
    return f;
}

static rh_err batch_sync(rh_store_batch *b, rh_error *e)
{
    if (syncfs(b->sfd) != 0)
        return rh_fail(e, RH_EIO, "%s: syncfs failed: %s", b->dir, strerror(errno));
    return RH_OK;
}

rh_err rh_store_batch_commit(rh_store_batch *b, rh_error *e)
{
    if (b->n == 0)
        return RH_OK;
    rh_err rc = batch_sync(b, e);
    for (size_t i = 0; rc == RH_OK && i < b->n; i++) {
        char *f = final_name(b, &b->v[i]);
        if (f == NULL)
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", b->v[i].tmp);
        else if (rename(b->v[i].tmp, f) != 0)
            rc = rh_fail(e, RH_EIO, "%s: rename failed: %s", f, strerror(errno));
        free(f);
        if (rc != RH_OK)
            break;
        free(b->v[i].tmp);
        b->v[i].tmp = NULL;
    }
    if (rc == RH_OK)
        rc = batch_sync(b, e);
    return rc;
}

void rh_store_batch_cleanup(rh_store_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i].tmp != NULL) {
            unlink(b->v[i].tmp);
            free(b->v[i].tmp);
        }
    }
    free(b->v);
    free(b->dir);
    if (b->sfd >= 0)
        close(b->sfd);
    memset(b, 0, sizeof *b);
    b->sfd = -1;
}

rh_err rh_fs_store_target(rh_store_batch *b, const char *src_path, const char *target_path,
                          int level, rh_stored *out, rh_error *e)
{
    const char *targets_dir = b->dir;
    rh_err rc = RH_OK;
    rh_stored st;
    memset(&st, 0, sizeof st);
    store_sink sink = {.fd = -1, .h = NULL, .n = 0};
    rh_hash *uh = NULL;
    rh_zcomp *z = NULL;
    uint8_t *chunk = NULL;
    char *tmp = NULL, *dir = NULL, *stored_rel = NULL, *final = NULL;
    int in = -1;

    const char *slash = strrchr(target_path, '/');
    const char *name = slash ? slash + 1 : target_path;
    if ((rc = mkdirs_for(targets_dir, target_path, e)) != RH_OK)
        goto out;
    if (slash) {
        size_t tl = strlen(targets_dir), dl = (size_t)(slash - target_path);
        if ((dir = malloc(tl + 1 + dl + 1)) != NULL) {
            memcpy(dir, targets_dir, tl);
            dir[tl] = '/';
            memcpy(dir + tl + 1, target_path, dl);
            dir[tl + 1 + dl] = '\0';
        }
    } else {
        dir = strdup(targets_dir);
    }
    chunk = malloc(RH_ORIGIN_IO_CHUNK);
    uh = rh_hash_new(RH_SHA256);
    sink.h = rh_hash_new(RH_SHA256);
    if (dir == NULL || chunk == NULL || uh == NULL || sink.h == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", src_path);
        goto out;
    }
    if ((in = open_regular(src_path)) < 0) {
        rc = rh_fail(e, RH_EIO, "%s: cannot open: %s", src_path, strerror(errno));
        goto out;
    }
    if ((sink.fd = rh_file_temp(dir, name, 0644, &tmp, e)) < 0) {
        rc = e != NULL ? e->code : RH_EIO;
        goto out;
    }
    rh_zst_opts zo = {.level = level, .long_mode = 0, .workers = 0};
    if ((rc = rh_zcomp_new(&zo, sink_write, &sink, &z)) != RH_OK) {
        rc = rh_fail(e, rc, "%s: cannot start zstd at level %d", src_path, level);
        goto out;
    }
    /* Whole chunks go in as they come; a short one is the last, and goes in with the frame's
     * end: a payload that fits in one chunk is compressed knowing its size (rh_zcomp_end). */
    for (bool last = false; !last;) {
        size_t got = 0;
        while (got < RH_ORIGIN_IO_CHUNK) {
            ssize_t r = read(in, chunk + got, RH_ORIGIN_IO_CHUNK - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = rh_fail(e, RH_EIO, "%s: read failed: %s", src_path, strerror(errno));
                goto out;
            }
            if (r == 0)
                break;
            got += (size_t)r;
        }
        last = got < RH_ORIGIN_IO_CHUNK;
        st.ulen += got;
        if ((rc = rh_hash_update(uh, chunk, got)) != RH_OK ||
            (rc = (last ? rh_zcomp_end : rh_zcomp_update)(z, chunk, got, e)) != RH_OK) {
            rc = rh_fail(e, rc, "%s: compressing into %s failed", src_path, tmp);
            goto out;
        }
    }
    if ((rc = rh_hash_final(uh, st.usha)) != RH_OK || (rc = rh_hash_final(sink.h, st.zsha))) {
        rc = rh_fail(e, rc, "%s: hashing failed", src_path);
        goto out;
    }
    st.zlen = sink.n;
    int cr = close(sink.fd); /* made durable by rh_store_batch_commit */
    sink.fd = -1;
    if (cr != 0) {
        rc = rh_fail(e, RH_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    char hex[RH_SHA256_LEN * 2 + 1];
    rh_hex_encode(st.zsha, RH_SHA256_LEN, hex);
    if ((stored_rel = rh_target_stored_path(target_path, hex)) == NULL ||
        (final = rh_path_join(targets_dir, stored_rel)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", src_path);
        goto out;
    }
    if (rh_fs_stored_ok(targets_dir, stored_rel, st.zlen)) {
        st.existed = true; /* content-addressed: same name, same bytes; never rewrite it */
    } else {
        if (batch_push(b, tmp, st.zsha) != RH_OK) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", src_path);
            goto out;
        }
        tmp = NULL; /* the batch's now */
    }
    *out = st;
out:
    if (in >= 0)
        close(in);
    if (sink.fd >= 0)
        close(sink.fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    rh_zcomp_free(z);
    rh_hash_free(uh);
    rh_hash_free(sink.h);
    free(chunk);
    free(dir);
    free(stored_rel);
    free(final);
    return rc;
}

bool rh_fs_stored_ok(const char *targets_dir, const char *stored_rel, uint64_t len)
{
    char *p = rh_path_join(targets_dir, stored_rel);
    if (p == NULL)
        return false;
    struct stat st;
    bool ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len;
    free(p);
    return ok;
}
