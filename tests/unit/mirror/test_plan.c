/* test_plan.c -- tables for the mirror's pure sync planner (fetch, publish order, GC). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mirror/plan.h"

#define T0 1700000000
#define DAY 86400

static const rh_plan_meta META_V3[] = {
    {"1.root.json", "root", 1, false},
    {"2.root.json", "root", 2, true},
    {"timestamp.json", "timestamp", 3, true},
    {"3.snapshot.json", "snapshot", 3, true},
    {"3.targets.json", "targets", 3, true},
    {"2.team%2Fa.json", "team/a", 2, true},
};

static const rh_plan_target TG_V3[] = {
    {"targets/db/aa.x.zst", 10},
    {"targets/bb.y.zst", 20},
    {"targets/db/aa.x.zst", 10}, /* listed twice (two roles): fetched once */
    {"targets/cc.z.zst", 0},
};

static void check_strv(char **got, size_t n, const char *const *want, size_t nwant)
{
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
}

/* Empty mirror: every target fetched once, then metadata in dependency order. */
static void test_fresh_mirror(void **st)
{
    (void)st;
    rh_plan_in in = {META_V3, 6, TG_V3, 4, NULL, 0, NULL, 0, T0, DAY};
    rh_plan p;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_plan_make(&in, &p, &e), RH_OK);
    assert_int_equal(p.nfetch, 3);
    /* fetch indexes in relpath order: bb, cc, db/aa (first of the duplicates) */
    assert_int_equal(p.fetch[0], 1);
    assert_int_equal(p.fetch[1], 3);
    assert_int_equal(p.fetch[2], 0);
    static const char *const want[] = {
        "targets/bb.y.zst",           "targets/cc.z.zst",        "targets/db/aa.x.zst",
        "metadata/2.team%2Fa.json",   "metadata/3.targets.json", "metadata/3.snapshot.json",
        "metadata/2.root.json",       "metadata/timestamp.json",
    };
    check_strv(p.publish, p.npublish, want, 8);
    assert_int_equal(p.ngc, 0);
    assert_int_equal(p.nsuperseded, 0);
    rh_plan_cleanup(&p);
    rh_plan_cleanup(&p); /* idempotent */
}

/* Already serving this version: nothing to fetch or publish (exit 3), not even timestamp. */
static void test_nothing_to_do(void **st)
{
    (void)st;
    static const rh_plan_meta meta[] = {
        {"1.root.json", "root", 1, false},
        {"timestamp.json", "timestamp", 3, false},
        {"3.snapshot.json", "snapshot", 3, false},
        {"3.targets.json", "targets", 3, false},
    };
    static const rh_plan_target tg[] = {{"targets/bb.y.zst", 20}};
    static const char *const present[] = {"metadata/1.root.json", "metadata/timestamp.json",
                                          "metadata/3.snapshot.json", "metadata/3.targets.json",
                                          "targets/bb.y.zst"};
    rh_plan_in in = {meta, 4, tg, 1, present, 5, NULL, 0, T0, DAY};
    rh_plan p;
    assert_int_equal(rh_plan_make(&in, &p, NULL), RH_OK);
    assert_int_equal(p.nfetch, 0);
    assert_int_equal(p.npublish, 0);
    assert_int_equal(p.ngc, 0);
    assert_int_equal(p.nsuperseded, 0);
    rh_plan_cleanup(&p);
}

/* New version over an old one: only new files, staged immutable files already present are not
 * re-published, timestamp.json always last; old files become superseded at now; roots kept. */
static void test_update_supersedes(void **st)
{
    (void)st;
    static const rh_plan_meta meta[] = {
        {"1.root.json", "root", 1, false},
        {"timestamp.json", "timestamp", 4, true},
        {"4.snapshot.json", "snapshot", 4, true},
        {"3.targets.json", "targets", 3, true}, /* staged again but already served */
    };
    static const rh_plan_target tg[] = {{"targets/new.n.zst", 5}, {"targets/keep.k.zst", 6}};
    static const char *const present[] = {
        "metadata/1.root.json",     "metadata/timestamp.json", "metadata/3.snapshot.json",
        "metadata/3.targets.json",  "metadata/2.targets.json", "targets/keep.k.zst",
        "targets/old.o.zst",        "metadata/0.root.json",
    };
    rh_plan_in in = {meta, 4, tg, 2, present, 8, NULL, 0, T0, DAY};
    rh_plan p;
    assert_int_equal(rh_plan_make(&in, &p, NULL), RH_OK);
    static const char *const want[] = {"targets/new.n.zst", "metadata/4.snapshot.json",
                                       "metadata/timestamp.json"};
    check_strv(p.publish, p.npublish, want, 3);
    assert_int_equal(p.nfetch, 1);
    assert_int_equal(p.fetch[0], 0);
    assert_int_equal(p.ngc, 0);
    /* sorted by relpath; 0.root.json is a root: never superseded */
    assert_int_equal(p.nsuperseded, 3);
    assert_string_equal(p.superseded[0].relpath, "metadata/2.targets.json");
    assert_string_equal(p.superseded[1].relpath, "metadata/3.snapshot.json");
    assert_string_equal(p.superseded[2].relpath, "targets/old.o.zst");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(p.superseded[i].since, T0);
    rh_plan_cleanup(&p);
}

/* Grace period table: since + grace <= now is collected, otherwise kept with its old time;
 * a file referenced again or gone leaves the map; a future time is clamped to now. */
static void test_grace_gc(void **st)
{
    (void)st;
    static const rh_plan_meta meta[] = {{"timestamp.json", "timestamp", 9, false}};
    static const rh_plan_target tg[] = {{"targets/back.b.zst", 1}};
    static const char *const present[] = {
        "metadata/timestamp.json", "targets/expired.e.zst", "targets/edge.g.zst",
        "targets/young.y.zst",     "targets/back.b.zst",    "targets/future.f.zst",
        "targets/unknown.u.zst",
    };
    rh_plan_old old[] = {
        {"targets/expired.e.zst", T0 - DAY - 1},
        {"targets/edge.g.zst", T0 - DAY},   /* exactly the grace period: collected */
        {"targets/young.y.zst", T0 - DAY + 1},
        {"targets/back.b.zst", T0 - 5 * DAY}, /* referenced again: not collected */
        {"targets/gone.x.zst", T0 - 5},       /* no longer present: dropped */
        {"targets/future.f.zst", T0 + 1000},  /* clock went back: clamped to now */
    };
    rh_plan_in in = {meta, 1, tg, 1, present, 7, old, 6, T0, DAY};
    rh_plan p;
    assert_int_equal(rh_plan_make(&in, &p, NULL), RH_OK);
    static const char *const gc[] = {"targets/edge.g.zst", "targets/expired.e.zst"};
    check_strv(p.gc, p.ngc, gc, 2);
    assert_int_equal(p.nsuperseded, 3);
    assert_string_equal(p.superseded[0].relpath, "targets/future.f.zst");
    assert_int_equal(p.superseded[0].since, T0);
    assert_string_equal(p.superseded[1].relpath, "targets/unknown.u.zst");
    assert_int_equal(p.superseded[1].since, T0);
    assert_string_equal(p.superseded[2].relpath, "targets/young.y.zst");
    assert_int_equal(p.superseded[2].since, T0 - DAY + 1);
    assert_int_equal(p.npublish, 0);
    rh_plan_cleanup(&p);

    /* grace 0: everything unreferenced goes at once (roots still kept) */
    static const char *const present2[] = {"metadata/timestamp.json", "metadata/7.root.json",
                                           "metadata/1.snapshot.json"};
    rh_plan_in in2 = {meta, 1, NULL, 0, present2, 3, NULL, 0, T0, 0};
    assert_int_equal(rh_plan_make(&in2, &p, NULL), RH_OK);
    static const char *const gc2[] = {"metadata/1.snapshot.json"};
    check_strv(p.gc, p.ngc, gc2, 1);
    assert_int_equal(p.nsuperseded, 0);
    rh_plan_cleanup(&p);
}

/* After a crash between publish steps: targets and snapshot already renamed, timestamp not. */
static void test_resume_after_crash(void **st)
{
    (void)st;
    static const rh_plan_meta meta[] = {
        {"timestamp.json", "timestamp", 5, true},
        {"5.snapshot.json", "snapshot", 5, false}, /* read back from public/ */
        {"5.targets.json", "targets", 5, false},
    };
    static const rh_plan_target tg[] = {{"targets/a.a.zst", 1}, {"targets/b.b.zst", 2}};
    static const char *const present[] = {"metadata/timestamp.json", "metadata/5.snapshot.json",
                                          "metadata/5.targets.json", "targets/a.a.zst"};
    rh_plan_in in = {meta, 3, tg, 2, present, 4, NULL, 0, T0, DAY};
    rh_plan p;
    assert_int_equal(rh_plan_make(&in, &p, NULL), RH_OK);
    static const char *const want[] = {"targets/b.b.zst", "metadata/timestamp.json"};
    check_strv(p.publish, p.npublish, want, 2);
    rh_plan_cleanup(&p);
}

static void test_bad_args(void **st)
{
    (void)st;
    rh_plan p;
    rh_error e;
    rh_error_clear(&e);
    rh_plan_in in = {NULL, 2, NULL, 0, NULL, 0, NULL, 0, T0, DAY};
    assert_int_equal(rh_plan_make(&in, &p, &e), RH_EINVAL);
    assert_non_null(strstr(e.msg, "plan"));
    assert_int_equal(rh_plan_make(NULL, &p, NULL), RH_EINVAL);
    rh_plan_cleanup(NULL);
}

static void test_target_relpath(void **st)
{
    (void)st;
    uint8_t h[RH_SHA256_LEN];
    for (int i = 0; i < RH_SHA256_LEN; i++)
        h[i] = (uint8_t)i;
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    char out[RH_MIRROR_MAX_RELPATH], want[RH_MIRROR_MAX_RELPATH];
    rh_error e;
    assert_int_equal(rh_plan_target_relpath("db/x/a.bin.zst", h, out, sizeof out, NULL), RH_OK);
    snprintf(want, sizeof want, "targets/db/x/%s.a.bin.zst", hex);
    assert_string_equal(out, want);
    assert_int_equal(rh_plan_target_relpath("b.zst", h, out, sizeof out, NULL), RH_OK);
    snprintf(want, sizeof want, "targets/%s.b.zst", hex);
    assert_string_equal(out, want);
    static const char *const bad[] = {"../etc/passwd", "/abs", "a//b", "a/./b", "a/..", "",
                                      "a\\b", "a/b/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_error_clear(&e);
        assert_int_equal(rh_plan_target_relpath(bad[i], h, out, sizeof out, &e), RH_EPATH);
    }
    char small[40];
    assert_int_equal(rh_plan_target_relpath("b.zst", h, small, sizeof small, NULL), RH_ETOOBIG);
}

static void test_url_path(void **st)
{
    (void)st;
    static const struct { const char *in, *out; } v[] = {
        {"targets/a/b.zst", "targets/a/b.zst"},
        {"metadata/2.team%2Fa.json", "metadata/2.team%252Fa.json"},
        {"targets/a b?#.zst", "targets/a%20b%3F%23.zst"},
        {"targets/\xc3\xa9~_-.zst", "targets/%C3%A9~_-.zst"},
    };
    char out[128];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(rh_plan_url_path(v[i].in, out, sizeof out), RH_OK);
        assert_string_equal(out, v[i].out);
    }
    char small[6];
    assert_int_equal(rh_plan_url_path("abcdef", small, sizeof small), RH_ETOOBIG);
    assert_int_equal(rh_plan_url_path("ab%", small, 5), RH_ETOOBIG); /* "ab%25" needs 6 */
    assert_int_equal(rh_plan_url_path("ab%", small, sizeof small), RH_OK);
    assert_int_equal(rh_plan_url_path("ab%", out, sizeof out), RH_OK);
    assert_string_equal(out, "ab%25");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_mirror),     cmocka_unit_test(test_nothing_to_do),
        cmocka_unit_test(test_update_supersedes), cmocka_unit_test(test_grace_gc),
        cmocka_unit_test(test_resume_after_crash), cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_target_relpath),   cmocka_unit_test(test_url_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
