/* test_flusher.c -- the writeback thread of the downloader: every descriptor handed over is
 * closed by rh_flusher_free, whether it went through the thread, through a full queue (inline)
 * or without a flusher at all; the bytes written before are intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mirror/flusher.h"

#define N 100

static char g_dir[64];

static int open_written(int i)
{
    char p[128], data[64];
    snprintf(p, sizeof p, "%s/f%d", g_dir, i);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    int n = snprintf(data, sizeof data, "file %d\n", i);
    assert_int_equal(write(fd, data, (size_t)n), n);
    return fd;
}

static void assert_closed(int fd)
{
    errno = 0;
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
}

static void assert_contents(int i)
{
    char p[128], want[64], got[64] = {0};
    snprintf(p, sizeof p, "%s/f%d", g_dir, i);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(got, 1, sizeof got - 1, fp);
    fclose(fp);
    snprintf(want, sizeof want, "file %d\n", i);
    assert_int_equal(n, strlen(want));
    assert_string_equal(got, want);
    unlink(p);
}

static void run(rh_flusher *f)
{
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = open_written(i);
        rh_flusher_put(f, fds[i]);
    }
    rh_flusher_free(f); /* no descriptor is opened after this: numbers are not reused */
    for (int i = 0; i < N; i++) {
        assert_closed(fds[i]);
        assert_contents(i);
    }
}

static void test_thread(void **state)
{
    (void)state;
    rh_flusher *f = rh_flusher_new(N);
    assert_non_null(f);
    run(f);
}

static void test_full_queue_goes_inline(void **state)
{
    (void)state;
    rh_flusher *f = rh_flusher_new(3); /* most puts find the queue full */
    assert_non_null(f);
    run(f);
}

static void test_no_flusher(void **state)
{
    (void)state;
    assert_null(rh_flusher_new(0));
    run(NULL);
    rh_flusher_put(NULL, -1); /* ignored */
    rh_flusher_free(NULL);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/rh_test_flusher.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread),
        cmocka_unit_test(test_full_queue_goes_inline),
        cmocka_unit_test(test_no_flusher),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(g_dir);
    return rc;
}
