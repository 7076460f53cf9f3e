/* test_quorum.c -- the client's transparency decisions: key checks, grouping by checkpoint
 * text, cosignatures united across mirrors (duplicates, unknown and bad lines), the quorum
 * choice, the merged note, the split-view evidence and inclusion of exact bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/quorum.h"
#include "manifest/hash.h"
#include "manifest/keys.h"
#include "rhine/client.h"

#define LOGNAME "rhine.example/log"
#define TS 1700000000u

typedef struct fixture {
    rh_privkey *logsk, *othersk, *wsk[3], *strangersk;
    rh_log_keys keys;
} fixture;

static fixture F;

static int setup(void **state)
{
    (void)state;
    rh_error e;
    rh_error_clear(&e);
    memset(&F, 0, sizeof(F));
    if (rh_privkey_generate(&F.logsk, &e) != RH_OK ||
        rh_privkey_generate(&F.othersk, &e) != RH_OK ||
        rh_privkey_generate(&F.strangersk, &e) != RH_OK)
        return -1;
    if (rh_note_key_from_privkey(F.logsk, LOGNAME, RH_NOTE_TYPE_ED25519, &F.keys.log, &e) != RH_OK)
        return -1;
    static const char *const names[3] = {"w1", "w2", "w3"};
    for (int i = 0; i < 3; i++)
        if (rh_privkey_generate(&F.wsk[i], &e) != RH_OK ||
            rh_note_key_from_privkey(F.wsk[i], names[i], RH_NOTE_TYPE_COSIG_V1,
                                     &F.keys.witnesses[i], &e) != RH_OK)
            return -1;
    F.keys.nwitnesses = 3;
    F.keys.quorum = 2;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rh_privkey_free(F.logsk);
    rh_privkey_free(F.othersk);
    rh_privkey_free(F.strangersk);
    for (int i = 0; i < 3; i++)
        rh_privkey_free(F.wsk[i]);
    return 0;
}

/* Checkpoint text of a tree of size with a root made of byte fill. */
static void cp_text(uint64_t size, uint8_t fill, rh_buf *out)
{
    rh_checkpoint c;
    memset(&c, 0, sizeof(c));
    snprintf(c.origin, sizeof(c.origin), "%s", LOGNAME);
    c.size = size;
    memset(c.root, fill, sizeof(c.root));
    assert_int_equal(rh_checkpoint_format(&c, out), RH_OK);
}

/* Witness selectors for make_note: W(i) cosigns; BAD(i) a line of w_i over another text;
 * STRANGER a line named w2 by another key. */
#define W(i) (i)
#define BAD(i) (10 + (i))
#define STRANGER 20
#define END (-1)

/* A note: text (size, fill) signed by the log key (or another key named like it when
 * forged), then the listed cosignature lines. */
static void make_note(rh_buf *out, uint64_t size, uint8_t fill, bool forged, ...)
{
    rh_error e;
    rh_error_clear(&e);
    rh_buf text;
    rh_buf_init(&text, RH_NOTE_MAX_BYTES);
    cp_text(size, fill, &text);
    assert_int_equal(rh_buf_append(out, text.data, text.len), RH_OK);
    assert_int_equal(rh_buf_appendc(out, '\n'), RH_OK);
    assert_int_equal(
        rh_note_sign(text.data, text.len, LOGNAME, forged ? F.othersk : F.logsk, out, &e), RH_OK);
    va_list ap;
    va_start(ap, forged);
    for (int s = va_arg(ap, int); s != END; s = va_arg(ap, int)) {
        static const char other[] = "another.example/log\n1\n"
                                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        if (s < 10)
            assert_int_equal(rh_note_cosign(text.data, text.len, F.keys.witnesses[s].name, F.wsk[s],
                                            TS, out, &e),
                             RH_OK);
        else if (s < 20)
            assert_int_equal(rh_note_cosign((const uint8_t *)other, strlen(other),
                                            F.keys.witnesses[s - 10].name, F.wsk[s - 10], TS, out,
                                            &e),
                             RH_OK);
        else
            assert_int_equal(rh_note_cosign(text.data, text.len, "w2", F.strangersk, TS, out, &e),
                             RH_OK);
    }
    va_end(ap);
    rh_buf_cleanup(&text);
}

static void add(rh_wit *w, const char *label, const rh_buf *note)
{
    assert_int_equal(rh_wit_add(w, label, note->data, note->len, NULL), RH_OK);
}

static void add_note(rh_wit *w, const char *label, uint64_t size, uint8_t fill, bool forged, int a,
                     int b, int c)
{
    rh_buf n;
    rh_buf_init(&n, RH_NOTE_MAX_BYTES);
    make_note(&n, size, fill, forged, a, b, c, END);
    add(w, label, &n);
    rh_buf_cleanup(&n);
}

static void test_keys_check_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int change;
    } cases[] = {
        {"valid", 0},
        {"log key of type 0x04", 1},
        {"witness of type 0x01", 2},
        {"witness twice", 3},
        {"quorum 0", 4},
        {"quorum above the keys", 5},
        {"no witnesses", 6},
        {"too many witnesses", 7},
        {"one public key under two names", 8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rh_log_keys k = F.keys;
        switch (cases[i].change) {
        case 1: k.log.type = RH_NOTE_TYPE_COSIG_V1; break;
        case 2: k.witnesses[1].type = RH_NOTE_TYPE_ED25519; break;
        case 3: k.witnesses[2] = k.witnesses[0]; break;
        case 4: k.quorum = 0; break;
        case 5: k.quorum = 4; break;
        case 6: k.nwitnesses = 0; break;
        case 7: k.nwitnesses = RH_LOGV_MAX_WITNESSES + 1; break;
        case 8:
            memcpy(k.witnesses[2].pub, k.witnesses[0].pub, sizeof k.witnesses[2].pub);
            break;
        default: break;
        }
        rh_error e;
        rh_error_clear(&e);
        rh_err want = cases[i].change == 0 ? RH_OK : RH_EINVAL;
        if (rh_wit_keys_check(&k, &e) != want)
            fail_msg("%s: got %s", cases[i].name, e.msg);
        rh_wit w;
        memset(&w, 0, sizeof(w));
        assert_int_equal(rh_wit_init(&w, &k, &e), want);
        rh_wit_cleanup(&w);
    }
}

/* Two mirrors, one cosignature each, the same text: one group with both witnesses. */
static void test_union_across_mirrors(void **state)
{
    (void)state;
    rh_wit w;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_wit_init(&w, &F.keys, &e), RH_OK);
    add_note(&w, "http://a", 5, 0x11, false, W(0), END, END);
    add_note(&w, "http://b", 5, 0x11, false, W(1), END, END);
    assert_int_equal(w.ng, 1);
    assert_int_equal(w.nobs, 2);
    assert_int_equal(w.g[0].nmirrors, 2);
    assert_int_equal(rh_wit_count(&w, 0), 2);
    assert_int_equal(w.obs[0].cosigned, 1);
    assert_int_equal(w.obs[1].cosigned, 2);
    size_t gi = 99;
    assert_true(rh_wit_choose(&w, &gi));
    assert_int_equal(gi, 0);

    /* The merged note: text, blank line, the log's line, w1's line, w2's line; it verifies
     * under the quorum on its own. */
    rh_buf m, want;
    rh_buf_init(&m, 2 * RH_NOTE_MAX_BYTES);
    rh_buf_init(&want, 2 * RH_NOTE_MAX_BYTES);
    assert_int_equal(rh_wit_note(&w, 0, &m), RH_OK);
    make_note(&want, 5, 0x11, false, W(0), W(1), END);
    assert_int_equal(m.len, want.len);
    assert_memory_equal(m.data, want.data, m.len);
    rh_checkpoint cp;
    memset(&cp, 0, sizeof(cp));
    size_t ncosig = 0;
    assert_int_equal(rh_log_checkpoint_verify(m.data, m.len, "merged", &F.keys, &cp, &ncosig, &e),
                     RH_OK);
    assert_int_equal(ncosig, 2);
    assert_int_equal(cp.size, 5);
    rh_checkpoint_cleanup(&cp);
    assert_int_equal(rh_wit_note(&w, 1, &m), RH_EINVAL);
    rh_buf_cleanup(&m);
    rh_buf_cleanup(&want);
    rh_wit_cleanup(&w);
}

/* Duplicates count once; a stranger's line under a witness name is ignored; a bad line of a
 * known witness before any good one makes it not count and is named (a bad line after a good
 * one is skipped, as Go's note package does); a forged log signature makes no group. */
static void test_counting_duplicates_unknown_bad(void **state)
{
    (void)state;
    rh_wit w;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_wit_init(&w, &F.keys, &e), RH_OK);
    add_note(&w, "http://dup", 5, 0x22, false, W(0), W(0), W(0));
    add_note(&w, "http://stranger", 5, 0x22, false, STRANGER, END, END);
    add_note(&w, "http://bad", 5, 0x22, false, BAD(1), END, END);
    add_note(&w, "http://goodandbad", 5, 0x22, false, W(0), BAD(0), END);
    add_note(&w, "http://badandgood", 5, 0x22, false, BAD(2), W(2), END);
    add_note(&w, "http://forged", 5, 0x22, true, W(1), W(2), END);
    rh_error fe;
    rh_error_clear(&fe);
    rh_fail(&fe, RH_ENET, "http://down/log/checkpoint: HTTP 503");
    assert_int_equal(rh_wit_add(&w, "http://down", NULL, 0, &fe), RH_OK);
    static const uint8_t junk[] = "not a note";
    assert_int_equal(rh_wit_add(&w, "http://junk", junk, sizeof(junk) - 1, NULL), RH_OK);

    assert_int_equal(w.nobs, 8);
    assert_int_equal(w.ng, 1);
    assert_int_equal(w.g[0].nmirrors, 5);
    assert_int_equal(rh_wit_count(&w, 0), 1); /* w1 only, however many lines */
    assert_int_equal(w.obs[0].cosigned, 1);
    assert_int_equal(w.obs[1].cosigned | w.obs[1].badsig, 0);
    assert_int_equal(w.obs[2].cosigned, 0);
    assert_int_equal(w.obs[2].badsig, 2);
    assert_int_equal(w.obs[3].cosigned, 1);
    assert_int_equal(w.obs[3].badsig, 0);
    assert_int_equal(w.obs[4].cosigned, 0); /* w3's first line failed: not counted */
    assert_int_equal(w.obs[4].badsig, 4);
    assert_int_equal(w.obs[5].err, RH_ESIG);
    assert_int_equal(w.obs[6].err, RH_ENET);
    assert_int_equal(w.obs[7].err, RH_EPARSE);
    size_t gi = 99;
    assert_false(rh_wit_choose(&w, &gi));
    assert_int_equal(gi, 99);

    char ev[4096];
    rh_wit_evidence(&w, ev, sizeof(ev));
    char root[65];
    uint8_t r[32];
    memset(r, 0x22, sizeof(r));
    rh_hex_encode(r, sizeof(r), root);
    char want[1024];
    snprintf(want, sizeof(want),
             "http://dup: size 5 root %.8s cosigned by w1; "
             "http://stranger: size 5 root %.8s cosigned by no witness; "
             "http://bad: size 5 root %.8s cosigned by no witness (bad cosignature: w2); "
             "http://goodandbad: size 5 root %.8s cosigned by w1; "
             "http://badandgood: size 5 root %.8s cosigned by no witness (bad cosignature: w3); "
             "http://forged: ",
             root, root, root, root, root);
    if (strncmp(ev, want, strlen(want)) != 0)
        fail_msg("evidence:\n%s\nwant prefix:\n%s", ev, want);
    assert_non_null(
        strstr(ev, "; http://down: http://down/log/checkpoint: HTTP 503; http://junk: "));

    /* Cut to the buffer, NUL-terminated. */
    char small[16];
    rh_wit_evidence(&w, small, sizeof(small));
    assert_int_equal(strlen(small), 15);
    assert_memory_equal(small, "http://dup: siz", 15);
    rh_wit_cleanup(&w);

    rh_wit none;
    assert_int_equal(rh_wit_init(&none, &F.keys, &e), RH_OK);
    rh_wit_evidence(&none, ev, sizeof(ev));
    assert_string_equal(ev, "no mirror serves a log");
    rh_wit_cleanup(&none);
}

/* Which checkpoint wins. */
static void test_choose_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t quorum;
        struct {
            uint64_t size;
            uint8_t fill;
            int a, b, c;
        } m[3];
        size_t nm;
        bool found;
        uint8_t want_fill;
    } cases[] = {
        {"larger with quorum wins",
         2,
         {{5, 1, W(0), W(1), END}, {7, 2, W(0), W(1), END}},
         2,
         true,
         2},
        {"larger without quorum loses",
         2,
         {{5, 1, W(0), W(1), END}, {7, 2, W(2), END, END}},
         2,
         true,
         1},
        {"split view, one witness each",
         2,
         {{7, 1, W(0), END, END}, {7, 2, W(1), END, END}},
         2,
         false,
         0},
        {"split view, quorum 1: first seen",
         1,
         {{7, 1, W(0), END, END}, {7, 2, W(1), END, END}},
         2,
         true,
         1},
        {"equal size: more witnesses",
         1,
         {{7, 1, W(0), END, END}, {7, 2, W(1), W(2), END}},
         2,
         true,
         2},
        {"united over three mirrors",
         3,
         {{9, 3, W(0), END, END}, {9, 3, W(1), END, END}, {9, 3, W(2), END, END}},
         3,
         true,
         3},
        {"none reaches 3",
         3,
         {{9, 3, W(0), END, END}, {9, 3, W(1), END, END}, {9, 4, W(2), END, END}},
         3,
         false,
         0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rh_log_keys k = F.keys;
        k.quorum = cases[i].quorum;
        rh_wit w;
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_wit_init(&w, &k, &e), RH_OK);
        for (size_t j = 0; j < cases[i].nm; j++)
            add_note(&w, "http://m", cases[i].m[j].size, cases[i].m[j].fill, false, cases[i].m[j].a,
                     cases[i].m[j].b, cases[i].m[j].c);
        size_t gi = 99;
        bool found = rh_wit_choose(&w, &gi);
        if (found != cases[i].found)
            fail_msg("%s: found %d", cases[i].name, found);
        if (found && w.g[gi].root[0] != cases[i].want_fill)
            fail_msg("%s: chose root fill %u", cases[i].name, w.g[gi].root[0]);
        rh_wit_cleanup(&w);
    }
}

static void test_inclusion(void **state)
{
    (void)state;
    static const uint8_t snap[] = "{\"signed\":{\"version\":3}}";
    static const uint8_t tg[] = "{\"signed\":{\"version\":4}}";
    rh_log_ventry ent[3];
    memset(ent, 0, sizeof(ent));
    ent[0].role = "root";
    ent[0].version = 1;
    ent[1].role = "snapshot";
    ent[1].version = 3;
    ent[1].length = sizeof(snap) - 1;
    assert_int_equal(rh_hash_once(RH_SHA256, snap, sizeof(snap) - 1, ent[1].sha256), RH_OK);
    ent[2].role = "targets";
    ent[2].version = 4;
    ent[2].length = sizeof(tg) - 1;
    assert_int_equal(rh_hash_once(RH_SHA256, tg, sizeof(tg) - 1, ent[2].sha256), RH_OK);
    rh_log_view v;
    memset(&v, 0, sizeof(v));
    v.size = 3;
    v.ent = ent;

    static const struct {
        const char *name, *role;
        uint64_t version;
        const uint8_t *p;
        size_t n;
        rh_err want;
        const char *msg;
    } cases[] = {
        {"snapshot logged", "snapshot", 3, snap, sizeof(snap) - 1, RH_OK, ""},
        {"targets logged", "targets", 4, tg, sizeof(tg) - 1, RH_OK, ""},
        {"version not logged", "targets", 5, tg, sizeof(tg) - 1, RH_ELOG,
         "unlogged: X.json: role targets version 5 is not in the log (checkpoint size 3)"},
        {"role not logged", "team/a", 4, tg, sizeof(tg) - 1, RH_ELOG,
         "unlogged: X.json: role team/a version 4 is not in the log"},
        {"other bytes, same length", "targets", 4, snap, sizeof(snap) - 1, RH_ELOG,
         "unlogged: X.json: served 24 bytes sha256 "},
        {"one byte more", "snapshot", 3, snap, sizeof(snap), RH_ELOG,
         "unlogged: X.json: served 25 bytes"},
        {"truncated", "snapshot", 3, snap, 10, RH_ELOG, "unlogged: X.json: served 10 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_wit_included(&v, cases[i].role, cases[i].version, "X.json", cases[i].p,
                                    cases[i].n, &e);
        if (rc != cases[i].want || strncmp(e.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("%s: %s: %s", cases[i].name, rh_err_name(rc), e.msg);
    }
}

/* The public switch: keys as vkey strings, checked before anything is fetched. */
static void test_set_witnesses(void **state)
{
    (void)state;
    char dir[] = "/tmp/rhine-test-witness-XXXXXX";
    assert_non_null(mkdtemp(dir));
    rhine_mirror m = {.url = "http://127.0.0.1:9"};
    rhine_client_opts o = {.state_dir = dir, .mirrors = &m, .nmirrors = 1};
    rhine_client *c = NULL;
    assert_int_equal(rhine_client_new(&o, &c, NULL, 0), RHINE_OK);
    rh_buf lk, wk[3];
    rh_buf_init(&lk, 1024);
    assert_int_equal(rh_note_vkey_format(&F.keys.log, &lk), RH_OK);
    const char *w[4];
    for (int i = 0; i < 3; i++) {
        rh_buf_init(&wk[i], 1024);
        assert_int_equal(rh_note_vkey_format(&F.keys.witnesses[i], &wk[i]), RH_OK);
        w[i] = (const char *)wk[i].data;
    }
    const char *lks = (const char *)lk.data;
    static const struct {
        const char *name;
        int log_as_witness, first_w, nw;
        size_t quorum;
        rhine_code want;
        const char *msg;
    } cases[] = {
        {"quorum 0", 0, 0, 3, 0, RHINE_ERR_INVALID, "transparency: witnesses: quorum 0"},
        {"quorum 4 of 3", 0, 0, 3, 4, RHINE_ERR_INVALID, "transparency: witnesses: quorum 4"},
        {"log key as a witness (type 0x01)", 1, 0, 3, 2, RHINE_ERR_INVALID,
         "transparency: witness rhine.example/log: not a tlog-cosignature/v1"},
        {"witness as the log key", 2, 0, 3, 2, RHINE_ERR_INVALID,
         "transparency: log key w1: not an Ed25519"},
        {"garbage key", 3, 0, 3, 2, RHINE_ERR_INVALID, "transparency: witness key 0: "},
        {"no witnesses", 0, 0, 0, 1, RHINE_ERR_INVALID, "rhine_client_set_witnesses: need"},
        {"valid", 0, 0, 3, 2, RHINE_OK, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *keys[3] = {w[0], w[1], w[2]};
        const char *logk = lks;
        if (cases[i].log_as_witness == 1)
            keys[0] = lks;
        else if (cases[i].log_as_witness == 2)
            logk = w[0];
        else if (cases[i].log_as_witness == 3)
            keys[0] = "w1+00000000+AAAA";
        rhine_code got =
            rhine_client_set_witnesses(c, logk, keys, (size_t)cases[i].nw, cases[i].quorum);
        const char *msg = rhine_client_errmsg(c);
        if (got != cases[i].want || strncmp(msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("%s: %s: %s", cases[i].name, rhine_code_name(got), msg);
    }
    assert_string_equal(rhine_code_name(RHINE_ERR_QUORUM), "witness quorum");
    assert_string_equal(rhine_code_name(RHINE_ERR_LOG_FORK), "log inconsistent");
    assert_string_equal(rhine_code_name(RHINE_ERR_UNLOGGED), "unlogged");
    rhine_client_free(c);
    rh_buf_cleanup(&lk);
    for (int i = 0; i < 3; i++)
        rh_buf_cleanup(&wk[i]);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_check_table),
        cmocka_unit_test(test_union_across_mirrors),
        cmocka_unit_test(test_counting_duplicates_unknown_bad),
        cmocka_unit_test(test_choose_table),
        cmocka_unit_test(test_inclusion),
        cmocka_unit_test(test_set_witnesses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
