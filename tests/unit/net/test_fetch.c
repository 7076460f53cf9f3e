/* test_fetch.c -- net/fetch against a tiny canned-response HTTP/1.1 server on loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/fetch.h"

static int g_lfd = -1;
static int g_port;
static pthread_t g_thr;

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        c += k;
        n -= (size_t)k;
    }
}

static void reply(int fd, const char *status, const char *extra, const char *body)
{
    char h[512];
    int n = snprintf(h, sizeof(h),
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     status, strlen(body), extra);
    send_all(fd, h, (size_t)n);
    send_all(fd, body, strlen(body));
}

static const char BODY[] = "0123456789";

/* Serve one request per connection until "/quit". */
static void *server(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(g_lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char req[4096];
        size_t n = 0;
        while (n < sizeof(req) - 1) {
            ssize_t k = recv(fd, req + n, sizeof(req) - 1 - n, 0);
            if (k <= 0)
                break;
            n += (size_t)k;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[n] = '\0';
        char path[256] = "";
        if (sscanf(req, "GET %255s", path) != 1) {
            close(fd);
            continue;
        }
        const char *range = strstr(req, "Range: bytes=");
        unsigned long off = range ? strtoul(range + 13, NULL, 10) : 0;
        if (strcmp(path, "/quit") == 0) {
            reply(fd, "200 OK", "", "");
            close(fd);
            return NULL;
        } else if (strcmp(path, "/ok") == 0) {
            if (strstr(req, "If-None-Match: \"v1\""))
                reply(fd, "304 Not Modified", "ETag: \"v1\"\r\n", "");
            else
                reply(fd, "200 OK", "ETag: \"v1\"\r\n", BODY);
        } else if (strcmp(path, "/404") == 0) {
            reply(fd, "404 Not Found", "", "no such thing");
        } else if (strcmp(path, "/503") == 0) {
            reply(fd, "503 Service Unavailable", "", "busy");
        } else if (strcmp(path, "/endless") == 0) {
            const char *h = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
            send_all(fd, h, strlen(h));
            char chunk[4096];
            memset(chunk, 'x', sizeof(chunk));
            for (int i = 0; i < 256; i++)
                send_all(fd, chunk, sizeof(chunk));
        } else if (strcmp(path, "/range") == 0 && off > 0 && off < 10) {
            char ex[128];
            snprintf(ex, sizeof(ex), "Content-Range: bytes %lu-9/10\r\n", off);
            reply(fd, "206 Partial Content", ex, BODY + off);
        } else if (strcmp(path, "/badrange") == 0) {
            reply(fd, "206 Partial Content", "Content-Range: bytes 0-9/10\r\n", BODY);
        } else if (strcmp(path, "/range") == 0 || strcmp(path, "/norange") == 0) {
            reply(fd, "200 OK", "", BODY);
        } else if (strcmp(path, "/redirect") == 0) {
            char ex[128];
            snprintf(ex, sizeof(ex), "Location: http://127.0.0.1:%d/ok\r\n", g_port);
            reply(fd, "302 Found", ex, "");
        } else if (strcmp(path, "/stall") == 0) {
            const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabcde";
            send_all(fd, h, strlen(h));
            struct timespec ts = {3, 0};
            nanosleep(&ts, NULL);
        } else {
            reply(fd, "500 Internal Server Error", "", "");
        }
        close(fd);
    }
}

static int setup_server(void **state)
{
    (void)state;
    g_lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(g_lfd, 16) != 0)
        return -1;
    socklen_t al = sizeof(a);
    getsockname(g_lfd, (struct sockaddr *)&a, &al);
    g_port = ntohs(a.sin_port);
    return pthread_create(&g_thr, NULL, server, NULL) == 0 ? 0 : -1;
}

static int teardown_server(void **state)
{
    (void)state;
    rh_http *h = NULL;
    rh_buf b;
    rh_buf_init(&b, 100);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/quit", g_port);
    if (rh_http_new(NULL, &h, NULL) == RH_OK && rh_http_get_buf(h, url, 100, &b, NULL, NULL))
        fprintf(stderr, "quit request failed\n");
    rh_http_free(h);
    rh_buf_cleanup(&b);
    pthread_join(g_thr, NULL);
    close(g_lfd);
    return 0;
}

static char *url_of(const char *path)
{
    static char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", g_port, path);
    return u;
}

typedef struct {
    rh_err code;
    const char *path;
    uint64_t max;
    const char *msg_part;
} get_case;

static void test_status_and_limits(void **state)
{
    (void)state;
    static const get_case cases[] = {
        {RH_OK, "/ok", 10, NULL},
        {RH_ETOOBIG, "/ok", 9, "more than 9 bytes"},       /* Content-Length says 10 */
        {RH_ENOTFOUND, "/404", 100, "HTTP 404"},
        {RH_ENET, "/503", 100, "HTTP 503"},
        {RH_ENET, "/teapot", 100, "HTTP 500"},
        {RH_ETOOBIG, "/endless", 1000, "more than 1000 bytes"}, /* no Content-Length */
        {RH_OK, "/redirect", 10, NULL},
    };
    rh_http *h = NULL;
    assert_int_equal(rh_http_new(NULL, &h, NULL), RH_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rh_buf b;
        rh_buf_init(&b, 1 << 20);
        rh_error e;
        rh_error_clear(&e);
        long st = 0;
        rh_err rc = rh_http_get_buf(h, url_of(cases[i].path), cases[i].max, &b, &st, &e);
        if (rc != cases[i].code)
            fail_msg("case %zu (%s): got %d (%s), want %d", i, cases[i].path, rc, e.msg,
                     cases[i].code);
        if (rc == RH_OK) {
            assert_int_equal(st, 200);
            assert_int_equal(b.len, 10);
            assert_memory_equal(b.data, BODY, 10);
        } else {
            assert_non_null(strstr(e.msg, cases[i].msg_part));
            assert_non_null(strstr(e.msg, "http://127.0.0.1:")); /* names the URL */
        }
        rh_buf_cleanup(&b);
    }
    rh_http_free(h);
}

static void test_buffer_ceiling(void **state)
{
    (void)state;
    rh_http *h = NULL;
    assert_int_equal(rh_http_new(NULL, &h, NULL), RH_OK);
    rh_buf b;
    rh_buf_init(&b, 4);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_http_get_buf(h, url_of("/ok"), 100, &b, NULL, &e), RH_ETOOBIG);
    assert_non_null(strstr(e.msg, "more than 4 bytes"));
    rh_buf_cleanup(&b);
    rh_http_free(h);
}

typedef struct {
    char data[64];
    size_t len;
} acc;

static rh_err acc_sink(void *ctx, const uint8_t *p, size_t n, rh_error *e)
{
    acc *a = ctx;
    if (a->len + n > sizeof(a->data))
        return rh_fail(e, RH_EHASH, "too much");
    memcpy(a->data + a->len, p, n);
    a->len += n;
    return RH_OK;
}

static rh_err refusing_sink(void *ctx, const uint8_t *p, size_t n, rh_error *e)
{
    (void)ctx;
    (void)p;
    (void)n;
    return rh_fail(e, RH_EHASH, "sha256 differs");
}

static void test_range_and_etag(void **state)
{
    (void)state;
    rh_http *h = NULL;
    assert_int_equal(rh_http_new(NULL, &h, NULL), RH_OK);
    static const struct {
        const char *path;
        uint64_t off;
        rh_err code;
    } cases[] = {
        {"/range", 4, RH_OK},       /* 206 honoured */
        {"/norange", 4, RH_OK},     /* 200: the transport skips 4 bytes */
        {"/badrange", 4, RH_ENET},  /* 206 from the wrong place */
    };
    for (size_t i = 0; i < 3; i++) {
        acc a = {.len = 0};
        rh_fetch_req r = {.url = url_of(cases[i].path), .max_bytes = 6, .offset = cases[i].off,
                          .sink = acc_sink, .sink_ctx = &a};
        rh_fetch_result res;
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_http_get(h, &r, &res, &e);
        if (rc != cases[i].code)
            fail_msg("case %zu: got %d (%s)", i, rc, e.msg);
        if (rc == RH_OK) {
            assert_int_equal(a.len, 6);
            assert_memory_equal(a.data, "456789", 6);
            assert_int_equal(res.bytes, 6);
        }
    }
    /* ETag captured; If-None-Match gives 304 without a body. */
    acc a = {.len = 0};
    rh_fetch_req r = {.url = url_of("/ok"), .max_bytes = 10, .sink = acc_sink, .sink_ctx = &a};
    rh_fetch_result res;
    assert_int_equal(rh_http_get(h, &r, &res, NULL), RH_OK);
    assert_string_equal(res.etag, "\"v1\"");
    assert_false(res.not_modified);
    r.if_none_match = "\"v1\"";
    a.len = 0;
    assert_int_equal(rh_http_get(h, &r, &res, NULL), RH_OK);
    assert_true(res.not_modified);
    assert_int_equal(res.status, 304);
    assert_int_equal(a.len, 0);
    /* A sink's refusal comes back with its code and message, prefixed by the URL. */
    rh_error e;
    rh_error_clear(&e);
    r.if_none_match = NULL;
    r.sink = refusing_sink;
    assert_int_equal(rh_http_get(h, &r, &res, &e), RH_EHASH);
    assert_non_null(strstr(e.msg, "/ok: sha256 differs"));
    rh_http_free(h);
}

static void test_slow_and_refused(void **state)
{
    (void)state;
    rh_fetch_opts o = {.low_speed_limit = 1000, .low_speed_time_s = 1};
    rh_http *h = NULL;
    assert_int_equal(rh_http_new(&o, &h, NULL), RH_OK);
    acc a = {.len = 0};
    rh_fetch_req r = {.url = url_of("/stall"), .max_bytes = 100000, .sink = acc_sink,
                      .sink_ctx = &a};
    rh_error e;
    rh_error_clear(&e);
    time_t t0 = time(NULL);
    assert_int_equal(rh_http_get(h, &r, NULL, &e), RH_ENET);
    assert_non_null(strstr(e.msg, "too slow"));
    assert_true(time(NULL) - t0 <= 3);
    rh_http_free(h);

    /* Connection refused: a port nobody listens on (bind, take the port, close). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
    close(fd);
    assert_int_equal(rh_http_new(NULL, &h, NULL), RH_OK);
    rh_buf b;
    rh_buf_init(&b, 100);
    rh_error_clear(&e);
    assert_int_equal(rh_http_get_buf(h, u, 100, &b, NULL, &e), RH_ENET);
    assert_non_null(strstr(e.msg, u));
    /* file:// works (tests), a missing file is RH_ENOTFOUND; other schemes are refused. */
    rh_error_clear(&e);
    assert_int_equal(rh_http_get_buf(h, "file:///nonexistent/rhine-x", 100, &b, NULL, &e),
                     RH_ENOTFOUND);
    rh_error_clear(&e);
    assert_int_equal(rh_http_get_buf(h, "ftp://127.0.0.1/x", 100, &b, NULL, &e), RH_ENET);
    rh_buf_cleanup(&b);
    rh_http_free(h);
}

static void test_url_join(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(rh_url_join("http://a/b/", "/c.json", out, sizeof(out)), RH_OK);
    assert_string_equal(out, "http://a/b/c.json");
    assert_int_equal(rh_url_join("http://a/b", "c.json", out, sizeof(out)), RH_OK);
    assert_string_equal(out, "http://a/b/c.json");
    assert_int_equal(rh_url_join("http://a/b", "c.json", out, 17), RH_ETOOBIG);
    assert_int_equal(rh_url_join("http://a/b", "c.json", out, 18), RH_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_and_limits),
        cmocka_unit_test(test_buffer_ceiling),
        cmocka_unit_test(test_range_and_etag),
        cmocka_unit_test(test_slow_and_refused),
        cmocka_unit_test(test_url_join),
    };
    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
