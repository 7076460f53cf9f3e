/* quorum.c -- the client's transparency decisions: group checkpoints, unite cosignatures,
 * choose by quorum, merge the note, describe a split view, decide inclusion. */
#include "client/quorum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/hash.h"

static bool same_key(const rh_note_key *a, const rh_note_key *b)
{
    return a->id == b->id && strcmp(a->name, b->name) == 0;
}

rh_err rh_wit_keys_check(const rh_log_keys *keys, rh_error *e)
{
    if (keys->log.type != RH_NOTE_TYPE_ED25519)
        return rh_fail(e, RH_EINVAL, "log key %s: not an Ed25519 (type 0x01) verifier key",
                       keys->log.name);
    if (keys->nwitnesses == 0 || keys->nwitnesses > RH_LOGV_MAX_WITNESSES)
        return rh_fail(e, RH_EINVAL, "witnesses: need 1..%d keys, got %zu", RH_LOGV_MAX_WITNESSES,
                       keys->nwitnesses);
    if (keys->quorum == 0 || keys->quorum > keys->nwitnesses)
        return rh_fail(e, RH_EINVAL, "witnesses: quorum %zu is not within 1..%zu", keys->quorum,
                       keys->nwitnesses);
    for (size_t i = 0; i < keys->nwitnesses; i++) {
        const rh_note_key *k = &keys->witnesses[i];
        /* tlog-cosignature: witnesses sign with type 0x04 (timestamped cosignature/v1). */
        if (k->type != RH_NOTE_TYPE_COSIG_V1)
            return rh_fail(e, RH_EINVAL,
                           "witness %s: not a tlog-cosignature/v1 (type 0x04) verifier key",
                           k->name);
        for (size_t j = 0; j < i; j++)
            if (same_key(k, &keys->witnesses[j]))
                return rh_fail(e, RH_EINVAL, "witness %s: listed twice", k->name);
            /* A cosignature does not sign the key's name: one public key under two names
             * would let a copied line count twice towards the quorum. */
            else if (memcmp(k->pub, keys->witnesses[j].pub, sizeof k->pub) == 0)
                return rh_fail(e, RH_EINVAL, "witness %s: the same public key as witness %s",
                               k->name, keys->witnesses[j].name);
    }
    return RH_OK;
}

rh_err rh_wit_init(rh_wit *w, const rh_log_keys *keys, rh_error *e)
{
    rh_err rc = rh_wit_keys_check(keys, e);
    if (rc != RH_OK)
        return rc;
    memset(w, 0, sizeof(*w));
    w->keys = *keys;
    w->keys.log.required = true;
    for (size_t i = 0; i < w->keys.nwitnesses; i++)
        w->keys.witnesses[i].required = false;
    return RH_OK;
}

static void group_cleanup(rh_wit_group *g)
{
    free(g->text);
    free(g->logline);
    for (size_t i = 0; i < RH_LOGV_MAX_WITNESSES; i++)
        free(g->wline[i]);
}

void rh_wit_cleanup(rh_wit *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->ng; i++)
        group_cleanup(&w->g[i]);
    free(w->g);
    free(w->obs);
    memset(w, 0, sizeof(*w));
}

/* The signature line of key k as sig (the first line of k in n) spells it. NULL on OOM. */
static char *line_of(const rh_note *n, const rh_note_key *k)
{
    for (size_t i = 0; i < n->nsigs; i++) {
        const rh_note_sig *s = &n->sigs[i];
        if (s->id != k->id || strcmp(s->name, k->name) != 0)
            continue;
        rh_buf b;
        rh_buf_init(&b, RH_NOTE_MAX_BYTES);
        if (rh_note_sigline(k, s->sig, s->siglen, &b) != RH_OK) {
            rh_buf_cleanup(&b);
            return NULL;
        }
        size_t len;
        return (char *)rh_buf_take(&b, &len);
    }
    return NULL;
}

static bool has_line(const rh_note *n, const rh_note_key *k)
{
    for (size_t i = 0; i < n->nsigs; i++)
        if (n->sigs[i].id == k->id && strcmp(n->sigs[i].name, k->name) == 0)
            return true;
    return false;
}

static rh_wit_obs *obs_new(rh_wit *w, const char *label)
{
    if (w->nobs == w->capobs) {
        size_t cap = w->capobs ? 2 * w->capobs : 8;
        rh_wit_obs *o = realloc(w->obs, cap * sizeof(*o));
        if (!o)
            return NULL;
        w->obs = o;
        w->capobs = cap;
    }
    rh_wit_obs *o = &w->obs[w->nobs];
    memset(o, 0, sizeof(*o));
    snprintf(o->label, sizeof(o->label), "%s", label);
    return o;
}

/* The group of text, made when new (with the log's line). NULL on OOM. */
static rh_wit_group *group_of(rh_wit *w, const rh_note *n, const rh_checkpoint *cp, size_t *gi)
{
    for (size_t i = 0; i < w->ng; i++)
        if (w->g[i].textlen == n->textlen && memcmp(w->g[i].text, n->text, n->textlen) == 0) {
            *gi = i;
            return &w->g[i];
        }
    rh_wit_group *g = realloc(w->g, (w->ng + 1) * sizeof(*g));
    if (!g)
        return NULL;
    w->g = g;
    g = &w->g[w->ng];
    memset(g, 0, sizeof(*g));
    g->text = malloc(n->textlen + 1);
    g->logline = line_of(n, &w->keys.log);
    if (!g->text || !g->logline) {
        group_cleanup(g);
        return NULL;
    }
    memcpy(g->text, n->text, n->textlen);
    g->text[n->textlen] = '\0';
    g->textlen = n->textlen;
    g->size = cp->size;
    memcpy(g->root, cp->root, sizeof(g->root));
    *gi = w->ng++;
    return g;
}

rh_err rh_wit_add(rh_wit *w, const char *label, const uint8_t *note, size_t len,
                  const rh_error *fetch_err)
{
    rh_wit_obs *o = obs_new(w, label);
    if (!o)
        return RH_ENOMEM;
    rh_note *n = NULL;
    rh_checkpoint cp;
    memset(&cp, 0, sizeof(cp));
    rh_error e;
    rh_error_clear(&e);
    rh_err rc = RH_OK;
    if (fetch_err) {
        o->err = fetch_err->code != RH_OK ? fetch_err->code : RH_ENET;
        snprintf(o->msg, sizeof(o->msg), "%s", fetch_err->msg);
        goto done;
    }
    /* signed-note: the log key must have signed; a bad line of it is a failure. */
    if ((o->err = rh_note_parse(note, len, label, &n, &e)) != RH_OK ||
        (o->err = rh_note_verify(n, &w->keys.log, 1, NULL, label, &e)) != RH_OK ||
        (o->err = rh_checkpoint_parse(n->text, n->textlen, label, &cp, &e)) != RH_OK) {
        if (o->err == RH_ENOMEM) {
            rc = RH_ENOMEM;
            goto out;
        }
        snprintf(o->msg, sizeof(o->msg), "%s", e.msg);
        goto done;
    }
    size_t gi;
    rh_wit_group *g = group_of(w, n, &cp, &gi);
    if (!g) {
        rc = RH_ENOMEM;
        goto out;
    }
    o->group = gi;
    g->nmirrors++;
    for (size_t i = 0; i < w->keys.nwitnesses; i++) {
        const rh_note_key *k = &w->keys.witnesses[i];
        if (!has_line(n, k))
            continue;
        rh_note_result res = {0};
        rh_error ve;
        rh_error_clear(&ve);
        /* tlog-cosignature/v1: every line of this witness must verify over this text. */
        if (rh_note_verify(n, k, 1, &res, label, &ve) != RH_OK || !res.ok) {
            o->badsig |= (uint64_t)1 << i;
            continue;
        }
        o->cosigned |= (uint64_t)1 << i;
        if (!g->wline[i] && !(g->wline[i] = line_of(n, k))) {
            rc = RH_ENOMEM;
            goto out;
        }
        g->cosigned |= (uint64_t)1 << i;
    }
done:
    w->nobs++;
out:
    rh_checkpoint_cleanup(&cp);
    rh_note_free(n);
    return rc;
}

static size_t popcount64(uint64_t v)
{
    size_t c = 0;
    for (; v; v &= v - 1)
        c++;
    return c;
}

size_t rh_wit_count(const rh_wit *w, size_t gi)
{
    return gi < w->ng ? popcount64(w->g[gi].cosigned) : 0;
}

bool rh_wit_choose(const rh_wit *w, size_t *gi)
{
    bool found = false;
    size_t best = 0;
    for (size_t i = 0; i < w->ng; i++) {
        size_t c = rh_wit_count(w, i);
        if (c < w->keys.quorum)
            continue;
        if (found) {
            const rh_wit_group *b = &w->g[best];
            if (w->g[i].size < b->size || (w->g[i].size == b->size && c <= rh_wit_count(w, best)))
                continue;
        }
        best = i;
        found = true;
    }
    if (found)
        *gi = best;
    return found;
}

rh_err rh_wit_note(const rh_wit *w, size_t gi, rh_buf *out)
{
    if (gi >= w->ng)
        return RH_EINVAL;
    const rh_wit_group *g = &w->g[gi];
    rh_err rc = rh_buf_append(out, g->text, g->textlen);
    if (rc == RH_OK)
        rc = rh_buf_appendc(out, '\n');
    if (rc == RH_OK)
        rc = rh_buf_append(out, g->logline, strlen(g->logline));
    for (size_t i = 0; rc == RH_OK && i < w->keys.nwitnesses; i++)
        if (g->wline[i])
            rc = rh_buf_append(out, g->wline[i], strlen(g->wline[i]));
    return rc;
}

/* Appends ", "-separated names of the witnesses in mask. */
static void names(const rh_wit *w, uint64_t mask, char *out, size_t outsz)
{
    size_t l = 0;
    out[0] = '\0';
    for (size_t i = 0; i < w->keys.nwitnesses && l < outsz; i++)
        if (mask & ((uint64_t)1 << i)) {
            int r = snprintf(out + l, outsz - l, "%s%s", l ? ", " : "", w->keys.witnesses[i].name);
            if (r < 0)
                break;
            l += (size_t)r;
        }
}

void rh_wit_evidence(const rh_wit *w, char *out, size_t outsz)
{
    if (!out || outsz == 0)
        return;
    size_t l = 0;
    out[0] = '\0';
    if (w->nobs == 0) {
        snprintf(out, outsz, "no mirror serves a log");
        return;
    }
    for (size_t i = 0; i < w->nobs && l < outsz; i++) {
        const rh_wit_obs *o = &w->obs[i];
        const char *sep = i ? "; " : "";
        int r;
        if (o->err != RH_OK) {
            r = snprintf(out + l, outsz - l, "%s%s: %s", sep, o->label,
                         o->msg[0] ? o->msg : rh_err_name(o->err));
        } else {
            const rh_wit_group *g = &w->g[o->group];
            char hex[65], who[1024], bad[1024];
            rh_hex_encode(g->root, 32, hex);
            names(w, o->cosigned, who, sizeof(who));
            names(w, o->badsig, bad, sizeof(bad));
            r = snprintf(out + l, outsz - l, "%s%s: size %llu root %.8s cosigned by %s%s%s%s", sep,
                         o->label, (unsigned long long)g->size, hex, who[0] ? who : "no witness",
                         bad[0] ? " (bad cosignature: " : "", bad, bad[0] ? ")" : "");
        }
        if (r < 0)
            break;
        l += (size_t)r;
    }
}

rh_err rh_wit_included(const rh_log_view *log, const char *role, uint64_t version,
                       const char *filename, const uint8_t *p, size_t n, rh_error *e)
{
    uint8_t sha[RH_SHA256_LEN];
    if (rh_hash_once(RH_SHA256, p, n, sha) != RH_OK)
        return rh_fail(e, RH_ECRYPTO, "unlogged: %s: cannot hash", filename);
    const rh_log_ventry *en = rh_log_view_find(log, role, version, NULL);
    if (!en)
        return rh_fail(
            e, RH_ELOG,
            "unlogged: %s: role %s version %llu is not in the log (checkpoint size %llu)", filename,
            role, (unsigned long long)version, (unsigned long long)log->size);
    /* Issue 7: the exact bytes about to be trusted, not just a role and version. */
    if (en->length != n || !rh_ct_equal(en->sha256, sha, sizeof(sha))) {
        char got[65], want[65];
        rh_hex_encode(sha, sizeof(sha), got);
        rh_hex_encode(en->sha256, sizeof(sha), want);
        return rh_fail(e, RH_ELOG,
                       "unlogged: %s: served %zu bytes sha256 %s, the log has %llu bytes sha256 %s",
                       filename, n, got, (unsigned long long)en->length, want);
    }
    return RH_OK;
}
