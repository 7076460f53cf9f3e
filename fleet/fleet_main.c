/* fleet_main.c -- rhine-fleet: polls every mirror of the origin's config and serves the fleet
 * page (HTML at /, JSON at /fleet.json); --once prints one round as JSON. */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet/fleet.h"
#include "fleet/poll.h"
#include "manifest/config.h"
#include "net/fetch.h"
#include "server/httpd.h"

#define PROG "rhine-fleet"
#define FLEET_DEFAULT_LISTEN   "127.0.0.1:8490"
#define FLEET_DEFAULT_INTERVAL 30
#define FLEET_PATH_MAX         4096

static const char usage[] =
    "usage: rhine-fleet --config origin.yaml [--origin URL] [--listen ADDR:PORT]\n"
    "                   [--port-file FILE] [--interval D] [--stale-after D] [--timeout D]\n"
    "       rhine-fleet --config origin.yaml [--origin URL] --once\n"
    "\n"
    "Polls every mirror listed in the origin's config (mirrors: name, region, url) and shows\n"
    "per mirror: health, versions per role, lag in versions and seconds, last successful sync,\n"
    "failures by reason, whether its timestamp.json and one target verify against the origin,\n"
    "and its TLS certificate's expiry. Stale, lying and unreachable mirrors come first, in red.\n"
    "  --config FILE      origin.yaml (mirrors, ca; repo when --origin is absent)\n"
    "  --origin URL       the origin's repository URL (default: read the repo directory)\n"
    "  --listen ADDR:PORT where to serve the page over HTTP (default " FLEET_DEFAULT_LISTEN ")\n"
    "  --port-file FILE   write \"clear PORT\" once listening\n"
    "  --interval D       seconds between polling rounds (default 30s)\n"
    "  --stale-after D    lag tolerated before a mirror is stale (default 10m)\n"
    "  --timeout D        one request to one server (default 10s)\n"
    "  --once             poll one round, print the JSON, exit 0 when no mirror is stale,\n"
    "                     lying or down, 1 otherwise\n"
    "Pages: / (HTML, reloads itself), /fleet.json, /metrics (Prometheus). SIGTERM stops.\n"
    "Exit status: 0 success, 1 failure (\"rhine-fleet: <file>: <reason>\" on stderr), 2 usage.\n";

typedef struct fleet_srv {
    rh_fleet *fleet;
    unsigned interval;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    rh_buf html, json, prom; /* the last round, rendered; guarded by mu */
    bool ready;
} fleet_srv;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bool unhealthy(const rh_fleet_view *v)
{
    for (size_t i = 0; i < v->nrows; i++)
        if (v->rows[i].health >= RH_FLEET_STALE)
            return true;
    return !v->origin.ok;
}

static void *poller(void *arg)
{
    fleet_srv *s = arg;
    rh_buf html, json, prom;
    rh_buf_init(&html, RH_FLEET_PAGE_MAX);
    rh_buf_init(&json, RH_FLEET_PAGE_MAX);
    rh_buf_init(&prom, RH_FLEET_PAGE_MAX);
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        rh_error e;
        rh_error_clear(&e);
        rh_fleet_view *v = NULL;
        rh_buf_reset(&html);
        rh_buf_reset(&json);
        rh_buf_reset(&prom);
        if (rh_fleet_poll(s->fleet, (int64_t)time(NULL), &v, &e) != RH_OK ||
            rh_fleet_render_html(v, s->interval, &html) != RH_OK ||
            rh_fleet_render_json(v, &json) != RH_OK || rh_fleet_render_metrics(v, &prom) != RH_OK) {
            rh_buf_reset(&json);
            logmsg("poll failed: %s", e.msg[0] ? e.msg : "out of memory");
        } else {
            size_t bad = 0;
            for (size_t i = 0; i < v->nrows; i++)
                bad += v->rows[i].health >= RH_FLEET_STALE;
            logmsg("round %llu: %zu of %zu mirrors unhealthy%s", (unsigned long long)v->round,
                   bad, v->nrows, v->origin.ok ? "" : " (origin unreadable)");
        }
        rh_fleet_view_free(v);
        pthread_mutex_lock(&s->mu);
        if (json.len > 0) {
            rh_buf t = s->html;
            s->html = html;
            html = t;
            t = s->json;
            s->json = json;
            json = t;
            t = s->prom;
            s->prom = prom;
            prom = t;
            s->ready = true;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += s->interval;
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&s->mu);
    rh_buf_cleanup(&html);
    rh_buf_cleanup(&json);
    rh_buf_cleanup(&prom);
    return NULL;
}

/* Serves only the two pages: never declines, so the file server's root is never used. */
static bool handler(void *ctx, const rh_httpd_req *req, rh_httpd_resp *resp)
{
    fleet_srv *s = ctx;
    static const char notfound[] = "not found\n", method[] = "method not allowed\n",
                      wait[] = "first polling round in progress\n";
    const char *m = rh_httpd_req_method(req), *p = rh_httpd_req_path(req);
    memset(resp, 0, sizeof(*resp));
    resp->cache_control = "no-store";
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        resp->status = 405;
        resp->body = method;
        resp->body_len = sizeof(method) - 1;
        return true;
    }
    bool html = strcmp(p, "/") == 0 || strcmp(p, "/index.html") == 0;
    bool json = strcmp(p, "/fleet.json") == 0, prom = strcmp(p, "/metrics") == 0;
    if (!html && !json && !prom) {
        resp->status = 404;
        resp->body = notfound;
        resp->body_len = sizeof(notfound) - 1;
        return true;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->ready) {
        resp->status = 503;
        resp->body = wait;
        resp->body_len = sizeof(wait) - 1;
    } else {
        const rh_buf *b = html ? &s->html : json ? &s->json : &s->prom;
        resp->status = 200;
        resp->content_type = html ? "text/html; charset=utf-8"
                             : json ? "application/json"
                                    : "text/plain; version=0.0.4";
        resp->body = b->data;
        resp->body_len = b->len;
    }
    pthread_mutex_unlock(&s->mu); /* the server copied the body */
    return true;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static int write_port_file(const char *path, int port)
{
    char tmp[FLEET_PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "clear %d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static int duration_arg(const char *name, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (v == NULL)
        return 0;
    if (rh_parse_duration(v, out) != RH_OK || *out < lo || *out > hi) {
        fprintf(stderr, PROG ": %s: expected a duration %llds..%llds such as 30s or 5m, got "
                "\"%s\"\n(see " PROG " --help)\n", name, (long long)lo, (long long)hi, v);
        return -1;
    }
    return 0;
}

static int run_once(rh_fleet *fl)
{
    rh_error e;
    rh_error_clear(&e);
    rh_fleet_view *v = NULL;
    rh_buf out;
    rh_buf_init(&out, RH_FLEET_PAGE_MAX);
    int rc = 1;
    if (rh_fleet_poll(fl, (int64_t)time(NULL), &v, &e) != RH_OK ||
        rh_fleet_render_json(v, &out) != RH_OK) {
        logmsg("%s", e.msg[0] ? e.msg : "out of memory");
    } else {
        fwrite(out.data, 1, out.len, stdout);
        rc = unhealthy(v) ? 1 : 0;
    }
    rh_fleet_view_free(v);
    rh_buf_cleanup(&out);
    return rc;
}

static int run_server(rh_fleet *fl, const char *listen, const char *port_file, unsigned interval)
{
    fleet_srv s = {.fleet = fl, .interval = interval};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    rh_buf_init(&s.html, RH_FLEET_PAGE_MAX);
    rh_buf_init(&s.json, RH_FLEET_PAGE_MAX);
    rh_buf_init(&s.prom, RH_FLEET_PAGE_MAX);
    struct event_base *base = event_base_new();
    rh_httpd *h = NULL;
    struct event *sigs[2] = {NULL, NULL};
    bool started = false;
    pthread_t th;
    int rc = 1;
    rh_error e;
    rh_error_clear(&e);
    if (base == NULL) {
        logmsg("cannot create the event loop");
        goto out;
    }
    /* The handler answers every request; root only satisfies the server's contract. */
    rh_httpd_opts ho = {.root = "/", .listen_clear = listen, .handler = handler,
                        .handler_ctx = &s};
    if (rh_httpd_new(base, &ho, &h, &e) != RH_OK) {
        logmsg("%s: %s", listen, e.msg);
        goto out;
    }
    if (port_file != NULL && write_port_file(port_file, rh_httpd_port(h, RH_HTTPD_CLEAR)) != 0) {
        logmsg("%s: cannot write: %s", port_file, strerror(errno));
        goto out;
    }
    sigs[0] = evsignal_new(base, SIGTERM, on_signal, base);
    sigs[1] = evsignal_new(base, SIGINT, on_signal, base);
    if (sigs[0] == NULL || sigs[1] == NULL || event_add(sigs[0], NULL) != 0 ||
        event_add(sigs[1], NULL) != 0) {
        logmsg("cannot install signal handlers");
        goto out;
    }
    if (pthread_create(&th, NULL, poller, &s) != 0) {
        logmsg("cannot start the poller thread");
        goto out;
    }
    started = true;
    logmsg("serving the fleet page on http://%s/ (port %d)", listen,
           rh_httpd_port(h, RH_HTTPD_CLEAR));
    event_base_dispatch(base);
    logmsg("stopping");
    rc = 0;
out:
    if (started) {
        pthread_mutex_lock(&s.mu);
        s.stop = true;
        pthread_cond_signal(&s.cv);
        pthread_mutex_unlock(&s.mu);
        pthread_join(th, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (sigs[i] != NULL)
            event_free(sigs[i]);
    rh_httpd_free(h);
    if (base != NULL)
        event_base_free(base);
    rh_buf_cleanup(&s.html);
    rh_buf_cleanup(&s.json);
    rh_buf_cleanup(&s.prom);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *origin = NULL, *listen = FLEET_DEFAULT_LISTEN,
               *port_file = NULL, *interval = NULL, *stale = NULL, *timeout = NULL;
    bool once = false;
    struct {
        const char *name;
        const char **dst;
    } flags[] = {{"--config", &config},       {"--origin", &origin},
                 {"--listen", &listen},       {"--port-file", &port_file},
                 {"--interval", &interval},   {"--stale-after", &stale},
                 {"--timeout", &timeout}};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--once") == 0) {
            once = true;
            continue;
        }
        size_t j, n = sizeof(flags) / sizeof(flags[0]);
        for (j = 0; j < n; j++) {
            size_t l = strlen(flags[j].name);
            if (strncmp(argv[i], flags[j].name, l) != 0)
                continue;
            if (argv[i][l] == '=') {
                *flags[j].dst = argv[i] + l + 1;
                break;
            }
            if (argv[i][l] == '\0' && i + 1 < argc) {
                *flags[j].dst = argv[++i];
                break;
            }
        }
        if (j == n) {
            fprintf(stderr, PROG ": unknown or incomplete option '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (config == NULL) {
        fprintf(stderr, PROG ": --config FILE is required\n%s", usage);
        return 2;
    }
    int64_t iv = FLEET_DEFAULT_INTERVAL, st = RH_FLEET_STALE_AFTER_S,
            to = RH_FLEET_TIMEOUT_MS / 1000;
    if (duration_arg("--interval", interval, 1, 86400, &iv) ||
        duration_arg("--stale-after", stale, 1, 30 * 86400, &st) ||
        duration_arg("--timeout", timeout, 1, 600, &to))
        return 2;

    signal(SIGPIPE, SIG_IGN);
    rh_error e;
    rh_error_clear(&e);
    rh_origin_config cfg;
    if (rh_config_load_origin(config, &cfg, &e) != RH_OK) {
        logmsg("%s", e.msg);
        return 1;
    }
    int rc = 1;
    rh_fleet *fl = NULL;
    if (cfg.nmirrors == 0) {
        logmsg("%s: mirrors: the config lists no mirror to watch", config);
        goto out;
    }
    if (rh_net_global_init(&e) != RH_OK) {
        logmsg("%s", e.msg);
        goto out;
    }
    rh_fleet_opts fo = {.cfg = &cfg, .origin_url = origin, .timeout_ms = (long)to * 1000,
                        .stale_after = st};
    if (rh_fleet_new(&fo, &fl, &e) != RH_OK) {
        logmsg("%s", e.msg);
        goto out;
    }
    rc = once ? run_once(fl) : run_server(fl, listen, port_file, (unsigned)iv);
out:
    rh_fleet_free(fl);
    rh_origin_config_cleanup(&cfg);
    return rc;
}
