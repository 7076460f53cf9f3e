/* test_witness.c -- the mirror's witness decisions from bytes: metadata logged or not, a
 * checkpoint judged against the last accepted one (first, same, grew, shrunk, forked, rewritten,
 * bad tiles that are no evidence), cosignature line replacement, evidence files, state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "manifest/hash.h"
#include "manifest/keys.h"
#include "manifest/merkle.h"
#include "manifest/note.h"
#include "mirror/mfs.h"
#include "mirror/state.h"
#include "mirror/witness.h"

#define ORIGIN "rhine.test/log"
#define MAXF 8

/* An in-memory log of fewer than 256 entries: one bundle, one level-0 tile, a signed note. */
typedef struct memlog {
    char path[MAXF][RH_TILE_PATH_MAX + 8];
    rh_buf file[MAXF];
    size_t nfiles;
    rh_buf note;
    bool flip_once; /* the next read of the level-0 tile returns it with one bit flipped */
} memlog;

static rh_privkey *logsk;
static rh_note_key logkey;

static void entry(int seed, uint64_t version, rh_buf *out)
{
    uint8_t h[32];
    char hex[65], text[256];
    snprintf(text, sizeof text, "payload %d", seed);
    assert_int_equal(rh_hash_once(RH_SHA256, text, strlen(text), h), RH_OK);
    rh_hex_encode(h, 32, hex);
    assert_int_equal(rh_buf_appendf(out, "{\"length\":%zu,\"role\":\"targets\",\"sha256\":\"%s\","
                                    "\"version\":%llu}", strlen(text), hex,
                                    (unsigned long long)version),
                     RH_OK);
}

/* Entries seeds[0..n) as targets versions 1..n. */
static void memlog_make(memlog *m, const int *seeds, unsigned n)
{
    memset(m, 0, sizeof *m);
    rh_buf_init(&m->note, RH_NOTE_MAX_BYTES);
    rh_merkle_tree t;
    rh_merkle_tree_init(&t);
    rh_buf bundle, tile, text;
    rh_buf_init(&bundle, 1 << 20);
    rh_buf_init(&tile, 1 << 20);
    rh_buf_init(&text, 4096);
    for (unsigned i = 0; i < n; i++) {
        rh_buf en;
        rh_buf_init(&en, 4096);
        entry(seeds[i], i + 1, &en);
        uint8_t len2[2] = {(uint8_t)(en.len >> 8), (uint8_t)en.len};
        uint8_t leaf[32];
        assert_int_equal(rh_buf_append(&bundle, len2, 2), RH_OK);
        assert_int_equal(rh_buf_append(&bundle, en.data, en.len), RH_OK);
        assert_int_equal(rh_merkle_leaf_hash(en.data, en.len, leaf), RH_OK);
        assert_int_equal(rh_buf_append(&tile, leaf, 32), RH_OK);
        assert_int_equal(rh_merkle_tree_append(&t, leaf, NULL, NULL), RH_OK);
        rh_buf_cleanup(&en);
    }
    char rel[RH_TILE_PATH_MAX];
    assert_int_equal(rh_tile_path(-1, 0, n, rel, sizeof rel), RH_OK);
    snprintf(m->path[0], sizeof m->path[0], "log/%s", rel);
    m->file[0] = bundle;
    assert_int_equal(rh_tile_path(0, 0, n, rel, sizeof rel), RH_OK);
    snprintf(m->path[1], sizeof m->path[1], "log/%s", rel);
    m->file[1] = tile;
    m->nfiles = 2;
    rh_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    snprintf(cp.origin, sizeof cp.origin, ORIGIN);
    cp.size = n;
    assert_int_equal(rh_merkle_tree_root(&t, cp.root), RH_OK);
    assert_int_equal(rh_checkpoint_format(&cp, &text), RH_OK);
    assert_int_equal(rh_buf_append(&m->note, text.data, text.len), RH_OK);
    assert_int_equal(rh_buf_appendc(&m->note, '\n'), RH_OK);
    assert_int_equal(rh_note_sign(text.data, text.len, ORIGIN, logsk, &m->note, NULL), RH_OK);
    rh_buf_cleanup(&text);
}

static void memlog_free(memlog *m)
{
    for (size_t i = 0; i < m->nfiles; i++)
        rh_buf_cleanup(&m->file[i]);
    rh_buf_cleanup(&m->note);
}

static rh_err mem_get(void *ctx, const char *path, size_t max, rh_buf *out, rh_error *e)
{
    memlog *m = ctx;
    rh_buf_reset(out);
    for (size_t i = 0; i < m->nfiles; i++)
        if (strcmp(m->path[i], path) == 0) {
            if (m->file[i].len > max)
                return rh_fail(e, RH_ETOOBIG, "%s: too big", path);
            rh_err rc = rh_buf_append(out, m->file[i].data, m->file[i].len);
            if (rc == RH_OK && i == 1 && m->flip_once) {
                m->flip_once = false;
                out->data[40] ^= 1;
            }
            return rc;
        }
    return rh_fail(e, RH_ENOTFOUND, "%s: HTTP 404", path);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(rh_privkey_generate(&logsk, NULL), RH_OK);
    assert_int_equal(rh_note_key_from_privkey(logsk, ORIGIN, RH_NOTE_TYPE_ED25519, &logkey,
                                              NULL),
                     RH_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rh_privkey_free(logsk);
    return 0;
}

/* judge(old, cur) with cur's files as the source. */
static rh_err judge(const memlog *old, memlog *cur, rh_witness_verdict *v, rh_error *why)
{
    rh_log_src src = {mem_get, cur};
    rh_error e;
    rh_error_clear(&e);
    rh_error_clear(why);
    rh_err rc = rh_witness_judge(&src, &logkey, old ? old->note.data : NULL,
                                 old ? old->note.len : 0, cur->note.data, cur->note.len, v, why,
                                 &e);
    if (rc != RH_OK)
        snprintf(why->msg, sizeof why->msg, "%s", e.msg);
    return rc;
}

static void test_judge(void **state)
{
    (void)state;
    static const int a3[] = {1, 2, 3}, b5[] = {1, 2, 3, 4, 5}, f3[] = {1, 2, 9},
                     c5[] = {7, 2, 3, 4, 5};
    memlog a, b, f, c;
    memlog_make(&a, a3, 3);
    memlog_make(&b, b5, 5);
    memlog_make(&f, f3, 3);
    memlog_make(&c, c5, 5);
    rh_witness_verdict v;
    rh_error why;
    assert_int_equal(judge(NULL, &a, &v, &why), RH_OK);
    assert_int_equal(v, RH_WITNESS_FIRST);
    assert_int_equal(judge(&a, &a, &v, &why), RH_OK);
    assert_int_equal(v, RH_WITNESS_SAME);
    assert_int_equal(judge(&a, &b, &v, &why), RH_OK);
    assert_int_equal(v, RH_WITNESS_GREW);
    /* Shrunk: 5 accepted, 3 now. */
    assert_int_equal(judge(&b, &a, &v, &why), RH_OK);
    assert_int_equal(v, RH_WITNESS_INCONSISTENT);
    assert_non_null(strstr(why.msg, "the log shrank: old checkpoint 5 entries"));
    /* Forked: same size, another root. */
    assert_int_equal(judge(&a, &f, &v, &why), RH_OK);
    assert_int_equal(v, RH_WITNESS_INCONSISTENT);
    assert_non_null(strstr(why.msg, "the log was rewritten"));
    /* Rewritten and longer: the new tree verifies on its own, the old is not its prefix. */
    assert_int_equal(judge(&a, &c, &v, &why), RH_OK);
    assert_int_equal(v, RH_WITNESS_INCONSISTENT);
    assert_non_null(strstr(why.msg, "old checkpoint 3 entries"));
    /* A broken tile of an honest extension is the upstream's fault, never evidence. */
    b.file[1].data[40] ^= 1;
    v = (rh_witness_verdict)99;
    rh_err rc = judge(&a, &b, &v, &why);
    assert_int_equal(rc, RH_EHASH);
    assert_int_equal(v, 99);
    assert_non_null(strstr(why.msg, "does not match its signed checkpoint"));
    b.file[1].data[40] ^= 1;
    /* A tile that is bad for the proof and good for the replay: still the upstream's fault (the
     * whole tree verifies and begins with the accepted one), never evidence. */
    b.flip_once = true;
    v = (rh_witness_verdict)99;
    rc = judge(&a, &b, &v, &why);
    assert_int_equal(rc, RH_EHASH);
    assert_int_equal(v, 99);
    assert_false(b.flip_once); /* the flipped read happened */
    assert_non_null(strstr(why.msg, "changed between reads"));
    /* Missing tiles: a fetch error, no verdict. */
    b.nfiles = 1;
    assert_int_equal(judge(&a, &b, &v, &why), RH_ENOTFOUND);
    b.nfiles = 2;
    /* Signed by another key: refused before any judgement. */
    rh_privkey *other = NULL;
    assert_int_equal(rh_privkey_generate(&other, NULL), RH_OK);
    rh_buf forged;
    rh_buf_init(&forged, RH_NOTE_MAX_BYTES);
    const char *nl = memchr(b.note.data, '\n', b.note.len);
    size_t textlen = 0;
    for (size_t i = 0; i + 1 < b.note.len; i++)
        if (b.note.data[i] == '\n' && b.note.data[i + 1] == '\n') {
            textlen = i + 1;
            break;
        }
    assert_non_null(nl);
    assert_int_equal(rh_buf_append(&forged, b.note.data, textlen), RH_OK);
    assert_int_equal(rh_buf_appendc(&forged, '\n'), RH_OK);
    assert_int_equal(rh_note_sign(b.note.data, textlen, ORIGIN, other, &forged, NULL), RH_OK);
    rh_buf keep = b.note;
    b.note = forged;
    assert_int_equal(judge(&a, &b, &v, &why), RH_ESIG);
    b.note = keep;
    rh_buf_cleanup(&forged);
    rh_privkey_free(other);
    memlog_free(&a);
    memlog_free(&b);
    memlog_free(&f);
    memlog_free(&c);
}

static void test_check_logged(void **state)
{
    (void)state;
    static const int s3[] = {1, 2, 3};
    memlog m;
    memlog_make(&m, s3, 3);
    rh_log_src src = {mem_get, &m};
    rh_log_keys keys;
    memset(&keys, 0, sizeof keys);
    keys.log = logkey;
    rh_log_view *view = NULL;
    assert_int_equal(rh_log_read_note(&src, &keys, m.note.data, m.note.len, "cp", &view, NULL),
                     RH_OK);
    const char *p2 = "payload 2";
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_witness_check_logged(view, "targets", 2, "2.targets.json",
                                             (const uint8_t *)p2, strlen(p2), &e),
                     RH_OK);
    /* Not logged: another version, another role. */
    assert_int_equal(rh_witness_check_logged(view, "targets", 4, "4.targets.json",
                                             (const uint8_t *)p2, strlen(p2), &e),
                     RH_ELOG);
    assert_string_equal(e.msg, "metadata/4.targets.json: not in the transparency log (targets "
                               "version 4 has no entry among the 3 of checkpoint "
                               "rhine.test/log)");
    rh_error_clear(&e);
    assert_int_equal(rh_witness_check_logged(view, "snapshot", 2, "2.snapshot.json",
                                             (const uint8_t *)p2, strlen(p2), &e),
                     RH_ELOG);
    assert_non_null(strstr(e.msg, "not in the transparency log"));
    /* Same length, other bytes; other length. */
    const char *q2 = "payload 3";
    rh_error_clear(&e);
    assert_int_equal(rh_witness_check_logged(view, "targets", 2, "2.targets.json",
                                             (const uint8_t *)q2, strlen(q2), &e),
                     RH_ELOG);
    assert_non_null(strstr(e.msg, "metadata/2.targets.json: differs from the transparency log: "
                                  "verified 9 bytes sha256 "));
    assert_non_null(strstr(e.msg, "log entry 1 says 9 bytes sha256 "));
    rh_error_clear(&e);
    assert_int_equal(rh_witness_check_logged(view, "targets", 2, "2.targets.json",
                                             (const uint8_t *)p2, strlen(p2) - 1, &e),
                     RH_ELOG);
    assert_non_null(strstr(e.msg, "verified 8 bytes"));
    rh_log_view_free(view);
    memlog_free(&m);
}

static size_t count(const char *hay, size_t n, const char *needle)
{
    size_t k = 0, l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (memcmp(hay + i, needle, l) == 0)
            k++;
    return k;
}

static void test_cosign_replaces_own_line(void **state)
{
    (void)state;
    static const int s3[] = {1, 2, 3};
    memlog m;
    memlog_make(&m, s3, 3);
    rh_privkey *up = NULL, *me = NULL;
    rh_note_key upk, mek;
    assert_int_equal(rh_privkey_generate(&up, NULL), RH_OK);
    assert_int_equal(rh_privkey_generate(&me, NULL), RH_OK);
    assert_int_equal(rh_witness_cosign_note(m.note.data, m.note.len, &logkey, me, 1, &m.note,
                                            NULL),
                     RH_EINVAL); /* not a cosignature key */
    assert_int_equal(rh_note_key_from_privkey(up, "up.test/w", RH_NOTE_TYPE_COSIG_V1, &upk,
                                              NULL),
                     RH_OK);
    assert_int_equal(rh_note_key_from_privkey(me, "me.test/w", RH_NOTE_TYPE_COSIG_V1, &mek,
                                              NULL),
                     RH_OK);
    assert_false(rh_witness_note_has(m.note.data, m.note.len, &mek));
    rh_buf n1, n2, n3;
    rh_buf_init(&n1, RH_NOTE_MAX_BYTES);
    rh_buf_init(&n2, RH_NOTE_MAX_BYTES);
    rh_buf_init(&n3, RH_NOTE_MAX_BYTES);
    /* The upstream witness cosigns, then we do, then we do again later. */
    assert_int_equal(rh_witness_cosign_note(m.note.data, m.note.len, &upk, up, 100, &n1, NULL),
                     RH_OK);
    assert_true(n1.len > m.note.len && memcmp(n1.data, m.note.data, m.note.len) == 0);
    assert_int_equal(rh_witness_cosign_note(n1.data, n1.len, &mek, me, 200, &n2, NULL), RH_OK);
    assert_true(memcmp(n2.data, n1.data, n1.len) == 0); /* earlier lines kept, in order */
    assert_true(rh_witness_note_has(n2.data, n2.len, &mek));
    assert_int_equal(rh_witness_cosign_note(n2.data, n2.len, &mek, me, 300, &n3, NULL), RH_OK);
    assert_int_equal(n3.len, n2.len);
    assert_true(memcmp(n3.data, n1.data, n1.len) == 0);
    assert_int_equal(count((const char *)n3.data, n3.len, "me.test/w"), 1);
    assert_int_equal(count((const char *)n3.data, n3.len, "up.test/w"), 1);
    /* Every line verifies, ours with the newer time. */
    rh_note *parsed = NULL;
    assert_int_equal(rh_note_parse(n3.data, n3.len, "n3", &parsed, NULL), RH_OK);
    assert_int_equal(parsed->nsigs, 3);
    rh_note_key keys[3] = {logkey, upk, mek};
    rh_note_result res[3];
    for (int i = 0; i < 3; i++)
        keys[i].required = true;
    assert_int_equal(rh_note_verify(parsed, keys, 3, res, "n3", NULL), RH_OK);
    assert_int_equal(res[1].timestamp, 100);
    assert_int_equal(res[2].timestamp, 300);
    rh_note_free(parsed);
    /* Malformed input. */
    assert_int_equal(rh_witness_cosign_note((const uint8_t *)"x\n", 2, &mek, me, 1, &n1, NULL),
                     RH_EPARSE);
    rh_buf_cleanup(&n1);
    rh_buf_cleanup(&n2);
    rh_buf_cleanup(&n3);
    rh_privkey_free(up);
    rh_privkey_free(me);
    memlog_free(&m);
}

static void test_evidence_never_overwritten_and_state(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/rh-witness-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char d1[512], d2[512], p[1024];
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_witness_evidence_write(dir, (const uint8_t *)"old\n", 4,
                                               (const uint8_t *)"new\n", 4, "http://up",
                                               "the log shrank", 1700000000, d1, sizeof d1, &e),
                     RH_OK);
    assert_int_equal(rh_witness_evidence_write(dir, (const uint8_t *)"OLD\n", 4,
                                               (const uint8_t *)"NEW\n", 4, "http://up", "fork",
                                               1700000000, d2, sizeof d2, &e),
                     RH_OK);
    snprintf(p, sizeof p, "%s/evidence/20231114T221320Z", dir);
    assert_string_equal(d1, p);
    snprintf(p, sizeof p, "%s/evidence/20231114T221320Z-1", dir);
    assert_string_equal(d2, p);
    rh_buf b;
    rh_buf_init(&b, 4096);
    snprintf(p, sizeof p, "%s/old-checkpoint", d1);
    assert_int_equal(rh_mfs_read(p, 4096, &b, NULL), RH_OK);
    assert_memory_equal(b.data, "old\n", 4);
    rh_buf_reset(&b);
    snprintf(p, sizeof p, "%s/reason", d1);
    assert_int_equal(rh_mfs_read(p, 4096, &b, NULL), RH_OK);
    assert_non_null(strstr((const char *)b.data, "reason: the log shrank\n"));
    rh_log_status ls;
    rh_witness_status(dir, &ls);
    assert_int_equal(ls.nevidence, 2);
    assert_string_equal(ls.evidence[1], d2);
    assert_false(ls.inconsistent);

    /* State: the accepted checkpoint and the refusal survive a round trip; reset clears them. */
    snprintf(p, sizeof p, "%s/state.json", dir);
    rh_mirror_state st;
    memset(&st, 0, sizeof st);
    st.last_success = 5;
    st.log_checkpoint = strdup("cp\n");
    st.log_inconsistent = strdup(d1);
    assert_int_equal(rh_mirror_state_save(p, &st, NULL), RH_OK);
    rh_mirror_state_cleanup(&st);
    assert_int_equal(rh_mirror_state_load(p, &st, NULL), RH_OK);
    assert_string_equal(st.log_checkpoint, "cp\n");
    assert_string_equal(st.log_inconsistent, d1);
    rh_mirror_state_cleanup(&st);
    rh_witness_status(dir, &ls);
    assert_true(ls.inconsistent);
    assert_string_equal(ls.marker, d1);
    snprintf(p, sizeof p, "%s/.lock", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(rh_witness_log_reset(dir, &e), RH_OK);
    rh_witness_status(dir, &ls);
    assert_false(ls.inconsistent);
    assert_false(ls.has_checkpoint);
    assert_int_equal(ls.nevidence, 2); /* evidence stays */
    snprintf(p, sizeof p, "%s/state.json", dir);
    assert_int_equal(rh_mirror_state_load(p, &st, NULL), RH_OK);
    assert_null(st.log_checkpoint);
    assert_int_equal(st.last_success, 5);
    rh_mirror_state_cleanup(&st);
    /* A state file with a non-text log_checkpoint is refused. */
    static const char bad[] = "{\"superseded\":{},\"last_success\":1,\"log_checkpoint\":3}";
    assert_int_equal(rh_mfs_write(p, bad, strlen(bad), NULL), RH_OK);
    assert_int_equal(rh_mirror_state_load(p, &st, NULL), RH_EPARSE);
    rh_buf_cleanup(&b);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s", dir);
    /* Clean up the temporary tree. */
    char **v = NULL;
    size_t n = 0;
    assert_int_equal(rh_mfs_list(dir, "evidence", &v, &n, NULL), RH_OK);
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, v[i]);
        unlink(p);
    }
    rh_mfs_strv_free(v, n);
    snprintf(p, sizeof p, "%s/evidence", dir);
    rh_mfs_prune_dirs(p);
    rmdir(p);
    snprintf(p, sizeof p, "%s/state.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/.lock", dir);
    unlink(p);
    assert_int_equal(rmdir(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_judge),
        cmocka_unit_test(test_check_logged),
        cmocka_unit_test(test_cosign_replaces_own_line),
        cmocka_unit_test(test_evidence_never_overwritten_and_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
