/* mfs.h -- the mirror's file-system helpers: bounded reads, durable writes and renames,
 * directory creation and walks of the data directory. */
#ifndef RH_MIRROR_MFS_H
#define RH_MIRROR_MFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

/* Deepest directory nesting a walk follows, and most files it lists. */
#define RH_MIRROR_MAX_DEPTH 64
#define RH_MIRROR_MAX_FILES 4000000u

/* Append the contents of path to out (at most max bytes, else RH_ETOOBIG). Returns RH_OK,
 * RH_ENOTFOUND (no such file), RH_EIO, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_mfs_read(const char *path, size_t max, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

/* Write data to path durably: create/truncate, write, fsync, close (no rename). */
rh_err rh_mfs_write(const char *path, const void *data, size_t n, rh_error *e)
    __attribute__((warn_unused_result));

/* Write via path.tmp, fsync, rename over path, fsync the directory. */
rh_err rh_mfs_write_atomic(const char *path, const void *data, size_t n, rh_error *e)
    __attribute__((warn_unused_result));

/* mkdir -p of dir (mode 0755); fsyncs each parent of a directory it creates. */
rh_err rh_mfs_mkdirs(const char *dir, rh_error *e) __attribute__((warn_unused_result));

/* mkdir -p of the directory part of path. */
rh_err rh_mfs_mkparent(const char *path, rh_error *e) __attribute__((warn_unused_result));

/* mkdir -p of the directory part of path without fsyncing anything: for trees the caller makes
 * durable as a whole with rh_mfs_syncfs (one journal commit instead of one per directory). */
rh_err rh_mfs_mkparent_nosync(const char *path, rh_error *e) __attribute__((warn_unused_result));

/* syncfs(2) the file system holding path (a directory): every file, directory entry and rename
 * on it is durable when this returns RH_OK. */
rh_err rh_mfs_syncfs(const char *path, rh_error *e) __attribute__((warn_unused_result));

/* fsync a directory. */
rh_err rh_mfs_fsync_dir(const char *dir, rh_error *e) __attribute__((warn_unused_result));

/* Every regular file under base/sub (recursively), as "sub/..." paths relative to base,
 * appended to *v (malloc'ed strings; *v grown with realloc). A missing base/sub lists nothing.
 * Symbolic links and special files are skipped. Returns RH_OK, RH_EIO, RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_mfs_list(const char *base, const char *sub, char ***v, size_t *n, rh_error *e)
    __attribute__((warn_unused_result));

/* Remove empty directories under dir (not dir itself), bottom-up. Best effort. */
void rh_mfs_prune_dirs(const char *dir);

void rh_mfs_strv_free(char **v, size_t n); /* accepts NULL */

/* Join a and b with '/' into a new string (NULL on OOM or overlong). */
char *rh_mfs_join(const char *a, const char *b);

#endif
