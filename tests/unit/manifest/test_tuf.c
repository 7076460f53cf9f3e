/* test_tuf.c -- the TUF client workflow engine against in-memory repositories: every rejection
 * rule of spec section 5 with its exact error code, and the trusted state left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/manifest/tuf_fixture.h"

/* ---- helpers --------------------------------------------------------------------------- */

static void check_rc(rh_err rc, const rh_error *e, rh_err want, const char *needle)
{
    if (rc != want)
        print_message("got %s, want %s: %s\n", rh_err_name(rc), rh_err_name(want), e->msg);
    assert_int_equal(rc, want);
    if (want != RH_OK) {
        assert_int_equal(e->code, want);
        if (needle != NULL && strstr(e->msg, needle) == NULL)
            print_message("message \"%s\" lacks \"%s\"\n", e->msg, needle);
        if (needle != NULL)
            assert_non_null(strstr(e->msg, needle));
    }
}

static void expect_refresh(rh_tuf *t, int64_t now, rh_err want, const char *needle)
{
    rh_error e;
    rh_error_clear(&e);
    check_rc(rh_tuf_refresh(t, now, &e), &e, want, needle);
}

static uint64_t ver(const rh_tuf *t, const char *role)
{
    const rh_metadata *m = rh_tuf_trusted(t, role);
    return m ? m->version : 0;
}

static void expect_log(char log[][RH_TUF_MAX_FILENAME], size_t n, const char *const *want)
{
    size_t i = 0;
    for (; want[i] != NULL; i++) {
        if (i >= n || strcmp(log[i], want[i]) != 0)
            print_message("entry %zu: got \"%s\", want \"%s\"\n", i, i < n ? log[i] : "(none)",
                          want[i]);
        assert_true(i < n);
        assert_string_equal(log[i], want[i]);
    }
    if (n != i)
        print_message("unexpected entry \"%s\"\n", log[i]);
    assert_int_equal(n, i);
}

#define LOG(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOLOG ((const char *const[]){NULL})

/* Serve timestamp.json at ts_v with the given "snapshot.json" meta entry (taken). */
static void put_timestamp(tf_repo *r, int ts_v, json_t *snapmeta)
{
    json_t *ts = tf_base("timestamp", ts_v, r->exp_ts);
    json_object_set_new(ts, "meta", json_pack("{s:o}", "snapshot.json", snapmeta));
    tf_sign_put(r, "timestamp.json", ts, r->keys[RH_ROLE_TIMESTAMP]);
}

/* Serve snapshot snap_v with meta (taken) under file name fname, and a timestamp ts_v that
 * lists it as version listed_v (no length, no hashes). */
static void put_snapshot(tf_repo *r, const char *fname, int ts_v, int snap_v, int listed_v,
                         json_t *meta)
{
    json_t *s = tf_base("snapshot", snap_v, r->exp_snap);
    json_object_set_new(s, "meta", meta);
    tf_sign_put(r, fname, s, r->keys[RH_ROLE_SNAPSHOT]);
    put_timestamp(r, ts_v, json_pack("{s:i}", "version", listed_v));
}

/* ---- basics ------------------------------------------------------------------------------ */

static void test_refresh_and_lookup(void **state)
{
    (void)state;
    tf_repo *r = tf_std();
    assert_non_null(r);
    rh_tuf *t = tf_engine(r);
    assert_non_null(t);
    rh_error e;
    rh_error_clear(&e);
    const rh_target *tg = NULL;
    check_rc(rh_tuf_find_target(t, "a.txt", TF_NOW, &tg, &e), &e, RH_EINVAL, "refresh");
    assert_null(tg);

    expect_refresh(t, TF_NOW, RH_OK, NULL);
    expect_log(r->fetched, r->nfetched,
               LOG("2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"));
    expect_log(r->persisted, r->npersisted,
               LOG("timestamp.json", "1.snapshot.json", "1.targets.json"));
    assert_int_equal(ver(t, "root"), 1);
    assert_int_equal(ver(t, "timestamp"), 1);
    assert_int_equal(ver(t, "snapshot"), 1);
    assert_int_equal(ver(t, "targets"), 1);
    assert_null(rh_tuf_trusted(t, "nobody"));

    rh_error_clear(&e);
    check_rc(rh_tuf_find_target(t, "a.txt", TF_NOW, &tg, &e), &e, RH_OK, NULL);
    assert_string_equal(tg->path, "a.txt");
    assert_int_equal(tg->length, 1);
    rh_error_clear(&e);
    const rh_target *none = NULL;
    check_rc(rh_tuf_find_target(t, "b.txt", TF_NOW, &none, &e), &e, RH_ENOTFOUND, "b.txt");
    assert_null(none);

    /* The file list: the root, then timestamp, snapshot, targets, with exact bytes. */
    assert_int_equal(rh_tuf_nfiles(t), 4);
    const char *names[] = {"1.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"};
    const char *roles[] = {"root", "timestamp", "snapshot", "targets"};
    for (size_t i = 0; i < 4; i++) {
        const rh_tuf_file *f = rh_tuf_file_at(t, i);
        assert_non_null(f);
        assert_string_equal(f->filename, names[i]);
        assert_string_equal(f->role, roles[i]);
        assert_int_equal(f->version, 1);
        assert_int_equal(f->fetched, i > 0);
        const tf_file *served = tf_get(r, names[i]);
        assert_int_equal(f->len, served->len);
        if (tf_lean && i == 3)
            assert_null(f->data); /* persisted, then dropped by a lean engine */
        else
            assert_memory_equal(f->data, served->data, f->len);
        assert_ptr_equal(rh_tuf_file_of(t, roles[i]), f);
    }
    assert_null(rh_tuf_file_at(t, 4));
    uint64_t first = 0, last = 0;
    rh_tuf_root_versions(t, &first, &last);
    assert_int_equal(first, 1);
    assert_int_equal(last, 1);
    rh_tuf_free(t);
    tf_free(r);
}

static void test_not_consistent_names(void **state)
{
    (void)state;
    tf_repo *r = tf_new();
    assert_non_null(r);
    r->consistent = false;
    tf_publish_root(r, 1, TF_EXP, r->keys[RH_ROLE_ROOT]);
    tf_publish(r, 1, 1, 1);
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    expect_log(r->fetched, r->nfetched,
               LOG("2.root.json", "timestamp.json", "snapshot.json", "targets.json"));
    expect_log(r->persisted, r->npersisted, LOG("timestamp.json", "snapshot.json", "targets.json"));
    rh_tuf_free(t);
    tf_free(r);
}

static void test_api_arguments(void **state)
{
    (void)state;
    rh_tuf *t = NULL;
    rh_tuf_io io = {NULL, NULL, NULL, false};
    assert_int_equal(rh_tuf_new(&io, &t), RH_EINVAL);
    assert_int_equal(rh_tuf_new(NULL, &t), RH_EINVAL);
    assert_null(t);
    rh_tuf_free(NULL);
    assert_int_equal(rh_tuf_nfiles(NULL), 0);

    tf_repo *r = tf_std();
    io = (rh_tuf_io){r, tf_fetch_cb, tf_persist_cb, tf_lean};
    assert_int_equal(rh_tuf_new(&io, &t), RH_OK);
    rh_error e;
    rh_error_clear(&e);
    check_rc(rh_tuf_refresh(t, TF_NOW, &e), &e, RH_EINVAL, "root");
    const tf_file *ts = tf_get(r, "timestamp.json");
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "timestamp", ts->data, ts->len, "ts", &e), &e, RH_EINVAL,
             "after the root");
    /* A root that is not signed by its own root keys is refused (TUF 5.2). */
    json_t *bad = tf_root_obj(r, 1, TF_EXP);
    size_t blen = 0;
    uint8_t *b = tf_sign(r, bad, K(3), &blen);
    rh_error_clear(&e);
    check_rc(rh_tuf_load_root(t, b, blen, "pinned.json", &e), &e, RH_ESIG, "pinned.json");
    free(b);
    rh_error_clear(&e);
    check_rc(rh_tuf_load_root(t, (const uint8_t *)"{]", 2, "junk.json", &e), &e, RH_EPARSE,
             "junk.json");
    /* A timestamp is not a root. */
    rh_error_clear(&e);
    check_rc(rh_tuf_load_root(t, ts->data, ts->len, "ts-as-root.json", &e), &e, RH_ETYPE, NULL);
    const tf_file *root = tf_get(r, "1.root.json");
    rh_error_clear(&e);
    check_rc(rh_tuf_load_root(t, root->data, root->len, "1.root.json", &e), &e, RH_OK, NULL);
    rh_error_clear(&e);
    check_rc(rh_tuf_load_root(t, root->data, root->len, "1.root.json", &e), &e, RH_EINVAL,
             "already");
    rh_tuf_free(t);
    tf_free(r);
}

static void test_filenames(void **state)
{
    (void)state;
    static const struct {
        const char *role;
        uint64_t version;
        bool consistent;
        rh_err rc;
        const char *want;
    } cases[] = {
        {"root", 7, false, RH_OK, "7.root.json"},
        {"root", 7, true, RH_OK, "7.root.json"},
        {"timestamp", 9, true, RH_OK, "timestamp.json"},
        {"snapshot", 3, true, RH_OK, "3.snapshot.json"},
        {"snapshot", 3, false, RH_OK, "snapshot.json"},
        {"targets", 18446744073709551615u, true, RH_OK, "18446744073709551615.targets.json"},
        {"a/b c", 2, true, RH_OK, "2.a%2Fb%20c.json"},
        {"../x", 2, false, RH_OK, "..%2Fx.json"},
        {"we-_.~Z9", 1, true, RH_OK, "1.we-_.~Z9.json"},
        {"\xc3\xa9", 1, true, RH_OK, "1.%C3%A9.json"},
        {"", 1, true, RH_EPATH, NULL},
        {"..", 1, true, RH_EPATH, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[RH_TUF_MAX_FILENAME];
        assert_int_equal(rh_tuf_filename(cases[i].role, cases[i].version, cases[i].consistent,
                                         out, sizeof out),
                         cases[i].rc);
        if (cases[i].want != NULL)
            assert_string_equal(out, cases[i].want);
    }
    char longname[RH_MAX_ROLE_NAME + 2];
    memset(longname, 'r', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char out[RH_TUF_MAX_FILENAME], small[8];
    assert_int_equal(rh_tuf_filename(longname, 1, true, out, sizeof out), RH_EPATH);
    longname[RH_MAX_ROLE_NAME] = '\0';
    assert_int_equal(rh_tuf_filename(longname, 1, true, out, sizeof out), RH_OK);
    assert_int_equal(rh_tuf_filename("targets", 12, true, small, sizeof small), RH_ETOOBIG);
}

/* ---- TUF 5.3: root ----------------------------------------------------------------------- */

static void test_root_rotation_accepted(void **state)
{
    (void)state;
    tf_repo *r = tf_std();
    rh_tuf *t = tf_engine(r);
    /* Root 2: two root keys, threshold 2; new targets key. Signed by root 1 and by itself. */
    tf_set_role(r, RH_ROLE_ROOT, K(4, 5), 2);
    tf_set_role(r, RH_ROLE_TARGETS, K(6), 1);
    tf_publish_root(r, 2, TF_PAST, K(0, 4, 5)); /* an expired intermediate root is fine */
    /* Root 3: one root key, new timestamp and snapshot keys; signed by 2 of root 2's keys. */
    tf_set_role(r, RH_ROLE_ROOT, K(7), 1);
    tf_set_role(r, RH_ROLE_TIMESTAMP, K(8, 9), 2);
    tf_set_role(r, RH_ROLE_SNAPSHOT, K(10), 1);
    tf_publish_root(r, 3, TF_EXP, K(4, 5, 7));
    tf_publish(r, 2, 2, 2);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "root"), 3);
    assert_int_equal(ver(t, "timestamp"), 2);
    assert_int_equal(ver(t, "targets"), 2);
    expect_log(r->persisted, r->npersisted,
               LOG("2.root.json", "3.root.json", "timestamp.json", "2.snapshot.json",
                   "2.targets.json"));
    uint64_t first = 0, last = 0;
    rh_tuf_root_versions(t, &first, &last);
    assert_int_equal(first, 1);
    assert_int_equal(last, 3);
    assert_int_equal(rh_tuf_nfiles(t), 6);
    assert_string_equal(rh_tuf_file_at(t, 1)->filename, "2.root.json");
    assert_string_equal(rh_tuf_file_at(t, 2)->filename, "3.root.json");
    assert_true(rh_tuf_file_at(t, 2)->fetched);
    rh_tuf_free(t);
    tf_free(r);
}

enum { ROOT_BAD_OLD_SIG, ROOT_BAD_SELF_SIG, ROOT_WRONG_VERSION, ROOT_LOWER_VERSION, ROOT_EXPIRED,
       ROOT_WRONG_TYPE, ROOT_TOO_BIG };

static void test_root_rejections(void **state)
{
    (void)state;
    static const struct {
        int kind;
        rh_err rc;
        uint64_t root_after; /* trusted root version after the failed refresh */
        const char *needle;
    } cases[] = {
        {ROOT_BAD_OLD_SIG, RH_ESIG, 1, "2.root.json: not signed by a threshold of the trusted"},
        {ROOT_BAD_SELF_SIG, RH_ESIG, 1, "2.root.json: not signed by a threshold of its own"},
        {ROOT_WRONG_VERSION, RH_EVERSION, 1, "2.root.json: contains version 3, expected 2"},
        {ROOT_LOWER_VERSION, RH_EVERSION, 1, "2.root.json: contains version 1, expected 2"},
        /* TUF 5.3.10: the new root is trusted (and persisted), then the freeze check fails. */
        {ROOT_EXPIRED, RH_EEXPIRED, 2, "2.root.json: expired"},
        {ROOT_WRONG_TYPE, RH_ETYPE, 1, NULL},
        {ROOT_TOO_BIG, RH_ETOOBIG, 1, "2.root.json: more than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_repo *r = tf_std();
        rh_tuf *t = tf_engine(r);
        switch (cases[i].kind) {
        case ROOT_BAD_OLD_SIG: /* a new root key only: root 1's key 0 did not sign */
            tf_set_role(r, RH_ROLE_ROOT, K(4), 1);
            tf_publish_root(r, 2, TF_EXP, K(4));
            break;
        case ROOT_BAD_SELF_SIG: /* threshold 2 of its own, only one of them signed */
            tf_set_role(r, RH_ROLE_ROOT, K(4, 5), 2);
            tf_publish_root(r, 2, TF_EXP, K(0, 4));
            break;
        case ROOT_WRONG_VERSION: {
            tf_sign_put(r, "2.root.json", tf_root_obj(r, 3, TF_EXP), K(0));
            break;
        }
        case ROOT_LOWER_VERSION:
            tf_sign_put(r, "2.root.json", tf_root_obj(r, 1, TF_EXP), K(0));
            break;
        case ROOT_EXPIRED:
            tf_publish_root(r, 2, TF_NOW, K(0)); /* expires == start time: expired */
            break;
        case ROOT_WRONG_TYPE: {
            const tf_file *ts = tf_get(r, "timestamp.json");
            uint8_t *copy = malloc(ts->len);
            memcpy(copy, ts->data, ts->len);
            tf_put(r, "2.root.json", copy, ts->len);
            break;
        }
        case ROOT_TOO_BIG: {
            uint8_t *big = malloc(RH_MAX_ROOT_BYTES + 1);
            memset(big, ' ', RH_MAX_ROOT_BYTES + 1);
            tf_put(r, "2.root.json", big, RH_MAX_ROOT_BYTES + 1);
            break;
        }
        }
        expect_refresh(t, TF_NOW, cases[i].rc, cases[i].needle);
        assert_int_equal(ver(t, "root"), cases[i].root_after);
        assert_int_equal(r->npersisted, cases[i].root_after == 2 ? 1 : 0);
        assert_null(rh_tuf_trusted(t, "timestamp"));
        rh_tuf_free(t);
        tf_free(r);
    }
}

/* TUF 5.3.10: the root we start from may be expired; the final one may not. */
static void test_root_expired_start(void **state)
{
    (void)state;
    tf_repo *r = tf_new();
    tf_publish_root(r, 1, TF_PAST, K(0));
    tf_publish(r, 1, 1, 1);
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_EEXPIRED, "1.root.json: expired at 2020-09-13T12:26:40Z");
    rh_tuf_free(t);
    t = tf_engine(r);
    tf_publish_root(r, 2, TF_EXP, K(0));
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "root"), 2);
    rh_tuf_free(t);
    tf_free(r);
}

/* ---- expiry of every role (freeze attacks) ----------------------------------------------- */

static void test_expired_roles(void **state)
{
    (void)state;
    static const struct {
        rh_role role;
        const char *needle;
    } cases[] = {
        {RH_ROLE_TIMESTAMP, "timestamp.json: expired"},
        {RH_ROLE_SNAPSHOT, "2.snapshot.json: expired"},
        {RH_ROLE_TARGETS, "2.targets.json: expired"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_repo *r = tf_std();
        rh_tuf *t = tf_engine(r);
        expect_refresh(t, TF_NOW, RH_OK, NULL);
        int64_t *exp = cases[i].role == RH_ROLE_TIMESTAMP  ? &r->exp_ts
                       : cases[i].role == RH_ROLE_SNAPSHOT ? &r->exp_snap
                                                           : &r->exp_targets;
        *exp = TF_NOW + 100;
        tf_publish(r, 2, 2, 2);
        /* One second before expiry it is fine; at the expiry second it is not. */
        rh_tuf *fresh = tf_engine(r);
        expect_refresh(fresh, TF_NOW + 99, RH_OK, NULL);
        rh_tuf_free(fresh);
        tf_clear_logs(r);
        expect_refresh(t, TF_NOW + 100, RH_EEXPIRED, cases[i].needle);
        /* The rejected role keeps its trusted file; earlier steps committed theirs. */
        switch (cases[i].role) {
        case RH_ROLE_TIMESTAMP:
            assert_int_equal(ver(t, "timestamp"), 1);
            assert_int_equal(ver(t, "snapshot"), 1);
            assert_int_equal(ver(t, "targets"), 1);
            assert_int_equal(r->npersisted, 0);
            break;
        case RH_ROLE_SNAPSHOT:
            assert_int_equal(ver(t, "timestamp"), 2);
            assert_int_equal(ver(t, "snapshot"), 1);
            assert_int_equal(ver(t, "targets"), 1);
            expect_log(r->persisted, r->npersisted, LOG("timestamp.json"));
            break;
        default:
            /* The new snapshot no longer lists targets version 1: it is not trusted now. */
            assert_int_equal(ver(t, "snapshot"), 2);
            assert_null(rh_tuf_trusted(t, "targets"));
            expect_log(r->persisted, r->npersisted, LOG("timestamp.json", "2.snapshot.json"));
            break;
        }
        /* A failed refresh blocks lookups. */
        rh_error e;
        rh_error_clear(&e);
        const rh_target *tg = NULL;
        check_rc(rh_tuf_find_target(t, "a.txt", TF_NOW, &tg, &e), &e, RH_EINVAL, NULL);
        rh_tuf_free(t);
        tf_free(r);
    }
}

/* ---- signatures and types ---------------------------------------------------------------- */

static void test_wrong_type(void **state)
{
    (void)state;
    /* A snapshot served as timestamp.json. */
    tf_repo *r = tf_std();
    rh_tuf *t = tf_engine(r);
    const tf_file *snap = tf_get(r, "1.snapshot.json");
    uint8_t *copy = malloc(snap->len);
    memcpy(copy, snap->data, snap->len);
    tf_put(r, "timestamp.json", copy, snap->len);
    expect_refresh(t, TF_NOW, RH_ETYPE, "timestamp.json");
    assert_null(rh_tuf_trusted(t, "timestamp"));
    rh_tuf_free(t);
    tf_free(r);

    /* Targets served as the snapshot (the timestamp lists no hashes, so only _type stops it). */
    r = tf_new();
    r->ts_len = r->ts_hashes = false;
    tf_publish_root(r, 1, TF_EXP, K(0));
    tf_publish(r, 1, 1, 1);
    const tf_file *targ = tf_get(r, "1.targets.json");
    copy = malloc(targ->len);
    memcpy(copy, targ->data, targ->len);
    tf_put(r, "1.snapshot.json", copy, targ->len);
    t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_ETYPE, "1.snapshot.json");
    assert_int_equal(ver(t, "timestamp"), 1);
    assert_null(rh_tuf_trusted(t, "snapshot"));
    rh_tuf_free(t);
    tf_free(r);
}

static void test_thresholds(void **state)
{
    (void)state;
    static const struct {
        rh_role role;
        int signers[4];
        rh_err rc;
        const char *needle;
    } cases[] = {
        {RH_ROLE_TIMESTAMP, {1, 5, -1}, RH_OK, NULL},
        {RH_ROLE_TIMESTAMP, {1, -1}, RH_ESIG, "timestamp.json: not signed"},
        {RH_ROLE_TIMESTAMP, {1, 1, -1}, RH_ESIG, "timestamp.json: not signed"}, /* one key twice */
        {RH_ROLE_TIMESTAMP, {1, 6, -1}, RH_ESIG, "timestamp.json: not signed"}, /* stranger */
        {RH_ROLE_SNAPSHOT, {2, 2, -1}, RH_ESIG, "1.snapshot.json: not signed"},
        {RH_ROLE_SNAPSHOT, {2, 6, -1}, RH_OK, NULL},
        {RH_ROLE_TARGETS, {3, -1}, RH_ESIG, "1.targets.json: not signed"},
        {RH_ROLE_TARGETS, {3, 3, -1}, RH_ESIG, "1.targets.json: not signed"},
        {RH_ROLE_TARGETS, {7, 3, -1}, RH_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_repo *r = tf_new();
        tf_set_role(r, RH_ROLE_TIMESTAMP, K(1, 5), 2);
        tf_set_role(r, RH_ROLE_SNAPSHOT, K(2, 6), 2);
        tf_set_role(r, RH_ROLE_TARGETS, K(3, 7), 2);
        tf_publish_root(r, 1, TF_EXP, K(0));
        tf_set_signers(r, cases[i].role, cases[i].signers);
        tf_publish(r, 1, 1, 1);
        if (cases[i].signers[0] == cases[i].signers[1]) {
            /* The duplicate really is two signature entries by one key. */
            char name[RH_TUF_MAX_FILENAME];
            const tf_file *f = tf_get(r, tf_name(r, rh_role_name(cases[i].role), 1, name));
            rh_metadata *m = NULL;
            rh_error pe;
            rh_error_clear(&pe);
            assert_int_equal(rh_metadata_parse(f->data, f->len, RH_MAX_JSON_BYTES,
                                               cases[i].role, "dup", &m, &pe),
                             RH_OK);
            assert_int_equal(m->nsigs, 2);
            assert_string_equal(m->sigs[0].keyid, m->sigs[1].keyid);
            rh_metadata_free(m);
        }
        rh_tuf *t = tf_engine(r);
        expect_refresh(t, TF_NOW, cases[i].rc, cases[i].needle);
        assert_int_equal(rh_tuf_trusted(t, rh_role_name(cases[i].role)) != NULL,
                         cases[i].rc == RH_OK);
        rh_tuf_free(t);
        tf_free(r);
    }
}

/* ---- TUF 5.4 / 5.5: rollback ----------------------------------------------------------- */

static void test_timestamp_rollback(void **state)
{
    (void)state;
    tf_repo *r = tf_std();
    rh_tuf *t = tf_engine(r);
    tf_publish(r, 3, 2, 2);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "timestamp"), 3);
    const rh_metadata *trusted_ts = rh_tuf_trusted(t, "timestamp");

    /* TUF 5.4.3.1: a lower timestamp version. */
    tf_publish(r, 2, 3, 3);
    tf_clear_logs(r);
    expect_refresh(t, TF_NOW, RH_EROLLBACK,
                   "timestamp.json: version 2 is lower than trusted version 3 (rollback)");
    assert_ptr_equal(rh_tuf_trusted(t, "timestamp"), trusted_ts);
    assert_int_equal(ver(t, "snapshot"), 2);
    assert_int_equal(ver(t, "targets"), 2);
    assert_int_equal(r->npersisted, 0);

    /* TUF 5.4.3.2: a higher timestamp naming a lower snapshot version. */
    tf_publish(r, 4, 1, 1);
    expect_refresh(t, TF_NOW, RH_EROLLBACK,
                   "timestamp.json: snapshot version 1 is lower than trusted snapshot version 2");
    assert_ptr_equal(rh_tuf_trusted(t, "timestamp"), trusted_ts);
    assert_int_equal(r->npersisted, 0);

    /* An equal version changes nothing and downloads nothing more. */
    tf_publish(r, 3, 2, 2);
    tf_clear_logs(r);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    expect_log(r->fetched, r->nfetched, LOG("2.root.json", "timestamp.json"));
    assert_int_equal(r->npersisted, 0);
    assert_ptr_equal(rh_tuf_trusted(t, "timestamp"), trusted_ts);

    /* And a real update goes through on the same engine. */
    tf_publish(r, 5, 4, 4);
    tf_clear_logs(r);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    expect_log(r->persisted, r->npersisted,
               LOG("timestamp.json", "4.snapshot.json", "4.targets.json"));
    assert_int_equal(ver(t, "targets"), 4);
    rh_tuf_free(t);
    tf_free(r);
}

static void test_snapshot_rollback(void **state)
{
    (void)state;
    /* TUF 5.5.5: targets version goes down. */
    tf_repo *r = tf_std();
    rh_tuf *t = tf_engine(r);
    tf_publish(r, 1, 1, 2);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    const rh_metadata *snap = rh_tuf_trusted(t, "snapshot");
    tf_publish(r, 2, 2, 1);
    expect_refresh(t, TF_NOW, RH_EROLLBACK,
                   "2.snapshot.json: targets.json version 1 is lower than trusted version 2");
    assert_ptr_equal(rh_tuf_trusted(t, "snapshot"), snap);
    assert_int_equal(ver(t, "timestamp"), 2); /* TUF 5.4.5 committed it before */
    assert_int_equal(ver(t, "targets"), 2);
    rh_tuf_free(t);
    tf_free(r);

    /* TUF 5.5.5: a role listed before disappears. */
    r = tf_std();
    json_object_set_new(r->extra_meta, "gone.json", json_pack("{s:i}", "version", 1));
    tf_publish(r, 1, 1, 1);
    t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    json_object_clear(r->extra_meta);
    tf_publish(r, 2, 2, 2);
    expect_refresh(t, TF_NOW, RH_EROLLBACK, "2.snapshot.json: gone.json is listed by trusted");
    assert_int_equal(ver(t, "snapshot"), 1);
    assert_non_null(rh_snapshot_find(rh_tuf_trusted(t, "snapshot"), "gone.json"));
    rh_tuf_free(t);
    tf_free(r);
}

static void test_fast_forward_recovery(void **state)
{
    (void)state;
    tf_repo *r = tf_std();
    rh_tuf *t = tf_engine(r);
    /* An attacker with the timestamp key (1) fast-forwards the timestamp to version 100. */
    tf_publish(r, 100, 1, 1);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "timestamp"), 100);
    /* The repository recovers without rotating: its timestamp 2 looks like a rollback. */
    tf_publish(r, 2, 2, 2);
    expect_refresh(t, TF_NOW, RH_EROLLBACK, "lower than trusted version 100");
    assert_int_equal(ver(t, "timestamp"), 100);
    /* TUF 5.3.11: root 2 rotates the timestamp key; the trusted timestamp and snapshot are
     * forgotten and version 2 is accepted. */
    tf_set_role(r, RH_ROLE_TIMESTAMP, K(10), 1);
    tf_publish_root(r, 2, TF_EXP, K(0));
    tf_publish(r, 2, 2, 2);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "root"), 2);
    assert_int_equal(ver(t, "timestamp"), 2);
    assert_int_equal(ver(t, "snapshot"), 2);
    rh_tuf_free(t);
    tf_free(r);

    /* The same for a fast-forwarded snapshot after the snapshot key rotates. */
    r = tf_std();
    t = tf_engine(r);
    tf_publish(r, 2, 50, 1);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    tf_publish(r, 3, 3, 2);
    expect_refresh(t, TF_NOW, RH_EROLLBACK, "snapshot version 3 is lower");
    tf_set_role(r, RH_ROLE_SNAPSHOT, K(11), 1);
    tf_publish_root(r, 2, TF_EXP, K(0));
    tf_publish(r, 1, 3, 2);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "timestamp"), 1);
    assert_int_equal(ver(t, "snapshot"), 3);
    rh_tuf_free(t);
    tf_free(r);
}

/* ---- hashes, lengths, versions in file names ------------------------------------------- */

static void test_snapshot_hash_and_length(void **state)
{
    (void)state;
    /* Hash: the timestamp signs other bytes than those served (same version, re-signed). */
    tf_repo *r = tf_new();
    r->ts_len = false;
    tf_publish_root(r, 1, TF_EXP, K(0));
    tf_publish(r, 1, 1, 1);
    const tf_file *ts = tf_get(r, "timestamp.json");
    size_t tslen = ts->len;
    uint8_t *old_ts = malloc(tslen);
    memcpy(old_ts, ts->data, tslen);
    r->exp_snap = TF_EXP + 1;
    tf_publish(r, 1, 1, 1);
    tf_put(r, "timestamp.json", old_ts, tslen);
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_EHASH, "1.snapshot.json: sha256 mismatch");
    assert_int_equal(ver(t, "timestamp"), 1);
    assert_null(rh_tuf_trusted(t, "snapshot"));
    rh_tuf_free(t);
    tf_free(r);

    /* Length: signed shorter than served (download capped: too big), and longer. */
    for (int delta = -10; delta <= 10; delta += 20) {
        r = tf_std();
        const tf_file *snap = tf_get(r, "1.snapshot.json");
        put_timestamp(r, 1, json_pack("{s:i,s:i}", "version", 1, "length",
                                      (int)snap->len + delta));
        t = tf_engine(r);
        if (delta < 0)
            expect_refresh(t, TF_NOW, RH_ETOOBIG, "1.snapshot.json: more than");
        else
            expect_refresh(t, TF_NOW, RH_EHASH, "1.snapshot.json: length");
        assert_null(rh_tuf_trusted(t, "snapshot"));
        rh_tuf_free(t);
        tf_free(r);
    }
}

static void test_targets_hash(void **state)
{
    (void)state;
    tf_repo *r = tf_new();
    r->snap_hashes = true; /* hashes only: a length would stop it earlier (RH_ETOOBIG) */
    tf_publish_root(r, 1, TF_EXP, K(0));
    tf_publish(r, 1, 1, 1);
    /* Re-sign targets 1 with other content; the snapshot still lists the old hash. */
    json_t *tg = tf_targets_obj(1, TF_EXP);
    tf_target_add(tg, "evil.txt", 666);
    tf_sign_put(r, "1.targets.json", tg, K(3));
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_EHASH, "1.targets.json");
    assert_null(rh_tuf_trusted(t, "targets"));
    rh_tuf_free(t);
    tf_free(r);
}

static void test_url_version_mismatch(void **state)
{
    (void)state;
    /* TUF 5.5.4: 2.snapshot.json (named by the timestamp) contains version 3. */
    tf_repo *r = tf_std();
    put_snapshot(r, "2.snapshot.json", 2, 3, 2,
                 json_pack("{s:{s:i}}", "targets.json", "version", 1));
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_EVERSION,
                   "2.snapshot.json: contains version 3, timestamp.json lists version 2");
    assert_null(rh_tuf_trusted(t, "snapshot"));
    rh_tuf_free(t);
    tf_free(r);

    /* TUF 5.6.4: 2.targets.json (named by the snapshot) contains version 3. */
    r = tf_std();
    json_t *tg = tf_targets_obj(3, TF_EXP);
    tf_sign_put(r, "2.targets.json", tg, K(3));
    put_snapshot(r, "2.snapshot.json", 2, 2, 2,
                 json_pack("{s:{s:i}}", "targets.json", "version", 2));
    t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_EVERSION,
                   "2.targets.json: contains version 3, 2.snapshot.json lists version 2");
    assert_int_equal(ver(t, "snapshot"), 2);
    assert_null(rh_tuf_trusted(t, "targets"));
    rh_tuf_free(t);
    tf_free(r);

    /* A snapshot without targets.json. */
    r = tf_std();
    put_snapshot(r, "2.snapshot.json", 2, 2, 2, json_object());
    t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_ENOTFOUND, "2.snapshot.json: lists no targets.json");
    rh_tuf_free(t);
    tf_free(r);
}

static void test_endless_data(void **state)
{
    (void)state;
    for (int ignore = 0; ignore <= 1; ignore++) {
        tf_repo *r = tf_std();
        r->ignore_max = ignore;
        /* Valid JSON start, then megabytes of whitespace: a hostile never-ending timestamp. */
        size_t n = 4 * RH_MAX_TIMESTAMP_BYTES;
        uint8_t *big = malloc(n);
        memset(big, ' ', n);
        big[0] = '{';
        tf_put(r, "timestamp.json", big, n);
        rh_tuf *t = tf_engine(r);
        expect_refresh(t, TF_NOW, RH_ETOOBIG, "timestamp.json: more than 16384 bytes");
        assert_null(rh_tuf_trusted(t, "timestamp"));
        rh_tuf_free(t);
        tf_free(r);
    }
}

static void test_missing_and_persist_errors(void **state)
{
    (void)state;
    tf_repo *r = tf_std();
    tf_del(r, "timestamp.json");
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_ENOTFOUND, "timestamp.json: HTTP 404");
    rh_tuf_free(t);
    tf_free(r);

    r = tf_std();
    r->persist_err = RH_EIO;
    t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_EIO, "timestamp.json: disk full");
    rh_tuf_free(t);
    tf_free(r);
}

/* ---- cached metadata ------------------------------------------------------------------- */

static void test_cached(void **state)
{
    (void)state;
    tf_repo *r = tf_std();
    tf_publish(r, 5, 5, 5);
    const tf_file *f = tf_get(r, "timestamp.json");
    size_t ts5len = f->len;
    uint8_t *ts5 = malloc(ts5len);
    memcpy(ts5, f->data, ts5len);
    tf_publish(r, 3, 3, 3);

    /* A persisted timestamp 5 protects against the served timestamp 3. */
    rh_tuf *t = tf_engine(r);
    rh_error e;
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "timestamp", ts5, ts5len, "cache/timestamp.json", &e), &e,
             RH_OK, NULL);
    expect_refresh(t, TF_NOW, RH_EROLLBACK, "version 3 is lower than trusted version 5");
    assert_int_equal(ver(t, "timestamp"), 5);
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "timestamp", ts5, ts5len, "late", &e), &e, RH_EINVAL, "late");
    rh_tuf_free(t);

    /* A cached timestamp that does not verify is ignored. */
    json_t *forged = tf_base("timestamp", 9, TF_EXP);
    json_object_set_new(forged, "meta", json_pack("{s:{s:i}}", "snapshot.json", "version", 9));
    size_t flen = 0;
    uint8_t *fb = tf_sign(r, forged, K(11), &flen);
    t = tf_engine(r);
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "timestamp", fb, flen, "cache/timestamp.json", &e), &e, RH_OK,
             NULL);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "timestamp"), 3);
    rh_tuf_free(t);
    free(fb);

    /* Garbage or the wrong type is refused at once, and changes nothing. */
    t = tf_engine(r);
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "snapshot", (const uint8_t *)"{\"x\":", 5, "cache/snap", &e),
             &e, RH_EPARSE, "cache/snap");
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "snapshot", ts5, ts5len, "cache/snap", &e), &e, RH_ETYPE,
             NULL);
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "root", ts5, ts5len, "cache/root", &e), &e, RH_EINVAL, NULL);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    rh_tuf_free(t);
    free(ts5);

    /* Current cached snapshot and targets: only the root probe and the timestamp download. */
    t = tf_engine(r);
    const char *roles[] = {"timestamp", "snapshot", "targets"};
    const char *files[] = {"timestamp.json", "3.snapshot.json", "3.targets.json"};
    for (int i = 0; i < 3; i++) {
        f = tf_get(r, files[i]);
        rh_error_clear(&e);
        check_rc(rh_tuf_load_cached(t, roles[i], f->data, f->len, files[i], &e), &e, RH_OK, NULL);
    }
    tf_clear_logs(r);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    expect_log(r->fetched, r->nfetched, LOG("2.root.json", "timestamp.json"));
    assert_int_equal(r->npersisted, 0);
    assert_int_equal(ver(t, "targets"), 3);
    assert_false(rh_tuf_file_of(t, "targets")->fetched);
    rh_tuf_free(t);

    /* An old cached snapshot guards the rollback check, then is replaced. */
    t = tf_engine(r);
    tf_publish(r, 1, 1, 1);
    f = tf_get(r, "1.snapshot.json");
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "snapshot", f->data, f->len, "s", &e), &e, RH_OK, NULL);
    tf_publish(r, 4, 4, 4);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    assert_int_equal(ver(t, "snapshot"), 4);
    rh_tuf_free(t);
    tf_free(r);
}

/* ---- TUF 5.6.7: delegations --------------------------------------------------------------- */

/* targets -> A, B (terminating), C; A -> A1; every delegation for paths "x/" + '*'.
 * x/f: A1 (11) and B (22); x/g: B (22) and C (33); x/h: C (33) only; x/i: nowhere. */
static tf_repo *deleg_repo(void)
{
    tf_repo *r = tf_new();
    tf_publish_root(r, 1, TF_EXP, K(0));
    static const char *const xs[] = {"x/*", NULL};
    json_t *top = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, top, "A", K(4), 1, false, xs, NULL);
    tf_deleg_add(r, top, "B", K(5), 1, true, xs, NULL);
    tf_deleg_add(r, top, "C", K(6), 1, false, xs, NULL);
    r->delegations = json_incref(json_object_get(top, "delegations"));
    json_decref(top);

    json_t *a = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, a, "A1", K(7), 1, false, xs, NULL);
    tf_publish_role(r, "A", 1, a, K(4));
    json_t *a1 = tf_targets_obj(1, TF_EXP);
    tf_target_add(a1, "x/f", 11);
    tf_publish_role(r, "A1", 1, a1, K(7));
    json_t *b = tf_targets_obj(1, TF_EXP);
    tf_target_add(b, "x/f", 22);
    tf_target_add(b, "x/g", 22);
    tf_publish_role(r, "B", 1, b, K(5));
    json_t *c = tf_targets_obj(1, TF_EXP);
    tf_target_add(c, "x/g", 33);
    tf_target_add(c, "x/h", 33);
    tf_publish_role(r, "C", 1, c, K(6));
    tf_publish(r, 1, 1, 1);
    return r;
}

static void test_delegation_order(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        rh_err rc;
        uint64_t length;
        const char *fetched[5];
    } cases[] = {
        {"x/f", RH_OK, 11, {"1.A.json", "1.A1.json", NULL}},
        {"x/g", RH_OK, 22, {"1.A.json", "1.A1.json", "1.B.json", NULL}},
        /* B is terminating: C is never consulted. */
        {"x/h", RH_ENOTFOUND, 0, {"1.A.json", "1.A1.json", "1.B.json", NULL}},
        {"x/i", RH_ENOTFOUND, 0, {"1.A.json", "1.A1.json", "1.B.json", NULL}},
        /* No delegation matches: nothing is fetched. */
        {"y/f", RH_ENOTFOUND, 0, {NULL}},
        {"a.txt", RH_OK, 1, {NULL}},
    };
    tf_repo *r = deleg_repo();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rh_tuf *t = tf_engine(r);
        expect_refresh(t, TF_NOW, RH_OK, NULL);
        tf_clear_logs(r);
        rh_error e;
        rh_error_clear(&e);
        const rh_target *tg = NULL;
        check_rc(rh_tuf_find_target(t, cases[i].path, TF_NOW, &tg, &e), &e, cases[i].rc,
                 cases[i].path);
        if (cases[i].rc == RH_OK)
            assert_int_equal(tg->length, cases[i].length);
        expect_log(r->fetched, r->nfetched, cases[i].fetched);
        expect_log(r->persisted, r->npersisted, cases[i].fetched);
        /* A second lookup downloads nothing. */
        tf_clear_logs(r);
        rh_error_clear(&e);
        check_rc(rh_tuf_find_target(t, cases[i].path, TF_NOW, &tg, &e), &e, cases[i].rc, NULL);
        assert_int_equal(r->nfetched, 0);
        /* Expiry is checked against the lookup's own time, for trusted roles too. */
        if (cases[i].fetched[0] != NULL) {
            rh_error_clear(&e);
            check_rc(rh_tuf_find_target(t, cases[i].path, TF_EXP, &tg, &e), &e, RH_EEXPIRED,
                     "expired");
        }
        rh_tuf_free(t);
    }
    tf_free(r);
}

static void test_refresh_all(void **state)
{
    (void)state;
    tf_repo *r = deleg_repo();
    rh_tuf *t = tf_engine(r);
    rh_error e;
    rh_error_clear(&e);
    check_rc(rh_tuf_refresh_all(t, TF_NOW, &e), &e, RH_OK, NULL);
    expect_log(r->persisted, r->npersisted,
               LOG("timestamp.json", "1.snapshot.json", "1.targets.json", "1.A.json",
                   "1.B.json", "1.C.json", "1.A1.json"));
    assert_int_equal(rh_tuf_nfiles(t), 8);
    const char *order[] = {"targets", "A", "B", "C", "A1"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(rh_tuf_file_at(t, 3 + i)->role, order[i]);
    assert_non_null(rh_tuf_trusted(t, "A1"));

    rh_error_clear(&e);
    assert_int_equal(rh_tuf_foreach_target(t, NULL, NULL, &e), RH_EINVAL);
    /* Nothing more to fetch on a second walk. */
    tf_clear_logs(r);
    rh_error_clear(&e);
    check_rc(rh_tuf_refresh_all(t, TF_NOW, &e), &e, RH_OK, NULL);
    expect_log(r->fetched, r->nfetched, LOG("2.root.json", "timestamp.json"));
    rh_tuf_free(t);
    tf_free(r);
}

static rh_err collect_target(void *ctx, const char *rolename, const rh_target *tg, rh_error *e)
{
    char(*seen)[32] = ctx;
    size_t i = 0;
    while (seen[i][0] != '\0')
        i++;
    if (i >= 7)
        return rh_fail(e, RH_ETOOBIG, "too many");
    snprintf(seen[i], sizeof seen[i], "%s:%s:%llu", rolename, tg->path,
             (unsigned long long)tg->length);
    return RH_OK;
}

static void test_foreach_target(void **state)
{
    (void)state;
    tf_repo *r = deleg_repo();
    rh_tuf *t = tf_engine(r);
    rh_error e;
    rh_error_clear(&e);
    check_rc(rh_tuf_refresh_all(t, TF_NOW, &e), &e, RH_OK, NULL);
    char seen[8][32];
    memset(seen, 0, sizeof seen);
    check_rc(rh_tuf_foreach_target(t, collect_target, seen, &e), &e, RH_OK, NULL);
    const char *want[] = {"targets:a.txt:1", "B:x/f:22", "B:x/g:22", "C:x/g:33", "C:x/h:33",
                          "A1:x/f:11"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(seen[i], want[i]);
    assert_string_equal(seen[6], "");
    rh_tuf_free(t);
    tf_free(r);
}

static void test_path_hash_prefixes(void **state)
{
    (void)state;
    char hex[2 * RH_SHA256_LEN + 1], other[2 * RH_SHA256_LEN + 1];
    tf_sha256_hex((const uint8_t *)"p/file", 6, hex);
    tf_sha256_hex((const uint8_t *)"p/other", 7, other);
    char prefix[5];
    memcpy(prefix, hex, 4);
    prefix[4] = '\0';
    assert_true(memcmp(hex, other, 4) != 0);

    tf_repo *r = tf_new();
    tf_publish_root(r, 1, TF_EXP, K(0));
    const char *const prefixes[] = {prefix, NULL};
    json_t *top = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, top, "bin", K(4), 1, false, NULL, prefixes);
    r->delegations = json_incref(json_object_get(top, "delegations"));
    json_decref(top);
    json_t *bin = tf_targets_obj(1, TF_EXP);
    tf_target_add(bin, "p/file", 5);
    tf_target_add(bin, "p/other", 6);
    tf_publish_role(r, "bin", 1, bin, K(4));
    tf_publish(r, 1, 1, 1);
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    rh_error e;
    rh_error_clear(&e);
    const rh_target *tg = NULL;
    check_rc(rh_tuf_find_target(t, "p/file", TF_NOW, &tg, &e), &e, RH_OK, NULL);
    assert_int_equal(tg->length, 5);
    /* Listed by the role, but outside its hash prefixes: not delegated, not found. */
    rh_error_clear(&e);
    check_rc(rh_tuf_find_target(t, "p/other", TF_NOW, &tg, &e), &e, RH_ENOTFOUND, NULL);
    rh_tuf_free(t);
    tf_free(r);
}

static void test_delegation_cycle(void **state)
{
    (void)state;
    static const char *const all[] = {"*", NULL};
    tf_repo *r = tf_new();
    tf_publish_root(r, 1, TF_EXP, K(0));
    json_t *top = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, top, "A", K(4), 1, false, all, NULL);
    r->delegations = json_incref(json_object_get(top, "delegations"));
    json_decref(top);
    json_t *a = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, a, "B", K(5), 1, false, all, NULL);
    tf_publish_role(r, "A", 1, a, K(4));
    json_t *b = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, b, "A", K(4), 1, false, all, NULL);
    tf_target_add(b, "inb", 7);
    tf_publish_role(r, "B", 1, b, K(5));
    tf_publish(r, 1, 1, 1);
    rh_tuf *t = tf_engine(r);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    tf_clear_logs(r);
    rh_error e;
    rh_error_clear(&e);
    const rh_target *tg = NULL;
    check_rc(rh_tuf_find_target(t, "nowhere", TF_NOW, &tg, &e), &e, RH_ENOTFOUND, "nowhere");
    expect_log(r->fetched, r->nfetched, LOG("1.A.json", "1.B.json"));
    rh_error_clear(&e);
    check_rc(rh_tuf_find_target(t, "inb", TF_NOW, &tg, &e), &e, RH_OK, NULL);
    assert_int_equal(tg->length, 7);
    rh_tuf_free(t);
    /* refresh_all terminates on the cycle too. */
    t = tf_engine(r);
    rh_error_clear(&e);
    check_rc(rh_tuf_refresh_all(t, TF_NOW, &e), &e, RH_OK, NULL);
    assert_int_equal(rh_tuf_nfiles(t), 6);
    rh_tuf_free(t);
    tf_free(r);
}

/* TUF 5.6.3 + 5.6.7: a delegated role is trusted for a delegation only when that delegation's
 * keys sign it. Role S is delegated by X (key 6, paths under x/) and by Y (key 7, paths under
 * y/), and S.json is signed by key 6 only. Through Y, S must fail verification whether or not an earlier
 * lookup through X already trusted it: the verdict may not depend on the order of lookups. */
static void test_delegated_role_keys_per_delegator(void **state)
{
    (void)state;
    static const char *const xs[] = {"x/*", NULL}, *const ys[] = {"y/*", NULL};
    tf_repo *r = tf_new();
    tf_publish_root(r, 1, TF_EXP, K(0));
    json_t *top = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, top, "X", K(4), 1, false, xs, NULL);
    tf_deleg_add(r, top, "Y", K(5), 1, false, ys, NULL);
    r->delegations = json_incref(json_object_get(top, "delegations"));
    json_decref(top);
    json_t *x = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, x, "S", K(6), 1, false, xs, NULL);
    tf_publish_role(r, "X", 1, x, K(4));
    json_t *y = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, y, "S", K(7), 1, false, ys, NULL);
    tf_publish_role(r, "Y", 1, y, K(5));
    json_t *sr = tf_targets_obj(1, TF_EXP);
    tf_target_add(sr, "x/ok", 11);
    tf_target_add(sr, "y/evil", 66);
    tf_publish_role(r, "S", 1, sr, K(6));
    tf_publish(r, 1, 1, 1);

    for (int warm = 0; warm < 2; warm++) {
        rh_tuf *t = tf_engine(r);
        expect_refresh(t, TF_NOW, RH_OK, NULL);
        rh_error e;
        const rh_target *tg = NULL;
        if (warm) {
            rh_error_clear(&e);
            check_rc(rh_tuf_find_target(t, "x/ok", TF_NOW, &tg, &e), &e, RH_OK, NULL);
            assert_int_equal(tg->length, 11);
        }
        tg = NULL;
        rh_error_clear(&e);
        check_rc(rh_tuf_find_target(t, "y/evil", TF_NOW, &tg, &e), &e, RH_ESIG, "1.S.json");
        assert_null(tg);
        /* Through X it still resolves. */
        rh_error_clear(&e);
        check_rc(rh_tuf_find_target(t, "x/ok", TF_NOW, &tg, &e), &e, RH_OK, NULL);
        assert_int_equal(tg->length, 11);
        rh_tuf_free(t);
    }
    tf_free(r);
}

/* A chain targets -> R1 -> R2 -> ... -> R40, target "tN" only in RN. */
static void test_delegation_limit(void **state)
{
    (void)state;
    static const char *const all[] = {"*", NULL};
    tf_repo *r = tf_new();
    tf_publish_root(r, 1, TF_EXP, K(0));
    json_t *top = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, top, "R1", K(4), 1, false, all, NULL);
    r->delegations = json_incref(json_object_get(top, "delegations"));
    json_decref(top);
    for (int i = 1; i <= 40; i++) {
        char name[16], next[16], path[16];
        snprintf(name, sizeof name, "R%d", i);
        snprintf(next, sizeof next, "R%d", i + 1);
        snprintf(path, sizeof path, "t%d", i);
        json_t *o = tf_targets_obj(1, TF_EXP);
        tf_target_add(o, path, i);
        if (i < 40)
            tf_deleg_add(r, o, next, K(4), 1, false, all, NULL);
        tf_publish_role(r, name, 1, o, K(4));
    }
    tf_publish(r, 1, 1, 1);
    static const struct {
        const char *path;
        rh_err rc;
    } cases[] = {
        {"t1", RH_OK},
        {"t31", RH_OK},     /* targets + 31 roles = RH_MAX_DELEGATIONS visited */
        {"t32", RH_ETOOBIG}, /* would be the 33rd */
        {"t40", RH_ETOOBIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rh_tuf *t = tf_engine(r);
        expect_refresh(t, TF_NOW, RH_OK, NULL);
        tf_clear_logs(r);
        rh_error e;
        rh_error_clear(&e);
        const rh_target *tg = NULL;
        check_rc(rh_tuf_find_target(t, cases[i].path, TF_NOW, &tg, &e), &e, cases[i].rc,
                 cases[i].path);
        if (cases[i].rc == RH_OK)
            assert_int_equal(tg->length, (uint64_t)strtol(cases[i].path + 1, NULL, 10));
        else
            assert_int_equal(r->nfetched, RH_MAX_DELEGATIONS - 1);
        rh_tuf_free(t);
    }
    /* The mirror walk has its own, larger bound and loads all 40. */
    rh_tuf *t = tf_engine(r);
    rh_error e;
    rh_error_clear(&e);
    check_rc(rh_tuf_refresh_all(t, TF_NOW, &e), &e, RH_OK, NULL);
    assert_int_equal(rh_tuf_nfiles(t), 4 + 40);
    rh_tuf_free(t);
    tf_free(r);
}

static void test_delegated_rejections(void **state)
{
    (void)state;
    enum { BAD_SIG, BAD_VERSION, EXPIRED, NOT_LISTED, HASH, WRONG_TYPE };
    static const struct {
        int kind;
        rh_err rc;
        const char *needle;
    } cases[] = {
        {BAD_SIG, RH_ESIG, "1.A.json: not signed by a threshold of delegated keys"},
        {BAD_VERSION, RH_EVERSION, "1.A.json: contains version 2, 1.snapshot.json lists"},
        {EXPIRED, RH_EEXPIRED, "1.A.json: expired"},
        {NOT_LISTED, RH_ENOTFOUND, "1.snapshot.json: lists no A.json"},
        {HASH, RH_EHASH, "1.A.json"},
        {WRONG_TYPE, RH_ETYPE, "1.A.json"},
    };
    static const char *const all[] = {"*", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_repo *r = tf_new();
        tf_publish_root(r, 1, TF_EXP, K(0));
        json_t *top = tf_targets_obj(1, TF_EXP);
        tf_deleg_add(r, top, "A", K(4), 1, false, all, NULL);
        r->delegations = json_incref(json_object_get(top, "delegations"));
        json_decref(top);
        json_t *a = tf_targets_obj(cases[i].kind == BAD_VERSION ? 2 : 1,
                                   cases[i].kind == EXPIRED ? TF_PAST : TF_EXP);
        tf_target_add(a, "x", 1);
        if (cases[i].kind == WRONG_TYPE) { /* a validly signed snapshot in A's place */
            json_decref(a);
            a = tf_base("snapshot", 1, TF_EXP);
            json_object_set_new(a, "meta",
                                json_pack("{s:{s:i}}", "targets.json", "version", 1));
        }
        tf_publish_role(r, "A", 1, a, cases[i].kind == BAD_SIG ? K(5) : K(4));
        if (cases[i].kind == NOT_LISTED)
            json_object_clear(r->extra_meta);
        if (cases[i].kind == HASH)
            json_object_set_new(r->extra_meta, "A.json",
                                tf_meta(1, (const uint8_t *)"other", 5, false, true));
        tf_publish(r, 1, 1, 1);
        rh_tuf *t = tf_engine(r);
        expect_refresh(t, TF_NOW, RH_OK, NULL);
        rh_error e;
        rh_error_clear(&e);
        const rh_target *tg = NULL;
        check_rc(rh_tuf_find_target(t, "x", TF_NOW, &tg, &e), &e, cases[i].rc, cases[i].needle);
        assert_null(tg);
        assert_null(rh_tuf_trusted(t, "A"));
        rh_tuf_free(t);
        t = tf_engine(r);
        rh_error_clear(&e);
        check_rc(rh_tuf_refresh_all(t, TF_NOW, &e), &e, cases[i].rc, cases[i].needle);
        rh_tuf_free(t);
        tf_free(r);
    }
}

/* Delegated roles persisted by an earlier run are reused when the snapshot still lists them. */
static void test_cached_delegated(void **state)
{
    (void)state;
    tf_repo *r = deleg_repo();
    rh_tuf *t = tf_engine(r);
    const char *roles[] = {"timestamp", "snapshot", "targets", "A", "A1"};
    const char *files[] = {"timestamp.json", "1.snapshot.json", "1.targets.json", "1.A.json",
                           "1.A1.json"};
    rh_error e;
    for (int i = 0; i < 5; i++) {
        const tf_file *f = tf_get(r, files[i]);
        rh_error_clear(&e);
        check_rc(rh_tuf_load_cached(t, roles[i], f->data, f->len, files[i], &e), &e, RH_OK, NULL);
    }
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    tf_clear_logs(r);
    const rh_target *tg = NULL;
    rh_error_clear(&e);
    check_rc(rh_tuf_find_target(t, "x/f", TF_NOW, &tg, &e), &e, RH_OK, NULL);
    assert_int_equal(tg->length, 11);
    assert_int_equal(r->nfetched, 0);
    rh_tuf_free(t);

    /* A cached delegated role the snapshot no longer names (A is now version 2) is replaced. */
    t = tf_engine(r);
    const tf_file *old_a = tf_get(r, "1.A.json");
    rh_error_clear(&e);
    check_rc(rh_tuf_load_cached(t, "A", old_a->data, old_a->len, "cache/A.json", &e), &e, RH_OK,
             NULL);
    static const char *const xs[] = {"x/*", NULL};
    json_t *a = tf_targets_obj(2, TF_EXP);
    tf_deleg_add(r, a, "A1", K(7), 1, false, xs, NULL);
    tf_publish_role(r, "A", 2, a, K(4));
    tf_publish(r, 2, 2, 2);
    expect_refresh(t, TF_NOW, RH_OK, NULL);
    tf_clear_logs(r);
    rh_error_clear(&e);
    check_rc(rh_tuf_find_target(t, "x/f", TF_NOW, &tg, &e), &e, RH_OK, NULL);
    expect_log(r->fetched, r->nfetched, LOG("2.A.json", "1.A1.json"));
    assert_int_equal(ver(t, "A"), 2);
    rh_tuf_free(t);
    tf_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_and_lookup),
        cmocka_unit_test(test_not_consistent_names),
        cmocka_unit_test(test_api_arguments),
        cmocka_unit_test(test_filenames),
        cmocka_unit_test(test_root_rotation_accepted),
        cmocka_unit_test(test_root_rejections),
        cmocka_unit_test(test_root_expired_start),
        cmocka_unit_test(test_expired_roles),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_timestamp_rollback),
        cmocka_unit_test(test_snapshot_rollback),
        cmocka_unit_test(test_fast_forward_recovery),
        cmocka_unit_test(test_snapshot_hash_and_length),
        cmocka_unit_test(test_targets_hash),
        cmocka_unit_test(test_url_version_mismatch),
        cmocka_unit_test(test_endless_data),
        cmocka_unit_test(test_missing_and_persist_errors),
        cmocka_unit_test(test_cached),
        cmocka_unit_test(test_delegation_order),
        cmocka_unit_test(test_refresh_all),
        cmocka_unit_test(test_foreach_target),
        cmocka_unit_test(test_path_hash_prefixes),
        cmocka_unit_test(test_delegation_cycle),
        cmocka_unit_test(test_delegated_role_keys_per_delegator),
        cmocka_unit_test(test_delegation_limit),
        cmocka_unit_test(test_delegated_rejections),
        cmocka_unit_test(test_cached_delegated),
    };
    /* Every test again with lean targets parsing: the engine must behave the same. */
    int failed = cmocka_run_group_tests_name("tuf", tests, NULL, NULL);
    tf_lean = true;
    return failed + cmocka_run_group_tests_name("tuf, lean targets", tests, NULL, NULL);
}
