/* merkle.c -- RFC 9162 Merkle hashing, compact append-only tree, proofs, tlog-tiles paths. */
#include "manifest/merkle.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "manifest/hash.h"

#define HL RH_MERKLE_HASH_LEN
/* Pieces of an arbitrary range [start, end): at most two per level. */
#define RH_MERKLE_MAX_PIECES (2 * RH_MERKLE_MAX_HEIGHT)

/* RFC 9162 2.1.1: SHA-256(0x00 || d) and SHA-256(0x01 || l || r). */
static rh_err hash2(uint8_t prefix, const void *a, size_t alen, const void *b, size_t blen,
                    uint8_t out[HL])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    uint8_t tmp[EVP_MAX_MD_SIZE];
    rh_err rc = RH_ECRYPTO;
    if (ctx == NULL)
        return RH_ENOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, &prefix, 1) == 1 &&
        (alen == 0 || EVP_DigestUpdate(ctx, a, alen) == 1) &&
        (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
        EVP_DigestFinal_ex(ctx, tmp, &n) == 1 && n == HL) {
        memcpy(out, tmp, HL);
        rc = RH_OK;
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

rh_err rh_merkle_leaf_hash(const void *data, size_t len, uint8_t out[HL])
{
    if (data == NULL && len > 0)
        return RH_EINVAL;
    return hash2(0x00, data, len, NULL, 0, out);
}

rh_err rh_merkle_node_hash(const uint8_t left[HL], const uint8_t right[HL], uint8_t out[HL])
{
    return hash2(0x01, left, HL, right, HL, out);
}

void rh_merkle_empty_root(uint8_t out[HL])
{
    /* SHA-256("") -- a constant, so this cannot fail. */
    static const uint8_t empty[HL] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    memcpy(out, empty, HL);
}

/* ---- compact tree ------------------------------------------------------------------------ */

void rh_merkle_tree_init(rh_merkle_tree *t)
{
    memset(t, 0, sizeof *t);
}

rh_err rh_merkle_tree_append(rh_merkle_tree *t, const uint8_t leaf[HL], rh_merkle_node_fn fn,
                             void *arg)
{
    if (t == NULL || leaf == NULL)
        return RH_EINVAL;
    if (t->size >= UINT64_MAX - 1)
        return RH_ETOOBIG;
    rh_err rc;
    /* Work on a copy: the tree changes only when every callback succeeded. */
    uint8_t cur[HL];
    memcpy(cur, leaf, HL);
    uint64_t idx = t->size;
    unsigned n = t->n;
    if (fn != NULL && (rc = fn(arg, 0, idx, cur)) != RH_OK)
        return rc;
    unsigned level = 0;
    /* Each trailing 1 bit of the old size is a perfect subtree the new leaf completes. */
    for (uint64_t s = t->size; s & 1; s >>= 1) {
        uint8_t parent[HL];
        if ((rc = rh_merkle_node_hash(t->stack[n - 1], cur, parent)) != RH_OK)
            return rc;
        memcpy(cur, parent, HL);
        n--;
        level++;
        idx >>= 1;
        if (fn != NULL && (rc = fn(arg, level, idx, cur)) != RH_OK)
            return rc;
    }
    memcpy(t->stack[n], cur, HL);
    t->n = n + 1;
    t->size++;
    return RH_OK;
}

rh_err rh_merkle_tree_root(const rh_merkle_tree *t, uint8_t out[HL])
{
    if (t == NULL || out == NULL)
        return RH_EINVAL;
    if (t->n == 0) {
        rh_merkle_empty_root(out);
        return RH_OK;
    }
    uint8_t h[HL];
    memcpy(h, t->stack[t->n - 1], HL);
    for (unsigned i = t->n - 1; i-- > 0;) {
        rh_err rc = rh_merkle_node_hash(t->stack[i], h, h);
        if (rc != RH_OK)
            return rc;
    }
    memcpy(out, h, HL);
    return RH_OK;
}

rh_err rh_merkle_tree_restore(rh_merkle_tree *t, uint64_t size, rh_merkle_get_fn get, void *arg)
{
    if (t == NULL || get == NULL)
        return RH_EINVAL;
    if (size >= UINT64_MAX)
        return RH_ETOOBIG;
    rh_merkle_tree tmp;
    rh_merkle_tree_init(&tmp);
    uint64_t start = 0;
    for (int level = RH_MERKLE_MAX_HEIGHT - 1; level >= 0; level--) {
        if (!((size >> level) & 1))
            continue;
        rh_err rc = get(arg, (unsigned)level, start >> level, tmp.stack[tmp.n]);
        if (rc != RH_OK)
            return rc;
        tmp.n++;
        start += (uint64_t)1 << level;
    }
    tmp.size = size;
    *t = tmp;
    return RH_OK;
}

/* ---- roots and proofs from stored subtree hashes ---------------------------------------- */

static unsigned ctz64(uint64_t x)
{
    return x == 0 ? 64 : (unsigned)__builtin_ctzll(x);
}

rh_err rh_merkle_range_root(uint64_t start, uint64_t end, rh_merkle_get_fn get, void *arg,
                            uint8_t out[HL])
{
    if (get == NULL || out == NULL || start >= end)
        return RH_EINVAL;
    uint8_t pieces[RH_MERKLE_MAX_PIECES][HL];
    unsigned np = 0;
    uint64_t pos = start;
    while (pos < end) {
        /* The largest aligned perfect subtree starting at pos that ends within the range. */
        unsigned level = ctz64(pos);
        if (level > RH_MERKLE_MAX_HEIGHT - 1)
            level = RH_MERKLE_MAX_HEIGHT - 1;
        while (level > 0 && (end - pos) < ((uint64_t)1 << level))
            level--;
        if (np == RH_MERKLE_MAX_PIECES)
            return RH_EINVAL;
        rh_err rc = get(arg, level, pos >> level, pieces[np]);
        if (rc != RH_OK)
            return rc;
        np++;
        pos += (uint64_t)1 << level;
    }
    /* Pieces shrink left to right, so MTH folds them from the right. */
    uint8_t h[HL];
    memcpy(h, pieces[np - 1], HL);
    for (unsigned i = np - 1; i-- > 0;) {
        rh_err rc = rh_merkle_node_hash(pieces[i], h, h);
        if (rc != RH_OK)
            return rc;
    }
    memcpy(out, h, HL);
    return RH_OK;
}

/* Largest power of two strictly less than n (n >= 2): the RFC 9162 split point k. */
static uint64_t split_point(uint64_t n)
{
    return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

typedef struct proof_ctx {
    rh_merkle_get_fn get;
    void *arg;
    rh_merkle_proof *p;
} proof_ctx;

static rh_err push_range(proof_ctx *c, uint64_t lo, uint64_t hi)
{
    if (c->p->n >= RH_MERKLE_MAX_PROOF)
        return RH_ETOOBIG;
    rh_err rc = rh_merkle_range_root(lo, hi, c->get, c->arg, c->p->h[c->p->n]);
    if (rc == RH_OK)
        c->p->n++;
    return rc;
}

/* RFC 9162 2.1.3.1 PATH(m, D[lo:hi]), m relative to lo. */
static rh_err path(proof_ctx *c, uint64_t m, uint64_t lo, uint64_t hi)
{
    uint64_t n = hi - lo;
    if (n == 1)
        return RH_OK;
    uint64_t k = split_point(n);
    rh_err rc;
    if (m < k) {
        if ((rc = path(c, m, lo, lo + k)) != RH_OK)
            return rc;
        return push_range(c, lo + k, hi);
    }
    if ((rc = path(c, m - k, lo + k, hi)) != RH_OK)
        return rc;
    return push_range(c, lo, lo + k);
}

/* RFC 9162 2.1.4.1 SUBPROOF(m, D[lo:hi], b). */
static rh_err subproof(proof_ctx *c, uint64_t m, uint64_t lo, uint64_t hi, bool b)
{
    uint64_t n = hi - lo;
    if (m == n)
        return b ? RH_OK : push_range(c, lo, hi);
    uint64_t k = split_point(n);
    rh_err rc;
    if (m <= k) {
        if ((rc = subproof(c, m, lo, lo + k, b)) != RH_OK)
            return rc;
        return push_range(c, lo + k, hi);
    }
    if ((rc = subproof(c, m - k, lo + k, hi, false)) != RH_OK)
        return rc;
    return push_range(c, lo, lo + k);
}

rh_err rh_merkle_inclusion_proof(uint64_t index, uint64_t size, rh_merkle_get_fn get, void *arg,
                                 rh_merkle_proof *out, rh_error *e)
{
    if (get == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "inclusion proof: no hash source or output");
    if (index >= size)
        return rh_fail(e, RH_EINVAL, "inclusion proof: leaf %" PRIu64 " not in a tree of %" PRIu64,
                       index, size);
    rh_merkle_proof p;
    p.n = 0;
    proof_ctx c = {get, arg, &p};
    rh_err rc = path(&c, index, 0, size);
    if (rc != RH_OK)
        return rh_fail(e, rc, "inclusion proof of leaf %" PRIu64 " in tree %" PRIu64 ": %s", index,
                       size, rh_err_name(rc));
    memcpy(out, &p, sizeof p);
    return RH_OK;
}

rh_err rh_merkle_consistency_proof(uint64_t size1, uint64_t size2, rh_merkle_get_fn get,
                                   void *arg, rh_merkle_proof *out, rh_error *e)
{
    if (get == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "consistency proof: no hash source or output");
    if (size1 == 0 || size1 > size2)
        return rh_fail(e, RH_EINVAL,
                       "consistency proof: sizes %" PRIu64 " and %" PRIu64 " need 0 < size1 <= size2",
                       size1, size2);
    rh_merkle_proof p;
    p.n = 0;
    proof_ctx c = {get, arg, &p};
    rh_err rc = size1 == size2 ? RH_OK : subproof(&c, size1, 0, size2, true);
    if (rc != RH_OK)
        return rh_fail(e, rc, "consistency proof %" PRIu64 " -> %" PRIu64 ": %s", size1, size2,
                       rh_err_name(rc));
    memcpy(out, &p, sizeof p);
    return RH_OK;
}

void rh_merkle_proof_refs(const rh_merkle_proof *p, rh_merkle_hashref *refs)
{
    for (size_t i = 0; i < p->n; i++) {
        refs[i].p = p->h[i];
        refs[i].len = HL;
    }
}

/* ---- verification ------------------------------------------------------------------------ */

static bool hash_ok(rh_merkle_hashref h)
{
    return h.p != NULL && h.len == HL;
}

static rh_err check_hashes(const char *what, rh_merkle_hashref a, rh_merkle_hashref b,
                           const rh_merkle_hashref *proof, size_t nproof, rh_error *e)
{
    if (!hash_ok(a) || !hash_ok(b))
        return rh_fail(e, RH_ELOG, "%s: a hash is %zu/%zu bytes, not %d", what, a.len, b.len, HL);
    if (nproof > RH_MERKLE_MAX_PROOF)
        return rh_fail(e, RH_ELOG, "%s: proof of %zu hashes, more than %d", what, nproof,
                       RH_MERKLE_MAX_PROOF);
    if (nproof > 0 && proof == NULL)
        return rh_fail(e, RH_EINVAL, "%s: no proof", what);
    for (size_t i = 0; i < nproof; i++)
        if (!hash_ok(proof[i]))
            return rh_fail(e, RH_ELOG, "%s: proof hash %zu is %zu bytes, not %d", what, i,
                           proof[i].len, HL);
    return RH_OK;
}

rh_err rh_merkle_verify_inclusion(uint64_t index, uint64_t size, rh_merkle_hashref leaf_hash,
                                  const rh_merkle_hashref *proof, size_t nproof,
                                  rh_merkle_hashref root, rh_error *e)
{
    rh_err rc = check_hashes("inclusion proof", leaf_hash, root, proof, nproof, e);
    if (rc != RH_OK)
        return rc;
    /* RFC 9162 2.1.3.2 step 1. */
    if (index >= size)
        return rh_fail(e, RH_ELOG, "inclusion proof: leaf %" PRIu64 " not in a tree of %" PRIu64,
                       index, size);
    uint64_t fn = index, sn = size - 1;
    uint8_t r[HL];
    memcpy(r, leaf_hash.p, HL);
    for (size_t i = 0; i < nproof; i++) {
        if (sn == 0) /* step 4a */
            return rh_fail(e, RH_ELOG, "inclusion proof: %zu hashes, too long", nproof);
        if ((fn & 1) || fn == sn) {
            rc = hash2(0x01, proof[i].p, HL, r, HL, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            rc = hash2(0x01, r, HL, proof[i].p, HL, r);
        }
        if (rc != RH_OK)
            return rh_fail(e, rc, "inclusion proof: hashing failed");
        fn >>= 1;
        sn >>= 1;
    }
    /* Step 5. */
    if (sn != 0)
        return rh_fail(e, RH_ELOG, "inclusion proof: %zu hashes, too short", nproof);
    if (!rh_ct_equal(r, root.p, HL))
        return rh_fail(e, RH_ELOG,
                       "inclusion proof: leaf %" PRIu64 " does not lead to the root of tree %" PRIu64,
                       index, size);
    return RH_OK;
}

rh_err rh_merkle_verify_consistency(uint64_t size1, uint64_t size2, rh_merkle_hashref root1,
                                    rh_merkle_hashref root2, const rh_merkle_hashref *proof,
                                    size_t nproof, rh_error *e)
{
    rh_err rc = check_hashes("consistency proof", root1, root2, proof, nproof, e);
    if (rc != RH_OK)
        return rc;
    if (size1 > size2)
        return rh_fail(e, RH_ELOG, "consistency proof: tree shrank from %" PRIu64 " to %" PRIu64,
                       size1, size2);
    if (size1 == size2) {
        if (nproof != 0)
            return rh_fail(e, RH_ELOG, "consistency proof: equal sizes need an empty proof");
        if (!rh_ct_equal(root1.p, root2.p, HL))
            return rh_fail(e, RH_ELOG, "consistency proof: two roots for tree size %" PRIu64,
                           size1);
        return RH_OK;
    }
    if (size1 == 0) {
        uint8_t empty[HL];
        rh_merkle_empty_root(empty);
        if (nproof != 0)
            return rh_fail(e, RH_ELOG, "consistency proof: from the empty tree needs no hashes");
        if (!rh_ct_equal(root1.p, empty, HL))
            return rh_fail(e, RH_ELOG, "consistency proof: root of the empty tree is wrong");
        return RH_OK;
    }
    /* RFC 9162 2.1.4.2 step 1. */
    if (nproof == 0)
        return rh_fail(e, RH_ELOG, "consistency proof %" PRIu64 " -> %" PRIu64 " is empty", size1,
                       size2);
    /* Step 2: when size1 is a power of 2, its root is the first proof element. */
    rh_merkle_hashref path[RH_MERKLE_MAX_PROOF + 1];
    size_t np = 0;
    if ((size1 & (size1 - 1)) == 0)
        path[np++] = root1;
    for (size_t i = 0; i < nproof; i++)
        path[np++] = proof[i];
    /* Steps 3-4. */
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    /* Step 5. */
    uint8_t fr[HL], sr[HL];
    memcpy(fr, path[0].p, HL);
    memcpy(sr, path[0].p, HL);
    /* Step 6. */
    for (size_t i = 1; i < np; i++) {
        const uint8_t *c = path[i].p;
        if (sn == 0)
            return rh_fail(e, RH_ELOG, "consistency proof %" PRIu64 " -> %" PRIu64 ": too long",
                           size1, size2);
        if ((fn & 1) || fn == sn) {
            if ((rc = hash2(0x01, c, HL, fr, HL, fr)) != RH_OK ||
                (rc = hash2(0x01, c, HL, sr, HL, sr)) != RH_OK)
                return rh_fail(e, rc, "consistency proof: hashing failed");
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            if ((rc = hash2(0x01, sr, HL, c, HL, sr)) != RH_OK)
                return rh_fail(e, rc, "consistency proof: hashing failed");
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* Step 7. */
    if (sn != 0)
        return rh_fail(e, RH_ELOG, "consistency proof %" PRIu64 " -> %" PRIu64 ": too short",
                       size1, size2);
    if (!rh_ct_equal(fr, root1.p, HL))
        return rh_fail(e, RH_ELOG,
                       "consistency proof %" PRIu64 " -> %" PRIu64 ": old root does not match",
                       size1, size2);
    if (!rh_ct_equal(sr, root2.p, HL))
        return rh_fail(e, RH_ELOG,
                       "consistency proof %" PRIu64 " -> %" PRIu64 ": new root does not match",
                       size1, size2);
    return RH_OK;
}

/* ---- C2SP tlog-tiles paths --------------------------------------------------------------- */

rh_err rh_tile_path(int level, uint64_t index, unsigned width, char *out, size_t cap)
{
    if (out == NULL || level > RH_TILE_MAX_LEVEL || width == 0 || width > RH_TILE_WIDTH)
        return RH_EINVAL;
    char buf[RH_TILE_PATH_MAX];
    size_t len = 0;
    int n = level < 0 ? snprintf(buf, sizeof buf, "tile/entries/")
                      : snprintf(buf, sizeof buf, "tile/%d/", level);
    if (n < 0)
        return RH_EINVAL;
    len = (size_t)n;
    /* Split index into 3-digit groups, most significant first. */
    unsigned groups[8];
    int ng = 0;
    uint64_t x = index;
    do {
        groups[ng++] = (unsigned)(x % 1000);
        x /= 1000;
    } while (x > 0);
    for (int i = ng - 1; i >= 0; i--) {
        n = snprintf(buf + len, sizeof buf - len, i > 0 ? "x%03u/" : "%03u", groups[i]);
        if (n < 0 || (size_t)n >= sizeof buf - len)
            return RH_EINVAL;
        len += (size_t)n;
    }
    if (width < RH_TILE_WIDTH) {
        n = snprintf(buf + len, sizeof buf - len, ".p/%u", width);
        if (n < 0 || (size_t)n >= sizeof buf - len)
            return RH_EINVAL;
        len += (size_t)n;
    }
    if (len + 1 > cap)
        return RH_ETOOBIG;
    memcpy(out, buf, len + 1);
    return RH_OK;
}

/* Decimal without leading zeros in [0, max]; advances *p. */
static bool parse_dec(const char **p, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return false;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

static bool parse_group(const char *s, unsigned *out)
{
    for (int i = 0; i < 3; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    *out = (unsigned)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
    return true;
}

rh_err rh_tile_path_parse(const char *path, int *level, uint64_t *index, unsigned *width)
{
    if (path == NULL || level == NULL || index == NULL || width == NULL)
        return RH_EINVAL;
    const char *s = path;
    int lv;
    if (strncmp(s, "tile/", 5) != 0)
        return RH_EPARSE;
    s += 5;
    if (strncmp(s, "entries/", 8) == 0) {
        lv = -1;
        s += 8;
    } else {
        uint64_t v;
        if (!parse_dec(&s, RH_TILE_MAX_LEVEL, &v) || *s != '/')
            return RH_EPARSE;
        lv = (int)v;
        s++;
    }
    uint64_t idx = 0;
    bool first = true;
    for (;;) {
        bool x = *s == 'x';
        unsigned g;
        if (x)
            s++;
        if (!parse_group(s, &g))
            return RH_EPARSE;
        s += 3;
        /* An 'x' group needs '/' after it; the last group has none. A leading x000 group is
         * a second spelling of the same index: refused. */
        if (x != (*s == '/') || (first && x && g == 0))
            return RH_EPARSE;
        if (idx > (UINT64_MAX - g) / 1000)
            return RH_EPARSE;
        idx = idx * 1000 + g;
        first = false;
        if (!x)
            break;
        s++;
    }
    unsigned w = RH_TILE_WIDTH;
    if (*s == '.') {
        if (strncmp(s, ".p/", 3) != 0)
            return RH_EPARSE;
        s += 3;
        uint64_t v;
        if (!parse_dec(&s, RH_TILE_WIDTH - 1, &v) || v == 0)
            return RH_EPARSE;
        w = (unsigned)v;
    }
    if (*s != '\0')
        return RH_EPARSE;
    *level = lv;
    *index = idx;
    *width = w;
    return RH_OK;
}

void rh_tile_count(uint64_t size, unsigned level, uint64_t *full, unsigned *partial_width)
{
    unsigned shift = RH_TILE_HEIGHT * level; /* leaves per hash at this level: 256^level */
    uint64_t hashes = shift >= 64 ? 0 : size >> shift;
    if (full != NULL)
        *full = hashes / RH_TILE_WIDTH;
    if (partial_width != NULL)
        *partial_width = (unsigned)(hashes % RH_TILE_WIDTH);
}
