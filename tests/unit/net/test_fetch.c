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

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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

/* gzip of 100000 zero bytes (132 bytes): served with Content-Encoding: gzip, it must reach the
 * sink as these 132 bytes, never inflated (CURLOPT_ACCEPT_ENCODING stays unset). */
static const unsigned char GZ_BOMB[132] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0xed, 0xc1, 0x31, 0x01,
    0x00, 0x00, 0x00, 0xc2, 0xa0, 0xf5, 0x4f, 0x6d, 0x0d, 0x0f, 0xa0, [121] = 0x80, 0x57,
    0x03, 0x7d, 0x95, 0x11, 0xd4, 0xa0, 0x86, 0x01, 0x00};

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
        } else if (strcmp(path, "/gzip") == 0) {
            char h[256];
            int hn = snprintf(h, sizeof(h),
                              "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Encoding: "
                              "gzip\r\nConnection: close\r\n\r\n", sizeof(GZ_BOMB));
            send_all(fd, h, (size_t)hn);
            send_all(fd, GZ_BOMB, sizeof(GZ_BOMB));
        } else if (strcmp(path, "/to-file") == 0) {
            reply(fd, "302 Found", "Location: file:///etc/passwd\r\n", "");
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

/* ---- a one-connection-at-a-time TLS server (self-signed for IP 127.0.0.1) ------------------ */

static int g_tls_lfd = -1;
static int g_tls_port;
static pthread_t g_tls_thr;
static SSL_CTX *g_tls_ctx;
static char g_ca_path[64];

static void tls_reply(SSL *ssl, const char *status, const char *extra, const char *body)
{
    char h[512];
    int n = snprintf(h, sizeof(h),
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     status, strlen(body), extra);
    SSL_write(ssl, h, n);
    if (body[0])
        SSL_write(ssl, body, (int)strlen(body));
}

static void *tls_server(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(g_tls_lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        SSL *ssl = SSL_new(g_tls_ctx);
        SSL_set_fd(ssl, fd);
        char req[4096] = "", path[256] = "";
        int quit = 0;
        if (SSL_accept(ssl) == 1) {
            int n = 0;
            while (n < (int)sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
                int k = SSL_read(ssl, req + n, (int)sizeof(req) - 1 - n);
                if (k <= 0)
                    break;
                n += k;
                req[n] = '\0';
            }
            if (sscanf(req, "GET %255s", path) == 1) {
                char ex[160];
                if (strcmp(path, "/to-http") == 0) {
                    snprintf(ex, sizeof(ex), "Location: http://127.0.0.1:%d/ok\r\n", g_port);
                    tls_reply(ssl, "302 Found", ex, "");
                } else if (strcmp(path, "/to-https") == 0) {
                    snprintf(ex, sizeof(ex), "Location: https://127.0.0.1:%d/body\r\n",
                             g_tls_port);
                    tls_reply(ssl, "302 Found", ex, "");
                } else if (strcmp(path, "/body") == 0) {
                    tls_reply(ssl, "200 OK", "", BODY);
                } else {
                    quit = strcmp(path, "/quit") == 0;
                    tls_reply(ssl, quit ? "200 OK" : "404 Not Found", "", "");
                }
            }
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(fd);
        if (quit)
            return NULL;
    }
}

/* Self-signed P-256 certificate for IP 127.0.0.1, written to g_ca_path as the CA bundle. */
static int tls_setup(void)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    if (pk == NULL || x == NULL)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, nm);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    if (ext == NULL || X509_add_ext(x, ext, -1) != 1 || X509_sign(x, pk, EVP_sha256()) == 0)
        return -1;
    X509_EXTENSION_free(ext);
    snprintf(g_ca_path, sizeof(g_ca_path), "/tmp/rhine-fetch-ca-XXXXXX");
    int cfd = mkstemp(g_ca_path);
    FILE *f = cfd >= 0 ? fdopen(cfd, "w") : NULL;
    if (f == NULL || PEM_write_X509(f, x) != 1 || fclose(f) != 0)
        return -1;
    g_tls_ctx = SSL_CTX_new(TLS_server_method());
    if (g_tls_ctx == NULL || SSL_CTX_use_certificate(g_tls_ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(g_tls_ctx, pk) != 1)
        return -1;
    X509_free(x);
    EVP_PKEY_free(pk);
    g_tls_lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (g_tls_lfd < 0 || bind(g_tls_lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(g_tls_lfd, 16) != 0)
        return -1;
    socklen_t al = sizeof(a);
    getsockname(g_tls_lfd, (struct sockaddr *)&a, &al);
    g_tls_port = ntohs(a.sin_port);
    return pthread_create(&g_tls_thr, NULL, tls_server, NULL) == 0 ? 0 : -1;
}

static void tls_teardown(void)
{
    rh_fetch_opts o = {.ca_file = g_ca_path};
    rh_http *h = NULL;
    rh_buf b;
    rh_buf_init(&b, 100);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/quit", g_tls_port);
    if (rh_http_new(&o, &h, NULL) != RH_OK || rh_http_get_buf(h, url, 100, &b, NULL, NULL))
        fprintf(stderr, "TLS quit request failed\n");
    rh_http_free(h);
    rh_buf_cleanup(&b);
    pthread_join(g_tls_thr, NULL);
    close(g_tls_lfd);
    SSL_CTX_free(g_tls_ctx);
    unlink(g_ca_path);
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
    if (pthread_create(&g_thr, NULL, server, NULL) != 0)
        return -1;
    return tls_setup();
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
    tls_teardown();
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

/* Redirects never change the scheme to one the request did not start with: not to file://
 * (local files), and not from https:// down to cleartext http:// (a redirect must not undo
 * the transport security the configuration asked for). https -> https still works. */
static void test_redirect_schemes(void **state)
{
    (void)state;
    rh_fetch_opts o = {.ca_file = g_ca_path};
    rh_http *h = NULL;
    assert_int_equal(rh_http_new(&o, &h, NULL), RH_OK);
    char u[128];
    static const struct {
        bool tls;
        const char *path;
        rh_err code;
    } cases[] = {
        {false, "/to-file", RH_ENET},
        {true, "/to-http", RH_ENET},
        {true, "/to-https", RH_OK},
        {true, "/body", RH_OK},
        {false, "/redirect", RH_OK}, /* http -> http */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].tls)
            snprintf(u, sizeof(u), "https://127.0.0.1:%d%s", g_tls_port, cases[i].path);
        else
            snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", g_port, cases[i].path);
        rh_buf b;
        rh_buf_init(&b, 100);
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_http_get_buf(h, u, 100, &b, NULL, &e);
        if (rc != cases[i].code)
            fail_msg("case %zu (%s): got %s (%s)", i, u, rh_err_name(rc), e.msg);
        if (rc == RH_OK)
            assert_memory_equal(b.data, BODY, 10);
        else
            assert_non_null(strstr(e.msg, u));
        rh_buf_cleanup(&b);
    }
    rh_http_free(h);
}

/* A body sent with Content-Encoding: gzip is handed over as sent and counted as sent: libcurl
 * must not inflate it (a 132-byte gzip bomb would otherwise become 100000 bytes). */
static void test_no_content_decoding(void **state)
{
    (void)state;
    rh_http *h = NULL;
    assert_int_equal(rh_http_new(NULL, &h, NULL), RH_OK);
    rh_buf b;
    rh_buf_init(&b, 1 << 20);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_http_get_buf(h, url_of("/gzip"), sizeof(GZ_BOMB), &b, NULL, &e), RH_OK);
    assert_int_equal(b.len, sizeof(GZ_BOMB));
    assert_memory_equal(b.data, GZ_BOMB, sizeof(GZ_BOMB));
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
        cmocka_unit_test(test_redirect_schemes),
        cmocka_unit_test(test_no_content_decoding),
        cmocka_unit_test(test_url_join),
    };
    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
