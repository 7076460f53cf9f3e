/* test_etag.c -- the sha256 ETag cache: known answers, hashed once, invalidated by changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/etag.h"

static int make_file(char *path, size_t cap, const void *data, size_t len)
{
    snprintf(path, cap, "/tmp/rh-etag-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    if (len > 0)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    return fd;
}

static void test_known_answers(void **state)
{
    rh_etag_cache *c = rh_etag_cache_new(16);
    char path[64], hex[65];
    bool hashed = false;
    struct stat st;
    int fd;
    (void)state;
    assert_non_null(c);
    /* FIPS 180-2 "abc" */
    fd = make_file(path, sizeof(path), "abc", 3);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(rh_etag_get(c, fd, &st, hex, &hashed, NULL), RH_OK);
    assert_true(hashed);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    close(fd);
    unlink(path);
    /* empty file */
    fd = make_file(path, sizeof(path), "", 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(rh_etag_get(c, fd, &st, hex, &hashed, NULL), RH_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    close(fd);
    unlink(path);
    rh_etag_cache_free(c);
    rh_etag_cache_free(NULL);
}

static void test_hashed_once_and_invalidated(void **state)
{
    rh_etag_cache *c = rh_etag_cache_new(4);
    char path[64], hex1[65], hex2[65];
    bool hashed = false;
    struct stat st;
    size_t big = 600 * 1024 + 7; /* more than one read chunk */
    unsigned char *data = malloc(big);
    int fd;
    (void)state;
    assert_non_null(c);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    fd = make_file(path, sizeof(path), data, big);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(rh_etag_get(c, fd, &st, hex1, &hashed, NULL), RH_OK);
    assert_true(hashed);
    assert_int_equal(rh_etag_get(c, fd, &st, hex2, &hashed, NULL), RH_OK);
    assert_false(hashed); /* served from the cache */
    assert_string_equal(hex1, hex2);
    /* Rewriting the file changes its key (mtime/ctime/size): hashed again, new digest. */
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    assert_int_equal(pwrite(fd, "x", 1, 0), 1);
    assert_int_equal(futimens(fd, ts), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(rh_etag_get(c, fd, &st, hex2, &hashed, NULL), RH_OK);
    assert_true(hashed);
    assert_string_not_equal(hex1, hex2);
    /* A stat claiming more bytes than the file has (it shrank): RH_EIO, nothing cached. */
    st.st_size += 10;
    rh_error e;
    rh_error_clear(&e);
    memset(hex1, 'Z', sizeof(hex1));
    assert_int_equal(rh_etag_get(c, fd, &st, hex1, &hashed, &e), RH_EIO);
    assert_int_equal(hex1[0], 'Z'); /* untouched on failure */
    assert_non_null(strstr(e.msg, "etag:"));
    close(fd);
    unlink(path);
    free(data);
    rh_etag_cache_free(c);
}

static void test_bounded_eviction(void **state)
{
    /* 16 slots, 40 files: all answers stay right, some entries are evicted and rehashed. */
    rh_etag_cache *c = rh_etag_cache_new(1);
    char paths[40][64], hex[65], first[40][65];
    int fds[40];
    struct stat st;
    bool hashed;
    unsigned rehashed = 0;
    (void)state;
    for (int i = 0; i < 40; i++) {
        char d[24];
        snprintf(d, sizeof(d), "file %d", i);
        fds[i] = make_file(paths[i], sizeof(paths[i]), d, strlen(d));
        assert_int_equal(fstat(fds[i], &st), 0);
        assert_int_equal(rh_etag_get(c, fds[i], &st, first[i], &hashed, NULL), RH_OK);
        assert_true(hashed);
    }
    for (int i = 0; i < 40; i++) {
        assert_int_equal(fstat(fds[i], &st), 0);
        assert_int_equal(rh_etag_get(c, fds[i], &st, hex, &hashed, NULL), RH_OK);
        assert_string_equal(hex, first[i]);
        rehashed += hashed;
        close(fds[i]);
        unlink(paths[i]);
    }
    assert_true(rehashed >= 40 - 16); /* at most 16 entries survive */
    rh_etag_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_hashed_once_and_invalidated),
        cmocka_unit_test(test_bounded_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
