/* test_fleet.c -- the fleet page's pure core: origin history, the verdict table for mirror
 * timestamps and certificates, status JSON reading, HTML/JSON rendering (escaping, order, no
 * external assets), and the compose configs (docker/config/) loading as wired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "fleet/fleet.h"
#include "fleet/poll.h"
#include "manifest/config.h"

#define T0 1700000000

static rh_fleet_ts ts(uint64_t version, uint8_t fill, int64_t expires, uint64_t snap)
{
    rh_fleet_ts t = {.version = version, .expires = expires, .snapshot_version = snap};
    memset(t.sha256, fill, sizeof(t.sha256));
    return t;
}

/* Origin served v5 at T0, v6 at T0+100, v7 at T0+200 (hash byte = version). */
static void history(rh_fleet_history *h)
{
    rh_fleet_history_init(h);
    for (uint64_t v = 5; v <= 7; v++) {
        rh_fleet_ts t = ts(v, (uint8_t)v, T0 + 86400, v);
        assert_int_equal(rh_fleet_history_add(h, &t, T0 + (int64_t)(v - 5) * 100), RH_OK);
    }
}

static void test_history(void **state)
{
    (void)state;
    rh_fleet_history h;
    rh_fleet_history_init(&h);
    uint64_t order[] = {9, 3, 7, 3, 12};
    for (size_t i = 0; i < 5; i++) {
        rh_fleet_ts t = ts(order[i], (uint8_t)i, 0, 0);
        assert_int_equal(rh_fleet_history_add(&h, &t, T0 + (int64_t)i), RH_OK);
    }
    assert_int_equal(h.n, 4); /* 3 seen twice: first sighting kept */
    assert_int_equal(h.v[0].version, 3);
    assert_int_equal(h.v[1].version, 7);
    assert_int_equal(h.v[3].version, 12);
    const rh_fleet_seen *s = rh_fleet_history_find(&h, 3);
    assert_non_null(s);
    assert_int_equal(s->first_seen, T0 + 1);
    assert_int_equal(s->sha256[0], 1);
    assert_null(rh_fleet_history_find(&h, 8));
    rh_fleet_history_cleanup(&h);

    /* Past RH_FLEET_HISTORY entries the oldest versions are dropped. */
    rh_fleet_history_init(&h);
    for (uint64_t v = 1; v <= RH_FLEET_HISTORY + 10; v++) {
        rh_fleet_ts t = ts(v, 0, 0, 0);
        assert_int_equal(rh_fleet_history_add(&h, &t, T0), RH_OK);
    }
    assert_int_equal(h.n, RH_FLEET_HISTORY);
    assert_int_equal(h.v[0].version, 11);
    assert_null(rh_fleet_history_find(&h, 10));
    rh_fleet_history_cleanup(&h);
}

/* The verdict table for a mirror's verified timestamp against origin v7 at time now. */
static void test_judge_ts_table(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint64_t version;
        uint8_t fill;
        int64_t expires, now, stale_after;
        rh_fleet_health want;
        int64_t lag_v, lag_s;
        int ts_verified;
        const char *problem; /* substring of the first problem, or NULL for none */
    } cases[] = {
        {"in sync", 7, 7, T0 + 86400, T0 + 250, 600, RH_FLEET_OK, 0, 0, 1, NULL},
        {"same version other bytes", 7, 0xee, T0 + 86400, T0 + 250, 600, RH_FLEET_LYING, 0, 0,
         0, "timestamp.json v7 differs from the origin's v7"},
        {"one behind, fresh", 6, 6, T0 + 86400, T0 + 250, 600, RH_FLEET_OK, 1, 50, 1, NULL},
        {"two behind, fresh", 5, 5, T0 + 86400, T0 + 250, 600, RH_FLEET_OK, 2, 150, 1, NULL},
        {"one behind too long", 6, 6, T0 + 86400, T0 + 900, 600, RH_FLEET_STALE, 1, 700, 1,
         "behind the origin by 1 version(s) for 700s (allowed 600s)"},
        {"old version forged", 6, 0x66, T0 + 86400, T0 + 250, 600, RH_FLEET_LYING, 1, 50, 0,
         "timestamp.json v6 differs from the one the origin served"},
        {"expired", 7, 7, T0 + 100, T0 + 250, 600, RH_FLEET_STALE, 0, 0, 1,
         "timestamp.json v7 expired at 2023-11-14T22:15:00Z"},
        {"ahead (origin moved)", 8, 8, T0 + 86400, T0 + 250, 600, RH_FLEET_OK, 0, 0, 1, NULL},
        {"older than history", 2, 2, T0 + 86400, T0 + 250, 100, RH_FLEET_STALE, 5, 250, 1,
         "at least 250s"},
    };
    rh_fleet_history h;
    history(&h);
    rh_fleet_ts origin = ts(7, 7, T0 + 86400, 7);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rh_fleet_row r;
        rh_fleet_row_init(&r, "eu-1", "eu", "https://m");
        rh_fleet_ts m = ts(cases[i].version, cases[i].fill, cases[i].expires, cases[i].version);
        rh_fleet_judge_ts(&h, &origin, &m, cases[i].now, cases[i].stale_after, &r);
        if (r.health != cases[i].want || r.lag_versions != cases[i].lag_v ||
            r.lag_seconds != cases[i].lag_s || r.ts_verified != cases[i].ts_verified)
            fail_msg("%s: health %s lag %lld/%lld verified %d", cases[i].what,
                     rh_fleet_health_name(r.health), (long long)r.lag_versions,
                     (long long)r.lag_seconds, r.ts_verified);
        if (cases[i].problem == NULL) {
            if (r.nproblems != 0)
                fail_msg("%s: unexpected problem '%s'", cases[i].what, r.problems[0]);
        } else if (r.nproblems == 0 || strstr(r.problems[0], cases[i].problem) == NULL) {
            fail_msg("%s: problem '%s', want '%s'", cases[i].what,
                     r.nproblems ? r.problems[0] : "", cases[i].problem);
        }
        assert_int_equal(r.v_timestamp, (int64_t)cases[i].version);
        assert_int_equal(r.v_snapshot, (int64_t)cases[i].version);
    }
    rh_fleet_history_cleanup(&h);
}

static void test_judge_cert(void **state)
{
    (void)state;
    static const struct {
        int64_t not_after;
        rh_fleet_health want;
    } cases[] = {
        {T0 - 1, RH_FLEET_DOWN},
        {T0, RH_FLEET_DOWN},
        {T0 + 10 * 86400, RH_FLEET_WARN},
        {T0 + RH_FLEET_CERT_WARN_S, RH_FLEET_WARN},
        {T0 + RH_FLEET_CERT_WARN_S + 1, RH_FLEET_OK},
        {T0 + 365 * 86400, RH_FLEET_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rh_fleet_row r;
        rh_fleet_row_init(&r, "x", "y", "https://z");
        rh_fleet_judge_cert(cases[i].not_after, T0, &r);
        assert_int_equal(r.health, cases[i].want);
        assert_int_equal(r.cert_expiry, cases[i].not_after);
    }
    rh_fleet_row r;
    rh_fleet_row_init(&r, "x", "y", "https://z");
    rh_fleet_judge_cert(T0 + 10 * 86400, T0, &r);
    assert_string_equal(r.problems[0],
                        "TLS certificate expires at 2023-11-24T22:13:20Z (in 10 days)");
}

static void test_problems_bounded(void **state)
{
    (void)state;
    rh_fleet_row r;
    rh_fleet_row_init(&r, "a-very-long-name-that-is-truncated-to-fit-the-row-field-of-64-bytes!!",
                      "eu", "https://m");
    assert_int_equal(strlen(r.name), sizeof(r.name) - 1);
    for (int i = 0; i < RH_FLEET_MAX_PROBLEMS + 3; i++)
        rh_fleet_row_problem(&r, RH_FLEET_WARN, "p%d", i);
    rh_fleet_row_problem(&r, RH_FLEET_LYING, "dropped but counted");
    assert_int_equal(r.nproblems, RH_FLEET_MAX_PROBLEMS);
    assert_int_equal(r.health, RH_FLEET_LYING);
}

static void test_parse_status(void **state)
{
    (void)state;
    const char doc[] =
        "{\"versions\":{\"root\":2,\"timestamp\":9,\"snapshot\":4,\"targets\":3},"
        "\"lag\":{\"versions\":1,\"seconds\":12},\"last_sync\":\"2023-11-14T22:13:20Z\","
        "\"sync_duration_ms\":850,\"verification_failures\":{\"signature\":3,\"hash\":1}}";
    rh_fleet_row r;
    rh_fleet_row_init(&r, "eu-1", "eu", "https://m");
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_fleet_parse_status((const uint8_t *)doc, strlen(doc), "st", &r, &e),
                     RH_OK);
    assert_true(r.status_ok);
    assert_int_equal(r.v_root, 2);
    assert_int_equal(r.v_targets, 3);
    assert_int_equal(r.reported_lag_versions, 1);
    assert_int_equal(r.reported_lag_seconds, 12);
    assert_int_equal(r.last_sync, T0);
    assert_int_equal(r.sync_duration_ms, 850);
    assert_int_equal(r.nfailures, 2);
    uint64_t total = r.failures[0].count + r.failures[1].count;
    assert_int_equal(total, 4);

    /* Absent fields stay unknown. */
    rh_fleet_row_init(&r, "eu-1", "eu", "https://m");
    assert_int_equal(rh_fleet_parse_status((const uint8_t *)"{}", 2, "st", &r, &e), RH_OK);
    assert_int_equal(r.v_root, -1);
    assert_int_equal(r.last_sync, -1);
    assert_int_equal(r.nfailures, 0);

    static const struct {
        const char *doc;
        rh_err want;
        const char *msg;
    } bad[] = {
        {"[1,2]", RH_EPARSE, "st: not a JSON object"},
        {"{\"a\":1,\"a\":2}", RH_EPARSE, "st: 1:"},
        {"{", RH_EPARSE, "st: 1:"},
        {"", RH_EPARSE, "st: "},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rh_error_clear(&e);
        rh_fleet_row_init(&r, "eu-1", "eu", "https://m");
        assert_int_equal(rh_fleet_parse_status((const uint8_t *)bad[i].doc, strlen(bad[i].doc),
                                               "st", &r, &e), bad[i].want);
        assert_non_null(strstr(e.msg, bad[i].msg));
        assert_false(r.status_ok);
    }
    /* The shape rhine-mirror's daemon writes (mirror/daemon.c status_json). */
    const char mirror_doc[] =
        "{\"fetched\":{\"bytes\":10,\"objects\":2},\"lag_seconds\":0,\"lag_versions\":0,"
        "\"last_attempt\":1700000100,"
        "\"last_error\":\"https://o/metadata/timestamp.json: HTTP 503\","
        "\"last_success\":0,\"last_sync_duration_seconds\":1.25,\"name\":\"eu-1\","
        "\"region\":\"eu\",\"serving\":{\"root\":1,\"snapshot\":2,\"targets\":2,"
        "\"timestamp\":3},\"syncs\":{\"failed\":4,\"published\":1,\"unchanged\":0},"
        "\"verification_failures\":{\"hash\":0,\"signature\":2}}";
    rh_fleet_row_init(&r, "eu-1", "eu", "https://m");
    assert_int_equal(rh_fleet_parse_status((const uint8_t *)mirror_doc, strlen(mirror_doc), "st",
                                           &r, &e), RH_OK);
    assert_int_equal(r.v_root, 1);
    assert_int_equal(r.v_targets, 2);
    assert_int_equal(r.last_sync, -1); /* 0 = never synced */
    assert_int_equal(r.sync_duration_ms, 1250);
    assert_int_equal(r.nfailures, 2);
    assert_string_equal(r.failures[0].reason, "signature");
    assert_string_equal(r.failures[1].reason, "failed sync rounds");
    assert_int_equal(r.failures[1].count, 4);
    assert_int_equal(r.health, RH_FLEET_WARN);
    assert_string_equal(r.problems[0],
                        "mirror reports: https://o/metadata/timestamp.json: HTTP 503");

    char *big = calloc(1, RH_FLEET_MAX_STATUS_BYTES + 1);
    assert_non_null(big);
    rh_error_clear(&e);
    assert_int_equal(rh_fleet_parse_status((const uint8_t *)big, RH_FLEET_MAX_STATUS_BYTES + 1,
                                           "st", &r, &e), RH_ETOOBIG);
    free(big);
}

static rh_fleet_view *sample_view(rh_fleet_row rows[3])
{
    static rh_fleet_view v;
    memset(&v, 0, sizeof(v));
    snprintf(v.origin.url, sizeof(v.origin.url), "https://origin:8440");
    v.origin.ok = true;
    v.origin.ts_version = 7;
    v.origin.snapshot_version = 4;
    v.origin.targets_version = 3;
    v.origin.root_version = 1;
    v.origin.ts_expires = T0 + 86400;
    v.origin.ntargets = 2;
    v.generated_at = T0;
    v.stale_after = 600;
    v.round = 3;
    rh_fleet_row_init(&rows[0], "good-1", "eu", "https://eu");
    rows[0].ts_verified = rows[0].spot_verified = 1;
    rows[0].lag_versions = rows[0].lag_seconds = 0;
    rh_fleet_row_init(&rows[1], "<script>alert(1)</script>", "na&\"'", "https://na");
    rh_fleet_row_problem(&rows[1], RH_FLEET_LYING, "targets/a.txt: sha256 <differs>");
    rows[1].spot_verified = 0;
    rh_fleet_row_init(&rows[2], "dead-1", "au", "https://au");
    rh_fleet_row_problem(&rows[2], RH_FLEET_DOWN, "cannot connect");
    v.rows = rows;
    v.nrows = 3;
    return &v;
}

static void test_render_html(void **state)
{
    (void)state;
    rh_fleet_row rows[3];
    rh_fleet_view *v = sample_view(rows);
    rh_buf b;
    rh_buf_init(&b, RH_FLEET_PAGE_MAX);
    assert_int_equal(rh_fleet_render_html(v, 15, &b), RH_OK);
    const char *s = (const char *)b.data;
    /* escaped, never raw */
    assert_null(strstr(s, "<script>"));
    assert_non_null(strstr(s, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(s, "na&amp;&quot;&#39;"));
    assert_non_null(strstr(s, "sha256 &lt;differs&gt;"));
    /* unhealthy first: down, lying, then ok */
    const char *down = strstr(s, "data-health=\"down\"");
    const char *lying = strstr(s, "data-health=\"lying\"");
    const char *ok = strstr(s, "data-health=\"ok\"");
    assert_non_null(down);
    assert_non_null(lying);
    assert_non_null(ok);
    assert_true(down < lying && lying < ok);
    assert_non_null(strstr(s, "<title>Rhine fleet: 2 of 3 mirrors unhealthy</title>"));
    assert_non_null(strstr(s, "content=\"15\""));
    assert_non_null(strstr(s, "target: DOES NOT VERIFY"));
    /* self-contained: no scripts, no external assets */
    assert_null(strstr(s, "<script"));
    assert_null(strstr(s, "src="));
    assert_null(strstr(s, "href=\"http"));
    assert_null(strstr(s, "url("));
    rh_buf_cleanup(&b);

    /* An origin that cannot be read is said so. */
    v->origin.ok = false;
    snprintf(v->origin.error, sizeof(v->origin.error), "x: HTTP 503 <x>");
    rh_buf_init(&b, RH_FLEET_PAGE_MAX);
    assert_int_equal(rh_fleet_render_html(v, 15, &b), RH_OK);
    assert_non_null(strstr((const char *)b.data, "unreachable: x: HTTP 503 &lt;x&gt;"));
    rh_buf_cleanup(&b);

    /* The page ceiling holds. */
    rh_buf_init(&b, 100);
    assert_int_equal(rh_fleet_render_html(v, 15, &b), RH_ETOOBIG);
    rh_buf_cleanup(&b);
}

static void test_render_json(void **state)
{
    (void)state;
    rh_fleet_row rows[3];
    rh_fleet_view *v = sample_view(rows);
    rh_buf b;
    rh_buf_init(&b, RH_FLEET_PAGE_MAX);
    assert_int_equal(rh_fleet_render_json(v, &b), RH_OK);
    json_error_t je;
    json_t *o = json_loadb((const char *)b.data, b.len, 0, &je);
    assert_non_null(o);
    json_t *ms = json_object_get(o, "mirrors");
    assert_int_equal(json_array_size(ms), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ms, 0), "health")),
                        "down");
    json_t *lying = json_array_get(ms, 1);
    assert_string_equal(json_string_value(json_object_get(lying, "name")),
                        "<script>alert(1)</script>");
    assert_true(json_is_false(json_object_get(json_object_get(lying, "verify"), "target")));
    assert_true(json_is_null(json_object_get(json_object_get(lying, "verify"), "timestamp")));
    json_t *good = json_array_get(ms, 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(good, "lag"), "seconds")),
                     0);
    assert_true(json_is_null(json_object_get(json_object_get(good, "versions"), "root")));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(o, "origin"), "versions"), "timestamp")),
                     7);
    json_decref(o);
    rh_buf_cleanup(&b);
}

static void test_render_metrics(void **state)
{
    (void)state;
    rh_fleet_row rows[3];
    rh_fleet_view *v = sample_view(rows);
    rows[0].cert_expiry = T0 + 86400;
    rh_buf b;
    rh_buf_init(&b, RH_FLEET_PAGE_MAX);
    assert_int_equal(rh_fleet_render_metrics(v, &b), RH_OK);
    const char *s = (const char *)b.data;
    assert_non_null(strstr(s, "rhine_fleet_origin_up 1\n"));
    assert_non_null(strstr(s, "rhine_fleet_mirror_up{mirror=\"good-1\",region=\"eu\"} 1\n"));
    assert_non_null(strstr(s, "rhine_fleet_mirror_up{mirror=\"dead-1\",region=\"au\"} 0\n"));
    assert_non_null(strstr(s, "rhine_fleet_mirror_lying{mirror=\"<script>alert(1)</script>\","
                              "region=\"na&\\\"'\"} 1\n"));
    assert_non_null(
        strstr(s, "rhine_fleet_mirror_lag_seconds{mirror=\"good-1\",region=\"eu\"} 0\n"));
    assert_non_null(strstr(s, "rhine_fleet_mirror_cert_expiry_timestamp_seconds{mirror=\"good-1\","
                              "region=\"eu\"} 1700086400\n"));
    /* unknown values are left out, not reported as 0 or -1 */
    assert_null(strstr(s, "rhine_fleet_mirror_lag_seconds{mirror=\"dead-1\""));
    assert_null(strstr(s, "} -1"));
    rh_buf_cleanup(&b);
}

/* The docker/config/ YAML files load with the real loader and are wired as compose.yaml expects. */
static void test_compose_configs(void **state)
{
    (void)state;
    static const char *const regions[] = {"na", "eu", "au", "jp", "kr", "sg"};
    rh_error e;
    rh_error_clear(&e);
    rh_origin_config o;
    if (rh_config_load_origin("docker/config/origin.yaml", &o, &e) != RH_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(o.repo, "/var/lib/rhine/repo");
    assert_string_equal(o.keys, "/var/lib/rhine/keys/online");
    assert_int_equal(o.nmirrors, 6);
    for (size_t i = 0; i < 6; i++) {
        char url[64], name[16], path[64];
        snprintf(url, sizeof(url), "https://mirror-%s:8443", regions[i]);
        snprintf(name, sizeof(name), "%s-1", regions[i]);
        assert_string_equal(o.mirrors[i].region, regions[i]);
        assert_string_equal(o.mirrors[i].url, url);
        assert_string_equal(o.mirrors[i].name, name);

        rh_mirror_config m;
        snprintf(path, sizeof(path), "docker/config/mirror-%s.yaml", regions[i]);
        if (rh_config_load_mirror(path, &m, &e) != RH_OK)
            fail_msg("%s", e.msg);
        assert_string_equal(m.name, name);
        assert_string_equal(m.region, regions[i]);
        assert_int_equal(m.nupstreams, 1);
        assert_string_equal(m.upstreams[0], "https://origin:8440");
        assert_string_equal(m.root, "/etc/rhine/trust/root.json");
        assert_string_equal(m.data, "/var/lib/rhine/mirror");
        assert_string_equal(m.listen, "0.0.0.0:8443");
        assert_string_equal(m.listen_h2c, "0.0.0.0:8480"); /* the Dockerfile HEALTHCHECK port */
        assert_string_equal(m.ca, "/etc/rhine/pki/ca.pem");
        rh_mirror_config_cleanup(&m);
    }
    rh_origin_config_cleanup(&o);

    rh_client_config c;
    if (rh_config_load_client("docker/config/client.yaml", &c, &e) != RH_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(c.nmirrors, 6);
    assert_string_equal(c.mirrors[0].url, "https://mirror-eu:8443");
    assert_string_equal(c.root, "/etc/rhine/trust/root.json");
    for (size_t i = 0; i < c.nmirrors; i++)
        assert_non_null(strstr(c.mirrors[i].url, c.mirrors[i].region));
    rh_client_config_cleanup(&c);
}

/* The certificate probe refuses what it cannot probe, naming the URL. */
static void test_cert_probe_args(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        rh_err want;
        const char *msg;
    } cases[] = {
        {"http://127.0.0.1:1", RH_EINVAL, "http://127.0.0.1:1: not an https:// URL"},
        {"https://[::1", RH_EINVAL, "https://[::1: bad IPv6 address"},
        {"https://:443", RH_EINVAL, "https://:443: bad host"},
        {"https://host:/x", RH_EINVAL, "https://host:/x: bad port"},
        {"https://127.0.0.1:1", RH_ENET, "https://127.0.0.1:1: cannot connect"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rh_error e;
        rh_error_clear(&e);
        int64_t na = 42;
        assert_int_equal(rh_fleet_cert_expiry(cases[i].url, 2000, &na, &e), cases[i].want);
        assert_string_equal(e.msg, cases[i].msg);
        assert_int_equal(na, 42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_judge_ts_table),
        cmocka_unit_test(test_judge_cert),
        cmocka_unit_test(test_problems_bounded),
        cmocka_unit_test(test_parse_status),
        cmocka_unit_test(test_render_html),
        cmocka_unit_test(test_render_json),
        cmocka_unit_test(test_render_metrics),
        cmocka_unit_test(test_compose_configs),
        cmocka_unit_test(test_cert_probe_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
