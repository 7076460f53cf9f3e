/* safe_open.h -- open a regular file strictly beneath a directory fd, never through a symlink. */
#ifndef RH_SAFE_OPEN_H
#define RH_SAFE_OPEN_H

#include <sys/stat.h>

typedef enum rh_open_mode {
    RH_OPEN_AUTO = 0, /* openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), else the walk */
    RH_OPEN_WALK = 1, /* openat(O_NOFOLLOW) component by component (the fallback) */
} rh_open_mode;

/* Opens relpath (relative, '/'-separated, as produced by rh_http_path_decode) under rootfd
 * read-only. Every component must be a real directory and the last a regular file; a symlink
 * anywhere, "." or "..", or any other file type fails. Returns the fd (O_CLOEXEC) and fills
 * *st, or -1 with errno set (ENOENT for "not a servable file", EMFILE/ENFILE/EIO as is). */
int rh_open_beneath(int rootfd, const char *relpath, rh_open_mode mode, struct stat *st);

#endif
