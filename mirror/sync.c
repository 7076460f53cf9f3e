/* sync.c -- one mirror sync round: verify the whole repository, stage, publish atomically, GC. */
#include "mirror/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "manifest/hash.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "manifest/tuf.h"
#include "mirror/dl.h"
#include "mirror/mfs.h"
#include "mirror/plan.h"
#include "mirror/state.h"
#include "mirror/witness.h"
#include "net/fetch.h"

typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static rh_err strv_add(strv *s, const char *x)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (nv == NULL)
            return RH_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    if ((s->v[s->n] = strdup(x)) == NULL)
        return RH_ENOMEM;
    s->n++;
    return RH_OK;
}

static bool strv_has(const strv *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

static void strv_free(strv *s)
{
    rh_mfs_strv_free(s->v, s->n);
    memset(s, 0, sizeof *s);
}

/* timestamp.json fetched on a second connection while the engine probes for the next root
 * version: the two requests share one round trip instead of taking one each (at 280 ms RTT a
 * round trip is 10% of a 2,000-target sync). The bytes are verified exactly as if fetched in
 * turn; a failed prefetch is dropped and the engine fetches again, and so is one that predates
 * a new root trusted by the probe (a key rotation may have come with a new timestamp), so the
 * engine sees what a fetch in turn would have given it. */
typedef struct prefetch {
    pthread_t th;
    bool running; /* started and not yet joined */
    bool done;    /* joined: rc, body and err are final */
    const rh_fetch_opts *fo;
    char url[RH_NET_MAX_URL];
    rh_buf body;
    rh_err rc;
    rh_error err;
} prefetch;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *prefetch_main(void *arg)
{
    prefetch *p = arg;
    rh_http *h = NULL;
    p->rc = rh_http_new(p->fo, &h, &p->err);
    if (p->rc == RH_OK)
        p->rc = rh_http_get_buf(h, p->url, RH_MAX_TIMESTAMP_BYTES, &p->body, NULL, &p->err);
    rh_http_free(h);
    return NULL;
}

static void prefetch_start(prefetch *p, const rh_fetch_opts *fo, const char *upstream)
{
    memset(p, 0, sizeof *p);
    p->fo = fo;
    rh_buf_init(&p->body, RH_MAX_TIMESTAMP_BYTES);
    if (snprintf(p->url, sizeof p->url, "%s/metadata/timestamp.json", upstream) >=
        (int)sizeof p->url)
        return;
    p->running = pthread_create(&p->th, NULL, prefetch_main, p) == 0;
}

static void prefetch_join(prefetch *p)
{
    if (p->running) {
        pthread_join(p->th, NULL);
        p->running = false;
        p->done = true;
    }
}

static void prefetch_end(prefetch *p)
{
    prefetch_join(p);
    rh_buf_cleanup(&p->body);
    memset(p, 0, sizeof *p);
}

/* A first metadata fetch (connection, TLS, one request: two round trips or more) slower than
 * this says the upstream is far: the download connections are then opened while the rest of
 * the metadata arrives (rh_dl_warm_start). Nearby (loopback, a LAN) a round trip costs less
 * than the handshakes would, and nothing is opened ahead. */
#define RH_SYNC_WARM_MS 40

typedef struct sctx {
    const rh_sync_opts *o;
    const char *upstream;
    rh_http *http;
    prefetch ts;
    bool refreshing;        /* inside rh_tuf_refresh_all: a snapshot fetched now is new */
    bool new_root;          /* a new root was trusted in this refresh */
    int64_t first_fetch_ms; /* duration of this upstream's first network fetch, -1: none yet */
    rh_dl_warm *warm;       /* download connections being opened to upstream, or NULL */
    char *pub_meta, *stg_meta;
    strv local;  /* metadata names read from public/ (already published) */
    strv staged; /* metadata names written to staging/ */
    strv archived; /* logged history written to staging/ by archive_logged: published with the
                    * round, once its targets are in */
    rh_sync_result *res;
    /* A witness: the top-level targets as persisted (the lean engine keeps none of its
     * bytes): name, length and sha256, for the transparency-log check. */
    bool witness;
    char targets_file[RH_TUF_MAX_FILENAME];
    size_t targets_len;
    uint8_t targets_sha256[32];
} sctx;

static bool safe_name(const char *name)
{
    return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}

/* "snapshot.json" or "<version>.snapshot.json" (not a delegated role named "*.snapshot"). */
static bool is_snapshot(const char *name)
{
    size_t d = strspn(name, "0123456789");
    return strcmp(name, "snapshot.json") == 0 ||
           (d > 0 && name[d] == '.' && strcmp(name + d + 1, "snapshot.json") == 0);
}

/* Metadata: an immutable file already published is read back (verified again by the engine);
 * anything else comes from the upstream's /metadata/. */
static rh_err fetch_cb(void *ctx, const char *name, size_t max, rh_buf *out, rh_error *e)
{
    sctx *c = ctx;
    if (!safe_name(name))
        return rh_fail(e, RH_EPATH, "metadata name \"%.64s\": unsafe", name);
    if (strcmp(name, "timestamp.json") != 0) {
        char *p = rh_mfs_join(c->pub_meta, name);
        if (p == NULL)
            return rh_fail(e, RH_ENOMEM, "%s: out of memory", name);
        rh_err rc = rh_mfs_read(p, max, out, NULL);
        free(p);
        if (rc == RH_OK)
            return strv_add(&c->local, name) == RH_OK
                       ? RH_OK
                       : rh_fail(e, RH_ENOMEM, "%s: out of memory", name);
        rh_buf_reset(out);
    }
    if (strcmp(name, "timestamp.json") == 0 && (c->ts.running || c->ts.done)) {
        prefetch_join(&c->ts);
        c->ts.done = false; /* used once: a second fetch in this round goes to the network */
        if (!c->new_root && c->ts.rc == RH_OK && c->ts.body.len <= max &&
            rh_buf_append(out, c->ts.body.data, c->ts.body.len) == RH_OK) {
            c->res->bytes += c->ts.body.len;
            c->res->objects++;
            return RH_OK;
        }
    }
    char enc[RH_TUF_MAX_FILENAME * 3 + 1], url[RH_NET_MAX_URL];
    if (rh_plan_url_path(name, enc, sizeof enc) != RH_OK ||
        snprintf(url, sizeof url, "%s/metadata/%s", c->upstream, enc) >= (int)sizeof url)
        return rh_fail(e, RH_ETOOBIG, "%s: URL too long", name);
    size_t before = out->len;
    if (c->refreshing && c->warm == NULL && c->first_fetch_ms >= RH_SYNC_WARM_MS &&
        is_snapshot(name))
        c->warm = rh_dl_warm_start(c->upstream, c->o->ca); /* targets will follow */
    int64_t t0 = mono_ms();
    rh_err rc = rh_http_get_buf(c->http, url, max, out, NULL, e);
    if (c->first_fetch_ms < 0)
        c->first_fetch_ms = mono_ms() - t0;
    if (rc == RH_OK) {
        c->res->bytes += out->len - before;
        c->res->objects++;
    }
    return rc;
}

static rh_err persist_cb(void *ctx, const char *role, uint64_t version, const char *filename,
                         const uint8_t *p, size_t n, rh_error *e)
{
    (void)version;
    sctx *c = ctx;
    if (c->refreshing && strcmp(role, "root") == 0)
        c->new_root = true; /* the prefetched timestamp predates it: not used */
    if (!safe_name(filename))
        return rh_fail(e, RH_EPATH, "metadata name \"%.64s\": unsafe", filename);
    if (c->witness && strcmp(role, "targets") == 0) {
        c->targets_file[0] = '\0';
        if (rh_hash_once(RH_SHA256, p, n, c->targets_sha256) != RH_OK)
            return rh_fail(e, RH_ECRYPTO, "%s: cannot hash", filename);
        snprintf(c->targets_file, sizeof c->targets_file, "%s", filename);
        c->targets_len = n;
    }
    if (strv_has(&c->local, filename) && strcmp(filename, "timestamp.json") != 0)
        return RH_OK;
    char *path = rh_mfs_join(c->stg_meta, filename);
    if (path == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", filename);
    rh_err rc = rh_mfs_write(path, p, n, e);
    free(path);
    if (rc == RH_OK && !strv_has(&c->staged, filename) && strv_add(&c->staged, filename) != RH_OK)
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", filename);
    return rc;
}

/* Remove every file under dir (staging cleanup); directories are pruned. */
static rh_err clear_tree(const char *base, const char *sub, rh_error *e)
{
    char **v = NULL;
    size_t n = 0;
    rh_err rc = rh_mfs_list(base, sub, &v, &n, e);
    for (size_t i = 0; rc == RH_OK && i < n; i++) {
        char *p = rh_mfs_join(base, v[i]);
        if (p == NULL || (unlink(p) != 0 && errno != ENOENT))
            rc = rh_fail(e, RH_EIO, "%s/%s: cannot remove: %s", base, v[i],
                         p == NULL ? "out of memory" : strerror(errno));
        free(p);
    }
    rh_mfs_strv_free(v, n);
    return rc;
}

static void load_cached(rh_tuf *t, const char *pub_meta)
{
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_metadata *ts = NULL;
    char name[64];
    char *p = rh_mfs_join(pub_meta, "timestamp.json");
    if (p == NULL || rh_mfs_read(p, RH_MAX_TIMESTAMP_BYTES, &b, NULL) != RH_OK ||
        rh_metadata_parse(b.data, b.len, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP, p, &ts,
                          NULL) != RH_OK)
        goto out;
    (void)rh_tuf_load_cached(t, "timestamp", b.data, b.len, p, NULL);
    snprintf(name, sizeof name, "%" PRIu64 ".snapshot.json", ts->u.timestamp.version);
    free(p);
    rh_buf_reset(&b);
    if ((p = rh_mfs_join(pub_meta, name)) == NULL ||
        rh_mfs_read(p, RH_MAX_SNAPSHOT_BYTES, &b, NULL) != RH_OK)
        goto out;
    (void)rh_tuf_load_cached(t, "snapshot", b.data, b.len, p, NULL);
    /* Not the targets: fetch_cb reads N.targets.json from public/ when the new snapshot still
     * names it, and a cached copy in the engine's pool (its bytes, their copy, its canonical
     * form) next to the new one would double the peak of a large repository (69 MiB instead of
     * 57 for a 16 MB targets.json). */
out:
    free(p);
    rh_metadata_free(ts);
    rh_buf_cleanup(&b);
}

/* Targets of the trusted repository, as planner and downloader entries. */
typedef struct tlist {
    rh_plan_target *pt;
    rh_dl_item *dl;
    rh_hashes *h;
    size_t n, cap;
    uint64_t max_size;
} tlist;

static rh_err add_target(void *ctx, const char *rolename, const rh_target *tg, rh_error *e)
{
    tlist *l = ctx;
    if (!tg->hashes.has_sha256)
        return rh_fail(e, RH_EHASH, "role %s: target \"%.200s\" has no sha256 (needed for its "
                       "consistent-snapshot name)", rolename, tg->path);
    if (tg->length > l->max_size)
        return rh_fail(e, RH_ETOOBIG, "role %s: target \"%.200s\": %" PRIu64 " bytes, more than "
                       "sync.max_target_size %" PRIu64, rolename, tg->path, tg->length,
                       l->max_size);
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        rh_plan_target *a = realloc(l->pt, nc * sizeof *a);
        if (a == NULL)
            return rh_fail(e, RH_ENOMEM, "out of memory");
        l->pt = a;
        rh_dl_item *b = realloc(l->dl, nc * sizeof *b);
        if (b == NULL)
            return rh_fail(e, RH_ENOMEM, "out of memory");
        l->dl = b;
        rh_hashes *c = realloc(l->h, nc * sizeof *c);
        if (c == NULL)
            return rh_fail(e, RH_ENOMEM, "out of memory");
        l->h = c;
        l->cap = nc;
    }
    char rel[RH_MIRROR_MAX_RELPATH];
    rh_err rc = rh_plan_target_relpath(tg->path, tg->hashes.sha256, rel, sizeof rel, e);
    if (rc != RH_OK) {
        rh_error_prefix(e, "role %s", rolename);
        return rc;
    }
    char *r = strdup(rel);
    if (r == NULL)
        return rh_fail(e, RH_ENOMEM, "out of memory");
    l->pt[l->n].relpath = r;
    l->pt[l->n].length = tg->length;
    l->h[l->n] = tg->hashes;
    l->n++;
    return RH_OK;
}

static void tlist_free(tlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->pt[i].relpath);
    free(l->pt);
    free(l->dl);
    free(l->h);
}

/* Rename staging/rel to public/rel. Durable: fsync each directory it leaves behind (the caller
 * fsyncs the last one). Not durable: no fsync at all; the caller syncs the file system (one
 * journal commit for a whole tree of targets instead of one per directory). */
static rh_err publish_one(const char *data, const char *rel, bool durable, char *lastdir,
                          size_t lastsz, rh_error *e)
{
    char src[PATH_MAX], dst[PATH_MAX];
    if (snprintf(src, sizeof src, "%s/staging/%s", data, rel) >= (int)sizeof src ||
        snprintf(dst, sizeof dst, "%s/public/%s", data, rel) >= (int)sizeof dst)
        return rh_fail(e, RH_ETOOBIG, "%s: path too long", rel);
    char *slash = strrchr(dst, '/');
    *slash = '\0';
    bool same_dir = strcmp(lastdir, dst) == 0; /* made by the previous file: no mkdir walk */
    *slash = '/';
    rh_err rc = RH_OK;
    if (!same_dir)
        rc = durable ? rh_mfs_mkparent(dst, e) : rh_mfs_mkparent_nosync(dst, e);
    if (rc != RH_OK)
        return rc;
    if (rename(src, dst) != 0)
        return rh_fail(e, RH_EIO, "publish %s: rename: %s", rel, strerror(errno));
    *slash = '\0';
    if (!same_dir) {
        if (durable && lastdir[0] != '\0' && (rc = rh_mfs_fsync_dir(lastdir, e)) != RH_OK)
            return rc;
        snprintf(lastdir, lastsz, "%s", dst);
    }
    return RH_OK;
}

rh_err rh_mirror_sync_once(const rh_sync_opts *o, rh_sync_result *resp, rh_error *e)
{
    return rh_mirror_sync_round(o, NULL, resp, NULL, e);
}

/* DESIGN 8: the verified log's tiles and bundles, then its checkpoint, before any metadata. */
static rh_err publish_log(const rh_sync_opts *o, rh_witness_run *wr, const char *stg,
                          int64_t now, rh_log_round *lr, rh_error *e)
{
    char **v = NULL;
    size_t n = 0;
    char lastdir[PATH_MAX] = "";
    rh_buf note;
    rh_buf_init(&note, RH_NOTE_MAX_BYTES);
    rh_err rc = rh_mfs_list(stg, "log", &v, &n, e);
    for (size_t i = 0; rc == RH_OK && i < n; i++)
        rc = publish_one(o->data, v[i], true, lastdir, sizeof lastdir, e);
    if (rc == RH_OK && lastdir[0] != '\0')
        rc = rh_mfs_fsync_dir(lastdir, e);
    if (rc != RH_OK || !wr->rewrite_cp)
        goto out;
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/log/checkpoint", stg) >= (int)sizeof p) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: path too long", stg);
        goto out;
    }
    lastdir[0] = '\0';
    if ((rc = rh_witness_run_note(wr, now, &note, e)) != RH_OK ||
        (rc = rh_mfs_mkparent(p, e)) != RH_OK ||
        (rc = rh_mfs_write(p, note.data, note.len, e)) != RH_OK ||
        (rc = publish_one(o->data, "log/checkpoint", true, lastdir, sizeof lastdir, e)) !=
            RH_OK ||
        (rc = rh_mfs_fsync_dir(lastdir, e)) != RH_OK)
        goto out;
    lr->cosigned = wr->cosign;
out:
    rh_mfs_strv_free(v, n);
    rh_buf_cleanup(&note);
    return rc;
}

/* DESIGN 8: a witness keeps every metadata file its verified log names, so an auditor can
 * replay the whole history from any mirror (rhine-audit list, verify-build). Files this round
 * publishes are skipped (the plan does it); others missing from public/ are fetched from the
 * upstream, each bounded by and checked against its log entry (length and sha256), and staged
 * (c->archived) to be published with the round (publish_archived): a round that fails later
 * publishes none of them. Timestamps never point at them, so no served version changes. */
static rh_err archive_logged(sctx *c, const rh_log_view *view, const rh_tuf *t, const char *stg,
                             rh_error *e)
{
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_err rc = RH_OK;
    for (uint64_t i = 0; rc == RH_OK && i < view->size; i++) {
        const rh_log_ventry *en = &view->ent[i];
        char fn[RH_TUF_MAX_FILENAME + 1], rel[RH_TUF_MAX_FILENAME + 16];
        if (rh_tuf_filename(en->role, en->version, true, fn, sizeof fn) != RH_OK ||
            !safe_name(fn))
            continue; /* a role name no file can carry: nothing to archive */
        bool current = false;
        for (size_t k = 0; k < rh_tuf_nfiles(t) && !current; k++)
            current = strcmp(rh_tuf_file_at(t, k)->filename, fn) == 0;
        char *have = rh_mfs_join(c->pub_meta, fn);
        bool present = have != NULL && access(have, F_OK) == 0;
        free(have);
        if (current || present)
            continue;
        if (en->length > RH_MAX_JSON_BYTES) {
            rc = rh_fail(e, RH_ETOOBIG, "log entry %" PRIu64 ": %s is logged as %" PRIu64
                         " bytes, past the metadata limit", i, fn, en->length);
            break;
        }
        rh_buf_reset(&b);
        snprintf(rel, sizeof rel, "metadata/%s", fn);
        char *sp = rh_mfs_join(stg, rel);
        if (sp == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", fn);
            break;
        }
        rh_error fe;
        rh_error_clear(&fe);
        if ((rc = fetch_cb(c, fn, (size_t)en->length, &b, &fe)) == RH_ENOTFOUND) {
            rc = RH_OK; /* collected upstream (an ordinary mirror): best effort, not a stall */
            free(sp);
            continue;
        }
        if (rc != RH_OK)
            rh_fail(e, rc, "%s", fe.msg);
        if (rc == RH_OK &&
            (rc = rh_witness_check_logged(view, en->role, en->version, fn, b.data, b.len, e)) ==
                RH_OK &&
            (rc = rh_mfs_write(sp, b.data, b.len, e)) == RH_OK &&
            !strv_has(&c->archived, fn) && strv_add(&c->archived, fn) != RH_OK)
            rc = rh_fail(e, RH_ENOMEM, "out of memory");
        if (rc != RH_OK)
            rh_error_prefix(e, "archiving logged %s", fn);
        free(sp);
    }
    rh_buf_cleanup(&b);
    return rc;
}

/* The history archive_logged staged, renamed into public/metadata/ and made durable. */
static rh_err publish_archived(const char *data, const strv *archived, rh_error *e)
{
    char lastdir[PATH_MAX] = "", rel[RH_TUF_MAX_FILENAME + 16];
    rh_err rc = RH_OK;
    for (size_t i = 0; rc == RH_OK && i < archived->n; i++) {
        snprintf(rel, sizeof rel, "metadata/%s", archived->v[i]);
        rc = publish_one(data, rel, true, lastdir, sizeof lastdir, e);
    }
    if (rc == RH_OK && lastdir[0] != '\0')
        rc = rh_mfs_fsync_dir(lastdir, e);
    return rc;
}

rh_err rh_mirror_sync_round(const rh_sync_opts *o, const rh_witness_opts *w,
                            rh_sync_result *resp, rh_log_round *lrp, rh_error *e)
{
    rh_sync_result res;
    memset(&res, 0, sizeof res);
    rh_log_round lr;
    memset(&lr, 0, sizeof lr);
    bool witness = w != NULL && w->log_key != NULL;
    rh_witness_run wr;
    memset(&wr, 0, sizeof wr);
    int64_t t0 = mono_ms();
    int64_t now = o->now != 0 ? o->now : (int64_t)time(NULL);
    rh_err rc = RH_OK;
    int lockfd = -1;
    rh_tuf *t = NULL;
    rh_buf root;
    rh_buf_init(&root, RH_MAX_ROOT_BYTES);
    tlist tl;
    memset(&tl, 0, sizeof tl);
    rh_plan plan;
    memset(&plan, 0, sizeof plan);
    rh_mirror_state st;
    memset(&st, 0, sizeof st);
    char **present = NULL;
    size_t npresent = 0;
    rh_plan_meta *metas = NULL;
    const char **ups = NULL;
    sctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.res = &res;
    c.witness = witness;
    char pub[PATH_MAX], stg[PATH_MAX], statep[PATH_MAX], lockp[PATH_MAX];
    if (o->nupstreams == 0 || o->root == NULL || o->data == NULL) {
        rc = rh_fail(e, RH_ECONFIG, "sync: need at least one upstream, a root and a data dir");
        goto out;
    }
    snprintf(pub, sizeof pub, "%s/public", o->data);
    snprintf(stg, sizeof stg, "%s/staging", o->data);
    snprintf(statep, sizeof statep, "%s/state.json", o->data);
    if (snprintf(lockp, sizeof lockp, "%s/.lock", o->data) >= (int)sizeof lockp) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: path too long", o->data);
        goto out;
    }
    c.pub_meta = rh_mfs_join(pub, "metadata");
    c.stg_meta = rh_mfs_join(stg, "metadata");
    if (c.pub_meta == NULL || c.stg_meta == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "sync: out of memory");
        goto out;
    }
    if ((rc = rh_mfs_mkdirs(c.pub_meta, e)) != RH_OK ||
        (rc = rh_mfs_mkdirs(c.stg_meta, e)) != RH_OK)
        goto out;
    lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: %s", lockp,
                     lockfd < 0 ? strerror(errno) : "locked by another sync of this data dir");
        goto out;
    }
    if ((rc = rh_mfs_read(o->root, RH_MAX_ROOT_BYTES, &root, e)) != RH_OK)
        goto out;
    if ((rc = rh_mirror_state_load(statep, &st, e)) != RH_OK)
        goto out;
    if (witness) {
        if ((rc = rh_witness_run_init(&wr, w, e)) != RH_OK ||
            (rc = clear_tree(stg, "log", e)) != RH_OK)
            goto out;
        if (st.log_inconsistent != NULL) { /* refused before any network traffic */
            rc = rh_witness_run_sync(&wr, NULL, o->upstreams[0], o->data, &st, now, &lr, e);
            goto out;
        }
    }

    /* TUF over the whole repository, one upstream after the other until one verifies. */
    rh_fetch_opts fo = {
        .ca_file = o->ca,
        .low_speed_limit = (long)o->params.low_speed_limit,
        .low_speed_time_s = (long)o->params.low_speed_time,
        .total_timeout_ms = (long)o->params.timeout * 1000,
        .http2 = true,
        .h2c = rh_dl_h2c_ok(),
        .user_agent = "rhine-mirror/1",
    };
    size_t used = 0;
    rh_error last;
    rh_error_clear(&last);
    for (size_t u = 0; u < o->nupstreams; u++) {
        if (o->cancel != NULL && atomic_load(o->cancel)) {
            rh_fail(&last, RH_ENET, "sync: cancelled");
            break;
        }
        rh_error ue;
        rh_error_clear(&ue);
        rh_tuf_free(t);
        t = NULL;
        rh_http_free(c.http);
        c.http = NULL;
        strv_free(&c.local);
        strv_free(&c.staged);
        c.upstream = o->upstreams[u];
        rh_tuf_io io = {&c, fetch_cb, persist_cb, true}; /* lean: the mirror reads no custom */
        rh_err r2;
        if ((r2 = clear_tree(stg, "metadata", &ue)) != RH_OK ||
            (r2 = rh_tuf_new(&io, &t)) != RH_OK || (r2 = rh_http_new(&fo, &c.http, &ue)) != RH_OK ||
            (r2 = rh_tuf_load_root(t, root.data, root.len, o->root, &ue)) != RH_OK) {
            rc = r2 == RH_OK ? RH_ENOMEM : r2;
            rh_fail(e, rc, "%s", ue.msg[0] ? ue.msg : "sync: cannot start the TUF engine");
            goto out;
        }
        load_cached(t, c.pub_meta);
        c.first_fetch_ms = -1;
        c.new_root = false;
        prefetch_start(&c.ts, &fo, c.upstream);
        c.refreshing = true;
        r2 = rh_tuf_refresh_all(t, now, &ue);
        c.refreshing = false;
        prefetch_end(&c.ts);
        if (r2 != RH_OK) {
            rh_dl_warm_free(c.warm);
            c.warm = NULL;
        }
        const rh_metadata *tsm = rh_tuf_trusted(t, "timestamp");
        if (tsm != NULL && tsm->version > res.upstream_timestamp) {
            res.upstream_timestamp = tsm->version;
            res.upstream_timestamp_expires = tsm->expires;
        }
        if (r2 == RH_OK) {
            used = u;
            rh_error_clear(&last);
            break;
        }
        res.failures[r2]++;
        rh_error_clear(&last);
        rh_fail(&last, r2, "upstream %s: %s", c.upstream, ue.msg);
        fprintf(stderr, "rhine-mirror: %s\n", last.msg);
    }
    if (last.code != RH_OK) {
        rc = rh_fail(e, last.code, "%s", last.msg);
        goto out;
    }
    snprintf(res.upstream, sizeof res.upstream, "%s", o->upstreams[used]);

    /* DESIGN 8: the log, read after the metadata (the origin logs before it signs a timestamp),
     * must extend the checkpoint accepted last and hold every metadata file of this version. */
    if (witness) {
        rc = rh_witness_run_sync(&wr, c.http, o->upstreams[used], o->data, &st, now, &lr, e);
        if (lr.inconsistent) {
            rh_error se;
            rh_error_clear(&se);
            rh_mirror_state ks = st;
            if (rh_mirror_state_save(statep, &ks, &se) != RH_OK)
                fprintf(stderr, "rhine-mirror: %s\n", se.msg);
            goto out;
        }
        if (rc != RH_OK) {
            res.failures[rc]++;
            goto out;
        }
        for (size_t i = 0; i < rh_tuf_nfiles(t); i++) {
            const rh_tuf_file *f = rh_tuf_file_at(t, i);
            if (strcmp(f->role, "timestamp") == 0)
                continue; /* timestamps are not logged: they name logged snapshots */
            if (f->data != NULL)
                rc = rh_witness_check_logged(wr.view, f->role, f->version, f->filename, f->data,
                                             f->len, e);
            else if (strcmp(f->filename, c.targets_file) == 0 && f->len == c.targets_len)
                rc = rh_witness_check_logged_sha256(wr.view, f->role, f->version, f->filename,
                                                    f->len, c.targets_sha256, e);
            else
                rc = rh_fail(e, RH_EINVAL, "metadata/%s: bytes not kept", f->filename);
            if (rc != RH_OK) {
                lr.unlogged = true;
                rh_error_prefix(e, "refusing timestamp version %" PRIu64 " from %s",
                                res.upstream_timestamp, o->upstreams[used]);
                goto out;
            }
        }
    }

    if (witness) {
        /* The new checkpoint is verified and consistent: it becomes the baseline now, before
         * anything cosigned can be served, so a round that fails later can never leave a
         * cosigned checkpoint that the next round does not judge against (no second tree of
         * the same size gets cosigned). */
        char *acc = strndup((const char *)wr.cur.data, wr.cur.len);
        if (acc == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "sync: out of memory");
            goto out;
        }
        rh_mirror_state ks = st;
        ks.log_checkpoint = acc;
        rc = rh_mirror_state_save(statep, &ks, e);
        free(st.log_checkpoint);
        st.log_checkpoint = acc;
        if (rc != RH_OK || (rc = archive_logged(&c, wr.view, t, stg, e)) != RH_OK)
            goto out;
    }

    /* What the new version consists of, and what public/ holds. */
    if ((rc = rh_mfs_list(pub, "metadata", &present, &npresent, e)) != RH_OK ||
        (rc = rh_mfs_list(pub, "targets", &present, &npresent, e)) != RH_OK)
        goto out;
    size_t nf = rh_tuf_nfiles(t);
    metas = calloc(nf + 1, sizeof *metas);
    if (metas == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "sync: out of memory");
        goto out;
    }
    for (size_t i = 0; i < nf; i++) {
        const rh_tuf_file *f = rh_tuf_file_at(t, i);
        metas[i].filename = f->filename;
        metas[i].role = f->role;
        metas[i].version = f->version;
        metas[i].staged = strv_has(&c.staged, f->filename);
        if (!f->fetched && !metas[i].staged) {
            /* The pinned root: publish it too unless public/ has it. */
            bool have = false;
            for (size_t k = 0; k < npresent && !have; k++)
                have = strncmp(present[k], "metadata/", 9) == 0 &&
                       strcmp(present[k] + 9, f->filename) == 0;
            if (!have && strcmp(f->role, "root") == 0) {
                if ((rc = persist_cb(&c, f->role, f->version, f->filename, f->data, f->len, e)) !=
                    RH_OK)
                    goto out;
                metas[i].staged = true;
            }
        }
    }
    tl.max_size = o->params.max_target_size;
    if ((rc = rh_tuf_foreach_target(t, add_target, &tl, e)) != RH_OK) {
        res.failures[rc]++;
        goto out;
    }
    rh_plan_in in = {metas, nf, tl.pt, tl.n, (const char *const *)present, npresent,
                     st.superseded, st.nsuperseded, now, o->params.grace_period};
    if ((rc = rh_plan_make(&in, &plan, e)) != RH_OK)
        goto out;

    /* Targets into staging, over every upstream (the verified one first). */
    ups = calloc(o->nupstreams, sizeof *ups);
    if (ups == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "sync: out of memory");
        goto out;
    }
    ups[0] = o->upstreams[used];
    for (size_t u = 0, k = 1; u < o->nupstreams; u++)
        if (u != used)
            ups[k++] = o->upstreams[u];
    for (size_t i = 0; i < plan.nfetch; i++) {
        size_t ti = plan.fetch[i];
        tl.dl[i].relpath = tl.pt[ti].relpath;
        tl.dl[i].length = tl.pt[ti].length;
        tl.dl[i].hashes = &tl.h[ti];
    }
    /* The plan and the target list own what the rest of the round needs: the verified
     * metadata (each file's bytes, its canonical form and its parsed tree: for 10,000 targets
     * about 24 MiB of the sync's peak RSS) goes before the downloads, whose transfers need the
     * memory. */
    free(metas);
    metas = NULL;
    rh_mfs_strv_free(present, npresent);
    present = NULL;
    npresent = 0;
    rh_tuf_free(t);
    t = NULL;
    rh_dl_opts dlo = {ups, o->nupstreams, stg, o->ca, (long)o->params.concurrency,
                      (long)o->params.timeout, (long)o->params.low_speed_limit,
                      (long)o->params.low_speed_time, (long)o->params.retries, o->cancel,
                      c.warm, 0};
    c.warm = NULL; /* rh_dl_run takes it over */
    rh_dl_stats ds;
    memset(&ds, 0, sizeof ds);
    int64_t t_dl = mono_ms();
    res.metadata_seconds = (double)(t_dl - t0) / 1000.0;
    rc = rh_dl_run(&dlo, tl.dl, plan.nfetch, &ds, e);
    int64_t t_pub = mono_ms();
    res.targets_seconds = (double)(t_pub - t_dl) / 1000.0;
    res.bytes += ds.bytes;
    res.objects += ds.objects;
    for (int k = 0; k < RH_ERR_COUNT; k++)
        res.failures[k] += ds.failures[k];
    if (rc != RH_OK)
        goto out;

    /* DESIGN 5.4: publish in dependency order, each by rename; timestamp.json last. The
     * archived history first: no version names it, and it is in the log being published. */
    if (witness && ((rc = publish_archived(o->data, &c.archived, e)) != RH_OK ||
                    (rc = publish_log(o, &wr, stg, now, &lr, e)) != RH_OK))
        goto out;
    /* Targets: renamed without an fsync each, then one syncfs before the first metadata file
     * that may name them. Metadata: durable one by one, so a power cut keeps the order too. */
    char lastdir[PATH_MAX] = "";
    bool unsynced = false;
    for (size_t i = 0; i < plan.npublish; i++) {
        bool meta = strncmp(plan.publish[i], "metadata/", 9) == 0;
        if (meta && unsynced) {
            if ((rc = rh_mfs_syncfs(pub, e)) != RH_OK)
                goto out;
            unsynced = false;
            lastdir[0] = '\0';
        }
        if ((rc = publish_one(o->data, plan.publish[i], meta, lastdir, sizeof lastdir, e)) !=
            RH_OK)
            goto out;
        if (meta && (rc = rh_mfs_fsync_dir(lastdir, e)) != RH_OK)
            goto out;
        unsynced = unsynced || !meta;
    }
    if (unsynced && (rc = rh_mfs_syncfs(pub, e)) != RH_OK)
        goto out;
    res.publish_seconds = (double)(mono_ms() - t_pub) / 1000.0;
    res.published_files = plan.npublish;
    res.published = plan.npublish > 0;

    /* Garbage past its grace period, then the state. A witness keeps all logged metadata. */
    for (size_t i = 0; i < plan.ngc; i++) {
        if (witness && strncmp(plan.gc[i], "metadata/", 9) == 0)
            continue;
        char *p = rh_mfs_join(pub, plan.gc[i]);
        if (p != NULL && unlink(p) == 0)
            res.collected_files++;
        free(p);
    }
    if (plan.ngc > 0) {
        char *tdir = rh_mfs_join(pub, "targets");
        if (tdir != NULL)
            rh_mfs_prune_dirs(tdir);
        free(tdir);
    }
    rh_mirror_state ns = {plan.superseded, plan.nsuperseded, now, st.log_checkpoint,
                          st.log_inconsistent};
    char *accepted = NULL;
    if (witness) {
        /* The upstream's note as received: the next round's consistency baseline. */
        if ((accepted = strndup((const char *)wr.cur.data, wr.cur.len)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "sync: out of memory");
            goto out;
        }
        ns.log_checkpoint = accepted;
    }
    rc = rh_mirror_state_save(statep, &ns, e);
    free(accepted);
    if (rc != RH_OK)
        goto out;
    /* Staging keeps nothing after a complete round (stale partials included). */
    if ((rc = clear_tree(stg, "targets", e)) != RH_OK ||
        (rc = clear_tree(stg, "metadata", e)) != RH_OK || (rc = clear_tree(stg, "log", e)) != RH_OK)
        goto out;
    char *sdir = rh_mfs_join(stg, "targets");
    if (sdir != NULL)
        rh_mfs_prune_dirs(sdir);
    free(sdir);
    if (witness && (sdir = rh_mfs_join(stg, "log")) != NULL)
        rh_mfs_prune_dirs(sdir);
    if (witness)
        free(sdir);

out:
    if (rc != RH_OK && rc < RH_ERR_COUNT && res.failures[rc] == 0 &&
        (rc == RH_EHASH || rc == RH_ETOOBIG))
        res.failures[rc]++;
    if (o->data != NULL)
        rh_mirror_served_versions(o->data, &res.served);
    res.seconds = (double)(mono_ms() - t0) / 1000.0;
    res.bytes += lr.bytes;
    res.objects += lr.objects;
    if (resp != NULL)
        *resp = res;
    if (lrp != NULL)
        *lrp = lr;
    rh_witness_run_cleanup(&wr);
    free(ups);
    free(metas);
    rh_mfs_strv_free(present, npresent);
    rh_mirror_state_cleanup(&st);
    rh_plan_cleanup(&plan);
    tlist_free(&tl);
    strv_free(&c.local);
    strv_free(&c.staged);
    strv_free(&c.archived);
    rh_dl_warm_free(c.warm);
    rh_http_free(c.http);
    rh_tuf_free(t);
    free(c.pub_meta);
    free(c.stg_meta);
    rh_buf_cleanup(&root);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}

static uint64_t newest_root(const char *pub_meta)
{
    char **v = NULL;
    size_t n = 0;
    uint64_t best = 0;
    if (rh_mfs_list(pub_meta, ".", &v, &n, NULL) == RH_OK) {
        for (size_t i = 0; i < n; i++) {
            const char *name = v[i] + 2; /* "./" */
            char *end = NULL;
            errno = 0;
            unsigned long long x = strtoull(name, &end, 10);
            if (errno == 0 && end != name && strcmp(end, ".root.json") == 0 && x > best)
                best = x;
        }
    }
    rh_mfs_strv_free(v, n);
    return best;
}

void rh_mirror_served_versions(const char *data, rh_sync_versions *out)
{
    memset(out, 0, sizeof *out);
    char meta[PATH_MAX], p[PATH_MAX];
    snprintf(meta, sizeof meta, "%s/public/metadata", data);
    out->v[RH_ROLE_ROOT] = newest_root(meta);
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_metadata *ts = NULL, *sn = NULL, *tg = NULL;
    if (snprintf(p, sizeof p, "%s/timestamp.json", meta) >= (int)sizeof p ||
        rh_mfs_read(p, RH_MAX_TIMESTAMP_BYTES, &b, NULL) != RH_OK ||
        rh_metadata_parse(b.data, b.len, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP, p, &ts,
                          NULL) != RH_OK)
        goto out;
    out->v[RH_ROLE_TIMESTAMP] = ts->version;
    out->timestamp_expires = ts->expires;
    rh_buf_reset(&b);
    if (snprintf(p, sizeof p, "%s/%" PRIu64 ".snapshot.json", meta, ts->u.timestamp.version) >=
            (int)sizeof p ||
        rh_mfs_read(p, RH_MAX_SNAPSHOT_BYTES, &b, NULL) != RH_OK ||
        rh_metadata_parse(b.data, b.len, RH_MAX_SNAPSHOT_BYTES, RH_ROLE_SNAPSHOT, p, &sn,
                          NULL) != RH_OK)
        goto out;
    out->v[RH_ROLE_SNAPSHOT] = sn->version;
    const rh_metafile *tm = rh_snapshot_find(sn, "targets.json");
    if (tm != NULL)
        out->v[RH_ROLE_TARGETS] = tm->version;
out:
    rh_metadata_free(ts);
    rh_metadata_free(sn);
    rh_metadata_free(tg);
    rh_buf_cleanup(&b);
}

rh_err rh_mirror_trusted_root(const char *data, const char *pinned, rh_buf *out, rh_error *e)
{
    char meta[PATH_MAX], p[PATH_MAX];
    snprintf(meta, sizeof meta, "%s/public/metadata", data);
    uint64_t v = newest_root(meta);
    if (v > 0) {
        rh_err rc = RH_ETOOBIG;
        if (snprintf(p, sizeof p, "%s/%" PRIu64 ".root.json", meta, v) < (int)sizeof p)
            rc = rh_mfs_read(p, RH_MAX_ROOT_BYTES, out, e);
        if (rc == RH_OK)
            return rc;
        rh_buf_reset(out);
        rh_error_clear(e);
    }
    return rh_mfs_read(pinned, RH_MAX_ROOT_BYTES, out, e);
}
