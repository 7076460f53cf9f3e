/* test_http_util.c -- tables for path decoding, Range parsing, If-None-Match, caching headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/http_util.h"

static void test_path_decode_table(void **state)
{
    static const struct {
        const char *raw;
        int status;
        const char *decoded;
    } t[] = {
        {"/metadata/1.root.json", 0, "metadata/1.root.json"},
        {"/targets/a/b%20c.zst", 0, "targets/a/b c.zst"},
        {"/t/%41%62", 0, "t/Ab"},
        {"/t/a~b-c_d.e", 0, "t/a~b-c_d.e"},
        {"/t/x%2e", 0, "t/x."},               /* dot not leading: fine */
        {"/t/%c3%a9", 0, "t/\xc3\xa9"},       /* UTF-8 bytes may be encoded */
        {"/", 404, NULL},                     /* directory */
        {"/metadata/", 404, NULL},            /* trailing slash: directory */
        {"/a//b", 404, NULL},                 /* empty segment */
        {"//a", 404, NULL},
        {"/../etc/passwd", 404, NULL},
        {"/a/../b", 404, NULL},
        {"/a/./b", 404, NULL},
        {"/a/%2e%2e/b", 404, NULL},           /* encoded dot-dot */
        {"/a/%2E%2E", 404, NULL},
        {"/.git/config", 404, NULL},          /* dotfile directory */
        {"/a/.hidden", 404, NULL},
        {"/a%2fb", 404, NULL},                /* encoded '/' */
        {"/a%2Fb", 404, NULL},
        {"/a\\b", 404, NULL},                 /* backslash */
        {"/a%5cb", 404, NULL},                /* encoded backslash */
        {"/a%00b", 400, NULL},                /* NUL */
        {"/a%0ab", 400, NULL},                /* control character */
        {"/a%7f", 400, NULL},
        {"/a%4", 400, NULL},                  /* truncated escape */
        {"/a%", 400, NULL},
        {"/a%zz", 400, NULL},                 /* not hex */
        {"/a%%41", 400, NULL},                /* no double decoding */
        {"/a b", 400, NULL},                  /* raw space */
        {"/a\x01", 400, NULL},
        {"/a\xc3\xa9", 400, NULL},            /* raw non-ASCII must be encoded */
        {"a/b", 400, NULL},                   /* not origin-form */
        {"", 400, NULL},
        {"http://x/a", 400, NULL},
    };
    char out[64];
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int st = rh_http_path_decode(t[i].raw, strlen(t[i].raw), out, sizeof(out));
        if (st != t[i].status)
            fail_msg("path \"%s\": expected %d, got %d", t[i].raw, t[i].status, st);
        if (t[i].decoded != NULL)
            assert_string_equal(out, t[i].decoded);
    }
}

static void test_path_decode_too_long(void **state)
{
    char out[8];
    (void)state;
    assert_int_equal(rh_http_path_decode("/abcdefg", 8, out, sizeof(out)), 0);
    assert_string_equal(out, "abcdefg");
    assert_int_equal(rh_http_path_decode("/abcdefgh", 9, out, sizeof(out)), 414);
    /* escapes are counted after decoding: 7 bytes decoded fit */
    assert_int_equal(rh_http_path_decode("/%61bcdefg", 10, out, sizeof(out)), 0);
    assert_int_equal(rh_http_path_decode("/a", 2, out, 0), 414);
}

static void test_range_table(void **state)
{
    static const struct {
        const char *v;
        uint64_t size;
        rh_range_result res;
        uint64_t first, len;
    } t[] = {
        {"bytes=0-0", 10, RH_RANGE_OK, 0, 1},
        {"bytes=0-9", 10, RH_RANGE_OK, 0, 10},
        {"bytes=2-4", 10, RH_RANGE_OK, 2, 3},
        {"bytes=5-", 10, RH_RANGE_OK, 5, 5},
        {"bytes=5-100", 10, RH_RANGE_OK, 5, 5},         /* last clipped */
        {"bytes=-3", 10, RH_RANGE_OK, 7, 3},
        {"bytes=-30", 10, RH_RANGE_OK, 0, 10},          /* suffix longer than file */
        {"Bytes=1-2 ", 10, RH_RANGE_OK, 1, 2},          /* unit case-insensitive */
        {"bytes = 1-2", 10, RH_RANGE_NONE, 0, 0},       /* no whitespace around '=' */
        {"bytes=10-", 10, RH_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=10-20", 10, RH_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-0", 10, RH_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-", 0, RH_RANGE_UNSATISFIABLE, 0, 0},  /* empty file */
        {"bytes=-5", 0, RH_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-1,3-4", 10, RH_RANGE_NONE, 0, 0},     /* several ranges: whole file */
        {"bytes=4-2", 10, RH_RANGE_NONE, 0, 0},         /* invalid: ignored */
        {"bytes=a-2", 10, RH_RANGE_NONE, 0, 0},
        {"bytes=1-2x", 10, RH_RANGE_NONE, 0, 0},
        {"bytes=-", 10, RH_RANGE_NONE, 0, 0},
        {"bytes=", 10, RH_RANGE_NONE, 0, 0},
        {"items=0-1", 10, RH_RANGE_NONE, 0, 0},
        {"bytes=99999999999999999999-", 10, RH_RANGE_NONE, 0, 0}, /* overflow */
        {"bytes=18446744073709551615-", 10, RH_RANGE_UNSATISFIABLE, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        rh_http_range r = {12345, 12345};
        rh_range_result res = rh_http_range_parse(t[i].v, t[i].size, &r);
        if (res != t[i].res)
            fail_msg("range \"%s\" size %llu: expected %d got %d", t[i].v,
                     (unsigned long long)t[i].size, t[i].res, res);
        if (res == RH_RANGE_OK) {
            assert_int_equal(r.first, t[i].first);
            assert_int_equal(r.len, t[i].len);
        }
    }
    assert_int_equal(rh_http_range_parse(NULL, 10, NULL), RH_RANGE_NONE);
}

static void test_inm(void **state)
{
    const char *tag = "\"abc\"";
    (void)state;
    assert_true(rh_http_inm_match("\"abc\"", tag));
    assert_true(rh_http_inm_match("W/\"abc\"", tag));
    assert_true(rh_http_inm_match("\"x\", \"abc\"", tag));
    assert_true(rh_http_inm_match(" , \"x\" ,\"abc\"", tag));
    assert_true(rh_http_inm_match("*", tag));
    assert_false(rh_http_inm_match("\"abcd\"", tag));
    assert_false(rh_http_inm_match("\"ab\"", tag));
    assert_false(rh_http_inm_match("abc", tag));        /* unquoted: malformed */
    assert_false(rh_http_inm_match("\"abc", tag));      /* unterminated */
    assert_false(rh_http_inm_match("", tag));
    assert_false(rh_http_inm_match(NULL, tag));
}

static void test_short_cache(void **state)
{
    static const char *const custom[] = {"/metadata/", "x.json", NULL};
    (void)state;
    assert_true(rh_http_is_short_cache("metadata/timestamp.json", NULL));
    assert_true(rh_http_is_short_cache("timestamp.json", NULL));
    assert_true(rh_http_is_short_cache("log/checkpoint", NULL));
    assert_true(rh_http_is_short_cache("mirror/log/checkpoint", NULL));
    assert_false(rh_http_is_short_cache("metadata/1.timestamp.json", NULL));
    assert_false(rh_http_is_short_cache("metadata/3.snapshot.json", NULL));
    assert_false(rh_http_is_short_cache("log/checkpoints", NULL));
    assert_false(rh_http_is_short_cache("xlog/checkpoint", NULL));
    assert_false(rh_http_is_short_cache("log/tile/0/000", NULL));
    assert_false(rh_http_is_short_cache("targets/abc.name.zst", NULL));
    assert_true(rh_http_is_short_cache("a/x.json", custom));
    assert_false(rh_http_is_short_cache("metadata/timestamp.json", custom));
}

static void test_content_type_and_reason(void **state)
{
    (void)state;
    assert_string_equal(rh_http_content_type("metadata/1.root.json"), "application/json");
    assert_string_equal(rh_http_content_type("targets/x.zst"), "application/zstd");
    assert_string_equal(rh_http_content_type("log/checkpoint"), "text/plain");
    assert_string_equal(rh_http_content_type("a.json.gz"), "text/plain");
    assert_string_equal(rh_http_reason(404), "Not Found");
    assert_string_equal(rh_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(rh_http_reason(299), "Unknown");
}

static void test_hash_prefixed(void **state)
{
    char hex[65];
    const char *h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char p[160];
    (void)state;
    snprintf(p, sizeof(p), "targets/x/%s.name.zst", h);
    assert_true(rh_http_hash_prefixed(p, hex));
    assert_string_equal(hex, h);
    snprintf(p, sizeof(p), "%s.a", h);
    assert_true(rh_http_hash_prefixed(p, hex));
    snprintf(p, sizeof(p), "targets/%s", h); /* no dot after the hash */
    assert_false(rh_http_hash_prefixed(p, hex));
    snprintf(p, sizeof(p), "targets/%.63s.x", h); /* 63 digits */
    assert_false(rh_http_hash_prefixed(p, hex));
    snprintf(p, sizeof(p), "targets/%.63sA.x", h); /* upper case */
    assert_false(rh_http_hash_prefixed(p, hex));
    snprintf(p, sizeof(p), "%s.x/file", h); /* hash in a directory name only */
    assert_false(rh_http_hash_prefixed(p, hex));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_decode_table),
        cmocka_unit_test(test_path_decode_too_long),
        cmocka_unit_test(test_range_table),
        cmocka_unit_test(test_inm),
        cmocka_unit_test(test_short_cache),
        cmocka_unit_test(test_content_type_and_reason),
        cmocka_unit_test(test_hash_prefixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
