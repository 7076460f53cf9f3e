/* tuf.c -- the TUF 1.0.x client workflow (root chain, timestamp, snapshot, targets, delegation
 * search) over caller-supplied fetch and persist callbacks; no I/O of its own. */
#include "manifest/tuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "manifest/limits.h"
#include "manifest/tpath.h"

/* One trusted (or cached, not yet verified) metadata file. f's pointers are owned here. */
typedef struct tuf_slot {
    rh_tuf_file f;
    char *role;
    char *filename;
    uint8_t *data;
    rh_metadata *md;
} tuf_slot;

typedef struct slot_list {
    tuf_slot **v;
    size_t n, cap;
} slot_list;

struct rh_tuf {
    rh_tuf_io io;
    slot_list roots;      /* the chain walked; the last one is the trusted root */
    uint64_t first_root;  /* version given to rh_tuf_load_root */
    tuf_slot *timestamp;  /* trusted, or NULL */
    tuf_slot *snapshot;   /* trusted, or NULL */
    slot_list targets;    /* trusted targets roles: "targets" first, then delegated ones */
    tuf_slot *c_timestamp, *c_snapshot; /* from rh_tuf_load_cached, not verified yet */
    slot_list pool;       /* targets roles that may be reused without a download */
    bool refresh_ran;     /* rh_tuf_load_cached is refused once a refresh started */
    bool complete;        /* the last refresh succeeded: find_target may run */
};

/* ---- slots ----------------------------------------------------------------------------- */

static void slot_free(tuf_slot *s)
{
    if (s == NULL)
        return;
    free(s->role);
    free(s->filename);
    free(s->data);
    rh_metadata_free(s->md);
    free(s);
}

/* Take ownership of data (heap) and md; copy role and filename. On failure nothing is taken. */
/* A new slot taking ownership of *data and *md (both set to NULL) on success; on failure they
 * stay the caller's and the message names filename. */
static rh_err slot_take(const char *role, const char *filename, uint8_t **datap, size_t len,
                        rh_metadata **mdp, bool fetched, tuf_slot **out, rh_error *e)
{
    tuf_slot *s = calloc(1, sizeof *s);
    if (s == NULL || (s->role = strdup(role)) == NULL ||
        (s->filename = strdup(filename)) == NULL) {
        if (s != NULL)
            free(s->role);
        free(s);
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", filename);
    }
    uint8_t *data = *datap;
    rh_metadata *md = *mdp;
    *datap = NULL;
    *mdp = NULL;
    s->data = data;
    s->md = md;
    s->f.role = s->role;
    s->f.version = md->version;
    s->f.filename = s->filename;
    s->f.data = data;
    s->f.len = len;
    s->f.md = md;
    s->f.fetched = fetched;
    *out = s;
    return RH_OK;
}

static rh_err slot_set_filename(tuf_slot *s, const char *filename)
{
    if (strcmp(s->filename, filename) == 0)
        return RH_OK;
    char *dup = strdup(filename);
    if (dup == NULL)
        return RH_ENOMEM;
    free(s->filename);
    s->filename = dup;
    s->f.filename = dup;
    return RH_OK;
}

static rh_err list_insert(slot_list *l, size_t at, tuf_slot *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        tuf_slot **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return RH_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    memmove(l->v + at + 1, l->v + at, (l->n - at) * sizeof *l->v);
    l->v[at] = s;
    l->n++;
    return RH_OK;
}

static rh_err list_push(slot_list *l, tuf_slot *s)
{
    return list_insert(l, l->n, s);
}

static tuf_slot *list_remove(slot_list *l, size_t i)
{
    tuf_slot *s = l->v[i];
    memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
    l->n--;
    return s;
}

static ssize_t list_find(const slot_list *l, const char *role)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i]->role, role) == 0)
            return (ssize_t)i;
    return -1;
}

static void list_cleanup(slot_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        slot_free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Put s into the pool, replacing a pooled slot of the same role. Frees s if that fails. */
static rh_err pool_put(rh_tuf *t, tuf_slot *s)
{
    ssize_t i = list_find(&t->pool, s->role);
    if (i >= 0) {
        slot_free(t->pool.v[i]);
        t->pool.v[i] = s;
        return RH_OK;
    }
    rh_err rc = list_push(&t->pool, s);
    if (rc != RH_OK)
        slot_free(s);
    return rc;
}

/* Move every trusted targets role to the pool: they are re-established (and re-verified)
 * against the new snapshot or root, without a download when still valid. */
static rh_err targets_to_pool(rh_tuf *t)
{
    rh_err rc = RH_OK;
    while (t->targets.n > 0) {
        rh_err r = pool_put(t, list_remove(&t->targets, t->targets.n - 1));
        if (rc == RH_OK)
            rc = r;
    }
    return rc;
}

static const rh_metadata *root_md(const rh_tuf *t)
{
    return t->roots.n ? t->roots.v[t->roots.n - 1]->md : NULL;
}

static bool is_top_level(const char *name)
{
    return strcmp(name, "root") == 0 || strcmp(name, "timestamp") == 0 ||
           strcmp(name, "snapshot") == 0 || strcmp(name, "targets") == 0;
}

/* ---- names ----------------------------------------------------------------------------- */

rh_err rh_tuf_filename(const char *role, uint64_t version, bool consistent, char *out,
                       size_t outsz)
{
    if (role == NULL || out == NULL)
        return RH_EPATH;
    /* TUF 5.6.7.2.2 (python-tuf): role names are percent-encoded in file names. */
    char enc[RH_ROLE_FILENAME_MAX];
    if (rh_role_filename(role, enc, sizeof enc) != RH_OK)
        return RH_EPATH;
    int n;
    if (strcmp(role, "timestamp") == 0)
        n = snprintf(out, outsz, "timestamp.json");
    else if (consistent || strcmp(role, "root") == 0)
        n = snprintf(out, outsz, "%" PRIu64 ".%s.json", version, enc);
    else
        n = snprintf(out, outsz, "%s.json", enc);
    if (n < 0 || (size_t)n >= outsz)
        return RH_ETOOBIG;
    return RH_OK;
}

static bool consistent(const rh_tuf *t)
{
    const rh_metadata *r = root_md(t);
    return r != NULL && r->u.root.consistent_snapshot;
}

static const char *fmt_time(int64_t ts, char buf[21])
{
    rh_time_format(ts, buf);
    return buf;
}

/* TUF 5.3.10, 5.4.4, 5.5.6, 5.6.5: metadata is fresh only while expires > the start time. */
static rh_err check_expiry(const rh_metadata *m, const char *filename, int64_t now, rh_error *e)
{
    char when[21];
    if (m->expires <= now)
        return rh_fail(e, RH_EEXPIRED, "%s: expired at %s (freeze attack?)", filename,
                       fmt_time(m->expires, when));
    return RH_OK;
}

/* ---- fetching -------------------------------------------------------------------------- */

/* Fetch name into a fresh heap buffer of at most max bytes. RH_ENOTFOUND is returned without a
 * message when allow_missing (the end of the root chain). */
static rh_err fetch(rh_tuf *t, const char *name, size_t max, bool allow_missing, uint8_t **data,
                    size_t *len, rh_error *e)
{
    rh_buf b;
    rh_error fe;
    rh_buf_init(&b, max);
    rh_error_clear(&fe);
    rh_err rc = t->io.fetch(t->io.ctx, name, max, &b, &fe);
    if (rc == RH_OK && b.len > max)
        rc = RH_ETOOBIG; /* a callback that ignored the ceiling */
    if (rc == RH_ENOTFOUND && allow_missing)
        goto out;
    if (rc == RH_ETOOBIG) {
        rh_fail(e, rc, "%s: more than %zu bytes (endless data?)", name, max);
    } else if (rc != RH_OK) {
        if (fe.code != RH_OK && fe.msg[0] != '\0')
            rh_fail(e, rc, "%s", fe.msg);
        else
            rh_fail(e, rc, "%s: fetch failed (%s)", name, rh_err_name(rc));
    }
out:
    if (rc != RH_OK) {
        rh_buf_cleanup(&b);
        return rc;
    }
    if (b.len == 0) {
        rh_buf_cleanup(&b);
        *data = malloc(1);
        if (*data == NULL)
            return RH_ENOMEM;
        *len = 0;
        return RH_OK;
    }
    /* The buffer grew by doubling: give back the slack (up to half of it) of what is kept. */
    *data = rh_buf_take(&b, len);
    uint8_t *fit = realloc(*data, *len + 1);
    if (fit != NULL)
        *data = fit;
    return RH_OK;
}

static rh_err persist(rh_tuf *t, const tuf_slot *s, rh_error *e)
{
    if (t->io.persist == NULL)
        return RH_OK;
    rh_error pe;
    rh_error_clear(&pe);
    rh_err rc = t->io.persist(t->io.ctx, s->role, s->f.version, s->filename, s->data, s->f.len,
                              &pe);
    if (rc != RH_OK) {
        if (pe.code != RH_OK && pe.msg[0] != '\0')
            rh_fail(e, rc, "%s", pe.msg);
        else
            rh_fail(e, rc, "%s: persist failed (%s)", s->filename, rh_err_name(rc));
    }
    return rc;
}

/* Signature check whose message starts with the file name. */
static rh_err verify(const rh_metadata *m, const rh_pubkey *keys, size_t nkeys,
                     const rh_rolekeys *rk, const char *rolename, const char *filename,
                     const char *by, rh_error *e)
{
    rh_error ve;
    rh_error_clear(&ve);
    rh_err rc = rh_metadata_verify(m, keys, nkeys, rk, rolename, &ve);
    if (rc != RH_OK)
        return rh_fail(e, rc, "%s: not signed by a threshold of %s keys: %s", filename, by,
                       ve.msg[0] ? ve.msg : rh_err_name(rc));
    return RH_OK;
}

static rh_err verify_top(const rh_metadata *root, rh_role role, const rh_metadata *m,
                         const char *filename, const char *by, rh_error *e)
{
    return verify(m, root->u.root.keys, root->u.root.nkeys, &root->u.root.roles[role],
                  rh_role_name(role), filename, by, e);
}

/* Length and hashes a referring META entry signs (TUF 5.5.2, 5.6.2). */
static rh_err check_meta(const rh_metafile *mf, const uint8_t *data, size_t len,
                         const char *filename, rh_error *e)
{
    if (mf->length >= 0 && (uint64_t)mf->length != len)
        return rh_fail(e, RH_EHASH, "%s: length %zu differs from signed length %" PRId64,
                       filename, len, mf->length);
    if (mf->has_hashes)
        return rh_hashes_check(&mf->hashes, data, len, filename, e);
    return RH_OK;
}

static size_t meta_max(const rh_metafile *mf, size_t dflt)
{
    if (mf->length >= 0 && (uint64_t)mf->length < dflt)
        return (size_t)mf->length;
    return dflt;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

rh_err rh_tuf_new(const rh_tuf_io *io, rh_tuf **out)
{
    if (io == NULL || io->fetch == NULL || out == NULL)
        return RH_EINVAL;
    rh_tuf *t = calloc(1, sizeof *t);
    if (t == NULL)
        return RH_ENOMEM;
    t->io = *io;
    *out = t;
    return RH_OK;
}

void rh_tuf_free(rh_tuf *t)
{
    if (t == NULL)
        return;
    list_cleanup(&t->roots);
    slot_free(t->timestamp);
    slot_free(t->snapshot);
    list_cleanup(&t->targets);
    slot_free(t->c_timestamp);
    slot_free(t->c_snapshot);
    list_cleanup(&t->pool);
    free(t);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d != NULL && n)
        memcpy(d, p, n);
    return d;
}

rh_err rh_tuf_load_root(rh_tuf *t, const uint8_t *p, size_t n, const char *src, rh_error *e)
{
    if (t == NULL || (p == NULL && n))
        return rh_fail(e, RH_EINVAL, "%s: invalid argument", src ? src : "root");
    if (t->roots.n != 0)
        return rh_fail(e, RH_EINVAL, "%s: trusted root already loaded", src ? src : "root");
    if (src == NULL)
        src = "root.json";
    rh_metadata *md = NULL;
    uint8_t *copy = NULL;
    tuf_slot *s = NULL;
    char fname[RH_TUF_MAX_FILENAME];
    rh_err rc = rh_metadata_parse(p, n, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, src, &md, e);
    if (rc != RH_OK)
        goto out;
    /* TUF 5.2: the trusted root must at least carry its own threshold of signatures. */
    rc = verify_top(md, RH_ROLE_ROOT, md, src, "its own root", e);
    if (rc != RH_OK)
        goto out;
    rc = rh_tuf_filename("root", md->version, true, fname, sizeof fname);
    if (rc != RH_OK)
        goto out;
    copy = dup_bytes(p, n);
    if (copy == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", src);
        goto out;
    }
    rc = slot_take("root", fname, &copy, n, &md, false, &s, e);
    if (rc != RH_OK)
        goto out;
    rc = list_push(&t->roots, s);
    if (rc != RH_OK) {
        rh_fail(e, rc, "%s: out of memory", src);
        goto out;
    }
    t->first_root = s->f.version;
    s = NULL;
out:
    slot_free(s);
    free(copy);
    rh_metadata_free(md);
    return rc;
}

rh_err rh_tuf_load_cached(rh_tuf *t, const char *rolename, const uint8_t *p, size_t n,
                          const char *src, rh_error *e)
{
    if (t == NULL || rolename == NULL || (p == NULL && n))
        return rh_fail(e, RH_EINVAL, "cached metadata: invalid argument");
    if (src == NULL)
        src = rolename;
    if (t->roots.n == 0 || t->refresh_ran)
        return rh_fail(e, RH_EINVAL, "%s: cached metadata must be loaded after the root and "
                       "before the first refresh", src);
    size_t rlen = strlen(rolename);
    if (rlen == 0 || rlen > RH_MAX_ROLE_NAME || strcmp(rolename, "root") == 0)
        return rh_fail(e, RH_EINVAL, "%s: bad role name for cached metadata", src);
    rh_role type = RH_ROLE_TARGETS;
    size_t max = RH_MAX_TARGETS_BYTES;
    if (strcmp(rolename, "timestamp") == 0) {
        type = RH_ROLE_TIMESTAMP;
        max = RH_MAX_TIMESTAMP_BYTES;
    } else if (strcmp(rolename, "snapshot") == 0) {
        type = RH_ROLE_SNAPSHOT;
        max = RH_MAX_SNAPSHOT_BYTES;
    }
    rh_metadata *md = NULL;
    uint8_t *copy = NULL;
    tuf_slot *s = NULL;
    char fname[RH_TUF_MAX_FILENAME];
    rh_err rc = (type == RH_ROLE_TARGETS && t->io.lean_targets ? rh_metadata_parse_lean
                                                               : rh_metadata_parse)(
        p, n, max, type, src, &md, e);
    if (rc != RH_OK)
        goto out;
    rc = rh_tuf_filename(rolename, md->version, consistent(t), fname, sizeof fname);
    if (rc != RH_OK) {
        rh_fail(e, rc, "%s: role name cannot be a file name", src);
        goto out;
    }
    copy = dup_bytes(p, n);
    rc = copy ? slot_take(rolename, fname, &copy, n, &md, false, &s, e)
              : rh_fail(e, RH_ENOMEM, "%s: out of memory", src);
    if (rc != RH_OK)
        goto out;
    if (type == RH_ROLE_TIMESTAMP) {
        slot_free(t->c_timestamp);
        t->c_timestamp = s;
    } else if (type == RH_ROLE_SNAPSHOT) {
        slot_free(t->c_snapshot);
        t->c_snapshot = s;
    } else {
        rc = pool_put(t, s); /* frees s on failure */
        if (rc != RH_OK)
            rh_fail(e, rc, "%s: out of memory", src);
    }
    s = NULL;
out:
    slot_free(s);
    free(copy);
    rh_metadata_free(md);
    return rc;
}

/* ---- TUF 5.3: root --------------------------------------------------------------------- */

static bool same_keyids(const rh_rolekeys *a, const rh_rolekeys *b)
{
    if (a->nkeyids != b->nkeyids)
        return false;
    for (size_t i = 0; i < a->nkeyids; i++) {
        bool found = false;
        for (size_t j = 0; j < b->nkeyids && !found; j++)
            found = strcmp(a->keyids[i], b->keyids[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static rh_err update_root(rh_tuf *t, rh_error *e)
{
    for (unsigned i = 0; i < RH_MAX_ROOT_ROTATIONS; i++) {
        const rh_metadata *cur = root_md(t);
        if (cur->version == UINT64_MAX)
            break;
        uint64_t next = cur->version + 1;
        char fname[RH_TUF_MAX_FILENAME];
        uint8_t *data = NULL;
        size_t len = 0;
        rh_metadata *md = NULL;
        tuf_slot *s = NULL;
        rh_err rc = rh_tuf_filename("root", next, true, fname, sizeof fname);
        if (rc != RH_OK)
            return rh_fail(e, rc, "root: cannot name version %" PRIu64, next);
        /* TUF 5.3.3: fetch N+1.root.json (bounded) until the repository has none. */
        rc = fetch(t, fname, RH_MAX_ROOT_BYTES, true, &data, &len, e);
        if (rc == RH_ENOTFOUND)
            return RH_OK;
        if (rc != RH_OK)
            return rc;
        rc = rh_metadata_parse(data, len, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, fname, &md, e);
        /* TUF 5.3.4: signed by a threshold of the trusted root and of the new root itself. */
        if (rc == RH_OK)
            rc = verify_top(cur, RH_ROLE_ROOT, md, fname, "the trusted root's", e);
        if (rc == RH_OK)
            rc = verify_top(md, RH_ROLE_ROOT, md, fname, "its own root", e);
        /* TUF 5.3.5: the version inside must be exactly N+1. */
        if (rc == RH_OK && md->version != next)
            rc = rh_fail(e, RH_EVERSION,
                         "%s: contains version %" PRIu64 ", expected %" PRIu64 "%s", fname,
                         md->version, next, md->version < next ? " (rollback)" : "");
        if (rc == RH_OK)
            rc = slot_take("root", fname, &data, len, &md, true, &s, e);
        if (rc == RH_OK) {
            rc = list_push(&t->roots, s);
            if (rc != RH_OK) {
                rh_fail(e, rc, "%s: out of memory", fname);
                slot_free(s);
            }
        }
        free(data);
        rh_metadata_free(md);
        if (rc != RH_OK)
            return rc;
        /* TUF 5.3.7-5.3.8: the new root is trusted now; persist it. */
        rc = persist(t, s, e);
        if (rc != RH_OK)
            return rc;
    }
    return RH_OK;
}

/* Verify a cached or previously trusted timestamp/snapshot against the current root; NULL (and
 * freed) when it no longer verifies (TUF: invalid local metadata is ignored). */
static tuf_slot *revalidate(const rh_tuf *t, tuf_slot *s, rh_role role)
{
    if (s == NULL)
        return NULL;
    rh_error ignored;
    rh_error_clear(&ignored);
    if (verify_top(root_md(t), role, s->md, s->filename, "root", &ignored) != RH_OK) {
        slot_free(s);
        return NULL;
    }
    return s;
}

/* After the root loop: freeze check, fast-forward recovery, cached metadata promotion. */
static rh_err after_root(rh_tuf *t, size_t start_root, int64_t now, rh_error *e)
{
    const rh_metadata *root = root_md(t);
    const rh_metadata *old = t->roots.v[start_root]->md;
    rh_err rc = check_expiry(root, t->roots.v[t->roots.n - 1]->filename, now, e);
    if (rc != RH_OK)
        return rc;
    if (root != old) {
        /* TUF 5.3.11: timestamp or snapshot keys rotated: forget the trusted timestamp and
         * snapshot, so a fast-forwarded version cannot block the recovered repository. */
        if (!same_keyids(&old->u.root.roles[RH_ROLE_TIMESTAMP],
                         &root->u.root.roles[RH_ROLE_TIMESTAMP]) ||
            !same_keyids(&old->u.root.roles[RH_ROLE_SNAPSHOT],
                         &root->u.root.roles[RH_ROLE_SNAPSHOT])) {
            slot_free(t->timestamp);
            slot_free(t->snapshot);
            slot_free(t->c_timestamp);
            slot_free(t->c_snapshot);
            t->timestamp = t->snapshot = t->c_timestamp = t->c_snapshot = NULL;
        }
        t->timestamp = revalidate(t, t->timestamp, RH_ROLE_TIMESTAMP);
        t->snapshot = revalidate(t, t->snapshot, RH_ROLE_SNAPSHOT);
        rc = targets_to_pool(t);
        if (rc != RH_OK)
            return rh_fail(e, rc, "targets: out of memory");
    }
    /* Cached files from rh_tuf_load_cached count as trusted once they verify. */
    if (t->c_timestamp != NULL) {
        tuf_slot *s = revalidate(t, t->c_timestamp, RH_ROLE_TIMESTAMP);
        t->c_timestamp = NULL;
        if (s != NULL && t->timestamp == NULL)
            t->timestamp = s;
        else
            slot_free(s);
    }
    if (t->c_snapshot != NULL) {
        tuf_slot *s = revalidate(t, t->c_snapshot, RH_ROLE_SNAPSHOT);
        t->c_snapshot = NULL;
        if (s != NULL && t->snapshot == NULL)
            t->snapshot = s;
        else
            slot_free(s);
    }
    return RH_OK;
}

/* ---- TUF 5.4: timestamp ------------------------------------------------------------------ */

static rh_err update_timestamp(rh_tuf *t, int64_t now, rh_error *e)
{
    const char *fname = "timestamp.json";
    uint8_t *data = NULL;
    size_t len = 0;
    rh_metadata *md = NULL;
    tuf_slot *s = NULL;
    const rh_metadata *old = t->timestamp ? t->timestamp->md : NULL;
    /* TUF 5.4.1: timestamp.json, bounded by a fixed ceiling since its size is unknown. */
    rh_err rc = fetch(t, fname, RH_MAX_TIMESTAMP_BYTES, false, &data, &len, e);
    if (rc != RH_OK)
        return rc;
    rc = rh_metadata_parse(data, len, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP, fname, &md, e);
    if (rc != RH_OK)
        goto out;
    /* TUF 5.4.2 */
    rc = verify_top(root_md(t), RH_ROLE_TIMESTAMP, md, fname, "root's timestamp", e);
    if (rc != RH_OK)
        goto out;
    if (old != NULL) {
        /* TUF 5.4.3.1: never a lower version than the trusted one. */
        if (md->version < old->version) {
            rc = rh_fail(e, RH_EROLLBACK,
                         "%s: version %" PRIu64 " is lower than trusted version %" PRIu64
                         " (rollback)", fname, md->version, old->version);
            goto out;
        }
        /* An equal version changes nothing: keep the trusted file and carry on with it. */
        if (md->version == old->version) {
            rc = check_expiry(old, fname, now, e);
            goto out;
        }
        /* TUF 5.4.3.2: nor a lower snapshot version. */
        if (md->u.timestamp.version < old->u.timestamp.version) {
            rc = rh_fail(e, RH_EROLLBACK,
                         "%s: snapshot version %" PRIu64 " is lower than trusted snapshot "
                         "version %" PRIu64 " (rollback)", fname, md->u.timestamp.version,
                         old->u.timestamp.version);
            goto out;
        }
    }
    /* TUF 5.4.4 */
    rc = check_expiry(md, fname, now, e);
    if (rc != RH_OK)
        goto out;
    rc = slot_take("timestamp", fname, &data, len, &md, true, &s, e);
    if (rc != RH_OK)
        goto out;
    slot_free(t->timestamp);
    t->timestamp = s;
    /* TUF 5.4.5 */
    rc = persist(t, s, e);
out:
    free(data);
    rh_metadata_free(md);
    return rc;
}

/* ---- TUF 5.5: snapshot ------------------------------------------------------------------- */

static rh_err update_snapshot(rh_tuf *t, int64_t now, rh_error *e)
{
    const rh_metafile *tm = &t->timestamp->md->u.timestamp;
    const rh_metadata *root = root_md(t);
    const rh_metadata *old = t->snapshot ? t->snapshot->md : NULL;
    char fname[RH_TUF_MAX_FILENAME];
    uint8_t *data = NULL;
    size_t len = 0;
    rh_metadata *md = NULL;
    tuf_slot *s = NULL;
    rh_err rc = rh_tuf_filename("snapshot", tm->version, consistent(t), fname, sizeof fname);
    if (rc != RH_OK)
        return rh_fail(e, rc, "snapshot: cannot name version %" PRIu64, tm->version);

    /* The trusted snapshot is the one the timestamp names: nothing to download. */
    if (old != NULL && old->version == tm->version) {
        rh_error ignored;
        rh_error_clear(&ignored);
        if (check_meta(tm, t->snapshot->data, t->snapshot->f.len, fname, &ignored) == RH_OK) {
            rc = slot_set_filename(t->snapshot, fname);
            if (rc != RH_OK)
                return rh_fail(e, rc, "%s: out of memory", fname);
            return check_expiry(old, fname, now, e);
        }
    }

    /* TUF 5.5.1: at most the length the timestamp signs, else a fixed ceiling. */
    size_t max = meta_max(tm, RH_MAX_SNAPSHOT_BYTES);
    rc = fetch(t, fname, max, false, &data, &len, e);
    if (rc != RH_OK)
        return rc;
    /* TUF 5.5.2: length and hashes from the timestamp, before parsing. */
    rc = check_meta(tm, data, len, fname, e);
    if (rc != RH_OK)
        goto out;
    rc = rh_metadata_parse(data, len, max, RH_ROLE_SNAPSHOT, fname, &md, e);
    if (rc != RH_OK)
        goto out;
    /* TUF 5.5.3 */
    rc = verify_top(root, RH_ROLE_SNAPSHOT, md, fname, "root's snapshot", e);
    if (rc != RH_OK)
        goto out;
    /* TUF 5.5.4: the version the timestamp names (and the file name carries). */
    if (md->version != tm->version) {
        rc = rh_fail(e, RH_EVERSION,
                     "%s: contains version %" PRIu64 ", timestamp.json lists version %" PRIu64,
                     fname, md->version, tm->version);
        goto out;
    }
    /* TUF 5.5.5: no targets role may go back in version or disappear. */
    if (old != NULL) {
        for (size_t i = 0; i < old->u.snapshot.nmeta; i++) {
            const rh_metafile *o = &old->u.snapshot.meta[i];
            const rh_metafile *nm = rh_snapshot_find(md, o->name);
            if (nm == NULL) {
                rc = rh_fail(e, RH_EROLLBACK,
                             "%s: %s is listed by trusted snapshot version %" PRIu64
                             " but missing (rollback)", fname, o->name, old->version);
                goto out;
            }
            if (nm->version < o->version) {
                rc = rh_fail(e, RH_EROLLBACK,
                             "%s: %s version %" PRIu64 " is lower than trusted version %" PRIu64
                             " (rollback)", fname, o->name, nm->version, o->version);
                goto out;
            }
        }
    }
    /* TUF 5.5.6 */
    rc = check_expiry(md, fname, now, e);
    if (rc != RH_OK)
        goto out;
    rc = slot_take("snapshot", fname, &data, len, &md, true, &s, e);
    if (rc != RH_OK)
        goto out;
    slot_free(t->snapshot);
    t->snapshot = s;
    /* Targets roles must now match this snapshot: re-establish them. */
    rc = targets_to_pool(t);
    if (rc != RH_OK) {
        rh_fail(e, rc, "targets: out of memory");
        goto out;
    }
    /* TUF 5.5.7 */
    rc = persist(t, s, e);
out:
    free(data);
    rh_metadata_free(md);
    return rc;
}

/* ---- TUF 5.6: targets and delegated targets ------------------------------------------- */

/* Can a pooled file stand in for the download the snapshot asks for? */
static bool reusable(const tuf_slot *p, const rh_metafile *mf, const rh_pubkey *keys,
                     size_t nkeys, const rh_rolekeys *rk, const char *fname, int64_t now)
{
    rh_error ignored;
    rh_error_clear(&ignored);
    return p->data != NULL && p->md->canonical != NULL && p->md->version == mf->version &&
           p->md->expires > now &&
           check_meta(mf, p->data, p->f.len, fname, &ignored) == RH_OK &&
           verify(p->md, keys, nkeys, rk, p->role, fname, "", &ignored) == RH_OK;
}

/* Establish targets role `name` (top-level or delegated) per TUF 5.6.1-5.6.6, verified with
 * keys/rk (root's targets keys, or the delegating role's delegation keys). */
static rh_err load_targets_role(rh_tuf *t, const char *name, const rh_pubkey *keys, size_t nkeys,
                                const rh_rolekeys *rk, int64_t now, tuf_slot **out,
                                rh_error *e)
{
    bool top = strcmp(name, "targets") == 0;
    ssize_t ti = list_find(&t->targets, name);
    if (ti >= 0) {
        tuf_slot *s = t->targets.v[ti];
        rh_err rc = check_expiry(s->md, s->filename, now, e);
        if (rc == RH_OK)
            *out = s;
        return rc;
    }
    if (!top && (is_top_level(name) || strlen(name) > RH_MAX_ROLE_NAME || name[0] == '\0'))
        return rh_fail(e, RH_EPATH, "delegated role \"%.64s\": not a valid delegated role name",
                       name);
    char metaname[RH_MAX_ROLE_NAME + 8];
    snprintf(metaname, sizeof metaname, "%s.json", name);
    const rh_metafile *mf = rh_snapshot_find(t->snapshot->md, metaname);
    if (mf == NULL)
        return rh_fail(e, RH_ENOTFOUND, "%s: lists no %s", t->snapshot->filename, metaname);
    char fname[RH_TUF_MAX_FILENAME];
    rh_err rc = rh_tuf_filename(name, mf->version, consistent(t), fname, sizeof fname);
    if (rc != RH_OK)
        return rh_fail(e, rc, "%s: role name cannot be a file name", metaname);

    uint8_t *data = NULL;
    size_t len = 0;
    rh_metadata *md = NULL;
    tuf_slot *s = NULL;
    ssize_t pi = list_find(&t->pool, name);
    if (pi >= 0) {
        tuf_slot *p = list_remove(&t->pool, (size_t)pi);
        if (reusable(p, mf, keys, nkeys, rk, fname, now)) {
            rc = slot_set_filename(p, fname);
            if (rc == RH_OK)
                rc = list_insert(&t->targets, top ? 0 : t->targets.n, p);
            if (rc != RH_OK) {
                slot_free(p);
                return rh_fail(e, rc, "%s: out of memory", fname);
            }
            *out = p;
            return RH_OK;
        }
        slot_free(p);
    }
    /* TUF 5.6.1: at most the length the snapshot signs, else a fixed ceiling. */
    size_t max = meta_max(mf, RH_MAX_TARGETS_BYTES);
    rc = fetch(t, fname, max, false, &data, &len, e);
    if (rc != RH_OK)
        return rc;
    /* TUF 5.6.2 */
    rc = check_meta(mf, data, len, fname, e);
    if (rc != RH_OK)
        goto out;
    rc = (t->io.lean_targets ? rh_metadata_parse_lean : rh_metadata_parse)(
        data, len, max, RH_ROLE_TARGETS, fname, &md, e);
    if (rc != RH_OK)
        goto out;
    /* TUF 5.6.3 (top-level: root's targets keys; delegated: the delegator's keys). */
    rc = verify(md, keys, nkeys, rk, name, fname, top ? "root's targets" : "delegated", e);
    if (rc != RH_OK)
        goto out;
    if (md->lean && top) {
        /* Verified: the top-level targets' canonical bytes (as large as the file) are not kept
         * in a lean engine. It is never verified again: only delegated roles are checked again
         * (per delegator, rh_tuf_find_target), and reusable() refuses it (it is refetched). */
        free(md->canonical);
        md->canonical = NULL;
        md->canonical_len = 0;
    }
    /* TUF 5.6.4: the version the snapshot names (and the file name carries). */
    if (md->version != mf->version) {
        rc = rh_fail(e, RH_EVERSION,
                     "%s: contains version %" PRIu64 ", %s lists version %" PRIu64, fname,
                     md->version, t->snapshot->filename, mf->version);
        goto out;
    }
    /* TUF 5.6.5 */
    rc = check_expiry(md, fname, now, e);
    if (rc != RH_OK)
        goto out;
    if (!top && t->targets.n >= RH_TUF_MAX_ROLES) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: more than %d targets roles", fname, RH_TUF_MAX_ROLES);
        goto out;
    }
    rc = slot_take(name, fname, &data, len, &md, true, &s, e);
    if (rc != RH_OK)
        goto out;
    rc = list_insert(&t->targets, top ? 0 : t->targets.n, s);
    if (rc != RH_OK) {
        slot_free(s);
        rh_fail(e, rc, "%s: out of memory", fname);
        goto out;
    }
    /* TUF 5.6.6 */
    rc = persist(t, s, e);
    if (rc == RH_OK && top && t->io.lean_targets && t->io.persist != NULL) {
        /* Persisted: a lean engine keeps of the top-level targets only its parsed entries. */
        free(s->data);
        s->data = NULL;
        s->f.data = NULL;
    }
    if (rc == RH_OK)
        *out = s;
out:
    free(data);
    rh_metadata_free(md);
    return rc;
}

static rh_err load_top_targets(rh_tuf *t, int64_t now, tuf_slot **out, rh_error *e)
{
    const rh_metadata *root = root_md(t);
    return load_targets_role(t, "targets", root->u.root.keys, root->u.root.nkeys,
                             &root->u.root.roles[RH_ROLE_TARGETS], now, out, e);
}

/* ---- refresh ----------------------------------------------------------------------------- */

rh_err rh_tuf_refresh(rh_tuf *t, int64_t now, rh_error *e)
{
    if (t == NULL || t->roots.n == 0)
        return rh_fail(e, RH_EINVAL, "refresh: no trusted root loaded");
    t->refresh_ran = true;
    t->complete = false;
    size_t start_root = t->roots.n - 1;
    rh_err rc = update_root(t, e);
    if (rc == RH_OK)
        rc = after_root(t, start_root, now, e);
    if (rc == RH_OK)
        rc = update_timestamp(t, now, e);
    if (rc == RH_OK)
        rc = update_snapshot(t, now, e);
    tuf_slot *top = NULL;
    if (rc == RH_OK)
        rc = load_top_targets(t, now, &top, e);
    if (rc == RH_OK)
        t->complete = true;
    return rc;
}

rh_err rh_tuf_refresh_all(rh_tuf *t, int64_t now, rh_error *e)
{
    rh_err rc = rh_tuf_refresh(t, now, e);
    if (rc != RH_OK)
        return rc;
    t->complete = false;
    /* Worklist over the trusted roles: each role's delegations are loaded once, in order. */
    for (size_t i = 0; i < t->targets.n; i++) {
        const rh_metadata *m = t->targets.v[i]->md;
        if (!m->u.targets.has_delegations)
            continue;
        for (size_t j = 0; j < m->u.targets.nroles; j++) {
            const rh_delegated_role *d = &m->u.targets.roles[j];
            tuf_slot *s = NULL;
            rc = load_targets_role(t, d->name, m->u.targets.keys, m->u.targets.nkeys, &d->keys,
                                   now, &s, e);
            if (rc != RH_OK)
                return rc;
        }
    }
    t->complete = true;
    return RH_OK;
}

/* ---- TUF 5.6.7: delegation search ------------------------------------------------------ */

typedef struct search_item {
    const char *name;
    const rh_metadata *delegator; /* NULL for the top-level targets role */
    const rh_delegated_role *role;
} search_item;

rh_err rh_tuf_find_target(rh_tuf *t, const char *path, int64_t now, const rh_target **out,
                          rh_error *e)
{
    if (t == NULL || path == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "find target: invalid argument");
    if (!t->complete)
        return rh_fail(e, RH_EINVAL, "%s: no successful refresh to search", path);
    size_t plen = strlen(path);
    if (plen == 0 || plen > RH_MAX_TARGET_PATH)
        return rh_fail(e, RH_EPATH, "target path: empty or longer than %d bytes",
                       RH_MAX_TARGET_PATH);

    rh_err rc = RH_OK;
    search_item *stack = NULL;
    size_t nstack = 0, capstack = 0;
    const char *visited[RH_MAX_DELEGATIONS];
    size_t nvisited = 0;
    const rh_target *found = NULL;

    stack = malloc(8 * sizeof *stack);
    if (stack == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
    capstack = 8;
    stack[nstack++] = (search_item){"targets", NULL, NULL};

    while (nstack > 0 && found == NULL) {
        search_item it = stack[--nstack];
        /* TUF 5.6.7.1: a role visited before is skipped (cycles). */
        bool seen = false;
        for (size_t i = 0; i < nvisited && !seen; i++)
            seen = strcmp(visited[i], it.name) == 0;
        if (seen)
            continue;
        /* TUF 5.6.7.1: stop after an application-specific number of roles. */
        if (nvisited == RH_MAX_DELEGATIONS) {
            rc = rh_fail(e, RH_ETOOBIG,
                         "%s: search stopped after %d delegated roles without finding it", path,
                         RH_MAX_DELEGATIONS);
            goto out;
        }
        tuf_slot *s = NULL;
        if (it.delegator == NULL)
            rc = load_top_targets(t, now, &s, e);
        else
            rc = load_targets_role(t, it.name, it.delegator->u.targets.keys,
                                   it.delegator->u.targets.nkeys, &it.role->keys, now, &s, e);
        /* TUF 5.6.3: a role is trusted for this delegation only if this delegator's keys and
         * threshold sign it. A role already trusted through another delegator (a role name two
         * delegators share, with different keys) is checked again, so a lookup's verdict never
         * depends on which lookups ran before it. */
        if (rc == RH_OK && it.delegator != NULL)
            rc = verify(s->md, it.delegator->u.targets.keys, it.delegator->u.targets.nkeys,
                        &it.role->keys, s->role, s->filename, "delegated", e);
        if (rc != RH_OK)
            goto out;
        visited[nvisited++] = s->role;
        found = rh_targets_find(s->md, path);
        if (found != NULL || !s->md->u.targets.has_delegations)
            continue;
        /* TUF 5.6.7.2: delegations in order of appearance, so push them reversed; a matching
         * terminating delegation is the last one searched, here or anywhere else. */
        const rh_targets_md *tm = &s->md->u.targets;
        size_t nmatch = 0;
        bool terminate = false;
        for (size_t j = 0; j < tm->nroles && !terminate; j++) {
            if (!rh_delegation_matches(&tm->roles[j], path))
                continue;
            nmatch = j + 1;
            terminate = tm->roles[j].terminating;
        }
        if (terminate)
            nstack = 0;
        for (size_t j = nmatch; j-- > 0;) {
            if (!rh_delegation_matches(&tm->roles[j], path))
                continue;
            if (nstack == capstack) {
                search_item *ns = realloc(stack, capstack * 2 * sizeof *ns);
                if (ns == NULL) {
                    rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
                    goto out;
                }
                stack = ns;
                capstack *= 2;
            }
            stack[nstack++] = (search_item){tm->roles[j].name, s->md, &tm->roles[j]};
        }
    }
    if (found == NULL) {
        rc = rh_fail(e, RH_ENOTFOUND, "%s: no trusted targets role lists this target", path);
        goto out;
    }
    *out = found;
out:
    free(stack);
    return rc;
}

/* ---- accessors --------------------------------------------------------------------------- */

const rh_tuf_file *rh_tuf_file_of(const rh_tuf *t, const char *rolename)
{
    if (t == NULL || rolename == NULL)
        return NULL;
    if (strcmp(rolename, "root") == 0)
        return t->roots.n ? &t->roots.v[t->roots.n - 1]->f : NULL;
    if (strcmp(rolename, "timestamp") == 0)
        return t->timestamp ? &t->timestamp->f : NULL;
    if (strcmp(rolename, "snapshot") == 0)
        return t->snapshot ? &t->snapshot->f : NULL;
    ssize_t i = list_find(&t->targets, rolename);
    return i >= 0 ? &t->targets.v[i]->f : NULL;
}

const rh_metadata *rh_tuf_trusted(const rh_tuf *t, const char *rolename)
{
    const rh_tuf_file *f = rh_tuf_file_of(t, rolename);
    return f ? f->md : NULL;
}

size_t rh_tuf_nfiles(const rh_tuf *t)
{
    if (t == NULL)
        return 0;
    return t->roots.n + (t->timestamp != NULL) + (t->snapshot != NULL) + t->targets.n;
}

const rh_tuf_file *rh_tuf_file_at(const rh_tuf *t, size_t i)
{
    if (t == NULL)
        return NULL;
    if (i < t->roots.n)
        return &t->roots.v[i]->f;
    i -= t->roots.n;
    if (t->timestamp != NULL) {
        if (i == 0)
            return &t->timestamp->f;
        i--;
    }
    if (t->snapshot != NULL) {
        if (i == 0)
            return &t->snapshot->f;
        i--;
    }
    return i < t->targets.n ? &t->targets.v[i]->f : NULL;
}

void rh_tuf_root_versions(const rh_tuf *t, uint64_t *first, uint64_t *last)
{
    const rh_metadata *r = t ? root_md(t) : NULL;
    if (first != NULL)
        *first = r ? t->first_root : 0;
    if (last != NULL)
        *last = r ? r->version : 0;
}

rh_err rh_tuf_foreach_target(const rh_tuf *t,
                             rh_err (*fn)(void *ctx, const char *rolename, const rh_target *tg,
                                          rh_error *e),
                             void *ctx, rh_error *e)
{
    if (t == NULL || fn == NULL)
        return rh_fail(e, RH_EINVAL, "foreach target: invalid argument");
    for (size_t i = 0; i < t->targets.n; i++) {
        const tuf_slot *s = t->targets.v[i];
        for (size_t j = 0; j < s->md->u.targets.ntargets; j++) {
            rh_err rc = fn(ctx, s->role, &s->md->u.targets.targets[j], e);
            if (rc != RH_OK)
                return rc;
        }
    }
    return RH_OK;
}
