/* test_tpath.c -- tables of safe and unsafe target paths, role-name encodings, URL decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest/limits.h"
#include "manifest/tpath.h"

#define S(x) x, sizeof(x) - 1

static void test_paths_ok(void **state)
{
    (void)state;
    static const struct {
        const char *p;
        size_t len;
    } ok[] = {
        {S("a")},
        {S("file.txt")},
        {S("dir/sub/file.tar.zst")},
        {S("...")},         /* three dots is a name, not a traversal */
        {S(".hidden")},
        {S("a/..b/c..")},
        {S("x/.y")},
        {S("sp ace/semi;colon=eq+plus%41")},
        {S("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt")}, /* café/日本.txt */
        {S("\xf0\x9f\xa6\x80")},                         /* U+1F980 */
        {S("\xf4\x8f\xbf\xbf")},                         /* U+10FFFF */
        {S("\xed\x9f\xbf")},                             /* U+D7FF */
        {S("~user/a-b_c")},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rh_error e;
        rh_error_clear(&e);
        if (rh_tpath_check(ok[i].p, ok[i].len, &e) != RH_OK)
            fail_msg("case %zu: %s", i, e.msg);
    }
}

static void test_paths_bad(void **state)
{
    (void)state;
    static const struct {
        const char *p;
        size_t len;
        const char *msg;
    } bad[] = {
        {S(""), "target path \"\": empty"},
        {S("/etc/passwd"), "target path \"/etc/passwd\": absolute path"},
        {S("/"), "target path \"/\": absolute path"},
        {S("a//b"), "target path \"a//b\": empty segment"},
        {S("a/"), "target path \"a/\": empty segment"},
        {S("."), "target path \".\": \".\" or \"..\" segment"},
        {S(".."), "target path \"..\": \".\" or \"..\" segment"},
        {S("../x"), "target path \"../x\": \".\" or \"..\" segment"},
        {S("a/../../x"), "target path \"a/../../x\": \".\" or \"..\" segment"},
        {S("a/./b"), "target path \"a/./b\": \".\" or \"..\" segment"},
        {S("a/.."), "target path \"a/..\": \".\" or \"..\" segment"},
        {S("a\\..\\b"), "target path \"a\\\\..\\\\b\": backslash"},
        {S("C:\\x"), "target path \"C:\\\\x\": backslash"},
        {S("a\0b"), "target path \"a\\x00b\": NUL byte"},
        {S("a\nb"), "target path \"a\\x0ab\": control character"},
        {S("\x1b[31mred"), "target path \"\\x1b[31mred\": control character"},
        {S("del\x7f"), "target path \"del\\x7f\": control character"},
        {S("tab\there"), "target path \"tab\\x09here\": control character"},
        {S("q\"uote\x01"), "target path \"q\\\"uote\\x01\": control character"},
        {S("\xff"), "target path \"\\xff\": invalid UTF-8"},
        {S("\xc0\xaf"), "target path \"\\xc0\\xaf\": invalid UTF-8"},         /* overlong / */
        {S("\xe0\x80\xaf"), "target path \"\\xe0\\x80\\xaf\": invalid UTF-8"}, /* overlong */
        {S("\xed\xa0\x80"), "target path \"\\xed\\xa0\\x80\": invalid UTF-8"}, /* surrogate */
        {S("\xf4\x90\x80\x80"), "target path \"\\xf4\\x90\\x80\\x80\": invalid UTF-8"},
        {S("a\xc3"), "target path \"a\\xc3\": invalid UTF-8"}, /* cut sequence */
        {S("\xc3(x"), "target path \"\\xc3(x\": invalid UTF-8"},
        {S("\x80"), "target path \"\\x80\": invalid UTF-8"}, /* lone continuation */
        {S("\xf8\x88\x80\x80\x80"), "target path \"\\xf8\\x88\\x80\\x80\\x80\": invalid UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_tpath_check(bad[i].p, bad[i].len, &e);
        if (rc != RH_EPATH)
            fail_msg("case %zu: got %d", i, (int)rc);
        if (strcmp(e.msg, bad[i].msg) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, e.msg, bad[i].msg);
    }
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_tpath_check(NULL, 0, &e), RH_EPATH);
    assert_int_equal(rh_tpath_check("x", 1, NULL), RH_OK);
    assert_int_equal(rh_tpath_check("..", 2, NULL), RH_EPATH);
}

static void test_path_length(void **state)
{
    (void)state;
    char *p = malloc(RH_MAX_TARGET_PATH + 2);
    assert_non_null(p);
    memset(p, 'a', RH_MAX_TARGET_PATH + 1);
    for (size_t i = 100; i < RH_MAX_TARGET_PATH; i += 100)
        p[i] = '/';
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_tpath_check(p, RH_MAX_TARGET_PATH, &e), RH_OK);
    assert_int_equal(rh_tpath_check(p, RH_MAX_TARGET_PATH + 1, &e), RH_EPATH);
    /* The message is bounded: path cut with "..." and the reason kept. */
    assert_non_null(strstr(e.msg, "...\": longer than 4096 bytes"));
    assert_true(strlen(e.msg) < 220);
    free(p);
}

static void test_escape_for_msg(void **state)
{
    (void)state;
    char out[12];
    assert_string_equal(rh_escape_for_msg("abc", 3, out, sizeof out), "abc");
    assert_string_equal(rh_escape_for_msg("a\x01", 2, out, sizeof out), "a\\x01");
    assert_string_equal(rh_escape_for_msg("abcdefghijklmnop", 16, out, sizeof out),
                        "abcdefgh...");
    assert_string_equal(rh_escape_for_msg("abcdefg\x01", 8, out, sizeof out), "abcdefg...");
    char tiny[2];
    assert_string_equal(rh_escape_for_msg("abc", 3, tiny, sizeof tiny), "");
}

static void test_role_filename(void **state)
{
    (void)state;
    /* Expected values are what python3 urllib.parse.quote(role, safe="") gives. */
    static const struct {
        const char *role, *want;
    } cases[] = {
        {"targets", "targets"},
        {"role1", "role1"},
        {"a-b_c.d~e", "a-b_c.d~e"},
        {"...", "..."},
        {"a/b", "a%2Fb"},
        {"../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"},
        {"with space", "with%20space"},
        {"100%", "100%25"},
        {"a+b=c&d?e#f", "a%2Bb%3Dc%26d%3Fe%23f"},
        {"back\\slash", "back%5Cslash"},
        {"caf\xc3\xa9", "caf%C3%A9"},
        {"\x01\x7f\xff", "%01%7F%FF"},
        {":@!$'()*,;", "%3A%40%21%24%27%28%29%2A%2C%3B"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[RH_ROLE_FILENAME_MAX];
        assert_int_equal(rh_role_filename(cases[i].role, out, sizeof out), RH_OK);
        assert_string_equal(out, cases[i].want);
    }
    static const char *const bad[] = {"", ".", ".."};
    for (size_t i = 0; i < 3; i++) {
        char out[16] = "untouched";
        assert_int_equal(rh_role_filename(bad[i], out, sizeof out), RH_EPATH);
        assert_string_equal(out, "untouched");
    }
    char big[RH_MAX_ROLE_NAME + 2];
    memset(big, '/', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char out[RH_ROLE_FILENAME_MAX];
    assert_int_equal(rh_role_filename(big, out, sizeof out), RH_EPATH);
    big[RH_MAX_ROLE_NAME] = '\0'; /* the longest name, all escaped, fits exactly */
    assert_int_equal(rh_role_filename(big, out, sizeof out), RH_OK);
    assert_int_equal(strlen(out), RH_ROLE_FILENAME_MAX - 1);
    /* Too small a buffer: exact fit passes, one less fails. */
    char small[8] = "keep";
    assert_int_equal(rh_role_filename("a/b", small, 6), RH_OK);
    assert_string_equal(small, "a%2Fb");
    memcpy(small, "keep", 5);
    assert_int_equal(rh_role_filename("a/b", small, 5), RH_EINVAL);
    assert_string_equal(small, "keep");
    assert_int_equal(rh_role_filename(NULL, small, 5), RH_EINVAL);
}

static void test_url_decode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want;
        size_t wantlen;
    } ok[] = {
        {"", "", 0},
        {"/metadata/1.root.json", "/metadata/1.root.json", 21},
        {"a%2Fb", "a/b", 3},
        {"a%2fb", "a/b", 3},
        {"%41%42%43", "ABC", 3},
        {"a+b", "a+b", 3},
        {"%25", "%", 1},
        {"%2525", "%25", 3},
        {"caf%C3%A9", "caf\xc3\xa9", 5},
        {"%FF", "\xff", 1},
        {"%01", "\x01", 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char out[64];
        size_t n = 999;
        assert_int_equal(rh_url_decode(ok[i].in, strlen(ok[i].in), out, sizeof out, &n), RH_OK);
        assert_int_equal(n, ok[i].wantlen);
        assert_memory_equal(out, ok[i].want, n + 1);
    }
    static const char *const bad[] = {"%00", "a%0", "%", "%%", "%G1", "%1G", "a%", "%-1",
                                      "x%00y", "% 1", "%0x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[64] = "keep";
        size_t n = 7;
        if (rh_url_decode(bad[i], strlen(bad[i]), out, sizeof out, &n) != RH_EPARSE)
            fail_msg("case %zu (%s) accepted", i, bad[i]);
        assert_string_equal(out, "keep");
        assert_int_equal(n, 7);
    }
    char out[4];
    assert_int_equal(rh_url_decode("a\0b", 3, out, sizeof out, NULL), RH_EPARSE);
    assert_int_equal(rh_url_decode("abc", 3, out, sizeof out, NULL), RH_OK);
    assert_int_equal(rh_url_decode("abcd", 4, out, sizeof out, NULL), RH_ETOOBIG);
    assert_int_equal(rh_url_decode("%41%42%43%44", 12, out, sizeof out, NULL), RH_ETOOBIG);
    assert_int_equal(rh_url_decode("%41%42%43", 9, out, sizeof out, NULL), RH_OK);
    assert_string_equal(out, "ABC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_ok),
        cmocka_unit_test(test_paths_bad),
        cmocka_unit_test(test_path_length),
        cmocka_unit_test(test_escape_for_msg),
        cmocka_unit_test(test_role_filename),
        cmocka_unit_test(test_url_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
