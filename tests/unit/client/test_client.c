/* test_client.c -- librhine-client end to end over file:// mirrors built from in-memory signed
 * repositories: failover of delegated metadata, the state directory's file names. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/state.h"
#include "manifest/tpath.h"
#include "rhine/client.h"
#include "tests/unit/manifest/tuf_fixture.h"

static char g_dir[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/rhine-client-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p of every directory above path. */
static void mkparents(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
}

static void write_file(const char *path, const void *p, size_t n)
{
    mkparents(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Publish r's metadata under dir/metadata/ and the target `path` (its bytes are the path
 * itself, as tf_target_add signs them) as dir/targets/<dir>/<sha256>.<name>. */
static void put_mirror(tf_repo *r, const char *dir, const char *path)
{
    char p[1024];
    for (size_t i = 0; i < r->nfiles; i++) {
        snprintf(p, sizeof p, "%s/metadata/%s", dir, r->files[i].name);
        write_file(p, r->files[i].data, r->files[i].len);
    }
    char hex[2 * RH_SHA256_LEN + 1];
    tf_sha256_hex((const uint8_t *)path, strlen(path), hex);
    const char *slash = strrchr(path, '/');
    snprintf(p, sizeof p, "%s/targets/%.*s%s.%s", dir, slash ? (int)(slash - path + 1) : 0, path,
             hex, slash ? slash + 1 : path);
    write_file(p, path, strlen(path));
}

/* Top-level targets delegates "D" (key 4, paths under d/); D lists d/file. */
static tf_repo *deleg_repo(void)
{
    static const char *const ds[] = {"d/*", NULL};
    tf_repo *r = tf_new();
    assert_non_null(r);
    tf_publish_root(r, 1, TF_EXP, K(0));
    json_t *top = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, top, "D", K(4), 1, false, ds, NULL);
    r->delegations = json_incref(json_object_get(top, "delegations"));
    json_decref(top);
    json_t *d = tf_targets_obj(1, TF_EXP);
    tf_target_add(d, "d/file", 6);
    tf_publish_role(r, "D", 1, d, K(4));
    tf_publish(r, 1, 1, 1);
    return r;
}

static void read_all(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* DESIGN 7: a mirror that lies about (or lacks) delegated metadata is failed over like one that
 * lies about top-level metadata: the lookup moves to the next mirror instead of failing the
 * fetch (or calling the target "not found") for the life of the handle. */
static void test_delegated_metadata_failover(void **state)
{
    (void)state;
    static const char *const names[] = {"bad-signature", "missing"};
    for (int mode = 0; mode < 2; mode++) {
        tf_repo *r = deleg_repo();
        char a[128], b[128], st[128], rootf[128], dest[128];
        snprintf(a, sizeof a, "%s/%d/a", g_dir, mode);
        snprintf(b, sizeof b, "%s/%d/b", g_dir, mode);
        snprintf(st, sizeof st, "%s/%d/state", g_dir, mode);
        snprintf(rootf, sizeof rootf, "%s/%d/root.json", g_dir, mode);
        snprintf(dest, sizeof dest, "%s/%d/out", g_dir, mode);
        put_mirror(r, b, "d/file");
        /* Mirror a: the same repository, but 1.D.json signed by the wrong key, or absent. */
        if (mode == 0) {
            json_t *d = tf_targets_obj(1, TF_EXP);
            tf_target_add(d, "d/file", 6);
            tf_sign_put(r, "1.D.json", d, K(5));
        } else {
            tf_del(r, "1.D.json");
        }
        put_mirror(r, a, "d/file");
        const tf_file *root = tf_get(r, "1.root.json");
        write_file(rootf, root->data, root->len);

        char err[512] = "";
        assert_int_equal(rhine_state_init(st, rootf, err, sizeof err), RHINE_OK);
        char ua[160], ub[160];
        snprintf(ua, sizeof ua, "file://%s", a);
        snprintf(ub, sizeof ub, "file://%s", b);
        rhine_mirror ms[2] = {{.url = ua}, {.url = ub}};
        rhine_client_opts o = {.state_dir = st, .mirrors = ms, .nmirrors = 2};
        rhine_client *c = NULL;
        assert_int_equal(rhine_client_new(&o, &c, err, sizeof err), RHINE_OK);
        assert_int_equal(rhine_client_update(c), RHINE_OK);
        rhine_status s;
        assert_int_equal(rhine_client_status(c, &s), RHINE_OK);
        assert_string_equal(s.last_mirror, ua); /* a's top-level metadata is fine */
        rhine_code code = rhine_client_fetch(c, "d/file", dest, NULL, NULL);
        if (code != RHINE_OK)
            fail_msg("%s: got %s: %s", names[mode], rhine_code_name(code),
                     rhine_client_errmsg(c));
        char got[32];
        read_all(dest, got, sizeof got);
        assert_string_equal(got, "d/file");
        assert_int_equal(rhine_client_status(c, &s), RHINE_OK);
        assert_string_equal(s.last_mirror, ub);
        rhine_client_free(c);
        tf_free(r);
    }
}

/* State file names must stay distinct on case-insensitive file systems (macOS, Windows): a
 * delegated role "Root" or "TIMESTAMP" must not land on root.json or timestamp.json (the trusted
 * root overwritten by a targets file bricks the client; a lost timestamp loses its rollback
 * protection). Names decode back to the role, as the state loader reads them. */
static void test_state_names(void **state)
{
    (void)state;
    static const struct {
        const char *role, *file;
    } cases[] = {
        {"root", "root.json"},
        {"timestamp", "timestamp.json"},
        {"targets", "targets.json"},
        {"Root", "%52oot.json"},
        {"TIMESTAMP", "%54%49%4D%45%53%54%41%4D%50.json"},
        {"a/B", "a%2F%42.json"},
        {"x-y_z.~0", "x-y_z.~0.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[RH_STATE_NAME_MAX];
        assert_int_equal(rh_state_filename(cases[i].role, name, sizeof name), RH_OK);
        assert_string_equal(name, cases[i].file);
        char back[RH_STATE_NAME_MAX];
        assert_int_equal(rh_url_decode(name, strlen(name) - 5, back, sizeof back, NULL), RH_OK);
        assert_string_equal(back, cases[i].role);
        for (size_t j = 0; j < i; j++) {
            char other[RH_STATE_NAME_MAX];
            assert_int_equal(rh_state_filename(cases[j].role, other, sizeof other), RH_OK);
            assert_true(strcasecmp(name, other) != 0);
        }
    }
    /* The longest role name still fits, every byte encoded. */
    char longname[RH_MAX_ROLE_NAME + 1], name[RH_STATE_NAME_MAX];
    memset(longname, 'Q', RH_MAX_ROLE_NAME);
    longname[RH_MAX_ROLE_NAME] = '\0';
    assert_int_equal(rh_state_filename(longname, name, sizeof name), RH_OK);
    assert_int_equal(strlen(name), 3 * RH_MAX_ROLE_NAME + 5);
    assert_int_equal(rh_state_filename("..", name, sizeof name), RH_EPATH);
    assert_int_equal(rh_state_filename("a", name, 6), RH_EINVAL);
}

/* A target deeper than RH_MAX_DELEGATIONS roles is the repository's property, the same on every
 * mirror: the fetch reports "too big", and no mirror is banned for it (the handle can still
 * update afterwards). */
static void test_delegation_depth_bans_no_mirror(void **state)
{
    (void)state;
    static const char *const all[] = {"*", NULL};
    tf_repo *r = tf_new();
    assert_non_null(r);
    tf_publish_root(r, 1, TF_EXP, K(0));
    json_t *top = tf_targets_obj(1, TF_EXP);
    tf_deleg_add(r, top, "R1", K(4), 1, false, all, NULL);
    r->delegations = json_incref(json_object_get(top, "delegations"));
    json_decref(top);
    for (int i = 1; i <= 34; i++) {
        char name[16], next[16];
        snprintf(name, sizeof name, "R%d", i);
        snprintf(next, sizeof next, "R%d", i + 1);
        json_t *o = tf_targets_obj(1, TF_EXP);
        if (i == 34)
            tf_target_add(o, "deep", 4);
        else
            tf_deleg_add(r, o, next, K(4), 1, false, all, NULL);
        tf_publish_role(r, name, 1, o, K(4));
    }
    tf_publish(r, 1, 1, 1);
    char a[128], b[128], st[128], rootf[128], dest[128], ua[160], ub[160], err[512] = "";
    snprintf(a, sizeof a, "%s/a", g_dir);
    snprintf(b, sizeof b, "%s/b", g_dir);
    snprintf(st, sizeof st, "%s/state", g_dir);
    snprintf(rootf, sizeof rootf, "%s/root.json", g_dir);
    snprintf(dest, sizeof dest, "%s/out", g_dir);
    put_mirror(r, a, "deep");
    put_mirror(r, b, "deep");
    const tf_file *root = tf_get(r, "1.root.json");
    write_file(rootf, root->data, root->len);
    assert_int_equal(rhine_state_init(st, rootf, err, sizeof err), RHINE_OK);
    snprintf(ua, sizeof ua, "file://%s", a);
    snprintf(ub, sizeof ub, "file://%s", b);
    rhine_mirror ms[2] = {{.url = ua}, {.url = ub}};
    rhine_client_opts o = {.state_dir = st, .mirrors = ms, .nmirrors = 2};
    rhine_client *c = NULL;
    assert_int_equal(rhine_client_new(&o, &c, err, sizeof err), RHINE_OK);
    assert_int_equal(rhine_client_fetch(c, "deep", dest, NULL, NULL), RHINE_ERR_TOO_BIG);
    assert_non_null(strstr(rhine_client_errmsg(c), "search stopped"));
    assert_int_equal(access(dest, F_OK), -1);
    /* With b gone, the update must still find a (not banned). */
    char ts[192];
    snprintf(ts, sizeof ts, "%s/metadata/timestamp.json", b);
    assert_int_equal(unlink(ts), 0);
    if (rhine_client_update(c) != RHINE_OK)
        fail_msg("update after the depth limit: %s", rhine_client_errmsg(c));
    rhine_client_free(c);
    tf_free(r);
}

/* A state file (or pinned root) that is not a regular file is an I/O error, not a hang. */
static void test_state_read_fifo(void **state)
{
    (void)state;
    char p[128];
    snprintf(p, sizeof p, "%s/timestamp.json", g_dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    rh_buf b;
    rh_buf_init(&b, 1024);
    rh_error e;
    rh_error_clear(&e);
    alarm(10); /* a blocking open() kills the test instead of hanging it */
    assert_int_equal(rh_state_read(p, 1024, &b, &e), RH_EIO);
    alarm(0);
    assert_non_null(strstr(e.msg, "not a regular file"));
    rh_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delegated_metadata_failover, setup, teardown),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test_setup_teardown(test_state_read_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delegation_depth_bans_no_mirror, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
