/* afile.h -- durable file writes: the one "write a file so a crash leaves the old or the new
 * bytes" helper (temp file in the same directory, fsync, rename or link, fsync the directory),
 * shared by origin, key files, mirror and client state. */
#ifndef RH_AFILE_H
#define RH_AFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

/* "a" + "/" + "b" in a new string (NULL on OOM). */
char *rh_path_join(const char *a, const char *b);

/* write(2) all n bytes, retrying on EINTR. RH_OK or RH_EIO (errno set). */
rh_err rh_file_write_all(int fd, const uint8_t *p, size_t n) __attribute__((warn_unused_result));

/* pwrite(2) all n bytes at offset off, retrying on EINTR. RH_OK or RH_EIO (errno set; EIO
 * when the file takes no byte at all). */
rh_err rh_file_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
    __attribute__((warn_unused_result));

/* A new temp file "<dir>/.<name>.XXXXXX" with mode; returns its fd and *tmp_out its malloc'd
 * path (the caller unlinks and frees it), or -1 with the reason in e. */
#define RH_FILE_TEMP_SUFFIX ".XXXXXX" /* mkstemp(3) fills in the X's */
#define RH_FILE_TEMP_EXTRA  (1 + sizeof RH_FILE_TEMP_SUFFIX - 1) /* the leading '.', the suffix */
int rh_file_temp(const char *dir, const char *name, mode_t mode, char **tmp_out, rh_error *e);

/* Read the whole file at path, at most max bytes (RH_ETOOBIG), appending to out.
 * RH_ENOTFOUND when it does not exist, RH_EIO otherwise; messages name the path. */
rh_err rh_file_read(const char *path, size_t max, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

/* Write dir/name atomically: a temp file in dir with mode, fsync, then rename over the old file
 * (replace) or link to a name that must not exist yet (!replace: RH_EIO "exists": published files
 * are immutable), then fsync dir. Returns RH_OK, RH_EIO, RH_ENOMEM. */
rh_err rh_file_write_atomic(const char *dir, const char *name, const uint8_t *data, size_t len,
                            bool replace, mode_t mode, rh_error *e)
    __attribute__((warn_unused_result));

/* fsync a directory (makes renames and new names in it durable). RH_EIO on failure. */
rh_err rh_file_sync_dir(const char *dir, rh_error *e) __attribute__((warn_unused_result));

#endif
