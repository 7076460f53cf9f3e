/* test_buf.c -- rh_buf ceilings and rh_error first-failure-wins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"

static void test_append_and_ceiling(void **state)
{
    (void)state;
    rh_buf b;
    rh_buf_init(&b, 8);
    assert_int_equal(rh_buf_append(&b, "abcd", 4), RH_OK);
    assert_int_equal(rh_buf_appendf(&b, "%d", 123), RH_OK);
    assert_string_equal((char *)b.data, "abcd123");
    assert_int_equal(rh_buf_append(&b, "xy", 2), RH_ETOOBIG);
    assert_int_equal(b.len, 7);
    assert_int_equal(rh_buf_appendc(&b, 'z'), RH_OK);
    assert_int_equal(rh_buf_appendc(&b, 'z'), RH_ETOOBIG);
    size_t n;
    uint8_t *p = rh_buf_take(&b, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "abcd123z", 8);
    assert_null(b.data);
    free(p);
    rh_buf_cleanup(&b);
}

static void test_reserve(void **state)
{
    (void)state;
    rh_buf b;
    rh_buf_init(&b, 1000);
    assert_int_equal(rh_buf_append(&b, "ab", 2), RH_OK);
    assert_int_equal(rh_buf_reserve(&b, 999), RH_ETOOBIG); /* past the ceiling */
    assert_int_equal(rh_buf_reserve(&b, 700), RH_OK);
    assert_int_equal(b.cap, 2 + 700 + 1); /* exactly, not the next power of two */
    uint8_t *at = b.data;
    char x[700];
    memset(x, 'x', sizeof x);
    assert_int_equal(rh_buf_append(&b, x, sizeof x), RH_OK);
    assert_ptr_equal(b.data, at); /* no reallocation within the reserve */
    assert_int_equal(b.len, 702);
    assert_int_equal(rh_buf_reserve(&b, 10), RH_OK); /* beyond it: grows again */
    assert_true(b.cap >= 713);
    assert_string_equal((char *)b.data + 700, "xx");
    rh_buf_cleanup(&b);
}

static void test_error_first_wins(void **state)
{
    (void)state;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_fail(&e, RH_EPARSE, "a.json: %s", "bad"), RH_EPARSE);
    assert_int_equal(rh_fail(&e, RH_ESIG, "later"), RH_ESIG);
    assert_int_equal(e.code, RH_EPARSE);
    rh_error_prefix(&e, "mirror %s", "eu");
    assert_string_equal(e.msg, "mirror eu: a.json: bad");
    assert_string_equal(rh_err_name(RH_EEXPIRED), "expired");
    assert_string_equal(rh_err_name((rh_err)999), "unknown");
    assert_int_equal(rh_fail(NULL, RH_EIO, "x"), RH_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_ceiling),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_error_first_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
