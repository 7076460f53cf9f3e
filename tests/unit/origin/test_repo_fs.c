/* test_repo_fs.c -- the origin's file system layer in a scratch directory: atomic and immutable
 * writes, version discovery, the source scan, streaming payload storage and the order of its
 * syncs and renames, the lock. */
#define _GNU_SOURCE /* RTLD_NEXT, syncfs(2) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/hash.h"
#include "manifest/zst.h"
#include "origin/repo_fs.h"

/* sha256("abc"), FIPS 180-2 */
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* sha256("") */
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char scratch[256];

/* syncfs(2) and rename(2) as the code under test calls them, recorded in order ('S', 'R') and
 * then done by libc's own. */
static char g_calls[64];
static size_t g_ncalls;

static void record(char c)
{
    if (g_ncalls + 1 < sizeof g_calls)
        g_calls[g_ncalls++] = c;
    g_calls[g_ncalls] = '\0';
}

int syncfs(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    record('S');
    return real(fd);
}

int rename(const char *from, const char *to)
{
    int (*real)(const char *, const char *) =
        (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    record('R');
    return real(from, to);
}

static int setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/rh-test-repo-fs-XXXXXX");
    return mkdtemp(scratch) == NULL ? -1 : 0;
}

static void rm_rf(const char *p)
{
    struct stat st;
    if (lstat(p, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(p);
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *c = rh_path_join(p, de->d_name);
            rm_rf(c);
            free(c);
        }
        if (d != NULL)
            closedir(d);
        rmdir(p);
    } else {
        unlink(p);
    }
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(scratch);
    return 0;
}

static char *path(const char *rel)
{
    return rh_path_join(scratch, rel);
}

static void put(const char *rel, const char *content)
{
    char *p = path(rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    free(p);
}

static void mk(const char *rel)
{
    char *p = path(rel);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
            n++;
    closedir(d);
    return n;
}

static void test_write_atomic_immutable_and_replace(void **state)
{
    (void)state;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_file_write_atomic(scratch, "1.x.json", (const uint8_t *)"one", 3, false,
                                        0644, &e),
                     RH_OK);
    rh_buf b;
    rh_buf_init(&b, 100);
    char *p = path("1.x.json");
    assert_int_equal(rh_file_read(p, 100, &b, &e), RH_OK);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "one", 3);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* published files are immutable: a second write fails and leaves the bytes */
    assert_int_equal(rh_file_write_atomic(scratch, "1.x.json", (const uint8_t *)"two", 3, false,
                                        0644, &e),
                     RH_EIO);
    assert_non_null(strstr(e.msg, "exists already"));
    rh_buf_reset(&b);
    assert_int_equal(rh_file_read(p, 100, &b, NULL), RH_OK);
    assert_memory_equal(b.data, "one", 3);
    /* replace (timestamp.json) */
    rh_error_clear(&e);
    assert_int_equal(rh_file_write_atomic(scratch, "1.x.json", (const uint8_t *)"three", 5, true,
                                        0644, &e),
                     RH_OK);
    rh_buf_reset(&b);
    assert_int_equal(rh_file_read(p, 100, &b, NULL), RH_OK);
    assert_int_equal(b.len, 5);
    /* no temp files are left behind */
    assert_int_equal(count_entries(scratch), 1);
    /* read limits and missing files */
    rh_buf_reset(&b);
    assert_int_equal(rh_file_read(p, 4, &b, NULL), RH_ETOOBIG);
    char *q = path("nope");
    assert_int_equal(rh_file_read(q, 4, &b, NULL), RH_ENOTFOUND);
    free(q);
    free(p);
    rh_buf_cleanup(&b);
}

static void test_highest_version(void **state)
{
    (void)state;
    static const char *const files[] = {"1.root.json", "2.root.json", "10.root.json",
                                        "011.root.json", "12.rootx.json", "13.root.json.tmp",
                                        "x14.root.json", "root.json", "99.targets.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        put(files[i], "{}");
    uint64_t v = 0;
    assert_int_equal(rh_fs_highest_version(scratch, "root", &v, NULL), RH_OK);
    assert_int_equal(v, 10);
    assert_int_equal(rh_fs_highest_version(scratch, "targets", &v, NULL), RH_OK);
    assert_int_equal(v, 99);
    assert_int_equal(rh_fs_highest_version(scratch, "snapshot", &v, NULL), RH_OK);
    assert_int_equal(v, 0);
    char *p = path("missing");
    assert_int_equal(rh_fs_highest_version(p, "root", &v, NULL), RH_EIO);
    free(p);
}

static void test_scan_sorted_hashed_skips(void **state)
{
    (void)state;
    mk("src");
    mk("src/a");
    put("src/a/b", "abc");
    put("src/a.txt", "");
    put("src/Z", "abc");
    char *t = path("src/a.txt"), *l = path("src/link");
    assert_int_equal(symlink(t, l), 0);
    free(t);
    free(l);
    char *s = path("src");
    rh_src_list list;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_fs_scan_source(s, &list, &e), RH_OK);
    assert_int_equal(list.n, 3);
    /* bytewise order of the whole path: "Z" < "a.txt" < "a/b" */
    assert_string_equal(list.files[0].relpath, "Z");
    assert_string_equal(list.files[1].relpath, "a.txt");
    assert_string_equal(list.files[2].relpath, "a/b");
    char hex[65];
    rh_hex_encode(list.files[2].sha256, 32, hex);
    assert_string_equal(hex, SHA_ABC);
    assert_int_equal(list.files[2].length, 3);
    rh_hex_encode(list.files[1].sha256, 32, hex);
    assert_string_equal(hex, SHA_EMPTY);
    assert_int_equal(list.nskipped, 1);
    assert_non_null(strstr(list.skipped[0], "link: symbolic link, skipped"));
    rh_src_list_cleanup(&list);
    /* one unsafe name fails the whole scan */
    put("src/a/bad\\name", "x");
    rh_error_clear(&e);
    memset(&list, 0x5a, sizeof list);
    assert_int_equal(rh_fs_scan_source(s, &list, &e), RH_EPATH);
    assert_non_null(strstr(e.msg, "a/bad\\x5cname: character '\\' not allowed"));
    free(s);
    s = path("src/a.txt");
    assert_int_equal(rh_fs_scan_source(s, &list, NULL), RH_EIO); /* not a directory */
    free(s);
}

typedef struct collect {
    rh_buf b;
} collect;

static rh_err collect_sink(void *ctx, const uint8_t *p, size_t n)
{
    return rh_buf_append(&((collect *)ctx)->b, p, n);
}

static void test_store_target_streams_and_dedups(void **state)
{
    (void)state;
    mk("targets");
    put("payload", "abc");
    char *tdir = path("targets"), *src = path("payload");
    rh_stored so;
    rh_error e;
    rh_error_clear(&e);
    rh_store_batch b;
    assert_int_equal(rh_store_batch_init(&b, tdir, &e), RH_OK);
    assert_int_equal(rh_fs_store_target(&b, src, "x/y/payload.zst", 3, &so, &e), RH_OK);
    assert_int_equal(so.ulen, 3);
    char hex[65];
    rh_hex_encode(so.usha, 32, hex);
    assert_string_equal(hex, SHA_ABC);
    assert_false(so.existed);
    rh_hex_encode(so.zsha, 32, hex);
    char rel[200];
    snprintf(rel, sizeof rel, "x/y/%s.payload.zst", hex);
    /* nothing under the final name before the batch is committed: only a temp file */
    char *ydir = path("targets/x/y");
    assert_false(rh_fs_stored_ok(tdir, rel, so.zlen));
    assert_int_equal(count_entries(ydir), 1);
    assert_int_equal(rh_store_batch_commit(&b, &e), RH_OK);
    rh_store_batch_cleanup(&b);
    assert_int_equal(count_entries(ydir), 1); /* renamed, not copied */
    assert_true(rh_fs_stored_ok(tdir, rel, so.zlen));
    assert_false(rh_fs_stored_ok(tdir, rel, so.zlen + 1));
    /* the stored bytes hash to zsha and decompress to the payload */
    char *stored = rh_path_join(tdir, rel);
    rh_buf z;
    rh_buf_init(&z, 1 << 20);
    assert_int_equal(rh_file_read(stored, 1 << 20, &z, NULL), RH_OK);
    assert_int_equal(z.len, so.zlen);
    uint8_t d[32];
    assert_int_equal(rh_hash_once(RH_SHA256, z.data, z.len, d), RH_OK);
    assert_memory_equal(d, so.zsha, 32);
    collect c;
    rh_buf_init(&c.b, 100);
    rh_zdec *zd = NULL;
    uint64_t total = 0;
    assert_int_equal(rh_zdec_new(3, "stored", collect_sink, &c, &zd), RH_OK);
    assert_int_equal(rh_zdec_update(zd, z.data, z.len, NULL), RH_OK);
    assert_int_equal(rh_zdec_finish(zd, &total, NULL), RH_OK);
    assert_int_equal(total, 3);
    assert_memory_equal(c.b.data, "abc", 3);
    rh_zdec_free(zd);
    rh_buf_cleanup(&c.b);
    struct stat st1, st2;
    assert_int_equal(stat(stored, &st1), 0);
    /* same content again: the content-addressed file is kept, not rewritten */
    rh_stored so2;
    assert_int_equal(rh_store_batch_init(&b, tdir, &e), RH_OK);
    assert_int_equal(rh_fs_store_target(&b, src, "x/y/payload.zst", 3, &so2, &e), RH_OK);
    assert_true(so2.existed);
    assert_memory_equal(so2.zsha, so.zsha, 32);
    assert_int_equal(count_entries(ydir), 1); /* its temp file is gone at once */
    /* bad level, missing source */
    rh_error_clear(&e);
    assert_int_equal(rh_fs_store_target(&b, src, "p.zst", 20, &so2, &e), RH_EINVAL);
    char *nosrc = path("nope");
    rh_error_clear(&e);
    assert_int_equal(rh_fs_store_target(&b, nosrc, "p.zst", 3, &so2, &e), RH_EIO);
    assert_int_equal(rh_store_batch_commit(&b, &e), RH_OK);
    rh_store_batch_cleanup(&b);
    assert_int_equal(stat(stored, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_int_equal(count_entries(ydir), 1); /* no temp file left */
    assert_int_equal(count_entries(tdir), 1); /* only x/ */
    /* a batch given up (a later payload failed) leaves no file behind, under any name */
    put("other", "other payload");
    char *src2 = path("other");
    assert_int_equal(rh_store_batch_init(&b, tdir, &e), RH_OK);
    assert_int_equal(rh_fs_store_target(&b, src2, "x/y/other.zst", 3, &so2, &e), RH_OK);
    assert_false(so2.existed);
    assert_int_equal(count_entries(ydir), 2);
    rh_store_batch_cleanup(&b);
    assert_int_equal(count_entries(ydir), 1);
    free(src2);
    /* the targets directory must exist */
    char *none = path("no-such-dir");
    rh_error_clear(&e);
    assert_int_equal(rh_store_batch_init(&b, none, &e), RH_EIO);
    assert_non_null(strstr(e.msg, "no-such-dir: cannot open directory"));
    rh_store_batch_cleanup(&b);
    free(none);
    free(nosrc);
    free(ydir);
    rh_buf_cleanup(&z);
    free(stored);
    free(tdir);
    free(src);
}

/* Temp files an interrupted publish left (".<name>.XXXXXX", at any depth) are removed; stored
 * files (hex first) and everything else stay. */
/* Durability (DESIGN: nothing is named before its bytes are on the disk): a batch of three
 * payloads makes them all durable with one syncfs before the first rename gives one its
 * content-addressed name, and the renames are made durable by a second syncfs before commit
 * returns (and the caller writes metadata naming them). Nothing is synced or renamed while
 * the payloads are stored. */
static void test_batch_syncs_before_and_after_the_renames(void **state)
{
    (void)state;
    mk("targets");
    put("p1", "first payload");
    put("p2", "second payload");
    put("p3", "third payload");
    char *tdir = path("targets");
    rh_error e;
    rh_error_clear(&e);
    rh_store_batch b;
    rh_stored so;
    assert_int_equal(rh_store_batch_init(&b, tdir, &e), RH_OK);
    g_ncalls = 0;
    g_calls[0] = '\0';
    for (int i = 1; i <= 3; i++) {
        char name[16], rel[32];
        snprintf(name, sizeof name, "p%d", i);
        snprintf(rel, sizeof rel, "d/p%d.zst", i);
        char *src = path(name);
        assert_int_equal(rh_fs_store_target(&b, src, rel, 3, &so, &e), RH_OK);
        assert_false(so.existed);
        free(src);
    }
    assert_string_equal(g_calls, "");
    assert_int_equal(rh_store_batch_commit(&b, &e), RH_OK);
    assert_string_equal(g_calls, "SRRRS");
    rh_store_batch_cleanup(&b);
    /* an empty batch (every payload already stored) syncs nothing */
    assert_int_equal(rh_store_batch_init(&b, tdir, &e), RH_OK);
    g_ncalls = 0;
    g_calls[0] = '\0';
    char *src = path("p1");
    assert_int_equal(rh_fs_store_target(&b, src, "d/p1.zst", 3, &so, &e), RH_OK);
    assert_true(so.existed);
    assert_int_equal(rh_store_batch_commit(&b, &e), RH_OK);
    assert_string_equal(g_calls, "");
    rh_store_batch_cleanup(&b);
    free(src);
    free(tdir);
}

static void test_remove_temps(void **state)
{
    (void)state;
    mk("targets");
    mk("targets/a");
    mk("targets/a/b");
    put("targets/.top.zst.Ab12Cd", "t");
    put("targets/a/.x.bin.zst.zz99QQ", "t");
    put("targets/a/b/.deep.zst.000000", "t");
    put("targets/a/0123abcd.x.bin.zst", "stored");
    put("targets/a/.short", "not a temp name");
    put("targets/a/b/notes.txt", "other");
    char *t = path("targets"), *a = path("targets/a"), *b = path("targets/a/b");
    size_t n = 99;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_fs_remove_temps(t, &n, &e), RH_OK);
    assert_int_equal(n, 3);
    assert_int_equal(count_entries(t), 1);       /* a/ */
    assert_int_equal(count_entries(a), 3);       /* b/, the stored file, .short */
    assert_int_equal(count_entries(b), 1);       /* notes.txt */
    assert_int_equal(rh_fs_remove_temps(t, &n, &e), RH_OK);
    assert_int_equal(n, 0);
    char *none = path("targets/none");
    assert_int_equal(rh_fs_remove_temps(none, &n, &e), RH_EIO);
    assert_non_null(strstr(e.msg, "targets/none: cannot open directory"));
    free(none);
    free(t);
    free(a);
    free(b);
}

static void test_absent_empty_mkdir_lock(void **state)
{
    (void)state;
    bool ok = false;
    char *a = path("absent");
    assert_int_equal(rh_fs_absent_or_empty(a, &ok, NULL), RH_OK);
    assert_true(ok);
    assert_int_equal(rh_fs_mkdir(a, 0700, NULL), RH_OK);
    struct stat st;
    assert_int_equal(stat(a, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(rh_fs_absent_or_empty(a, &ok, NULL), RH_OK);
    assert_true(ok);
    put("absent/f", "x");
    assert_int_equal(rh_fs_absent_or_empty(a, &ok, NULL), RH_OK);
    assert_false(ok);
    char *f = path("absent/f");
    assert_int_equal(rh_fs_absent_or_empty(f, &ok, NULL), RH_OK);
    assert_false(ok);
    assert_int_equal(rh_fs_mkdir(f, 0700, NULL), RH_EIO); /* a file is in the way */
    int fd1 = -1, fd2 = -1;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_fs_lock(scratch, &fd1, &e), RH_OK);
    assert_int_equal(rh_fs_lock(scratch, &fd2, &e), RH_EIO);
    assert_non_null(strstr(e.msg, "locked by another rhine-origin"));
    rh_fs_unlock(fd1);
    assert_int_equal(rh_fs_lock(scratch, &fd2, NULL), RH_OK);
    rh_fs_unlock(fd2);
    free(f);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_atomic_immutable_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_highest_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_sorted_hashed_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_target_streams_and_dedups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_syncs_before_and_after_the_renames, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remove_temps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_empty_mkdir_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
