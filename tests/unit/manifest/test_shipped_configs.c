/* test_shipped_configs.c -- every config under configs/ loads, and says what the demo needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "manifest/config.h"

static const char *const regions[] = {"na", "eu", "au", "jp", "kr", "sg"};

static void test_origin_config(void **state)
{
    (void)state;
    rh_origin_config c;
    rh_error e;
    rh_error_clear(&e);
    if (rh_config_load_origin("configs/origin.yaml", &c, &e) != RH_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(c.nmirrors, 6);
    for (size_t i = 0; i < c.nmirrors; i++)
        assert_string_equal(c.mirrors[i].region, regions[i]);
    assert_non_null(strstr(c.keys, "online")); /* serve takes the online keys only */
    assert_int_equal(c.refresh_interval, 3600);
    rh_origin_config_cleanup(&c);
}

static void test_mirror_configs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "configs/mirror-%s.yaml", regions[i]);
        rh_mirror_config c;
        rh_error e;
        rh_error_clear(&e);
        if (rh_config_load_mirror(path, &c, &e) != RH_OK)
            fail_msg("%s", e.msg);
        assert_string_equal(c.region, regions[i]);
        assert_true(c.nupstreams >= 1);
        assert_string_equal(c.upstreams[0], "https://127.0.0.1:8440"); /* the origin first */
        assert_non_null(c.listen);
        assert_non_null(c.tls_cert);
        /* Every demo mirror checks the log and witnesses it. */
        assert_non_null(strstr(c.log_key, "build/demo/origin/keys/log.pub"));
        assert_true(c.has_witness);
        assert_non_null(strstr(c.witness.key, regions[i]));
        rh_mirror_config_cleanup(&c);
    }
}

static void test_client_config(void **state)
{
    (void)state;
    rh_client_config c;
    rh_error e;
    rh_error_clear(&e);
    if (rh_config_load_client("configs/client.yaml", &c, &e) != RH_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(c.nmirrors, 6);
    assert_false(c.has_witnesses); /* off by default */
    rh_client_config_cleanup(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_config),
        cmocka_unit_test(test_mirror_configs),
        cmocka_unit_test(test_client_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
