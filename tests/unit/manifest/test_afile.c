/* test_afile.c -- durable writes: replace or never replace, mode, no temp left, bounded reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/afile.h"

static char dir[] = "/tmp/rh-afile-XXXXXX";

static int setup(void **state)
{
    (void)state;
    memcpy(dir + sizeof dir - 7, "XXXXXX", 6);
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    return rmdir(dir);
}

static size_t entries(void)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0; /* temps too */
    if (d != NULL)
        closedir(d);
    return n;
}

static void read_back(const char *name, const char *want)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    rh_buf b;
    rh_buf_init(&b, 1024);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_file_read(p, 1024, &b, &e), RH_OK);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    rh_buf_cleanup(&b);
}

static void test_write_replace_and_immutable(void **state)
{
    (void)state;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_file_write_atomic(dir, "a", (const uint8_t *)"one", 3, false, 0644, &e),
                     RH_OK);
    read_back("a", "one");
    /* !replace: a published name is never overwritten, the old bytes stay. */
    assert_int_equal(rh_file_write_atomic(dir, "a", (const uint8_t *)"two", 3, false, 0644, &e),
                     RH_EIO);
    assert_non_null(strstr(e.msg, "exists already"));
    read_back("a", "one");
    rh_error_clear(&e);
    assert_int_equal(rh_file_write_atomic(dir, "a", (const uint8_t *)"three", 5, true, 0600, &e),
                     RH_OK);
    read_back("a", "three");
    char p[512];
    snprintf(p, sizeof p, "%s/a", dir);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(entries(), 1); /* no temp file left behind, even after the refusal */
}

/* pwrite of all bytes at an offset, around what is there; a read-only descriptor is RH_EIO. */
static void test_pwrite_all(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/pw", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(rh_file_write_all(fd, (const uint8_t *)"abcdef", 6), RH_OK);
    assert_int_equal(rh_file_pwrite_all(fd, (const uint8_t *)"XY", 2, 2), RH_OK);
    assert_int_equal(rh_file_pwrite_all(fd, (const uint8_t *)"Z", 1, 8), RH_OK); /* a hole */
    close(fd);
    rh_buf b;
    rh_buf_init(&b, 64);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_file_read(p, 64, &b, &e), RH_OK);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "abXYef\0\0Z", 9);
    rh_buf_cleanup(&b);
    fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(rh_file_pwrite_all(fd, (const uint8_t *)"Q", 1, 0), RH_EIO);
    close(fd);
}

static void test_read_limits(void **state)
{
    (void)state;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_file_write_atomic(dir, "b", (const uint8_t *)"12345", 5, true, 0644, &e),
                     RH_OK);
    char p[512];
    snprintf(p, sizeof p, "%s/b", dir);
    rh_buf b;
    rh_buf_init(&b, 1024);
    assert_int_equal(rh_file_read(p, 4, &b, &e), RH_ETOOBIG);
    assert_non_null(strstr(e.msg, "/b: more than the limit of 4 bytes"));
    rh_buf_reset(&b);
    rh_error_clear(&e);
    snprintf(p, sizeof p, "%s/missing", dir);
    assert_int_equal(rh_file_read(p, 4, &b, &e), RH_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/missing: does not exist"));
    rh_buf_cleanup(&b);
    rh_error_clear(&e);
    assert_int_equal(rh_file_write_atomic("/nonexistent-rh-dir", "x", (const uint8_t *)"1", 1,
                                          true, 0644, &e),
                     RH_EIO);
    assert_non_null(strstr(e.msg, "/nonexistent-rh-dir/x: cannot create a temporary file"));
    rh_error_clear(&e);
    assert_int_equal(rh_file_sync_dir("/nonexistent-rh-dir", &e), RH_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_replace_and_immutable),
        cmocka_unit_test(test_read_limits),
        cmocka_unit_test(test_pwrite_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
