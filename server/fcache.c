/* fcache.c -- a bounded LRU cache of open served files (fd + fstat + ETag) keyed by path. */
#include "server/fcache.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The bytes of files held in memory that are still allocated: by cached entries, and by
 * evicted ones that a response still holds (freed at its release). Shared by the cache and
 * by every entry holding bytes, so an entry released after rh_fcache_free still counts down;
 * the last of them frees it. */
typedef struct rh_fmem {
    size_t live;
    size_t refs;
} rh_fmem;

/* An LRU list threaded through one of an entry's links (USE or BYTES). */
typedef struct rh_flist {
    rh_fent *first, *last; /* most recently used first */
} rh_flist;

#define USE   offsetof(rh_fent, use)
#define BYTES offsetof(rh_fent, bytes)

struct rh_fcache {
    size_t max, count;
    size_t mem_max, mem_file_max; /* rh_fcache_load's budget and its per-file bound */
    rh_fmem *mem;
    size_t nbuckets;             /* power of two, at least 2 * max */
    rh_fent **buckets;
    rh_flist use;                /* every cached entry, most recently used first */
    rh_flist bytes;              /* the cached entries holding bytes, in the same order */
};

/* Entries of the bytes list that mem_room looks at, at most, to make room: responses hold
 * the most recently used ones, so the room is near the end; a client that stalls responses
 * holding all of them costs this many steps per load, not a walk of the whole cache. */
#define RH_FCACHE_ROOM_STEPS 64

/* Eight bytes a step (a served path is about 100 bytes: FNV-1a's byte-serial multiplies were
 * 1.3% of the server's CPU under the small-file benchmark); a multiply-xorshift mix per word. */
static unsigned key_hash(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ (uint64_t)n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, s, n);
    h ^= w; /* then murmur3's fmix64: every input bit reaches the low bits of the index */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return (unsigned)h;
}

rh_fcache *rh_fcache_new(size_t max_entries)
{
    rh_fcache *c;
    size_t nb = 16;

    if (max_entries == 0)
        max_entries = 1;
    while (nb < 2 * max_entries && nb < ((size_t)1 << 30))
        nb <<= 1;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->buckets = calloc(nb, sizeof(*c->buckets));
    c->mem = calloc(1, sizeof(*c->mem));
    if (c->buckets == NULL || c->mem == NULL) {
        free(c->buckets);
        free(c->mem);
        free(c);
        return NULL;
    }
    c->mem->refs = 1;
    c->max = max_entries;
    c->nbuckets = nb;
    return c;
}

static void mem_unref(rh_fmem *m)
{
    if (--m->refs == 0)
        free(m);
}

/* Frees e's bytes (never while a response holds e: it reads them). */
static void data_free(rh_fent *e)
{
    if (e->data == NULL)
        return;
    e->mem->live -= (size_t)e->st.st_size;
    free((void *)e->data);
    e->data = NULL;
    mem_unref(e->mem);
    e->mem = NULL;
}

void rh_fent_release(rh_fent *e)
{
    if (e == NULL)
        return;
    if (--e->refs > 0)
        return;
    close(e->fd);
    data_free(e);
    free(e);
}

static struct rh_flink *link_of(rh_fent *e, size_t which)
{
    return (struct rh_flink *)(void *)((char *)e + which);
}

static void list_unlink(rh_flist *l, size_t which, rh_fent *e)
{
    struct rh_flink *k = link_of(e, which);
    if (k->prev)
        link_of(k->prev, which)->next = k->next;
    else
        l->first = k->next;
    if (k->next)
        link_of(k->next, which)->prev = k->prev;
    else
        l->last = k->prev;
    k->prev = k->next = NULL;
}

static void list_push_front(rh_flist *l, size_t which, rh_fent *e)
{
    struct rh_flink *k = link_of(e, which);
    k->prev = NULL;
    k->next = l->first;
    if (l->first)
        link_of(l->first, which)->prev = e;
    l->first = e;
    if (l->last == NULL)
        l->last = e;
}

/* e becomes the most recently used of l. */
static void list_touch(rh_flist *l, size_t which, rh_fent *e)
{
    if (l->first != e) {
        list_unlink(l, which, e);
        list_push_front(l, which, e);
    }
}

static void evict(rh_fcache *c, rh_fent *e)
{
    rh_fent **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    list_unlink(&c->use, USE, e);
    if (e->data != NULL)
        list_unlink(&c->bytes, BYTES, e); /* its bytes go with its last holder */
    e->cached = false;
    c->count--;
    rh_fent_release(e); /* the cache's reference */
}

void rh_fcache_flush(rh_fcache *c)
{
    while (c->use.first != NULL)
        evict(c, c->use.first);
}

void rh_fcache_free(rh_fcache *c)
{
    if (c == NULL)
        return;
    rh_fcache_flush(c);
    free(c->buckets);
    mem_unref(c->mem); /* held entries still count down into it */
    free(c);
}

static rh_fent *find(const rh_fcache *c, const char *rel, size_t n, unsigned h)
{
    for (rh_fent *e = c->buckets[h & (c->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->klen == n && memcmp(e->key, rel, n) == 0)
            return e;
    return NULL;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    /* ctime moves on unlink, link and rename of the inode: all the ways the file could have
     * left the served tree (or been replaced under its name) while we held it open. */
    return a->st_nlink > 0 && a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
           a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

unsigned long long rh_fcache_stamp(long long sec, long long usec, unsigned interval_ms)
{
    unsigned long long ms = (unsigned long long)sec * 1000u + (unsigned long long)usec / 1000u;
    return ms / (interval_ms ? interval_ms : 1u) + 1u;
}

rh_fent *rh_fcache_get(rh_fcache *c, const char *rel, unsigned long long stamp)
{
    size_t n = strlen(rel);
    unsigned h = key_hash(rel, n);
    rh_fent *e = find(c, rel, n, h);
    struct stat now;

    if (e == NULL)
        return NULL;
    if (stamp == 0 || e->checked != stamp) {
        if (fstat(e->fd, &now) != 0 || !same_file(&now, &e->st)) {
            evict(c, e);
            return NULL;
        }
        e->checked = stamp;
    }
    list_touch(&c->use, USE, e);
    if (e->data != NULL)
        list_touch(&c->bytes, BYTES, e);
    e->refs++;
    return e;
}

rh_fent *rh_fcache_put(rh_fcache *c, const char *rel, int fd, const struct stat *st,
                       const char hex[65], unsigned long long stamp)
{
    size_t n = strlen(rel);
    unsigned h = key_hash(rel, n);
    rh_fent *e, *old;

    e = malloc(sizeof(*e) + n + 1);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->fd = fd;
    e->st = *st;
    e->checked = stamp;
    memcpy(e->hex, hex, 64);
    e->hex[64] = '\0';
    e->hash = h;
    e->klen = n;
    memcpy(e->key, rel, n + 1);
    if ((old = find(c, rel, n, h)) != NULL)
        evict(c, old);
    while (c->count >= c->max)
        evict(c, c->use.last);
    e->hnext = c->buckets[h & (c->nbuckets - 1)];
    c->buckets[h & (c->nbuckets - 1)] = e;
    list_push_front(&c->use, USE, e);
    e->cached = true;
    e->refs = 2; /* the cache and the caller */
    c->count++;
    return e;
}

size_t rh_fcache_trim(rh_fcache *c, size_t n)
{
    size_t closed = 0;
    rh_fent *e = c->use.last;

    while (e != NULL && closed < n) {
        rh_fent *prev = e->use.prev;
        if (e->refs == 1) {
            evict(c, e);
            closed++;
        }
        e = prev;
    }
    return closed;
}

size_t rh_fcache_count(const rh_fcache *c)
{
    return c->count;
}

size_t rh_fcache_max(const rh_fcache *c)
{
    return c->max;
}

size_t rh_fcache_bytes(const rh_fcache *c)
{
    return c->mem->live;
}

/* Frees the bytes of the least recently used entries that no response holds until need
 * more bytes fit the budget, looking at max_steps of them at most; their descriptors stay
 * cached. Bytes used under stamp (within the same revalidation interval; 0: no stamp) are
 * not freed for a newcomer: when even the least recently used were, the files in use do not
 * fit the budget, and trading one for another on every request would cost a read, a malloc
 * and an fstat each time instead of one read. True when need bytes fit. */
static bool mem_room(rh_fcache *c, size_t need, unsigned long long stamp, size_t max_steps)
{
    size_t steps = 0;
    for (rh_fent *e = c->bytes.last;
         e != NULL && c->mem->live + need > c->mem_max && steps < max_steps; steps++) {
        rh_fent *prev = e->bytes.prev;
        if (stamp != 0 && e->checked == stamp)
            break; /* every entry from here on was used as recently */
        if (e->refs == 1) {
            list_unlink(&c->bytes, BYTES, e);
            data_free(e);
        }
        e = prev;
    }
    return c->mem->live + need <= c->mem_max;
}

void rh_fcache_set_memory(rh_fcache *c, size_t max_bytes, size_t max_file)
{
    c->mem_max = max_bytes;
    c->mem_file_max = max_file < max_bytes ? max_file : max_bytes;
    (void)mem_room(c, 0, 0, SIZE_MAX); /* a smaller budget applies at once */
}

bool rh_fcache_load(rh_fcache *c, rh_fent *e)
{
    size_t n, got = 0;
    unsigned char *buf;
    struct stat now;

    if (!e->cached || e->data != NULL || e->st.st_size <= 0 ||
        (unsigned long long)e->st.st_size > c->mem_file_max)
        return e->data != NULL;
    n = (size_t)e->st.st_size;
    /* Bytes held by responses count too, so the budget bounds what is allocated, however
     * many responses stall with an entry in hand: when they fill it, files are read. */
    if (!mem_room(c, n, e->checked, RH_FCACHE_ROOM_STEPS) || (buf = malloc(n)) == NULL)
        return false;
    while (got < n) {
        ssize_t r = pread(e->fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    /* Read whole, and still the file that was cached: a file rewritten in place meanwhile
     * (never done to a HASH.name target, but possible) is not held half old, half new. */
    if (got != n || fstat(e->fd, &now) != 0 || !same_file(&now, &e->st)) {
        free(buf);
        return false;
    }
    e->data = buf;
    e->mem = c->mem;
    c->mem->refs++;
    c->mem->live += n;
    list_push_front(&c->bytes, BYTES, e);
    return true;
}
