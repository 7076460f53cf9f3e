/* test_dl.c -- the mirror's downloader against a forked loopback HTTP/1.1 server: verified
 * fetch, failover on a wrong hash, 404, resume with Range, a corrupt resumed prefix (fetched
 * again, the upstream not blamed) and a lying upstream behind a good prefix (blamed after the
 * refetch), a connection cut mid-body (the
 * write buffer reaches the staging file, the rest is resumed; the large file is written with
 * O_DIRECT where the file system takes it, but not from an unaligned resume), a single write
 * buffer for the run, a failing staging write, running out of file descriptors
 * (waited out, not a disk failure), staging reuse, connections opened ahead, bad arguments;
 * a run's one syncfs comes after every staging file is whole. */
#define _GNU_SOURCE /* O_DIRECT, RTLD_NEXT, syncfs(2) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "manifest/hash.h"
#include "mirror/dl.h"

#define NFILES 40
#define FLEN(i) ((size_t)(1000 + (i) * 997))

static char g_body[NFILES][FLEN(NFILES)];

/* A file larger than the downloader's write buffer (RH_DL_WBUF), and where a cutting server
 * stops sending it: neither on a page nor on a buffer boundary. */
#define BIGLEN ((size_t)(5 * RH_DL_WBUF + 1234))
#define CUT    ((size_t)(2 * RH_DL_WBUF + 777))
static char g_big[BIGLEN];

enum { GOOD, EVIL, CUTTING };

static void fill(void)
{
    for (int i = 0; i < NFILES; i++)
        for (size_t k = 0; k < FLEN(i); k++)
            g_body[i][k] = (char)('a' + (i * 7 + (int)k) % 26);
    for (size_t k = 0; k < BIGLEN; k++)
        g_big[k] = (char)(k * 2654435761u >> 13);
}

/* The server: GET /targets/a/f<i> answers file i (honouring "Range: bytes=N-"), and
 * /targets/a/big the big file; an evil server flips one byte of every body, a cutting one closes
 * the connection after byte CUT of the big file; anything else is 404. One request per
 * connection. */
static int g_reqlog = -1; /* when >= 0, the server writes each request line here */

static void serve_one(int c, int mode)
{
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t k = read(c, req + got, sizeof req - 1 - got);
        if (k <= 0)
            return;
        got += (size_t)k;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    if (g_reqlog >= 0) {
        size_t n = strcspn(req, "\r");
        req[n] = '\n';
        (void)!write(g_reqlog, req, n + 1);
        req[n] = '\r';
    }
    int i = -1;
    const char *body = NULL;
    size_t len = 0;
    if (strncmp(req, "GET /targets/a/big ", 19) == 0) {
        body = g_big;
        len = BIGLEN;
    } else if (sscanf(req, "GET /targets/a/f%d ", &i) == 1 && i >= 0 && i < NFILES) {
        body = g_body[i];
        len = FLEN(i);
    }
    if (body == NULL) {
        static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n";
        (void)!write(c, nf, sizeof nf - 1);
        return;
    }
    size_t from = 0;
    const char *r = strstr(req, "Range: bytes=");
    if (r != NULL)
        from = strtoul(r + 13, NULL, 10);
    if (from > len)
        from = len;
    char hdr[256];
    int n = r != NULL ? snprintf(hdr, sizeof hdr, "HTTP/1.1 206 Partial Content\r\n"
                                 "Content-Range: bytes %zu-%zu/%zu\r\nContent-Length: %zu\r\n"
                                 "Connection: close\r\n\r\n", from, len - 1, len, len - from)
                      : snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                                 "Connection: close\r\n\r\n", len);
    (void)!write(c, hdr, (size_t)n);
    size_t end = mode == CUTTING && body == g_big && CUT > from ? CUT : len;
    for (size_t k = from; k < end;) { /* in pieces: the client sees many small reads */
        char piece[3001];
        size_t m = end - k < sizeof piece ? end - k : sizeof piece;
        memcpy(piece, body + k, m);
        if (mode == EVIL && k <= len / 2 && len / 2 < k + m)
            piece[len / 2 - k] ^= 1;
        if (write(c, piece, m) != (ssize_t)m)
            return;
        k += m;
    }
}

typedef struct srv {
    pid_t pid;
    char url[64];
} srv;

static void srv_start(srv *s, int mode)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 128), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%u", ntohs(a.sin_port));
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        alarm(60); /* bounded even if the test dies */
        for (;;) {
            int c = accept(l, NULL, NULL);
            if (c < 0)
                continue;
            serve_one(c, mode);
            close(c);
        }
    }
    close(l);
}

static void srv_stop(srv *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
}

typedef struct fx {
    char staging[64];
    rh_hashes h[NFILES];
    rh_dl_item it[NFILES];
    char rel[NFILES][32];
} fx;

static int setup(void **state)
{
    static fx f;
    memset(&f, 0, sizeof f);
    fill();
    snprintf(f.staging, sizeof f.staging, "/tmp/rh_test_dl.XXXXXX");
    if (mkdtemp(f.staging) == NULL)
        return -1;
    for (int i = 0; i < NFILES; i++) {
        snprintf(f.rel[i], sizeof f.rel[i], "targets/a/f%d", i);
        f.h[i].has_sha256 = true;
        if (rh_hash_once(RH_SHA256, g_body[i], FLEN(i), f.h[i].sha256) != RH_OK)
            return -1;
        f.it[i] = (rh_dl_item){f.rel[i], FLEN(i), &f.h[i]};
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char p[128];
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/targets/a/f%d", f->staging, i);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/targets/a/big", f->staging);
    unlink(p);
    snprintf(p, sizeof p, "%s/targets/a", f->staging);
    rmdir(p);
    snprintf(p, sizeof p, "%s/targets", f->staging);
    rmdir(p);
    rmdir(f->staging);
    return 0;
}

static rh_dl_opts opts(const fx *f, const char *const *ups, size_t n, long conc)
{
    return (rh_dl_opts){ups, n, f->staging, NULL, conc, 30, 1, 30, 0, NULL, NULL, 0};
}

/* The staging file of item i holds exactly its bytes. */
static void assert_staged(const fx *f, int i)
{
    char p[128];
    snprintf(p, sizeof p, "%s/targets/a/f%d", f->staging, i);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    static char buf[FLEN(NFILES) + 1];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_int_equal(n, FLEN(i));
    assert_memory_equal(buf, g_body[i], n);
}

/* syncfs(2) as rh_dl_run calls it: counted, and whether every item's staging file already held
 * all its bytes (the writer's threads done) is noted before libc's syncfs runs. Meanwhile the
 * last item's write, when a writer's thread makes it, sleeps 600 ms first (longer than the
 * download loop's 200 ms wait), so that a syncfs that did not wait for the writes would find
 * that file short. */
static const fx *g_sync_fx;
static pthread_t g_test_thread;
static int g_syncs;
static bool g_whole_at_sync;

static bool staged_whole(const fx *f, int i)
{
    char p[128];
    snprintf(p, sizeof p, "%s/targets/a/f%d", f->staging, i);
    FILE *fp = fopen(p, "rb");
    if (fp == NULL)
        return false;
    static char buf[FLEN(NFILES) + 1];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    return n == FLEN(i) && memcmp(buf, g_body[i], n) == 0;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    ssize_t (*real)(int, const void *, size_t, off_t) =
        (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    if (g_sync_fx != NULL && !pthread_equal(pthread_self(), g_test_thread) &&
        n == FLEN(NFILES - 1))
        usleep(600000);
    return real(fd, buf, n, off);
}

int syncfs(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    g_syncs++;
    if (g_sync_fx != NULL)
        for (int i = 0; i < NFILES; i++)
            if (!staged_whole(g_sync_fx, i))
                g_whole_at_sync = false;
    return real(fd);
}

/* One run over every item: all verified into staging, every byte counted once. */
static void fetch_all_ok(const fx *f, const rh_dl_opts *o)
{
    rh_dl_stats st;
    memset(&st, 0, sizeof st);
    rh_error e;
    rh_error_clear(&e);
    g_sync_fx = f;
    g_test_thread = pthread_self();
    g_syncs = 0;
    g_whole_at_sync = true;
    assert_int_equal(rh_dl_run(o, f->it, NFILES, &st, &e), RH_OK);
    g_sync_fx = NULL;
    /* Durable before RH_OK: one syncfs for the run (not an fsync per file), once every file
     * is whole. */
    assert_int_equal(g_syncs, 1);
    assert_true(g_whole_at_sync);
    assert_int_equal(st.objects, NFILES);
    uint64_t total = 0;
    for (int i = 0; i < NFILES; i++)
        total += FLEN(i);
    assert_int_equal(st.bytes, total);
    assert_int_equal(st.resumed, 0);
    for (int i = 0; i < NFILES; i++)
        assert_staged(f, i);
}

static void test_fetch_all(void **state)
{
    fx *f = *state;
    srv s;
    srv_start(&s, GOOD);
    const char *ups[] = {s.url};
    /* concurrency 3: several connections, more items than slots, slots refilled */
    for (long conc = 1; conc <= 3; conc += 2) {
        teardown(state);
        assert_int_equal(mkdir(f->staging, 0700), 0);
        rh_dl_opts o = opts(f, ups, 1, conc);
        fetch_all_ok(f, &o);
    }
    srv_stop(&s);
}

static void test_wrong_hash_fails_over(void **state)
{
    fx *f = *state;
    srv evil, good;
    srv_start(&evil, EVIL);
    srv_start(&good, GOOD);
    const char *ups[] = {evil.url, good.url};
    rh_dl_opts o = opts(f, ups, 2, 4);
    rh_dl_stats st;
    memset(&st, 0, sizeof st);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, f->it, 5, &st, &e), RH_OK);
    assert_int_equal(st.objects, 5);
    assert_int_equal(st.failures[RH_EHASH], 5);
    for (int i = 0; i < 5; i++)
        assert_staged(f, i);
    /* only the evil one: every item fails with the hash error naming the URL */
    const char *evil_only[] = {evil.url};
    teardown(state);
    assert_int_equal(mkdir(f->staging, 0700), 0);
    o = opts(f, evil_only, 1, 4);
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, f->it, 2, NULL, &e), RH_EHASH);
    assert_non_null(strstr(e.msg, "/targets/a/f0: hash differs from the signed one"));
    srv_stop(&evil);
    srv_stop(&good);
}

static void test_not_found(void **state)
{
    fx *f = *state;
    srv s;
    srv_start(&s, GOOD);
    const char *ups[] = {s.url};
    rh_hashes h = f->h[0];
    rh_dl_item it = {"targets/a/nothere", 10, &h};
    rh_dl_opts o = opts(f, ups, 1, 4);
    rh_dl_stats st;
    memset(&st, 0, sizeof st);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, &it, 1, &st, &e), RH_ENOTFOUND);
    assert_int_equal(st.failures[RH_ENOTFOUND], 1);
    assert_non_null(strstr(e.msg, "/targets/a/nothere: HTTP 404"));
    char p[128];
    snprintf(p, sizeof p, "%s/targets/a/nothere", f->staging);
    unlink(p);
    srv_stop(&s);
}

/* A staging file for item i left by an earlier run: its first n bytes are p[0..n). */
static void stage_partial(const fx *f, int i, const char *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/targets", f->staging);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/targets/a", f->staging);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/targets/a/f%d", f->staging, i);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* One run fetching item 7 from ups[0..n): it succeeds; st gets the run's counts. */
static void fetch_7(const fx *f, const char *const *ups, size_t n, rh_dl_stats *st)
{
    rh_dl_opts o = opts(f, ups, n, 4);
    memset(st, 0, sizeof *st);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, &f->it[7], 1, st, &e), RH_OK);
}

static void test_resume_with_range(void **state)
{
    fx *f = *state;
    srv s;
    srv_start(&s, GOOD);
    const char *ups[] = {s.url};
    size_t half = FLEN(7) / 2;
    stage_partial(f, 7, g_body[7], half);
    rh_dl_stats st;
    fetch_7(f, ups, 1, &st);
    assert_int_equal(st.resumed, 1);
    assert_int_equal(st.bytes, FLEN(7) - half);
    assert_staged(f, 7);
    srv_stop(&s);
}

/* A staging file whose prefix is corrupt (a crash with its bytes in the page cache): the
 * resumed transfer's hash differs, and the item is fetched again whole from the same upstream
 * instead of that upstream being blamed. */
static void test_corrupt_prefix_is_refetched_not_blamed(void **state)
{
    fx *f = *state;
    srv s;
    srv_start(&s, GOOD);
    const char *ups[] = {s.url};
    size_t half = FLEN(7) / 2;
    char bad[FLEN(7)];
    memcpy(bad, g_body[7], half);
    memset(bad + 100, 0, 4000 < half - 100 ? 4000 : half - 100); /* a hole of zeros */
    stage_partial(f, 7, bad, half);
    rh_dl_stats st;
    fetch_7(f, ups, 1, &st);
    assert_int_equal(st.resumed, 1);
    assert_int_equal(st.refetched, 1);
    assert_int_equal(st.failures[RH_EHASH], 0);
    assert_int_equal(st.bytes, (FLEN(7) - half) + FLEN(7));
    assert_staged(f, 7);
    srv_stop(&s);
}

/* A good prefix resumed from a lying upstream: the hash differs, the item is fetched again
 * whole from the same upstream, differs again, and only then is that upstream blamed and the
 * next one used. */
static void test_resumed_from_a_liar_still_fails_over(void **state)
{
    fx *f = *state;
    srv evil, good;
    srv_start(&evil, EVIL);
    srv_start(&good, GOOD);
    const char *ups[] = {evil.url, good.url};
    size_t half = FLEN(7) / 2; /* the evil server flips the byte at FLEN / 2: the first resumed */
    stage_partial(f, 7, g_body[7], half);
    rh_dl_stats st;
    fetch_7(f, ups, 2, &st);
    assert_int_equal(st.resumed, 1);
    assert_int_equal(st.refetched, 1);
    assert_int_equal(st.failures[RH_EHASH], 1);
    assert_staged(f, 7);
    srv_stop(&evil);
    srv_stop(&good);
}

/* Whether the staging directory's file system takes O_DIRECT (tmpfs before Linux 6.6 does
 * not: then the downloader writes through the page cache, and nothing counts as direct). */
static bool direct_ok(const fx *f)
{
    char p[128];
    snprintf(p, sizeof p, "%s/probe", f->staging);
    int fd = open(p, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        close(fd);
        unlink(p);
    }
    return fd >= 0;
}

/* The signed hashes of the big file. */
static rh_hashes big_hashes(void)
{
    rh_hashes h = {0};
    h.has_sha256 = true;
    assert_int_equal(rh_hash_once(RH_SHA256, g_big, BIGLEN, h.sha256), RH_OK);
    return h;
}

/* A connection cut mid-body: what arrived (buffered or not) is in the staging file, exactly,
 * and the next run asks only for the rest. */
static void test_cut_then_resume(void **state)
{
    fx *f = *state;
    bool dio = direct_ok(f);
    srv cut, good;
    srv_start(&cut, CUTTING);
    srv_start(&good, GOOD);
    rh_hashes h = big_hashes();
    rh_dl_item it = {"targets/a/big", BIGLEN, &h};
    const char *ups_cut[] = {cut.url};
    rh_dl_opts o = opts(f, ups_cut, 1, 4);
    rh_dl_stats st;
    memset(&st, 0, sizeof st);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, &it, 1, &st, &e), RH_ENET);
    assert_non_null(strstr(e.msg, "/targets/a/big"));
    assert_int_equal(st.bytes, CUT);
    /* the whole buffers before the cut went direct; the 777 bytes after them did not */
    assert_int_equal(st.direct_bytes, dio ? 2 * RH_DL_WBUF : 0);
    char p[128];
    snprintf(p, sizeof p, "%s/targets/a/big", f->staging);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal((size_t)sb.st_size, CUT);
    const char *ups_good[] = {good.url};
    o = opts(f, ups_good, 1, 4);
    memset(&st, 0, sizeof st);
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, &it, 1, &st, &e), RH_OK);
    assert_int_equal(st.resumed, 1);
    assert_int_equal(st.bytes, BIGLEN - CUT);
    assert_int_equal(st.direct_bytes, 0); /* from an unaligned offset: the page cache */
    static char back[BIGLEN];
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(back, 1, sizeof back, fp), BIGLEN);
    fclose(fp);
    assert_memory_equal(back, g_big, BIGLEN);
    /* a fresh fetch of the big file, with small ones around it, goes through whole */
    unlink(p);
    rh_dl_item mix[3] = {f->it[30], it, f->it[39]};
    memset(&st, 0, sizeof st);
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, mix, 3, &st, &e), RH_OK);
    assert_int_equal(st.bytes, FLEN(30) + BIGLEN + FLEN(39));
    /* the large file's whole blocks, not its 1234-byte tail, nor the small files */
    assert_int_equal(st.direct_bytes, dio ? BIGLEN - BIGLEN % 4096 : 0);
    fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(back, 1, sizeof back, fp), BIGLEN);
    fclose(fp);
    assert_memory_equal(back, g_big, BIGLEN);
    assert_staged(f, 30);
    assert_staged(f, 39);
    srv_stop(&cut);
    srv_stop(&good);
}

static void assert_big_staged(const fx *f)
{
    static char back[BIGLEN + 1];
    char p[128];
    snprintf(p, sizeof p, "%s/targets/a/big", f->staging);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(back, 1, sizeof back, fp), BIGLEN);
    fclose(fp);
    assert_memory_equal(back, g_big, BIGLEN);
}

/* One write buffer for the run: the big file's next bytes arrive while its last buffer is
 * still being written, and go to the writer as copies behind it. That is a race (in about half
 * the rounds of a release build the writer gives the buffer back first), so rounds go on until
 * some bytes went that way, at least three and at most fifty. Whichever way each piece goes,
 * the file is exactly the big file, every time. */
static void test_one_write_buffer(void **state)
{
    fx *f = *state;
    srv s;
    srv_start(&s, GOOD);
    rh_hashes h = big_hashes();
    rh_dl_item mix[3] = {f->it[30], {"targets/a/big", BIGLEN, &h}, f->it[39]};
    const char *ups[] = {s.url};
    rh_dl_opts o = opts(f, ups, 1, 4);
    o.wbufs = 1;
    uint64_t copied = 0;
    for (int round = 0; round < 50 && (round < 3 || copied == 0); round++) {
        static const char *names[] = {"big", "f30", "f39"};
        for (int k = 0; k < 3; k++) {
            char p[128];
            snprintf(p, sizeof p, "%s/targets/a/%s", f->staging, names[k]);
            unlink(p);
        }
        rh_dl_stats st;
        memset(&st, 0, sizeof st);
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_dl_run(&o, mix, 3, &st, &e), RH_OK);
        assert_int_equal(st.bytes, FLEN(30) + BIGLEN + FLEN(39));
        assert_big_staged(f);
        assert_staged(f, 30);
        assert_staged(f, 39);
        copied += st.copied_bytes;
    }
    assert_true(copied > 0);
    srv_stop(&s);
}

/* A staging write that fails (the file size limit, EFBIG, standing in for a full disk) fails
 * the run with RH_EIO naming the file; what is on disk is a prefix of the file. Run in a
 * child, so that the limit binds nothing else. */
static void test_write_failure_fails_the_run(void **state)
{
    fx *f = *state;
    srv s;
    srv_start(&s, GOOD);
    rh_hashes h = big_hashes();
    rh_dl_item it = {"targets/a/big", BIGLEN, &h};
    const char *ups[] = {s.url};
    rh_dl_opts o = opts(f, ups, 1, 4);
    o.wbufs = 1; /* bytes also go to the writer as copies */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {2 * RH_DL_WBUF + 100, 2 * RH_DL_WBUF + 100};
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(10);
        rh_dl_stats st;
        memset(&st, 0, sizeof st);
        rh_error e;
        rh_error_clear(&e);
        if (rh_dl_run(&o, &it, 1, &st, &e) != RH_EIO)
            _exit(11);
        if (strcmp(e.msg, "staging file targets/a/big: write: File too large") != 0)
            _exit(12);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char p[128];
    snprintf(p, sizeof p, "%s/targets/a/big", f->staging);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    static char back[BIGLEN];
    size_t n = fread(back, 1, sizeof back, fp);
    fclose(fp);
    assert_true(n <= 2 * RH_DL_WBUF + 100);
    assert_memory_equal(back, g_big, n);
    srv_stop(&s);
}

/* Descriptors held by "someone else" (a daemon's server side) for a while. */
typedef struct fillers {
    int fd[512];
    int n;
} fillers;

static void *release_later(void *arg)
{
    fillers *f = arg;
    usleep(300 * 1000);
    for (int i = 0; i < f->n; i++)
        close(f->fd[i]);
    return NULL;
}

/* Out of file descriptors when staging files are opened: the downloader waits for them
 * instead of failing the round as a disk error. */
static void test_out_of_descriptors_is_waited_out(void **state)
{
    fx *f = *state;
    srv s;
    srv_start(&s, GOOD);
    const char *ups[] = {s.url};
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    static fillers fl;
    fl.n = 0;
    int fd;
    while (fl.n < (int)(sizeof fl.fd / sizeof fl.fd[0]) && (fd = open("/dev/null", O_RDONLY)) >= 0)
        fl.fd[fl.n++] = fd;
    assert_int_equal(errno, EMFILE);
    /* room for the run's own descriptors (staging directory, libcurl's wake-up pair), not for
     * the staging files */
    for (int k = 0; k < 3; k++)
        close(fl.fd[--fl.n]);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_later, &fl), 0);
    rh_dl_opts o = opts(f, ups, 1, 4);
    o.retries = 8; /* a connection refused for want of a socket is retried with backoff */
    rh_dl_stats st;
    memset(&st, 0, sizeof st);
    rh_error e;
    rh_error_clear(&e);
    rh_err rc = rh_dl_run(&o, f->it, 10, &st, &e);
    pthread_join(th, NULL);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, RH_OK);
    assert_int_equal(st.objects, 10);
    assert_int_equal(st.failures[RH_EIO], 0);
    for (int i = 0; i < 10; i++)
        assert_staged(f, i);
    srv_stop(&s);
}

/* A complete, verified staging file needs no network at all (the upstream is a closed port). */
static void test_complete_staging_needs_no_network(void **state)
{
    fx *f = *state;
    test_resume_with_range(state); /* leaves f7 complete in staging */
    const char *ups[] = {"http://127.0.0.1:1"};
    rh_dl_stats st;
    fetch_7(f, ups, 1, &st);
    assert_int_equal(st.objects, 1);
    assert_int_equal(st.bytes, 0);
    /* f8 is not there: the closed port is a network failure (no retries) */
    rh_dl_opts o = opts(f, ups, 1, 4);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, &f->it[8], 1, &st, &e), RH_ENET);
    assert_int_equal(st.failures[RH_ENET], 1);
}

/* Connections opened ahead: RH_DL_CONNS requests (HEAD of the metadata/timestamp.json) reach
 * the upstream before rh_dl_run starts, and a run handed the warm-up still fetches and verifies
 * everything, also when the upstream refused the HEADs and closed those connections (as this
 * one-request-per-connection server does). Handed over with nothing to fetch, or never used,
 * it is freed (ASan: no leak). This server closes every connection, so reuse of the warm
 * connections is shown by the integration test that counts them (test_mirror.py). */
static void test_warm_up(void **state)
{
    fx *f = *state;
    char logp[] = "/tmp/rh_test_dl_req.XXXXXX";
    g_reqlog = mkstemp(logp);
    assert_true(g_reqlog >= 0);
    srv s;
    srv_start(&s, GOOD);
    const char *ups[] = {s.url};
    rh_dl_opts o = opts(f, ups, 1, 4);
    o.warm = rh_dl_warm_start(s.url, NULL);
    assert_non_null(o.warm);
    fetch_all_ok(f, &o);
    srv_stop(&s);
    char buf[16384];
    ssize_t n = pread(g_reqlog, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    int heads = 0, gets = 0;
    for (char *l = buf; *l != '\0'; l = strchr(l, '\n') + 1) {
        if (strncmp(l, "HEAD /metadata/timestamp.json HTTP/1.1\n", 39) == 0)
            heads++;
        else if (strncmp(l, "GET /targets/a/f", 16) == 0)
            gets++;
        else
            fail_msg("unexpected request: %.80s", l);
        if (heads + gets > 2 * NFILES)
            break;
    }
    assert_int_equal(heads, RH_DL_CONNS);
    assert_int_equal(gets, NFILES);
    /* The HEADs all came before the first GET: the warm-up was over when the run began. */
    assert_non_null(strstr(buf, "GET"));
    char *first_get = strstr(buf, "GET");
    char *last_head = NULL;
    for (char *h = strstr(buf, "HEAD"); h != NULL; h = strstr(h + 1, "HEAD"))
        last_head = h;
    assert_true(last_head != NULL && last_head < first_get);
    close(g_reqlog);
    unlink(logp);
    g_reqlog = -1;

    rh_error e;
    rh_error_clear(&e);
    o.warm = rh_dl_warm_start("http://127.0.0.1:1", NULL); /* nothing to fetch */
    assert_non_null(o.warm);
    assert_int_equal(rh_dl_run(&o, f->it, 0, NULL, &e), RH_OK);
    rh_dl_warm_free(rh_dl_warm_start("http://127.0.0.1:1", NULL)); /* never used */
    rh_dl_warm_free(NULL);
}

static void test_bad_arguments(void **state)
{
    fx *f = *state;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(NULL, f->it, 1, NULL, &e), RH_EINVAL);
    const char *ups[] = {"http://127.0.0.1:1"};
    rh_dl_opts o = opts(f, ups, 0, 4);
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, f->it, 1, NULL, &e), RH_EINVAL);
    o = opts(f, ups, 1, 4);
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, NULL, 1, NULL, &e), RH_EINVAL);
    assert_int_equal(rh_dl_run(&o, NULL, 0, NULL, &e), RH_OK); /* nothing to do */
    rh_hashes none = {0};
    rh_dl_item it = {"targets/a/f0", FLEN(0), &none};
    rh_error_clear(&e);
    assert_int_equal(rh_dl_run(&o, &it, 1, NULL, &e), RH_EHASH);
    assert_non_null(strstr(e.msg, "no sha256"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_hash_fails_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_with_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_prefix_is_refetched_not_blamed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resumed_from_a_liar_still_fails_over, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cut_then_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_write_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_fails_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_descriptors_is_waited_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_staging_needs_no_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warm_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
