/* test_safe_open.c -- opening beneath the root: symlinks, dot-dot, non-regular files, both modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/safe_open.h"

static char base[64];
static int rootfd = -1;

static void put(const char *rel, const char *data)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static int setup(void **state)
{
    char p[256];
    (void)state;
    snprintf(base, sizeof(base), "/tmp/rh-sopen-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(p, sizeof(p), "%s/root", base);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/root/sub", base);
    mkdir(p, 0755);
    put("secret", "outside");
    put("root/a.txt", "A");
    put("root/sub/b.txt", "BB");
    snprintf(p, sizeof(p), "%s/root/esc", base);
    if (symlink("../secret", p) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root/inner", base);
    if (symlink("a.txt", p) != 0) /* even a symlink that stays inside is refused */
        return -1;
    snprintf(p, sizeof(p), "%s/root/subl", base);
    if (symlink("sub", p) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root/abs", base);
    if (symlink("/etc/passwd", p) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root/fifo", base);
    if (mkfifo(p, 0644) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root", base);
    rootfd = open(p, O_RDONLY | O_DIRECTORY);
    return rootfd >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    close(rootfd);
    static const char *rel[] = {"root/a.txt", "root/sub/b.txt", "root/esc", "root/inner",
                                "root/subl", "root/abs", "root/fifo", "secret"};
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(cmd, sizeof(cmd), "%s/%s", base, rel[i]);
        unlink(cmd);
    }
    snprintf(cmd, sizeof(cmd), "%s/root/sub", base);
    rmdir(cmd);
    snprintf(cmd, sizeof(cmd), "%s/root", base);
    rmdir(cmd);
    rmdir(base);
    return 0;
}

static void check_mode(rh_open_mode mode)
{
    static const struct {
        const char *rel;
        long size; /* -1: must fail with ENOENT */
    } t[] = {
        {"a.txt", 1},       {"sub/b.txt", 2},   {"esc", -1},      {"inner", -1},
        {"subl/b.txt", -1}, {"abs", -1},        {"fifo", -1},     {"sub", -1},
        {"../secret", -1},  {"sub/../a.txt", -1}, {"./a.txt", -1}, {"missing", -1},
        {"a.txt/x", -1},    {"/etc/passwd", -1}, {"", -1},         {"sub//b.txt", -1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct stat st;
        errno = 0;
        int fd = rh_open_beneath(rootfd, t[i].rel, mode, &st);
        if (t[i].size < 0) {
            if (fd >= 0)
                fail_msg("mode %d: \"%s\" opened but must not", mode, t[i].rel);
            assert_int_equal(errno, ENOENT);
        } else {
            if (fd < 0)
                fail_msg("mode %d: \"%s\" failed: %s", mode, t[i].rel, strerror(errno));
            assert_true(S_ISREG(st.st_mode));
            assert_int_equal(st.st_size, t[i].size);
            assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
            close(fd);
        }
    }
}

static void test_auto(void **state)
{
    (void)state;
    check_mode(RH_OPEN_AUTO);
}

static void test_walk(void **state)
{
    (void)state;
    check_mode(RH_OPEN_WALK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_walk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
