/* httpd_main.c -- rhine-httpd: serve one directory with the shared server (tests, benchmarks). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "manifest/buf.h"
#include "server/httpd.h"

typedef struct app {
    struct event_base *base;
    rh_httpd *httpd;
    const char *cert, *key;
    const char *roots[2];  /* --root and --alt-root: SIGUSR1 switches between them */
    int cur_root;
} app;

static void usage(void)
{
    fprintf(stderr,
            "usage: rhine-httpd --root DIR [--listen ADDR:PORT --tls-cert F --tls-key F]\n"
            "                   [--listen-h2c ADDR:PORT] [--port-file F] [--etag-from-name]\n"
            "                   [--test-routes] [--max-conns N] [--idle-ms N] [--rst-burst N]\n"
            "                   [--handshake-ms N]\n"
            "                   [--alt-root DIR]\n"
            "  --test-routes: POST /echo answers the body, GET /metrics the counters\n"
            "  --alt-root: SIGUSR1 switches the served root between --root and DIR;\n"
            "  SIGHUP reloads the certificate and key\n");
}

static rh_buf metrics; /* the last /metrics answer; freed at exit */

/* The hook as the origin/mirror use it: dynamic routes first, then the file server. */
static bool test_routes(void *ctx, const rh_httpd_req *req, rh_httpd_resp *resp)
{
    app *a = ctx;
    const char *path = rh_httpd_req_path(req);
    const char *m = rh_httpd_req_method(req);

    if (strcmp(path, "/echo") == 0) {
        size_t len;
        const uint8_t *body = rh_httpd_req_body(req, &len);
        if (strcmp(m, "POST") != 0) {
            resp->status = 405;
            return true;
        }
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        resp->body = body;
        resp->body_len = len;
        return true;
    }
    if (strcmp(path, "/metrics") == 0 && strcmp(m, "GET") == 0) {
        if (metrics.max == 0)
            rh_buf_init(&metrics, 1u << 20);
        rh_buf_reset(&metrics);
        if (rh_httpd_stats_prometheus(a->httpd, "rhine_httpd", &metrics) != RH_OK)
            return false;
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4";
        resp->body = metrics.data;
        resp->body_len = metrics.len;
        return true;
    }
    return false;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    app *a = arg;
    (void)what;
    if (sig == SIGUSR1) {
        rh_error e;
        rh_error_clear(&e);
        if (a->roots[1] == NULL)
            return;
        if (rh_httpd_set_root(a->httpd, a->roots[1 - a->cur_root], &e) != RH_OK) {
            fprintf(stderr, "rhine-httpd: switch root: %s\n", e.msg);
            return;
        }
        a->cur_root = 1 - a->cur_root;
        fprintf(stderr, "rhine-httpd: now serving %s\n", a->roots[a->cur_root]);
        return;
    }
    if (sig == SIGHUP) {
        rh_error e;
        rh_error_clear(&e);
        if (a->cert && rh_httpd_reload_tls(a->httpd, a->cert, a->key, &e) != RH_OK)
            fprintf(stderr, "rhine-httpd: reload: %s\n", e.msg);
        else
            fprintf(stderr, "rhine-httpd: certificate reloaded\n");
        return;
    }
    event_base_loopexit(a->base, NULL);
}

static int write_port_file(const char *path, const rh_httpd *h)
{
    char tmp[4096];
    FILE *f;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    if (rh_httpd_port(h, RH_HTTPD_TLS))
        fprintf(f, "tls %d\n", rh_httpd_port(h, RH_HTTPD_TLS));
    if (rh_httpd_port(h, RH_HTTPD_CLEAR))
        fprintf(f, "clear %d\n", rh_httpd_port(h, RH_HTTPD_CLEAR));
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -1;
    return 0;
}

static unsigned parse_uint(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v > 0xffffffffUL) {
        fprintf(stderr, "rhine-httpd: bad number \"%s\"\n", s);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    rh_httpd_opts o;
    app a;
    const char *port_file = NULL;
    bool routes = false;
    rh_error e;
    struct event *sigs[5] = {NULL, NULL, NULL, NULL, NULL};
    int signos[5] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, 0};
    int rc = 1;

    memset(&o, 0, sizeof(o));
    memset(&a, 0, sizeof(a));
    rh_error_clear(&e);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--etag-from-name") == 0) {
            o.etag_from_name = true;
            continue;
        }
        if (strcmp(k, "--test-routes") == 0) {
            routes = true;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(k, "--root") == 0) o.root = v;
        else if (strcmp(k, "--alt-root") == 0) a.roots[1] = v;
        else if (strcmp(k, "--listen") == 0) o.listen_tls = v;
        else if (strcmp(k, "--listen-h2c") == 0) o.listen_clear = v;
        else if (strcmp(k, "--tls-cert") == 0) o.tls_cert = v;
        else if (strcmp(k, "--tls-key") == 0) o.tls_key = v;
        else if (strcmp(k, "--port-file") == 0) port_file = v;
        else if (strcmp(k, "--max-conns") == 0) o.max_conns = parse_uint(v);
        else if (strcmp(k, "--idle-ms") == 0) o.idle_timeout_ms = parse_uint(v);
        else if (strcmp(k, "--handshake-ms") == 0) o.handshake_timeout_ms = parse_uint(v);
        else if (strcmp(k, "--rst-burst") == 0) o.rst_burst = parse_uint(v);
        else {
            usage();
            return 2;
        }
    }
    if (o.root == NULL) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* the server library requires it */
    a.roots[0] = o.root;
    a.cert = o.tls_cert;
    a.key = o.tls_key;
    rh_httpd_tune_process();
    a.base = rh_httpd_base_new();
    if (a.base == NULL) {
        fprintf(stderr, "rhine-httpd: rh_httpd_base_new failed\n");
        return 1;
    }
    if (routes) {
        o.handler = test_routes;
        o.handler_ctx = &a;
    }
    if (rh_httpd_new(a.base, &o, &a.httpd, &e) != RH_OK) {
        fprintf(stderr, "rhine-httpd: %s\n", e.msg);
        goto out;
    }
    for (int i = 0; signos[i] != 0; i++) {
        sigs[i] = evsignal_new(a.base, signos[i], on_signal, &a);
        if (sigs[i] == NULL || event_add(sigs[i], NULL) != 0)
            goto out;
    }
    if (port_file != NULL && write_port_file(port_file, a.httpd) != 0) {
        fprintf(stderr, "rhine-httpd: %s: cannot write port file\n", port_file);
        goto out;
    }
    fprintf(stderr, "rhine-httpd: serving (tls %d, clear %d)\n",
            rh_httpd_port(a.httpd, RH_HTTPD_TLS), rh_httpd_port(a.httpd, RH_HTTPD_CLEAR));
    event_base_dispatch(a.base);
    rc = 0;
out:
    for (int i = 0; i < 5; i++)
        if (sigs[i])
            event_free(sigs[i]);
    rh_httpd_free(a.httpd);
    rh_buf_cleanup(&metrics);
    event_base_free(a.base);
    return rc;
}
