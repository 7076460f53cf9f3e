/* fuzz_tlog.c -- libFuzzer target: what mirrors and clients read from a log they do not trust:
 * signed notes and checkpoints, log entries, and a whole log replay (entry bundles and hash tiles
 * carved from the input under a checkpoint the harness signs, so the replay code past the
 * signature check is reached), and the same bundle as a client's kept entries. Every rejection must carry a message; nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/keys.h"
#include "manifest/note.h"
#include "manifest/tlog_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORIGIN "fuzz.example/log"

static rh_privkey *log_sk;
static rh_note_key log_vk;

static void init_key(void)
{
    if (log_sk != NULL)
        return;
    rh_error e;
    rh_error_clear(&e);
    if (rh_privkey_generate(&log_sk, &e) != RH_OK ||
        rh_note_key_from_privkey(log_sk, ORIGIN, RH_NOTE_TYPE_ED25519, &log_vk, &e) != RH_OK)
        abort();
}

static void check_failure(rh_err rc, const rh_error *e)
{
    if (rc != RH_OK && (e->code != rc || e->msg[0] == '\0'))
        abort();
}

/* Every entry a view keeps is what the strict parser makes of its bytes, field for field. */
static void check_view_entries(const rh_log_view *v)
{
    for (uint64_t i = 0; i < v->size; i++) {
        rh_log_entry en;
        rh_error e;
        rh_error_clear(&e);
        const rh_log_ventry *k = &v->ent[i];
        if (rh_log_entry_parse(v->data + v->off[i], v->off[i + 1] - v->off[i], "entry", &en,
                               &e) != RH_OK ||
            strcmp(k->role, en.role) != 0 || k->version != en.version ||
            k->length != en.length || memcmp(k->sha256, en.sha256, 32) != 0 ||
            k->has_source_rev != en.has_source_rev ||
            strcmp(k->source_rev, en.has_source_rev ? en.source_rev : "") != 0 ||
            k->has_recipe != en.has_recipe ||
            memcmp(k->build_recipe_sha256, en.build_recipe_sha256, 32) != 0 ||
            k->has_time != en.has_time || k->time != en.time)
            abort();
        if (rh_log_view_find(v, k->role, k->version, NULL) == NULL)
            abort();
    }
}

/* Replay input: entry bundles are the bytes before the first "\n--\n", hash tiles the rest. */
typedef struct carve {
    const uint8_t *bundle, *tile;
    size_t bundlelen, tilelen;
} carve;

static rh_err get(void *ctx, const char *path, size_t max, rh_buf *out, rh_error *e)
{
    const carve *c = ctx;
    bool entries = strncmp(path, "log/tile/entries/", 17) == 0;
    const uint8_t *p = entries ? c->bundle : c->tile;
    size_t n = entries ? c->bundlelen : c->tilelen;
    rh_buf_reset(out);
    if (n > max)
        return rh_fail(e, RH_ETOOBIG, "%s: too big", path);
    if (rh_buf_append(out, p, n) != RH_OK)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
    return RH_OK;
}

static void replay(const uint8_t *data, size_t size)
{
    /* [2 bytes tree size][32 bytes root][bundle bytes]["\n--\n" tile bytes] */
    if (size < 34)
        return;
    rh_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    memcpy(cp.origin, ORIGIN, sizeof ORIGIN);
    cp.size = (uint64_t)data[0] << 8 | data[1];
    memcpy(cp.root, data + 2, 32);
    carve c = {.bundle = data + 34, .bundlelen = size - 34};
    for (size_t i = 34; i + 4 <= size; i++)
        if (memcmp(data + i, "\n--\n", 4) == 0) {
            c.bundlelen = i - 34;
            c.tile = data + i + 4;
            c.tilelen = size - i - 4;
            break;
        }
    rh_buf note;
    rh_buf_init(&note, RH_NOTE_MAX_BYTES);
    rh_error e;
    rh_error_clear(&e);
    if (rh_checkpoint_format(&cp, &note) != RH_OK)
        abort();
    size_t textlen = note.len;
    if (rh_buf_append(&note, "\n", 1) != RH_OK ||
        rh_note_sign(note.data, textlen, ORIGIN, log_sk, &note, &e) != RH_OK)
        abort();
    rh_log_keys keys;
    memset(&keys, 0, sizeof keys);
    keys.log = log_vk;
    rh_log_src src = {get, &c};
    rh_log_view *v = NULL;
    rh_err rc = rh_log_read_note(&src, &keys, note.data, note.len, "cp", &v, &e);
    check_failure(rc, &e);
    if (rc == RH_OK) {
        if (v->size != cp.size)
            abort();
        check_view_entries(v);
    }
    rh_log_view_free(v);
    /* The same bytes as entries a client kept (one bundle): read back byte for byte, and as
     * the known part of a read that fetches only what follows them. */
    rh_log_view *k = NULL;
    rh_error_clear(&e);
    rc = rh_log_view_from_entries(c.bundle, c.bundlelen, "kept", &cp, &k, &e);
    check_failure(rc, &e);
    if (rc == RH_OK) {
        check_view_entries(k);
        rh_buf b;
        rh_buf_init(&b, c.bundlelen + 16);
        if (rh_log_view_entries(k, &b) != RH_OK || b.len != c.bundlelen ||
            (b.len > 0 && memcmp(b.data, c.bundle, b.len) != 0))
            abort();
        rh_buf_cleanup(&b);
        rh_log_view *v2 = NULL;
        rh_error_clear(&e);
        rc = rh_log_read_after(&src, &keys, note.data, note.len, "cp", k, &v2, &e);
        check_failure(rc, &e);
        if (rc == RH_OK && v2->size != cp.size)
            abort();
        if (rc == RH_OK)
            check_view_entries(v2);
        rh_log_view_free(v2);
    }
    rh_log_view_free(k);
    rh_buf_cleanup(&note);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_key();
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    rh_error e;
    rh_error_clear(&e);
    switch (data[0] % 3) {
    case 0: { /* a signed note, then its checkpoint body */
        rh_note *note = NULL;
        rh_err rc = rh_note_parse(p, n, "note", &note, &e);
        check_failure(rc, &e);
        if (rc == RH_OK) {
            rh_note_result res;
            rh_error_clear(&e);
            check_failure(rh_note_verify(note, &log_vk, 1, &res, "note", &e), &e);
            rh_checkpoint cp;
            rh_error_clear(&e);
            rc = rh_checkpoint_parse(note->text, note->textlen, "note", &cp, &e);
            check_failure(rc, &e);
            if (rc == RH_OK)
                rh_checkpoint_cleanup(&cp);
        }
        rh_note_free(note);
        break;
    }
    case 1: { /* one log entry */
        rh_log_entry en;
        check_failure(rh_log_entry_parse(p, n, "entry", &en, &e), &e);
        break;
    }
    default:
        replay(p, n);
        break;
    }
    return 0;
}
