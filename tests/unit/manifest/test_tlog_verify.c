/* test_tlog_verify.c -- the auditor's entry parser (the writer's known-answer bytes and a table
 * of rejections), checkpoint verification with witness cosignatures and quorums, and the root
 * of a verified view's prefix (RFC 6962's reference tree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest/tlog_verify.h"
#include "manifest/hash.h"
#include "manifest/keys.h"
#include "manifest/note.h"
#include "tests/unit/manifest/merkle_vectors.h"

#define SAMPLE_SHA "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define FF64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
/* The exact bytes tests/unit/origin/test_tlog.c expects the writer to build. */
#define SAMPLE                                                                                 \
    "{\"length\":1234,\"provenance\":{\"build_recipe_sha256\":\"" FF64 "\",\"source_rev\":"  \
    "\"abc123\"},\"role\":\"targets\",\"sha256\":\"" SAMPLE_SHA "\",\"time\":"               \
    "\"2023-11-14T22:13:20Z\",\"version\":7}"

static void test_entry_known_answer(void **state)
{
    (void)state;
    rh_log_entry en;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_log_entry_parse((const uint8_t *)SAMPLE, strlen(SAMPLE), "t", &en, &e),
                     RH_OK);
    assert_string_equal(en.role, "targets");
    assert_int_equal(en.version, 7);
    assert_int_equal(en.length, 1234);
    for (int i = 0; i < 32; i++)
        assert_int_equal(en.sha256[i], i);
    assert_true(en.has_source_rev);
    assert_string_equal(en.source_rev, "abc123");
    assert_true(en.has_recipe);
    assert_int_equal(en.build_recipe_sha256[31], 0xff);
    assert_true(en.has_time);
    assert_int_equal(en.time, 1700000000);
}

static void test_entry_rejects(void **state)
{
    (void)state;
    const char *H = "\"" SAMPLE_SHA "\"";
    char bad[32][512];
    int n = 0;
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"version\":1}\n", H);
    snprintf(bad[n++], 512, "{\"version\":1,\"length\":1,\"role\":\"root\",\"sha256\":%s}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s}", H);
    snprintf(bad[n++], 512, "{\"a\":0,\"length\":1,\"role\":\"root\",\"sha256\":%s,"
                            "\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":\"%s\",\"version\":1}",
             "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":\"%.62s\","
                            "\"version\":1}", SAMPLE_SHA);
    snprintf(bad[n++], 512, "{\"length\":\"1\",\"role\":\"root\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"version\":0}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"timestamp\",\"sha256\":%s,"
                            "\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"provenance\":{\"source_rev\":\"a\"},\"role\":"
                            "\"snapshot\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"provenance\":{},\"role\":\"targets\","
                            "\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"provenance\":{\"source_rev\":\"\"},\"role\":"
                            "\"targets\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"provenance\":{\"build_recipe_sha256\":\"ab\"},"
                            "\"role\":\"targets\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"time\":"
                            "\"2023-02-30T00:00:00Z\",\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"time\":"
                            "\"2023-11-14T22:13:20+00:00\",\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"version\":1.5}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"ro\\u006ft\",\"sha256\":%s,"
                            "\"version\":1}", H);
    snprintf(bad[n++], 512, "null");
    /* What the origin's own parser rejected before it shared this one. */
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"version\":1} ", H);
    snprintf(bad[n++], 512, "{\"role\":\"root\",\"length\":1,\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":-1,\"role\":\"root\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"provenance\":{\"source_rev\":\"a\"},\"role\":"
                            "\"root\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"provenance\":{\"source_rev\":\"a\",\"x\":1},"
                            "\"role\":\"targets\",\"sha256\":%s,\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"time\":"
                            "\"2023-11-14 22:13:20\",\"version\":1}", H);
    snprintf(bad[n++], 512, "{\"length\":1,\"role\":\"root\",\"sha256\":%s,\"time\":5,"
                            "\"version\":1}", H);
    snprintf(bad[n++], 512, "[1]");
    snprintf(bad[n++], 512, "{\"length\":1,\"length\":1,\"role\":\"root\",\"sha256\":%s,"
                            "\"version\":1}", H);
    snprintf(bad[n++], 512, "%s", "");
    for (int i = 0; i < n; i++) {
        rh_log_entry en;
        memset(&en, 0x5a, sizeof en);
        rh_error e;
        rh_error_clear(&e);
        if (rh_log_entry_parse((const uint8_t *)bad[i], strlen(bad[i]), "t", &en, &e) !=
            RH_EPARSE)
            fail_msg("case %d parsed: %s", i, bad[i]);
        assert_non_null(strstr(e.msg, "t: log entry"));
        assert_int_equal((unsigned char)en.role[0], 0x5a);
    }
    char good[512];
    snprintf(good, sizeof good, "{\"length\":1,\"role\":\"av/team\",\"sha256\":%s,"
                                "\"version\":1}", H);
    rh_log_entry en;
    assert_int_equal(rh_log_entry_parse((const uint8_t *)good, strlen(good), "t", &en, NULL),
                     RH_OK);
    assert_string_equal(en.role, "av/team");
}

/* A checkpoint of the log key with cosignatures by the first ncos of three witnesses. */
typedef struct fixture {
    rh_privkey *log, *w[3], *stranger;
    rh_log_keys keys;
} fixture;

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rh_privkey_generate(&f->log, NULL), RH_OK);
    assert_int_equal(rh_privkey_generate(&f->stranger, NULL), RH_OK);
    assert_int_equal(rh_note_key_from_privkey(f->log, "rhine.test/log", RH_NOTE_TYPE_ED25519,
                                              &f->keys.log, NULL),
                     RH_OK);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "mirror-%d.test/w", i);
        assert_int_equal(rh_privkey_generate(&f->w[i], NULL), RH_OK);
        assert_int_equal(rh_note_key_from_privkey(f->w[i], name, RH_NOTE_TYPE_COSIG_V1,
                                                  &f->keys.witnesses[i], NULL),
                         RH_OK);
    }
    f->keys.nwitnesses = 3;
}

static void fixture_cleanup(fixture *f)
{
    rh_privkey_free(f->log);
    rh_privkey_free(f->stranger);
    for (int i = 0; i < 3; i++)
        rh_privkey_free(f->w[i]);
}

static void make_note(fixture *f, const rh_privkey *signer, int ncos, bool bad_cos, rh_buf *out)
{
    rh_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    snprintf(cp.origin, sizeof cp.origin, "rhine.test/log");
    cp.size = 42;
    memset(cp.root, 7, 32);
    rh_buf_init(out, RH_NOTE_MAX_BYTES);
    assert_int_equal(rh_checkpoint_format(&cp, out), RH_OK);
    size_t tl = out->len;
    uint8_t *text = malloc(tl);
    memcpy(text, out->data, tl);
    assert_int_equal(rh_buf_appendc(out, '\n'), RH_OK);
    assert_int_equal(rh_note_sign(text, tl, "rhine.test/log", signer, out, NULL), RH_OK);
    for (int i = 0; i < ncos; i++) {
        const rh_privkey *k = bad_cos && i == 0 ? f->stranger : f->w[i];
        assert_int_equal(rh_note_cosign(text, tl, f->keys.witnesses[i].name, k,
                                        1700000000 + (uint64_t)i, out, NULL),
                         RH_OK);
    }
    free(text);
}

static rh_err verify(fixture *f, const rh_buf *note, size_t quorum, size_t *ncos)
{
    f->keys.quorum = quorum;
    rh_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    rh_error e;
    rh_error_clear(&e);
    rh_err rc = rh_log_checkpoint_verify(note->data, note->len, "cp", &f->keys, &cp, ncos, &e);
    if (rc == RH_OK) {
        assert_int_equal(cp.size, 42);
        assert_string_equal(cp.origin, "rhine.test/log");
    }
    rh_checkpoint_cleanup(&cp);
    return rc;
}

static void test_checkpoint_quorum(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    rh_buf n;
    size_t ncos = 99;
    /* Two of three witnesses cosigned. */
    make_note(&f, f.log, 2, false, &n);
    assert_int_equal(verify(&f, &n, 0, &ncos), RH_OK);
    assert_int_equal(ncos, 2);
    assert_int_equal(verify(&f, &n, 2, &ncos), RH_OK);
    assert_int_equal(verify(&f, &n, 3, NULL), RH_ESIG);
    rh_buf_cleanup(&n);
    /* The log key did not sign: no quorum of witnesses makes up for it. */
    make_note(&f, f.stranger, 3, false, &n);
    assert_int_equal(verify(&f, &n, 0, NULL), RH_ESIG);
    assert_int_equal(verify(&f, &n, 3, NULL), RH_ESIG);
    rh_buf_cleanup(&n);
    /* A stranger's line under a witness's name (another key ID) counts for nothing. */
    make_note(&f, f.log, 2, true, &n);
    assert_int_equal(verify(&f, &n, 1, &ncos), RH_OK);
    assert_int_equal(ncos, 1);
    assert_int_equal(verify(&f, &n, 2, NULL), RH_ESIG);
    rh_buf_cleanup(&n);
    /* No witnesses configured: the log signature alone. */
    make_note(&f, f.log, 0, false, &n);
    f.keys.nwitnesses = 0;
    assert_int_equal(verify(&f, &n, 0, &ncos), RH_OK);
    assert_int_equal(ncos, 0);
    rh_buf_cleanup(&n);
    fixture_cleanup(&f);
}

/* The classic 8-leaf reference tree (RFC 6962's test data, as in test_merkle.c) as a view's
 * entries: the root of every prefix, the empty one included, and no prefix past the end. */
static void test_view_prefix_root(void **state)
{
    (void)state;
    static const char empty_root[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    uint8_t data[64];
    size_t off[9] = {0};
    for (size_t i = 0; i < 8; i++) {
        size_t n = strlen(ref_leaves[i]) / 2;
        assert_int_equal(rh_hex_decode(ref_leaves[i], data + off[i], n), RH_OK);
        off[i + 1] = off[i] + n;
    }
    rh_log_view v;
    memset(&v, 0, sizeof v);
    v.size = 8;
    v.data = data;
    v.off = off;
    for (uint64_t k = 0; k <= 8; k++) {
        uint8_t got[32], want[32];
        assert_int_equal(rh_log_view_prefix_root(&v, k, got), RH_OK);
        assert_int_equal(rh_hex_decode(k == 0 ? empty_root : ref_roots[k - 1], want, 32), RH_OK);
        assert_memory_equal(got, want, 32);
    }
    uint8_t got[32];
    assert_int_equal(rh_log_view_prefix_root(&v, 9, got), RH_EINVAL);
}

/* Entries a client keeps: one bundle (each a 2-byte length and the bytes) and their tree. */
typedef struct kept {
    rh_buf bundle;
    rh_merkle_tree t;
} kept;

static void kept_init(kept *k)
{
    rh_buf_init(&k->bundle, 1 << 20);
    rh_merkle_tree_init(&k->t);
}

/* Appends entry en (n bytes) to the bundle and its leaf to the tree. */
static void kept_add(kept *k, const char *en, int n)
{
    uint8_t len2[2] = {(uint8_t)(n >> 8), (uint8_t)n}, leaf[32];
    assert_int_equal(rh_buf_append(&k->bundle, len2, 2), RH_OK);
    assert_int_equal(rh_buf_append(&k->bundle, en, (size_t)n), RH_OK);
    assert_int_equal(rh_merkle_leaf_hash(en, (size_t)n, leaf), RH_OK);
    assert_int_equal(rh_merkle_tree_append(&k->t, leaf, NULL, NULL), RH_OK);
}

/* The view of the kept entries under *cp, the checkpoint of their tree (no signature: a view
 * from kept entries checks the root), which must succeed. */
static rh_log_view *kept_view(kept *k, rh_checkpoint *cp)
{
    memset(cp, 0, sizeof *cp);
    snprintf(cp->origin, sizeof cp->origin, "example.com/log");
    cp->size = k->t.size;
    assert_int_equal(rh_merkle_tree_root(&k->t, cp->root), RH_OK);
    rh_error e;
    rh_error_clear(&e);
    rh_log_view *v = NULL;
    assert_int_equal(
        rh_log_view_from_entries(k->bundle.data, k->bundle.len, "log.entries", cp, &v, &e), RH_OK);
    return v;
}

/* Kept entries: 300 canonical entries (past one tile) as one bundle become a view of their
 * checkpoint's tree and back, byte for byte; the wrong root, a short bundle, trailing bytes or
 * the wrong count are refused. */
static void test_view_from_kept_entries(void **state)
{
    (void)state;
    enum { N = 300 };
    kept k;
    kept_init(&k);
    for (int i = 0; i < N; i++) {
        char en[256];
        int n = snprintf(en, sizeof en, "{\"length\":%d,\"role\":\"targets\",\"sha256\":\"%s\","
                         "\"version\":%d}", 100 + i, SAMPLE_SHA, i + 1);
        kept_add(&k, en, n);
    }
    rh_checkpoint cp;
    rh_log_view *v = kept_view(&k, &cp);
    assert_int_equal(v->size, N);
    assert_int_equal(v->ent[N - 1].version, N);
    assert_int_equal(v->ent[7].length, 107);
    assert_non_null(rh_log_view_find(v, "targets", 256, NULL));
    rh_buf again;
    rh_buf_init(&again, 1 << 20);
    assert_int_equal(rh_log_view_entries(v, &again), RH_OK);
    assert_int_equal(again.len, k.bundle.len);
    assert_memory_equal(again.data, k.bundle.data, k.bundle.len);
    uint8_t r[32];
    assert_int_equal(rh_log_view_prefix_root(v, N, r), RH_OK);
    assert_memory_equal(r, cp.root, 32);
    rh_log_view_free(v);
    v = NULL;
    rh_error e;
    rh_error_clear(&e);
    /* Refused: another root, a bundle cut short, bytes after the last entry, one entry
     * fewer than the bundle holds. */
    cp.root[0] ^= 1;
    assert_int_equal(
        rh_log_view_from_entries(k.bundle.data, k.bundle.len, "log.entries", &cp, &v, &e),
        RH_ELOG);
    assert_non_null(strstr(e.msg, "log.entries: its 300 entries are not the checkpoint's"));
    cp.root[0] ^= 1;
    assert_int_equal(
        rh_log_view_from_entries(k.bundle.data, k.bundle.len - 1, "log.entries", &cp, &v, &e),
        RH_ELOG);
    assert_int_equal(rh_buf_append(&k.bundle, "x", 1), RH_OK);
    assert_int_equal(
        rh_log_view_from_entries(k.bundle.data, k.bundle.len, "log.entries", &cp, &v, &e),
        RH_ELOG);
    k.bundle.len--;
    cp.size = N - 1;
    assert_int_equal(
        rh_log_view_from_entries(k.bundle.data, k.bundle.len, "log.entries", &cp, &v, &e),
        RH_ELOG);
    assert_null(v);
    rh_buf_cleanup(&again);
    rh_buf_cleanup(&k.bundle);
}

/* A view keeps each entry's fields and strings, not a fixed 1.4 KB rh_log_entry: 1,000
 * entries, half of them targets with provenance, come back field for field, and the view
 * holds their bytes plus under 256 bytes per entry (offset, fields, role and source revision,
 * and the last string block's free room). */
static void test_view_keeps_entries_compactly(void **state)
{
    (void)state;
    enum { N = 1000 };
    kept k;
    kept_init(&k);
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        char en[512];
        int n = i % 2 == 0
                    ? snprintf(en, sizeof en,
                               "{\"length\":%d,\"provenance\":{\"build_recipe_sha256\":\"" FF64
                               "\",\"source_rev\":\"git:" SAMPLE_SHA "-%d\"},\"role\":\"targets\","
                               "\"sha256\":\"%s\",\"time\":\"2023-11-14T22:13:20Z\","
                               "\"version\":%d}",
                               100 + i, i, SAMPLE_SHA, i / 2 + 1)
                    : snprintf(en, sizeof en,
                               "{\"length\":%d,\"role\":\"snapshot\",\"sha256\":\"%s\","
                               "\"version\":%d}", 100 + i, SAMPLE_SHA, i / 2 + 1);
        kept_add(&k, en, n);
        sum += (size_t)n;
    }
    rh_checkpoint cp;
    rh_log_view *v = kept_view(&k, &cp);
    for (int i = 0; i < N; i++) {
        const rh_log_ventry *en = &v->ent[i];
        char rev[128];
        snprintf(rev, sizeof rev, "git:" SAMPLE_SHA "-%d", i);
        assert_string_equal(en->role, i % 2 == 0 ? "targets" : "snapshot");
        assert_int_equal(en->version, i / 2 + 1);
        assert_int_equal(en->length, 100 + i);
        assert_int_equal(en->sha256[31], 31);
        assert_int_equal(en->has_source_rev, i % 2 == 0);
        assert_string_equal(en->source_rev, i % 2 == 0 ? rev : "");
        assert_int_equal(en->has_recipe, i % 2 == 0);
        assert_int_equal(en->build_recipe_sha256[0], i % 2 == 0 ? 0xff : 0);
        assert_int_equal(en->has_time, i % 2 == 0);
        assert_int_equal(en->time, i % 2 == 0 ? 1700000000 : 0);
    }
    uint64_t idx = 0;
    const rh_log_ventry *f = rh_log_view_find(v, "snapshot", 400, &idx);
    assert_non_null(f);
    assert_int_equal(idx, 799);
    assert_ptr_equal(f, &v->ent[799]);
    assert_null(rh_log_view_find(v, "snapshot", 501, NULL));
    assert_true(rh_log_view_bytes(v) <= sum + 256 * (size_t)N);
    assert_true(rh_log_view_bytes(v) >= sum + 128 * (size_t)N); /* counts what it holds */
    rh_log_view_free(v);
    rh_buf_cleanup(&k.bundle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_known_answer),
        cmocka_unit_test(test_entry_rejects),
        cmocka_unit_test(test_checkpoint_quorum),
        cmocka_unit_test(test_view_prefix_root),
        cmocka_unit_test(test_view_from_kept_entries),
        cmocka_unit_test(test_view_keeps_entries_compactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
