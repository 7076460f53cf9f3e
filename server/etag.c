/* etag.c -- a bounded cache of file sha256 digests keyed by (dev, ino, size, mtime, ctime). */
#include "server/etag.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define ETAG_READ_CHUNK (256u * 1024)

typedef struct etag_entry {
    bool used;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
    char hex[65];
} etag_entry;

struct rh_etag_cache {
    etag_entry *tab;
    size_t mask;
};

rh_etag_cache *rh_etag_cache_new(size_t entries)
{
    size_t n = 16;
    rh_etag_cache *c;

    while (n < entries && n < ((size_t)1 << 24))
        n <<= 1;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->tab = calloc(n, sizeof(*c->tab));
    if (c->tab == NULL) {
        free(c);
        return NULL;
    }
    c->mask = n - 1;
    return c;
}

void rh_etag_cache_free(rh_etag_cache *c)
{
    if (c == NULL)
        return;
    free(c->tab);
    free(c);
}

static bool same_key(const etag_entry *e, const struct stat *st)
{
    return e->used && e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtim.tv_sec == st->st_mtim.tv_sec && e->mtim.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctim.tv_sec == st->st_ctim.tv_sec && e->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

static size_t slot_of(const rh_etag_cache *c, const struct stat *st)
{
    /* FNV-1a over the identity; the size and times make a rewritten file a new key. */
    uint64_t parts[4] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
                         (uint64_t)st->st_mtim.tv_nsec ^ (uint64_t)st->st_mtim.tv_sec};
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)parts;
    for (size_t i = 0; i < sizeof(parts); i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29)) & c->mask;
}

static rh_err hash_fd(int fd, off_t size, char hex[65], rh_error *err)
{
    rh_err rc = RH_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *buf = malloc(ETAG_READ_CHUNK);
    unsigned char dig[32];
    unsigned int dlen = 0;
    off_t off = 0;

    if (md == NULL || buf == NULL) {
        rc = rh_fail(err, RH_ENOMEM, "etag: out of memory");
        goto out;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = rh_fail(err, RH_ECRYPTO, "etag: sha256 init failed");
        goto out;
    }
    while (off < size) {
        size_t want = (size_t)(size - off) < ETAG_READ_CHUNK ? (size_t)(size - off)
                                                             : ETAG_READ_CHUNK;
        ssize_t n = pread(fd, buf, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = rh_fail(err, RH_EIO, "etag: read failed or file shrank at offset %lld",
                         (long long)off);
            goto out;
        }
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
            rc = rh_fail(err, RH_ECRYPTO, "etag: sha256 update failed");
            goto out;
        }
        off += n;
    }
    if (EVP_DigestFinal_ex(md, dig, &dlen) != 1 || dlen != 32) {
        rc = rh_fail(err, RH_ECRYPTO, "etag: sha256 final failed");
        goto out;
    }
    for (int i = 0; i < 32; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[dig[i] >> 4];
        hex[2 * i + 1] = digits[dig[i] & 15];
    }
    hex[64] = '\0';
out:
    free(buf);
    EVP_MD_CTX_free(md);
    return rc;
}

rh_err rh_etag_get(rh_etag_cache *c, int fd, const struct stat *st, char hex[65], bool *hashed,
                   rh_error *err)
{
    etag_entry *e = &c->tab[slot_of(c, st)];
    char tmp[65];
    rh_err rc;

    if (same_key(e, st)) {
        memcpy(hex, e->hex, 65);
        if (hashed)
            *hashed = false;
        return RH_OK;
    }
    rc = hash_fd(fd, st->st_size, tmp, err);
    if (rc != RH_OK)
        return rc;
    e->used = true;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtim = st->st_mtim;
    e->ctim = st->st_ctim;
    memcpy(e->hex, tmp, 65);
    memcpy(hex, tmp, 65);
    if (hashed)
        *hashed = true;
    return RH_OK;
}
