/* serve.c -- rhine-origin serve: shared HTTP server over the repository tree, hourly timestamp
 * re-signing with the online keys, and a push to every configured mirror when timestamp.json
 * changes (after a publish, a refresh, or a rotation). */
#include "origin/serve.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "manifest/config.h"
#include "manifest/limits.h"
#include "origin/push.h"
#include "origin/origin_repo.h"
#include "server/httpd.h"

#define PROG "rhine-origin serve"
#define SERVE_PATH_MAX 4096

static const char usage[] =
    "usage: rhine-origin serve --config origin.yaml [overrides]\n"
    "       rhine-origin serve --repo DIR [--keys ONLINE_KEYS_DIR] --listen-h2c ADDR:PORT ...\n"
    "\n"
    "Serves DIR/metadata/, DIR/targets/ and DIR/log/ (and /metrics; nothing else) over HTTP/2\n"
    "and HTTP/1.1: "
    "TLS with ALPN h2/http1.1 on --listen, cleartext h2c (prior knowledge) and HTTP/1.1 on\n"
    "--listen-h2c. Re-signs timestamp.json every refresh_interval (and the snapshot near its\n"
    "expiry) with the ONLINE keys only, and POSTs every new timestamp.json to <mirror>/push.\n"
    "  --config FILE          origin.yaml (see configs/origin.yaml)\n"
    "  --repo DIR             repository (overrides repo)\n"
    "  --keys DIR             online keys directory holding snapshot.pem and timestamp.pem;\n"
    "                         refused when it holds root or targets keys (overrides keys)\n"
    "  --listen ADDR:PORT     TLS listener (needs --tls-cert and --tls-key)\n"
    "  --listen-h2c ADDR:PORT cleartext listener\n"
    "  --tls-cert FILE --tls-key FILE\n"
    "  --ca FILE              CA bundle to verify https:// mirrors when pushing\n"
    "  --port-file FILE       write \"tls PORT\" / \"clear PORT\" lines once listening\n"
    "  --refresh-interval D   re-sign period (30s, 5m, 1h; overrides refresh_interval)\n"
    "SIGHUP reloads the TLS certificate; SIGTERM stops.\n";

typedef struct serve {
    struct event_base *base;
    rh_httpd *httpd;
    rh_pusher *pusher;
    const char *repo;
    char snapshot_key[SERVE_PATH_MAX], timestamp_key[SERVE_PATH_MAX];
    bool can_refresh;
    const char *tls_cert, *tls_key;
    int inotify_fd;
    rh_buf metrics;   /* the last /metrics answer (the server copies it) */
    uint8_t *last_ts; /* timestamp bytes last queued for push */
    size_t last_ts_len;
} serve;

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

/* Only the repository tree is served: metadata, targets and the transparency log. */
static bool route(void *ctx, const rh_httpd_req *req, rh_httpd_resp *resp)
{
    serve *s = ctx;
    static const char *const allowed[] = {"/metadata/", "/targets/", "/log/"};
    const char *path = rh_httpd_req_path(req);
    if (strcmp(path, "/metrics") == 0 && strcmp(rh_httpd_req_method(req), "GET") == 0) {
        rh_buf_reset(&s->metrics);
        if (rh_httpd_stats_prometheus(s->httpd, "rhine_origin", &s->metrics) == RH_OK) {
            resp->status = 200;
            resp->content_type = "text/plain; version=0.0.4";
            resp->body = s->metrics.data;
            resp->body_len = s->metrics.len;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strncmp(path, allowed[i], strlen(allowed[i])) == 0)
            return false; /* the file server answers (GET/HEAD; 405 otherwise) */
    static const char body[] = "not found\n";
    resp->status = 404;
    resp->content_type = "text/plain";
    resp->body = body;
    resp->body_len = sizeof body - 1;
    return true;
}

/* Reads metadata/timestamp.json and queues it for the mirrors when it changed. */
static void push_if_changed(serve *s)
{
    char path[SERVE_PATH_MAX];
    snprintf(path, sizeof path, "%s/metadata/timestamp.json", s->repo);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    uint8_t buf[RH_MAX_TIMESTAMP_BYTES];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0 || (size_t)n == sizeof buf)
        return; /* unreadable or larger than any timestamp a client accepts */
    if (s->last_ts != NULL && s->last_ts_len == (size_t)n && memcmp(s->last_ts, buf, (size_t)n) == 0)
        return;
    uint8_t *copy = malloc((size_t)n);
    if (copy == NULL)
        return;
    memcpy(copy, buf, (size_t)n);
    free(s->last_ts);
    s->last_ts = copy;
    s->last_ts_len = (size_t)n;
    if (s->pusher != NULL && rh_pusher_send(s->pusher, buf, (size_t)n) != RH_OK)
        logmsg("push: out of memory");
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    serve *s = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool seen = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len > 0 && strcmp(ev->name, "timestamp.json") == 0)
                seen = true;
            p += sizeof *ev + ev->len;
        }
    }
    if (seen)
        push_if_changed(s);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    serve *s = arg;
    rh_error e;
    rh_error_clear(&e);
    rh_origin_refresh_result r;
    if (rh_origin_refresh(s->repo, s->snapshot_key, s->timestamp_key, true, (int64_t)time(NULL),
                          &r, &e) != RH_OK) {
        logmsg("refresh failed (retried next period): %s", e.msg);
        return;
    }
    if (r.snapshot_signed)
        logmsg("re-signed snapshot version %llu", (unsigned long long)r.snapshot_version);
    logmsg("re-signed timestamp version %llu", (unsigned long long)r.timestamp_version);
    if (r.targets_expiring || r.root_expiring)
        logmsg("warning: %s%s%s expire within half their lifetime: re-sign with the offline keys",
               r.targets_expiring ? "targets" : "", r.targets_expiring && r.root_expiring ? " and " : "",
               r.root_expiring ? "root" : "");
    push_if_changed(s); /* in case inotify is unavailable */
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    serve *s = arg;
    if (sig == SIGHUP) {
        rh_error e;
        rh_error_clear(&e);
        if (s->tls_cert == NULL)
            return;
        if (rh_httpd_reload_tls(s->httpd, s->tls_cert, s->tls_key, &e) != RH_OK)
            logmsg("SIGHUP: TLS reload failed, old certificate kept: %s", e.msg);
        else
            logmsg("SIGHUP: TLS certificate reloaded");
        return;
    }
    logmsg("stopping");
    event_base_loopexit(s->base, NULL);
}

/* The serving process may hold the online keys, never the offline ones (root, targets). */
static rh_err check_online_keys(const char *dir, rh_error *e)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return rh_fail(e, RH_EIO, "%s: %s", dir, strerror(errno));
    rh_err rc = RH_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, "offline") == 0 || strncmp(de->d_name, "root", 4) == 0 ||
            strncmp(de->d_name, "targets", 7) == 0) {
            rc = rh_fail(e, RH_ECONFIG,
                         "%s: holds %s: the serving process takes the online keys directory "
                         "only (snapshot.pem, timestamp.pem); keep root and targets keys offline",
                         dir, de->d_name);
            break;
        }
    }
    closedir(d);
    return rc;
}

static int write_port_file(const char *path, const rh_httpd *h)
{
    char tmp[SERVE_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    if (rh_httpd_port(h, RH_HTTPD_TLS))
        fprintf(f, "tls %d\n", rh_httpd_port(h, RH_HTTPD_TLS));
    if (rh_httpd_port(h, RH_HTTPD_CLEAR))
        fprintf(f, "clear %d\n", rh_httpd_port(h, RH_HTTPD_CLEAR));
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int rh_origin_serve_main(int argc, char **argv)
{
    const char *config = NULL, *repo = NULL, *keys = NULL, *listen = NULL, *listen_h2c = NULL;
    const char *cert = NULL, *key = NULL, *ca = NULL, *port_file = NULL, *interval = NULL;
    struct {
        const char *name;
        const char **dst;
    } flags[] = {{"--config", &config},         {"--repo", &repo},         {"--keys", &keys},
                 {"--listen", &listen},         {"--listen-h2c", &listen_h2c},
                 {"--tls-cert", &cert},         {"--tls-key", &key},       {"--ca", &ca},
                 {"--port-file", &port_file},   {"--refresh-interval", &interval}};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        size_t j;
        for (j = 0; j < sizeof flags / sizeof flags[0]; j++) {
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
        if (j == sizeof flags / sizeof flags[0]) {
            fprintf(stderr, PROG ": unknown or incomplete option '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }

    rh_error e;
    rh_error_clear(&e);
    rh_origin_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.refresh_interval = 3600;
    if (config != NULL && rh_config_load_origin(config, &cfg, &e) != RH_OK) {
        logmsg("%s", e.msg);
        return 1;
    }
    int status = 1;
    serve s;
    memset(&s, 0, sizeof s);
    s.inotify_fd = -1;
    rh_buf_init(&s.metrics, 1u << 20);
    s.repo = repo ? repo : cfg.repo;
    keys = keys ? keys : cfg.keys;
    listen = listen ? listen : cfg.listen;
    listen_h2c = listen_h2c ? listen_h2c : cfg.listen_h2c;
    s.tls_cert = cert ? cert : cfg.tls_cert;
    s.tls_key = key ? key : cfg.tls_key;
    ca = ca ? ca : cfg.ca;
    port_file = port_file ? port_file : cfg.port_file;
    int64_t period = cfg.refresh_interval;
    struct event *ev_refresh = NULL, *ev_ino = NULL, *ev_sig[3] = {NULL, NULL, NULL};
    if (interval != NULL && (rh_parse_duration(interval, &period) != RH_OK || period < 1)) {
        logmsg("--refresh-interval: expected a duration such as 30s, 5m or 1h, got \"%s\"",
               interval);
        goto out;
    }
    if (s.repo == NULL || (listen == NULL && listen_h2c == NULL)) {
        fprintf(stderr, PROG ": needs a repository and at least one listener\n\n%s", usage);
        status = 2;
        goto out;
    }
    if (keys != NULL) {
        if (check_online_keys(keys, &e) != RH_OK) {
            logmsg("%s", e.msg);
            goto out;
        }
        snprintf(s.snapshot_key, sizeof s.snapshot_key, "%s/snapshot.pem", keys);
        snprintf(s.timestamp_key, sizeof s.timestamp_key, "%s/timestamp.pem", keys);
        s.can_refresh = true;
    } else {
        logmsg("warning: no online keys: timestamp.json will not be re-signed and will expire");
    }

    rh_httpd_tune_process();
    s.base = rh_httpd_base_new();
    if (s.base == NULL) {
        logmsg("cannot create the event loop");
        goto out;
    }
    char root[SERVE_PATH_MAX];
    snprintf(root, sizeof root, "%s", s.repo);
    rh_httpd_opts o;
    memset(&o, 0, sizeof o);
    o.root = root;
    o.listen_tls = listen;
    o.listen_clear = listen_h2c;
    o.tls_cert = s.tls_cert;
    o.tls_key = s.tls_key;
    o.handler = route;
    o.handler_ctx = &s;
    o.etag_from_name = true; /* the origin itself named every HASH.name target by its sha256 */
    if (rh_httpd_new(s.base, &o, &s.httpd, &e) != RH_OK) {
        logmsg("%s", e.msg);
        goto out;
    }
    if (cfg.nmirrors > 0 && rh_pusher_new(cfg.mirrors, cfg.nmirrors, ca, &s.pusher, &e) != RH_OK) {
        logmsg("%s", e.msg);
        goto out;
    }

    char mdir[SERVE_PATH_MAX];
    snprintf(mdir, sizeof mdir, "%s/metadata", s.repo);
    s.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s.inotify_fd < 0 || inotify_add_watch(s.inotify_fd, mdir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
        logmsg("warning: cannot watch %s (%s): pushes follow refreshes only", mdir,
               strerror(errno));
    else if ((ev_ino = event_new(s.base, s.inotify_fd, EV_READ | EV_PERSIST, on_inotify, &s)) ==
                 NULL ||
             event_add(ev_ino, NULL) != 0) {
        logmsg("cannot watch %s", mdir);
        goto out;
    }
    if (s.can_refresh) {
        struct timeval tv = {.tv_sec = (time_t)period, .tv_usec = 0};
        ev_refresh = event_new(s.base, -1, EV_PERSIST, on_refresh, &s);
        if (ev_refresh == NULL || event_add(ev_refresh, &tv) != 0) {
            logmsg("cannot arm the refresh timer");
            goto out;
        }
    }
    const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        ev_sig[i] = evsignal_new(s.base, sigs[i], on_signal, &s);
        if (ev_sig[i] == NULL || event_add(ev_sig[i], NULL) != 0) {
            logmsg("cannot install signal handlers");
            goto out;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (port_file != NULL && write_port_file(port_file, s.httpd) != 0) {
        logmsg("%s: cannot write the port file: %s", port_file, strerror(errno));
        goto out;
    }
    logmsg("serving %s (tls port %d, cleartext port %d), pushing to %zu mirror(s)", s.repo,
           rh_httpd_port(s.httpd, RH_HTTPD_TLS), rh_httpd_port(s.httpd, RH_HTTPD_CLEAR),
           cfg.nmirrors);
    push_if_changed(&s); /* mirrors learn the current version at once */
    event_base_dispatch(s.base);
    status = 0;
out:
    for (int i = 0; i < 3; i++)
        if (ev_sig[i] != NULL)
            event_free(ev_sig[i]);
    if (ev_refresh != NULL)
        event_free(ev_refresh);
    if (ev_ino != NULL)
        event_free(ev_ino);
    if (s.inotify_fd >= 0)
        close(s.inotify_fd);
    rh_pusher_free(s.pusher);
    rh_httpd_free(s.httpd);
    if (s.base != NULL)
        event_base_free(s.base);
    free(s.last_ts);
    rh_buf_cleanup(&s.metrics);
    rh_origin_config_cleanup(&cfg);
    return status;
}
