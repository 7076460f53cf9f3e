/* test_install.c -- verify-while-streaming install: good payloads land atomically; bit flips,
 * truncation, extra bytes, zstd bombs and wrong uncompressed hashes leave no file at all. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/install.h"
#include "manifest/buf.h"
#include "manifest/zst.h"

static char g_dir[64];
static uint8_t g_plain[200000];
static rh_buf g_z; /* g_plain, zstd-compressed */

static rh_err zsink(void *ctx, const uint8_t *p, size_t n) { return rh_buf_append(ctx, p, n); }

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/rhine-install-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    for (size_t i = 0; i < sizeof(g_plain); i++)
        g_plain[i] = (uint8_t)((i * 7919u) >> 5); /* compressible, not trivial */
    rh_buf_init(&g_z, 1 << 22);
    rh_zcomp *z = NULL;
    rh_zst_opts o = {.level = 3};
    if (rh_zcomp_new(&o, zsink, &g_z, &z) != RH_OK ||
        rh_zcomp_update(z, g_plain, sizeof(g_plain), NULL) != RH_OK ||
        rh_zcomp_finish(z, NULL) != RH_OK)
        return -1;
    rh_zcomp_free(z);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[400];
    DIR *d = opendir(g_dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))) {
            snprintf(p, sizeof(p), "%s/%s", g_dir, de->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(g_dir);
    rh_buf_cleanup(&g_z);
    return 0;
}

/* Number of directory entries other than . and .. (temp files included). */
static int entries(void)
{
    int n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static void hashes_of(const uint8_t *p, size_t n, rh_hashes *h)
{
    memset(h, 0, sizeof(*h));
    h->has_sha256 = h->has_sha512 = true;
    assert_int_equal(rh_hash_once(RH_SHA256, p, n, h->sha256), RH_OK);
    assert_int_equal(rh_hash_once(RH_SHA512, p, n, h->sha512), RH_OK);
}

typedef enum { PLAIN, ZSTD } kind;
typedef enum { GOOD, FLIP, TRUNCATE, EXTRA, BOMB, BAD_CONTENT_SHA, TRUNC_FRAME,
               CONTENT_LONGER } mutation;

typedef struct {
    const char *name;
    kind k;
    mutation m;
    rh_err write_rc;  /* first non-OK from rh_install_write, or RH_OK */
    rh_err commit_rc; /* when writes succeeded */
} install_case;

static void run_case(const install_case *c, const char *dest)
{
    const uint8_t *src = c->k == ZSTD ? g_z.data : g_plain;
    size_t n = c->k == ZSTD ? g_z.len : sizeof(g_plain);
    uint8_t *sent = malloc(n + 16);
    assert_non_null(sent);
    memcpy(sent, src, n);
    size_t sent_n = n;
    rh_hashes h;
    hashes_of(src, n, &h); /* what the origin signed */
    rh_install_spec s = {.dest = dest, .src = "http://mirror.test/t", .length = n, .hashes = &h};
    if (c->k == ZSTD) {
        s.decompress = true;
        s.out_length = sizeof(g_plain);
        assert_int_equal(rh_hash_once(RH_SHA256, g_plain, sizeof(g_plain), s.out_sha256), RH_OK);
    }
    switch (c->m) {
    case GOOD: break;
    case FLIP: sent[n / 2] ^= 0x10; break;
    case TRUNCATE: sent_n = n - 1; break;
    case EXTRA: sent[n] = 'x'; sent_n = n + 1; break;
    case BOMB: s.out_length = sizeof(g_plain) - 1000; break;
    case CONTENT_LONGER: s.out_length = sizeof(g_plain) + 1; break;
    case BAD_CONTENT_SHA: s.out_sha256[0] ^= 1; break;
    case TRUNC_FRAME: /* the signed bytes themselves are a cut frame */
        sent_n = n - 10;
        hashes_of(sent, sent_n, &h);
        s.length = sent_n;
        break;
    }
    rh_install *in = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_install_new(&s, &in, &e), RH_OK);
    rh_err rc = RH_OK;
    for (size_t off = 0; off < sent_n && rc == RH_OK; off += 7000) {
        size_t k = sent_n - off < 7000 ? sent_n - off : 7000;
        rc = rh_install_write(in, sent + off, k, &e);
    }
    if (rc != c->write_rc)
        fail_msg("%s: write gave %d (%s), want %d", c->name, rc, e.msg, c->write_rc);
    if (rc == RH_OK) {
        rc = rh_install_commit(in, &e);
        if (rc != c->commit_rc)
            fail_msg("%s: commit gave %d (%s), want %d", c->name, rc, e.msg, c->commit_rc);
    }
    if (rc != RH_OK)
        assert_non_null(strstr(e.msg, "http://mirror.test/t")); /* names the source */
    rh_install_free(in);
    free(sent);
}

static void test_install_table(void **state)
{
    (void)state;
    static const install_case cases[] = {
        {"plain good", PLAIN, GOOD, RH_OK, RH_OK},
        {"plain bit flip", PLAIN, FLIP, RH_OK, RH_EHASH},
        {"plain truncated", PLAIN, TRUNCATE, RH_OK, RH_EHASH},
        {"plain one byte extra", PLAIN, EXTRA, RH_ETOOBIG, RH_OK},
        {"zstd good", ZSTD, GOOD, RH_OK, RH_OK},
        {"zstd bit flip", ZSTD, FLIP, RH_OK, RH_EHASH}, /* the decoder never sees it */
        {"zstd truncated", ZSTD, TRUNCATE, RH_OK, RH_EHASH},
        {"zstd bomb (signed length too small)", ZSTD, BOMB, RH_OK, RH_ETOOBIG},
        {"zstd content shorter than signed", ZSTD, CONTENT_LONGER, RH_OK, RH_EHASH},
        {"zstd wrong content sha256", ZSTD, BAD_CONTENT_SHA, RH_OK, RH_EHASH},
        {"zstd frame cut (signed that way)", ZSTD, TRUNC_FRAME, RH_OK, RH_EPARSE},
    };
    char dest[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(dest, sizeof(dest), "%s/out-%zu", g_dir, i);
        run_case(&cases[i], dest);
        bool ok = cases[i].write_rc == RH_OK && cases[i].commit_rc == RH_OK;
        FILE *f = fopen(dest, "rb");
        if (!ok) {
            if (f)
                fail_msg("%s: a file was left at dest", cases[i].name);
            if (entries() != 0)
                fail_msg("%s: a temporary file was left behind", cases[i].name);
            continue;
        }
        assert_non_null(f);
        static uint8_t back[sizeof(g_plain) + 1];
        size_t got = fread(back, 1, sizeof(back), f);
        fclose(f);
        assert_int_equal(got, sizeof(g_plain));
        assert_memory_equal(back, g_plain, sizeof(g_plain));
        assert_int_equal(entries(), 1);
        unlink(dest);
    }
}

/* A failed install over an existing file leaves the old file as it was. */
static void test_old_file_kept(void **state)
{
    (void)state;
    char dest[128];
    snprintf(dest, sizeof(dest), "%s/keep", g_dir);
    FILE *f = fopen(dest, "wb");
    assert_non_null(f);
    fputs("old", f);
    fclose(f);
    rh_hashes h;
    hashes_of(g_plain, sizeof(g_plain), &h);
    rh_install_spec s = {.dest = dest, .length = sizeof(g_plain), .hashes = &h};
    rh_install *in = NULL;
    assert_int_equal(rh_install_new(&s, &in, NULL), RH_OK);
    assert_int_equal(rh_install_write(in, g_plain, 1000, NULL), RH_OK);
    assert_int_equal(rh_install_commit(in, NULL), RH_EHASH); /* short */
    rh_install_free(in);
    char buf[8] = {0};
    f = fopen(dest, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, sizeof(buf), f), 3);
    fclose(f);
    assert_string_equal(buf, "old");
    assert_int_equal(entries(), 1);
    /* Freed without commit: the temp file goes too. */
    assert_int_equal(rh_install_new(&s, &in, NULL), RH_OK);
    assert_int_equal(entries(), 2);
    rh_install_free(in);
    assert_int_equal(entries(), 1);
    unlink(dest);
}

static void test_check_existing(void **state)
{
    (void)state;
    char dest[128];
    snprintf(dest, sizeof(dest), "%s/have", g_dir);
    rh_hashes h;
    hashes_of(g_plain, sizeof(g_plain), &h);
    rh_install_spec s = {.dest = dest, .length = sizeof(g_plain), .hashes = &h};
    assert_int_equal(rh_install_check_existing(&s, NULL), RH_ENOTFOUND);
    FILE *f = fopen(dest, "wb");
    assert_non_null(f);
    fwrite(g_plain, 1, sizeof(g_plain), f);
    fclose(f);
    assert_int_equal(rh_install_check_existing(&s, NULL), RH_OK);
    h.sha512[3] ^= 1;
    assert_int_equal(rh_install_check_existing(&s, NULL), RH_EHASH);
    h.sha512[3] ^= 1;
    s.length--;
    assert_int_equal(rh_install_check_existing(&s, NULL), RH_EHASH);
    /* Decompressing installs compare the uncompressed content. */
    rh_install_spec z = {.dest = dest, .length = 5, .hashes = &h, .decompress = true,
                         .out_length = sizeof(g_plain)};
    assert_int_equal(rh_hash_once(RH_SHA256, g_plain, sizeof(g_plain), z.out_sha256), RH_OK);
    assert_int_equal(rh_install_check_existing(&z, NULL), RH_OK);
    unlink(dest);
    /* No hash at all: refused up front. */
    rh_hashes none;
    memset(&none, 0, sizeof(none));
    rh_install_spec s2 = {.dest = dest, .length = 1, .hashes = &none};
    rh_install *in = NULL;
    assert_int_equal(rh_install_new(&s2, &in, NULL), RH_EHASH);
    assert_null(in);
}

/* DESIGN 10.6 (nothing hangs): a destination that is a FIFO (or any non-regular file) is not
 * "already installed" and does not block the check; the install then replaces it. */
static void test_existing_fifo(void **state)
{
    (void)state;
    char dest[128];
    snprintf(dest, sizeof(dest), "%s/fifo", g_dir);
    assert_int_equal(mkfifo(dest, 0600), 0);
    rh_hashes h;
    hashes_of(g_plain, sizeof(g_plain), &h);
    rh_install_spec s = {.dest = dest, .length = sizeof(g_plain), .hashes = &h};
    alarm(10); /* a blocking open() kills the test instead of hanging it */
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_install_check_existing(&s, &e), RH_EHASH);
    assert_non_null(strstr(e.msg, "not a regular file"));
    alarm(0);
    run_case(&(install_case){"over a fifo", PLAIN, GOOD, RH_OK, RH_OK}, dest);
    struct stat st;
    assert_int_equal(stat(dest, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(rh_install_check_existing(&s, NULL), RH_OK);
    unlink(dest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_table),
        cmocka_unit_test(test_old_file_kept),
        cmocka_unit_test(test_check_existing),
        cmocka_unit_test(test_existing_fifo),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
