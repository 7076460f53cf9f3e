/* dl.c -- the mirror's target downloader: libcurl multi over one HTTP/2 connection per upstream,
 * verified streaming into staging, resume, retries with backoff, failover between upstreams. */
#define _GNU_SOURCE /* syncfs(2), O_DIRECT */
#include "mirror/dl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "manifest/afile.h"
#include "manifest/hash.h"
#include "mirror/mfs.h"
#include "mirror/plan.h"
#include "mirror/writer.h"
#include "net/fetch.h"

enum { J_PENDING, J_RUNNING, J_DONE, J_FAILED };

typedef struct job {
    const rh_dl_item *it;
    size_t up;        /* upstream in use */
    long attempts;    /* network failures on this upstream */
    long fd_waits;    /* starts put off for want of a file descriptor */
    bool refetched;   /* started over from byte 0 after a resumed file's hash differed */
    int64_t ready_ms; /* not before (backoff) */
    int state;
    rh_err code;      /* last failure ... */
    char *msg;        /* ... and its message (heap: one job per target, few fail) */
} job;

static void job_set_error(job *j, rh_err code, const char *msg)
{
    free(j->msg);
    j->code = code;
    j->msg = strdup(msg); /* NULL: reported without the details */
}

/* Write buffers: RH_DL_WBUF_TOTAL / RH_DL_WBUF slabs of one anonymous mapping, touched only
 * when used, so they neither fragment the heap nor count before they are needed; page-aligned,
 * as direct writes need. Taken by the download loop, given back by the writer's threads once
 * written. */
typedef struct wbpool {
    uint8_t *base;
    pthread_mutex_t mu;
    size_t free[RH_DL_WBUF_TOTAL / RH_DL_WBUF]; /* stack of free slab numbers */
    size_t nfree;
} wbpool;

static void wbpool_init(wbpool *p, size_t count)
{
    size_t max = RH_DL_WBUF_TOTAL / RH_DL_WBUF;
    if (count == 0 || count > max)
        count = max;
    p->nfree = 0;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        p->base = NULL;
        return;
    }
    p->base = mmap(NULL, RH_DL_WBUF_TOTAL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p->base == MAP_FAILED) {
        p->base = NULL; /* no buffers: every byte is written as it comes */
        pthread_mutex_destroy(&p->mu);
        return;
    }
    for (size_t i = count; i > 0; i--)
        p->free[p->nfree++] = i - 1;
}

static void wbpool_destroy(wbpool *p)
{
    if (p->base != NULL) {
        munmap(p->base, RH_DL_WBUF_TOTAL);
        pthread_mutex_destroy(&p->mu);
    }
    p->base = NULL;
}

static uint8_t *wbpool_get(wbpool *p)
{
    if (p->base == NULL)
        return NULL;
    pthread_mutex_lock(&p->mu);
    uint8_t *b = p->nfree > 0 ? p->base + p->free[--p->nfree] * RH_DL_WBUF : NULL;
    pthread_mutex_unlock(&p->mu);
    return b;
}

static void wbpool_put(void *ctx, uint8_t *b)
{
    wbpool *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->free[p->nfree++] = (size_t)(b - p->base) / RH_DL_WBUF;
    pthread_mutex_unlock(&p->mu);
}

typedef struct xfer {
    job *j;
    size_t slot;         /* index in run.live */
    CURL *easy;
    int fd;
    rh_hash *h256, *h512;
    uint64_t offset;     /* first byte asked for */
    uint64_t got;        /* bytes now in the file */
    int64_t range_start; /* from Content-Range, -1 when none */
    bool started;
    rh_err fail;
    char msg[RH_ERRMSG_MAX];
    char *url;           /* upstream URL of the file (heap: many transfers are in flight) */
    char errbuf[CURL_ERROR_SIZE];
    rh_dl_stats *st;
    uint8_t *wb;         /* write buffer being filled, a slab of pool, or NULL */
    size_t wlen, wcap;
    uint64_t woff;       /* file offset of wb[0]: the bytes before it are written or queued */
    bool direct;         /* fd has O_DIRECT */
    bool queued;         /* writes of fd were handed to the writer */
    struct wbpool *pool;
    rh_writer *wr;
} xfer;

typedef struct run {
    const rh_dl_opts *o;
    rh_dl_stats *st;
    xfer **live;   /* transfers in flight, by slot */
    size_t nlive;  /* slots */
    job **retry;   /* jobs waiting for a retry (J_PENDING among those started once) */
    size_t nretry;
    long conns;    /* connections per upstream */
    long opened;   /* transfers set up so far */
    rh_writer *wr;  /* writes buffers to the staging files and closes them, on its threads */
    wbpool *pool;   /* write buffers */
} run;

bool rh_dl_h2c_ok(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v != NULL && v->version_num >= 0x080000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void xfail(xfer *x, rh_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void xfail(xfer *x, rh_err code, const char *fmt, ...)
{
    if (x->fail != RH_OK)
        return;
    x->fail = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
}

static rh_err hash_reset(xfer *x)
{
    if (rh_hash_reset(x->h256) != RH_OK)
        return RH_ECRYPTO;
    if (x->h512 != NULL && rh_hash_reset(x->h512) != RH_OK)
        return RH_ECRYPTO;
    return RH_OK;
}

static rh_err hash_update(xfer *x, const void *p, size_t n)
{
    if (rh_hash_update(x->h256, p, n) != RH_OK)
        return RH_ECRYPTO;
    if (x->h512 != NULL && rh_hash_update(x->h512, p, n) != RH_OK)
        return RH_ECRYPTO;
    return RH_OK;
}

/* Compare the digests with the signed hashes. */
static bool hash_matches(xfer *x)
{
    const rh_hashes *h = x->j->it->hashes;
    uint8_t d256[RH_SHA256_LEN], d512[RH_SHA512_LEN];
    if (rh_hash_final(x->h256, d256) != RH_OK || !h->has_sha256)
        return false;
    bool ok = rh_ct_equal(d256, h->sha256, RH_SHA256_LEN);
    if (h->has_sha512) {
        if (x->h512 == NULL || rh_hash_final(x->h512, d512) != RH_OK)
            return false;
        ok = ok && rh_ct_equal(d512, h->sha512, RH_SHA512_LEN);
    }
    return ok;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0)
        x->range_start = -1;
    static const char cr[] = "content-range:";
    if (n > sizeof cr && strncasecmp(p, cr, sizeof cr - 1) == 0) {
        char line[128];
        size_t m = n - (sizeof cr - 1) < sizeof line - 1 ? n - (sizeof cr - 1) : sizeof line - 1;
        memcpy(line, p + sizeof cr - 1, m);
        line[m] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncasecmp(s, "bytes ", 6) == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(s + 6, &end, 10);
            if (errno == 0 && end != s + 6 && *end == '-' && v <= INT64_MAX)
                x->range_start = (int64_t)v;
        }
    }
    return n;
}

/* Bytes reach the staging file through the transfer's buffer: full buffers (and the last one)
 * go to the writer's threads, as few large page-aligned writes instead of one per HTTP/2 DATA
 * frame, direct to the device when the file is large (job_start), and the loop goes on
 * receiving meanwhile. */
static void wb_submit(xfer *x)
{
    if (x->wb == NULL)
        return;
    if (x->wlen == 0) {
        wbpool_put(x->pool, x->wb);
    } else {
        rh_writer_write(x->wr, x->fd, x->wb, x->wlen, x->woff, x->j->it->relpath);
        x->queued = true;
        x->woff += x->wlen;
    }
    x->wb = NULL;
    x->wlen = 0;
}

/* Without a buffer. Once writes of the file are queued, these bytes must follow them (a
 * staging file is a prefix of what was received, also after a failed write or a crash of the
 * process; after a power loss, the resumed file's hash check and one refetch handle it): the
 * writer takes a copy, in order; its unaligned offset or length turns O_DIRECT
 * off for the rest of the file when the lane gets there. Otherwise they are written here and
 * now, through the page cache. */
static rh_err write_straight(xfer *x, const uint8_t *p, size_t n)
{
    if (x->queued) {
        if (rh_writer_write_copy(x->wr, x->fd, p, n, x->woff, x->j->it->relpath)) {
            x->woff += n;
            x->st->copied_bytes += n;
            return RH_OK;
        }
        rh_writer_wait(x->wr, x->fd); /* out of memory: in order the slow way */
        x->queued = false;
        if (rh_writer_failed(x->wr))
            return RH_EIO; /* its queued writes were skipped: nothing may follow them */
    }
    if (x->direct) {
        int fl = fcntl(x->fd, F_GETFL);
        if (fl < 0 || fcntl(x->fd, F_SETFL, fl & ~O_DIRECT) != 0)
            return RH_EIO;
        x->direct = false;
    }
    if (rh_file_pwrite_all(x->fd, p, n, x->woff) != RH_OK)
        return RH_EIO;
    x->woff += n;
    return RH_OK;
}

static rh_err wb_put(xfer *x, const uint8_t *p, size_t n)
{
    uint64_t len = x->j->it->length;
    while (n > 0) {
        if (x->wb == NULL) {
            uint64_t rest = len - x->woff;
            /* A buffer when the bytes come in pieces; the whole rest at once needs none,
             * unless writes are queued ahead of it (write_straight would copy them). */
            if (n < rest || x->queued)
                x->wb = wbpool_get(x->pool);
            if (x->wb == NULL)
                return write_straight(x, p, n);
            x->wcap = rest < RH_DL_WBUF ? (size_t)rest : RH_DL_WBUF;
        }
        size_t k = x->wcap - x->wlen < n ? x->wcap - x->wlen : n;
        memcpy(x->wb + x->wlen, p, k);
        x->wlen += k;
        p += k;
        n -= k;
        if (x->wlen == x->wcap)
            wb_submit(x);
    }
    return RH_OK;
}

static size_t on_write(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    uint64_t len = x->j->it->length;
    if (!x->started) {
        x->started = true;
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            if (x->got > 0) { /* the upstream ignored Range: start over */
                if (ftruncate(x->fd, 0) != 0) { /* nothing of this transfer is queued yet */
                    xfail(x, RH_EIO, "%.300s: truncate of the staging file: %s", x->url, strerror(errno));
                    return 0;
                }
                x->got = x->woff = x->offset = 0; /* no local prefix is used any more */
                if (hash_reset(x) != RH_OK) {
                    xfail(x, RH_ECRYPTO, "%.300s: hash reset failed", x->url);
                    return 0;
                }
            }
        } else if (status == 206) {
            if (x->range_start < 0 || (uint64_t)x->range_start != x->offset) {
                xfail(x, RH_ENET, "%.300s: answered a range other than bytes=%" PRIu64 "-",
                      x->url, x->offset);
                return 0;
            }
        } else if (status == 404 || status == 410) {
            xfail(x, RH_ENOTFOUND, "%.300s: HTTP %ld", x->url, status);
            return 0;
        } else {
            xfail(x, RH_ENET, "%.300s: HTTP %ld", x->url, status);
            return 0;
        }
    }
    if (n > len - x->got) {
        xfail(x, RH_ETOOBIG, "%.300s: more than the signed length of %" PRIu64 " bytes", x->url,
              len);
        return 0;
    }
    if (wb_put(x, (const uint8_t *)p, n) != RH_OK) {
        xfail(x, RH_EIO, "staging file of %.300s: write: %s", x->url, strerror(errno));
        return 0;
    }
    if (hash_update(x, p, n) != RH_OK) {
        xfail(x, RH_ECRYPTO, "%.300s: hashing failed", x->url);
        return 0;
    }
    x->got += n;
    x->st->bytes += n;
    return n;
}

static void xfer_free(xfer *x)
{
    if (x == NULL)
        return;
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    if (x->fd >= 0) {
        if (x->queued)
            rh_writer_wait(x->wr, x->fd); /* its writes are done before it is closed */
        close(x->fd);
    }
    if (x->wb != NULL) /* abandoned: what it holds is fetched again on resume */
        wbpool_put(x->pool, x->wb);
    rh_hash_free(x->h256);
    rh_hash_free(x->h512);
    free(x->url);
    free(x);
}

/* j goes back to pending, to be started again at j->ready_ms. */
static void retry_later(run *r, job *j)
{
    j->state = J_PENDING;
    r->retry[r->nretry++] = j;
}

/* Mark j failed on its upstream with code/msg and decide what comes next. */
static void job_failed(run *r, job *j, rh_err code, const char *msg, int64_t now)
{
    job_set_error(j, code, msg);
    r->st->failures[code]++;
    if (code == RH_EIO || code == RH_ENOMEM || code == RH_ECRYPTO) {
        j->state = J_FAILED; /* our side: no upstream can help */
        return;
    }
    bool lying = code == RH_EHASH || code == RH_ETOOBIG || code == RH_ENOTFOUND;
    if (!lying && j->attempts < r->o->retries) {
        j->attempts++;
        long d = RH_DL_BACKOFF_MS << (j->attempts - 1 < 5 ? j->attempts - 1 : 5);
        j->ready_ms = now + (d > RH_DL_BACKOFF_MAX_MS ? RH_DL_BACKOFF_MAX_MS : d);
        retry_later(r, j);
        return;
    }
    j->up++;
    j->attempts = 0;
    j->refetched = false; /* the next upstream may resume this one's bytes: its own retry */
    j->ready_ms = now;
    if (j->up < r->o->nupstreams)
        retry_later(r, j);
    else
        j->state = J_FAILED;
}

/* What every request of the downloader sets alike, the warm-up's included: libcurl reuses a
 * connection only for a transfer with the same TLS settings (CA) and HTTP version. */
static bool easy_base(CURL *c, const char *url, const char *ca)
{
    long ver = (long)CURL_HTTP_VERSION_2TLS;
    if (strncasecmp(url, "http://", 7) == 0)
        ver = rh_dl_h2c_ok() ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                             : (long)CURL_HTTP_VERSION_1_1;
    return curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_HTTP_VERSION, ver) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, RH_DL_CONNECT_MS) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_USERAGENT, "rhine-mirror/1") == CURLE_OK &&
           (ca == NULL || curl_easy_setopt(c, CURLOPT_CAINFO, ca) == CURLE_OK);
}

struct rh_dl_warm {
    pthread_t th;
    CURLM *m;
    char *url;
    char *ca;
    atomic_bool stop;  /* rh_dl_warm_free: give up now rather than wait for the answers */
    _Atomic int64_t deadline_ms; /* rh_dl_run: give up at this time (0: none yet) */
};

static int64_t warm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The warm-up thread: RH_DL_CONNS HEAD requests added together, none waiting for another's
 * connection (no PIPEWAIT, one stream each), so each opens its own; when they are answered the
 * connections stay in m's cache for rh_dl_run. */
static void *warm_main(void *arg)
{
    rh_dl_warm *w = arg;
    CURL *hs[RH_DL_CONNS] = {0};
    curl_multi_setopt(w->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(w->m, CURLMOPT_MAX_HOST_CONNECTIONS, RH_DL_CONNS);
    curl_multi_setopt(w->m, CURLMOPT_MAX_CONCURRENT_STREAMS, 1L);
    for (long i = 0; i < RH_DL_CONNS; i++) {
        CURL *c = curl_easy_init();
        if (c == NULL)
            break;
        if (!easy_base(c, w->url, w->ca) ||
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PIPEWAIT, 0L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, RH_DL_CONNECT_MS) != CURLE_OK ||
            curl_multi_add_handle(w->m, c) != CURLM_OK) {
            curl_easy_cleanup(c);
            break;
        }
        hs[i] = c;
    }
    int running = 1;
    while (running > 0 && !atomic_load(&w->stop)) {
        int64_t dl = atomic_load(&w->deadline_ms);
        if (dl != 0 && warm_now_ms() >= dl)
            break; /* rh_dl_run is waiting: what is open by now is kept */
        if (curl_multi_perform(w->m, &running) != CURLM_OK)
            break;
        if (running > 0 && curl_multi_poll(w->m, NULL, 0, 100, NULL) != CURLM_OK)
            break;
    }
    for (long i = 0; i < RH_DL_CONNS; i++) {
        if (hs[i] != NULL) {
            curl_multi_remove_handle(w->m, hs[i]);
            curl_easy_cleanup(hs[i]);
        }
    }
    return NULL;
}

rh_dl_warm *rh_dl_warm_start(const char *upstream, const char *ca)
{
    rh_error ge;
    if (rh_net_global_init(&ge) != RH_OK) /* before the thread makes its first handle */
        return NULL;
    rh_dl_warm *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    atomic_init(&w->stop, false);
    atomic_init(&w->deadline_ms, 0);
    size_t n = strlen(upstream) + sizeof "/metadata/timestamp.json";
    if ((w->url = malloc(n)) == NULL || (ca != NULL && (w->ca = strdup(ca)) == NULL) ||
        (w->m = curl_multi_init()) == NULL)
        goto fail;
    snprintf(w->url, n, "%s/metadata/timestamp.json", upstream);
    if (pthread_create(&w->th, NULL, warm_main, w) != 0)
        goto fail;
    return w;
fail:
    if (w->m != NULL)
        curl_multi_cleanup(w->m);
    free(w->url);
    free(w->ca);
    free(w);
    return NULL;
}

/* Joins the thread, waiting at most RH_DL_WARM_WAIT_MS more for answers (a stalled handshake
 * must not hold the download up); the multi handle, with the connections open by then, is
 * handed to the caller. */
static CURLM *warm_take(rh_dl_warm *w)
{
    atomic_store(&w->deadline_ms, warm_now_ms() + RH_DL_WARM_WAIT_MS);
    pthread_join(w->th, NULL);
    CURLM *m = w->m;
    free(w->url);
    free(w->ca);
    free(w);
    return m;
}

void rh_dl_warm_free(rh_dl_warm *w)
{
    if (w != NULL) {
        atomic_store(&w->stop, true);
        curl_multi_cleanup(warm_take(w));
    }
}

/* Open the staging file and take up a partial one. Returns RH_OK with *x (network needed) or
 * with *x NULL and the job done (already complete and verified); else an error (job state set). */
static rh_err job_start(run *r, job *j, CURLM *m, int64_t now)
{
    const rh_dl_opts *o = r->o;
    const rh_dl_item *it = j->it;
    rh_err rc = RH_ENOMEM;
    char emsg[RH_ERRMSG_MAX];
    rh_error le;
    rh_error_clear(&le);
    char *path = rh_mfs_join(o->staging, it->relpath);
    xfer *x = calloc(1, sizeof *x);
    if (path == NULL || x == NULL) {
        snprintf(emsg, sizeof emsg, "%.300s: out of memory", it->relpath);
        goto fail;
    }
    x->fd = -1;
    x->j = j;
    x->st = r->st;
    x->pool = r->pool;
    x->wr = r->wr;
    x->range_start = -1;
    x->h256 = rh_hash_new(RH_SHA256);
    if (x->h256 == NULL || (it->hashes->has_sha512 && (x->h512 = rh_hash_new(RH_SHA512)) == NULL)) {
        snprintf(emsg, sizeof emsg, "%.300s: out of memory", it->relpath);
        goto fail;
    }
    if (!it->hashes->has_sha256) {
        rc = RH_EHASH;
        snprintf(emsg, sizeof emsg, "%.300s: no sha256 in the signed metadata", it->relpath);
        r->st->failures[rc]++;
        j->state = J_FAILED;
        job_set_error(j, rc, emsg);
        goto out;
    }
    /* Directories are made on first need: one open(2) for most files. */
    x->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (x->fd < 0 && errno == ENOENT) {
        if ((rc = rh_mfs_mkparent_nosync(path, &le)) != RH_OK) { /* rh_dl_run syncs them */
            snprintf(emsg, sizeof emsg, "%.500s", le.msg);
            goto fail;
        }
        x->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    }
    if (x->fd < 0 && (errno == EMFILE || errno == ENFILE) && j->fd_waits < RH_DL_FD_WAITS) {
        /* Out of descriptors (the server side of a daemon holds some too): not a disk failure.
         * Try again once transfers in flight have ended and closed theirs. */
        j->fd_waits++;
        j->ready_ms = now + RH_DL_FD_WAIT_MS;
        retry_later(r, j);
        rc = RH_OK;
        goto out;
    }
    struct stat st;
    if (x->fd < 0 || fstat(x->fd, &st) != 0) {
        rc = RH_EIO;
        snprintf(emsg, sizeof emsg, "%.300s: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t have = (uint64_t)st.st_size;
    if (have > it->length) {
        if (ftruncate(x->fd, 0) != 0) {
            rc = RH_EIO;
            snprintf(emsg, sizeof emsg, "%.300s: truncate: %s", path, strerror(errno));
            goto fail;
        }
        have = 0;
    }
    /* Re-hash the prefix a previous attempt left. */
    uint64_t done = 0;
    uint8_t buf[65536];
    while (done < have) {
        size_t want = have - done < sizeof buf ? (size_t)(have - done) : sizeof buf;
        ssize_t k = read(x->fd, buf, want);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            rc = RH_EIO;
            snprintf(emsg, sizeof emsg, "%.300s: read: %s", path, k < 0 ? strerror(errno) : "short");
            goto fail;
        }
        if (hash_update(x, buf, (size_t)k) != RH_OK) {
            rc = RH_ECRYPTO;
            snprintf(emsg, sizeof emsg, "%.300s: hashing failed", path);
            goto fail;
        }
        done += (uint64_t)k;
    }
    if (have == it->length) {
        if (hash_matches(x)) {
            j->state = J_DONE; /* made durable by the run's final syncfs (rh_dl_run) */
            r->st->objects++;
            rc = RH_OK;
            goto out; /* x freed below: nothing to transfer */
        }
        if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0 || hash_reset(x) != RH_OK) {
            rc = RH_EIO;
            snprintf(emsg, sizeof emsg, "%.300s: truncate: %s", path, strerror(errno));
            goto fail;
        }
        have = 0;
    }
    x->offset = x->got = x->woff = have;
    /* A large file is written direct (writer.h): its bytes must reach the disk before they are
     * published anyway, and the page cache would only copy them on the way. Small files keep
     * the page cache (fewer, smaller writes; and they are what clients ask for most). */
    if (it->length - have >= RH_DL_DIRECT_MIN && have % RH_WRITER_ALIGN == 0) {
        int fl = fcntl(x->fd, F_GETFL);
        x->direct = fl >= 0 && fcntl(x->fd, F_SETFL, fl | O_DIRECT) == 0;
    }
    if (have > 0)
        r->st->resumed++;

    char up[RH_MIRROR_MAX_RELPATH * 3 + 1];
    if (rh_plan_url_path(it->relpath, up, sizeof up) != RH_OK) {
        rc = RH_EINVAL;
        snprintf(emsg, sizeof emsg, "%.300s: URL too long", it->relpath);
        goto fail;
    }
    size_t ulen = strlen(o->upstreams[j->up]) + 1 + strlen(up) + 1;
    if ((x->url = malloc(ulen)) == NULL) {
        rc = RH_ENOMEM;
        snprintf(emsg, sizeof emsg, "%.300s: out of memory", it->relpath);
        goto fail;
    }
    snprintf(x->url, ulen, "%s/%s", o->upstreams[j->up], up);
    CURL *c = x->easy = curl_easy_init();
    if (c == NULL) {
        rc = RH_ENOMEM;
        snprintf(emsg, sizeof emsg, "%.300s: curl_easy_init failed", x->url);
        goto fail;
    }
    char range[48];
    snprintf(range, sizeof range, "%" PRIu64 "-", have);
    /* The first transfers each open a connection at once (all handshakes in one round trip);
     * the rest wait for a connection with a free stream rather than opening their own. */
    long pipewait = r->opened < r->conns ? 0L : 1L;
    r->opened++;
    bool ok = easy_base(c, x->url, o->ca) &&
              curl_easy_setopt(c, CURLOPT_PIPEWAIT, pipewait) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->low_speed_time) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_BUFFERSIZE, RH_DL_BUFFER) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)it->length) ==
                  CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEDATA, x) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERDATA, x) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PRIVATE, x) == CURLE_OK &&
              (have == 0 || curl_easy_setopt(c, CURLOPT_RANGE, range) == CURLE_OK);
    if (!ok || curl_multi_add_handle(m, c) != CURLM_OK) {
        rc = RH_ENET;
        snprintf(emsg, sizeof emsg, "%.300s: cannot set up the transfer", x->url);
        goto fail;
    }
    j->state = J_RUNNING;
    for (size_t i = 0; i < r->nlive; i++) {
        if (r->live[i] == NULL) {
            r->live[i] = x;
            x->slot = i;
            break;
        }
    }
    free(path);
    return RH_OK;
fail:
    job_failed(r, j, rc, emsg, now);
out:
    xfer_free(x);
    free(path);
    return rc;
}

/* A transfer ended: classify, verify, and decide the job's next step. */
static void job_finish(run *r, xfer *x, CURLcode cr, int64_t now)
{
    job *j = x->j;
    uint64_t len = j->it->length;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    wb_submit(x); /* what is left of the file, or what came before a failure */
    rh_err rc = x->fail;
    char msg[RH_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%.500s", x->msg);
    if (rc == RH_OK) {
        if (cr == CURLE_FILESIZE_EXCEEDED) {
            rc = RH_ETOOBIG;
            snprintf(msg, sizeof msg, "%.300s: more than the signed length of %" PRIu64 " bytes",
                     x->url, len);
        } else if (cr == CURLE_PARTIAL_FILE) {
            rc = RH_ENET;
            snprintf(msg, sizeof msg, "%.300s: truncated: connection closed after %" PRIu64
                     " of %" PRIu64 " bytes", x->url, x->got, len);
        } else if (cr != CURLE_OK) {
            rc = RH_ENET;
            snprintf(msg, sizeof msg, "%.300s: %.200s", x->url,
                     x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cr));
        } else if (status == 404 || status == 410) {
            rc = RH_ENOTFOUND;
            snprintf(msg, sizeof msg, "%.300s: HTTP %ld", x->url, status);
        } else if (status != 200 && status != 206) {
            rc = RH_ENET;
            snprintf(msg, sizeof msg, "%.300s: HTTP %ld", x->url, status);
        } else if (x->got < len) {
            rc = RH_ENET;
            snprintf(msg, sizeof msg, "%.300s: truncated: %" PRIu64 " of %" PRIu64 " bytes", x->url,
                     x->got, len);
        } else if (!hash_matches(x)) {
            rc = RH_EHASH;
            snprintf(msg, sizeof msg, "%.300s: hash differs from the signed one", x->url);
        }
    }
    if (rc == RH_OK) {
        /* The writer closes it after its last write; a large file that went through the page
         * cache has its writeback started then, so that the one syncfs(2) at the end of the
         * run (rh_dl_run) finds little left to do. */
        rh_writer_close(r->wr, x->fd, !x->direct && len >= RH_DL_DIRECT_MIN);
        x->fd = -1;
        j->state = J_DONE;
        r->st->objects++;
        return;
    }
    /* The file is ours again once the writer is done with it: x->got bytes, for resuming
     * (fewer when a write failed: resuming goes by the file's size). */
    if (x->queued)
        rh_writer_wait(r->wr, x->fd);
    x->queued = false;
    if (rc == RH_EHASH || rc == RH_ETOOBIG) /* the bytes are bad: never resume them */
        if (ftruncate(x->fd, 0) != 0)
            rc = RH_EIO;
    if (rc == RH_EHASH && x->offset > 0 && !j->refetched) {
        /* Resumed from a staging file: its prefix may be what is wrong (a crash while its
         * bytes were in the page cache), not the upstream. Once, from the first byte and from
         * the same upstream, before that upstream is taken for a liar. */
        j->refetched = true;
        r->st->refetched++;
        j->ready_ms = now;
        retry_later(r, j);
        return;
    }
    job_failed(r, j, rc, msg, now);
}

/* Start job j (fresh, or a retry whose backoff is over); true when it now needs a slot. */
static bool start(run *r, job *j, CURLM *m, int64_t now, bool *io_failed)
{
    (void)job_start(r, j, m, now);
    if (j->state == J_FAILED && j->code == RH_EIO)
        *io_failed = true;
    return j->state == J_RUNNING;
}

/* Collect finished transfers; returns how many ended. */
static size_t reap(run *r, CURLM *m, bool *io_failed)
{
    size_t ended = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode cr = msg->data.result;
        curl_multi_remove_handle(m, msg->easy_handle);
        job_finish(r, x, cr, now_ms());
        if (x->j->state == J_FAILED && x->j->code == RH_EIO)
            *io_failed = true;
        r->live[x->slot] = NULL;
        xfer_free(x);
        ended++;
    }
    return ended;
}

rh_err rh_dl_run(const rh_dl_opts *o, const rh_dl_item *items, size_t n, rh_dl_stats *stats,
                 rh_error *e)
{
    if (o == NULL || o->nupstreams == 0 || o->staging == NULL || (n > 0 && items == NULL)) {
        if (o != NULL)
            rh_dl_warm_free(o->warm);
        return rh_fail(e, RH_EINVAL, "download: bad arguments");
    }
    if (n == 0) {
        rh_dl_warm_free(o->warm);
        return RH_OK;
    }
    rh_dl_stats local;
    memset(&local, 0, sizeof local);
    wbpool pool;
    wbpool_init(&pool, o->wbufs);
    run r = {o, stats != NULL ? stats : &local, NULL, 0, NULL, 0, 0, 0, NULL, &pool};
    /* HTTP/2: `concurrency` streams on each of RH_DL_CONNS connections per upstream (fewer if
     * the upstream's SETTINGS_MAX_CONCURRENT_STREAMS says so). HTTP/1.1 (see rh_dl_h2c_ok): one
     * transfer per connection. */
    bool h1 = false;
    for (size_t u = 0; u < o->nupstreams; u++)
        h1 = h1 || (strncasecmp(o->upstreams[u], "http://", 7) == 0 && !rh_dl_h2c_ok());
    long streams = o->concurrency > 0 ? o->concurrency : 1;
    long conns = h1 ? (streams < RH_DL_H1_CONNS ? streams : RH_DL_H1_CONNS) : RH_DL_CONNS;
    if (!h1 && (size_t)conns > (n + (size_t)streams - 1) / (size_t)streams)
        conns = (long)((n + (size_t)streams - 1) / (size_t)streams); /* no idle connection */
    long inflight = h1 ? conns : streams * conns;
    if (inflight > RH_DL_MAX_INFLIGHT)
        inflight = RH_DL_MAX_INFLIGHT;
    if ((size_t)inflight > n)
        inflight = (long)n;
    /* Every transfer in flight holds its staging file open, and the writer's queues up to
     * RH_DL_FLUSH_QUEUE more: leave at least half the descriptors to everything else. */
    struct rlimit fl;
    if (getrlimit(RLIMIT_NOFILE, &fl) == 0 && fl.rlim_cur != RLIM_INFINITY) {
        rlim_t cap = fl.rlim_cur / 2 > RH_DL_FLUSH_QUEUE ? fl.rlim_cur / 2 - RH_DL_FLUSH_QUEUE : 1;
        if ((rlim_t)inflight > cap)
            inflight = (long)cap;
    }
    r.nlive = (size_t)inflight;
    r.conns = conns;
    job *jobs = calloc(n, sizeof *jobs);
    /* 2n: during the pass over the list a job started from it may be appended again before
     * the list is compacted. */
    r.retry = calloc(2 * n, sizeof *r.retry);
    r.live = calloc(r.nlive, sizeof *r.live);
    /* Warm connections that are still open are reused as any idle multiplexed connection is;
     * r.opened stays 0, so that the first transfers open new ones where they were closed. */
    CURLM *m = o->warm != NULL ? warm_take(o->warm) : curl_multi_init();
    rh_err rc = RH_OK;
    /* Opened before anything is written: syncfs(2) reports the write-back errors of the file
     * system that happen after the descriptor was opened. */
    int sfd = open(o->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) {
        rc = rh_fail(e, RH_EIO, "%s: %s", o->staging, strerror(errno));
        goto out;
    }
    if (jobs == NULL || r.retry == NULL || r.live == NULL || m == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "download: out of memory");
        goto out;
    }
    r.wr = rh_writer_new(RH_DL_WRITERS, RH_DL_FLUSH_QUEUE / RH_DL_WRITERS, wbpool_put, &pool);
    if (r.wr == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "download: out of memory");
        goto out;
    }
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS, streams);
    for (size_t i = 0; i < n; i++) {
        jobs[i].it = &items[i];
        jobs[i].state = J_PENDING;
    }

    size_t next = 0; /* jobs before next were started at least once */
    size_t running = 0;
    bool io_failed = false;
    for (;;) {
        if (o->cancel != NULL && atomic_load(o->cancel)) {
            rc = rh_fail(e, RH_ENET, "download: cancelled");
            break;
        }
        if (rh_writer_failed(r.wr))
            break; /* a staging write failed (disk full, I/O error): no upstream can help */
        int64_t now = now_ms();
        int64_t wake = now + 200;
        /* Retries whose backoff is over first, then fresh jobs. The list is compacted as it
         * goes; a job that fails again at once is appended and waits for the next pass. */
        size_t end = r.nretry, kept = 0;
        for (size_t i = 0; i < end; i++) {
            job *j = r.retry[i];
            if (j->ready_ms > now || running >= r.nlive || io_failed) {
                if (j->ready_ms > now && j->ready_ms < wake)
                    wake = j->ready_ms;
                r.retry[kept++] = j;
            } else if (start(&r, j, m, now, &io_failed)) {
                running++;
            }
        }
        memmove(r.retry + kept, r.retry + end, (r.nretry - end) * sizeof *r.retry);
        r.nretry = kept + (r.nretry - end);
        /* A bounded batch per pass, so that requests go out while more are set up. */
        for (long k = 0; k < RH_DL_START_BATCH && next < n && running < r.nlive && !io_failed;
             k++)
            if (start(&r, &jobs[next++], m, now, &io_failed))
                running++;
        bool pending = r.nretry > 0 || next < n;
        if (running == 0 && (!pending || io_failed))
            break;

        int still = 0;
        curl_multi_perform(m, &still);
        size_t ended = reap(&r, m, &io_failed);
        running -= ended;
        /* Fill free slots before waiting: a finished transfer is replaced at once. */
        if (!io_failed && ((ended > 0 && pending) || (next < n && running < r.nlive)))
            continue;
        int wait = (int)(wake - now_ms());
        if (wait < 1)
            wait = 1;
        curl_multi_poll(m, NULL, 0, wait, NULL);
    }

    /* Abandon what is still running (cancel or disk failure): partial files stay for resume. */
    for (size_t i = 0; r.live != NULL && i < r.nlive; i++) {
        if (r.live[i] != NULL) {
            curl_multi_remove_handle(m, r.live[i]->easy);
            xfer_free(r.live[i]);
        }
    }
    /* Every write done and every staging file closed; a failed write is the run's error. */
    char wmsg[RH_ERRMSG_MAX];
    rh_writer_stats ws = {0, 0};
    bool wfailed = rh_writer_free(r.wr, &ws, wmsg, sizeof wmsg);
    r.wr = NULL;
    r.st->direct_bytes += ws.direct;
    if (rc == RH_OK && wfailed)
        rc = rh_fail(e, RH_EIO, "%s", wmsg);
    if (rc == RH_OK) {
        for (size_t i = 0; i < n; i++) {
            if (jobs[i].state == J_DONE)
                continue;
            if (jobs[i].state == J_FAILED)
                rc = rh_fail(e, jobs[i].code, "%s",
                             jobs[i].msg != NULL ? jobs[i].msg : "out of memory for the reason");
            else
                rc = rh_fail(e, RH_EIO, "%s: not downloaded (staging failed)", items[i].relpath);
            break;
        }
    }
    /* Nothing is published before its bytes are durable (DESIGN 5.4): one syncfs(2), not an
     * fsync per file and directory. */
    if (rc == RH_OK && syncfs(sfd) != 0)
        rc = rh_fail(e, RH_EIO, "%s: syncfs: %s", o->staging, strerror(errno));
out:
    if (sfd >= 0)
        close(sfd);
    (void)rh_writer_free(r.wr, NULL, NULL, 0); /* before the pool its threads give buffers to */
    wbpool_destroy(&pool);
    if (m != NULL)
        curl_multi_cleanup(m);
    free(r.live);
    for (size_t i = 0; jobs != NULL && i < n; i++)
        free(jobs[i].msg);
    free(jobs);
    free(r.retry);
    return rc;
}
