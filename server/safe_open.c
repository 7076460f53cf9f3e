/* safe_open.c -- open a regular file strictly beneath a directory fd, never through a symlink. */
#include "server/safe_open.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#define RH_OPEN_FILE_FLAGS (O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)

static int finish(int fd, struct stat *st)
{
    struct stat s;
    if (fstat(fd, &s) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(s.st_mode)) {
        close(fd);
        errno = ENOENT; /* directories, fifos, devices are never served */
        return -1;
    }
    *st = s;
    return fd;
}

static int map_errno(int e)
{
    /* Everything that means "not a plain file beneath the root" is ENOENT for the caller. */
    switch (e) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EIO:
        return e;
    default:
        return ENOENT;
    }
}

static int open_walk(int rootfd, const char *relpath, struct stat *st)
{
    int cur = rootfd;
    const char *p = relpath;
    char comp[256];

    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        int next;

        if (n == 0 || n >= sizeof(comp) || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            if (cur != rootfd)
                close(cur);
            errno = ENOENT;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (slash)
            next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        else
            next = openat(cur, comp, RH_OPEN_FILE_FLAGS);
        int e = errno;
        if (cur != rootfd)
            close(cur);
        if (next < 0) {
            errno = map_errno(e);
            return -1;
        }
        if (!slash)
            return finish(next, st);
        cur = next;
        p = slash + 1;
    }
}

/* Every component non-empty and neither "." nor "..": RESOLVE_BENEATH alone would still
 * accept "a/../b", and the walk must never climb. */
static bool components_ok(const char *p)
{
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

int rh_open_beneath(int rootfd, const char *relpath, rh_open_mode mode, struct stat *st)
{
    if (!components_ok(relpath)) {
        errno = ENOENT;
        return -1;
    }
#ifdef SYS_openat2
    if (mode == RH_OPEN_AUTO) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = (uint64_t)RH_OPEN_FILE_FLAGS;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        long fd = syscall(SYS_openat2, rootfd, relpath, &how, sizeof(how));
        if (fd >= 0)
            return finish((int)fd, st);
        if (errno != ENOSYS && errno != EPERM && errno != EINVAL) {
            errno = map_errno(errno);
            return -1;
        }
        /* kernel without openat2 (or a seccomp filter): fall back to the walk */
    }
#endif
    (void)mode;
    return open_walk(rootfd, relpath, st);
}
