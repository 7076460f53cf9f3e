/* test_tlog.c -- the origin's transparency log writer: entry known answers and rejections, tiles
 * and bundles checked byte for byte against a naive RFC 9162 recomputation, the signed
 * checkpoint, incremental commits with partial tiles, reopen, tampering, orphans, catch-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/hash.h"
#include "manifest/keys.h"
#include "manifest/merkle.h"
#include "manifest/note.h"
#include "origin/repo_fs.h"
#include "origin/tlog.h"

#define ORIGIN "rhine.test/log"

static char scratch[256];
static char repo[300], keypath[300], logdir[300];

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

static int setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/rh-test-tlog-XXXXXX");
    if (mkdtemp(scratch) == NULL)
        return -1;
    snprintf(repo, sizeof repo, "%s/repo", scratch);
    snprintf(logdir, sizeof logdir, "%s/repo/log", scratch);
    snprintf(keypath, sizeof keypath, "%s/keys/online/log.pem", scratch);
    char keys[300];
    snprintf(keys, sizeof keys, "%s/keys", scratch);
    if (mkdir(repo, 0755) != 0 || mkdir(keys, 0700) != 0)
        return -1;
    rh_error e;
    rh_error_clear(&e);
    return rh_tlog_keygen(keys, ORIGIN, NULL, &e) == RH_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(scratch);
    return 0;
}

static void read_file(const char *path, rh_buf *out)
{
    rh_error e;
    rh_error_clear(&e);
    rh_buf_init(out, 64u * 1024 * 1024);
    assert_int_equal(rh_file_read(path, 64u * 1024 * 1024, out, &e), RH_OK);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* ---- entries ------------------------------------------------------------------------------*/

static void sample_entry(rh_tlog_entry *en)
{
    memset(en, 0, sizeof *en);
    snprintf(en->role, sizeof en->role, "targets");
    en->version = 7;
    en->length = 1234;
    for (int i = 0; i < 32; i++)
        en->sha256[i] = (uint8_t)i;
    en->has_source_rev = true;
    snprintf(en->source_rev, sizeof en->source_rev, "abc123");
    en->has_recipe = true;
    memset(en->build_recipe_sha256, 0xff, 32);
    en->has_time = true;
    en->time = 1700000000;
}

#define SAMPLE_SHA "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define FF64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define SAMPLE                                                                                 \
    "{\"length\":1234,\"provenance\":{\"build_recipe_sha256\":\"" FF64 "\",\"source_rev\":"  \
    "\"abc123\"},\"role\":\"targets\",\"sha256\":\"" SAMPLE_SHA "\",\"time\":"               \
    "\"2023-11-14T22:13:20Z\",\"version\":7}"

static void test_entry_known_answer(void **state)
{
    (void)state;
    rh_tlog_entry en, back;
    sample_entry(&en);
    rh_buf b;
    rh_buf_init(&b, 8192);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_tlog_entry_build(&en, &b, &e), RH_OK);
    assert_string_equal((char *)b.data, SAMPLE);
    assert_int_equal(rh_log_entry_parse(b.data, b.len, "t", &back, &e), RH_OK);
    assert_memory_equal(&en, &back, sizeof en);
    /* Minimal: a root entry without provenance or time. */
    rh_buf_reset(&b);
    memset(&en, 0, sizeof en);
    snprintf(en.role, sizeof en.role, "root");
    en.version = 1;
    assert_int_equal(rh_tlog_entry_build(&en, &b, &e), RH_OK);
    assert_string_equal((char *)b.data,
                        "{\"length\":0,\"role\":\"root\",\"sha256\":"
                        "\"0000000000000000000000000000000000000000000000000000000000000000\","
                        "\"version\":1}");
    /* Provenance with only a source revision. */
    rh_buf_reset(&b);
    sample_entry(&en);
    en.has_recipe = false;
    memset(en.build_recipe_sha256, 0, 32);
    en.has_time = false;
    en.time = 0;
    assert_int_equal(rh_tlog_entry_build(&en, &b, &e), RH_OK);
    assert_string_equal((char *)b.data,
                        "{\"length\":1234,\"provenance\":{\"source_rev\":\"abc123\"},\"role\":"
                        "\"targets\",\"sha256\":\"" SAMPLE_SHA "\",\"version\":7}");
    assert_int_equal(rh_log_entry_parse(b.data, b.len, "t", &back, &e), RH_OK);
    assert_memory_equal(&en, &back, sizeof en);
    rh_buf_cleanup(&b);
}

static void test_entry_build_rejects(void **state)
{
    (void)state;
    rh_tlog_entry en;
    rh_buf b;
    rh_buf_init(&b, 8192);
    struct {
        const char *role;
        uint64_t version;
        bool prov;
        const char *rev;
        int64_t time;
    } bad[] = {
        {"timestamp", 1, false, NULL, 0}, /* timestamps are not logged */
        {"", 1, false, NULL, 0},
        {"..", 1, false, NULL, 0},
        {"a\nb", 1, false, NULL, 0},
        {"targets", 0, false, NULL, 0},        /* version 0 */
        {"root", 1, true, "r", 0},             /* provenance on root */
        {"snapshot", 1, true, "r", 0},
        {"targets", 1, true, "", 0},           /* empty revision */
        {"targets", 1, true, "a\x01", 0},      /* control character */
        {"targets", 1, true, "\xff\xfe", 0},   /* not UTF-8 */
        {"targets", 1, false, NULL, -1},       /* time before the epoch */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&en, 0, sizeof en);
        snprintf(en.role, sizeof en.role, "%s", bad[i].role);
        en.version = bad[i].version;
        if (bad[i].prov) {
            en.has_source_rev = true;
            snprintf(en.source_rev, sizeof en.source_rev, "%s", bad[i].rev);
        }
        en.has_time = bad[i].time != 0;
        en.time = bad[i].time;
        rh_error e;
        rh_error_clear(&e);
        rh_buf_reset(&b);
        if (rh_tlog_entry_build(&en, &b, &e) != RH_EINVAL)
            fail_msg("case %zu (%s) built", i, bad[i].role);
        assert_int_equal(b.len, 0);
    }
    rh_buf_cleanup(&b);
}

/* ---- an independent recomputation ----------------------------------------------------------*/

static void naive_mth(uint8_t (*leaves)[32], uint64_t n, uint8_t out[32])
{
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    uint8_t l[32], r[32], buf[65];
    naive_mth(leaves, k, l);
    naive_mth(leaves + k, n - k, r);
    buf[0] = 1;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    assert_int_equal(rh_hash_once(RH_SHA256, buf, 65, out), RH_OK);
}

/* The entry bytes of log position i (test data). */
static void entry_for(uint64_t i, rh_buf *out)
{
    rh_tlog_entry en;
    memset(&en, 0, sizeof en);
    snprintf(en.role, sizeof en.role, i % 3 == 0 ? "targets" : i % 3 == 1 ? "snapshot" : "root");
    en.version = i + 1;
    en.length = i * 7;
    memcpy(en.sha256, &i, sizeof i);
    en.has_time = true;
    en.time = 1700000000 + (int64_t)i;
    if (i % 3 == 0) {
        en.has_source_rev = true;
        snprintf(en.source_rev, sizeof en.source_rev, "rev-%llu", (unsigned long long)i);
    }
    rh_buf_reset(out);
    assert_int_equal(rh_tlog_entry_build(&en, out, NULL), RH_OK);
}

static void append_range(rh_tlog *log, uint64_t from, uint64_t to)
{
    rh_buf b;
    rh_buf_init(&b, RH_TLOG_MAX_ENTRY);
    for (uint64_t i = from; i < to; i++) {
        entry_for(i, &b);
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_tlog_append(log, b.data, b.len, &e), RH_OK);
    }
    rh_buf_cleanup(&b);
}

static void rel_path(int level, uint64_t idx, unsigned w, char *out, size_t cap)
{
    char t[RH_TILE_PATH_MAX];
    assert_int_equal(rh_tile_path(level, idx, w, t, sizeof t), RH_OK);
    snprintf(out, cap, "%s/%s", logdir, t);
}

/* Everything under logdir for a log of size entries: checkpoint verifies and names the root of
 * a naive recomputation; every tile and bundle of that size holds exactly the expected bytes. */
static void check_log(uint64_t size)
{
    uint8_t (*leaves)[32] = malloc((size_t)(size ? size : 1) * 32);
    assert_non_null(leaves);
    rh_buf b, ent;
    rh_buf_init(&ent, RH_TLOG_MAX_ENTRY);
    char path[512];
    rh_buf want;
    rh_buf_init(&want, RH_TLOG_MAX_BUNDLE);
    for (uint64_t t = 0; t * RH_TILE_WIDTH < size; t++) {
        unsigned w = size - t * RH_TILE_WIDTH >= RH_TILE_WIDTH
                         ? RH_TILE_WIDTH
                         : (unsigned)(size - t * RH_TILE_WIDTH);
        rh_buf_reset(&want);
        for (unsigned k = 0; k < w; k++) {
            uint64_t i = t * RH_TILE_WIDTH + k;
            entry_for(i, &ent);
            uint8_t pre[2] = {(uint8_t)(ent.len >> 8), (uint8_t)ent.len};
            assert_int_equal(rh_buf_append(&want, pre, 2), RH_OK);
            assert_int_equal(rh_buf_append(&want, ent.data, ent.len), RH_OK);
            assert_int_equal(rh_merkle_leaf_hash(ent.data, ent.len, leaves[i]), RH_OK);
        }
        rel_path(-1, t, w, path, sizeof path);
        read_file(path, &b);
        assert_int_equal(b.len, want.len);
        assert_memory_equal(b.data, want.data, want.len);
        rh_buf_cleanup(&b);
    }
    for (unsigned l = 0; l < 3; l++) {
        uint64_t span = (uint64_t)1 << (8 * l), have = size / span;
        for (uint64_t t = 0; t * RH_TILE_WIDTH < have; t++) {
            unsigned w = have - t * RH_TILE_WIDTH >= RH_TILE_WIDTH
                             ? RH_TILE_WIDTH
                             : (unsigned)(have - t * RH_TILE_WIDTH);
            rel_path((int)l, t, w, path, sizeof path);
            read_file(path, &b);
            assert_int_equal(b.len, (size_t)w * 32);
            for (unsigned k = 0; k < w; k++) {
                uint8_t h[32];
                naive_mth(leaves + (t * RH_TILE_WIDTH + k) * span, span, h);
                assert_memory_equal(b.data + 32 * k, h, 32);
            }
            rh_buf_cleanup(&b);
        }
    }
    /* The checkpoint. */
    snprintf(path, sizeof path, "%s/checkpoint", logdir);
    read_file(path, &b);
    rh_note *n = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_note_parse(b.data, b.len, "cp", &n, &e), RH_OK);
    rh_privkey *sk = NULL;
    assert_int_equal(rh_privkey_load(keypath, &sk, &e), RH_OK);
    rh_note_key k;
    assert_int_equal(rh_note_key_from_privkey(sk, ORIGIN, RH_NOTE_TYPE_ED25519, &k, &e), RH_OK);
    assert_int_equal(rh_note_verify(n, &k, 1, NULL, "cp", &e), RH_OK);
    rh_checkpoint cp;
    assert_int_equal(rh_checkpoint_parse(n->text, n->textlen, "cp", &cp, &e), RH_OK);
    assert_string_equal(cp.origin, ORIGIN);
    assert_int_equal(cp.size, size);
    uint8_t root[32];
    if (size == 0)
        rh_merkle_empty_root(root);
    else
        naive_mth(leaves, size, root);
    assert_memory_equal(cp.root, root, 32);
    rh_checkpoint_cleanup(&cp);
    rh_note_free(n);
    rh_privkey_free(sk);
    rh_buf_cleanup(&b);
    rh_buf_cleanup(&ent);
    rh_buf_cleanup(&want);
    free(leaves);
}

static rh_tlog *open_ok(void)
{
    rh_tlog *log = NULL;
    rh_error e;
    rh_error_clear(&e);
    if (rh_tlog_open(repo, ORIGIN, keypath, &log, &e) != RH_OK)
        fail_msg("open: %s", e.msg);
    return log;
}

static void commit_ok(rh_tlog *log)
{
    rh_error e;
    rh_error_clear(&e);
    if (rh_tlog_commit(log, &e) != RH_OK)
        fail_msg("commit: %s", e.msg);
}

/* Files under dir (recursively, relative, sorted, '.'-files skipped), joined by ' '. */
static void list_files(const char *dir, const char *prefix, rh_buf *out)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[1024];
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && nn < 1024)
            names[nn++] = strdup(de->d_name);
    closedir(d);
    for (size_t i = 1; i < nn; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < nn; i++) {
        char full[2048], rel[2048];
        snprintf(full, sizeof full, "%s/%s", dir, names[i]);
        snprintf(rel, sizeof rel, "%s%s", prefix, names[i]);
        struct stat st;
        assert_int_equal(lstat(full, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            char p2[2100];
            snprintf(p2, sizeof p2, "%s/", rel);
            list_files(full, p2, out);
        } else {
            assert_int_equal(rh_buf_appendf(out, "%s ", rel), RH_OK);
        }
        free(names[i]);
    }
}

static void assert_files(const char *want)
{
    rh_buf b;
    rh_buf_init(&b, 1 << 20);
    list_files(logdir, "", &b);
    assert_string_equal(b.len ? (char *)b.data : "", want);
    rh_buf_cleanup(&b);
}

/* ---- writing ---------------------------------------------------------------------------------*/

static void test_sizes_one_commit(void **state)
{
    (void)state;
    static const uint64_t sizes[] = {0, 1, 255, 256, 257, 70000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        rm_rf(logdir);
        rh_tlog *log = open_ok();
        append_range(log, 0, sizes[s]);
        assert_int_equal(rh_tlog_size(log), sizes[s]);
        assert_int_equal(rh_tlog_committed(log), 0);
        commit_ok(log);
        assert_int_equal(rh_tlog_committed(log), sizes[s]);
        rh_tlog_close(log);
        check_log(sizes[s]);
        if (sizes[s] == 0)
            assert_files("checkpoint ");
        if (sizes[s] == 257)
            assert_files("checkpoint tile/0/000 tile/0/001.p/1 tile/1/000.p/1 "
                         "tile/entries/000 tile/entries/001.p/1 ");
        /* Reopening replays and checks it all. */
        log = open_ok();
        assert_int_equal(rh_tlog_size(log), sizes[s]);
        assert_int_equal(rh_tlog_committed(log), sizes[s]);
        rh_tlog_close(log);
    }
}

static void test_incremental_commits(void **state)
{
    (void)state;
    static const uint64_t steps[] = {1, 2, 2, 255, 256, 257, 300, 512, 513};
    uint64_t have = 0;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        rh_tlog *log = open_ok(); /* every step reopens: the writer resumes from disk */
        assert_int_equal(rh_tlog_size(log), have);
        append_range(log, have, steps[s]);
        commit_ok(log);
        rh_tlog_close(log);
        have = steps[s];
        check_log(have);
        if (have == 256)
            assert_files("checkpoint tile/0/000 tile/0/000.p/1 tile/0/000.p/2 tile/0/000.p/255 "
                         "tile/1/000.p/1 tile/entries/000 tile/entries/000.p/1 "
                         "tile/entries/000.p/2 tile/entries/000.p/255 ");
    }
    /* Several commits in one session, and a commit with nothing new rewrites nothing. */
    rh_tlog *log = open_ok();
    append_range(log, have, have + 10);
    commit_ok(log);
    append_range(log, have + 10, have + 300);
    commit_ok(log);
    struct stat st1, st2;
    char cp[512];
    snprintf(cp, sizeof cp, "%s/checkpoint", logdir);
    assert_int_equal(stat(cp, &st1), 0);
    commit_ok(log);
    assert_int_equal(stat(cp, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    rh_tlog_close(log);
    check_log(have + 300);
}

static void expect_open_fails(rh_err code, const char *needle)
{
    rh_tlog *log = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_tlog_open(repo, ORIGIN, keypath, &log, &e), code);
    assert_null(log);
    if (strstr(e.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
}

static void flip(const char *rel, size_t at)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", logdir, rel);
    rh_buf b;
    read_file(p, &b);
    assert_true(at < b.len);
    b.data[at] ^= 1;
    write_file(p, b.data, b.len);
    rh_buf_cleanup(&b);
}

static void test_reopen_detects_tampering(void **state)
{
    (void)state;
    rh_tlog *log = open_ok();
    append_range(log, 0, 300);
    commit_ok(log);
    rh_tlog_close(log);
    char save[512];
    snprintf(save, sizeof save, "%s/save", scratch);
    /* A hash tile byte. */
    flip("tile/0/000", 100);
    expect_open_fails(RH_ELOG, "tile/0/000");
    flip("tile/0/000", 100);
    flip("tile/1/000.p/1", 0);
    expect_open_fails(RH_ELOG, "tile/1/000.p/1");
    flip("tile/1/000.p/1", 0);
    /* An entry byte (its JSON stays valid: a digit of a sha256). */
    flip("tile/entries/001.p/44", 60);
    expect_open_fails(RH_ELOG, "");
    flip("tile/entries/001.p/44", 60);
    log = open_ok();
    rh_tlog_close(log);
    /* A checkpoint signed by another key. */
    char other[512], cpp[512];
    snprintf(other, sizeof other, "%s/other.pem", scratch);
    snprintf(cpp, sizeof cpp, "%s/checkpoint", logdir);
    rh_privkey *sk = NULL;
    assert_int_equal(rh_privkey_generate(&sk, NULL), RH_OK);
    rh_buf b, n2;
    read_file(cpp, &b);
    rh_note *n = NULL;
    assert_int_equal(rh_note_parse(b.data, b.len, "cp", &n, NULL), RH_OK);
    rh_buf_init(&n2, 8192);
    assert_int_equal(rh_buf_append(&n2, n->text, n->textlen), RH_OK);
    assert_int_equal(rh_buf_appendc(&n2, '\n'), RH_OK);
    assert_int_equal(rh_note_sign(n->text, n->textlen, ORIGIN, sk, &n2, NULL), RH_OK);
    write_file(cpp, n2.data, n2.len);
    expect_open_fails(RH_ELOG, "checkpoint");
    write_file(cpp, b.data, b.len);
    /* A missing bundle. */
    char bp[512];
    snprintf(bp, sizeof bp, "%s/tile/entries/000", logdir);
    assert_int_equal(rename(bp, save), 0);
    expect_open_fails(RH_ELOG, "tile/entries/000");
    assert_int_equal(rename(save, bp), 0);
    /* Another origin line. */
    log = NULL;
    assert_int_equal(rh_tlog_open(repo, "other.test/log", keypath, &log, NULL), RH_ELOG);
    log = open_ok();
    rh_tlog_close(log);
    rh_note_free(n);
    rh_privkey_free(sk);
    rh_buf_cleanup(&b);
    rh_buf_cleanup(&n2);
}

static void test_orphans_and_covered_tiles(void **state)
{
    (void)state;
    rh_tlog *log = open_ok();
    append_range(log, 0, 1);
    commit_ok(log);
    rh_tlog_close(log);
    /* An interrupted commit left tiles for size 2 with other bytes: no checkpoint covers them. */
    char d[512], p[600];
    snprintf(d, sizeof d, "%s/tile/0/000.p", logdir); /* made for tile/0/000.p/1 */
    snprintf(p, sizeof p, "%s/2", d);
    write_file(p, "garbage", 7);
    snprintf(d, sizeof d, "%s/tile/entries/000.p", logdir);
    snprintf(p, sizeof p, "%s/2", d);
    write_file(p, "garbage", 7);
    log = open_ok();
    append_range(log, 1, 2);
    commit_ok(log);
    rh_tlog_close(log);
    check_log(2);
    /* A covered tile that differs is never replaced: the next full tile would be written over
     * tile/0/000.p/2's neighbours, so plant a wrong covered tile and force a rewrite of it by
     * deleting the checkpoint's knowledge: reopening refuses first. */
    flip("tile/0/000.p/2", 3);
    expect_open_fails(RH_ELOG, "tile/0/000.p/2");
}

static void test_log_metadata_and_sync(void **state)
{
    (void)state;
    char md[512], p[600];
    snprintf(md, sizeof md, "%s/metadata", repo);
    assert_int_equal(mkdir(md, 0755), 0);
    static const struct {
        const char *name, *body;
    } files[] = {
        {"2.snapshot.json", "{\"signed\":{\"v\":2}}"},
        {"1.snapshot.json", "{\"signed\":{\"v\":1}}"},
        {"2.targets.json",
         "{\"signed\":{\"x-rhine-provenance\":{\"source_rev\":\"deadbeef\",\"build_recipe\":"
         "{\"name\":\"r.sh\",\"length\":3,\"sha256\":\"" FF64 "\"}}}}"},
        {"1.targets.json", "{\"signed\":{}}"},
        {"2.root.json", "{\"signed\":{\"r\":2}}"},
        {"1.root.json", "{\"signed\":{\"r\":1}}"},
        {"1.av%2Fteam.json", "{\"signed\":{}}"},
        {"timestamp.json", "{}"},
        {"01.root.json", "{}"},
        {".2.root.json.tmp", "{}"},
        {"3.root.json.tmp", "{}"},
        {"1.timestamp.json", "{}"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", md, files[i].name);
        write_file(p, files[i].body, strlen(files[i].body));
    }
    rh_tlog *log = open_ok();
    size_t added = 99;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_tlog_sync_metadata(log, md, 1700000000, &added, &e), RH_OK);
    assert_int_equal(added, 7);
    uint8_t sha[32], want[32];
    assert_true(rh_tlog_find(log, "av/team", 1, sha));
    assert_false(rh_tlog_find(log, "timestamp", 1, NULL));
    assert_false(rh_tlog_find(log, "root", 3, NULL));
    assert_int_equal(rh_hash_once(RH_SHA256, "{\"signed\":{\"r\":2}}", 18, want), RH_OK);
    assert_true(rh_tlog_find(log, "root", 2, sha));
    assert_memory_equal(sha, want, 32);
    commit_ok(log);
    /* Nothing new the second time. */
    assert_int_equal(rh_tlog_sync_metadata(log, md, 1700000001, &added, &e), RH_OK);
    assert_int_equal(added, 0);
    /* The same version with other bytes is refused; the same bytes are not logged twice. */
    bool a = true;
    const char *same = "{\"signed\":{\"r\":1}}";
    assert_int_equal(rh_tlog_log_metadata(log, "root", 1, (const uint8_t *)same, strlen(same),
                                          5, &a, &e),
                     RH_OK);
    assert_false(a);
    assert_int_equal(rh_tlog_log_metadata(log, "root", 1, (const uint8_t *)"{}", 2, 5, &a, &e),
                     RH_ELOG);
    /* Malformed provenance in a targets file. */
    const char *badp = "{\"signed\":{\"x-rhine-provenance\":{\"source_rev\":5}}}";
    rh_error_clear(&e);
    assert_int_equal(rh_tlog_log_metadata(log, "targets", 9, (const uint8_t *)badp, strlen(badp),
                                          5, &a, &e),
                     RH_EPARSE);
    rh_tlog_close(log);

    /* The order and contents of what was logged, read back from the bundle. */
    snprintf(p, sizeof p, "%s/tile/entries/000.p/7", logdir);
    rh_buf b;
    read_file(p, &b);
    static const char *order[][2] = {{"root", "1"},    {"root", "2"},     {"av/team", "1"},
                                     {"targets", "1"}, {"targets", "2"},  {"snapshot", "1"},
                                     {"snapshot", "2"}};
    size_t off = 0;
    for (size_t i = 0; i < 7; i++) {
        size_t n = (size_t)b.data[off] << 8 | b.data[off + 1];
        rh_tlog_entry en;
        assert_int_equal(rh_log_entry_parse(b.data + off + 2, n, "b", &en, NULL), RH_OK);
        assert_string_equal(en.role, order[i][0]);
        assert_int_equal(en.version, strtoull(order[i][1], NULL, 10));
        assert_true(en.has_time);
        assert_int_equal(en.time, 1700000000);
        bool prov = strcmp(en.role, "targets") == 0 && en.version == 2;
        assert_int_equal(en.has_source_rev, prov);
        assert_int_equal(en.has_recipe, prov);
        if (prov) {
            assert_string_equal(en.source_rev, "deadbeef");
            uint8_t ff[32];
            memset(ff, 0xff, 32);
            assert_memory_equal(en.build_recipe_sha256, ff, 32);
        }
        off += 2 + n;
    }
    assert_int_equal(off, b.len);
    rh_buf_cleanup(&b);
}

static void test_keygen(void **state)
{
    (void)state;
    char keys[512], p[600];
    snprintf(keys, sizeof keys, "%s/keys", scratch);
    struct stat st;
    assert_int_equal(stat(keypath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(p, sizeof p, "%s/log.pub", keys);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    rh_buf b, v;
    read_file(p, &b);
    assert_true(b.len > 2 && b.data[b.len - 1] == '\n');
    b.data[b.len - 1] = '\0';
    rh_note_key k;
    assert_int_equal(rh_note_vkey_parse((char *)b.data, &k, NULL), RH_OK);
    assert_string_equal(k.name, ORIGIN);
    assert_int_equal(strncmp((char *)b.data, ORIGIN "+", strlen(ORIGIN) + 1), 0);
    rh_buf_init(&v, 4096);
    assert_int_equal(rh_tlog_vkey(keypath, ORIGIN, &v, NULL), RH_OK);
    assert_string_equal((char *)v.data, (char *)b.data);
    /* Never replaced. */
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_tlog_keygen(keys, ORIGIN, NULL, &e), RH_EIO);
    assert_int_equal(rh_tlog_keygen(scratch, "bad name+x", NULL, NULL), RH_EPARSE);
    rh_buf_cleanup(&b);
    rh_buf_cleanup(&v);
}

/* With RHINE_TLOG_REPO=<repository made by rhine-origin> and RHINE_TLOG_KEYS=<keys dir>, log
 * that repository's metadata (what the origin does after each operation) under the origin name
 * in RHINE_TLOG_ORIGIN: the integration test serves and audits the result. */
static void test_log_a_repository(void **state)
{
    (void)state;
    const char *r = getenv("RHINE_TLOG_REPO"), *k = getenv("RHINE_TLOG_KEYS");
    const char *o = getenv("RHINE_TLOG_ORIGIN");
    if (r == NULL || k == NULL || o == NULL)
        skip();
    char kp[1024], md[1024];
    snprintf(kp, sizeof kp, "%s/online/log.pem", k);
    snprintf(md, sizeof md, "%s/metadata", r);
    rh_error e;
    rh_error_clear(&e);
    struct stat st;
    if (stat(kp, &st) != 0 && rh_tlog_keygen(k, o, NULL, &e) != RH_OK)
        fail_msg("keygen: %s", e.msg);
    rh_tlog *log = NULL;
    if (rh_tlog_open(r, o, kp, &log, &e) != RH_OK)
        fail_msg("open: %s", e.msg);
    const char *t = getenv("RHINE_TLOG_TIME");
    size_t added;
    if (rh_tlog_sync_metadata(log, md, t ? strtoll(t, NULL, 10) : 1700000000, &added, &e) !=
            RH_OK ||
        rh_tlog_commit(log, &e) != RH_OK)
        fail_msg("log: %s", e.msg);
    printf("logged %zu files, log size %llu\n", added, (unsigned long long)rh_tlog_size(log));
    rh_tlog_close(log);
}

int main(void)
{
    /* Driven by the integration test: only the logging of its repository. */
    const struct CMUnitTest driver[] = {cmocka_unit_test(test_log_a_repository)};
    if (getenv("RHINE_TLOG_REPO") != NULL)
        return cmocka_run_group_tests(driver, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_known_answer),
        cmocka_unit_test(test_entry_build_rejects),
        cmocka_unit_test_setup_teardown(test_sizes_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incremental_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_detects_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphans_and_covered_tiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_metadata_and_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen, setup, teardown),
        cmocka_unit_test(test_log_a_repository),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
