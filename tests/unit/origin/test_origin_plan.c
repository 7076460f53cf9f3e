/* test_origin_plan.c -- the origin's pure planner: path checks, change detection, versions,
 * expiry, and the exact signed objects (canonical bytes) it builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest/json.h"
#include "manifest/keys.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "origin/origin_plan.h"

/* Canonical JSON of v as a NUL-terminated string (caller frees). */
static char *canon(const json_t *v)
{
    rh_buf b;
    rh_buf_init(&b, 1 << 20);
    assert_int_equal(rh_cjson_encode(v, &b, NULL), RH_OK);
    size_t n;
    char *s = (char *)rh_buf_take(&b, &n);
    rh_buf_cleanup(&b);
    return s;
}

static void assert_canon(const json_t *v, const char *want)
{
    assert_non_null(v);
    char *got = canon(v);
    assert_string_equal(got, want);
    free(got);
}

static void fill(uint8_t *p, uint8_t v)
{
    memset(p, v, RH_SHA256_LEN);
}

#define H(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c /* 32 x c */

static void test_path_check_table(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a", "a.txt", "dir/sub/file.bin", ".hidden", "x/.y", "space name", "caf\xc3\xa9",
        "\xe6\x97\xa5\xe6\x9c\xac", "a-b_c~d+e=f,g;h@i", "...",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_origin_path_check(good[i], NULL, &e), RH_OK);
    }
    static const char *const bad[] = {
        "", "/abs", "a//b", "a/", "./a", "a/./b", "../a", "a/..", "..", "a\\b", "a\x01", "tab\tx",
        "new\nline", "del\x7f", "pct%2e", "q?x", "frag#x", "\xff", "\xc3", "\xc0\xaf" /* overlong
        '/' */, "\xed\xa0\x80" /* surrogate */, "\xc2\x85" /* C1 NEL */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_origin_path_check(bad[i], "src", &e), RH_EPATH);
        assert_int_equal(e.code, RH_EPATH);
        assert_true(strncmp(e.msg, "src: ", 5) == 0);
        /* named by itself, the file is escaped: the message stays one printable line */
        rh_error_clear(&e);
        assert_int_equal(rh_origin_path_check(bad[i], NULL, &e), RH_EPATH);
        for (const unsigned char *m = (const unsigned char *)e.msg; *m; m++)
            assert_true(*m >= 0x20 && *m < 0x7f);
    }
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_origin_path_check("d/new\nline", NULL, &e), RH_EPATH);
    assert_string_equal(e.msg, "d/new\\x0aline: control character 0x0a in name");
    /* length limits: one component, and the whole path */
    char name[RH_ORIGIN_MAX_NAME + 2];
    memset(name, 'n', sizeof name);
    name[RH_ORIGIN_MAX_NAME] = '\0';
    assert_int_equal(rh_origin_path_check(name, NULL, NULL), RH_OK);
    name[RH_ORIGIN_MAX_NAME] = 'n';
    name[RH_ORIGIN_MAX_NAME + 1] = '\0';
    assert_int_equal(rh_origin_path_check(name, NULL, NULL), RH_EPATH);
    size_t n = RH_MAX_TARGET_PATH - 4 + 1;
    char *longp = malloc(n + 1);
    assert_non_null(longp);
    for (size_t i = 0; i < n; i++)
        longp[i] = (i % 100 == 99) ? '/' : 'p';
    longp[n] = '\0';
    assert_int_equal(rh_origin_path_check(longp, NULL, NULL), RH_EPATH);
    longp[n - 1] = '\0'; /* exactly the limit */
    assert_int_equal(rh_origin_path_check(longp, NULL, NULL), RH_OK);
    free(longp);
}

/* A current "targets" object with entries for a, b, c, and the source files a (same), b
 * (changed content), d (new): c is removed. */
static json_t *current_targets(void)
{
    uint8_t z[RH_SHA256_LEN], u[RH_SHA256_LEN];
    json_t *t = json_object();
    fill(z, 0xa0);
    fill(u, 0x0a);
    json_object_set_new(t, "a.zst", rh_target_entry_new(10, z, 100, u));
    fill(z, 0xb0);
    fill(u, 0x0b);
    json_object_set_new(t, "dir/b.zst", rh_target_entry_new(20, z, 200, u));
    fill(z, 0xc0);
    fill(u, 0x0c);
    json_object_set_new(t, "c.zst", rh_target_entry_new(30, z, 300, u));
    return t;
}

static void test_plan_add_change_keep_remove(void **state)
{
    (void)state;
    json_t *cur = current_targets();
    rh_src_file f[3] = {
        {.relpath = "a", .length = 100},
        {.relpath = "d/new", .length = 5},
        {.relpath = "dir/b", .length = 200},
    };
    fill(f[0].sha256, 0x0a); /* same as current */
    fill(f[1].sha256, 0x0d);
    fill(f[2].sha256, 0xbb); /* same length, other content */
    rh_publish_plan p;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_plan_publish(f, 3, cur, &p, &e), RH_OK);
    assert_int_equal(p.nitems, 3);
    assert_int_equal(p.nkept, 1);
    assert_int_equal(p.nadded, 1);
    assert_int_equal(p.nchanged, 1);
    assert_int_equal(p.nremoved, 1);
    assert_string_equal(p.removed[0], "c.zst");
    assert_string_equal(p.items[0].target_path, "a.zst");
    assert_int_equal(p.items[0].action, RH_PLAN_KEEP);
    /* Kept entries are the current ones, shared, not copies (a copy of every unchanged entry
     * was 28 MB of a 20,000-target release): the same object, one reference more. */
    assert_ptr_equal(p.items[0].entry, json_object_get(cur, "a.zst"));
    assert_int_equal(json_object_get(cur, "a.zst")->refcount, 2);
    assert_string_equal(p.items[1].target_path, "d/new.zst");
    assert_int_equal(p.items[1].action, RH_PLAN_ADD);
    assert_null(p.items[1].entry);
    assert_string_equal(p.items[2].target_path, "dir/b.zst");
    assert_int_equal(p.items[2].action, RH_PLAN_CHANGE);
    /* An entry is still missing: no targets object. */
    assert_null(rh_plan_targets_object(&p));
    uint8_t z[RH_SHA256_LEN];
    fill(z, 0xdd);
    p.items[1].entry = rh_target_entry_new(7, z, 5, f[1].sha256);
    p.items[2].entry = rh_target_entry_new(21, z, 200, f[2].sha256);
    json_t *t = rh_plan_targets_object(&p);
    assert_non_null(t);
    assert_int_equal(json_object_size(t), 3);
    assert_null(json_object_get(t, "c.zst"));
    assert_ptr_equal(json_object_get(t, "a.zst"), json_object_get(cur, "a.zst"));
    assert_false(json_equal(t, cur));
    json_decref(t);
    rh_publish_plan_cleanup(&p);
    rh_publish_plan_cleanup(&p); /* idempotent on a zeroed plan */
    /* The plan gave its references back and left the current targets as they were. */
    assert_int_equal(json_object_get(cur, "a.zst")->refcount, 1);
    json_t *again = current_targets();
    assert_true(json_equal(cur, again));
    json_decref(again);
    json_decref(cur);
}

static void test_plan_same_length_other_hash_and_length_change(void **state)
{
    (void)state;
    json_t *cur = current_targets();
    rh_src_file f[3] = {
        {.relpath = "a", .length = 101}, /* same hash, other length: changed */
        {.relpath = "c", .length = 300},
        {.relpath = "dir/b", .length = 200},
    };
    fill(f[0].sha256, 0x0a);
    fill(f[1].sha256, 0x0c);
    fill(f[2].sha256, 0x0b);
    rh_publish_plan p;
    assert_int_equal(rh_plan_publish(f, 3, cur, &p, NULL), RH_OK);
    assert_int_equal(p.items[0].action, RH_PLAN_CHANGE);
    assert_int_equal(p.items[1].action, RH_PLAN_KEEP);
    assert_int_equal(p.items[2].action, RH_PLAN_KEEP);
    assert_int_equal(p.nremoved, 0);
    rh_publish_plan_cleanup(&p);
    json_decref(cur);
}

static void test_plan_unchanged_equals_current(void **state)
{
    (void)state;
    json_t *cur = current_targets();
    rh_src_file f[3] = {
        {.relpath = "a", .length = 100},
        {.relpath = "c", .length = 300},
        {.relpath = "dir/b", .length = 200},
    };
    fill(f[0].sha256, 0x0a);
    fill(f[1].sha256, 0x0c);
    fill(f[2].sha256, 0x0b);
    rh_publish_plan p;
    assert_int_equal(rh_plan_publish(f, 3, cur, &p, NULL), RH_OK);
    assert_int_equal(p.nkept, 3);
    assert_int_equal(p.nadded + p.nchanged + p.nremoved, 0);
    json_t *t = rh_plan_targets_object(&p);
    assert_true(json_equal(t, cur)); /* publish makes no new version */
    json_decref(t);
    rh_publish_plan_cleanup(&p);
    json_decref(cur);
}

static void test_plan_everything_removed_and_empty(void **state)
{
    (void)state;
    json_t *cur = current_targets();
    rh_publish_plan p;
    assert_int_equal(rh_plan_publish(NULL, 0, cur, &p, NULL), RH_OK);
    assert_int_equal(p.nitems, 0);
    assert_int_equal(p.nremoved, 3);
    /* sorted bytewise */
    assert_string_equal(p.removed[0], "a.zst");
    assert_string_equal(p.removed[1], "c.zst");
    assert_string_equal(p.removed[2], "dir/b.zst");
    json_t *t = rh_plan_targets_object(&p);
    assert_canon(t, "{}");
    json_decref(t);
    rh_publish_plan_cleanup(&p);
    /* no current targets at all: everything is added */
    rh_src_file f[1] = {{.relpath = "x", .length = 0}};
    assert_int_equal(rh_plan_publish(f, 1, NULL, &p, NULL), RH_OK);
    assert_int_equal(p.nadded, 1);
    assert_int_equal(p.nremoved, 0);
    rh_publish_plan_cleanup(&p);
    json_decref(cur);
}

static void test_plan_rejects_unsorted_and_duplicates(void **state)
{
    (void)state;
    rh_src_file f[2] = {{.relpath = "b"}, {.relpath = "a"}};
    rh_publish_plan p;
    memset(&p, 0x5a, sizeof p);
    rh_publish_plan before = p;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_plan_publish(f, 2, NULL, &p, &e), RH_EINVAL);
    assert_memory_equal(&p, &before, sizeof p); /* out-param untouched on failure */
    assert_non_null(strstr(e.msg, "not sorted"));
    f[0].relpath = "a";
    assert_int_equal(rh_plan_publish(f, 2, NULL, &p, NULL), RH_EINVAL);
}

/* An entry whose custom field is missing or malformed is "changed", never kept. */
static void test_plan_malformed_current_entry_is_changed(void **state)
{
    (void)state;
    json_t *cur = json_pack("{s:{s:i,s:{s:s}}, s:{s:i,s:{s:s},s:{s:{s:s,s:s}}}}",
                            "a.zst", "length", 1, "hashes", "sha256", H("00"),
                            "b.zst", "length", 1, "hashes", "sha256", H("00"),
                            "custom", "rhine", "length", "1", "sha256", H("00"));
    assert_non_null(cur);
    rh_src_file f[2] = {{.relpath = "a", .length = 1}, {.relpath = "b", .length = 1}};
    fill(f[0].sha256, 0);
    fill(f[1].sha256, 0);
    rh_publish_plan p;
    assert_int_equal(rh_plan_publish(f, 2, cur, &p, NULL), RH_OK);
    assert_int_equal(p.items[0].action, RH_PLAN_CHANGE);
    assert_int_equal(p.items[1].action, RH_PLAN_CHANGE);
    rh_publish_plan_cleanup(&p);
    json_decref(cur);
}

static void test_target_entry_known_answer(void **state)
{
    (void)state;
    uint8_t z[RH_SHA256_LEN], u[RH_SHA256_LEN];
    fill(z, 0xab);
    fill(u, 0x01);
    json_t *t = rh_target_entry_new(123, z, 4567, u);
    assert_canon(t, "{\"custom\":{\"rhine\":{\"length\":4567,\"sha256\":\"" H("01") "\"}},"
                    "\"hashes\":{\"sha256\":\"" H("ab") "\"},\"length\":123}");
    assert_string_equal(rh_target_entry_sha256(t), H("ab"));
    json_decref(t);
    json_t *bad = json_pack("{s:{s:s}}", "hashes", "sha256", "abc");
    assert_null(rh_target_entry_sha256(bad));
    json_decref(bad);
}

static void test_stored_path(void **state)
{
    (void)state;
    static const struct {
        const char *path, *want;
    } t[] = {
        {"a.txt.zst", "HH.a.txt.zst"},
        {"dir/sub/f.bin.zst", "dir/sub/HH.f.bin.zst"},
        {"d/x.zst", "d/HH.x.zst"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *s = rh_target_stored_path(t[i].path, "HH");
        assert_string_equal(s, t[i].want);
        free(s);
    }
}

static void test_next_version_and_resign(void **state)
{
    (void)state;
    assert_int_equal(rh_next_version(1, 0), 2);
    assert_int_equal(rh_next_version(1, 1), 2);
    assert_int_equal(rh_next_version(3, 5), 6); /* an orphan 5.targets.json is never reused */
    assert_int_equal(rh_next_version(7, 2), 8);
    static const struct {
        int64_t now, expires, life;
        bool want;
    } t[] = {
        {0, 86400, 86400, false},         /* just signed */
        {43199, 86400, 86400, false},     /* 43201 s left of 86400: more than half */
        {43200, 86400, 86400, true},      /* exactly half left */
        {43201, 86400, 86400, true},
        {86400, 86400, 86400, true},      /* expired */
        {90000, 86400, 86400, true},
        {0, 3, 3, false},                 /* odd lifetime: half is 1.5 s */
        {1, 3, 3, false},                 /* 2 s left */
        {2, 3, 3, true},                  /* 1 s left */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_int_equal(rh_needs_resign(t[i].now, t[i].expires, t[i].life), t[i].want);
}

static void test_signed_objects_known_answer(void **state)
{
    (void)state;
    uint8_t s[RH_SHA256_LEN];
    fill(s, 0x11);
    json_t *m = rh_meta_entry_new(4, 999, s);
    json_t *meta = json_pack("{s:o}", "targets.json", m);
    json_t *snap = rh_signed_snapshot_new(5, 86400, meta);
    assert_canon(snap, "{\"_type\":\"snapshot\",\"expires\":\"1970-01-02T00:00:00Z\",\"meta\":"
                       "{\"targets.json\":{\"hashes\":{\"sha256\":\"" H("11") "\"},\"length\":999,"
                       "\"version\":4}},\"spec_version\":\"1.0.31\",\"version\":5}");
    json_t *ts = rh_signed_timestamp_new(9, 1767225600, 5, 321, s);
    assert_canon(ts, "{\"_type\":\"timestamp\",\"expires\":\"2026-01-01T00:00:00Z\",\"meta\":"
                     "{\"snapshot.json\":{\"hashes\":{\"sha256\":\"" H("11") "\"},\"length\":321,"
                     "\"version\":5}},\"spec_version\":\"1.0.31\",\"version\":9}");
    json_t *prov = json_pack("{s:s}", "source_rev", "abc");
    json_t *tg = rh_signed_targets_new(2, 0, json_object_get(snap, "meta"), prov);
    assert_canon(tg, "{\"_type\":\"targets\",\"expires\":\"1970-01-01T00:00:00Z\",\"spec_version\":"
                     "\"1.0.31\",\"targets\":{\"targets.json\":{\"hashes\":{\"sha256\":\"" H("11")
                     "\"},\"length\":999,\"version\":4}},\"version\":2,\"x-rhine-provenance\":"
                     "{\"source_rev\":\"abc\"}}");
    json_t *empty = json_object();
    json_t *tg2 = rh_signed_targets_new(2, 0, empty, NULL);
    json_decref(empty);
    assert_null(json_object_get(tg2, RH_ORIGIN_PROVENANCE_FIELD));
    /* version 0 is not a version */
    assert_null(rh_signed_snapshot_new(0, 0, meta));
    assert_null(rh_meta_entry_new(0, 1, s));
    /* next: only version and expires change */
    json_t *n = rh_signed_next(snap, 6, 172800);
    assert_canon(n, "{\"_type\":\"snapshot\",\"expires\":\"1970-01-03T00:00:00Z\",\"meta\":"
                    "{\"targets.json\":{\"hashes\":{\"sha256\":\"" H("11") "\"},\"length\":999,"
                    "\"version\":4}},\"spec_version\":\"1.0.31\",\"version\":6}");
    json_decref(n);
    json_decref(tg2);
    json_decref(tg);
    json_decref(prov);
    json_decref(ts);
    json_decref(snap);
    json_decref(meta);
}

static void test_root_set_role_and_prune(void **state)
{
    (void)state;
    json_t *root = rh_signed_root_new(1, 0, true);
    json_t *k[3];
    const char *ids[3] = {"id-a", "id-b", "id-c"};
    for (int i = 0; i < 3; i++)
        k[i] = json_pack("{s:s,s:s,s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519",
                         "keyval", "public", ids[i]);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_root_set_role(root, RH_ROLE_ROOT, k, ids, 2, 3, &e), RH_EINVAL);
    assert_int_equal(rh_root_set_role(root, RH_ROLE_ROOT, k, ids, 0, 1, NULL), RH_EINVAL);
    assert_int_equal(rh_root_set_role(root, RH_ROLE_ROOT, k, ids, 2, 0, NULL), RH_EINVAL);
    assert_int_equal(rh_root_set_role(root, RH_ROLE_ROOT, k, ids, 2, 2, NULL), RH_OK);
    assert_int_equal(rh_root_set_role(root, RH_ROLE_TARGETS, &k[1], &ids[1], 1, 1, NULL), RH_OK);
    assert_int_equal(json_object_size(json_object_get(root, "keys")), 2);
    /* the role "root" moves to key c: a leaves "keys", b stays (targets still uses it) */
    assert_int_equal(rh_root_set_role(root, RH_ROLE_ROOT, &k[2], &ids[2], 1, 1, NULL), RH_OK);
    json_t *keys = json_object_get(root, "keys");
    assert_null(json_object_get(keys, "id-a"));
    assert_non_null(json_object_get(keys, "id-b"));
    assert_non_null(json_object_get(keys, "id-c"));
    json_t *rr = json_object_get(json_object_get(root, "roles"), "root");
    assert_canon(rr, "{\"keyids\":[\"id-c\"],\"threshold\":1}");
    json_t *notroot = json_object();
    assert_int_equal(rh_root_set_role(notroot, RH_ROLE_ROOT, k, ids, 1, 1, NULL), RH_EINVAL);
    json_decref(notroot);
    for (int i = 0; i < 3; i++)
        json_decref(k[i]);
    json_decref(root);
}

/* The objects the planner builds, signed with real keys, parse and verify with the client's
 * code (the same path a mirror takes). */
static void test_signed_chain_verifies(void **state)
{
    (void)state;
    rh_privkey *rk = NULL, *sk = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_privkey_generate(&rk, &e), RH_OK);
    assert_int_equal(rh_privkey_generate(&sk, &e), RH_OK);
    char rid[RH_KEYID_HEX_LEN + 1], sid[RH_KEYID_HEX_LEN + 1];
    assert_int_equal(rh_privkey_keyid(rk, rid), RH_OK);
    assert_int_equal(rh_privkey_keyid(sk, sid), RH_OK);
    json_t *rpub = rh_privkey_public_json(rk), *spub = rh_privkey_public_json(sk);
    const char *ridp = rid, *sidp = sid;
    json_t *root = rh_signed_root_new(1, 4102444800, true);
    assert_int_equal(rh_root_set_role(root, RH_ROLE_ROOT, &rpub, &ridp, 1, 1, &e), RH_OK);
    for (int r = 1; r < RH_ROLE_COUNT; r++)
        assert_int_equal(rh_root_set_role(root, (rh_role)r, &spub, &sidp, 1, 1, &e), RH_OK);
    rh_buf b;
    rh_buf_init(&b, RH_MAX_ROOT_BYTES);
    assert_int_equal(rh_metadata_sign(root, &rk, 1, &b, &e), RH_OK);
    rh_metadata *rm = NULL;
    assert_int_equal(rh_metadata_parse(b.data, b.len, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, "1.root",
                                       &rm, &e),
                     RH_OK);
    assert_true(rm->u.root.consistent_snapshot);
    assert_int_equal(rh_root_verify_role(rm, RH_ROLE_ROOT, rm, &e), RH_OK);
    uint8_t s[RH_SHA256_LEN];
    fill(s, 0x22);
    json_t *ts = rh_signed_timestamp_new(3, 4102444800, 2, 100, s);
    rh_buf_reset(&b);
    assert_int_equal(rh_metadata_sign(ts, &sk, 1, &b, &e), RH_OK);
    rh_metadata *tm = NULL;
    assert_int_equal(rh_metadata_parse(b.data, b.len, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP,
                                       "timestamp", &tm, &e),
                     RH_OK);
    assert_int_equal(rh_root_verify_role(rm, RH_ROLE_TIMESTAMP, tm, &e), RH_OK);
    assert_int_equal(tm->u.timestamp.version, 2);
    assert_int_equal(tm->u.timestamp.length, 100);
    assert_memory_equal(tm->u.timestamp.hashes.sha256, s, RH_SHA256_LEN);
    /* signed by the root key only: the timestamp role rejects it */
    rh_metadata *bad = NULL;
    rh_buf_reset(&b);
    assert_int_equal(rh_metadata_sign(ts, &rk, 1, &b, &e), RH_OK);
    assert_int_equal(rh_metadata_parse(b.data, b.len, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP,
                                       "timestamp", &bad, &e),
                     RH_OK);
    assert_int_equal(rh_root_verify_role(rm, RH_ROLE_TIMESTAMP, bad, &e), RH_ESIG);
    rh_metadata_free(bad);
    rh_metadata_free(tm);
    rh_metadata_free(rm);
    rh_buf_cleanup(&b);
    json_decref(ts);
    json_decref(root);
    json_decref(rpub);
    json_decref(spub);
    rh_privkey_free(rk);
    rh_privkey_free(sk);
}

static void test_duration_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {{"1s", 1}, {"90m", 5400}, {"12h", 43200}, {"365d", 31536000}, {"36600d", 3162240000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        assert_int_equal(rh_duration_parse(good[i].s, &v), RH_OK);
        assert_int_equal(v, good[i].want);
    }
    static const char *const bad[] = {"", "d", "0d", "1", "1w", "-1d", "+1d", " 1d", "1d ", "1dd",
                                      "36601d", "99999999999999999999d", "1.5d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 7;
        assert_int_equal(rh_duration_parse(bad[i], &v), RH_EINVAL);
        assert_int_equal(v, 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_check_table),
        cmocka_unit_test(test_plan_add_change_keep_remove),
        cmocka_unit_test(test_plan_same_length_other_hash_and_length_change),
        cmocka_unit_test(test_plan_unchanged_equals_current),
        cmocka_unit_test(test_plan_everything_removed_and_empty),
        cmocka_unit_test(test_plan_rejects_unsorted_and_duplicates),
        cmocka_unit_test(test_plan_malformed_current_entry_is_changed),
        cmocka_unit_test(test_target_entry_known_answer),
        cmocka_unit_test(test_stored_path),
        cmocka_unit_test(test_next_version_and_resign),
        cmocka_unit_test(test_signed_objects_known_answer),
        cmocka_unit_test(test_root_set_role_and_prune),
        cmocka_unit_test(test_signed_chain_verifies),
        cmocka_unit_test(test_duration_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
