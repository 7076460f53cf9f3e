/* test_config.c -- the YAML config loader: example files, every default, and a table of broken
 * configs with their exact FILE:LINE:COL messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "manifest/config.h"
#include "manifest/limits.h"

#define DATA "tests/data/config/"

static void test_origin_example(void **state)
{
    (void)state;
    rh_origin_config c;
    rh_error e;
    rh_error_clear(&e);
    if (rh_config_load_origin(DATA "origin.yaml", &c, &e) != RH_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(c.repo, DATA "repo");
    assert_string_equal(c.keys, DATA "keys/online");
    assert_string_equal(c.listen, "127.0.0.1:8443");
    assert_string_equal(c.listen_h2c, "127.0.0.1:8080");
    assert_string_equal(c.tls_cert, DATA "tls/origin.crt");
    assert_string_equal(c.tls_key, DATA "tls/origin.key");
    assert_string_equal(c.port_file, DATA "run/origin.port");
    assert_int_equal(c.timestamp_expiry, 86400);
    assert_int_equal(c.refresh_interval, 3600);
    assert_int_equal(c.nmirrors, 3);
    assert_string_equal(c.mirrors[0].name, "eu-1");
    assert_string_equal(c.mirrors[0].region, "eu");
    assert_string_equal(c.mirrors[0].url, "https://mirror-eu.example.net:8443"); /* '/' cut */
    assert_string_equal(c.mirrors[1].name, "na-1");
    assert_string_equal(c.mirrors[1].url, "https://mirror-na.example.net:8443");
    assert_string_equal(c.mirrors[2].region, "ap-sg");
    assert_string_equal(c.mirrors[2].url, "http://127.0.0.1:9001");
    assert_true(c.has_log);
    assert_string_equal(c.log.key, DATA "keys/log.key");
    assert_string_equal(c.log.origin, "rhine.example.net/log");
    rh_origin_config_cleanup(&c);
    assert_null(c.repo);
    assert_null(c.mirrors);
    rh_origin_config_cleanup(&c); /* twice is fine */
    rh_origin_config_cleanup(NULL);
}

static void test_mirror_example(void **state)
{
    (void)state;
    rh_mirror_config c;
    rh_error e;
    rh_error_clear(&e);
    if (rh_config_load_mirror(DATA "mirror.yaml", &c, &e) != RH_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(c.name, "eu-1");
    assert_string_equal(c.region, "eu");
    assert_int_equal(c.nupstreams, 2);
    assert_string_equal(c.upstreams[0], "https://origin.example.net:8443");
    assert_string_equal(c.upstreams[1], "https://mirror-na.example.net:8443");
    assert_string_equal(c.root, DATA "trust/1.root.json");
    assert_string_equal(c.data, "/var/lib/rhine/eu-1"); /* absolute: kept */
    assert_string_equal(c.listen, "[::1]:8443");
    assert_string_equal(c.listen_h2c, "127.0.0.1:0");
    assert_string_equal(c.tls_cert, DATA "tls/mirror.crt");
    assert_string_equal(c.tls_key, DATA "tls/mirror.key");
    assert_string_equal(c.ca, DATA "tls/ca.pem");
    assert_string_equal(c.port_file, DATA "run/mirror.port");
    assert_int_equal(c.sync.concurrency, 32);
    assert_int_equal(c.sync.poll_interval, 30);
    assert_int_equal(c.sync.timeout, 600);
    assert_int_equal(c.sync.low_speed_limit, 64 * 1024);
    assert_int_equal(c.sync.low_speed_time, 20);
    assert_int_equal(c.sync.retries, 5);
    assert_int_equal(c.sync.grace_period, 48 * 3600);
    assert_int_equal(c.sync.max_target_size, 2ull << 30);
    assert_true(c.has_witness);
    assert_string_equal(c.witness.key, DATA "keys/witness.key");
    assert_string_equal(c.witness.name, "witness.example/eu-1");
    assert_string_equal(c.log_key, DATA "log.pub"); /* a path: anchored, read when used */
    rh_note_key k;
    assert_int_equal(rh_config_vkey(c.log_key, &k, &e), RH_OK);
    assert_string_equal(k.name, "rhine.example/log");
    assert_int_equal(k.id, 0x2ae54946);
    assert_int_equal(rh_config_vkey(DATA "client.yaml", &k, &e), RH_EPARSE);
    rh_error_clear(&e);
    assert_int_equal(rh_config_vkey(DATA "no-such.pub", &k, &e), RH_EIO);
    assert_non_null(strstr(e.msg, "no-such.pub: cannot read the verifier key"));
    rh_mirror_config_cleanup(&c);
    rh_mirror_config_cleanup(NULL);
}

static void test_client_example(void **state)
{
    (void)state;
    rh_client_config c;
    rh_error e;
    rh_error_clear(&e);
    if (rh_config_load_client(DATA "client.yaml", &c, &e) != RH_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(c.root, DATA "trust/1.root.json");
    assert_string_equal(c.state, DATA "state");
    assert_string_equal(c.ca, DATA "tls/ca.pem");
    assert_int_equal(c.nmirrors, 3);
    assert_string_equal(c.mirrors[0].url, "https://mirror-eu.example.net:8443");
    assert_string_equal(c.mirrors[0].region, "eu");
    assert_int_equal(c.mirrors[0].priority, 10);
    assert_string_equal(c.mirrors[1].region, "na");
    assert_int_equal(c.mirrors[1].priority, 100);
    assert_null(c.mirrors[2].region);
    assert_int_equal(c.mirrors[2].priority, 100);
    assert_int_equal(c.timeout, 120);
    assert_int_equal(c.low_speed_limit, 4096);
    assert_int_equal(c.low_speed_time, 15);
    assert_true(c.has_witnesses);
    assert_int_equal(c.witnesses.quorum, 2);
    assert_int_equal(c.witnesses.nkeys, 3);
    assert_string_equal(c.witnesses.keys[0].name, "mirror-eu");
    assert_string_equal(c.witnesses.keys[2].key,
                        "mirror-jp+818d6de1+BL9vVCLO/0Qn6cO5nJUN4su534tG1Gx0UOPtP8hQtVH6");
    assert_string_equal(c.witnesses.log_key,
                        "rhine.example/log+2ae54946+AZsfhHkc/HZjBFhU04netcqVRJ2HXydqg4QLBgqznPxx");
    rh_client_config_cleanup(&c);
    rh_client_config_cleanup(NULL);
}

static void test_defaults(void **state)
{
    (void)state;
    rh_error e;
    rh_error_clear(&e);
    static const char o_yaml[] = "repo: /srv/repo\n";
    rh_origin_config o;
    assert_int_equal(rh_config_parse_origin("origin.yaml", o_yaml, strlen(o_yaml), &o, &e),
                     RH_OK);
    assert_string_equal(o.repo, "/srv/repo");
    assert_null(o.keys);
    assert_null(o.listen);
    assert_null(o.listen_h2c);
    assert_null(o.tls_cert);
    assert_null(o.tls_key);
    assert_null(o.port_file);
    assert_int_equal(o.timestamp_expiry, 86400);
    assert_int_equal(o.refresh_interval, 3600);
    assert_int_equal(o.nmirrors, 0);
    assert_null(o.mirrors);
    assert_false(o.has_log);
    assert_null(o.log.key);
    assert_null(o.log.origin);
    rh_origin_config_cleanup(&o);

    static const char m_yaml[] = "name: m\nregion: r\nupstreams: [http://o]\nroot: root.json\n"
                                 "data: d\nlisten_h2c: 'localhost:0'\n";
    rh_mirror_config m;
    assert_int_equal(rh_config_parse_mirror("mirror.yaml", m_yaml, strlen(m_yaml), &m, &e),
                     RH_OK);
    assert_string_equal(m.root, "root.json"); /* name without '/': relative path kept */
    assert_null(m.listen);
    assert_null(m.tls_cert);
    assert_null(m.tls_key);
    assert_null(m.ca);
    assert_null(m.port_file);
    assert_int_equal(m.sync.concurrency, 100);
    assert_int_equal(m.sync.poll_interval, 60);
    assert_int_equal(m.sync.timeout, 300);
    assert_int_equal(m.sync.low_speed_limit, 1024);
    assert_int_equal(m.sync.low_speed_time, 30);
    assert_int_equal(m.sync.retries, 3);
    assert_int_equal(m.sync.grace_period, 86400);
    assert_int_equal(m.sync.max_target_size, 4ull << 30);
    assert_false(m.has_witness);
    assert_null(m.witness.key);
    rh_mirror_config_cleanup(&m);

    /* A partial sync section: the rest keeps its defaults. */
    static const char m2_yaml[] = "name: m\nregion: r\nupstreams: [http://o]\nroot: x\n"
                                  "data: d\nlisten_h2c: 'localhost:0'\nsync: {retries: 0}\n";
    assert_int_equal(rh_config_parse_mirror("/etc/rhine/m.yaml", m2_yaml, strlen(m2_yaml), &m,
                                            &e),
                     RH_OK);
    assert_string_equal(m.root, "/etc/rhine/x");
    assert_int_equal(m.sync.retries, 0);
    assert_int_equal(m.sync.concurrency, 100);
    assert_int_equal(m.sync.max_target_size, 4ull << 30);
    rh_mirror_config_cleanup(&m);

    static const char c_yaml[] = "root: r.json\nstate: s\nmirrors:\n  - url: https://m/\n";
    rh_client_config c;
    assert_int_equal(rh_config_parse_client("/c.yaml", c_yaml, strlen(c_yaml), &c, &e), RH_OK);
    assert_string_equal(c.root, "/r.json");
    assert_null(c.ca);
    assert_int_equal(c.nmirrors, 1);
    assert_string_equal(c.mirrors[0].url, "https://m");
    assert_null(c.mirrors[0].region);
    assert_int_equal(c.mirrors[0].priority, 100);
    assert_int_equal(c.timeout, 300);
    assert_int_equal(c.low_speed_limit, 1024);
    assert_int_equal(c.low_speed_time, 30);
    assert_false(c.has_witnesses);
    assert_int_equal(c.witnesses.nkeys, 0);
    assert_null(c.witnesses.keys);
    rh_client_config_cleanup(&c);
    assert_int_equal(e.code, RH_OK);
}

enum kind { O, M, C };

static rh_err parse_kind(enum kind k, const char *yaml, size_t len, rh_error *e)
{
    rh_err rc;
    if (k == O) {
        rh_origin_config c;
        memset(&c, 0xa5, sizeof c);
        rc = rh_config_parse_origin("eu.yaml", yaml, len, &c, e);
        if (rc == RH_OK)
            rh_origin_config_cleanup(&c);
        else
            for (size_t i = 0; i < sizeof c; i++) /* out written only on success */
                assert_int_equal(((unsigned char *)&c)[i], 0xa5);
    } else if (k == M) {
        rh_mirror_config c;
        memset(&c, 0xa5, sizeof c);
        rc = rh_config_parse_mirror("eu.yaml", yaml, len, &c, e);
        if (rc == RH_OK)
            rh_mirror_config_cleanup(&c);
        else
            for (size_t i = 0; i < sizeof c; i++)
                assert_int_equal(((unsigned char *)&c)[i], 0xa5);
    } else {
        rh_client_config c;
        memset(&c, 0xa5, sizeof c);
        rc = rh_config_parse_client("eu.yaml", yaml, len, &c, e);
        if (rc == RH_OK)
            rh_client_config_cleanup(&c);
        else
            for (size_t i = 0; i < sizeof c; i++)
                assert_int_equal(((unsigned char *)&c)[i], 0xa5);
    }
    return rc;
}

/* A valid mirror head the mirror cases extend. */
#define MH "name: n\nregion: r\nupstreams: [http://a]\nroot: x\ndata: d\nlisten_h2c: 'a:1'\n"
/* A valid client head. */
#define CH "root: r\nstate: s\nmirrors: [{url: 'http://a'}]\n"
#define LK "rhine.example/log+2ae54946+AZsfhHkc/HZjBFhU04netcqVRJ2HXydqg4QLBgqznPxx"
#define WK "mirror-eu+48b6a779+BM5f2qO/1a0BiUfEQbvz0/g8qu0fSQlRl2p4TwbtcTwx"

static const struct {
    enum kind k;
    const char *yaml;
    rh_err code;
    const char *msg;
} bad[] = {
    /* structure */
    {O, "", RH_ECONFIG, "eu.yaml:1:1: empty config, expected a mapping"},
    {O, "# only a comment\n", RH_ECONFIG, "eu.yaml:1:1: empty config, expected a mapping"},
    {O, "- a\n- b\n", RH_ECONFIG, "eu.yaml:1:1: expected a mapping at the top level"},
    {O, "just text\n", RH_ECONFIG, "eu.yaml:1:1: expected a mapping at the top level"},
    {O, "repo: r\n---\nrepo: s\n", RH_ECONFIG, "eu.yaml:2:1: only one YAML document allowed"},
    {O, "repo: &a r\nkeys: *a\n", RH_ECONFIG, "eu.yaml:2:7: aliases are not supported"},
    {O, "repo: r\n[a]: b\n", RH_ECONFIG, "eu.yaml:2:1: keys must be plain strings"},
    {O, "a: [[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]\n", RH_ECONFIG,
     "eu.yaml:1:19: nested deeper than 16 levels"},
    /* YAML syntax, positions from libyaml's problem_mark */
    {O, "repo: [a\n", RH_ECONFIG,
     "eu.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:7)"},
    {O, "repo: r\n  bad: x\n", RH_ECONFIG,
     "eu.yaml:2:6: mapping values are not allowed in this context"},
    {O, "repo: \"unterminated\n", RH_ECONFIG,
     "eu.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at 1:7)"},
    {O, "repo: r\n\tkeys: x\n", RH_ECONFIG,
     "eu.yaml:2:1: found a tab character that violates indentation (while scanning a plain "
     "scalar at 1:7)"},
    {O, "repo: r\n\xff\n", RH_ECONFIG, "eu.yaml:2:1: invalid leading UTF-8 octet"},
    {O, "repo: r\nkeys: k\x01\n", RH_ECONFIG, "eu.yaml:2:8: control characters are not allowed"},
    /* keys */
    {O, "repo: r\nrepo: s\n", RH_ECONFIG, "eu.yaml:2:1: repo: duplicate key (first at 1:1)"},
    {O, "{repo: r, repo: s}", RH_ECONFIG, "eu.yaml:1:11: repo: duplicate key (first at 1:2)"},
    {O, "repo: r\nrepoo: s\n", RH_ECONFIG, "eu.yaml:2:1: repoo: unknown key"},
    {O, "repo: r\nlog: {key: k, origin: o, extra: 1}\n", RH_ECONFIG,
     "eu.yaml:2:26: log.extra: unknown key"},
    {O, "repo: r\n\"a\\x01b\": 1\n", RH_ECONFIG, "eu.yaml:2:1: a\\x01b: unknown key"},
    {O, "keys: k\n", RH_ECONFIG, "eu.yaml:1:1: repo: required key missing"},
    {O, "repo: r\nlog:\n  key: k\n", RH_ECONFIG, "eu.yaml:3:3: log.origin: required key missing"},
    {O, "repo: r\nmirrors:\n  - name: a\n    region: eu\n", RH_ECONFIG,
     "eu.yaml:3:5: mirrors[0].url: required key missing"},
    /* types and ranges */
    {O, "repo:\n", RH_ECONFIG, "eu.yaml:1:6: repo: expected a non-empty path, got null"},
    {O, "repo: ~\n", RH_ECONFIG, "eu.yaml:1:7: repo: expected a non-empty path, got null"},
    {O, "repo: \"\"\n", RH_ECONFIG, "eu.yaml:1:7: repo: expected a non-empty path, got \"\""},
    {O, "repo: [a]\n", RH_ECONFIG, "eu.yaml:1:7: repo: expected a non-empty path, got a list"},
    {O, "repo: {a: b}\n", RH_ECONFIG,
     "eu.yaml:1:7: repo: expected a non-empty path, got a mapping"},
    {O, "repo: \"a\\0b\"\n", RH_ECONFIG, "eu.yaml:1:7: repo: value contains a NUL byte"},
    {O, "repo: r\ntimestamp_expiry: ten\n", RH_ECONFIG,
     "eu.yaml:2:19: timestamp_expiry: expected 60..31536000 seconds, got \"ten\""},
    {O, "repo: r\ntimestamp_expiry: 59s\n", RH_ECONFIG,
     "eu.yaml:2:19: timestamp_expiry: expected 60..31536000 seconds, got \"59s\""},
    {O, "repo: r\ntimestamp_expiry: 366d\n", RH_ECONFIG,
     "eu.yaml:2:19: timestamp_expiry: expected 60..31536000 seconds, got \"366d\""},
    {O, "repo: r\nrefresh_interval: 1w\n", RH_ECONFIG,
     "eu.yaml:2:19: refresh_interval: expected 1..2592000 seconds, got \"1w\""},
    {O, "repo: r\nrefresh_interval: 2d\n", RH_ECONFIG,
     "eu.yaml:2:19: refresh_interval: refresh_interval (172800 s) must be shorter than "
     "timestamp_expiry (86400 s)"},
    {O, "repo: r\ntimestamp_expiry: 30m\n", RH_ECONFIG,
     "eu.yaml:2:19: timestamp_expiry: refresh_interval (3600 s) must be shorter than "
     "timestamp_expiry (1800 s)"},
    {O, "repo: r\nlisten: localhost\n", RH_ECONFIG,
     "eu.yaml:2:9: listen: expected host:port with port 0..65535, got \"localhost\""},
    {O, "repo: r\nlisten_h2c: '::1:80'\n", RH_ECONFIG,
     "eu.yaml:2:13: listen_h2c: expected host:port with port 0..65535, got \"::1:80\""},
    {O, "repo: r\nlisten_h2c: ':80'\n", RH_ECONFIG,
     "eu.yaml:2:13: listen_h2c: expected host:port with port 0..65535, got \":80\""},
    {O, "repo: r\nlisten_h2c: 'a:'\n", RH_ECONFIG,
     "eu.yaml:2:13: listen_h2c: expected host:port with port 0..65535, got \"a:\""},
    {O, "repo: r\nlisten: \"127.0.0.1:8443\"\n", RH_ECONFIG,
     "eu.yaml:2:9: listen: TLS listener needs tls_cert and tls_key"},
    {O, "repo: r\ntls_cert: c\n", RH_ECONFIG, "eu.yaml:2:11: tls_cert: tls_key must be given too"},
    {O, "repo: r\ntls_key: c\n", RH_ECONFIG, "eu.yaml:2:10: tls_key: tls_cert must be given too"},
    {O, "repo: r\nmirrors: x\n", RH_ECONFIG,
     "eu.yaml:2:10: mirrors: expected a list of mappings, got \"x\""},
    {O, "repo: r\nmirrors:\n  - x\n", RH_ECONFIG,
     "eu.yaml:3:5: mirrors[0]: expected a mapping, got \"x\""},
    {O, "repo: r\nmirrors:\n  - name: a\n    region: eu\n    url: ftp://x\n", RH_ECONFIG,
     "eu.yaml:5:10: mirrors[0].url: expected an http:// or https:// URL, got \"ftp://x\""},
    {O, "repo: r\nmirrors:\n  - {name: a, region: b, url: \"https://\"}\n", RH_ECONFIG,
     "eu.yaml:3:31: mirrors[0].url: expected an http:// or https:// URL, got \"https://\""},
    {O, "repo: r\nmirrors:\n  - {name: a, region: b, url: \"http://a b\"}\n", RH_ECONFIG,
     "eu.yaml:3:31: mirrors[0].url: expected an http:// or https:// URL, got \"http://a b\""},
    {O,
     "repo: r\nmirrors:\n  - name: a\n    region: eu\n    url: http://x\n  - name: a\n"
     "    region: na\n    url: http://y\n",
     RH_ECONFIG, "eu.yaml:6:11: mirrors[1].name: duplicate mirror name (also mirrors[0])"},
    /* mirror */
    {M, "name: n\n", RH_ECONFIG, "eu.yaml:1:1: region: required key missing"},
    {M, "name: n\nregion: r\nupstreams: []\nroot: x\ndata: d\n", RH_ECONFIG,
     "eu.yaml:3:12: upstreams: expected 1..1024 entries, got 0"},
    {M, "name: n\nregion: r\nupstreams: http://a\nroot: x\ndata: d\n", RH_ECONFIG,
     "eu.yaml:3:12: upstreams: expected a list, got \"http://a\""},
    {M, "name: n\nregion: r\nupstreams: [http://a, 5]\nroot: x\ndata: d\n", RH_ECONFIG,
     "eu.yaml:3:23: upstreams[1]: expected an http:// or https:// URL, got \"5\""},
    {M, "name: n\nregion: r\nupstreams: [http://a]\nroot: x\ndata: d\n", RH_ECONFIG,
     "eu.yaml:1:1: a mirror needs listen or listen_h2c"},
    {M, MH "listen_h2c: b:2\n", RH_ECONFIG,
     "eu.yaml:7:1: listen_h2c: duplicate key (first at 6:1)"},
    {M, MH "sync:\n  timeout: ten\n", RH_ECONFIG,
     "eu.yaml:8:12: sync.timeout: expected 1..86400 seconds, got \"ten\""},
    {M, MH "sync:\n  timeout: 0\n", RH_ECONFIG,
     "eu.yaml:8:12: sync.timeout: expected 1..86400 seconds, got \"0\""},
    {M, MH "sync:\n  timeout: -5\n", RH_ECONFIG,
     "eu.yaml:8:12: sync.timeout: expected 1..86400 seconds, got \"-5\""},
    {M, MH "sync:\n  timeout: 5 m\n", RH_ECONFIG,
     "eu.yaml:8:12: sync.timeout: expected 1..86400 seconds, got \"5 m\""},
    {M, MH "sync:\n  timout: 5m\n", RH_ECONFIG, "eu.yaml:8:3: sync.timout: unknown key"},
    {M, MH "sync:\n  concurrency: 300\n", RH_ECONFIG,
     "eu.yaml:8:16: sync.concurrency: expected an integer in 1..256, got \"300\""},
    {M, MH "sync:\n  concurrency: 0\n", RH_ECONFIG,
     "eu.yaml:8:16: sync.concurrency: expected an integer in 1..256, got \"0\""},
    {M, MH "sync:\n  concurrency: 1.5\n", RH_ECONFIG,
     "eu.yaml:8:16: sync.concurrency: expected an integer in 1..256, got \"1.5\""},
    {M, MH "sync:\n  retries: 11\n", RH_ECONFIG,
     "eu.yaml:8:12: sync.retries: expected an integer in 0..10, got \"11\""},
    {M, MH "sync:\n  max_target_size: 2TiB\n", RH_ECONFIG,
     "eu.yaml:8:20: sync.max_target_size: expected a size in 1..1TiB, got \"2TiB\""},
    {M, MH "sync:\n  max_target_size: 4gb\n", RH_ECONFIG,
     "eu.yaml:8:20: sync.max_target_size: expected a size in 1..1TiB, got \"4gb\""},
    {M, MH "sync:\n  low_speed_limit: 0\n", RH_ECONFIG,
     "eu.yaml:8:20: sync.low_speed_limit: expected a size in 1..1GiB, got \"0\""},
    {M, MH "sync:\n  grace_period: 31d\n", RH_ECONFIG,
     "eu.yaml:8:17: sync.grace_period: expected 0..2592000 seconds, got \"31d\""},
    {M, MH "sync: 5\n", RH_ECONFIG, "eu.yaml:7:7: sync: expected a mapping, got \"5\""},
    {M, MH "sync:\n", RH_ECONFIG, "eu.yaml:7:6: sync: expected a mapping, got null"},
    {M, MH "witness: {}\n", RH_ECONFIG, "eu.yaml:7:10: witness.key: required key missing"},
    {M, MH "listen_h2cx: 'a:70000'\n", RH_ECONFIG, "eu.yaml:7:1: listen_h2cx: unknown key"},
    /* client */
    {C, "root: r\nstate: s\n", RH_ECONFIG, "eu.yaml:1:1: mirrors: required key missing"},
    {C, "root: r\nstate: s\nmirrors: []\n", RH_ECONFIG,
     "eu.yaml:3:10: mirrors: expected 1..1024 entries, got 0"},
    {C, "root: r\nstate: s\nmirrors: [{url: \"http://a\", priority: -1}]\n", RH_ECONFIG,
     "eu.yaml:3:39: mirrors[0].priority: expected an integer in 0..1000000, got \"-1\""},
    {C, "root: r\nstate: s\nmirrors: [{url: \"http://a\", priority: 99999999999999999999}]\n",
     RH_ECONFIG,
     "eu.yaml:3:39: mirrors[0].priority: expected an integer in 0..1000000, got "
     "\"99999999999999999999\""},
    {C, "root: r\nstate: s\nmirrors: [{url: \"http://a\", prio: 1}]\n", RH_ECONFIG,
     "eu.yaml:3:29: mirrors[0].prio: unknown key"},
    {C, CH "timeout: true\n", RH_ECONFIG,
     "eu.yaml:4:10: timeout: expected 1..86400 seconds, got \"true\""},
    {C, CH "timeout: 99999999999999999999d\n", RH_ECONFIG,
     "eu.yaml:4:10: timeout: expected 1..86400 seconds, got \"99999999999999999999d\""},
    {C, CH "witnesses: {log_key: " LK ", keys: [{name: a, key: b}]}\n", RH_ECONFIG,
     "eu.yaml:4:12: witnesses.quorum: required key missing"},
    {C, CH "witnesses: {quorum: 1, keys: [{name: mirror-eu, key: " WK "}]}\n", RH_ECONFIG,
     "eu.yaml:4:12: witnesses.log_key: required key missing"},
    {C, CH "witnesses:\n  log_key: " LK "\n  quorum: 3\n  keys:\n    - {name: mirror-eu, key: " WK "}\n",
     RH_ECONFIG, "eu.yaml:6:11: witnesses.quorum: quorum 3 exceeds the number of keys (1)"},
    {C, CH "witnesses:\n  log_key: " LK "\n  quorum: 1\n  keys:\n    - {name: a}\n", RH_ECONFIG,
     "eu.yaml:8:7: witnesses.keys[0].key: required key missing"},
    {C, CH "witnesses:\n  log_key: " LK "\n  quorum: 1\n  keys: []\n", RH_ECONFIG,
     "eu.yaml:7:9: witnesses.keys: expected 1..1024 entries, got 0"},
    {C, CH "witnesses:\n  log_key: " LK "\n  quorum: 1\n  keys:\n    - {name: mirror-eu, key: "
           "mirror-eu+48b6a779+BM5f2qO/1a0BiUfEQbvz0/g8qu0fSQlRl2p4Twbtc}\n", RH_ECONFIG,
     "eu.yaml:8:30: witnesses.keys[0].key: not a verifier key \"name+id+base64\": vkey mirror-eu: key is not base64 of a type byte and 32 bytes"},
    {C, CH "witnesses:\n  log_key: " LK "\n  quorum: 1\n  keys:\n    - {name: mirror-na, key: " WK
           "}\n", RH_ECONFIG,
     "eu.yaml:8:14: witnesses.keys[0].name: \"mirror-na\" is not the key's name \"mirror-eu\""},
    {M, MH "witness: {key: w.pem}\n", RH_ECONFIG,
     "eu.yaml:7:10: witness: a witness needs log_key: it cosigns only checkpoints it verified"},
    {M, MH "log_key: rhine.example/log+2ae54947+AZsfhHkc/HZjBFhU04netcqVRJ2HXydqg4QLBgqznPxx\n",
     RH_ECONFIG, "eu.yaml:7:10: log_key: not a verifier key \"name+id+base64\": vkey rhine.example/log: key ID 2ae54947 does not match the key (2ae54946)"},
};

static void test_bad_configs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = parse_kind(bad[i].k, bad[i].yaml, strlen(bad[i].yaml), &e);
        if (rc != bad[i].code || strcmp(e.msg, bad[i].msg) != 0)
            fail_msg("case %zu: got %d '%s'\n  want %d '%s'", i, (int)rc, e.msg,
                     (int)bad[i].code, bad[i].msg);
    }
}

/* The heads used above are themselves valid (so each case fails for its own reason). */
static void test_heads_valid(void **state)
{
    (void)state;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(parse_kind(M, MH, strlen(MH), &e), RH_OK);
    assert_int_equal(parse_kind(C, CH, strlen(CH), &e), RH_OK);
    static const char ok[] = MH "sync: {timeout: 86400, concurrency: 256, retries: 0,"
                                " grace_period: 0, max_target_size: 1TiB, low_speed_limit: 1GiB}\n";
    assert_int_equal(parse_kind(M, ok, strlen(ok), &e), RH_OK);
    assert_int_equal(e.code, RH_OK);
}

static void test_embedded_nul_input(void **state)
{
    (void)state;
    /* A NUL byte in the raw input is not valid YAML: the reader rejects it. */
    static const char y[] = "repo: a\0b\n";
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(parse_kind(O, y, sizeof y - 1, &e), RH_ECONFIG);
    assert_string_equal(e.msg, "eu.yaml:1:8: control characters are not allowed");
}

static void test_size_limits(void **state)
{
    (void)state;
    size_t n = RH_MAX_CONFIG_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '#', n);
    memcpy(big, "repo: r\n", 8);
    big[n - 1] = '\n';
    rh_error e;
    rh_error_clear(&e);
    rh_origin_config c;
    assert_int_equal(rh_config_parse_origin("big.yaml", big, n, &c, &e), RH_ETOOBIG);
    assert_string_equal(e.msg, "big.yaml: larger than 1048576 bytes");
    /* Exactly at the limit: accepted (one long comment line). */
    rh_error_clear(&e);
    big[n - 2] = '\n';
    assert_int_equal(rh_config_parse_origin("big.yaml", big, n - 1, &c, &e), RH_OK);
    rh_origin_config_cleanup(&c);

    char path[] = "/tmp/rh-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, big, n), (ssize_t)n);
    close(fd);
    rh_error_clear(&e);
    assert_int_equal(rh_config_load_origin(path, &c, &e), RH_ETOOBIG);
    char want[128];
    snprintf(want, sizeof want, "%s: larger than 1048576 bytes", path);
    assert_string_equal(e.msg, want);
    unlink(path);
    free(big);

    rh_error_clear(&e);
    assert_int_equal(rh_config_load_origin("/nonexistent/rh.yaml", &c, &e), RH_EIO);
    assert_string_equal(e.msg, "/nonexistent/rh.yaml: cannot open: No such file or directory");
}

static void test_many_nodes(void **state)
{
    (void)state;
    /* 70000 list entries: stopped by the node ceiling (node 65537 is entry 65534, at column
     * 8 + 2 * 65533), not by memory. */
    size_t n = 8 + 70000 * 2 + 2;
    char *y = malloc(n + 1);
    assert_non_null(y);
    memcpy(y, "repo: [", 7);
    size_t o = 7;
    for (int i = 0; i < 70000; i++) {
        y[o++] = 'a';
        y[o++] = ',';
    }
    y[o++] = 'a';
    y[o++] = ']';
    y[o] = '\0';
    rh_error e;
    rh_error_clear(&e);
    rh_origin_config c;
    assert_int_equal(rh_config_parse_origin("n.yaml", y, o, &c, &e), RH_ECONFIG);
    assert_string_equal(e.msg, "n.yaml:1:131074: more than 65536 YAML nodes");
    free(y);
}

static void test_parse_duration_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t v;
    } dur_ok[] = {{"0", 0},       {"90", 90},       {"30s", 30},    {"5m", 300},
                  {"24h", 86400}, {"7d", 604800}, {"1d", 86400},  {"0s", 0},
                  {"9223372036854775807", INT64_MAX}};
    for (size_t i = 0; i < sizeof dur_ok / sizeof dur_ok[0]; i++) {
        int64_t v = -1;
        assert_int_equal(rh_parse_duration(dur_ok[i].s, &v), RH_OK);
        assert_true(v == dur_ok[i].v);
    }
    static const char *const dur_bad[] = {"", "s", "-1", "+1", " 1", "1 ", "1x", "1ms", "1.5h",
                                          "1S", "9223372036854775808", "106751991167301d",
                                          "1h30m", "0x10"};
    for (size_t i = 0; i < sizeof dur_bad / sizeof dur_bad[0]; i++) {
        int64_t v = 7;
        if (rh_parse_duration(dur_bad[i], &v) != RH_EPARSE)
            fail_msg("duration '%s' accepted", dur_bad[i]);
        assert_int_equal(v, 7);
    }
    static const struct {
        const char *s;
        uint64_t v;
    } size_ok[] = {{"0", 0},
                   {"512", 512},
                   {"10B", 10},
                   {"64KiB", 65536},
                   {"64MiB", 64ull << 20},
                   {"1GiB", 1ull << 30},
                   {"4GiB", 4ull << 30},
                   {"2TiB", 2ull << 40},
                   {"5KB", 5000},
                   {"3MB", 3000000},
                   {"1GB", 1000000000},
                   {"1TB", 1000000000000ull},
                   {"18446744073709551615", UINT64_MAX}};
    for (size_t i = 0; i < sizeof size_ok / sizeof size_ok[0]; i++) {
        uint64_t v = 1;
        assert_int_equal(rh_parse_size(size_ok[i].s, &v), RH_OK);
        assert_true(v == size_ok[i].v);
    }
    static const char *const size_bad[] = {"", "KiB", "-1", "1 KiB", "1kib", "1K", "1Mi",
                                           "1.5GiB", "18446744073709551616", "16777216TiB",
                                           "1PiB", "1b"};
    for (size_t i = 0; i < sizeof size_bad / sizeof size_bad[0]; i++) {
        uint64_t v = 7;
        if (rh_parse_size(size_bad[i], &v) != RH_EPARSE)
            fail_msg("size '%s' accepted", size_bad[i]);
        assert_int_equal(v, 7);
    }
    assert_int_equal(rh_parse_duration(NULL, &(int64_t){0}), RH_EPARSE);
    assert_int_equal(rh_parse_size(NULL, &(uint64_t){0}), RH_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_example),
        cmocka_unit_test(test_mirror_example),
        cmocka_unit_test(test_client_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_heads_valid),
        cmocka_unit_test(test_embedded_nul_input),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_many_nodes),
        cmocka_unit_test(test_parse_duration_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
