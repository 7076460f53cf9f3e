/* daemon.c -- rhine-mirror daemon: serving on the libevent loop thread, syncing in one worker
 * thread (the loop never blocks on a sync), push/poll triggers, metrics and status.
 *
 * Why a thread and not a forked `sync --once`: the TUF engine and the downloader are pure or
 * self-contained, results (versions, failures by reason, byte counts) come back through one
 * mutex-protected struct instead of a file format, and a push is answered and acted on within
 * milliseconds without a fork/exec. The loop thread only reads that struct (metrics, status,
 * push verification against the trusted root); the served tree changes only by renames. */
#include "mirror/daemon.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manifest/buf.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "mirror/mfs.h"
#include "mirror/sync.h"
#include "mirror/witness.h"
#include "net/fetch.h"
#include "server/httpd.h"

#define RH_MIRROR_METRICS_MAX (1024u * 1024) /* bytes of one /metrics or status answer */

typedef struct mstatus {
    rh_sync_versions served;
    uint64_t upstream_ts;      /* newest timestamp version known (verified) */
    int64_t upstream_seen;     /* when the upstream got ahead of us (0: not ahead) */
    int64_t last_success, last_attempt;
    double last_duration;
    uint64_t syncs_ok, syncs_noop, syncs_failed;
    uint64_t bytes, objects;
    uint64_t failures[RH_ERR_COUNT];
    uint64_t pushes_accepted, pushes_rejected;
    bool syncing;
    char last_error[RH_ERRMSG_MAX];
    /* transparency log (only with log_key) */
    rh_log_status log;
    uint64_t log_unlogged, log_inconsistent, log_refused, log_cosigned;
    uint64_t log_failures; /* the log could not be read or did not verify */
} mstatus;

typedef struct mirrord {
    struct event_base *base;
    rh_httpd *httpd;
    rh_mirror_reload_fn reload;
    void *reload_ctx;
    rh_mirror_config cfg;   /* the loop thread's copy */
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    bool stop, requested, has_pending;
    rh_mirror_config pending; /* the worker's next config (SIGHUP) */
    mstatus st;
    rh_metadata *root;      /* trusted root for push verification */
    atomic_bool cancel;
} mirrord;

static const char *reason_name(int code)
{
    switch (code) {
    case RH_ESIG: return "signature";
    case RH_EEXPIRED: return "expired";
    case RH_EROLLBACK: return "rollback";
    case RH_EVERSION: return "version";
    case RH_EHASH: return "hash";
    case RH_ETOOBIG: return "too_big";
    case RH_EPARSE: return "malformed";
    case RH_ETYPE: return "type";
    case RH_ENOTFOUND: return "not_found";
    case RH_ENET: return "network";
    case RH_EPATH: return "path";
    case RH_EIO: return "io";
    default: return NULL;
    }
}

static void load_root(mirrord *d, const rh_mirror_config *cfg)
{
    rh_buf b;
    rh_buf_init(&b, RH_MAX_ROOT_BYTES);
    rh_metadata *md = NULL;
    if (rh_mirror_trusted_root(cfg->data, cfg->root, &b, NULL) == RH_OK &&
        rh_metadata_parse(b.data, b.len, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, "root", &md, NULL) ==
            RH_OK) {
        pthread_mutex_lock(&d->mu);
        rh_metadata_free(d->root);
        d->root = md;
        pthread_mutex_unlock(&d->mu);
    }
    rh_buf_cleanup(&b);
}

static rh_err sink_buf(void *ctx, const uint8_t *p, size_t n, rh_error *e)
{
    rh_err rc = rh_buf_append(ctx, p, n);
    return rc == RH_OK ? rc : rh_fail(e, rc, "poll: timestamp too big");
}

/* Poll the first upstream's timestamp with If-None-Match: true when it may have changed. */
static bool poll_changed(rh_http *h, const rh_mirror_config *cfg, char *etag, size_t etagsz)
{
    char url[RH_NET_MAX_URL];
    if (snprintf(url, sizeof url, "%s/metadata/timestamp.json", cfg->upstreams[0]) >=
        (int)sizeof url)
        return true;
    rh_buf b;
    rh_buf_init(&b, RH_MAX_TIMESTAMP_BYTES);
    rh_fetch_req req = {url, RH_MAX_TIMESTAMP_BYTES, 0, etag[0] ? etag : NULL, sink_buf, &b};
    rh_fetch_result res;
    rh_error e;
    rh_error_clear(&e);
    bool changed = true;
    if (rh_http_get(h, &req, &res, &e) == RH_OK) {
        changed = !res.not_modified;
        if (!res.not_modified)
            snprintf(etag, etagsz, "%s", res.etag);
    }
    rh_buf_cleanup(&b);
    return changed;
}

static void run_round(mirrord *d, const rh_mirror_config *cfg)
{
    pthread_mutex_lock(&d->mu);
    d->st.syncing = true;
    d->st.last_attempt = (int64_t)time(NULL);
    pthread_mutex_unlock(&d->mu);

    rh_sync_opts o = {(const char *const *)cfg->upstreams, cfg->nupstreams, cfg->root, cfg->data,
                      cfg->ca, cfg->sync, &d->cancel, 0};
    rh_sync_result r;
    rh_log_round lr;
    rh_error e;
    rh_error_clear(&e);
    rh_witness_opts wo = {cfg->log_key, cfg->has_witness ? cfg->witness.key : NULL,
                          cfg->witness.name != NULL ? cfg->witness.name : cfg->name};
    rh_err rc = rh_mirror_sync_round(&o, &wo, &r, &lr, &e);
    /* Published and collected files: the server's open-file cache forgets what it holds. */
    rh_httpd_files_changed(d->httpd);
    rh_log_status ls;
    rh_witness_status(cfg->data, &ls);
    if (rc != RH_OK)
        fprintf(stderr, "rhine-mirror: sync failed: %s\n", e.msg);
    else if (r.published)
        fprintf(stderr, "rhine-mirror: published timestamp %" PRIu64 " (%zu files, %" PRIu64
                " bytes fetched, %.2fs)\n", r.served.v[RH_ROLE_TIMESTAMP], r.published_files,
                r.bytes, r.seconds);
    load_root(d, cfg);

    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&d->mu);
    mstatus *s = &d->st;
    s->syncing = false;
    s->served = r.served;
    s->last_duration = r.seconds;
    s->bytes += r.bytes;
    s->objects += r.objects;
    for (int k = 0; k < RH_ERR_COUNT; k++)
        s->failures[k] += r.failures[k];
    s->log = ls;
    s->log_unlogged += lr.unlogged;
    s->log_inconsistent += lr.inconsistent;
    s->log_refused += lr.refused;
    s->log_cosigned += lr.cosigned;
    s->log_failures += r.failures[RH_ELOG];
    if (rc == RH_OK) {
        s->last_success = now;
        if (r.published)
            s->syncs_ok++;
        else
            s->syncs_noop++;
        s->last_error[0] = '\0';
    } else {
        s->syncs_failed++;
        snprintf(s->last_error, sizeof s->last_error, "%s", e.msg);
    }
    if (r.upstream_timestamp > s->upstream_ts)
        s->upstream_ts = r.upstream_timestamp;
    if (s->upstream_ts > s->served.v[RH_ROLE_TIMESTAMP]) {
        if (s->upstream_seen == 0)
            s->upstream_seen = now;
    } else {
        s->upstream_seen = 0;
    }
    pthread_mutex_unlock(&d->mu);
}

static void *worker(void *arg)
{
    mirrord *d = arg;
    rh_mirror_config cfg;
    memset(&cfg, 0, sizeof cfg);
    rh_http *h = NULL;
    char etag[RH_NET_MAX_ETAG] = "";
    int64_t next_poll = 0;
    pthread_mutex_lock(&d->mu);
    cfg = d->pending;
    memset(&d->pending, 0, sizeof d->pending);
    d->has_pending = false;
    pthread_mutex_unlock(&d->mu);
    rh_fetch_opts fo = {.ca_file = cfg.ca, .http2 = true, .h2c = true,
                        .total_timeout_ms = 10000, .user_agent = "rhine-mirror/1"};
    (void)rh_http_new(&fo, &h, NULL);
    for (;;) {
        bool poll = false, req = false;
        pthread_mutex_lock(&d->mu);
        while (!d->stop && !d->requested) {
            int64_t now = (int64_t)time(NULL);
            if (next_poll != 0 && now >= next_poll) {
                poll = true;
                break;
            }
            struct timespec ts = {next_poll != 0 ? next_poll : now + 1, 0};
            pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        }
        if (d->stop) {
            pthread_mutex_unlock(&d->mu);
            break;
        }
        req = d->requested;
        d->requested = false;
        if (d->has_pending) {
            rh_mirror_config_cleanup(&cfg);
            cfg = d->pending;
            memset(&d->pending, 0, sizeof d->pending);
            d->has_pending = false;
            rh_http_free(h);
            h = NULL;
            fo.ca_file = cfg.ca;
            (void)rh_http_new(&fo, &h, NULL);
            etag[0] = '\0';
        }
        pthread_mutex_unlock(&d->mu);
        if (req || (poll && (h == NULL || poll_changed(h, &cfg, etag, sizeof etag)))) {
            run_round(d, &cfg);
            rh_httpd_trim_heap(); /* the round's transfers are freed: not kept while idle */
        }
        next_poll = (int64_t)time(NULL) + cfg.sync.poll_interval;
    }
    rh_http_free(h);
    rh_mirror_config_cleanup(&cfg);
    return NULL;
}

/* --- HTTP: /metrics, /.well-known/rhine/status, POST /push -------------------------------- */

static void answer(rh_httpd_resp *resp, int status, const char *type, rh_buf *b)
{
    resp->status = status;
    resp->content_type = type;
    resp->cache_control = "no-store";
    resp->body = b->data;
    resp->body_len = b->len;
}

static bool push(mirrord *d, const rh_httpd_req *req, rh_httpd_resp *resp, rh_buf *out)
{
    size_t n = 0;
    const uint8_t *body = rh_httpd_req_body(req, &n);
    rh_metadata *md = NULL;
    rh_error e;
    rh_error_clear(&e);
    int status;
    rh_err rc = rh_metadata_parse(body, n, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP, "push", &md,
                                  &e);
    pthread_mutex_lock(&d->mu);
    if (rc != RH_OK) {
        status = 400;
    } else if (d->root == NULL) {
        rc = rh_fail(&e, RH_ESIG, "push: no trusted root yet");
        status = 503;
    } else if ((rc = rh_root_verify_role(d->root, RH_ROLE_TIMESTAMP, md, &e)) != RH_OK) {
        status = 403; /* forged: not signed by the timestamp threshold of the trusted root */
    } else if (md->expires <= (int64_t)time(NULL)) {
        /* TUF 5.4.4: an expired timestamp is never trusted. */
        rc = rh_fail(&e, RH_EEXPIRED, "push: timestamp version %" PRIu64 " expired",
                     md->version);
        status = 422;
    } else if (md->version < d->st.served.v[RH_ROLE_TIMESTAMP]) {
        rc = rh_fail(&e, RH_EROLLBACK, "push: timestamp version %" PRIu64 " is older than the "
                     "served version %" PRIu64, md->version, d->st.served.v[RH_ROLE_TIMESTAMP]);
        status = 409;
    } else if (md->version == d->st.served.v[RH_ROLE_TIMESTAMP]) {
        status = 200;
        snprintf(e.msg, sizeof e.msg, "already serving timestamp version %" PRIu64,
                 md->version);
    } else {
        status = 202;
        d->requested = true; /* merged with any pending request: one more round at least */
        if (md->version > d->st.upstream_ts)
            d->st.upstream_ts = md->version;
        if (d->st.upstream_seen == 0)
            d->st.upstream_seen = (int64_t)time(NULL);
        pthread_cond_signal(&d->cv);
        snprintf(e.msg, sizeof e.msg, "sync of timestamp version %" PRIu64 " scheduled",
                 md->version);
    }
    if (status >= 400)
        d->st.pushes_rejected++;
    else
        d->st.pushes_accepted++;
    pthread_mutex_unlock(&d->mu);
    rh_metadata_free(md);
    (void)rh_buf_appendf(out, "%s\n", e.msg);
    answer(resp, status, "text/plain", out);
    return true;
}

static void metrics(mirrord *d, rh_buf *b)
{
    mstatus s;
    pthread_mutex_lock(&d->mu);
    s = d->st;
    pthread_mutex_unlock(&d->mu);
    int64_t now = (int64_t)time(NULL);
    static const char *roles[4] = {"root", "timestamp", "snapshot", "targets"};
    (void)rh_buf_appendf(b, "# HELP rhine_mirror_version Version of each role served.\n"
                            "# TYPE rhine_mirror_version gauge\n");
    for (int i = 0; i < 4; i++)
        (void)rh_buf_appendf(b, "rhine_mirror_version{role=\"%s\"} %" PRIu64 "\n", roles[i],
                             s.served.v[i]);
    uint64_t lagv = s.upstream_ts > s.served.v[1] ? s.upstream_ts - s.served.v[1] : 0;
    int64_t lags = lagv > 0 && s.upstream_seen > 0 ? now - s.upstream_seen : 0;
    (void)rh_buf_appendf(b,
        "# TYPE rhine_mirror_upstream_timestamp_version gauge\n"
        "rhine_mirror_upstream_timestamp_version %" PRIu64 "\n"
        "# TYPE rhine_mirror_lag_versions gauge\nrhine_mirror_lag_versions %" PRIu64 "\n"
        "# TYPE rhine_mirror_lag_seconds gauge\nrhine_mirror_lag_seconds %" PRId64 "\n"
        "# TYPE rhine_mirror_timestamp_expires_seconds gauge\n"
        "rhine_mirror_timestamp_expires_seconds %" PRId64 "\n"
        "# TYPE rhine_mirror_last_success_timestamp_seconds gauge\n"
        "rhine_mirror_last_success_timestamp_seconds %" PRId64 "\n"
        "# TYPE rhine_mirror_last_sync_duration_seconds gauge\n"
        "rhine_mirror_last_sync_duration_seconds %.3f\n"
        "# TYPE rhine_mirror_syncing gauge\nrhine_mirror_syncing %d\n"
        "# TYPE rhine_mirror_syncs_total counter\n"
        "rhine_mirror_syncs_total{result=\"published\"} %" PRIu64 "\n"
        "rhine_mirror_syncs_total{result=\"unchanged\"} %" PRIu64 "\n"
        "rhine_mirror_syncs_total{result=\"failed\"} %" PRIu64 "\n"
        "# TYPE rhine_mirror_fetched_bytes_total counter\n"
        "rhine_mirror_fetched_bytes_total %" PRIu64 "\n"
        "# TYPE rhine_mirror_fetched_objects_total counter\n"
        "rhine_mirror_fetched_objects_total %" PRIu64 "\n"
        "# TYPE rhine_mirror_pushes_total counter\n"
        "rhine_mirror_pushes_total{result=\"accepted\"} %" PRIu64 "\n"
        "rhine_mirror_pushes_total{result=\"rejected\"} %" PRIu64 "\n"
        "# HELP rhine_mirror_verification_failures_total Failures met while syncing, by reason.\n"
        "# TYPE rhine_mirror_verification_failures_total counter\n",
        s.upstream_ts, lagv, lags, s.served.timestamp_expires, s.last_success, s.last_duration,
        s.syncing ? 1 : 0, s.syncs_ok, s.syncs_noop, s.syncs_failed, s.bytes, s.objects,
        s.pushes_accepted, s.pushes_rejected);
    for (int k = 0; k < RH_ERR_COUNT; k++)
        if (reason_name(k) != NULL)
            (void)rh_buf_appendf(b, "rhine_mirror_verification_failures_total{reason=\"%s\"} "
                                 "%" PRIu64 "\n", reason_name(k), s.failures[k]);
    if (d->cfg.log_key != NULL) {
        (void)rh_buf_appendf(b,
            "rhine_mirror_verification_failures_total{reason=\"log\"} %" PRIu64 "\n"
            "rhine_mirror_verification_failures_total{reason=\"unlogged\"} %" PRIu64 "\n"
            "rhine_mirror_verification_failures_total{reason=\"log_inconsistent\"} %" PRIu64 "\n"
            "# HELP rhine_mirror_log_size Entries of the transparency log checkpoint accepted.\n"
            "# TYPE rhine_mirror_log_size gauge\nrhine_mirror_log_size %" PRIu64 "\n"
            "# HELP rhine_mirror_log_inconsistent 1 when an inconsistent checkpoint was seen "
            "(evidence kept, log refused until log-reset).\n"
            "# TYPE rhine_mirror_log_inconsistent gauge\nrhine_mirror_log_inconsistent %d\n"
            "# TYPE rhine_mirror_log_evidence gauge\nrhine_mirror_log_evidence %zu\n"
            "# TYPE rhine_mirror_log_cosignatures_total counter\n"
            "rhine_mirror_log_cosignatures_total %" PRIu64 "\n"
            "# TYPE rhine_mirror_log_refused_total counter\n"
            "rhine_mirror_log_refused_total %" PRIu64 "\n",
            s.log_failures, s.log_unlogged, s.log_inconsistent, s.log.size,
            s.log.inconsistent ? 1 : 0, s.log.nevidence, s.log_cosigned, s.log_refused);
    }
    (void)rh_httpd_stats_prometheus(d->httpd, "rhine_mirror", b);
}

static void status_json(mirrord *d, rh_buf *b)
{
    mstatus s;
    pthread_mutex_lock(&d->mu);
    s = d->st;
    pthread_mutex_unlock(&d->mu);
    int64_t now = (int64_t)time(NULL);
    uint64_t lagv = s.upstream_ts > s.served.v[1] ? s.upstream_ts - s.served.v[1] : 0;
    int64_t lags = lagv > 0 && s.upstream_seen > 0 ? now - s.upstream_seen : 0;
    json_t *o = json_object(), *ups = json_array(), *fails = json_object();
    for (size_t i = 0; i < d->cfg.nupstreams; i++)
        json_array_append_new(ups, json_string(d->cfg.upstreams[i]));
    for (int k = 0; k < RH_ERR_COUNT; k++)
        if (reason_name(k) != NULL)
            json_object_set_new(fails, reason_name(k), json_integer((json_int_t)s.failures[k]));
    json_t *serving = json_pack("{s:I,s:I,s:I,s:I}", "root", (json_int_t)s.served.v[0],
                                "timestamp", (json_int_t)s.served.v[1], "snapshot",
                                (json_int_t)s.served.v[2], "targets", (json_int_t)s.served.v[3]);
    json_object_set_new(o, "name", json_string(d->cfg.name));
    json_object_set_new(o, "region", json_string(d->cfg.region));
    json_object_set(o, "upstreams", ups);
    json_object_set_new(o, "serving", serving);
    json_object_set_new(o, "timestamp_expires", json_integer(s.served.timestamp_expires));
    json_object_set_new(o, "upstream_timestamp_version", json_integer((json_int_t)s.upstream_ts));
    json_object_set_new(o, "lag_versions", json_integer((json_int_t)lagv));
    json_object_set_new(o, "lag_seconds", json_integer(lags));
    json_object_set_new(o, "last_success", json_integer(s.last_success));
    json_object_set_new(o, "last_attempt", json_integer(s.last_attempt));
    json_object_set_new(o, "last_sync_duration_seconds", json_real(s.last_duration));
    json_object_set_new(o, "syncing", json_boolean(s.syncing));
    json_object_set_new(o, "syncs", json_pack("{s:I,s:I,s:I}", "published",
                                              (json_int_t)s.syncs_ok, "unchanged",
                                              (json_int_t)s.syncs_noop, "failed",
                                              (json_int_t)s.syncs_failed));
    json_object_set_new(o, "fetched", json_pack("{s:I,s:I}", "bytes", (json_int_t)s.bytes,
                                                "objects", (json_int_t)s.objects));
    json_object_set_new(o, "pushes", json_pack("{s:I,s:I}", "accepted",
                                               (json_int_t)s.pushes_accepted, "rejected",
                                               (json_int_t)s.pushes_rejected));
    if (d->cfg.log_key != NULL) {
        char root[48]; /* base64 of 32 bytes: 44 characters */
        rh_base64_encode(s.log.root, 32, root);
        json_t *ev = json_array();
        size_t shown = s.log.nevidence < RH_WITNESS_MAX_SHOWN ? s.log.nevidence
                                                              : RH_WITNESS_MAX_SHOWN;
        for (size_t i = 0; i < shown; i++)
            json_array_append_new(ev, json_string(s.log.evidence[i]));
        json_t *lg = json_pack("{s:I,s:s?,s:s,s:o,s:s?,s:b,s:I}", "size",
                               (json_int_t)s.log.size, "root",
                               s.log.has_checkpoint ? root : NULL, "state",
                               s.log.inconsistent ? "inconsistent" : "ok", "evidence", ev,
                               "refused_since", s.log.inconsistent ? s.log.marker : NULL,
                               "witness", d->cfg.has_witness,
                               "cosignatures", (json_int_t)s.log_cosigned);
        json_object_set_new(lg, "witness_name",
                            d->cfg.has_witness
                                ? json_string(d->cfg.witness.name ? d->cfg.witness.name
                                                                  : d->cfg.name)
                                : json_null());
        json_object_set_new(o, "log", lg);
        json_object_set_new(fails, "log", json_integer((json_int_t)s.log_failures));
        json_object_set_new(fails, "unlogged", json_integer((json_int_t)s.log_unlogged));
        json_object_set_new(fails, "log_inconsistent",
                            json_integer((json_int_t)s.log_inconsistent));
    }
    json_object_set(o, "verification_failures", fails);
    json_object_set_new(o, "last_error", s.last_error[0] ? json_string(s.last_error)
                                                         : json_null());
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text != NULL) {
        (void)rh_buf_appendf(b, "%s\n", text);
        free(text);
    }
    json_decref(fails);
    json_decref(ups);
    json_decref(o);
}

/* The handler answers into a buffer that lives until the next request (body is copied). */
static _Thread_local rh_buf resp_buf;
static _Thread_local bool resp_buf_init;

static bool handler(void *ctx, const rh_httpd_req *req, rh_httpd_resp *resp)
{
    mirrord *d = ctx;
    const char *m = rh_httpd_req_method(req), *p = rh_httpd_req_path(req);
    if (!resp_buf_init) {
        rh_buf_init(&resp_buf, RH_MIRROR_METRICS_MAX);
        resp_buf_init = true;
    }
    rh_buf_reset(&resp_buf);
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    if (strcmp(p, "/push") == 0) {
        if (strcmp(m, "POST") != 0) {
            (void)rh_buf_appendf(&resp_buf, "POST a signed timestamp.json\n");
            answer(resp, 405, "text/plain", &resp_buf);
            return true;
        }
        return push(d, req, resp, &resp_buf);
    }
    if (get && strcmp(p, "/metrics") == 0) {
        metrics(d, &resp_buf);
        answer(resp, 200, "text/plain; version=0.0.4", &resp_buf);
        return true;
    }
    if (get && strcmp(p, "/.well-known/rhine/status") == 0) {
        status_json(d, &resp_buf);
        answer(resp, 200, "application/json", &resp_buf);
        return true;
    }
    return false; /* the verified tree */
}

/* --- signals and start-up ------------------------------------------------------------------ */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mirrord *d = arg;
    event_base_loopbreak(d->base);
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mirrord *d = arg;
    if (d->reload == NULL)
        return;
    rh_mirror_config a, b;
    rh_error e;
    rh_error_clear(&e);
    if (d->reload(d->reload_ctx, &a, &e) != RH_OK) {
        fprintf(stderr, "rhine-mirror: reload failed, keeping the old config: %s\n", e.msg);
        return;
    }
    if (d->reload(d->reload_ctx, &b, &e) != RH_OK) {
        rh_mirror_config_cleanup(&a);
        fprintf(stderr, "rhine-mirror: reload failed, keeping the old config: %s\n", e.msg);
        return;
    }
    if (a.tls_cert != NULL && a.tls_key != NULL && d->cfg.listen != NULL &&
        rh_httpd_reload_tls(d->httpd, a.tls_cert, a.tls_key, &e) != RH_OK)
        fprintf(stderr, "rhine-mirror: TLS reload failed (old certificate kept): %s\n", e.msg);
    if ((a.listen == NULL) != (d->cfg.listen == NULL) ||
        (a.listen && strcmp(a.listen, d->cfg.listen) != 0) ||
        (a.listen_h2c == NULL) != (d->cfg.listen_h2c == NULL) ||
        (a.listen_h2c && strcmp(a.listen_h2c, d->cfg.listen_h2c) != 0) ||
        strcmp(a.data, d->cfg.data) != 0)
        fprintf(stderr, "rhine-mirror: listen addresses and data dir change only on restart\n");
    /* Keep the addresses and data dir the process runs with. */
    char *keep[3] = {a.listen, a.listen_h2c, a.data};
    a.listen = d->cfg.listen;
    a.listen_h2c = d->cfg.listen_h2c;
    a.data = d->cfg.data;
    d->cfg.listen = keep[0];
    d->cfg.listen_h2c = keep[1];
    d->cfg.data = keep[2];
    rh_mirror_config_cleanup(&d->cfg);
    d->cfg = a;
    free(b.data);
    b.data = strdup(a.data);
    pthread_mutex_lock(&d->mu);
    rh_mirror_config_cleanup(&d->pending);
    d->pending = b;
    d->has_pending = true;
    d->requested = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    fprintf(stderr, "rhine-mirror: configuration reloaded\n");
}

static rh_err write_ports(const char *path, rh_httpd *h, rh_error *e)
{
    char text[64];
    int n = 0;
    if (rh_httpd_port(h, RH_HTTPD_TLS) > 0)
        n += snprintf(text + n, sizeof text - (size_t)n, "tls %d\n",
                      rh_httpd_port(h, RH_HTTPD_TLS));
    if (rh_httpd_port(h, RH_HTTPD_CLEAR) > 0)
        n += snprintf(text + n, sizeof text - (size_t)n, "clear %d\n",
                      rh_httpd_port(h, RH_HTTPD_CLEAR));
    return rh_mfs_write_atomic(path, text, (size_t)n, e);
}

rh_err rh_mirror_daemon_run(rh_mirror_config *cfg, rh_mirror_reload_fn reload, void *reload_ctx,
                            rh_error *e)
{
    rh_err rc = RH_OK;
    mirrord *d = calloc(1, sizeof *d);
    struct event *sig[3] = {NULL, NULL, NULL};
    char *pub = NULL;
    if (d == NULL) {
        rh_mirror_config_cleanup(cfg);
        return rh_fail(e, RH_ENOMEM, "out of memory");
    }
    d->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    d->reload = reload;
    d->reload_ctx = reload_ctx;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    atomic_init(&d->cancel, false);
    if (d->cfg.listen == NULL && d->cfg.listen_h2c == NULL) {
        rc = rh_fail(e, RH_ECONFIG, "daemon: no listen or listen_h2c address");
        goto out;
    }
    char *meta = rh_mfs_join(d->cfg.data, "public/metadata");
    pub = rh_mfs_join(d->cfg.data, "public");
    if (meta == NULL || pub == NULL || (rc = rh_mfs_mkdirs(meta, e)) != RH_OK) {
        free(meta);
        rc = rc != RH_OK ? rc : rh_fail(e, RH_ENOMEM, "out of memory");
        goto out;
    }
    free(meta);
    rh_mirror_served_versions(d->cfg.data, &d->st.served);
    rh_witness_status(d->cfg.data, &d->st.log);
    load_root(d, &d->cfg);
    rh_httpd_tune_process();
    if ((d->base = rh_httpd_base_new()) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "cannot create the event base");
        goto out;
    }
    rh_httpd_opts ho;
    memset(&ho, 0, sizeof ho);
    ho.root = pub;
    ho.listen_tls = d->cfg.listen;
    ho.listen_clear = d->cfg.listen_h2c;
    ho.tls_cert = d->cfg.tls_cert;
    ho.tls_key = d->cfg.tls_key;
    ho.handler = handler;
    ho.handler_ctx = d;
    ho.etag_from_name = true; /* every HASH.name target was verified against its hash */
    if ((rc = rh_httpd_new(d->base, &ho, &d->httpd, e)) != RH_OK)
        goto out;
    if (d->cfg.port_file != NULL && (rc = write_ports(d->cfg.port_file, d->httpd, e)) != RH_OK)
        goto out;
    sig[0] = evsignal_new(d->base, SIGTERM, on_stop, d);
    sig[1] = evsignal_new(d->base, SIGINT, on_stop, d);
    sig[2] = evsignal_new(d->base, SIGHUP, on_hup, d);
    for (int i = 0; i < 3; i++) {
        if (sig[i] == NULL || event_add(sig[i], NULL) != 0) {
            rc = rh_fail(e, RH_ENOMEM, "cannot install signal handlers");
            goto out;
        }
    }
    /* The worker gets its own copy of the config. */
    if (reload != NULL) {
        if ((rc = reload(reload_ctx, &d->pending, e)) != RH_OK)
            goto out;
    } else {
        rc = rh_fail(e, RH_EINVAL, "daemon: a config builder is required");
        goto out;
    }
    d->requested = true; /* sync at start-up */
    if (pthread_create(&d->th, NULL, worker, d) != 0) {
        rc = rh_fail(e, RH_EIO, "cannot start the sync thread");
        goto out;
    }
    d->th_started = true;
    fprintf(stderr, "rhine-mirror: %s (%s) serving %s\n", d->cfg.name, d->cfg.region, pub);
    event_base_dispatch(d->base);
    fprintf(stderr, "rhine-mirror: stopping\n");
out:
    if (d->th_started) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        atomic_store(&d->cancel, true);
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->th, NULL);
    }
    for (int i = 0; i < 3; i++)
        if (sig[i] != NULL)
            event_free(sig[i]);
    rh_httpd_free(d->httpd);
    if (d->base != NULL)
        event_base_free(d->base);
    if (resp_buf_init) {
        rh_buf_cleanup(&resp_buf);
        resp_buf_init = false;
    }
    rh_metadata_free(d->root);
    rh_mirror_config_cleanup(&d->pending);
    rh_mirror_config_cleanup(&d->cfg);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(pub);
    free(d);
    return rc;
}
