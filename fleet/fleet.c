/* fleet.c -- the fleet page's pure core: origin history, verdicts per mirror, status JSON
 * reading, and the HTML/JSON rendering. No sockets, no files. */
#include "fleet/fleet.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/metadata.h"

/* Append a string literal (its length known at compile time). */
#define LIT(b, s) rh_buf_append((b), (s), sizeof(s) - 1)

const char *rh_fleet_health_name(rh_fleet_health h)
{
    switch (h) {
    case RH_FLEET_OK: return "ok";
    case RH_FLEET_WARN: return "warn";
    case RH_FLEET_STALE: return "stale";
    case RH_FLEET_LYING: return "lying";
    case RH_FLEET_DOWN: return "down";
    }
    return "unknown";
}

/* ---- origin history ---------------------------------------------------------------------- */

void rh_fleet_history_init(rh_fleet_history *h)
{
    memset(h, 0, sizeof(*h));
}

void rh_fleet_history_cleanup(rh_fleet_history *h)
{
    if (h == NULL)
        return;
    free(h->v);
    memset(h, 0, sizeof(*h));
}

const rh_fleet_seen *rh_fleet_history_find(const rh_fleet_history *h, uint64_t version)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->v[mid].version == version)
            return &h->v[mid];
        if (h->v[mid].version < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

rh_err rh_fleet_history_add(rh_fleet_history *h, const rh_fleet_ts *ts, int64_t now)
{
    if (rh_fleet_history_find(h, ts->version) != NULL)
        return RH_OK;
    if (h->n == h->cap) {
        if (h->cap >= RH_FLEET_HISTORY) {
            /* Drop the oldest version to make room. */
            memmove(h->v, h->v + 1, (h->n - 1) * sizeof(*h->v));
            h->n--;
        } else {
            size_t cap = h->cap ? h->cap * 2 : 16;
            if (cap > RH_FLEET_HISTORY)
                cap = RH_FLEET_HISTORY;
            rh_fleet_seen *nv = realloc(h->v, cap * sizeof(*nv));
            if (nv == NULL)
                return RH_ENOMEM;
            h->v = nv;
            h->cap = cap;
        }
    }
    size_t i = h->n;
    while (i > 0 && h->v[i - 1].version > ts->version) {
        h->v[i] = h->v[i - 1];
        i--;
    }
    h->v[i].version = ts->version;
    memcpy(h->v[i].sha256, ts->sha256, RH_SHA256_LEN);
    h->v[i].first_seen = now;
    h->n++;
    return RH_OK;
}

/* ---- rows and verdicts ------------------------------------------------------------------- */

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void rh_fleet_row_init(rh_fleet_row *r, const char *name, const char *region, const char *url)
{
    memset(r, 0, sizeof(*r));
    copy_str(r->name, sizeof(r->name), name);
    copy_str(r->region, sizeof(r->region), region);
    copy_str(r->url, sizeof(r->url), url);
    r->health = RH_FLEET_OK;
    r->v_root = r->v_timestamp = r->v_snapshot = r->v_targets = -1;
    r->lag_versions = r->lag_seconds = -1;
    r->reported_lag_versions = r->reported_lag_seconds = -1;
    r->last_sync = r->sync_duration_ms = -1;
    r->ts_verified = r->spot_verified = -1;
    r->cert_expiry = -1;
    r->polled_at = -1;
}

void rh_fleet_row_problem(rh_fleet_row *r, rh_fleet_health sev, const char *fmt, ...)
{
    if (sev > r->health)
        r->health = sev;
    if (r->nproblems >= RH_FLEET_MAX_PROBLEMS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problems[r->nproblems], RH_FLEET_TEXT, fmt, ap);
    va_end(ap);
    r->problem_sev[r->nproblems] = sev;
    r->nproblems++;
}

static void fmt_time(int64_t t, char out[21])
{
    rh_time_format(t, out);
}

void rh_fleet_judge_ts(const rh_fleet_history *h, const rh_fleet_ts *origin,
                       const rh_fleet_ts *mirror, int64_t now, int64_t stale_after,
                       rh_fleet_row *r)
{
    char when[21];
    r->v_timestamp = (int64_t)mirror->version;
    r->v_snapshot = (int64_t)mirror->snapshot_version;
    r->ts_verified = 1;
    if (mirror->expires <= now) {
        fmt_time(mirror->expires, when);
        rh_fleet_row_problem(r, RH_FLEET_STALE, "timestamp.json v%llu expired at %s",
                             (unsigned long long)mirror->version, when);
    }
    if (mirror->version >= origin->version) {
        r->lag_versions = 0;
        r->lag_seconds = 0;
        if (mirror->version == origin->version &&
            memcmp(mirror->sha256, origin->sha256, RH_SHA256_LEN) != 0) {
            r->ts_verified = 0;
            rh_fleet_row_problem(r, RH_FLEET_LYING,
                                 "timestamp.json v%llu differs from the origin's v%llu "
                                 "(split view or forgery)",
                                 (unsigned long long)mirror->version,
                                 (unsigned long long)origin->version);
        }
        return;
    }
    const rh_fleet_seen *same = rh_fleet_history_find(h, mirror->version);
    if (same != NULL && memcmp(same->sha256, mirror->sha256, RH_SHA256_LEN) != 0) {
        r->ts_verified = 0;
        rh_fleet_row_problem(r, RH_FLEET_LYING,
                             "timestamp.json v%llu differs from the one the origin served "
                             "(split view or forgery)", (unsigned long long)mirror->version);
    }
    r->lag_versions = (int64_t)(origin->version - mirror->version);
    /* Behind since the first newer version the origin served. */
    const rh_fleet_seen *next = NULL;
    for (size_t i = 0; i < h->n; i++) {
        if (h->v[i].version > mirror->version) {
            next = &h->v[i];
            break;
        }
    }
    if (next != NULL) {
        r->lag_seconds = now > next->first_seen ? now - next->first_seen : 0;
        /* The fleet did not see the version right after the mirror's: it came earlier. */
        r->lag_lower_bound = next->version != mirror->version + 1 || next == &h->v[0];
    }
    if (r->lag_seconds > stale_after)
        rh_fleet_row_problem(r, RH_FLEET_STALE,
                             "behind the origin by %lld version(s) for %s%llds (allowed %llds)",
                             (long long)r->lag_versions, r->lag_lower_bound ? "at least " : "",
                             (long long)r->lag_seconds, (long long)stale_after);
}

void rh_fleet_judge_cert(int64_t not_after, int64_t now, rh_fleet_row *r)
{
    char when[21];
    r->cert_expiry = not_after;
    fmt_time(not_after, when);
    if (not_after <= now)
        rh_fleet_row_problem(r, RH_FLEET_DOWN, "TLS certificate expired at %s", when);
    else if (not_after - now <= RH_FLEET_CERT_WARN_S)
        rh_fleet_row_problem(r, RH_FLEET_WARN, "TLS certificate expires at %s (in %lld days)",
                             when, (long long)((not_after - now) / 86400));
}

/* ---- status JSON ------------------------------------------------------------------------- */

/* An integer, or a "YYYY-MM-DDTHH:MM:SSZ" time; -1 otherwise. */
static int64_t num_or_time(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    int64_t t;
    if (json_is_string(v) && rh_time_parse(json_string_value(v), &t) == RH_OK)
        return t;
    return -1;
}

/* First of the dotted paths present in o ("a.b" walks objects). */
static const json_t *pick(const json_t *o, const char *const *paths)
{
    for (size_t i = 0; paths[i] != NULL; i++) {
        const json_t *cur = o;
        const char *p = paths[i];
        while (cur != NULL && *p != '\0') {
            const char *dot = strchr(p, '.');
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            char key[64];
            if (n >= sizeof(key))
                break;
            memcpy(key, p, n);
            key[n] = '\0';
            cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
            p += n + (dot ? 1 : 0);
        }
        if (cur != NULL && *p == '\0')
            return cur;
    }
    return NULL;
}

static int64_t pick_num(const json_t *o, const char *const *paths)
{
    const json_t *v = pick(o, paths);
    return v ? num_or_time(v) : -1;
}

rh_err rh_fleet_parse_status(const uint8_t *data, size_t len, const char *src, rh_fleet_row *r,
                             rh_error *e)
{
    if (len > RH_FLEET_MAX_STATUS_BYTES)
        return rh_fail(e, RH_ETOOBIG, "%s: more than %u bytes", src,
                       (unsigned)RH_FLEET_MAX_STATUS_BYTES);
    json_error_t jerr;
    json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        return rh_fail(e, RH_EPARSE, "%s: %d:%d: %s", src, jerr.line, jerr.column, jerr.text);
    if (!json_is_object(o)) {
        json_decref(o);
        return rh_fail(e, RH_EPARSE, "%s: not a JSON object", src);
    }
    static const char *const root[] = {"versions.root", "serving.root", "roles.root.version",
                                       NULL};
    static const char *const targets[] = {"versions.targets", "serving.targets",
                                          "roles.targets.version", NULL};
    static const char *const lagv[] = {"lag.versions", "lag_versions", NULL};
    static const char *const lags[] = {"lag.seconds", "lag_seconds", NULL};
    static const char *const last[] = {"last_sync", "last_success", "last_successful_sync",
                                       "sync.last_success", NULL};
    static const char *const dur[] = {"sync_duration_ms", "last_sync_duration_ms",
                                      "sync.duration_ms", NULL};
    static const char *const dur_s[] = {"last_sync_duration_seconds", NULL};
    static const char *const failed[] = {"syncs.failed", NULL};
    static const char *const lasterr[] = {"last_error", NULL};
    static const char *const fails[] = {"verification_failures", "failures",
                                        "sync.failures", NULL};
    r->v_root = pick_num(o, root);
    r->v_targets = pick_num(o, targets);
    r->reported_lag_versions = pick_num(o, lagv);
    r->reported_lag_seconds = pick_num(o, lags);
    r->last_sync = pick_num(o, last);
    r->sync_duration_ms = pick_num(o, dur);
    const json_t *ds = pick(o, dur_s);
    if (r->sync_duration_ms < 0 && json_is_number(ds) && json_number_value(ds) >= 0)
        r->sync_duration_ms = (int64_t)(json_number_value(ds) * 1000.0);
    if (r->last_sync == 0)
        r->last_sync = -1; /* never synced */
    const json_t *f = pick(o, fails);
    r->nfailures = 0;
    if (json_is_object(f)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)f, k, v) {
            if (r->nfailures >= RH_FLEET_MAX_FAILURES || !json_is_integer(v) ||
                json_integer_value(v) <= 0)
                continue; /* reasons never met are not shown */
            copy_str(r->failures[r->nfailures].reason, sizeof(r->failures[0].reason), k);
            r->failures[r->nfailures].count = (uint64_t)json_integer_value(v);
            r->nfailures++;
        }
    }
    const json_t *nf = pick(o, failed);
    if (json_is_integer(nf) && json_integer_value(nf) > 0 && r->nfailures < RH_FLEET_MAX_FAILURES) {
        copy_str(r->failures[r->nfailures].reason, sizeof(r->failures[0].reason),
                 "failed sync rounds");
        r->failures[r->nfailures].count = (uint64_t)json_integer_value(nf);
        r->nfailures++;
    }
    const json_t *le = pick(o, lasterr);
    if (json_is_string(le) && json_string_length(le) > 0)
        rh_fleet_row_problem(r, RH_FLEET_WARN, "mirror reports: %s", json_string_value(le));
    r->status_ok = true;
    json_decref(o);
    return RH_OK;
}

/* ---- rendering --------------------------------------------------------------------------- */

/* Append s with the HTML special characters escaped. */
static rh_err html_esc(rh_buf *b, const char *s)
{
    rh_err rc = RH_OK;
    for (; *s != '\0' && rc == RH_OK; s++) {
        switch (*s) {
        case '<': rc = LIT(b, "&lt;"); break;
        case '>': rc = LIT(b, "&gt;"); break;
        case '&': rc = LIT(b, "&amp;"); break;
        case '"': rc = LIT(b, "&quot;"); break;
        case '\'': rc = LIT(b, "&#39;"); break;
        default: rc = rh_buf_appendc(b, *s); break;
        }
    }
    return rc;
}

static rh_err html_num(rh_buf *b, int64_t v)
{
    return v < 0 ? LIT(b, "&ndash;") : rh_buf_appendf(b, "%lld", (long long)v);
}

static rh_err html_age(rh_buf *b, int64_t t, int64_t now)
{
    if (t < 0)
        return LIT(b, "&ndash;");
    char when[21];
    fmt_time(t, when);
    return rh_buf_appendf(b, "%s<br><small>%llds ago</small>", when,
                          (long long)(now > t ? now - t : 0));
}

static const char page_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}"
    "h1{font-size:1.4em;margin:0 0 .3em}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #ccc;padding:.35em .5em;text-align:left;vertical-align:top}"
    "th{background:#eee}tr.ok td{background:#f3fbf3}tr.warn td{background:#fff8e1}"
    "tr.stale td{background:#ffe0b2}tr.lying td,tr.down td{background:#ffcdd2}"
    ".badge{display:inline-block;padding:.1em .5em;border-radius:.6em;font-weight:bold;"
    "color:#fff}.b-ok{background:#2e7d32}.b-warn{background:#f9a825}.b-stale{background:#ef6c00}"
    ".b-lying{background:#b71c1c}.b-down{background:#424242}"
    "ul{margin:0;padding-left:1.1em}.summary{margin:.5em 0 1em}.bad{color:#b71c1c;"
    "font-weight:bold}small{color:#666}";

static int row_order(const rh_fleet_row *a, const rh_fleet_row *b)
{
    if (a->health != b->health)
        return a->health > b->health ? -1 : 1;
    int c = strcmp(a->region, b->region);
    return c != 0 ? c : strcmp(a->name, b->name);
}

/* Indices of rows, unhealthy first, then by region and name. Caller frees. */
static size_t *sorted_rows(const rh_fleet_view *v)
{
    size_t *ix = malloc((v->nrows ? v->nrows : 1) * sizeof(*ix));
    if (ix == NULL)
        return NULL;
    for (size_t i = 0; i < v->nrows; i++) {
        size_t j = i;
        while (j > 0 && row_order(&v->rows[ix[j - 1]], &v->rows[i]) > 0) {
            ix[j] = ix[j - 1];
            j--;
        }
        ix[j] = i;
    }
    return ix;
}

static rh_err html_check(rh_buf *b, int verified, const char *what)
{
    if (verified == 1)
        return rh_buf_appendf(b, "%s: verified<br>", what);
    if (verified == 0)
        return rh_buf_appendf(b, "<span class=\"bad\">%s: DOES NOT VERIFY</span><br>", what);
    return rh_buf_appendf(b, "<small>%s: not checked</small><br>", what);
}

static rh_err html_row(rh_buf *b, const rh_fleet_row *r, int64_t now)
{
    const char *h = rh_fleet_health_name(r->health);
    rh_err rc = rh_buf_appendf(b, "<tr class=\"%s\" id=\"mirror-", h);
    if (rc == RH_OK) rc = html_esc(b, r->name);
    if (rc == RH_OK) rc = rh_buf_appendf(b, "\" data-health=\"%s\"><td><b>", h);
    if (rc == RH_OK) rc = html_esc(b, r->name);
    if (rc == RH_OK) rc = LIT(b, "</b><br><small>");
    if (rc == RH_OK) rc = html_esc(b, r->url);
    if (rc == RH_OK) rc = LIT(b, "</small></td><td>");
    if (rc == RH_OK) rc = html_esc(b, r->region);
    if (rc == RH_OK) rc = rh_buf_appendf(b, "</td><td><span class=\"badge b-%s\">%s</span></td>",
                                         h, h);
    /* versions per role */
    if (rc == RH_OK) rc = LIT(b, "<td>root ");
    if (rc == RH_OK) rc = html_num(b, r->v_root);
    if (rc == RH_OK) rc = LIT(b, "<br>targets ");
    if (rc == RH_OK) rc = html_num(b, r->v_targets);
    if (rc == RH_OK) rc = LIT(b, "<br>snapshot ");
    if (rc == RH_OK) rc = html_num(b, r->v_snapshot);
    if (rc == RH_OK) rc = LIT(b, "<br>timestamp ");
    if (rc == RH_OK) rc = html_num(b, r->v_timestamp);
    /* lag */
    if (rc == RH_OK) rc = LIT(b, "</td><td>");
    if (rc == RH_OK) rc = html_num(b, r->lag_versions);
    if (rc == RH_OK) rc = LIT(b, " versions<br>");
    if (rc == RH_OK && r->lag_lower_bound) rc = LIT(b, "&ge;");
    if (rc == RH_OK) rc = html_num(b, r->lag_seconds);
    if (rc == RH_OK) rc = LIT(b, " s<br><small>reported: ");
    if (rc == RH_OK) rc = html_num(b, r->reported_lag_versions);
    if (rc == RH_OK) rc = LIT(b, " v, ");
    if (rc == RH_OK) rc = html_num(b, r->reported_lag_seconds);
    if (rc == RH_OK) rc = LIT(b, " s</small></td><td>");
    if (rc == RH_OK) rc = html_age(b, r->last_sync, now);
    /* failures by reason */
    if (rc == RH_OK) rc = LIT(b, "</td><td>");
    if (rc == RH_OK && !r->status_ok) rc = LIT(b, "<small>no status</small>");
    else if (rc == RH_OK && r->nfailures == 0) rc = LIT(b, "none");
    for (size_t i = 0; rc == RH_OK && i < r->nfailures; i++) {
        rc = html_esc(b, r->failures[i].reason);
        if (rc == RH_OK)
            rc = rh_buf_appendf(b, ": %llu<br>", (unsigned long long)r->failures[i].count);
    }
    /* byte checks */
    if (rc == RH_OK) rc = LIT(b, "</td><td>");
    if (rc == RH_OK) rc = html_check(b, r->ts_verified, "timestamp.json");
    if (rc == RH_OK) rc = html_check(b, r->spot_verified, "target");
    if (rc == RH_OK && r->spot_target[0] != '\0') {
        rc = LIT(b, "<small>");
        if (rc == RH_OK) rc = html_esc(b, r->spot_target);
        if (rc == RH_OK) rc = LIT(b, "</small>");
    }
    /* certificate */
    if (rc == RH_OK) rc = LIT(b, "</td><td>");
    if (rc == RH_OK && r->cert_expiry < 0) rc = LIT(b, "&ndash;");
    else if (rc == RH_OK) {
        char when[21];
        fmt_time(r->cert_expiry, when);
        rc = rh_buf_appendf(b, "%s<br><small>%lld days</small>", when,
                            (long long)((r->cert_expiry - now) / 86400));
    }
    /* problems */
    if (rc == RH_OK) rc = LIT(b, "</td><td><ul>");
    for (size_t i = 0; rc == RH_OK && i < r->nproblems; i++) {
        rc = rh_buf_appendf(b, "<li class=\"p-%s\">", rh_fleet_health_name(r->problem_sev[i]));
        if (rc == RH_OK) rc = html_esc(b, r->problems[i]);
        if (rc == RH_OK) rc = LIT(b, "</li>");
    }
    if (rc == RH_OK) rc = LIT(b, "</ul></td></tr>\n");
    return rc;
}

rh_err rh_fleet_render_html(const rh_fleet_view *v, unsigned refresh_s, rh_buf *out)
{
    size_t *ix = sorted_rows(v);
    if (ix == NULL)
        return RH_ENOMEM;
    size_t counts[RH_FLEET_DOWN + 1] = {0};
    for (size_t i = 0; i < v->nrows; i++)
        counts[v->rows[i].health]++;
    size_t bad = counts[RH_FLEET_STALE] + counts[RH_FLEET_LYING] + counts[RH_FLEET_DOWN];
    char when[21];
    fmt_time(v->generated_at, when);
    rh_err rc = rh_buf_appendf(out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"refresh\" content=\"%u\">"
        "<title>Rhine fleet: %zu of %zu mirrors unhealthy</title><style>%s</style></head>\n"
        "<body><h1>Rhine fleet</h1>\n<p class=\"summary\" id=\"summary\">%s &middot; round %llu"
        " &middot; %zu mirrors: %zu ok, %zu warn, <span class=\"%s\">%zu stale, %zu lying, "
        "%zu down</span></p>\n",
        refresh_s, bad, v->nrows, page_css, when, (unsigned long long)v->round, v->nrows,
        counts[RH_FLEET_OK], counts[RH_FLEET_WARN], bad ? "bad" : "", counts[RH_FLEET_STALE],
        counts[RH_FLEET_LYING], counts[RH_FLEET_DOWN]);
    if (rc == RH_OK) rc = LIT(out, "<p id=\"origin\">Origin ");
    if (rc == RH_OK) rc = html_esc(out, v->origin.url);
    if (rc == RH_OK && v->origin.ok) {
        char exp[21];
        fmt_time(v->origin.ts_expires, exp);
        rc = rh_buf_appendf(out, ": root v%llu, targets v%llu (%zu targets), snapshot v%llu, "
                            "timestamp v%llu (expires %s)",
                            (unsigned long long)v->origin.root_version,
                            (unsigned long long)v->origin.targets_version, v->origin.ntargets,
                            (unsigned long long)v->origin.snapshot_version,
                            (unsigned long long)v->origin.ts_version, exp);
    } else if (rc == RH_OK) {
        rc = LIT(out, ": <span class=\"bad\">unreachable: ");
        if (rc == RH_OK) rc = html_esc(out, v->origin.error);
        if (rc == RH_OK) rc = LIT(out, "</span>");
    }
    if (rc == RH_OK)
        rc = rh_buf_appendf(out, ". Stale after %llds behind.</p>\n<table id=\"fleet\"><thead><tr>"
                            "<th>mirror</th><th>region</th><th>health</th><th>versions</th>"
                            "<th>lag</th><th>last sync</th><th>failures</th><th>bytes</th>"
                            "<th>TLS expiry</th><th>problems</th></tr></thead><tbody>\n",
                            (long long)v->stale_after);
    for (size_t i = 0; rc == RH_OK && i < v->nrows; i++)
        rc = html_row(out, &v->rows[ix[i]], v->generated_at);
    if (rc == RH_OK)
        rc = LIT(out, "</tbody></table>\n<p><small>Machine-readable: "
                           "<a href=\"/fleet.json\">/fleet.json</a></small></p></body></html>\n");
    free(ix);
    return rc;
}

static json_t *jnum(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *jcheck(int v)
{
    return v < 0 ? json_null() : json_boolean(v == 1);
}

static json_t *row_json(const rh_fleet_row *r)
{
    json_t *o = json_object(), *probs = json_array(), *fails = json_object();
    if (o == NULL || probs == NULL || fails == NULL) {
        json_decref(o);
        json_decref(probs);
        json_decref(fails);
        return NULL;
    }
    for (size_t i = 0; i < r->nproblems; i++)
        json_array_append_new(probs, json_pack("{s:s,s:s}", "severity",
                                               rh_fleet_health_name(r->problem_sev[i]),
                                               "text", r->problems[i]));
    for (size_t i = 0; i < r->nfailures; i++)
        json_object_set_new(fails, r->failures[i].reason,
                            json_integer((json_int_t)r->failures[i].count));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "region", json_string(r->region));
    json_object_set_new(o, "url", json_string(r->url));
    json_object_set_new(o, "health", json_string(rh_fleet_health_name(r->health)));
    json_object_set_new(o, "versions", json_pack("{s:o,s:o,s:o,s:o}", "root", jnum(r->v_root),
                                                 "targets", jnum(r->v_targets), "snapshot",
                                                 jnum(r->v_snapshot), "timestamp",
                                                 jnum(r->v_timestamp)));
    json_object_set_new(o, "lag", json_pack("{s:o,s:o,s:b}", "versions", jnum(r->lag_versions),
                                            "seconds", jnum(r->lag_seconds), "lower_bound",
                                            r->lag_lower_bound));
    json_object_set_new(o, "reported", json_pack("{s:b,s:o,s:o,s:o,s:o}", "status", r->status_ok,
                                                 "lag_versions", jnum(r->reported_lag_versions),
                                                 "lag_seconds", jnum(r->reported_lag_seconds),
                                                 "last_sync", jnum(r->last_sync),
                                                 "sync_duration_ms", jnum(r->sync_duration_ms)));
    json_object_set_new(o, "failures", fails);
    json_object_set_new(o, "verify", json_pack("{s:o,s:o,s:s}", "timestamp",
                                               jcheck(r->ts_verified), "target",
                                               jcheck(r->spot_verified), "target_path",
                                               r->spot_target));
    json_object_set_new(o, "cert_expiry", jnum(r->cert_expiry));
    json_object_set_new(o, "polled_at", jnum(r->polled_at));
    json_object_set_new(o, "problems", probs);
    return o;
}

rh_err rh_fleet_render_json(const rh_fleet_view *v, rh_buf *out)
{
    rh_err rc = RH_ENOMEM;
    char *text = NULL;
    json_t *root = json_object(), *mirrors = json_array(), *origin = json_object();
    if (root == NULL || mirrors == NULL || origin == NULL)
        goto out;
    json_object_set_new(origin, "url", json_string(v->origin.url));
    json_object_set_new(origin, "ok", json_boolean(v->origin.ok));
    if (v->origin.ok) {
        json_object_set_new(origin, "versions",
                            json_pack("{s:I,s:I,s:I,s:I}", "root",
                                      (json_int_t)v->origin.root_version, "targets",
                                      (json_int_t)v->origin.targets_version, "snapshot",
                                      (json_int_t)v->origin.snapshot_version, "timestamp",
                                      (json_int_t)v->origin.ts_version));
        json_object_set_new(origin, "timestamp_expires", json_integer(v->origin.ts_expires));
        json_object_set_new(origin, "targets", json_integer((json_int_t)v->origin.ntargets));
    } else {
        json_object_set_new(origin, "error", json_string(v->origin.error));
    }
    size_t *ix = sorted_rows(v);
    if (ix == NULL)
        goto out;
    for (size_t i = 0; i < v->nrows; i++) {
        json_t *r = row_json(&v->rows[ix[i]]);
        if (r == NULL || json_array_append_new(mirrors, r) != 0) {
            free(ix);
            goto out;
        }
    }
    free(ix);
    json_object_set_new(root, "generated_at", json_integer(v->generated_at));
    json_object_set_new(root, "round", json_integer((json_int_t)v->round));
    json_object_set_new(root, "stale_after", json_integer(v->stale_after));
    json_object_set(root, "origin", origin);
    json_object_set(root, "mirrors", mirrors);
    text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (text == NULL)
        goto out;
    rc = rh_buf_append(out, text, strlen(text));
    if (rc == RH_OK)
        rc = rh_buf_appendc(out, '\n');
out:
    free(text);
    json_decref(root);
    json_decref(mirrors);
    json_decref(origin);
    return rc;
}

/* Prometheus label value: backslash, double quote and newline escaped. */
static rh_err prom_label(rh_buf *b, const char *s)
{
    rh_err rc = RH_OK;
    for (; *s != '\0' && rc == RH_OK; s++) {
        if (*s == '\\' || *s == '"')
            rc = rh_buf_appendf(b, "\\%c", *s);
        else if (*s == '\n')
            rc = LIT(b, "\\n");
        else
            rc = rh_buf_appendc(b, *s);
    }
    return rc;
}

static rh_err prom_series(rh_buf *b, const char *metric, const rh_fleet_row *r, int64_t v)
{
    if (v < 0)
        return RH_OK;
    rh_err rc = rh_buf_appendf(b, "%s{mirror=\"", metric);
    if (rc == RH_OK) rc = prom_label(b, r->name);
    if (rc == RH_OK) rc = LIT(b, "\",region=\"");
    if (rc == RH_OK) rc = prom_label(b, r->region);
    if (rc == RH_OK) rc = rh_buf_appendf(b, "\"} %lld\n", (long long)v);
    return rc;
}

rh_err rh_fleet_render_metrics(const rh_fleet_view *v, rh_buf *out)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"rhine_fleet_mirror_up", "gauge", "1 when the mirror answered the fleet's poll"},
        {"rhine_fleet_mirror_lying", "gauge",
         "1 when the mirror serves bytes that do not verify or differ from the origin's"},
        {"rhine_fleet_mirror_stale", "gauge", "1 when the mirror is behind for too long"},
        {"rhine_fleet_mirror_lag_versions", "gauge", "timestamp versions behind the origin"},
        {"rhine_fleet_mirror_lag_seconds", "gauge", "seconds behind the origin"},
        {"rhine_fleet_mirror_cert_expiry_timestamp_seconds", "gauge",
         "notAfter of the mirror's TLS certificate"},
    };
    rh_err rc = rh_buf_appendf(out, "# TYPE rhine_fleet_origin_up gauge\n"
                                    "rhine_fleet_origin_up %d\n", v->origin.ok ? 1 : 0);
    for (size_t k = 0; rc == RH_OK && k < sizeof(m) / sizeof(m[0]); k++) {
        rc = rh_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name,
                            m[k].type);
        for (size_t i = 0; rc == RH_OK && i < v->nrows; i++) {
            const rh_fleet_row *r = &v->rows[i];
            int64_t val[] = {r->health != RH_FLEET_DOWN, r->health == RH_FLEET_LYING,
                             r->health == RH_FLEET_STALE, r->lag_versions, r->lag_seconds,
                             r->cert_expiry};
            rc = prom_series(out, m[k].name, r, val[k]);
        }
    }
    return rc;
}
