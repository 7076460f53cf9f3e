/* test_failover.c -- mirror ordering table: priority, health, latency, lies, stability. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client/failover.h"

#define U -1.0 /* unmeasured latency */

typedef struct {
    const char *name;
    size_t n;
    rh_mirror_health m[5];
    size_t want_n;
    size_t want[5];
} order_case;

static void test_order_table(void **state)
{
    (void)state;
    static const order_case cases[] = {
        {"config order when all equal", 3,
         {{100, false, 0, U}, {100, false, 0, U}, {100, false, 0, U}}, 3, {0, 1, 2}},
        {"priority first", 3, {{50, false, 0, U}, {10, false, 0, U}, {30, false, 0, U}}, 3,
         {1, 2, 0}},
        {"priority beats latency and failures", 2,
         {{20, false, 0, 0.001}, {10, false, 3, 9.0}}, 2, {1, 0}},
        {"fewer failures first at equal priority", 3,
         {{10, false, 2, 0.1}, {10, false, 0, 0.5}, {10, false, 1, 0.01}}, 3, {1, 2, 0}},
        {"faster first, measured before unmeasured", 4,
         {{10, false, 0, U}, {10, false, 0, 0.3}, {10, false, 0, 0.1}, {10, false, 0, U}}, 4,
         {2, 1, 0, 3}},
        {"liars are skipped", 4,
         {{10, true, 1, 0.01}, {20, false, 0, U}, {5, true, 1, U}, {20, false, 0, U}}, 2,
         {1, 3}},
        {"everyone lied", 2, {{1, true, 1, U}, {2, true, 1, U}}, 0, {0}},
        {"empty", 0, {{0}}, 0, {0}},
        {"negative priority allowed", 2, {{0, false, 0, U}, {-5, false, 0, U}}, 2, {1, 0}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const order_case *c = &cases[i];
        size_t got[5] = {99, 99, 99, 99, 99};
        size_t n = rh_failover_order(c->m, c->n, got);
        if (n != c->want_n)
            fail_msg("%s: %zu usable, want %zu", c->name, n, c->want_n);
        for (size_t k = 0; k < n; k++)
            if (got[k] != c->want[k])
                fail_msg("%s: position %zu is mirror %zu, want %zu", c->name, k, got[k],
                         c->want[k]);
    }
}

static void test_health_updates(void **state)
{
    (void)state;
    rh_mirror_health h = {10, false, 0, U};
    rh_failover_failed(&h);
    rh_failover_failed(&h);
    assert_int_equal(h.failures, 2);
    rh_failover_ok(&h, 0.2);
    assert_int_equal(h.failures, 0);
    assert_true(h.latency_s > 0.199 && h.latency_s < 0.201); /* first sample taken as is */
    rh_failover_ok(&h, 1.2);                                  /* 0.3 * 1.2 + 0.7 * 0.2 = 0.5 */
    assert_true(h.latency_s > 0.499 && h.latency_s < 0.501);
    rh_failover_ok(&h, -1);                                   /* no sample: latency kept */
    assert_true(h.latency_s > 0.499 && h.latency_s < 0.501);
    assert_false(h.bad);
    rh_failover_lied(&h);
    assert_true(h.bad);
    assert_int_equal(h.failures, 1);
    /* A mirror that failed once drops behind an equal one; a liar disappears for good. */
    rh_mirror_health m[2] = {{10, false, 0, U}, {10, false, 0, U}};
    size_t o[2];
    rh_failover_failed(&m[0]);
    assert_int_equal(rh_failover_order(m, 2, o), 2);
    assert_int_equal(o[0], 1);
    rh_failover_ok(&m[0], 0.01);
    rh_failover_ok(&m[1], 0.02);
    assert_int_equal(rh_failover_order(m, 2, o), 2);
    assert_int_equal(o[0], 0);
    rh_failover_lied(&m[0]);
    rh_failover_ok(&m[0], 0.0001);
    assert_int_equal(rh_failover_order(m, 2, o), 1);
    assert_int_equal(o[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_table),
        cmocka_unit_test(test_health_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
