/* poll.c -- the fleet poller: one round reads the origin's signed state, then checks every
 * mirror's status, timestamp.json (signature and bytes against the origin), one target's
 * length and sha256, and its TLS certificate's expiry. */
#include "fleet/poll.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "manifest/hash.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "net/fetch.h"

struct rh_fleet {
    const rh_origin_config *cfg;
    char origin_url[RH_NET_MAX_URL];
    long timeout_ms;
    int64_t stale_after;
    rh_http *oh;          /* origin handle */
    rh_http **mh;         /* one handle per mirror (connection reuse across rounds) */
    rh_metadata *root;    /* newest origin root, chain-verified from 1.root.json */
    bool have_ts;
    rh_fleet_ts ts;       /* origin's current timestamp */
    uint64_t snapshot_version, targets_version;
    rh_metadata *targets; /* top-level targets of snapshot_version */
    rh_fleet_history hist;
    uint64_t round;
};

/* ---- helpers ----------------------------------------------------------------------------- */

static rh_err get(rh_http *h, const char *base, const char *rel, uint64_t max, rh_buf *out,
                  rh_error *e)
{
    char url[RH_NET_MAX_URL];
    if (rh_url_join(base, rel, url, sizeof(url)) != RH_OK)
        return rh_fail(e, RH_EINVAL, "%s/%s: URL too long", base, rel);
    rh_buf_reset(out);
    return rh_http_get_buf(h, url, max, out, NULL, e);
}

static rh_err parse_verified(const rh_buf *b, rh_role role, const char *src,
                             const rh_metadata *root, rh_metadata **out, rh_error *e)
{
    rh_metadata *m = NULL;
    rh_err rc = rh_metadata_parse(b->data, b->len, b->len ? b->len : 1, role, src, &m, e);
    if (rc == RH_OK && root != NULL)
        rc = rh_root_verify_role(root, role, m, e);
    if (rc != RH_OK) {
        rh_metadata_free(m);
        return rc;
    }
    *out = m;
    return RH_OK;
}

static void ts_of(const rh_metadata *m, const rh_buf *b, rh_fleet_ts *ts)
{
    ts->version = m->version;
    ts->expires = m->expires;
    ts->snapshot_version = m->u.timestamp.version;
    if (rh_hash_once(RH_SHA256, b->data, b->len, ts->sha256) != RH_OK)
        memset(ts->sha256, 0, sizeof(ts->sha256));
}

/* ---- origin ------------------------------------------------------------------------------ */

/* Walk the root chain: 1.root.json on the first round, then N+1 until the origin has no more.
 * TUF 5.3.4: each new root is signed by the threshold of the old one and of itself. */
static rh_err origin_roots(rh_fleet *f, rh_buf *b, rh_error *e)
{
    char rel[64];
    rh_err rc;
    if (f->root == NULL) {
        if ((rc = get(f->oh, f->origin_url, "metadata/1.root.json", RH_MAX_ROOT_BYTES, b, e)) ||
            (rc = parse_verified(b, RH_ROLE_ROOT, "1.root.json", NULL, &f->root, e)))
            return rc;
        if ((rc = rh_root_verify_role(f->root, RH_ROLE_ROOT, f->root, e)) != RH_OK) {
            rh_metadata_free(f->root);
            f->root = NULL;
            return rc;
        }
    }
    for (int i = 0; i < RH_MAX_ROOT_ROTATIONS; i++) {
        snprintf(rel, sizeof(rel), "metadata/%llu.root.json",
                 (unsigned long long)f->root->version + 1);
        rh_error miss;
        rh_error_clear(&miss);
        rc = get(f->oh, f->origin_url, rel, RH_MAX_ROOT_BYTES, b, &miss);
        if (rc == RH_ENOTFOUND)
            return RH_OK;
        if (rc != RH_OK)
            return rh_fail(e, rc, "%s", miss.msg);
        rh_metadata *next = NULL;
        if ((rc = parse_verified(b, RH_ROLE_ROOT, rel + 9, f->root, &next, e)) ||
            (rc = rh_root_verify_role(next, RH_ROLE_ROOT, next, e))) {
            rh_metadata_free(next);
            return rc;
        }
        if (next->version != f->root->version + 1) {
            rh_metadata_free(next);
            return rh_fail(e, RH_EVERSION, "%s: version differs from its name", rel + 9);
        }
        rh_metadata_free(f->root);
        f->root = next;
    }
    return RH_OK;
}

static rh_err origin_poll(rh_fleet *f, int64_t now, rh_error *e)
{
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_metadata *ts = NULL, *snap = NULL, *tg = NULL;
    char rel[96];
    rh_err rc = origin_roots(f, &b, e);
    if (rc != RH_OK)
        goto out;
    if ((rc = get(f->oh, f->origin_url, "metadata/timestamp.json", RH_MAX_TIMESTAMP_BYTES, &b,
                  e)) ||
        (rc = parse_verified(&b, RH_ROLE_TIMESTAMP, "timestamp.json", f->root, &ts, e)))
        goto out;
    ts_of(ts, &b, &f->ts);
    f->have_ts = true;
    if ((rc = rh_fleet_history_add(&f->hist, &f->ts, now)) != RH_OK)
        goto out;
    bool consistent = f->root->u.root.consistent_snapshot;
    if (f->ts.snapshot_version != f->snapshot_version || f->targets == NULL) {
        if (consistent)
            snprintf(rel, sizeof(rel), "metadata/%llu.snapshot.json",
                     (unsigned long long)f->ts.snapshot_version);
        else
            snprintf(rel, sizeof(rel), "metadata/snapshot.json");
        if ((rc = get(f->oh, f->origin_url, rel, RH_MAX_SNAPSHOT_BYTES, &b, e)) ||
            (rc = parse_verified(&b, RH_ROLE_SNAPSHOT, rel + 9, f->root, &snap, e)))
            goto out;
        const rh_metafile *mf = rh_snapshot_find(snap, "targets.json");
        if (mf == NULL) {
            rc = rh_fail(e, RH_EPARSE, "%s: no targets.json entry", rel + 9);
            goto out;
        }
        if (consistent)
            snprintf(rel, sizeof(rel), "metadata/%llu.targets.json",
                     (unsigned long long)mf->version);
        else
            snprintf(rel, sizeof(rel), "metadata/targets.json");
        if ((rc = get(f->oh, f->origin_url, rel, RH_MAX_TARGETS_BYTES, &b, e)) ||
            (rc = parse_verified(&b, RH_ROLE_TARGETS, rel + 9, f->root, &tg, e)))
            goto out;
        rh_metadata_free(f->targets);
        f->targets = tg;
        tg = NULL;
        f->targets_version = mf->version;
        f->snapshot_version = f->ts.snapshot_version;
    }
out:
    rh_metadata_free(ts);
    rh_metadata_free(snap);
    rh_metadata_free(tg);
    rh_buf_cleanup(&b);
    return rc;
}

/* ---- mirrors ----------------------------------------------------------------------------- */

typedef struct hash_sink {
    rh_hash *h;
} hash_sink;

static rh_err hash_write(void *ctx, const uint8_t *p, size_t n, rh_error *e)
{
    hash_sink *s = ctx;
    if (rh_hash_update(s->h, p, n) != RH_OK)
        return rh_fail(e, RH_ECRYPTO, "sha256 failed");
    return RH_OK;
}

/* Percent-encode a target path for a URL (unreserved characters and '/' kept). */
static bool url_path(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~/", *p) != NULL;
        if (o + (keep ? 1 : 3) >= outsz)
            return false;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return true;
}

/* Fetch one target of the origin's current targets from the mirror and check length and
 * sha256 against the origin-signed entry. */
static void spot_check(rh_fleet *f, size_t mi, rh_fleet_row *r)
{
    const rh_targets_md *t = &f->targets->u.targets;
    size_t eligible = 0;
    for (size_t i = 0; i < t->ntargets; i++)
        if (t->targets[i].length <= RH_FLEET_SPOT_MAX_BYTES && t->targets[i].hashes.has_sha256)
            eligible++;
    if (eligible == 0)
        return;
    size_t pick = (size_t)((f->round + mi) % eligible);
    const rh_target *tg = NULL;
    for (size_t i = 0; i < t->ntargets; i++) {
        if (t->targets[i].length <= RH_FLEET_SPOT_MAX_BYTES && t->targets[i].hashes.has_sha256 &&
            pick-- == 0) {
            tg = &t->targets[i];
            break;
        }
    }
    if (tg == NULL)
        return;
    snprintf(r->spot_target, sizeof(r->spot_target), "%s", tg->path);
    char name[RH_MAX_TARGET_PATH + 80], rel[3 * sizeof(name) + 16];
    if (f->root->u.root.consistent_snapshot) {
        /* TUF 5.7.3: consistent snapshots store targets as dir/HASH.name. */
        char hexd[2 * RH_SHA256_LEN + 1];
        rh_hex_encode(tg->hashes.sha256, RH_SHA256_LEN, hexd);
        const char *slash = strrchr(tg->path, '/');
        size_t dl = slash ? (size_t)(slash - tg->path) + 1 : 0;
        snprintf(name, sizeof(name), "%.*s%s.%s", (int)dl, tg->path, hexd, tg->path + dl);
    } else {
        snprintf(name, sizeof(name), "%s", tg->path);
    }
    memcpy(rel, "targets/", 8);
    if (!url_path(name, rel + 8, sizeof(rel) - 8))
        return;
    char url[RH_NET_MAX_URL];
    if (rh_url_join(r->url, rel, url, sizeof(url)) != RH_OK)
        return;
    hash_sink s = {rh_hash_new(RH_SHA256)};
    if (s.h == NULL)
        return;
    rh_error e;
    rh_error_clear(&e);
    rh_fetch_req req = {.url = url, .max_bytes = tg->length, .sink = hash_write, .sink_ctx = &s};
    rh_fetch_result res;
    rh_err rc = rh_http_get(f->mh[mi], &req, &res, &e);
    uint8_t got[RH_SHA256_LEN];
    if (rc == RH_OK && rh_hash_final(s.h, got) != RH_OK)
        rc = rh_fail(&e, RH_ECRYPTO, "sha256 failed");
    rh_hash_free(s.h);
    if (rc == RH_ETOOBIG || (rc == RH_OK && res.bytes != tg->length)) {
        r->spot_verified = 0;
        rh_fleet_row_problem(r, RH_FLEET_LYING, "targets/%s: length differs from the signed %llu",
                             tg->path, (unsigned long long)tg->length);
    } else if (rc == RH_OK && !rh_ct_equal(got, tg->hashes.sha256, RH_SHA256_LEN)) {
        r->spot_verified = 0;
        rh_fleet_row_problem(r, RH_FLEET_LYING, "targets/%s: sha256 differs from the signed one",
                             tg->path);
    } else if (rc == RH_ENOTFOUND) {
        r->spot_verified = 0;
        rh_fleet_row_problem(r, RH_FLEET_LYING,
                             "targets/%s: missing, though its snapshot v%llu lists it", tg->path,
                             (unsigned long long)f->snapshot_version);
    } else if (rc != RH_OK) {
        rh_fleet_row_problem(r, RH_FLEET_WARN, "spot check: %s", e.msg);
    } else {
        r->spot_verified = 1;
    }
}

static void mirror_poll(rh_fleet *f, size_t mi, int64_t now, rh_fleet_row *r)
{
    const rh_origin_mirror *m = &f->cfg->mirrors[mi];
    rh_fleet_row_init(r, m->name, m->region, m->url);
    r->polled_at = now;
    rh_buf b;
    rh_buf_init(&b, RH_FLEET_MAX_STATUS_BYTES);
    rh_error e;
    rh_error_clear(&e);
    rh_metadata *ts = NULL;

    rh_err rc = get(f->mh[mi], m->url, "metadata/timestamp.json", RH_MAX_TIMESTAMP_BYTES, &b, &e);
    if (rc != RH_OK) {
        rh_fleet_row_problem(r, RH_FLEET_DOWN, "%s", e.msg);
        goto out;
    }
    rc = parse_verified(&b, RH_ROLE_TIMESTAMP, "timestamp.json", f->root, &ts, &e);
    if (rc == RH_ENOMEM)
        goto out;
    if (rc != RH_OK) {
        r->ts_verified = 0;
        rh_fleet_row_problem(r, RH_FLEET_LYING, "%s", e.msg);
    } else if (f->have_ts) {
        rh_fleet_ts mts;
        ts_of(ts, &b, &mts);
        rh_fleet_judge_ts(&f->hist, &f->ts, &mts, now, f->stale_after, r);
        if (mts.snapshot_version == f->snapshot_version && f->targets != NULL)
            spot_check(f, mi, r);
    }

    rh_error_clear(&e);
    if (get(f->mh[mi], m->url, ".well-known/rhine/status", RH_FLEET_MAX_STATUS_BYTES, &b, &e) !=
            RH_OK ||
        rh_fleet_parse_status(b.data, b.len, "status", r, &e) != RH_OK)
        rh_fleet_row_problem(r, RH_FLEET_WARN, "%s", e.msg);

    if (strncmp(m->url, "https://", 8) == 0) {
        int64_t na;
        rh_error_clear(&e);
        if (rh_fleet_cert_expiry(m->url, f->timeout_ms, &na, &e) == RH_OK)
            rh_fleet_judge_cert(na, now, r);
        else
            rh_fleet_row_problem(r, RH_FLEET_WARN, "TLS certificate: %s", e.msg);
    }
out:
    rh_metadata_free(ts);
    rh_buf_cleanup(&b);
}

/* ---- poller ------------------------------------------------------------------------------ */

rh_err rh_fleet_new(const rh_fleet_opts *o, rh_fleet **out, rh_error *e)
{
    if (o == NULL || o->cfg == NULL)
        return rh_fail(e, RH_EINVAL, "fleet: no configuration");
    rh_fleet *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return RH_ENOMEM;
    rh_err rc = RH_OK;
    f->cfg = o->cfg;
    f->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : RH_FLEET_TIMEOUT_MS;
    f->stale_after = o->stale_after > 0 ? o->stale_after : RH_FLEET_STALE_AFTER_S;
    rh_fleet_history_init(&f->hist);
    int n;
    if (o->origin_url != NULL)
        n = snprintf(f->origin_url, sizeof(f->origin_url), "%s", o->origin_url);
    else {
        char *abs = o->cfg->repo ? realpath(o->cfg->repo, NULL) : NULL;
        if (abs == NULL) {
            rc = rh_fail(e, RH_EIO, "%s: %s", o->cfg->repo ? o->cfg->repo : "repo",
                         o->cfg->repo ? strerror(errno) : "not configured");
            goto out;
        }
        n = snprintf(f->origin_url, sizeof(f->origin_url), "file://%s", abs);
        free(abs);
    }
    if (n < 0 || (size_t)n >= sizeof(f->origin_url)) {
        rc = rh_fail(e, RH_EINVAL, "fleet: origin URL too long");
        goto out;
    }
    rh_fetch_opts fo = {.ca_file = o->cfg->ca, .connect_timeout_ms = f->timeout_ms,
                        .total_timeout_ms = f->timeout_ms, .http2 = true,
                        .user_agent = "rhine-fleet/1"};
    if ((rc = rh_http_new(&fo, &f->oh, e)) != RH_OK)
        goto out;
    f->mh = calloc(o->cfg->nmirrors ? o->cfg->nmirrors : 1, sizeof(*f->mh));
    if (f->mh == NULL) {
        rc = RH_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < o->cfg->nmirrors; i++)
        if ((rc = rh_http_new(&fo, &f->mh[i], e)) != RH_OK)
            goto out;
out:
    if (rc != RH_OK) {
        rh_fleet_free(f);
        return rc;
    }
    *out = f;
    return RH_OK;
}

void rh_fleet_free(rh_fleet *f)
{
    if (f == NULL)
        return;
    rh_http_free(f->oh);
    if (f->mh != NULL)
        for (size_t i = 0; i < f->cfg->nmirrors; i++)
            rh_http_free(f->mh[i]);
    free(f->mh);
    rh_metadata_free(f->root);
    rh_metadata_free(f->targets);
    rh_fleet_history_cleanup(&f->hist);
    free(f);
}

void rh_fleet_view_free(rh_fleet_view *v)
{
    if (v == NULL)
        return;
    free(v->rows);
    free(v);
}

rh_err rh_fleet_poll(rh_fleet *f, int64_t now, rh_fleet_view **out, rh_error *e)
{
    rh_fleet_view *v = calloc(1, sizeof(*v));
    size_t n = f->cfg->nmirrors;
    if (v == NULL || (v->rows = calloc(n ? n : 1, sizeof(*v->rows))) == NULL) {
        rh_fleet_view_free(v);
        return rh_fail(e, RH_ENOMEM, "fleet: out of memory");
    }
    f->round++;
    v->round = f->round;
    v->generated_at = now;
    v->stale_after = f->stale_after;
    snprintf(v->origin.url, sizeof(v->origin.url), "%.*s", (int)sizeof(v->origin.url) - 1,
             f->origin_url);
    rh_error oe;
    rh_error_clear(&oe);
    rh_err rc = origin_poll(f, now, &oe);
    if (rc == RH_ENOMEM) {
        rh_fleet_view_free(v);
        return rh_fail(e, RH_ENOMEM, "fleet: out of memory");
    }
    v->origin.ok = rc == RH_OK;
    snprintf(v->origin.error, sizeof(v->origin.error), "%s", rc == RH_OK ? "" : oe.msg);
    if (f->have_ts) {
        v->origin.ts_version = f->ts.version;
        v->origin.ts_expires = f->ts.expires;
        v->origin.snapshot_version = f->snapshot_version;
        v->origin.targets_version = f->targets_version;
        v->origin.ntargets = f->targets ? f->targets->u.targets.ntargets : 0;
    }
    v->origin.root_version = f->root ? f->root->version : 0;
    for (size_t i = 0; i < n; i++) {
        mirror_poll(f, i, now, &v->rows[i]);
        if (!v->origin.ok)
            rh_fleet_row_problem(&v->rows[i], RH_FLEET_WARN,
                                 "not compared: the origin could not be read");
    }
    v->nrows = n;
    *out = v;
    return RH_OK;
}

/* ---- TLS certificate expiry -------------------------------------------------------------- */

/* "https://host[:port][/...]" or "https://[v6]:port" -> host, port. */
static rh_err split_https(const char *url, char *host, size_t hostsz, char *port, size_t portsz,
                          rh_error *e)
{
    if (strncmp(url, "https://", 8) != 0)
        return rh_fail(e, RH_EINVAL, "%s: not an https:// URL", url);
    const char *h = url + 8, *end = h + strcspn(h, "/?#"), *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL)
            return rh_fail(e, RH_EINVAL, "%s: bad IPv6 address", url);
        colon = rb[1] == ':' ? rb + 1 : NULL;
        h++;
        end = rb;
        if ((size_t)(end - h) >= hostsz)
            return rh_fail(e, RH_EINVAL, "%s: host too long", url);
        memcpy(host, h, (size_t)(end - h));
        host[end - h] = '\0';
        end = colon ? colon + 1 + strcspn(colon + 1, "/?#") : rb + 1;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *he = colon ? colon : end;
        if ((size_t)(he - h) >= hostsz || he == h)
            return rh_fail(e, RH_EINVAL, "%s: bad host", url);
        memcpy(host, h, (size_t)(he - h));
        host[he - h] = '\0';
    }
    if (colon != NULL) {
        size_t pl = (size_t)(end - colon - 1);
        if (pl == 0 || pl >= portsz)
            return rh_fail(e, RH_EINVAL, "%s: bad port", url);
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
    } else {
        snprintf(port, portsz, "443");
    }
    return RH_OK;
}

/* Connect with a deadline; the socket is left blocking with send/receive timeouts. */
static int connect_timeout(const char *host, const char *port, long timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *p = ai; p != NULL; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (fd < 0)
            continue;
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        int ok = connect(fd, p->ai_addr, p->ai_addrlen) == 0;
        if (!ok && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            ok = poll(&pfd, 1, (int)timeout_ms) == 1 &&
                 getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0;
        }
        if (ok) {
            fcntl(fd, F_SETFL, fl);
            struct timeval tv = {.tv_sec = timeout_ms / 1000,
                                 .tv_usec = (timeout_ms % 1000) * 1000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

rh_err rh_fleet_cert_expiry(const char *url, long timeout_ms, int64_t *not_after, rh_error *e)
{
    char host[256], port[16];
    rh_err rc = split_https(url, host, sizeof(host), port, sizeof(port), e);
    if (rc != RH_OK)
        return rc;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    X509 *cert = NULL;
    int fd = connect_timeout(host, port, timeout_ms > 0 ? timeout_ms : RH_FLEET_TIMEOUT_MS);
    if (fd < 0)
        return rh_fail(e, RH_ENET, "%s: cannot connect", url);
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
        rc = rh_fail(e, RH_ECRYPTO, "%s: TLS set-up failed", url);
        goto out;
    }
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
        SSL_set_tlsext_host_name(ssl, host);
    if (SSL_connect(ssl) != 1) {
        rc = rh_fail(e, RH_ENET, "%s: TLS handshake failed", url);
        goto out;
    }
    cert = SSL_get1_peer_certificate(ssl);
    struct tm tm;
    if (cert == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
        rc = rh_fail(e, RH_ECRYPTO, "%s: no readable certificate", url);
        goto out;
    }
    *not_after = (int64_t)timegm(&tm);
out:
    ERR_clear_error();
    X509_free(cert);
    if (ssl != NULL)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}
