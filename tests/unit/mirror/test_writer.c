/* test_writer.c -- the downloader's writer threads: aligned bytes of an O_DIRECT file go
 * direct and the unaligned tail through the page cache, with the file's bytes intact; a file
 * system or offset that refuses direct writes gets the same bytes through the page cache;
 * the ops on one descriptor run in the order given (overlapping writes end as the last one
 * says) and rh_writer_wait hands the file back; copies of transient bytes keep their place; a failed write is reported once, naming the
 * file, and later writes are skipped; every buffer is released exactly once and every
 * descriptor handed over is closed; all of it also inline, without threads. */
#define _GNU_SOURCE /* O_DIRECT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirror/writer.h"

#define BLK 65536u
#define TAIL 5000u /* not a multiple of RH_WRITER_ALIGN */
#define NBUF 8

static char g_dir[64];
static uint8_t *g_buf[NBUF]; /* aligned buffers */
static int g_released[NBUF];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void release(void *ctx, uint8_t *buf)
{
    (void)ctx;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < NBUF; i++)
        if (g_buf[i] == buf)
            g_released[i]++;
    pthread_mutex_unlock(&g_mu);
}

static void fill(int i, uint8_t seed)
{
    for (size_t k = 0; k < BLK; k++)
        g_buf[i][k] = (uint8_t)(seed + k * 31u + (k >> 9));
}

static int open_file(const char *name, int extra)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | extra, 0644);
}

/* The file's bytes are want[0..n). */
static void assert_file(const char *name, const uint8_t *want, size_t n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    uint8_t *got = malloc(n + 1);
    assert_non_null(got);
    size_t k = fread(got, 1, n + 1, fp);
    fclose(fp);
    assert_int_equal(k, n);
    if (n > 0)
        assert_memory_equal(got, want, n);
    free(got);
}

static void assert_closed(int fd)
{
    errno = 0;
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
}

/* Whether this directory's file system takes O_DIRECT at all (tmpfs before Linux 6.6 does
 * not): then the counts below are checked; either way the bytes are. */
static bool direct_ok(void)
{
    int fd = open_file("probe", O_DIRECT);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/rh_test_writer.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    for (int i = 0; i < NBUF; i++) {
        if (posix_memalign((void **)&g_buf[i], RH_WRITER_ALIGN, BLK) != 0)
            return -1;
        g_released[i] = 0;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *names[] = {"probe", "d", "u", "o", "ro", "after"};
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        unlink(p);
    }
    rmdir(g_dir);
    for (int i = 0; i < NBUF; i++)
        free(g_buf[i]);
    return 0;
}

/* Two whole blocks and a tail of TAIL bytes to an O_DIRECT file, then closed by the writer. */
static void direct_file(size_t lanes)
{
    bool dio = direct_ok();
    rh_writer *w = rh_writer_new(lanes, 4, release, NULL);
    assert_non_null(w);
    int fd = open_file("d", dio ? O_DIRECT : 0);
    assert_true(fd >= 0);
    uint8_t *want = malloc(2 * BLK + TAIL);
    assert_non_null(want);
    for (int i = 0; i < 3; i++) {
        fill(i, (uint8_t)(i * 50));
        size_t n = i < 2 ? BLK : TAIL;
        memcpy(want + (size_t)i * BLK, g_buf[i], n);
        rh_writer_write(w, fd, g_buf[i], n, (uint64_t)i * BLK, "targets/d");
    }
    rh_writer_close(w, fd, true);
    rh_writer_stats st = {0, 0};
    char msg[256] = "x";
    assert_false(rh_writer_free(w, &st, msg, sizeof msg));
    assert_string_equal(msg, "");
    assert_closed(fd);
    assert_file("d", want, 2 * BLK + TAIL);
    if (dio) {
        uint64_t head = TAIL - TAIL % RH_WRITER_ALIGN;
        assert_int_equal(st.direct, 2 * BLK + head);
        assert_int_equal(st.buffered, TAIL - head);
    } else {
        assert_int_equal(st.direct, 0);
        assert_int_equal(st.buffered, 2 * BLK + TAIL);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(g_released[i], 1);
    free(want);
}

static void test_direct_with_tail(void **state)
{
    (void)state;
    direct_file(2);
}

static void test_direct_with_tail_inline(void **state)
{
    (void)state;
    direct_file(0);
}

/* An unaligned offset (a resumed file) cannot go direct: the same bytes through the page
 * cache, and the descriptor's O_DIRECT is cleared. */
static void test_unaligned_offset_goes_through_the_page_cache(void **state)
{
    (void)state;
    bool dio = direct_ok();
    rh_writer *w = rh_writer_new(1, 4, release, NULL);
    assert_non_null(w);
    int fd = open_file("u", dio ? O_DIRECT : 0);
    assert_true(fd >= 0);
    uint8_t *want = calloc(1, 100 + BLK);
    assert_non_null(want);
    fill(0, 7);
    memcpy(want + 100, g_buf[0], BLK);
    rh_writer_write(w, fd, g_buf[0], BLK, 100, "targets/u");
    rh_writer_wait(w, fd);
    assert_int_equal(fcntl(fd, F_GETFL) & O_DIRECT, 0);
    assert_file("u", want, 100 + BLK);
    rh_writer_stats st = {0, 0};
    assert_false(rh_writer_free(w, &st, NULL, 0));
    assert_int_equal(st.direct, 0);
    assert_int_equal(st.buffered, BLK);
    assert_int_equal(g_released[0], 1);
    close(fd); /* waited for, not handed over: still the caller's */
    free(want);
}

/* NBUF writes to the same range of one file, queued faster than they run: the last one
 * wins, so they ran in order; after rh_writer_wait the file is the caller's to read. */
static void ordered(size_t lanes)
{
    rh_writer *w = rh_writer_new(lanes, 2, release, NULL);
    assert_non_null(w);
    int fd = open_file("o", direct_ok() ? O_DIRECT : 0);
    assert_true(fd >= 0);
    for (int i = 0; i < NBUF; i++) {
        fill(i, (uint8_t)(100 + i));
        rh_writer_write(w, fd, g_buf[i], BLK, 0, "targets/o");
    }
    rh_writer_wait(w, fd);
    assert_file("o", g_buf[NBUF - 1], BLK);
    for (int i = 0; i < NBUF; i++)
        assert_int_equal(g_released[i], 1);
    rh_writer_close(w, fd, true);
    assert_false(rh_writer_free(w, NULL, NULL, 0));
    assert_closed(fd);
}

static void test_one_file_in_order(void **state)
{
    (void)state;
    ordered(3); /* several lanes: fd % lanes picks one */
}

static void test_one_file_in_order_inline(void **state)
{
    (void)state;
    ordered(0);
}

/* Bytes the caller cannot keep are copied, queued behind the file's earlier writes: a block,
 * then 1000 bytes from a buffer the caller scribbles over at once, then a block at the
 * unaligned offset that follows (through the page cache). The file is the three in order;
 * the copy is freed by the writer, not released. */
static void test_copies_keep_their_place(void **state)
{
    (void)state;
    rh_writer *w = rh_writer_new(2, 4, release, NULL);
    assert_non_null(w);
    int fd = open_file("o", direct_ok() ? O_DIRECT : 0);
    assert_true(fd >= 0);
    size_t total = 2 * BLK + 1000;
    uint8_t *want = malloc(total);
    assert_non_null(want);
    uint8_t mid[1000];
    fill(0, 3);
    fill(1, 9);
    for (size_t k = 0; k < sizeof mid; k++)
        mid[k] = (uint8_t)(k * 7u + 1u);
    memcpy(want, g_buf[0], BLK);
    memcpy(want + BLK, mid, sizeof mid);
    memcpy(want + BLK + sizeof mid, g_buf[1], BLK);
    rh_writer_write(w, fd, g_buf[0], BLK, 0, "targets/o");
    assert_true(rh_writer_write_copy(w, fd, mid, sizeof mid, BLK, "targets/o"));
    memset(mid, 0xee, sizeof mid); /* the caller's buffer is gone */
    rh_writer_write(w, fd, g_buf[1], BLK, BLK + 1000, "targets/o");
    rh_writer_close(w, fd, true);
    rh_writer_stats st = {0, 0};
    assert_false(rh_writer_free(w, &st, NULL, 0));
    assert_file("o", want, total);
    assert_int_equal(st.direct + st.buffered, total);
    assert_int_equal(g_released[0], 1);
    assert_int_equal(g_released[1], 1);
    assert_closed(fd);
    free(want);
}

/* A write that fails (read-only descriptor) is the writer's error, naming the file; a later
 * write to a good file is skipped (staging files stay prefixes of what was sent), its buffer
 * still released and its descriptor still closed. */
static void failing(size_t lanes)
{
    rh_writer *w = rh_writer_new(lanes, 4, release, NULL);
    assert_non_null(w);
    int ro = open_file("ro", 0);
    assert_true(ro >= 0);
    close(ro);
    char p[128];
    snprintf(p, sizeof p, "%s/ro", g_dir);
    ro = open(p, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    int good = open_file("after", 0);
    assert_true(good >= 0);
    fill(0, 1);
    fill(1, 2);
    rh_writer_write(w, ro, g_buf[0], BLK, 0, "targets/ro");
    rh_writer_wait(w, ro);
    assert_true(rh_writer_failed(w));
    rh_writer_write(w, good, g_buf[1], BLK, 0, "targets/after");
    assert_true(rh_writer_write_copy(w, good, g_buf[2], 100, BLK, "targets/after"));
    rh_writer_close(w, ro, false);
    rh_writer_close(w, good, true);
    char msg[256];
    rh_writer_stats st = {0, 0};
    assert_true(rh_writer_free(w, &st, msg, sizeof msg));
    assert_string_equal(msg, "staging file targets/ro: write: Bad file descriptor");
    assert_int_equal(st.direct + st.buffered, 0);
    assert_int_equal(g_released[0], 1);
    assert_int_equal(g_released[1], 1);
    assert_closed(ro);
    assert_closed(good);
    assert_file("after", NULL, 0);
}

static void test_failure_is_kept_and_stops_writing(void **state)
{
    (void)state;
    failing(2);
}

static void test_failure_is_kept_and_stops_writing_inline(void **state)
{
    (void)state;
    failing(0);
}

static void test_free_null(void **state)
{
    (void)state;
    char msg[8] = "x";
    assert_false(rh_writer_free(NULL, NULL, msg, sizeof msg));
    assert_string_equal(msg, "x"); /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_direct_with_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_with_tail_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_offset_goes_through_the_page_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_file_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_file_in_order_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copies_keep_their_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_kept_and_stops_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_kept_and_stops_writing_inline, setup,
                                        teardown),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
