/* tlog_verify.c -- verify a transparency log read through a caller's source: checkpoint,
 * cosignatures, entry bundles, hash tiles, consistency. Shared by rhine-audit, the mirror (a
 * witness) and the client (witness quorum). */
#include "manifest/tlog_verify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/hash.h"
#include "manifest/json.h"
#include "manifest/metadata.h"

/* ---- entries --------------------------------------------------------------------------------*/

static bool hex32(const json_t *v, uint8_t out[32])
{
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false; /* lower case only: the one spelling */
    return rh_hex_decode(s, out, 32) == RH_OK;
}

static bool uint_member(const json_t *o, const char *k, uint64_t *v)
{
    const json_t *j = json_object_get(o, k);
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return false;
    *v = (uint64_t)json_integer_value(j);
    return true;
}

static bool text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

rh_err rh_log_entry_parse(const uint8_t *p, size_t n, const char *src, rh_log_entry *out,
                            rh_error *e)
{
    json_t *o = NULL;
    rh_buf canon;
    rh_buf_init(&canon, RH_LOGV_MAX_ENTRY + 1);
    rh_log_entry en;
    memset(&en, 0, sizeof en);
    rh_err rc = RH_EPARSE;
    const char *why = "want role, version, length, sha256 [, provenance, time], nothing else";
    if (n == 0 || n > RH_LOGV_MAX_ENTRY) {
        why = "empty or longer than the entry limit";
        goto bad;
    }
    rh_error je;
    rh_error_clear(&je);
    if (rh_json_parse(p, n, RH_LOGV_MAX_ENTRY, src, &o, &je) != RH_OK) {
        why = je.msg;
        goto bad;
    }
    const json_t *role = json_object_get(o, "role"), *prov = json_object_get(o, "provenance");
    const json_t *tm = json_object_get(o, "time");
    if (!json_is_object(o) || json_object_size(o) != 4u + (prov != NULL) + (tm != NULL) ||
        !json_is_string(role) || !uint_member(o, "version", &en.version) ||
        !uint_member(o, "length", &en.length) || !hex32(json_object_get(o, "sha256"), en.sha256))
        goto bad;
    size_t rl = json_string_length(role);
    const char *rs = json_string_value(role);
    if (rl == 0 || rl > RH_MAX_ROLE_NAME || !text_ok(rs, rl) || strcmp(rs, "timestamp") == 0 ||
        strcmp(rs, ".") == 0 || strcmp(rs, "..") == 0 || en.version == 0) {
        why = "bad role or version 0";
        goto bad;
    }
    memcpy(en.role, rs, rl + 1);
    if (prov != NULL) {
        const json_t *rev = json_object_get(prov, "source_rev");
        const json_t *rec = json_object_get(prov, "build_recipe_sha256");
        size_t k = (rev != NULL) + (rec != NULL);
        bool tgt = strcmp(rs, "root") != 0 && strcmp(rs, "snapshot") != 0;
        if (!tgt || !json_is_object(prov) || k == 0 || json_object_size(prov) != k ||
            (rev != NULL && (!json_is_string(rev) || json_string_length(rev) == 0 ||
                             json_string_length(rev) > RH_LOGV_MAX_SOURCE_REV ||
                             !text_ok(json_string_value(rev), json_string_length(rev)))) ||
            (rec != NULL && !hex32(rec, en.build_recipe_sha256))) {
            why = "bad provenance";
            goto bad;
        }
        if (rev != NULL) {
            en.has_source_rev = true;
            memcpy(en.source_rev, json_string_value(rev), json_string_length(rev) + 1);
        }
        en.has_recipe = rec != NULL;
    }
    if (tm != NULL) {
        if (!json_is_string(tm) || rh_time_parse(json_string_value(tm), &en.time) != RH_OK) {
            why = "time is not YYYY-MM-DDTHH:MM:SSZ";
            goto bad;
        }
        char back[21];
        rh_time_format(en.time, back);
        if (strcmp(back, json_string_value(tm)) != 0) {
            why = "time is not a real date";
            goto bad;
        }
        en.has_time = true;
    }
    rh_error ce;
    rh_error_clear(&ce);
    if (rh_cjson_encode(o, &canon, &ce) != RH_OK || canon.len != n ||
        memcmp(canon.data, p, n) != 0) {
        why = "not canonical JSON";
        goto bad;
    }
    *out = en;
    rc = RH_OK;
    goto out;
bad:
    rh_fail(e, RH_EPARSE, "%s: log entry: %s", src, why);
out:
    json_decref(o);
    rh_buf_cleanup(&canon);
    return rc;
}

/* ---- checkpoints ----------------------------------------------------------------------------*/

rh_err rh_log_checkpoint_verify(const uint8_t *note, size_t len, const char *src,
                           const rh_log_keys *keys, rh_checkpoint *cp, size_t *ncosig,
                           rh_error *e)
{
    rh_note *n = NULL;
    rh_note_key all[1 + RH_LOGV_MAX_WITNESSES];
    rh_note_result res[1 + RH_LOGV_MAX_WITNESSES];
    size_t nk = 1 + keys->nwitnesses, got = 0;
    rh_checkpoint c;
    memset(&c, 0, sizeof c);
    rh_err rc = rh_note_parse(note, len, src, &n, e);
    if (rc != RH_OK)
        return rc;
    all[0] = keys->log;
    all[0].required = true;
    for (size_t i = 0; i < keys->nwitnesses; i++) {
        all[1 + i] = keys->witnesses[i];
        all[1 + i].required = false;
    }
    /* signed-note: every line of a known key must verify; the log key must have signed. */
    if ((rc = rh_note_verify(n, all, nk, res, src, e)) != RH_OK)
        goto out;
    for (size_t i = 1; i < nk; i++)
        got += res[i].ok;
    if (got < keys->quorum) {
        rc = rh_fail(e, RH_ESIG, "%s: cosigned by %zu of the %zu witnesses, %zu required", src,
                     got, keys->nwitnesses, keys->quorum);
        goto out;
    }
    if ((rc = rh_checkpoint_parse(n->text, n->textlen, src, &c, e)) != RH_OK)
        goto out;
    *cp = c;
    if (ncosig != NULL)
        *ncosig = got;
out:
    rh_note_free(n);
    return rc;
}

/* ---- reading the whole log ------------------------------------------------------------------*/

typedef struct level_hashes {
    uint8_t (*h)[32];
    uint64_t n;
} level_hashes;

typedef struct rebuild {
    level_hashes lv[RH_LOGV_TILE_LEVELS];
} rebuild;

static rh_err on_node(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
    rebuild *r = arg;
    if (level % RH_TILE_HEIGHT != 0 || level / RH_TILE_HEIGHT >= RH_LOGV_TILE_LEVELS)
        return RH_OK;
    level_hashes *l = &r->lv[level / RH_TILE_HEIGHT];
    if (index != l->n)
        return RH_EINVAL;
    memcpy(l->h[l->n++], hash, 32); /* sized for the checkpoint's tree up front */
    return RH_OK;
}

/* The view's strings, in blocks that never move (entries point into them). */
struct rh_log_strs {
    struct rh_log_strs *next;
    size_t used, cap;
    char s[];
};
#define STRS_BLOCK (64u * 1024)

void rh_log_view_free(rh_log_view *log)
{
    if (log == NULL)
        return;
    rh_checkpoint_cleanup(&log->cp);
    free(log->note);
    free(log->data);
    free(log->off);
    free(log->ent);
    while (log->strs != NULL) {
        struct rh_log_strs *b = log->strs;
        log->strs = b->next;
        free(b);
    }
    free(log);
}

size_t rh_log_view_bytes(const rh_log_view *log)
{
    size_t n = 0;
    if (log->off != NULL)
        n += log->off[log->size] + ((size_t)log->size + 1) * sizeof *log->off;
    if (log->ent != NULL)
        n += ((size_t)log->size + 1) * sizeof *log->ent;
    for (const struct rh_log_strs *b = log->strs; b != NULL; b = b->next)
        n += sizeof *b + b->cap;
    return n;
}

/* A copy of s in the view's strings; NULL on OOM. */
static const char *strs_put(rh_log_view *log, const char *s)
{
    size_t n = strlen(s) + 1;
    struct rh_log_strs *b = log->strs;
    if (b == NULL || b->cap - b->used < n) {
        /* 4 KiB first (a short log), doubling to STRS_BLOCK. */
        size_t cap = b == NULL ? 4096 : b->cap < STRS_BLOCK / 2 ? 2 * b->cap : STRS_BLOCK;
        if (cap < n)
            cap = n;
        if ((b = malloc(sizeof *b + cap)) == NULL)
            return NULL;
        b->next = log->strs;
        b->used = 0;
        b->cap = cap;
        log->strs = b;
    }
    char *d = memcpy(b->s + b->used, s, n);
    b->used += n;
    return d;
}

/* Parses every entry of the view (label names entry i as "<label> i" in errors) into log->ent,
 * and trims log->data to the entries' bytes. RH_OK, RH_EPARSE, RH_ENOMEM. */
static rh_err parse_entries(rh_log_view *log, const char *label, rh_error *e)
{
    size_t dlen = log->off[log->size];
    if (dlen > 0) {
        uint8_t *d = realloc(log->data, dlen);
        if (d != NULL)
            log->data = d;
    }
    log->ent = calloc((size_t)log->size + 1, sizeof *log->ent);
    rh_log_entry *en = malloc(sizeof *en);
    rh_err rc = RH_OK;
    if (log->ent == NULL || en == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", label);
        goto out;
    }
    for (uint64_t i = 0; i < log->size; i++) {
        char s[RH_ERRMSG_MAX];
        snprintf(s, sizeof s, "%s %llu", label, (unsigned long long)i);
        if ((rc = rh_log_entry_parse(log->data + log->off[i], log->off[i + 1] - log->off[i], s,
                                     en, e)) != RH_OK)
            goto out;
        rh_log_ventry *v = &log->ent[i];
        v->role = strs_put(log, en->role);
        v->source_rev = en->has_source_rev ? strs_put(log, en->source_rev) : "";
        if (v->role == NULL || v->source_rev == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", s);
            goto out;
        }
        v->version = en->version;
        v->length = en->length;
        memcpy(v->sha256, en->sha256, 32);
        v->has_source_rev = en->has_source_rev;
        v->has_recipe = en->has_recipe;
        memcpy(v->build_recipe_sha256, en->build_recipe_sha256, 32);
        v->has_time = en->has_time;
        v->time = en->time;
    }
out:
    free(en);
    return rc;
}

static void hex_of(const uint8_t *h, char out[65]) { rh_hex_encode(h, 32, out); }

/* Appends entry i (n bytes at p) to log->data and its leaf to the tree (and to rb's levels
 * when rb is set). RH_OK, RH_ENOMEM or the hash's error. */
static rh_err view_push(rh_log_view *log, uint64_t i, const uint8_t *p, size_t n, size_t *dlen,
                        size_t *dcap, rh_merkle_tree *t, rebuild *rb)
{
    if (*dlen + n > *dcap) {
        size_t nc = *dcap ? *dcap : 4096;
        while (nc < *dlen + n)
            nc *= 2;
        uint8_t *d = realloc(log->data, nc);
        if (d == NULL)
            return RH_ENOMEM;
        log->data = d;
        *dcap = nc;
    }
    memcpy(log->data + *dlen, p, n);
    log->off[i] = *dlen;
    *dlen += n;
    log->off[i + 1] = *dlen;
    uint8_t leaf[32];
    rh_err rc = rh_merkle_leaf_hash(p, n, leaf);
    if (rc == RH_OK)
        rc = rh_merkle_tree_append(t, leaf, rb != NULL ? on_node : NULL, rb);
    return rc;
}

/* Splits want entries (2-byte big-endian length, then the bytes) off b from *off into
 * log->data, entries first.. on; leaf-hashes them into the tree. */
static rh_err take_entries(rh_log_view *log, const rh_buf *b, size_t *off, const char *path,
                           uint64_t first, uint64_t want, size_t *dlen, size_t *dcap,
                           rh_merkle_tree *t, rebuild *rb, rh_error *e)
{
    for (uint64_t i = 0; i < want; i++) {
        if (b->len - *off < 2)
            return rh_fail(e, RH_ELOG, "%s: %llu entries, the checkpoint needs %llu", path,
                           (unsigned long long)i, (unsigned long long)want);
        size_t n = (size_t)b->data[*off] << 8 | b->data[*off + 1];
        if (n == 0 || n > b->len - *off - 2)
            return rh_fail(e, RH_ELOG, "%s: entry %llu: length %zu is empty or past the end",
                           path, (unsigned long long)i, n);
        rh_err rc = view_push(log, first + i, b->data + *off + 2, n, dlen, dcap, t, rb);
        if (rc != RH_OK)
            return rh_fail(e, rc, "%s: entry %llu: %s", path, (unsigned long long)i,
                           rc == RH_ENOMEM ? "out of memory" : "cannot hash");
        *off += 2 + n;
    }
    if (*off != b->len)
        return rh_fail(e, RH_ELOG, "%s: %zu bytes after entry %llu", path, b->len - *off,
                       (unsigned long long)want);
    return RH_OK;
}

rh_err rh_log_read(const rh_log_src *src, const rh_log_keys *keys, rh_log_view **out,
                         rh_error *e)
{
    rh_buf note;
    rh_buf_init(&note, RH_NOTE_MAX_BYTES);
    rh_err rc = src->get(src->ctx, "log/checkpoint", RH_NOTE_MAX_BYTES, &note, e);
    if (rc == RH_OK)
        rc = rh_log_read_note(src, keys, note.data, note.len, "log/checkpoint", out, e);
    rh_buf_cleanup(&note);
    return rc;
}

/* rh_log_read_note, and rh_log_read_after with known (entries of whole tiles taken from it
 * instead of fetched) and without the hash tiles. */
static rh_err read_tree(const rh_log_src *src, const rh_log_keys *keys, const uint8_t *cpnote,
                        size_t cplen, const char *cpsrc, const rh_log_view *known, bool tiles,
                        rh_log_view **out, rh_error *e)
{
    rh_log_view *log = calloc(1, sizeof *log);
    rebuild rb;
    memset(&rb, 0, sizeof rb);
    rh_buf note, b;
    rh_buf_init(&note, RH_NOTE_MAX_BYTES);
    rh_buf_init(&b, RH_LOGV_MAX_BUNDLE);
    rh_merkle_tree t;
    rh_merkle_tree_init(&t);
    char path[RH_TILE_PATH_MAX + 8];
    size_t dlen = 0, dcap = 0;
    rh_err rc;
    if (log == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "log: out of memory");
        goto out;
    }
    if ((rc = rh_log_checkpoint_verify(cpnote, cplen, cpsrc, keys, &log->cp, &log->ncosig, e)) !=
            RH_OK ||
        (rc = rh_buf_append(&note, cpnote, cplen)) != RH_OK)
        goto out;
    log->notelen = note.len;
    log->note = rh_buf_take(&note, &log->notelen);
    log->size = log->cp.size;
    if (log->size > RH_LOGV_MAX_ENTRIES) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: %llu entries, a verifier replays at most %llu", cpsrc,
                     (unsigned long long)log->size,
                     (unsigned long long)RH_LOGV_MAX_ENTRIES);
        goto out;
    }
    log->off = calloc((size_t)log->size + 1, sizeof *log->off);
    for (unsigned l = 0; tiles && l < RH_LOGV_TILE_LEVELS; l++) {
        uint64_t full;
        unsigned part;
        rh_tile_count(log->size, l, &full, &part);
        uint64_t n = full * RH_TILE_WIDTH + part;
        rb.lv[l].h = n ? malloc((size_t)n * 32) : NULL;
        if (n && rb.lv[l].h == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "log: out of memory");
            goto out;
        }
    }
    if (log->off == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "log: out of memory");
        goto out;
    }
    /* Entries of whole tiles the caller already holds, verified against an earlier checkpoint:
     * taken as they are (the root below decides whether this tree begins with them). */
    uint64_t k0 = known != NULL ? (known->size < log->size ? known->size : log->size) : 0;
    k0 -= k0 % RH_TILE_WIDTH;
    for (uint64_t i = 0; i < k0; i++) {
        if ((rc = view_push(log, i, known->data + known->off[i], known->off[i + 1] - known->off[i],
                            &dlen, &dcap, &t, tiles ? &rb : NULL)) != RH_OK) {
            rc = rh_fail(e, rc, "log: %s", rc == RH_ENOMEM ? "out of memory" : "cannot hash");
            goto out;
        }
    }
    /* Entry bundles: the leaves. */
    uint64_t full;
    unsigned part;
    rh_tile_count(log->size, 0, &full, &part);
    for (uint64_t i = k0 / RH_TILE_WIDTH; i <= full; i++) {
        unsigned w = i < full ? RH_TILE_WIDTH : part;
        if (w == 0)
            break;
        char rel[RH_TILE_PATH_MAX];
        if ((rc = rh_tile_path(-1, i, w, rel, sizeof rel)) != RH_OK) {
            rc = rh_fail(e, rc, "log: tile path");
            goto out;
        }
        snprintf(path, sizeof path, "log/%s", rel);
        if ((rc = src->get(src->ctx, path, RH_LOGV_MAX_BUNDLE, &b, e)) != RH_OK ||
            (rc = take_entries(log, &b, &(size_t){0}, path, i * RH_TILE_WIDTH, w, &dlen, &dcap,
                               &t, tiles ? &rb : NULL, e)) != RH_OK)
            goto out;
    }
    /* RFC 9162 2.1.1: the root of the entries must be the checkpoint's. */
    uint8_t root[32];
    if ((rc = rh_merkle_tree_root(&t, root)) != RH_OK) {
        rc = rh_fail(e, rc, "log: cannot hash");
        goto out;
    }
    if (!rh_ct_equal(root, log->cp.root, 32)) {
        char a[65], c[65];
        hex_of(root, a);
        hex_of(log->cp.root, c);
        rc = rh_fail(e, RH_ELOG, "%s: the %llu entries served hash to root %s, the signed "
                     "checkpoint says %s", cpsrc, (unsigned long long)log->size, a, c);
        goto out;
    }
    /* Every hash tile, byte for byte. */
    for (unsigned l = 0; tiles && l < RH_LOGV_TILE_LEVELS; l++) {
        rh_tile_count(log->size, l, &full, &part);
        for (uint64_t i = 0; i <= full; i++) {
            unsigned w = i < full ? RH_TILE_WIDTH : part;
            if (w == 0)
                break;
            char rel[RH_TILE_PATH_MAX];
            if ((rc = rh_tile_path((int)l, i, w, rel, sizeof rel)) != RH_OK) {
                rc = rh_fail(e, rc, "log: tile path");
                goto out;
            }
            snprintf(path, sizeof path, "log/%s", rel);
            if ((rc = src->get(src->ctx, path, (size_t)w * 32, &b, e)) != RH_OK) {
                if (rc == RH_ETOOBIG) { /* the source's "too big" is a tile that is wrong */
                    rh_error_clear(e);
                    rc = rh_fail(e, RH_ELOG, "%s: longer than %u hashes", path, w);
                }
                goto out;
            }
            if (b.len != (size_t)w * 32) {
                rc = rh_fail(e, RH_ELOG, "%s: %zu bytes, want %u hashes", path, b.len, w);
                goto out;
            }
            for (unsigned k = 0; k < w; k++) {
                const uint8_t *want = rb.lv[l].h[i * RH_TILE_WIDTH + k];
                if (!rh_ct_equal(b.data + 32 * k, want, 32)) {
                    char a[65], c[65];
                    hex_of(b.data + 32 * k, a);
                    hex_of(want, c);
                    rc = rh_fail(e, RH_ELOG, "%s: hash %u is %s, the entries give %s", path, k,
                                 a, c);
                    goto out;
                }
            }
        }
    }
    if ((rc = parse_entries(log, "log entry", e)) != RH_OK)
        goto out;
    *out = log;
    log = NULL;
out:
    for (unsigned l = 0; l < RH_LOGV_TILE_LEVELS; l++)
        free(rb.lv[l].h);
    rh_buf_cleanup(&note);
    rh_buf_cleanup(&b);
    rh_log_view_free(log);
    return rc;
}

rh_err rh_log_read_note(const rh_log_src *src, const rh_log_keys *keys, const uint8_t *cpnote,
                        size_t cplen, const char *cpsrc, rh_log_view **out, rh_error *e)
{
    return read_tree(src, keys, cpnote, cplen, cpsrc, NULL, true, out, e);
}

rh_err rh_log_read_after(const rh_log_src *src, const rh_log_keys *keys, const uint8_t *cpnote,
                         size_t cplen, const char *cpsrc, const rh_log_view *known,
                         rh_log_view **out, rh_error *e)
{
    return read_tree(src, keys, cpnote, cplen, cpsrc, known, false, out, e);
}

rh_err rh_log_view_entries(const rh_log_view *log, rh_buf *out)
{
    for (uint64_t i = 0; i < log->size; i++) {
        size_t n = log->off[i + 1] - log->off[i];
        uint8_t len2[2] = {(uint8_t)(n >> 8), (uint8_t)n};
        rh_err rc = rh_buf_append(out, len2, 2);
        if (rc == RH_OK)
            rc = rh_buf_append(out, log->data + log->off[i], n);
        if (rc != RH_OK)
            return rc;
    }
    return RH_OK;
}

rh_err rh_log_view_from_entries(const uint8_t *p, size_t len, const char *src,
                                const rh_checkpoint *cp, rh_log_view **out, rh_error *e)
{
    if (cp->size > RH_LOGV_MAX_ENTRIES)
        return rh_fail(e, RH_ETOOBIG, "%s: %llu entries, a verifier replays at most %llu", src,
                       (unsigned long long)cp->size, (unsigned long long)RH_LOGV_MAX_ENTRIES);
    rh_log_view *log = calloc(1, sizeof *log);
    rh_merkle_tree t;
    rh_merkle_tree_init(&t);
    size_t dlen = 0, dcap = 0;
    rh_err rc = RH_OK;
    if (log == NULL || (log->off = calloc((size_t)cp->size + 1, sizeof *log->off)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", src);
        goto out;
    }
    memcpy(log->cp.origin, cp->origin, sizeof log->cp.origin);
    log->cp.size = log->size = cp->size;
    memcpy(log->cp.root, cp->root, 32);
    rh_buf b = {(uint8_t *)p, len, len, len}; /* read only */
    if ((rc = take_entries(log, &b, &(size_t){0}, src, 0, cp->size, &dlen, &dcap, &t, NULL, e)) !=
        RH_OK)
        goto out;
    uint8_t root[32];
    if ((rc = rh_merkle_tree_root(&t, root)) != RH_OK) {
        rc = rh_fail(e, rc, "%s: cannot hash", src);
        goto out;
    }
    if (!rh_ct_equal(root, cp->root, 32)) {
        rc = rh_fail(e, RH_ELOG, "%s: its %llu entries are not the checkpoint's", src,
                     (unsigned long long)cp->size);
        goto out;
    }
    char label[RH_ERRMSG_MAX];
    snprintf(label, sizeof label, "%s: entry", src);
    if ((rc = parse_entries(log, label, e)) != RH_OK)
        goto out;
    *out = log;
    log = NULL;
out:
    rh_log_view_free(log);
    return rc;
}

/* ---- consistency from tiles -----------------------------------------------------------------*/

typedef struct tile_cache {
    const rh_log_src *src;
    uint64_t size;
    rh_error *e;
    struct {
        unsigned level;
        uint64_t index;
        unsigned width;
        uint8_t *h;
    } t[64];
    size_t n;
} tile_cache;

/* Hash k of tile (level, index) of the tree of c->size leaves, fetched once. */
static rh_err tile_hash(tile_cache *c, unsigned level, uint64_t pos, uint8_t out[32])
{
    uint64_t index = pos / RH_TILE_WIDTH, full;
    unsigned k = (unsigned)(pos % RH_TILE_WIDTH), part;
    rh_tile_count(c->size, level, &full, &part);
    unsigned w = index < full ? RH_TILE_WIDTH : part;
    if (index > full || k >= w)
        return rh_fail(c->e, RH_ELOG, "tile %u/%llu: hash %u is past the tree", level,
                       (unsigned long long)index, k);
    size_t i;
    for (i = 0; i < c->n; i++)
        if (c->t[i].level == level && c->t[i].index == index)
            break;
    if (i == c->n) {
        char rel[RH_TILE_PATH_MAX], path[RH_TILE_PATH_MAX + 8];
        if (rh_tile_path((int)level, index, w, rel, sizeof rel) != RH_OK)
            return rh_fail(c->e, RH_EINVAL, "tile %u/%llu: no path", level,
                           (unsigned long long)index);
        snprintf(path, sizeof path, "log/%s", rel);
        rh_buf b;
        rh_buf_init(&b, (size_t)w * 32);
        rh_err rc = c->src->get(c->src->ctx, path, (size_t)w * 32, &b, c->e);
        if (rc == RH_OK && b.len != (size_t)w * 32)
            rc = rh_fail(c->e, RH_ELOG, "%s: %zu bytes, want %u hashes", path, b.len, w);
        if (rc != RH_OK) {
            rh_buf_cleanup(&b);
            return rc;
        }
        if (c->n == sizeof c->t / sizeof c->t[0]) { /* forget the oldest */
            free(c->t[0].h);
            memmove(&c->t[0], &c->t[1], (c->n - 1) * sizeof c->t[0]);
            c->n--;
        }
        size_t len;
        c->t[c->n].level = level;
        c->t[c->n].index = index;
        c->t[c->n].width = w;
        c->t[c->n].h = rh_buf_take(&b, &len);
        i = c->n++;
    }
    memcpy(out, c->t[i].h + 32 * k, 32);
    return RH_OK;
}

/* rh_merkle_get_fn over tiles: a node at Merkle level h is hash (index) of tile level h/8 when h
 * is a multiple of 8, else the subtree of 2^(h%8) hashes of tile level h/8 below it. */
static rh_err tiles_get(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
    tile_cache *c = arg;
    unsigned tl = level / RH_TILE_HEIGHT, r = level % RH_TILE_HEIGHT;
    if (tl >= RH_LOGV_TILE_LEVELS)
        return rh_fail(c->e, RH_EINVAL, "node %u/%llu: too high", level,
                       (unsigned long long)index);
    uint64_t first = index << r, n = (uint64_t)1 << r;
    uint8_t buf[RH_TILE_WIDTH][32];
    for (uint64_t i = 0; i < n; i++) {
        rh_err rc = tile_hash(c, tl, first + i, buf[i]);
        if (rc != RH_OK)
            return rc;
    }
    for (; n > 1; n /= 2)
        for (uint64_t i = 0; i < n / 2; i++)
            if (rh_merkle_node_hash(buf[2 * i], buf[2 * i + 1], buf[i]) != RH_OK)
                return rh_fail(c->e, RH_ECRYPTO, "hashing failed");
    memcpy(out, buf[0], 32);
    return RH_OK;
}

rh_err rh_log_consistency(const rh_log_src *src, const rh_log_keys *keys,
                            const uint8_t *old_note, size_t old_len, rh_buf *cur_note,
                            rh_error *e)
{
    rh_buf note;
    rh_buf_init(&note, RH_NOTE_MAX_BYTES);
    rh_err rc = src->get(src->ctx, "log/checkpoint", RH_NOTE_MAX_BYTES, &note, e);
    if (rc != RH_OK)
        goto out;
    rc = rh_log_consistency_notes(src, keys, old_note, old_len, note.data, note.len, e);
    /* The note as served, whatever the verdict: with RH_ELOG it is half the evidence. */
    if (cur_note != NULL && rh_buf_append(cur_note, note.data, note.len) != RH_OK && rc == RH_OK)
        rc = rh_fail(e, RH_ENOMEM, "log/checkpoint: out of memory");
out:
    rh_buf_cleanup(&note);
    return rc;
}

rh_err rh_log_consistency_notes(const rh_log_src *src, const rh_log_keys *keys,
                                const uint8_t *old_note, size_t old_len, const uint8_t *cur_note,
                                size_t cur_len, rh_error *e)
{
    rh_checkpoint oldc, cur;
    memset(&oldc, 0, sizeof oldc);
    memset(&cur, 0, sizeof cur);
    tile_cache c;
    memset(&c, 0, sizeof c);
    rh_log_keys logonly = *keys;
    logonly.quorum = 0; /* an old checkpoint need not carry today's witnesses */
    char a[65], b[65];
    rh_err rc = rh_log_checkpoint_verify(old_note, old_len, "old checkpoint", &logonly, &oldc, NULL, e);
    if (rc != RH_OK)
        goto out;
    if ((rc = rh_log_checkpoint_verify(cur_note, cur_len, "log/checkpoint", keys, &cur, NULL,
                                       e)) != RH_OK)
        goto out;
    if (strcmp(oldc.origin, cur.origin) != 0) {
        rc = rh_fail(e, RH_ELOG, "old checkpoint is of log \"%s\", the current one of \"%s\"",
                     oldc.origin, cur.origin);
        goto out;
    }
    hex_of(oldc.root, a);
    hex_of(cur.root, b);
    if (cur.size < oldc.size) {
        rc = rh_fail(e, RH_ELOG, "the log shrank: old checkpoint %llu entries (root %s), current "
                     "%llu (root %s)", (unsigned long long)oldc.size, a,
                     (unsigned long long)cur.size, b);
        goto out;
    }
    rh_merkle_proof proof;
    rh_merkle_hashref refs[RH_MERKLE_MAX_PROOF];
    rh_merkle_hashref r1 = {oldc.root, 32}, r2 = {cur.root, 32};
    proof.n = 0;
    rh_error ve;
    rh_error_clear(&ve);
    if (oldc.size > 0) {
        c.src = src;
        c.size = cur.size;
        c.e = &ve;
        if ((rc = rh_merkle_consistency_proof(oldc.size, cur.size, tiles_get, &c, &proof, &ve)) !=
            RH_OK) {
            if (rc == RH_ELOG && cur.size > oldc.size)
                goto settle; /* a malformed tile: the served tiles' fault, or a fork */
            rc = rh_fail(e, rc, "%s", ve.msg);
            goto out;
        }
    }
    rh_merkle_proof_refs(&proof, refs);
    /* RFC 9162 2.1.4.2: the old tree must be a prefix of the current one. */
    if (rh_merkle_verify_consistency(oldc.size, cur.size, r1, r2, refs, proof.n, &ve) == RH_OK) {
        rc = RH_OK;
        goto out;
    }
    if (cur.size == oldc.size) { /* two signed roots of one size: nothing else to read */
        rc = rh_fail(e, RH_ELOG, "the log was rewritten: old checkpoint %llu entries (root %s) is "
                     "not a prefix of the current %llu entries (root %s): %s",
                     (unsigned long long)oldc.size, a, (unsigned long long)cur.size, b, ve.msg);
        goto out;
    }
settle:
    /* The proof came from hash tiles, which nobody signs: a bad one is no evidence. Only the
     * current tree read whole and verified against its signed checkpoint decides. */
    {
        rh_log_view *v = NULL;
        rh_error re;
        rh_error_clear(&re);
        uint8_t pr[32];
        rc = rh_log_read_note(src, keys, cur_note, cur_len, "log/checkpoint", &v, &re);
        if (rc == RH_OK && (rc = rh_log_view_prefix_root(v, oldc.size, pr)) != RH_OK)
            rh_fail(&re, rc, "log: cannot hash");
        if (rc == RH_ELOG)
            rc = rh_fail(e, RH_EHASH, "the served log does not match its signed checkpoint, "
                         "so its consistency with the old one is not decided: %s (the proof "
                         "from its tiles: %s)", re.msg, ve.msg);
        else if (rc != RH_OK)
            rc = rh_fail(e, rc, "%s", re.msg);
        else if (rh_ct_equal(pr, oldc.root, 32))
            rc = rh_fail(e, RH_EHASH, "the hash tiles served for the proof are not the log's own "
                         "(they changed between reads), so its consistency with the old "
                         "checkpoint is not decided: %s", ve.msg);
        else
            rc = rh_fail(e, RH_ELOG, "the log was rewritten: old checkpoint %llu entries (root "
                         "%s) is not a prefix of the current %llu entries (root %s): the "
                         "verified entries give the old size another root", (unsigned long long)oldc.size,
                         a, (unsigned long long)cur.size, b);
        rh_log_view_free(v);
    }
out:
    for (size_t i = 0; i < c.n; i++)
        free(c.t[i].h);
    rh_checkpoint_cleanup(&oldc);
    rh_checkpoint_cleanup(&cur);
    return rc;
}

rh_err rh_log_view_prefix_root(const rh_log_view *log, uint64_t size, uint8_t root[32])
{
    if (size > log->size)
        return RH_EINVAL;
    rh_merkle_tree t;
    rh_merkle_tree_init(&t);
    for (uint64_t i = 0; i < size; i++) {
        uint8_t leaf[32];
        rh_err rc = rh_merkle_leaf_hash(log->data + log->off[i], log->off[i + 1] - log->off[i], leaf);
        if (rc == RH_OK)
            rc = rh_merkle_tree_append(&t, leaf, NULL, NULL);
        if (rc != RH_OK)
            return rc;
    }
    return rh_merkle_tree_root(&t, root);
}

const rh_log_ventry *rh_log_view_find(const rh_log_view *log, const char *role, uint64_t version,
                                      uint64_t *index)
{
    for (uint64_t i = 0; i < log->size; i++)
        if (log->ent[i].version == version && strcmp(log->ent[i].role, role) == 0) {
            if (index != NULL)
                *index = i;
            return &log->ent[i];
        }
    return NULL;
}
