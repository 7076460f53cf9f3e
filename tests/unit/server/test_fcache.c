/* test_fcache.c -- the open-file cache: LRU bound, revalidation, references, and the server's
 * use of it (a removed file is never served; rh_httpd_files_changed flushes). */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "server/fcache.h"
#include "server/httpd_int.h"
#include "server/outpool.h"

static const char HEX[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static char base[64];

static void mkdir_rel(const char *rel)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void put(const char *rel, const char *data)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static int open_rel(const char *rel, struct stat *st)
{
    char p[256];
    int fd;
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    fd = open(p, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, st), 0);
    return fd;
}

/* Is fd still the open file of inode ino? (Descriptor numbers are reused after close.) */
static bool fd_is(int fd, ino_t ino)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_ino == ino;
}

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/rh-fcache-XXXXXX");
    return mkdtemp(base) == NULL ? -1 : 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Never more than max entries; the least recently used one goes first. */
static void test_lru_bound(void **state)
{
    rh_fcache *c = rh_fcache_new(3);
    int fds[5];
    ino_t inos[5];
    char name[32];
    struct stat st;
    (void)state;

    assert_non_null(c);
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "lru%d", i);
        put(name, "x");
        fds[i] = open_rel(name, &st);
        inos[i] = st.st_ino;
        rh_fent *e = rh_fcache_put(c, name, fds[i], &st, HEX, 0);
        assert_non_null(e);
        assert_int_equal(e->fd, fds[i]);
        rh_fent_release(e);
        assert_true(rh_fcache_count(c) <= 3);
        if (i == 2) { /* touch lru0: lru1 becomes the oldest */
            e = rh_fcache_get(c, "lru0", 0);
            assert_non_null(e);
            rh_fent_release(e);
        }
    }
    assert_int_equal(rh_fcache_count(c), 3);
    assert_null(rh_fcache_get(c, "lru1", 0));
    assert_null(rh_fcache_get(c, "lru2", 0));
    assert_false(fd_is(fds[1], inos[1])); /* evicted and unreferenced: closed */
    assert_false(fd_is(fds[2], inos[2]));
    for (int i = 0; i < 5; i += (i == 0 ? 3 : 1)) {
        snprintf(name, sizeof(name), "lru%d", i);
        rh_fent *e = rh_fcache_get(c, name, 0);
        assert_non_null(e);
        assert_int_equal(e->fd, fds[i]);
        assert_string_equal(e->hex, HEX);
        rh_fent_release(e);
    }
    rh_fcache_free(c);
    assert_false(fd_is(fds[0], inos[0]));
    assert_false(fd_is(fds[4], inos[4]));
}

/* A held entry outlives its eviction; the last release closes the fd. */
static void test_reference_outlives_eviction(void **state)
{
    rh_fcache *c = rh_fcache_new(1);
    struct stat st;
    int fd;
    (void)state;

    put("held", "h");
    fd = open_rel("held", &st);
    ino_t ino = st.st_ino;
    rh_fent *e = rh_fcache_put(c, "held", fd, &st, HEX, 0);
    assert_non_null(e);
    rh_fcache_flush(c);
    assert_int_equal(rh_fcache_count(c), 0);
    assert_true(fd_is(fd, ino));
    rh_fcache_free(c);
    assert_true(fd_is(fd, ino)); /* a response still reads it */
    rh_fent_release(e);
    assert_false(fd_is(fd, ino));
    rh_fent_release(NULL);
    rh_fcache_free(NULL);
}

/* Unlinked, renamed, replaced or rewritten: the hit is dropped, never served. */
static void test_revalidation(void **state)
{
    static const char *const how[] = {"unlink", "rename", "replace", "rewrite", "link"};
    rh_fcache *c = rh_fcache_new(8);
    char a[256], b[256];
    struct stat st;
    (void)state;

    for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
        int fd;
        put("rv", "content");
        fd = open_rel("rv", &st);
        ino_t ino = st.st_ino;
        rh_fent_release(rh_fcache_put(c, "rv", fd, &st, HEX, 0));
        rh_fent *e = rh_fcache_get(c, "rv", 0);
        assert_non_null(e); /* unchanged: a hit */
        rh_fent_release(e);
        snprintf(a, sizeof(a), "%s/rv", base);
        snprintf(b, sizeof(b), "%s/rv.other", base);
        if (strcmp(how[i], "unlink") == 0) {
            assert_int_equal(unlink(a), 0);
        } else if (strcmp(how[i], "rename") == 0) {
            assert_int_equal(rename(a, b), 0);
        } else if (strcmp(how[i], "replace") == 0) {
            put("rv.other", "content"); /* same bytes, new inode under the name */
            assert_int_equal(rename(b, a), 0);
        } else if (strcmp(how[i], "rewrite") == 0) {
            put("rv", "other content"); /* same inode, truncated and rewritten */
        } else {
            /* A second name elsewhere moves ctime (and would keep an unlink from zeroing
             * nlink): dropped and reopened. */
            assert_int_equal(link(a, b), 0);
        }
        assert_null(rh_fcache_get(c, "rv", 0));
        assert_int_equal(rh_fcache_count(c), 0);
        assert_false(fd_is(fd, ino));
        (void)unlink(a);
        (void)unlink(b);
    }
    rh_fcache_free(c);
}

/* Under one stamp (one loop pass) a hit is checked once; a new stamp checks again. */
static void test_stamp(void **state)
{
    rh_fcache *c = rh_fcache_new(4);
    struct stat st;
    char a[256];
    int fd;
    (void)state;

    put("st", "x");
    fd = open_rel("st", &st);
    rh_fent_release(rh_fcache_put(c, "st", fd, &st, HEX, 7));
    snprintf(a, sizeof(a), "%s/st", base);
    assert_int_equal(unlink(a), 0);
    rh_fent *e = rh_fcache_get(c, "st", 7); /* same pass as the open: not re-checked */
    assert_non_null(e);
    rh_fent_release(e);
    assert_null(rh_fcache_get(c, "st", 8)); /* the next pass sees the unlink */
    assert_int_equal(rh_fcache_count(c), 0);
    rh_fcache_free(c);
}

/* The server's stamps: one per interval, so a cached file is revalidated at most once per
 * RH_HTTPD_FD_RECHECK_MS (not once per loop pass), and never 0 (which means "always"). */
static void test_stamp_interval(void **state)
{
    (void)state;
    unsigned long long s0 = rh_fcache_stamp(1700000000, 0, 100);
    assert_true(s0 != 0);
    assert_int_equal(rh_fcache_stamp(1700000000, 99999, 100), s0);  /* 99.999 ms later */
    assert_int_equal(rh_fcache_stamp(1700000000, 100000, 100), s0 + 1); /* the next one */
    assert_int_equal(rh_fcache_stamp(1700000001, 0, 100), s0 + 10);
    assert_true(rh_fcache_stamp(0, 0, 100) != 0);
    assert_true(rh_fcache_stamp(0, 0, 0) != 0);
    assert_int_equal(RH_HTTPD_FD_RECHECK_MS, 100);
}

/* Same name again replaces the entry; trim closes only what nobody holds. */
static void test_replace_and_trim(void **state)
{
    rh_fcache *c = rh_fcache_new(8);
    struct stat st;
    int fd1, fd2, fd3;
    (void)state;

    put("t1", "1");
    put("t2", "2");
    fd1 = open_rel("t1", &st);
    rh_fent_release(rh_fcache_put(c, "t1", fd1, &st, HEX, 0));
    fd2 = open_rel("t1", &st);
    ino_t ino1 = st.st_ino;
    rh_fent *held = rh_fcache_put(c, "t1", fd2, &st, HEX, 0);
    assert_int_equal(fcntl(fd1, F_GETFD), -1); /* replaced: closed (fd1 not reused yet) */
    assert_int_equal(rh_fcache_count(c), 1);
    fd3 = open_rel("t2", &st);
    ino_t ino2 = st.st_ino;
    rh_fent_release(rh_fcache_put(c, "t2", fd3, &st, HEX, 0));
    assert_int_equal(rh_fcache_trim(c, 10), 1); /* t2 only: t1 is held */
    assert_false(fd_is(fd3, ino2));
    assert_true(fd_is(fd2, ino1));
    assert_int_equal(rh_fcache_count(c), 1);
    rh_fent_release(held);
    assert_int_equal(rh_fcache_trim(c, 10), 1);
    assert_false(fd_is(fd2, ino1));
    rh_fcache_free(c);
}

static void on_drained(struct evbuffer *b, const struct evbuffer_cb_info *i, void *arg)
{
    (void)b;
    (void)i;
    (void)arg;
}

/* Chunks go back to the pool when libevent drops them, even after the pool was freed. */
static void test_outpool(void **state)
{
    rh_outpool *p = rh_outpool_new(2);
    struct evbuffer *b = evbuffer_new();
    uint8_t *c1, *c2, *c3;
    char out[8];
    (void)state;

    assert_non_null(p);
    assert_non_null(b);
    evbuffer_add_cb(b, on_drained, NULL);
    c1 = rh_outpool_get(p);
    assert_non_null(c1);
    memcpy(c1, "abc", 3);
    assert_int_equal(rh_outpool_hand(b, c1, 3, NULL), RH_OK);
    c2 = rh_outpool_get(p);
    memcpy(c2, "def", 3);
    assert_int_equal(rh_outpool_hand(b, c2, 3, NULL), RH_OK);
    assert_int_equal(evbuffer_get_length(b), 6);
    assert_int_equal(evbuffer_remove(b, out, 3), 3);
    assert_memory_equal(out, "abc", 3);
    c3 = rh_outpool_get(p); /* c1 came back */
    assert_ptr_equal(c3, c1);
    rh_outpool_put(c3);
    rh_outpool_free(p);         /* c2 is still queued */
    assert_int_equal(evbuffer_remove(b, out, 3), 3);
    assert_memory_equal(out, "def", 3);
    evbuffer_free(b);           /* ASan: the pool went with the last chunk */
    rh_outpool_free(NULL);
    rh_outpool_put(NULL);
}

/* A connection's chunks count while libevent holds them, whatever they hold; the connection
 * may let go of its account first: the last chunk returned frees it (ASan: no leak, no use
 * after free). */
static void test_outacct(void **state)
{
    rh_outpool *p = rh_outpool_new(4);
    rh_outacct *a = rh_outacct_new();
    struct evbuffer *b = evbuffer_new();
    char out[8];
    (void)state;

    assert_non_null(p);
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < 3; i++) {
        uint8_t *c = rh_outpool_get(p);
        assert_non_null(c);
        memcpy(c, "xy", 2); /* two bytes in a whole chunk */
        assert_int_equal(rh_outpool_hand(b, c, 2, a), RH_OK);
    }
    assert_int_equal(rh_outacct_chunks(a), 3);
    assert_int_equal(evbuffer_get_length(b), 6);
    uint8_t *unused = rh_outpool_get(p); /* not handed: not counted */
    assert_int_equal(rh_outacct_chunks(a), 3);
    rh_outpool_put(unused);
    assert_int_equal(evbuffer_remove(b, out, 4), 4); /* two chunks written */
    assert_int_equal(rh_outacct_chunks(a), 1);
    rh_outacct_release(a);      /* the connection goes; one chunk is still queued */
    assert_int_equal(evbuffer_remove(b, out, 2), 2);
    evbuffer_free(b);
    rh_outpool_free(p);
    assert_int_equal(rh_outacct_chunks(NULL), 0);
    rh_outacct_release(NULL);
}

/* The server: cached HASH.name files, a bounded cache, removals never served. */
static int serve_status(rh_httpd *h, const char *path)
{
    rh_httpd_req req;
    rh_resp resp;
    int status;

    rh_req_init(&req, h);
    snprintf(req.method, sizeof(req.method), "GET");
    assert_int_equal(rh_buf_append(&req.target, path, strlen(path)), RH_OK);
    req.version = 11;
    assert_int_equal(rh_req_finish(&req), RH_OK);
    rh_serve(h, &req, &resp);
    status = resp.status;
    if (status == 200) {
        char body[64];
        ssize_t n = pread(resp.fd, body, sizeof(body), (off_t)resp.file_off);
        assert_int_equal(n, (ssize_t)resp.content_length);
        assert_memory_equal(body, "served", 6);
    }
    rh_resp_cleanup(&resp);
    rh_req_cleanup(&req);
    return status;
}

static void test_server_cache(void **state)
{
    struct event_base *eb = event_base_new();
    struct rlimit old, low;
    rh_httpd_opts o;
    rh_httpd *h = NULL;
    rh_httpd_stats s;
    char root[128], rel[160], path[192], a[256], b[256];
    (void)state;

    /* 256 descriptors: the cache may hold 64 (a quarter). */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    mkdir_rel("srv");
    mkdir_rel("srv/t");
    mkdir_rel("srv/d");
    snprintf(root, sizeof(root), "%s/srv", base);
    for (int i = 0; i < 100; i++) {
        snprintf(rel, sizeof(rel), "srv/t/%s.f%d", HEX, i);
        put(rel, "served");
    }
    snprintf(rel, sizeof(rel), "srv/d/%s.moved", HEX);
    put(rel, "served");
    put("srv/plain.txt", "served");
    memset(&o, 0, sizeof(o));
    o.root = root;
    o.listen_clear = "127.0.0.1:0";
    o.etag_from_name = true;
    assert_non_null(eb);
    assert_int_equal(rh_httpd_new(eb, &o, &h, NULL), RH_OK);

    /* Second round of the first 10: hits, no new opens. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 10; i++) {
            snprintf(path, sizeof(path), "/t/%s.f%d", HEX, i);
            assert_int_equal(serve_status(h, path), 200);
        }
    rh_httpd_stats_get(h, &s);
    assert_int_equal(s.file_opens, 10);
    /* 100 distinct files: never more than the bound. */
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof(path), "/t/%s.f%d", HEX, i);
        assert_int_equal(serve_status(h, path), 200);
        assert_true(rh_fcache_count(h->files) <= 64);
    }
    assert_int_equal(rh_fcache_count(h->files), 64);
    /* Not content-addressed: opened every time, never cached. */
    assert_int_equal(serve_status(h, "/plain.txt"), 200);
    assert_int_equal(serve_status(h, "/plain.txt"), 200);
    rh_httpd_stats_get(h, &s);
    assert_int_equal(s.file_opens, 10 + 90 + 2);

    /* GC: unlinked from the served tree -> 404 once the revalidation interval has passed, no
     * signal needed. */
    snprintf(path, sizeof(path), "/t/%s.f99", HEX);
    snprintf(a, sizeof(a), "%s/srv/t/%s.f99", base, HEX);
    assert_int_equal(unlink(a), 0);
    usleep((RH_HTTPD_FD_RECHECK_MS + 50u) * 1000u);
    assert_int_equal(serve_status(h, path), 404);

    /* A directory renamed out of the tree is invisible to fstat: the cached file is served
     * until rh_httpd_files_changed(), then never again. */
    snprintf(path, sizeof(path), "/d/%s.moved", HEX);
    assert_int_equal(serve_status(h, path), 200);
    snprintf(a, sizeof(a), "%s/srv/d", base);
    snprintf(b, sizeof(b), "%s/gone", base);
    assert_int_equal(rename(a, b), 0);
    assert_int_equal(serve_status(h, path), 200);
    rh_httpd_files_changed(h);
    assert_int_equal(serve_status(h, path), 404);
    assert_int_equal(rh_fcache_count(h->files), 0);
    rh_httpd_files_changed(NULL);

    /* set_root flushes too. */
    snprintf(path, sizeof(path), "/t/%s.f1", HEX);
    assert_int_equal(serve_status(h, path), 200);
    assert_int_equal(rh_fcache_count(h->files), 1);
    assert_int_equal(rh_httpd_set_root(h, base, NULL), RH_OK);
    assert_int_equal(rh_fcache_count(h->files), 0);
    assert_int_equal(serve_status(h, path), 404); /* base has no t/ */

    rh_httpd_free(h);
    event_base_free(eb);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

/* Writes n bytes of the pattern seed into rel. */
static void put_n(const char *rel, size_t n, unsigned char seed)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc((int)(unsigned char)(seed + i * 7), f);
    fclose(f);
}

static bool is_pattern(const unsigned char *d, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (d[i] != (unsigned char)(seed + i * 7))
            return false;
    return true;
}

static rh_fent *put_entry(rh_fcache *c, const char *rel)
{
    struct stat st;
    int fd = open_rel(rel, &st);
    rh_fent *e = rh_fcache_put(c, rel, fd, &st, HEX, 0);
    assert_non_null(e);
    return e;
}

/* rel is cached (a hit under stamp, which also makes it the most recently used); its 3000
 * bytes are held in memory with the pattern of seed, or not held when seed is -1. */
static void assert_cached(rh_fcache *c, const char *rel, unsigned long long stamp, int seed)
{
    rh_fent *e = rh_fcache_get(c, rel, stamp);
    assert_non_null(e);
    if (seed < 0)
        assert_null(e->data);
    else
        assert_true(e->data != NULL && is_pattern(e->data, 3000, (unsigned char)seed));
    rh_fent_release(e);
}

/* Small files are held whole within the per-file bound. To make room, the bytes of the least
 * recently used entries no response holds are freed (their descriptors stay cached); bytes a
 * response holds count against the budget even after their entry left the cache, so a
 * stalled response cannot make the cache allocate beyond it; a changed file is not held. */
static void test_memory_budget(void **state)
{
    rh_fcache *c = rh_fcache_new(16);
    rh_fent *e, *big, *held = NULL;
    char name[32], path[256];
    (void)state;

    assert_non_null(c);
    put_n("m-big", 5000, 9);
    put_n("m-empty", 0, 0);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        put_n(name, 3000, (unsigned char)i);
    }
    /* No memory by default: a cache of descriptors only. */
    e = put_entry(c, "m0");
    assert_false(rh_fcache_load(c, e));
    assert_null(e->data);
    rh_fent_release(e);

    rh_fcache_set_memory(c, 10000, 4096);
    big = put_entry(c, "m-big"); /* above the per-file bound: descriptor only */
    assert_false(rh_fcache_load(c, big));
    assert_null(big->data);
    rh_fent_release(big);
    e = put_entry(c, "m-empty");
    assert_false(rh_fcache_load(c, e));
    rh_fent_release(e);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        e = put_entry(c, name);
        assert_true(rh_fcache_load(c, e));
        assert_non_null(e->data);
        assert_true(is_pattern(e->data, 3000, (unsigned char)i));
        assert_true(rh_fcache_load(c, e)); /* already held */
        if (i == 0)
            held = e; /* a response still sending m0 */
        else
            rh_fent_release(e);
    }
    assert_int_equal(rh_fcache_bytes(c), 9000);
    /* m3 would make 12000: the oldest bytes no response holds (m1's) are freed, not m0's;
     * m1 stays cached as a descriptor. */
    e = put_entry(c, "m3");
    assert_true(rh_fcache_load(c, e));
    rh_fent_release(e);
    assert_int_equal(rh_fcache_bytes(c), 9000);
    assert_cached(c, "m1", 0, -1);
    assert_cached(c, "m2", 0, 2);
    assert_true(held->cached && is_pattern(held->data, 3000, 0));

    /* Evicted while held: its bytes stay allocated and counted, until the release. */
    rh_fcache_flush(c);
    assert_int_equal(rh_fcache_bytes(c), 3000);
    assert_true(is_pattern(held->data, 3000, 0));
    rh_fcache_set_memory(c, 5000, 4096);
    e = put_entry(c, "m1");
    assert_false(rh_fcache_load(c, e)); /* 3000 held + 3000 > 5000: read from the file */
    assert_null(e->data);
    rh_fent_release(held); /* frees m0's bytes (ASan: no leak, no use after free) */
    assert_int_equal(rh_fcache_bytes(c), 0);
    assert_true(rh_fcache_load(c, e));
    assert_true(is_pattern(e->data, 3000, 1));
    rh_fent_release(e);

    /* Rewritten in place between caching and loading, same size (so the read is whole) and
     * another mtime: not held. */
    rh_fcache_set_memory(c, 10000, 4096);
    put_n("m-changed", 3000, 5);
    e = put_entry(c, "m-changed");
    put_n("m-changed", 3000, 6);
    snprintf(path, sizeof(path), "%s/m-changed", base);
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    assert_false(rh_fcache_load(c, e));
    assert_null(e->data);
    rh_fent_release(e);

    /* A smaller budget applies at once, least recently used first; descriptors stay. */
    e = put_entry(c, "m2"); /* m1 (3000 held) is older */
    assert_true(rh_fcache_load(c, e));
    rh_fent_release(e);
    assert_int_equal(rh_fcache_bytes(c), 6000);
    rh_fcache_set_memory(c, 4000, 4096);
    assert_int_equal(rh_fcache_bytes(c), 3000);
    assert_cached(c, "m1", 0, -1);
    assert_non_null(held = rh_fcache_get(c, "m2", 0));
    assert_true(is_pattern(held->data, 3000, 2));

    rh_fent_release(held);

    /* Recency counts: a hit makes m2 (loaded before m1) recent again, so m1's bytes go for
     * m3's, not m2's. */
    rh_fcache_set_memory(c, 6000, 4096);
    e = put_entry(c, "m1");
    assert_true(rh_fcache_load(c, e));
    rh_fent_release(e);
    assert_int_equal(rh_fcache_bytes(c), 6000); /* m2 (older) and m1 */
    assert_non_null(e = rh_fcache_get(c, "m2", 0));
    rh_fent_release(e);
    e = put_entry(c, "m3");
    assert_true(rh_fcache_load(c, e));
    rh_fent_release(e);
    assert_cached(c, "m1", 0, -1);
    assert_non_null(held = rh_fcache_get(c, "m2", 0));
    assert_true(is_pattern(held->data, 3000, 2));

    /* The cache goes first, a response holding bytes after it. */
    rh_fcache_free(c);
    assert_true(is_pattern(held->data, 3000, 2));
    rh_fent_release(held);
}

/* Bytes used within the current revalidation interval (the same stamp) are not freed for a
 * newcomer: when the files in use do not fit, the newcomer is read from its file instead of
 * trading places on every request. An older stamp's bytes are freed as usual. */
static void test_memory_in_use_is_kept(void **state)
{
    rh_fcache *c = rh_fcache_new(16);
    struct stat st;
    rh_fent *e;
    char name[32];
    int fd;
    (void)state;

    assert_non_null(c);
    rh_fcache_set_memory(c, 6000, 4096);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        put_n(name, 3000, (unsigned char)(10 + i));
    }
    for (int i = 0; i < 3; i++) { /* u0, u1 at stamp 7; u2 at stamp 7 too */
        snprintf(name, sizeof(name), "u%d", i);
        fd = open_rel(name, &st);
        assert_non_null(e = rh_fcache_put(c, name, fd, &st, HEX, 7));
        if (i < 2)
            assert_true(rh_fcache_load(c, e));
        else
            assert_false(rh_fcache_load(c, e)); /* u0 and u1 were used under stamp 7 */
        assert_true(i < 2 ? e->data != NULL : e->data == NULL);
        rh_fent_release(e);
    }
    assert_int_equal(rh_fcache_bytes(c), 6000);
    assert_cached(c, "u0", 7, 10);
    /* The next interval: u1 (least recently used, stamp 7) gives way to u3. */
    fd = open_rel("u3", &st);
    assert_non_null(e = rh_fcache_put(c, "u3", fd, &st, HEX, 8));
    assert_true(rh_fcache_load(c, e));
    rh_fent_release(e);
    assert_int_equal(rh_fcache_bytes(c), 6000);
    assert_cached(c, "u1", 8, -1);
    rh_fcache_free(c);
}

/* In a child (a lowered hard limit cannot be raised again): the soft limit goes up to the
 * hard one, never past it, never down, and the server's cache is then sized from it. */
static int raise_child(void)
{
    struct rlimit rl = {.rlim_cur = 256, .rlim_max = 300}, got;
    struct event_base *eb;
    rh_httpd_opts o;
    rh_httpd *h = NULL;
    char root[128];
    int ok;

    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 10;
    if (rh_httpd_raise_nofile() != 300 || getrlimit(RLIMIT_NOFILE, &got) != 0 ||
        got.rlim_cur != 300 || got.rlim_max != 300)
        return 11;
    if (rh_httpd_raise_nofile() != 300) /* already at the hard limit */
        return 12;
    snprintf(root, sizeof(root), "%s/nofile", base);
    if (mkdir(root, 0755) != 0 || (eb = event_base_new()) == NULL)
        return 13;
    memset(&o, 0, sizeof(o));
    o.root = root;
    o.listen_clear = "127.0.0.1:0";
    if (rh_httpd_new(eb, &o, &h, NULL) != RH_OK)
        return 14;
    ok = rh_fcache_max(h->files) == 75; /* a quarter of the raised limit */
    rh_httpd_free(h);
    event_base_free(eb);
    return ok ? 0 : 15;
}

static void test_raise_nofile(void **state)
{
    struct rlimit old, now;
    int st;
    pid_t pid;
    (void)state;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(raise_child());
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    /* Here: from 256 to the hard limit or RH_HTTPD_NOFILE_WANT, whichever is lower. */
    now = old;
    now.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &now), 0);
    unsigned long want = RH_HTTPD_NOFILE_WANT;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < want)
        want = (unsigned long)old.rlim_max;
    assert_int_equal(rh_httpd_raise_nofile(), want);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
    assert_int_equal(now.rlim_cur, want);
    /* Never down: a soft limit above the wanted one stays. */
    if (old.rlim_max == RLIM_INFINITY || old.rlim_max > RH_HTTPD_NOFILE_WANT) {
        now.rlim_cur = RH_HTTPD_NOFILE_WANT + 1;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &now), 0);
        assert_int_equal(rh_httpd_raise_nofile(), RH_HTTPD_NOFILE_WANT + 1);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_bound),
        cmocka_unit_test(test_reference_outlives_eviction),
        cmocka_unit_test(test_revalidation),
        cmocka_unit_test(test_stamp),
        cmocka_unit_test(test_stamp_interval),
        cmocka_unit_test(test_replace_and_trim),
        cmocka_unit_test(test_outpool),
        cmocka_unit_test(test_outacct),
        cmocka_unit_test(test_server_cache),
        cmocka_unit_test(test_raise_nofile),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_memory_in_use_is_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
