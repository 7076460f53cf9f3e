/* client.c -- librhine-client: TUF refresh over mirrors with failover, target fetch, status. */
#include "rhine/client.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/failover.h"
#include "client/install.h"
#include "client/state.h"
#include "client/quorum.h"
#include "manifest/config.h"
#include "manifest/hash.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "manifest/tlog_verify.h"
#include "manifest/tpath.h"
#include "manifest/tuf.h"
#include "net/fetch.h"

#define RH_CLIENT_MAX_MIRRORS     1024   /* mirrors one handle accepts */
#define RH_CLIENT_DEFAULT_TIMEOUT 300L   /* seconds per transfer */
#define RH_CLIENT_ERRMSG_MAX      8192   /* a message: room for a split view's evidence */

typedef struct mirror {
    char *label;   /* what messages name: the base URL, or the metadata URL */
    char *meta;    /* metadata base URL */
    char *targets; /* targets base URL; NULL: this mirror serves no targets */
    char *region;
    char *base;    /* repository base URL (its log is <base>/log/); NULL: metadata_url only */
} mirror;

struct rhine_client {
    char *root_file;
    char *state_dir;
    unsigned flags;
    mirror *m;
    rh_mirror_health *health;
    size_t *order;
    size_t nm;
    rh_http *http;
    rh_tuf *tuf;        /* engine of the last successful update */
    struct io_ctx *tuf_ctx; /* its callbacks' context */
    size_t tuf_mirror;  /* the mirror it used (delegated roles come from it) */
    bool updated;
    rh_metadata *st_md[RH_ROLE_COUNT]; /* rhine_client_status from disk */
    rh_log_keys *wkeys;  /* transparency (DESIGN 8): NULL = off */
    rh_log_view *wview;  /* the log of the checkpoint accepted by this update */
    uint8_t *wnote;      /* that checkpoint with its cosignatures, to store on success */
    size_t wnotelen;
    rhine_code wcode;    /* the last transparency refusal (werr says why) */
    char werr[RH_CLIENT_ERRMSG_MAX];
    char err[RH_CLIENT_ERRMSG_MAX];
};

/* Context of the engine's callbacks: one mirror. */
typedef struct io_ctx {
    rhine_client *c;
    size_t mi;
    bool missing; /* a metadata file was missing (404) on this mirror */
    bool defer;   /* transparency: hold files back until the log check passed */
} io_ctx;

static const char *const code_names[RHINE_ERR_COUNT] = {
    "ok", "out of memory", "invalid", "config", "io", "network", "not found",
    "verify", "expired", "rollback", "too big", "witness quorum", "log inconsistent",
    "unlogged",
};

const char *rhine_code_name(rhine_code c)
{
    return (unsigned)c < RHINE_ERR_COUNT ? code_names[c] : "unknown";
}

static rhine_code map_err(rh_err rc)
{
    switch (rc) {
    case RH_OK: return RHINE_OK;
    case RH_ENOMEM: return RHINE_ERR_NOMEM;
    case RH_EINVAL: return RHINE_ERR_INVALID;
    case RH_ECONFIG: return RHINE_ERR_CONFIG;
    case RH_EIO: return RHINE_ERR_IO;
    case RH_ENET: return RHINE_ERR_NETWORK;
    case RH_ENOTFOUND: return RHINE_ERR_NOT_FOUND;
    case RH_EEXPIRED: return RHINE_ERR_EXPIRED;
    case RH_EROLLBACK: return RHINE_ERR_ROLLBACK;
    case RH_ETOOBIG: return RHINE_ERR_TOO_BIG;
    case RH_ELOG: return RHINE_ERR_UNLOGGED; /* the log-specific codes are set explicitly */
    default: return RHINE_ERR_VERIFY;
    }
}

/* Did the mirror serve bytes that failed verification (it lies, or is broken)? */
static bool is_lie(rh_err rc)
{
    return rc == RH_ESIG || rc == RH_EHASH || rc == RH_EVERSION || rc == RH_ETOOBIG ||
           rc == RH_EPARSE || rc == RH_ETYPE || rc == RH_EPATH;
}

/* Errors of this machine, not of the mirror: no failover helps. */
static bool is_local(rh_err rc)
{
    return rc == RH_EIO || rc == RH_ENOMEM || rc == RH_EINVAL || rc == RH_ECRYPTO;
}

/* Rank for choosing which mirror's failure to report: lies first, then stale, then network. */
static int severity(rh_err rc)
{
    if (is_lie(rc) || rc == RH_ELOG)
        return 3;
    if (rc == RH_EEXPIRED || rc == RH_EROLLBACK)
        return 2;
    return 1;
}

static void set_err(rhine_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(rhine_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

/* "<mirror>: <reason>", without repeating the mirror when the reason already starts with it. */
static void set_mirror_err(rhine_client *c, size_t mi, const char *msg)
{
    const char *label = c->m[mi].label;
    if (strncmp(msg, label, strlen(label)) == 0)
        set_err(c, "%s", msg);
    else
        set_err(c, "%s: %s", label, msg);
}

static void errbuf_put(char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf && errlen > 0)
        snprintf(errbuf, errlen, "%s", msg);
}

static char *dup_trim(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *join_dup(const char *base, const char *rel)
{
    size_t n = strlen(base) + strlen(rel) + 2;
    char *d = malloc(n);
    if (d && rh_url_join(base, rel, d, n) != RH_OK) {
        free(d);
        d = NULL;
    }
    return d;
}

void rhine_client_free(rhine_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nm; i++) {
        free(c->m[i].label);
        free(c->m[i].meta);
        free(c->m[i].targets);
        free(c->m[i].region);
        free(c->m[i].base);
    }
    for (int r = 0; r < RH_ROLE_COUNT; r++)
        rh_metadata_free(c->st_md[r]);
    free(c->m);
    free(c->health);
    free(c->order);
    rh_tuf_free(c->tuf);
    free(c->tuf_ctx);
    rh_http_free(c->http);
    free(c->wkeys);
    rh_log_view_free(c->wview);
    free(c->wnote);
    free(c->root_file);
    free(c->state_dir);
    free(c);
}

rhine_code rhine_client_new(const rhine_client_opts *o, rhine_client **out, char *errbuf,
                            size_t errlen)
{
    if (!o || !out || !o->state_dir || !o->mirrors || o->nmirrors == 0 ||
        o->nmirrors > RH_CLIENT_MAX_MIRRORS) {
        errbuf_put(errbuf, errlen, "rhine_client_new: need a state directory and 1..1024 mirrors");
        return RHINE_ERR_INVALID;
    }
    rhine_client *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->flags = o->flags;
    c->m = calloc(o->nmirrors, sizeof(*c->m));
    c->health = calloc(o->nmirrors, sizeof(*c->health));
    c->order = calloc(o->nmirrors, sizeof(*c->order));
    c->state_dir = dup_trim(o->state_dir);
    if (!c->m || !c->health || !c->order || !c->state_dir ||
        (o->root_file && !(c->root_file = strdup(o->root_file))))
        goto oom;
    /* The state directory is the client's own: made on first use (its parent must exist). */
    if (mkdir(c->state_dir, 0700) != 0 && errno != EEXIST) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: mkdir: %s", c->state_dir, strerror(errno));
        errbuf_put(errbuf, errlen, msg);
        rhine_client_free(c);
        return RHINE_ERR_IO;
    }
    c->nm = o->nmirrors;
    for (size_t i = 0; i < o->nmirrors; i++) {
        const rhine_mirror *s = &o->mirrors[i];
        mirror *d = &c->m[i];
        if (!s->url && !s->metadata_url) {
            errbuf_put(errbuf, errlen, "rhine_client_new: a mirror needs url or metadata_url");
            rhine_client_free(c);
            return RHINE_ERR_INVALID;
        }
        d->label = dup_trim(s->url ? s->url : s->metadata_url);
        d->meta = s->metadata_url ? dup_trim(s->metadata_url) : join_dup(s->url, "metadata");
        if (s->targets_url)
            d->targets = dup_trim(s->targets_url);
        else if (s->url)
            d->targets = join_dup(s->url, "targets");
        if (s->url)
            d->base = dup_trim(s->url);
        if (!d->label || !d->meta || ((s->targets_url || s->url) && !d->targets) ||
            (s->url && !d->base) || (s->region && !(d->region = strdup(s->region))))
            goto oom;
        if (strlen(d->meta) + RH_TUF_MAX_FILENAME + 2 > RH_NET_MAX_URL) {
            errbuf_put(errbuf, errlen, "rhine_client_new: mirror URL too long");
            rhine_client_free(c);
            return RHINE_ERR_INVALID;
        }
        c->health[i].priority = s->priority;
        c->health[i].latency_s = -1;
    }
    long timeout = o->timeout_s > 0 ? o->timeout_s : RH_CLIENT_DEFAULT_TIMEOUT;
    rh_fetch_opts fo = {
        .ca_file = o->ca_file,
        .low_speed_limit = o->low_speed_limit,
        .low_speed_time_s = o->low_speed_time_s,
        .total_timeout_ms = timeout * 1000,
        .http2 = true,
        .user_agent = "rhine-client/1",
    };
    rh_error e;
    rh_error_clear(&e);
    rh_err rc = rh_http_new(&fo, &c->http, &e);
    if (rc != RH_OK) {
        errbuf_put(errbuf, errlen, e.msg);
        rhine_client_free(c);
        return map_err(rc);
    }
    *out = c;
    return RHINE_OK;
oom:
    rhine_client_free(c);
    errbuf_put(errbuf, errlen, "rhine_client_new: out of memory");
    return RHINE_ERR_NOMEM;
}

/* Transparency on: keys checked (rh_wit_keys_check) and copied. Message in c->err. */
static rhine_code set_witnesses(rhine_client *c, const rh_log_keys *keys)
{
    rh_error e;
    rh_error_clear(&e);
    if (rh_wit_keys_check(keys, &e) != RH_OK) {
        set_err(c, "transparency: %s", e.msg);
        return RHINE_ERR_INVALID;
    }
    if (c->updated) {
        set_err(c, "transparency: set the witnesses before the first update");
        return RHINE_ERR_INVALID;
    }
    rh_log_keys *k = malloc(sizeof(*k));
    if (!k) {
        set_err(c, "transparency: out of memory");
        return RHINE_ERR_NOMEM;
    }
    *k = *keys;
    free(c->wkeys);
    c->wkeys = k;
    return RHINE_OK;
}

rhine_code rhine_client_set_witnesses(rhine_client *c, const char *log_key,
                                      const char *const *witness_keys, size_t nwitnesses,
                                      size_t quorum)
{
    if (!c)
        return RHINE_ERR_INVALID;
    c->err[0] = '\0';
    if (!log_key || !witness_keys || nwitnesses == 0 || nwitnesses > RH_LOGV_MAX_WITNESSES) {
        set_err(c, "rhine_client_set_witnesses: need a log key and 1..%d witness keys",
                RH_LOGV_MAX_WITNESSES);
        return RHINE_ERR_INVALID;
    }
    rh_log_keys *k = calloc(1, sizeof(*k));
    if (!k) {
        set_err(c, "transparency: out of memory");
        return RHINE_ERR_NOMEM;
    }
    rhine_code code = RHINE_ERR_INVALID;
    rh_error e;
    rh_error_clear(&e);
    if (rh_note_vkey_parse(log_key, &k->log, &e) != RH_OK) {
        set_err(c, "transparency: log key: %s", e.msg);
        goto out;
    }
    for (size_t i = 0; i < nwitnesses; i++) {
        if (!witness_keys[i] || rh_note_vkey_parse(witness_keys[i], &k->witnesses[i], &e) !=
                                    RH_OK) {
            set_err(c, "transparency: witness key %zu: %s", i,
                    witness_keys[i] ? e.msg : "missing");
            goto out;
        }
    }
    k->nwitnesses = nwitnesses;
    k->quorum = quorum;
    code = set_witnesses(c, k);
out:
    free(k);
    return code;
}

/* The config's "witnesses" block as keys: every key read (inline or from its file), each
 * witness's name that of its key. Returns RHINE_OK, RHINE_ERR_CONFIG, RHINE_ERR_NOMEM. */
static rhine_code config_witnesses(const char *path, const rh_client_config *cfg,
                                   rh_log_keys **out, char *errbuf, size_t errlen)
{
    rh_log_keys *k = calloc(1, sizeof(*k));
    if (!k) {
        errbuf_put(errbuf, errlen, "config: out of memory");
        return RHINE_ERR_NOMEM;
    }
    char msg[RH_ERRMSG_MAX + 256];
    rh_error e;
    rh_error_clear(&e);
    if (rh_config_vkey(cfg->witnesses.log_key, &k->log, &e) != RH_OK) {
        snprintf(msg, sizeof(msg), "%s: witnesses.log_key: %s", path, e.msg);
        goto bad;
    }
    if (cfg->witnesses.nkeys > RH_LOGV_MAX_WITNESSES) {
        snprintf(msg, sizeof(msg), "%s: witnesses.keys: at most %d keys", path,
                 RH_LOGV_MAX_WITNESSES);
        goto bad;
    }
    for (size_t i = 0; i < cfg->witnesses.nkeys; i++) {
        const rh_client_witness *w = &cfg->witnesses.keys[i];
        if (rh_config_vkey(w->key, &k->witnesses[i], &e) != RH_OK) {
            snprintf(msg, sizeof(msg), "%s: witnesses.keys[%zu].key: %s", path, i, e.msg);
            goto bad;
        }
        if (strcmp(k->witnesses[i].name, w->name) != 0) {
            snprintf(msg, sizeof(msg),
                     "%s: witnesses.keys[%zu].name: \"%s\" is not the key's name \"%s\"", path,
                     i, w->name, k->witnesses[i].name);
            goto bad;
        }
    }
    k->nwitnesses = cfg->witnesses.nkeys;
    k->quorum = cfg->witnesses.quorum > 0 ? (size_t)cfg->witnesses.quorum : 0;
    if (rh_wit_keys_check(k, &e) != RH_OK) {
        snprintf(msg, sizeof(msg), "%s: witnesses: %s", path, e.msg);
        goto bad;
    }
    *out = k;
    return RHINE_OK;
bad:
    free(k);
    errbuf_put(errbuf, errlen, msg);
    return RHINE_ERR_CONFIG;
}

rhine_code rhine_client_new_from_config(const char *config_path, rhine_client **out,
                                        char *errbuf, size_t errlen)
{
    rh_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    rh_error e;
    rh_error_clear(&e);
    if (!config_path) {
        errbuf_put(errbuf, errlen, "rhine_client_new_from_config: no path");
        return RHINE_ERR_INVALID;
    }
    rh_err rc = rh_config_load_client(config_path, &cfg, &e);
    if (rc != RH_OK) {
        errbuf_put(errbuf, errlen, e.msg);
        return rc == RH_ECONFIG || rc == RH_ETOOBIG ? RHINE_ERR_CONFIG : map_err(rc);
    }
    rhine_code code = RHINE_ERR_NOMEM;
    rhine_client *c = NULL;
    rh_log_keys *keys = NULL;
    rhine_mirror *ms = calloc(cfg.nmirrors ? cfg.nmirrors : 1, sizeof(*ms));
    if (!ms) {
        errbuf_put(errbuf, errlen, "rhine_client_new_from_config: out of memory");
        goto out;
    }
    for (size_t i = 0; i < cfg.nmirrors; i++) {
        ms[i].url = cfg.mirrors[i].url;
        ms[i].region = cfg.mirrors[i].region;
        ms[i].priority = (long)cfg.mirrors[i].priority;
    }
    rhine_client_opts o = {
        .root_file = cfg.root,
        .state_dir = cfg.state,
        .ca_file = cfg.ca,
        .mirrors = ms,
        .nmirrors = cfg.nmirrors,
        .timeout_s = (long)cfg.timeout,
        .low_speed_limit = cfg.low_speed_limit > (uint64_t)LONG_MAX ? LONG_MAX
                                                                   : (long)cfg.low_speed_limit,
        .low_speed_time_s = (long)cfg.low_speed_time,
    };
    if (cfg.has_witnesses && (code = config_witnesses(config_path, &cfg, &keys, errbuf, errlen)) !=
                                 RHINE_OK)
        goto out;
    if ((code = rhine_client_new(&o, &c, errbuf, errlen)) != RHINE_OK)
        goto out;
    if (keys && (code = set_witnesses(c, keys)) != RHINE_OK) {
        errbuf_put(errbuf, errlen, c->err);
        rhine_client_free(c);
        goto out;
    }
    *out = c;
out:
    free(keys);
    free(ms);
    rh_client_config_cleanup(&cfg);
    return code;
}

const char *rhine_client_errmsg(const rhine_client *c)
{
    return c ? c->err : "no client";
}

/* --- the engine's I/O over one mirror -------------------------------------------------------- */

static rh_err buf_sink(void *ctx, const uint8_t *p, size_t n, rh_error *e)
{
    rh_buf *b = ctx;
    rh_err rc = rh_buf_append(b, p, n);
    if (rc == RH_ETOOBIG)
        return rh_fail(e, rc, "more than %zu bytes", b->max);
    if (rc != RH_OK)
        return rh_fail(e, rc, "out of memory");
    return RH_OK;
}

static rh_err io_fetch(void *ctx, const char *name, size_t max, rh_buf *out, rh_error *e)
{
    io_ctx *x = ctx;
    rhine_client *c = x->c;
    char url[RH_NET_MAX_URL];
    if (rh_url_join(c->m[x->mi].meta, name, url, sizeof(url)) != RH_OK)
        return rh_fail(e, RH_EINVAL, "%s/%s: URL too long", c->m[x->mi].meta, name);
    rh_fetch_req req = {.url = url, .max_bytes = max, .sink = buf_sink, .sink_ctx = out};
    rh_fetch_result res;
    rh_err rc = rh_http_get(c->http, &req, &res, e);
    if (rc == RH_OK)
        rh_failover_ok(&c->health[x->mi], res.total_s);
    else if (rc == RH_ENOTFOUND)
        x->missing = true;
    return rc;
}

static rh_err persist_role(rhine_client *c, const char *role, const uint8_t *p, size_t n,
                           rh_error *e)
{
    char name[RH_STATE_NAME_MAX];
    if (rh_state_filename(role, name, sizeof(name)) != RH_OK)
        return rh_fail(e, RH_EPATH, "role name \"%.64s\" cannot be a file name", role);
    return rh_state_write(c->state_dir, name, p, n, e);
}

static rh_err wit_check_file(rhine_client *c, const char *role, uint64_t version,
                             const char *filename, const uint8_t *p, size_t n, rh_error *e);
static rh_err wit_store(rhine_client *c, rh_error *e);

static rh_err io_persist(void *ctx, const char *role, uint64_t version, const char *filename,
                         const uint8_t *p, size_t n, rh_error *e)
{
    io_ctx *x = ctx;
    rhine_client *c = x->c;
    if (c->wkeys && x->defer)
        return RH_OK; /* the update persists after the transparency check (wit_gate) */
    if (c->wkeys && strcmp(role, "timestamp") != 0) {
        /* A delegated role met on a target search: logged, or not trusted on disk. */
        rh_err rc = wit_check_file(c, role, version, filename, p, n, e);
        if (rc == RH_OK)
            rc = wit_store(c, e);
        if (rc != RH_OK)
            return rc;
    }
    return persist_role(c, role, p, n, e);
}

/* Read the trusted root: state_dir/root.json, else the pinned root_file. */
static rh_err read_root(rhine_client *c, rh_buf *b, char *src, size_t srcsz, rh_error *e)
{
    snprintf(src, srcsz, "%s/root.json", c->state_dir);
    rh_error le;
    rh_error_clear(&le);
    rh_err rc = rh_state_read(src, RH_MAX_ROOT_BYTES, b, &le);
    if (rc == RH_ENOTFOUND && c->root_file) {
        snprintf(src, srcsz, "%s", c->root_file);
        rh_buf_reset(b);
        return rh_state_read(src, RH_MAX_ROOT_BYTES, b, e);
    }
    if (rc == RH_ENOTFOUND)
        return rh_fail(e, RH_EIO, "%s: no trusted root (run init or configure root)", src);
    if (rc != RH_OK)
        return rh_fail(e, rc, "%s", le.msg);
    return RH_OK;
}

/* TUF 5.2 and 5.1: a fresh engine with the trusted root and every cached role of the state
 * directory (for rollback checks); cached files that do not parse are ignored. */
static rh_err engine_load(rhine_client *c, io_ctx *x, rh_tuf **out, rh_error *e)
{
    rh_tuf_io io = {.ctx = x, .fetch = io_fetch, .persist = io_persist};
    rh_tuf *t = NULL;
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    char src[PATH_MAX];
    DIR *d = NULL;
    rh_err rc = rh_tuf_new(&io, &t);
    if (rc != RH_OK) {
        rc = rh_fail(e, rc, "client: out of memory");
        goto out;
    }
    if ((rc = read_root(c, &b, src, sizeof(src), e)) != RH_OK)
        goto out;
    if ((rc = rh_tuf_load_root(t, b.data, b.len, src, e)) != RH_OK)
        goto out;
    /* The pinned root verified: keep it in the state directory from now on. */
    if (c->root_file && strcmp(src, c->root_file) == 0 &&
        (rc = rh_state_write(c->state_dir, "root.json", b.data, b.len, e)) != RH_OK)
        goto out;
    d = opendir(c->state_dir);
    size_t seen = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && seen < RH_TUF_MAX_ROLES) {
        const char *n = de->d_name;
        size_t nl = strlen(n);
        if (n[0] == '.' || nl <= 5 || strcmp(n + nl - 5, ".json") != 0 ||
            strcmp(n, "root.json") == 0)
            continue;
        char role[RH_STATE_NAME_MAX];
        if (rh_url_decode(n, nl - 5, role, sizeof(role), NULL) != RH_OK)
            continue;
        if ((size_t)snprintf(src, sizeof(src), "%s/%s", c->state_dir, n) >= sizeof(src))
            continue;
        seen++;
        rh_buf_reset(&b);
        rh_error ignored;
        rh_error_clear(&ignored);
        size_t max = strcmp(role, "timestamp") == 0 ? RH_MAX_TIMESTAMP_BYTES : RH_MAX_JSON_BYTES;
        if (rh_state_read(src, max, &b, &ignored) == RH_OK)
            (void)rh_tuf_load_cached(t, role, b.data, b.len, src, &ignored);
    }
    *out = t;
    t = NULL;
    rc = RH_OK;
out:
    if (d)
        closedir(d);
    rh_buf_cleanup(&b);
    rh_tuf_free(t);
    return rc;
}

/* --- transparency (DESIGN 8): witnessed checkpoints, consistency, inclusion ------------------ */

typedef struct log_ctx {
    rhine_client *c;
    size_t mi;
} log_ctx;

/* rh_log_src over one mirror: GET <base>/<path>, at most max bytes. */
static rh_err log_get(void *ctx, const char *path, size_t max, rh_buf *out, rh_error *e)
{
    log_ctx *x = ctx;
    const mirror *m = &x->c->m[x->mi];
    char url[RH_NET_MAX_URL];
    if (rh_url_join(m->base, path, url, sizeof(url)) != RH_OK)
        return rh_fail(e, RH_EINVAL, "%s/%s: URL too long", m->base, path);
    rh_buf_reset(out); /* the verifier reuses its buffer: out holds this file only */
    rh_fetch_req req = {.url = url, .max_bytes = max, .sink = buf_sink, .sink_ctx = out};
    return rh_http_get(x->c->http, &req, NULL, e);
}

/* Size and root of a verified note, for messages: "size N root <hex8>". */
static void note_brief(const rh_log_keys *keys, const uint8_t *p, size_t n, char *out,
                       size_t outsz)
{
    rh_log_keys logonly = *keys;
    logonly.nwitnesses = 0;
    logonly.quorum = 0;
    rh_checkpoint cp;
    memset(&cp, 0, sizeof(cp));
    rh_error ig;
    rh_error_clear(&ig);
    if (rh_log_checkpoint_verify(p, n, "checkpoint", &logonly, &cp, NULL, &ig) != RH_OK) {
        snprintf(out, outsz, "unverifiable");
        return;
    }
    char hex[65];
    rh_hex_encode(cp.root, 32, hex);
    snprintf(out, outsz, "size %llu root %.8s", (unsigned long long)cp.size, hex);
    rh_checkpoint_cleanup(&cp);
}

/* Keep both checkpoints of a fork in the state directory (best effort: the refusal stands). */
static void write_evidence(rhine_client *c, const rh_buf *old, const rh_buf *cur, const char *why)
{
    rh_buf b;
    rh_buf_init(&b, 4 * RH_NOTE_MAX_BYTES);
    rh_error ig;
    rh_error_clear(&ig);
    if (rh_buf_appendf(&b, "# %s\n# stored checkpoint (%s/%s):\n", why, c->state_dir,
                       RH_WIT_STATE_FILE) == RH_OK &&
        rh_buf_append(&b, old->data, old->len) == RH_OK &&
        rh_buf_appendf(&b, "# offered checkpoint, cosigned by the quorum:\n") == RH_OK &&
        rh_buf_append(&b, cur->data, cur->len) == RH_OK)
        if (rh_state_write(c->state_dir, RH_WIT_EVIDENCE_FILE, b.data, b.len, &ig) != RH_OK)
            rh_error_clear(&ig); /* the message already says what happened */
    rh_buf_cleanup(&b);
}

/* Issue 7: the checkpoint this update trusts. GET <base>/log/checkpoint from every mirror with
 * a base URL; the largest text cosigned by the quorum (cosignatures united across mirrors); one
 * append-only history with the stored checkpoint, judged on the larger one's tree (the kept
 * entries, or read and verified through a mirror serving it, with failover). Sets c->wview
 * (cut to the cosigned checkpoint) and c->wnote, or returns the refusal with c->werr. */
static rhine_code wit_establish(rhine_client *c)
{
    if (c->wview)
        return RHINE_OK;
    rh_wit w;
    memset(&w, 0, sizeof(w));
    rh_buf b, cur, old;
    rh_buf_init(&b, RH_NOTE_MAX_BYTES);
    rh_buf_init(&cur, 2 * RH_NOTE_MAX_BYTES);
    rh_buf_init(&old, RH_NOTE_MAX_BYTES);
    size_t *try = calloc(c->nm, sizeof(*try));
    size_t *obs_mirror = calloc(c->nm, sizeof(*obs_mirror)); /* w.obs[i] came from mirror [i] */
    rh_log_view *view = NULL, *known = NULL; /* known: the stored checkpoint's kept entries */
    rh_checkpoint ocp; /* the stored checkpoint, parsed */
    memset(&ocp, 0, sizeof(ocp));
    rhine_code code = RHINE_ERR_NOMEM;
    rh_error e;
    rh_error_clear(&e);
    snprintf(c->werr, sizeof(c->werr), "transparency: out of memory");
    if (!try || !obs_mirror || rh_wit_init(&w, c->wkeys, &e) != RH_OK)
        goto out;
    for (size_t mi = 0; mi < c->nm; mi++) {
        if (!c->m[mi].base)
            continue;
        log_ctx lx = {c, mi};
        rh_buf_reset(&b);
        rh_error fe;
        rh_error_clear(&fe);
        rh_err rc = log_get(&lx, "log/checkpoint", RH_NOTE_MAX_BYTES, &b, &fe);
        if (rc != RH_OK && fe.code == RH_OK)
            fe.code = rc;
        if (rh_wit_add(&w, c->m[mi].label, b.data, b.len, rc == RH_OK ? NULL : &fe) != RH_OK)
            goto out;
        obs_mirror[w.nobs - 1] = mi; /* rh_wit_add adds exactly one observation */
    }
    size_t gi;
    if (!rh_wit_choose(&w, &gi)) {
        char ev[RH_CLIENT_ERRMSG_MAX - 256];
        rh_wit_evidence(&w, ev, sizeof(ev));
        snprintf(c->werr, sizeof(c->werr),
                 "witness quorum not met: no log checkpoint is cosigned by %zu of the %zu "
                 "configured witnesses (split view or witnesses behind): %s",
                 c->wkeys->quorum, c->wkeys->nwitnesses, ev);
        code = RHINE_ERR_QUORUM;
        goto out;
    }
    if (rh_wit_note(&w, gi, &cur) != RH_OK)
        goto out;
    /* Mirrors serving the chosen text first, then the others (tiles are verified anyway). */
    size_t ntry = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < w.nobs; i++) {
            bool serves = w.obs[i].err == RH_OK && w.obs[i].group == gi;
            if (serves != (pass == 0))
                continue;
            try[ntry++] = obs_mirror[i]; /* by index: labels are cut to RH_WIT_MAX_LABEL */
        }
    /* Append-only: the stored checkpoint must be a prefix of the chosen one (or the chosen one,
     * from lagging witnesses, a prefix of the stored one). */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", c->state_dir, RH_WIT_STATE_FILE);
    rh_error se;
    rh_error_clear(&se);
    rh_err rc = rh_state_read(path, RH_NOTE_MAX_BYTES, &old, &se);
    bool have_stored = rc == RH_OK, keep_stored = false;
    rh_log_keys logonly = *c->wkeys; /* what a checkpoint accepted before still needs */
    logonly.nwitnesses = 0;
    logonly.quorum = 0;
    if (rc != RH_OK && rc != RH_ENOTFOUND) {
        snprintf(c->werr, sizeof(c->werr), "%s", se.msg);
        code = map_err(rc);
        goto out;
    }
    if (have_stored) {
        if ((rc = rh_log_checkpoint_verify(old.data, old.len, path, &logonly, &ocp, NULL, &se)) !=
            RH_OK) {
            snprintf(c->werr, sizeof(c->werr),
                     "%s (not signed by the configured log key; remove it to start over)", se.msg);
            code = RHINE_ERR_IO;
            goto out;
        }
        rh_checkpoint ccp;
        memset(&ccp, 0, sizeof(ccp));
        rh_error pe;
        rh_error_clear(&pe);
        rc = rh_checkpoint_parse(w.g[gi].text, w.g[gi].textlen, "log/checkpoint", &ccp, &pe);
        bool same_log = rc == RH_OK && strcmp(ccp.origin, ocp.origin) == 0;
        if (rc == RH_OK && !same_log) /* both signed by the log key: no append-only history */
            snprintf(c->werr, sizeof(c->werr),
                     "log inconsistent: the checkpoint stored in %s is of log \"%s\", the one "
                     "cosigned by the witnesses of log \"%s\"; both kept in %s/%s",
                     path, ocp.origin, ccp.origin, c->state_dir, RH_WIT_EVIDENCE_FILE);
        rh_checkpoint_cleanup(&ccp);
        if (rc != RH_OK) { /* rh_wit_choose parsed it already: only out of memory */
            snprintf(c->werr, sizeof(c->werr), "%s", pe.msg);
            code = map_err(rc);
            goto out;
        }
        if (!same_log) {
            write_evidence(c, &old, &cur, "the two checkpoints name different logs");
            code = RHINE_ERR_LOG_FORK;
            goto out;
        }
        keep_stored = ocp.size > w.g[gi].size;
        /* Its entries, kept by the update that stored it: a cache, used only when they are
         * exactly the stored checkpoint's tree (anything else: read the log as if new). */
        char kp[PATH_MAX];
        snprintf(kp, sizeof(kp), "%s/%s", c->state_dir, RH_WIT_ENTRIES_FILE);
        rh_buf kb;
        rh_buf_init(&kb, RH_WIT_ENTRIES_MAX);
        rh_error ke;
        rh_error_clear(&ke);
        if (rh_state_read(kp, RH_WIT_ENTRIES_MAX, &kb, &ke) != RH_OK ||
            rh_log_view_from_entries(kb.data, kb.len, kp, &ocp, &known, &ke) != RH_OK)
            known = NULL;
        rh_buf_cleanup(&kb);
    }
    /* The larger of the two trees, verified against its own signed checkpoint: the kept
     * entries when they are that tree, else read through a mirror that serves it (failover):
     * whole (entries, root and every hash tile), or with the kept entries only the bundles
     * after them. Tiles are not signed, so a mirror serving bad ones is only skipped, never
     * taken for a fork. The stored checkpoint was accepted with the quorum of its day: it
     * needs the log key alone. */
    const rh_buf *big = keep_stored ? &old : &cur;
    rh_err last = RH_ENET;
    rh_error le;
    rh_error_clear(&le);
    rh_fail(&le, RH_ENET, "no mirror serves the log's tiles");
    const char *lastm = "";
    /* The stored tree itself (verified against the stored checkpoint when read): the larger
     * one, or the cosigned one when both checkpoints are the same. */
    if (known && (keep_stored || (ocp.size == w.g[gi].size &&
                                  rh_ct_equal(ocp.root, w.g[gi].root, sizeof(ocp.root))))) {
        view = known;
        known = NULL;
    }
    for (size_t i = 0; i < ntry && !view; i++) {
        log_ctx lx = {c, try[i]};
        rh_log_src src = {log_get, &lx};
        rh_error re;
        rh_error_clear(&re);
        const char *label = c->m[try[i]].label;
        const rh_log_keys *k = keep_stored ? &logonly : c->wkeys;
        /* With the kept entries only the new tiles; if the tree then misses the root, read
         * it whole from the same mirror, which tells a fork from bad bundles. */
        rc = known ? rh_log_read_after(&src, k, big->data, big->len, label, known, &view, &re)
                   : RH_ELOG;
        if (rc == RH_ELOG) {
            view = NULL;
            rh_error_clear(&re);
            rc = rh_log_read_note(&src, k, big->data, big->len, label, &view, &re);
        }
        if (rc != RH_OK) {
            view = NULL;
            last = rc;
            le = re;
            /* Named once: the fetch errors name the URL already, tile mismatches do not. */
            lastm = strncmp(re.msg, label, strlen(label)) == 0 ? "" : label;
            if (rc == RH_ENOMEM)
                break;
        }
    }
    rh_log_view_free(known); /* its entries are in view now, or no mirror served the rest */
    known = NULL;
    if (!view) {
        snprintf(c->werr, sizeof(c->werr), "log: %s%s%s", lastm, lastm[0] ? ": " : "", le.msg);
        code = last == RH_ELOG ? RHINE_ERR_VERIFY
                               : (map_err(last) == RHINE_ERR_NOT_FOUND ? RHINE_ERR_NETWORK
                                                                      : map_err(last));
        goto out;
    }
    if (have_stored) {
        /* The smaller checkpoint must be the root of the verified view's first entries: the
         * two signed checkpoints, and the entries behind the larger, are the evidence. */
        uint64_t small = keep_stored ? w.g[gi].size : ocp.size;
        const uint8_t *want = keep_stored ? w.g[gi].root : ocp.root;
        uint8_t got[32] = {0};
        if ((rc = rh_log_view_prefix_root(view, small, got)) != RH_OK &&
            rc != RH_EINVAL) {
            snprintf(c->werr, sizeof(c->werr), "log: cannot hash");
            code = map_err(rc);
            goto out;
        }
        if (rc == RH_EINVAL || !rh_ct_equal(got, want, sizeof(got))) {
            char ob[128], cb[128], why[512], gh[65], wh[65];
            rh_hex_encode(got, sizeof(got), gh);
            rh_hex_encode(want, sizeof(got), wh);
            snprintf(why, sizeof(why),
                     "the first %llu of the %llu entries behind the %s checkpoint hash to %s, "
                     "the %s checkpoint says %s",
                     (unsigned long long)small, (unsigned long long)view->size,
                     keep_stored ? "stored" : "cosigned", rc == RH_EINVAL ? "(none)" : gh,
                     keep_stored ? "cosigned" : "stored", wh);
            note_brief(c->wkeys, old.data, old.len, ob, sizeof(ob));
            note_brief(c->wkeys, cur.data, cur.len, cb, sizeof(cb));
            write_evidence(c, &old, &cur, why);
            snprintf(c->werr, sizeof(c->werr),
                     "log inconsistent: the checkpoint stored in %s (%s) and the one "
                     "cosigned by the witnesses (%s) are not one append-only history: %s; "
                     "both kept in %s/%s",
                     path, ob, cb, why, c->state_dir, RH_WIT_EVIDENCE_FILE);
            code = RHINE_ERR_LOG_FORK;
            goto out;
        }
        /* Inclusion is judged against the checkpoint the witnesses cosign now. */
        if (keep_stored)
            view->size = w.g[gi].size;
    }
    free(c->wnote);
    c->wnote = NULL;
    c->wnotelen = 0;
    if (!keep_stored)
        c->wnote = rh_buf_take(&cur, &c->wnotelen);
    c->wview = view;
    view = NULL;
    c->werr[0] = '\0';
    code = RHINE_OK;
out:
    rh_checkpoint_cleanup(&ocp);
    rh_log_view_free(known);
    rh_log_view_free(view);
    free(try);
    free(obs_mirror);
    rh_buf_cleanup(&b);
    rh_buf_cleanup(&cur);
    rh_buf_cleanup(&old);
    rh_wit_cleanup(&w);
    return code;
}

/* Store the accepted checkpoint (atomically) once; later calls in this update do nothing. */
static rh_err wit_store(rhine_client *c, rh_error *e)
{
    if (!c->wnote)
        return RH_OK;
    /* The entries first: a crash between the two leaves entries the next update finds are not
     * the stored checkpoint's tree, and reads the log whole. A failure here costs only that. */
    rh_buf kb;
    rh_buf_init(&kb, RH_WIT_ENTRIES_MAX);
    rh_error ke;
    rh_error_clear(&ke);
    if (c->wview == NULL || rh_log_view_entries(c->wview, &kb) != RH_OK ||
        rh_state_write(c->state_dir, RH_WIT_ENTRIES_FILE, kb.data, kb.len, &ke) != RH_OK) {
        char kp[PATH_MAX];
        snprintf(kp, sizeof(kp), "%s/%s", c->state_dir, RH_WIT_ENTRIES_FILE);
        (void)unlink(kp); /* too large, or not written: no stale cache */
    }
    rh_buf_cleanup(&kb);
    rh_err rc = rh_state_write(c->state_dir, RH_WIT_STATE_FILE, c->wnote, c->wnotelen, e);
    if (rc == RH_OK) {
        free(c->wnote);
        c->wnote = NULL;
        c->wnotelen = 0;
    }
    return rc;
}

/* A verified file about to be trusted (not a timestamp): it must be in the accepted log.
 * Returns RH_OK or RH_ELOG with c->wcode set (UNLOGGED, or the refusal of wit_establish). */
static rh_err wit_check_file(rhine_client *c, const char *role, uint64_t version,
                             const char *filename, const uint8_t *p, size_t n, rh_error *e)
{
    rhine_code code = wit_establish(c);
    if (code != RHINE_OK) {
        c->wcode = code;
        return rh_fail(e, code == RHINE_ERR_NOMEM ? RH_ENOMEM : RH_ELOG, "%.400s", c->werr);
    }
    rh_err rc = rh_wit_included(c->wview, role, version, filename, p, n, e);
    if (rc == RH_ELOG) {
        c->wcode = RHINE_ERR_UNLOGGED;
        snprintf(c->werr, sizeof(c->werr), "%s", e->msg);
    }
    return rc;
}

/* Issue 7, after the TUF workflow verified and before anything is persisted: every new root,
 * snapshot and targets file of engine t must be in the witnessed log; then the checkpoint is
 * stored and the held-back files persisted (timestamp last). Returns RHINE_OK or the code,
 * message in e (RH_ELOG: c->wcode says which refusal, c->werr the whole evidence). */
static rh_err wit_gate(rhine_client *c, rh_tuf *t, rh_error *e)
{
    size_t nf = rh_tuf_nfiles(t);
    for (size_t i = 0; i < nf; i++) {
        const rh_tuf_file *f = rh_tuf_file_at(t, i);
        /* Timestamps are not logged: they point at logged snapshots. */
        if (!f->fetched || strcmp(f->role, "timestamp") == 0)
            continue;
        rh_err rc = wit_check_file(c, f->role, f->version, f->filename, f->data, f->len, e);
        if (rc != RH_OK)
            return rc;
    }
    rh_err rc = wit_store(c, e);
    const rh_tuf_file *ts = NULL;
    for (size_t i = 0; rc == RH_OK && i < nf; i++) {
        const rh_tuf_file *f = rh_tuf_file_at(t, i);
        if (!f->fetched)
            continue;
        if (strcmp(f->role, "timestamp") == 0) {
            ts = f;
            continue;
        }
        rc = persist_role(c, f->role, f->data, f->len, e);
    }
    if (rc == RH_OK && ts)
        rc = persist_role(c, ts->role, ts->data, ts->len, e);
    return rc;
}

/* Keep the most relevant failure across mirrors. */
typedef struct failure {
    rh_err code;
    size_t mi;
    int sev;
    size_t count;
    rh_error e;
} failure;

static void failure_note(failure *f, size_t mi, rh_err rc, const rh_error *e)
{
    f->count++;
    int s = severity(rc);
    if (f->code == RH_OK || s > f->sev || (s == f->sev && f->sev == 1)) {
        f->code = rc;
        f->mi = mi;
        f->sev = s;
        f->e = *e;
    }
}

static rhine_code failure_report(rhine_client *c, const failure *f, const char *what)
{
    if (f->code == RH_OK) {
        set_err(c, "%s: no usable mirror (every mirror served bad data earlier)", what);
        return RHINE_ERR_VERIFY;
    }
    set_mirror_err(c, f->mi, f->e.msg[0] ? f->e.msg : rh_err_name(f->code));
    if (f->count > 1) {
        size_t l = strlen(c->err);
        snprintf(c->err + l, sizeof(c->err) - l, " (%zu mirrors tried, all failed)", f->count);
    }
    return map_err(f->code);
}

rhine_code rhine_client_update(rhine_client *c)
{
    if (!c)
        return RHINE_ERR_INVALID;
    c->err[0] = '\0';
    /* Transparency: this update reads the witnessed checkpoints afresh. */
    rh_log_view_free(c->wview);
    c->wview = NULL;
    free(c->wnote);
    c->wnote = NULL;
    c->wnotelen = 0;
    failure f;
    memset(&f, 0, sizeof(f));
    size_t k = rh_failover_order(c->health, c->nm, c->order);
    for (size_t i = 0; i < k; i++) {
        size_t mi = c->order[i];
        io_ctx *x = malloc(sizeof(*x));
        if (!x) {
            set_err(c, "client: out of memory");
            return RHINE_ERR_NOMEM;
        }
        x->c = c;
        x->mi = mi;
        x->missing = false;
        x->defer = c->wkeys != NULL;
        rh_tuf *t = NULL;
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = engine_load(c, x, &t, &e);
        if (rc != RH_OK) {
            free(x);
            set_err(c, "%s", e.msg);
            return map_err(rc) == RHINE_ERR_NOT_FOUND ? RHINE_ERR_IO : map_err(rc);
        }
        rc = rh_tuf_refresh(t, (int64_t)time(NULL), &e);
        if (rc == RH_OK && c->wkeys) {
            c->wcode = RHINE_OK;
            rc = wit_gate(c, t, &e);
            x->defer = false;
            if (rc == RH_ELOG && c->wcode != RHINE_ERR_UNLOGGED) {
                /* No quorum, or a forked log: the same whatever mirror served the metadata. */
                rh_tuf_free(t);
                free(x);
                set_err(c, "%s", c->werr);
                return c->wcode;
            }
        }
        if (rc == RH_OK) {
            rh_tuf_free(c->tuf);
            free(c->tuf_ctx);
            c->tuf = t;
            c->tuf_ctx = x;
            c->tuf_mirror = mi;
            c->updated = true;
            return RHINE_OK;
        }
        rh_tuf_free(t);
        free(x);
        if (is_local(rc) && rc != RH_EINVAL) {
            set_err(c, "%s", e.msg);
            return map_err(rc);
        }
        if (is_lie(rc))
            rh_failover_lied(&c->health[mi]);
        else
            rh_failover_failed(&c->health[mi]);
        if (rc == RH_ENOTFOUND)
            rc = RH_ENET; /* a required metadata file is missing on that mirror */
        failure_note(&f, mi, rc, &e);
    }
    return failure_report(c, &f, "update");
}

/* --- targets ---------------------------------------------------------------------------------- */

/* DESIGN 3: custom.rhine = {"length": uncompressed bytes, "sha256": hex}. *has is false when the
 * target carries no custom.rhine; a present but malformed one is RH_ETYPE. */
static rh_err rhine_custom(const rh_target *tg, bool *has, uint64_t *len,
                           uint8_t sha[RH_SHA256_LEN], rh_error *e)
{
    const json_t *r = tg->custom ? json_object_get(tg->custom, "rhine") : NULL;
    *has = false;
    if (!r)
        return RH_OK;
    const json_t *l = json_object_get(r, "length");
    const json_t *h = json_object_get(r, "sha256");
    if (!json_is_object(r) || !json_is_integer(l) || json_integer_value(l) < 0 ||
        !json_is_string(h) || json_string_length(h) != 2 * RH_SHA256_LEN ||
        rh_hex_decode(json_string_value(h), sha, RH_SHA256_LEN) != RH_OK)
        return rh_fail(e, RH_ETYPE, "target %.200s: malformed custom.rhine", tg->path);
    *len = (uint64_t)json_integer_value(l);
    *has = true;
    return RH_OK;
}

/* TUF 5.7.3: with consistent snapshots the target is fetched as <dir>/<hash>.<name>. */
static rh_err target_url(const char *base, const rh_target *tg, bool consistent, char *out,
                         size_t outsz)
{
    const char *path = tg->path;
    if (!consistent)
        return rh_url_join(base, path, out, outsz);
    char hex[2 * RH_SHA512_LEN + 1];
    if (tg->hashes.has_sha256)
        rh_hex_encode(tg->hashes.sha256, RH_SHA256_LEN, hex);
    else
        rh_hex_encode(tg->hashes.sha512, RH_SHA512_LEN, hex);
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path + 1) : 0;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    int n = snprintf(out, outsz, "%.*s/%.*s%s.%s", (int)bl, base, dl, path, hex,
                     slash ? slash + 1 : path);
    return n < 0 || (size_t)n >= outsz ? RH_ETOOBIG : RH_OK;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static rhine_code ensure_updated(rhine_client *c)
{
    return c->updated ? RHINE_OK : rhine_client_update(c);
}

/* TUF 5.6.7 lookup of target (or "target.zst") in the trusted metadata of c->tuf. */
static rh_err find_once(rhine_client *c, const char *target, bool raw, int64_t now,
                        const rh_target **tg, rh_error *e)
{
    rh_err rc = rh_tuf_find_target(c->tuf, target, now, tg, e);
    if (rc == RH_ENOTFOUND && !raw && !has_suffix(target, ".zst") && !c->tuf_ctx->missing) {
        char alt[RH_MAX_TARGET_PATH + 8];
        if ((size_t)snprintf(alt, sizeof(alt), "%s.zst", target) < sizeof(alt)) {
            rh_error_clear(e);
            rc = rh_tuf_find_target(c->tuf, alt, now, tg, e);
        }
    }
    return rc;
}

/* Find target; delegated roles are fetched from the mirror of the last update on the way. When
 * that mirror fails them (lies, lacks a file, times out), it is marked as for a failed update
 * and the update runs again on the next mirrors in failover order (DESIGN 7), at most once per
 * mirror. Returns RHINE_OK with *tg set, or the code to report (message in c->err). */
static rhine_code find_with_failover(rhine_client *c, const char *target, bool raw,
                                     const rh_target **tg)
{
    for (size_t attempt = 0;; attempt++) {
        int64_t now = (int64_t)time(NULL);
        rh_error e;
        rh_error_clear(&e);
        c->tuf_ctx->missing = false;
        rh_err rc = find_once(c, target, raw, now, tg, &e);
        if (rc == RH_OK)
            return RHINE_OK;
        if (rc == RH_ELOG && c->wcode != RHINE_ERR_UNLOGGED) {
            c->updated = false; /* the role stays in the engine's memory: never use it */
            set_err(c, "%s", c->werr);
            return c->wcode;
        }
        bool missing = rc == RH_ENOTFOUND && c->tuf_ctx->missing;
        if (rc == RH_ENOTFOUND && !missing) {
            set_err(c, "%s: not in the trusted targets metadata", target);
            return RHINE_ERR_NOT_FOUND;
        }
        size_t mi = c->tuf_mirror;
        set_mirror_err(c, mi, e.msg);
        if (missing)
            rc = RH_ENET; /* the mirror lacks a file its snapshot lists */
        if (c->wkeys && rc != RH_ENOTFOUND)
            c->updated = false; /* a role may be trusted in memory but refused on disk */
        if (is_local(rc) || attempt + 1 >= c->nm)
            return map_err(rc);
        /* RH_ETOOBIG may be the repository's own delegation depth (RH_MAX_DELEGATIONS), the
         * same on every mirror: count it as a failure, never ban the mirror for it. */
        if (is_lie(rc) && rc != RH_ETOOBIG)
            rh_failover_lied(&c->health[mi]);
        else
            rh_failover_failed(&c->health[mi]);
        c->updated = false;
        rhine_code code = rhine_client_update(c);
        if (code != RHINE_OK)
            return code;
    }
}

rhine_code rhine_client_fetch(rhine_client *c, const char *target, const char *dest_path,
                              rhine_progress_fn progress, void *ctx)
{
    if (!c || !target || !*target || !dest_path || !*dest_path) {
        if (c)
            set_err(c, "rhine_client_fetch: need a target and a destination");
        return RHINE_ERR_INVALID;
    }
    rhine_code code = ensure_updated(c);
    if (code != RHINE_OK)
        return code;
    c->err[0] = '\0';
    bool raw = (c->flags & RHINE_FLAG_RAW_TARGETS) != 0;
    const rh_target *tg = NULL;
    if ((code = find_with_failover(c, target, raw, &tg)) != RHINE_OK)
        return code;
    rh_error e;
    rh_error_clear(&e);
    rh_err rc;
    /* Invariant 5: the path names a file under the targets base, nothing else. */
    if (!raw && (rc = rh_tpath_check(tg->path, strlen(tg->path), &e)) != RH_OK) {
        set_mirror_err(c, c->tuf_mirror, e.msg);
        return map_err(rc);
    }
    rh_install_spec spec = {
        .dest = dest_path,
        .length = tg->length,
        .hashes = &tg->hashes,
        .progress = progress,
        .progress_ctx = ctx,
    };
    bool has = false;
    if (!raw && (rc = rhine_custom(tg, &has, &spec.out_length, spec.out_sha256, &e)) != RH_OK) {
        set_mirror_err(c, c->tuf_mirror, e.msg);
        return map_err(rc);
    }
    spec.decompress = has;
    if (!tg->hashes.has_sha256 && !tg->hashes.has_sha512) {
        set_err(c, "%s: the target lists no sha256 or sha512 hash", tg->path);
        return RHINE_ERR_VERIFY;
    }
    rh_error_clear(&e);
    rc = rh_install_check_existing(&spec, &e);
    if (rc == RH_OK)
        return RHINE_OK; /* already installed, verified */
    const rh_metadata *root = rh_tuf_trusted(c->tuf, "root");
    bool consistent = root && root->u.root.consistent_snapshot;

    failure f;
    memset(&f, 0, sizeof(f));
    size_t k = rh_failover_order(c->health, c->nm, c->order);
    for (size_t i = 0; i < k; i++) {
        size_t mi = c->order[i];
        if (!c->m[mi].targets)
            continue;
        char url[RH_NET_MAX_URL];
        rh_error_clear(&e);
        if (target_url(c->m[mi].targets, tg, consistent, url, sizeof(url)) != RH_OK) {
            rh_fail(&e, RH_EINVAL, "%s: target URL too long", c->m[mi].targets);
            failure_note(&f, mi, RH_ENET, &e);
            continue;
        }
        spec.src = url;
        rh_install *in = NULL;
        if ((rc = rh_install_new(&spec, &in, &e)) != RH_OK) {
            set_err(c, "%s", e.msg);
            return map_err(rc);
        }
        /* TUF 5.7.3: download at most the signed length. */
        rh_fetch_req req = {.url = url, .max_bytes = tg->length, .sink = rh_install_write,
                            .sink_ctx = in};
        rh_fetch_result res;
        rc = rh_http_get(c->http, &req, &res, &e);
        if (rc == RH_OK)
            rc = rh_install_commit(in, &e);
        rh_install_free(in);
        if (rc == RH_OK) {
            rh_failover_ok(&c->health[mi], -1);
            return RHINE_OK;
        }
        if (is_local(rc)) {
            set_err(c, "%s", e.msg);
            return map_err(rc);
        }
        if (is_lie(rc))
            rh_failover_lied(&c->health[mi]);
        else
            rh_failover_failed(&c->health[mi]);
        if (rc == RH_ENOTFOUND)
            rc = RH_ENET; /* the mirror lacks a file its metadata lists */
        failure_note(&f, mi, rc, &e);
    }
    if (f.code == RH_OK && f.count == 0 && k > 0) {
        set_err(c, "%s: no mirror has a targets URL", target);
        return RHINE_ERR_INVALID;
    }
    return failure_report(c, &f, target);
}

typedef struct list_ctx {
    rhine_list_fn fn;
    void *ctx;
    bool stopped;
} list_ctx;

static rh_err list_one(void *ctx, const char *rolename, const rh_target *tg, rh_error *e)
{
    list_ctx *l = ctx;
    rhine_target_info info;
    memset(&info, 0, sizeof(info));
    info.path = tg->path;
    info.role = rolename;
    info.length = tg->length;
    if (tg->hashes.has_sha256)
        rh_hex_encode(tg->hashes.sha256, RH_SHA256_LEN, info.sha256);
    uint8_t sha[RH_SHA256_LEN];
    bool has = false;
    rh_error ignored;
    rh_error_clear(&ignored);
    if (rhine_custom(tg, &has, &info.content_length, sha, &ignored) == RH_OK && has) {
        info.has_content = true;
        rh_hex_encode(sha, RH_SHA256_LEN, info.content_sha256);
    }
    if (l->fn(l->ctx, &info) != 0) {
        l->stopped = true;
        return rh_fail(e, RH_EINVAL, "stopped");
    }
    return RH_OK;
}

rhine_code rhine_client_list(rhine_client *c, rhine_list_fn fn, void *ctx)
{
    if (!c || !fn)
        return RHINE_ERR_INVALID;
    rhine_code code = ensure_updated(c);
    if (code != RHINE_OK)
        return code;
    c->err[0] = '\0';
    list_ctx l = {.fn = fn, .ctx = ctx};
    rh_error e;
    rh_error_clear(&e);
    rh_err rc = rh_tuf_foreach_target(c->tuf, list_one, &l, &e);
    if (rc != RH_OK && !l.stopped) {
        set_err(c, "%s", e.msg);
        return map_err(rc);
    }
    return RHINE_OK;
}

/* --- status ---------------------------------------------------------------------------------- */

static void role_status(const rh_metadata *m, int64_t now, rhine_role_status *s)
{
    memset(s, 0, sizeof(*s));
    if (!m)
        return;
    s->present = true;
    s->version = m->version;
    s->expires = m->expires;
    s->expired = m->expires <= now;
}

/* Parse and verify the persisted files (no network): the root against its own keys, the others
 * against that root. Files that fail are left out. */
static rh_err status_from_disk(rhine_client *c, rh_error *e)
{
    for (int r = 0; r < RH_ROLE_COUNT; r++) {
        rh_metadata_free(c->st_md[r]);
        c->st_md[r] = NULL;
    }
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    char src[PATH_MAX];
    rh_metadata *root = NULL;
    rh_err rc = read_root(c, &b, src, sizeof(src), e);
    if (rc != RH_OK)
        goto out;
    if ((rc = rh_metadata_parse(b.data, b.len, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, src, &root, e)) !=
        RH_OK)
        goto out;
    if ((rc = rh_root_verify_role(root, RH_ROLE_ROOT, root, e)) != RH_OK)
        goto out;
    for (int r = RH_ROLE_TIMESTAMP; r < RH_ROLE_COUNT; r++) {
        rh_buf_reset(&b);
        snprintf(src, sizeof(src), "%s/%s.json", c->state_dir, rh_role_name((rh_role)r));
        rh_error ig;
        rh_error_clear(&ig);
        rh_metadata *m = NULL;
        if (rh_state_read(src, RH_MAX_JSON_BYTES, &b, &ig) != RH_OK ||
            rh_metadata_parse(b.data, b.len, RH_MAX_JSON_BYTES, (rh_role)r, src, &m, &ig) !=
                RH_OK)
            continue;
        if (rh_root_verify_role(root, (rh_role)r, m, &ig) != RH_OK) {
            rh_metadata_free(m);
            continue;
        }
        c->st_md[r] = m;
    }
    c->st_md[RH_ROLE_ROOT] = root;
    root = NULL;
out:
    rh_metadata_free(root);
    rh_buf_cleanup(&b);
    return rc;
}

rhine_code rhine_client_status(rhine_client *c, rhine_status *out)
{
    if (!c || !out)
        return RHINE_ERR_INVALID;
    c->err[0] = '\0';
    const rh_metadata *md[RH_ROLE_COUNT];
    if (c->updated) {
        for (int r = 0; r < RH_ROLE_COUNT; r++)
            md[r] = rh_tuf_trusted(c->tuf, rh_role_name((rh_role)r));
    } else {
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = status_from_disk(c, &e);
        if (rc != RH_OK) {
            set_err(c, "%s", e.msg);
            return map_err(rc);
        }
        for (int r = 0; r < RH_ROLE_COUNT; r++)
            md[r] = c->st_md[r];
    }
    int64_t now = (int64_t)time(NULL);
    rhine_status s;
    memset(&s, 0, sizeof(s));
    role_status(md[RH_ROLE_ROOT], now, &s.root);
    role_status(md[RH_ROLE_TIMESTAMP], now, &s.timestamp);
    role_status(md[RH_ROLE_SNAPSHOT], now, &s.snapshot);
    role_status(md[RH_ROLE_TARGETS], now, &s.targets);
    s.ntargets = md[RH_ROLE_TARGETS] ? md[RH_ROLE_TARGETS]->u.targets.ntargets : 0;
    s.updated = c->updated;
    s.last_mirror = c->updated ? c->m[c->tuf_mirror].label : NULL;
    *out = s;
    return RHINE_OK;
}

/* --- state directory set-up, file names ------------------------------------------------------ */

static rh_err no_fetch(void *ctx, const char *name, size_t max, rh_buf *out, rh_error *e)
{
    (void)ctx;
    (void)max;
    (void)out;
    return rh_fail(e, RH_ENOTFOUND, "%s: not fetched during init", name);
}

rhine_code rhine_state_init(const char *state_dir, const char *root_file, char *errbuf,
                            size_t errlen)
{
    if (!state_dir || !root_file) {
        errbuf_put(errbuf, errlen, "rhine_state_init: need a state directory and a root file");
        return RHINE_ERR_INVALID;
    }
    rh_buf b;
    rh_buf_init(&b, RH_MAX_ROOT_BYTES);
    rh_tuf *t = NULL;
    rh_error e;
    rh_error_clear(&e);
    rh_tuf_io io = {.fetch = no_fetch};
    rh_err rc = rh_state_read(root_file, RH_MAX_ROOT_BYTES, &b, &e);
    if (rc == RH_ENOTFOUND)
        rc = RH_EIO;
    if (rc != RH_OK)
        goto out;
    if ((rc = rh_tuf_new(&io, &t)) != RH_OK) {
        rc = rh_fail(&e, rc, "init: out of memory");
        goto out;
    }
    /* TUF 5.2: the trusted root must be signed by its own threshold. */
    if ((rc = rh_tuf_load_root(t, b.data, b.len, root_file, &e)) != RH_OK)
        goto out;
    if (mkdir(state_dir, 0755) != 0 && errno != EEXIST) {
        rc = rh_fail(&e, RH_EIO, "%s: mkdir: %s", state_dir, strerror(errno));
        goto out;
    }
    rc = rh_state_write(state_dir, "root.json", b.data, b.len, &e);
out:
    rh_tuf_free(t);
    rh_buf_cleanup(&b);
    if (rc != RH_OK)
        errbuf_put(errbuf, errlen, e.msg);
    return map_err(rc);
}

rhine_code rhine_target_filename(const char *target, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!target || !*target || !out || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
        return RHINE_ERR_INVALID; /* "." and ".." are not file names one may create */
    size_t need = 1;
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) {
        bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        need += keep ? 1 : 3;
    }
    if (need > outsz)
        return RHINE_ERR_INVALID;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) {
        bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return RHINE_OK;
}
