/* plan.c -- the mirror's pure sync planner (what to fetch, publish in order, and collect). */
#include "mirror/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/tpath.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_old(const void *a, const void *b)
{
    return strcmp(((const rh_plan_old *)a)->relpath, ((const rh_plan_old *)b)->relpath);
}

typedef struct tix_t {
    const char *rp;
    size_t i;
} tix_t;

static int cmp_tix(const void *a, const void *b)
{
    const tix_t *x = a, *y = b;
    int c = strcmp(x->rp, y->rp);
    if (c != 0)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

static bool in_sorted(const char *const *v, size_t n, const char *s)
{
    return n > 0 && bsearch(&s, v, n, sizeof *v, cmp_str) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Publish rank of a metadata file: dependencies first, timestamp.json last. */
static int meta_rank(const rh_plan_meta *m)
{
    if (strcmp(m->role, "timestamp") == 0)
        return 4;
    if (strcmp(m->role, "root") == 0)
        return 3;
    if (strcmp(m->role, "snapshot") == 0)
        return 2;
    if (strcmp(m->role, "targets") == 0)
        return 1;
    return 0; /* delegated targets roles: the top-level targets points at them */
}

static int cmp_meta(const void *a, const void *b)
{
    const rh_plan_meta *x = *(const rh_plan_meta *const *)a, *y = *(const rh_plan_meta *const *)b;
    int rx = meta_rank(x), ry = meta_rank(y);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->filename, y->filename);
}

static char *join_meta(const char *filename)
{
    size_t n = strlen(filename);
    char *s = malloc(sizeof "metadata/" + n);
    if (s != NULL) {
        memcpy(s, "metadata/", 9);
        memcpy(s + 9, filename, n + 1);
    }
    return s;
}

static void free_strv(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void rh_plan_cleanup(rh_plan *p)
{
    if (p == NULL)
        return;
    free(p->fetch);
    free_strv(p->publish, p->npublish);
    free_strv(p->gc, p->ngc);
    if (p->superseded != NULL) {
        for (size_t i = 0; i < p->nsuperseded; i++)
            free(p->superseded[i].relpath);
        free(p->superseded);
    }
    memset(p, 0, sizeof *p);
}

rh_err rh_plan_make(const rh_plan_in *in, rh_plan *out, rh_error *e)
{
    rh_err rc = RH_ENOMEM;
    rh_plan p;
    memset(&p, 0, sizeof p);
    const char **present = NULL, **refs = NULL;
    tix_t *tix = NULL;
    const rh_plan_meta **metas = NULL;
    char **metapaths = NULL;
    size_t nrefs = 0;

    if (in == NULL || out == NULL || (in->nmeta > 0 && in->meta == NULL) ||
        (in->ntargets > 0 && in->targets == NULL) || (in->npresent > 0 && in->present == NULL) ||
        (in->nsuperseded > 0 && in->superseded == NULL))
        return rh_fail(e, RH_EINVAL, "plan: bad arguments");

    size_t nall = in->nmeta + in->ntargets;
    present = malloc((in->npresent + 1) * sizeof *present);
    refs = malloc((nall + 1) * sizeof *refs);
    tix = malloc((in->ntargets + 1) * sizeof *tix);
    metas = malloc((in->nmeta + 1) * sizeof *metas);
    metapaths = calloc(in->nmeta + 1, sizeof *metapaths);
    p.fetch = malloc((in->ntargets + 1) * sizeof *p.fetch);
    p.publish = calloc(nall + 1, sizeof *p.publish);
    p.gc = calloc(in->npresent + 1, sizeof *p.gc);
    p.superseded = calloc(in->npresent + 1, sizeof *p.superseded);
    if (present == NULL || refs == NULL || tix == NULL || metas == NULL ||
        metapaths == NULL || p.fetch == NULL || p.publish == NULL || p.gc == NULL ||
        p.superseded == NULL)
        goto fail;

    for (size_t i = 0; i < in->npresent; i++)
        present[i] = in->present[i];
    qsort(present, in->npresent, sizeof *present, cmp_str);

    /* Everything the new version references. */
    for (size_t i = 0; i < in->nmeta; i++) {
        if ((metapaths[i] = join_meta(in->meta[i].filename)) == NULL)
            goto fail;
        refs[nrefs++] = metapaths[i];
    }
    for (size_t i = 0; i < in->ntargets; i++)
        refs[nrefs++] = in->targets[i].relpath;
    qsort(refs, nrefs, sizeof *refs, cmp_str);

    /* Targets to fetch (and publish first), each relpath once, in relpath order. */
    for (size_t i = 0; i < in->ntargets; i++) {
        tix[i].rp = in->targets[i].relpath;
        tix[i].i = i;
    }
    qsort(tix, in->ntargets, sizeof *tix, cmp_tix);
    for (size_t i = 0; i < in->ntargets; i++) {
        const char *rp = tix[i].rp;
        if ((i > 0 && strcmp(tix[i - 1].rp, rp) == 0) || in_sorted(present, in->npresent, rp))
            continue;
        if ((p.publish[p.npublish] = strdup(rp)) == NULL)
            goto fail;
        p.npublish++;
        p.fetch[p.nfetch++] = tix[i].i;
    }

    /* Staged metadata in dependency order. */
    size_t nm = 0;
    for (size_t i = 0; i < in->nmeta; i++) {
        const rh_plan_meta *m = &in->meta[i];
        if (!m->staged)
            continue;
        if (strcmp(m->filename, "timestamp.json") != 0 &&
            in_sorted(present, in->npresent, metapaths[i]))
            continue;
        metas[nm++] = m;
    }
    qsort(metas, nm, sizeof *metas, cmp_meta);
    for (size_t i = 0; i < nm; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(metas[j]->filename, metas[i]->filename) == 0;
        if (dup)
            continue;
        if ((p.publish[p.npublish] = join_meta(metas[i]->filename)) == NULL)
            goto fail;
        p.npublish++;
    }

    /* Superseded files and garbage. Roots are never collected. */
    rh_plan_old *old = NULL;
    if (in->nsuperseded > 0) {
        old = malloc(in->nsuperseded * sizeof *old);
        if (old == NULL)
            goto fail;
        memcpy(old, in->superseded, in->nsuperseded * sizeof *old);
        qsort(old, in->nsuperseded, sizeof *old, cmp_old);
    }
    for (size_t i = 0; i < in->npresent; i++) {
        const char *rp = present[i];
        if (i > 0 && strcmp(present[i - 1], rp) == 0)
            continue;
        if (in_sorted(refs, nrefs, rp))
            continue;
        if (strncmp(rp, "metadata/", 9) == 0 && ends_with(rp, ".root.json"))
            continue;
        int64_t since = in->now;
        if (old != NULL) {
            rh_plan_old key = {(char *)rp, 0};
            const rh_plan_old *f = bsearch(&key, old, in->nsuperseded, sizeof *old, cmp_old);
            if (f != NULL)
                since = f->since;
        }
        if (since > in->now)
            since = in->now; /* a clock that went back never extends the grace period */
        if (in->now - since >= in->grace) {
            if ((p.gc[p.ngc] = strdup(rp)) == NULL) {
                free(old);
                goto fail;
            }
            p.ngc++;
        } else {
            if ((p.superseded[p.nsuperseded].relpath = strdup(rp)) == NULL) {
                free(old);
                goto fail;
            }
            p.superseded[p.nsuperseded++].since = since;
        }
    }
    free(old);

    *out = p;
    memset(&p, 0, sizeof p);
    rc = RH_OK;
    goto out;
fail:
    rc = rh_fail(e, RH_ENOMEM, "plan: out of memory");
out:
    rh_plan_cleanup(&p);
    if (metapaths != NULL)
        free_strv(metapaths, in->nmeta);
    free(metas);
    free(tix);
    free(refs);
    free(present);
    return rc;
}

rh_err rh_plan_target_relpath(const char *path, const uint8_t sha256[RH_SHA256_LEN], char *out,
                              size_t outsz, rh_error *e)
{
    if (path == NULL || sha256 == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "plan: bad arguments");
    rh_err rc = rh_tpath_check(path, strlen(path), e);
    if (rc != RH_OK)
        return rc;
    char hex[2 * RH_SHA256_LEN + 1];
    rh_hex_encode(sha256, RH_SHA256_LEN, hex);
    const char *slash = strrchr(path, '/');
    int n;
    if (slash == NULL)
        n = snprintf(out, outsz, "targets/%s.%s", hex, path);
    else
        n = snprintf(out, outsz, "targets/%.*s/%s.%s", (int)(slash - path), path, hex,
                     slash + 1);
    if (n < 0 || (size_t)n >= outsz)
        return rh_fail(e, RH_ETOOBIG, "target path \"%.64s...\": too long", path);
    return RH_OK;
}

rh_err rh_plan_url_path(const char *relpath, char *out, size_t outsz)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *s = (const unsigned char *)relpath; *s != '\0'; s++) {
        unsigned c = *s;
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        size_t need = keep ? 1 : 3;
        if (o + need + 1 > outsz)
            return RH_ETOOBIG;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hexd[c >> 4];
            out[o++] = hexd[c & 15];
        }
    }
    if (o + 1 > outsz)
        return RH_ETOOBIG;
    out[o] = '\0';
    return RH_OK;
}
