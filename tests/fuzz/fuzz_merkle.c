/* fuzz_merkle.c -- libFuzzer target: the RFC 9162 proof verifiers, which decide whether a
 * mirror's log is the one the origin signed (witnesses, quorum clients, rhine-audit). The first
 * byte picks a mode:
 *   trees: two logs of up to 300 leaves that differ in one leaf (a fork). The input claims an
 *          inclusion or a consistency (sizes, whose leaf, whose roots) and edits the honest
 *          proof: drops, inserts, swaps, replaces elements with true subtree hashes of either
 *          log, flips bits, changes a hash's length. Checked: a verifier accepts only a true
 *          claim, and then only the honest proof of the log that made the root (a valid proof
 *          is unique); an unedited honest proof of a true claim is always accepted.
 *   raw:   any sizes up to 2^64 - 1 and any hashes from the input. Acceptance needs a SHA-256
 *          preimage, so only the claims true without hashing may pass: equal sizes with equal
 *          roots, the empty tree, a one-leaf tree whose root is its leaf.
 * Every refusal is RH_ELOG with a message; nothing else may come back. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HL RH_MERKLE_HASH_LEN
#define MAXN 300u
#define LEVELS 9u /* 2^8 < MAXN < 2^9: subtrees of levels 0..8 */
#define MAXP (RH_MERKLE_MAX_PROOF + 2) /* edits may go past the verifiers' bound */

typedef struct cursor {
    const uint8_t *p;
    size_t n;
} cursor;

static uint8_t take(cursor *c)
{
    if (c->n == 0)
        return 0;
    c->n--;
    return *c->p++;
}

static uint64_t take_u64(cursor *c, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | take(c);
    return v;
}

/* One log: the hash of every full subtree, as rh_merkle_tree_append reports them, and the root
 * of every prefix. */
typedef struct logtree {
    uint8_t node[LEVELS][MAXN][HL];
    uint8_t root[MAXN + 1][HL];
} logtree;

static logtree A, B;

static rh_err on_node(void *arg, unsigned level, uint64_t index, const uint8_t hash[HL])
{
    logtree *l = arg;
    if (level >= LEVELS || index >= MAXN)
        abort();
    memcpy(l->node[level][index], hash, HL);
    return RH_OK;
}

static rh_err get_node(void *arg, unsigned level, uint64_t index, uint8_t out[HL])
{
    logtree *l = arg;
    if (level >= LEVELS || index >= MAXN)
        return RH_ENOTFOUND;
    memcpy(out, l->node[level][index], HL);
    return RH_OK;
}

static void build(logtree *l, uint64_t n, uint64_t fork, uint8_t seed, bool forked)
{
    rh_merkle_tree t;
    rh_merkle_tree_init(&t);
    rh_merkle_empty_root(l->root[0]);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t d[3] = {(uint8_t)i, (uint8_t)(i >> 8), seed};
        uint8_t leaf[HL];
        if (forked && i == fork)
            d[2] ^= 0x80;
        if (rh_merkle_leaf_hash(d, sizeof d, leaf) != RH_OK ||
            rh_merkle_tree_append(&t, leaf, on_node, l) != RH_OK ||
            rh_merkle_tree_root(&t, l->root[i + 1]) != RH_OK)
            abort();
    }
}

/* A proof as a verifier receives it: hashes of any length. */
typedef struct edited {
    size_t n;
    uint8_t h[MAXP][HL + 1];
    size_t len[MAXP];
} edited;

static void from_proof(edited *x, const rh_merkle_proof *p)
{
    x->n = p->n;
    for (size_t i = 0; i < p->n; i++) {
        memcpy(x->h[i], p->h[i], HL);
        x->len[i] = HL;
    }
}

static bool same(const edited *x, const rh_merkle_proof *p)
{
    if (x->n != p->n)
        return false;
    for (size_t i = 0; i < p->n; i++)
        if (x->len[i] != HL || memcmp(x->h[i], p->h[i], HL) != 0)
            return false;
    return true;
}

static void edit(edited *x, cursor *c, uint64_t n)
{
    unsigned edits = take(c) % 5;
    for (unsigned k = 0; k < edits; k++) {
        uint8_t op = take(c) % 6;
        size_t pos = x->n > 0 ? take(c) % x->n : 0;
        if (op == 0 && x->n > 0) { /* drop */
            memmove(x->h[pos], x->h[pos + 1], (x->n - pos - 1) * sizeof x->h[0]);
            memmove(&x->len[pos], &x->len[pos + 1], (x->n - pos - 1) * sizeof x->len[0]);
            x->n--;
        } else if (op == 1 || op == 3) { /* insert or replace with a true subtree hash */
            logtree *l = take(c) & 1 ? &B : &A;
            unsigned level = take(c) % LEVELS;
            uint64_t index = take_u64(c, 2) % MAXN;
            if (((index + 1) << level) > n)
                continue; /* no such full subtree */
            if (op == 1) {
                if (x->n == MAXP)
                    continue;
                pos = x->n > 0 ? pos + (take(c) & 1) : 0;
                memmove(x->h[pos + 1], x->h[pos], (x->n - pos) * sizeof x->h[0]);
                memmove(&x->len[pos + 1], &x->len[pos], (x->n - pos) * sizeof x->len[0]);
                x->n++;
            } else if (x->n == 0) {
                continue;
            }
            memcpy(x->h[pos], l->node[level][index], HL);
            x->len[pos] = HL;
        } else if (op == 2 && x->n > 0) { /* swap */
            size_t q = take(c) % x->n;
            uint8_t t[HL + 1];
            memcpy(t, x->h[pos], sizeof t);
            memcpy(x->h[pos], x->h[q], sizeof t);
            memcpy(x->h[q], t, sizeof t);
            size_t tl = x->len[pos];
            x->len[pos] = x->len[q];
            x->len[q] = tl;
        } else if (op == 4 && x->n > 0) { /* flip a bit */
            uint8_t b = take(c);
            x->h[pos][b % HL] ^= (uint8_t)(1u << (b >> 5));
        } else if (op == 5 && x->n > 0) { /* a hash one byte short or long */
            x->len[pos] = take(c) & 1 ? HL + 1 : HL - 1;
        }
    }
}

static void refs_of(const edited *x, rh_merkle_hashref *r)
{
    for (size_t i = 0; i < x->n; i++) {
        r[i].p = x->h[i];
        r[i].len = x->len[i];
    }
}

static void check_refusal(rh_err rc, const rh_error *e)
{
    if (rc != RH_ELOG || e->msg[0] == '\0')
        abort();
}

static void trees(cursor *c)
{
    uint64_t n = 1 + take_u64(c, 2) % MAXN;
    uint64_t fork = take_u64(c, 2) % n;
    uint8_t seed = take(c);
    build(&A, n, fork, seed, false);
    build(&B, n, fork, seed, true);
    uint8_t who = take(c);
    logtree *x = who & 1 ? &B : &A; /* the leaf's or the first root's log */
    logtree *y = who & 2 ? &B : &A; /* the (second) root's log, and the honest proof's */
    bool consistency = who & 4;
    uint64_t s1 = take_u64(c, 2) % (n + 1), s2 = take_u64(c, 2) % (n + 1);

    rh_merkle_proof honest = {0};
    bool truth;
    rh_error e;
    rh_error_clear(&e);
    if (consistency) {
        /* True when the first tree is a prefix of the second: the logs agree on the first s1
         * leaves (the fork is not among them, or both roots are the same log's). */
        truth = s1 <= s2 && (x == y || s1 <= fork);
        if (s1 > 0 && s1 <= s2 &&
            rh_merkle_consistency_proof(s1, s2, get_node, y, &honest, &e) != RH_OK)
            abort();
    } else {
        truth = s1 < s2 && (x == y || s1 != fork);
        if (s1 < s2 && rh_merkle_inclusion_proof(s1, s2, get_node, y, &honest, &e) != RH_OK)
            abort();
    }
    edited p;
    from_proof(&p, &honest);
    edit(&p, c, n);
    rh_merkle_hashref refs[MAXP];
    refs_of(&p, refs);
    rh_error_clear(&e);
    rh_err rc;
    if (consistency) {
        rh_merkle_hashref r1 = {x->root[s1], HL}, r2 = {y->root[s2], HL};
        rc = rh_merkle_verify_consistency(s1, s2, r1, r2, refs, p.n, &e);
    } else {
        /* The leaf past the end of the log: any hash; the claim is false anyway. */
        uint8_t leaf[HL];
        if (s1 < n)
            memcpy(leaf, x->node[0][s1], HL);
        else
            memset(leaf, 0xa5, HL);
        rh_merkle_hashref lh = {leaf, HL}, r = {y->root[s2], HL};
        rc = rh_merkle_verify_inclusion(s1, s2, lh, refs, p.n, r, &e);
    }
    bool honest_proof = same(&p, &honest);
    if (rc == RH_OK && !(truth && honest_proof))
        abort(); /* a false claim, or a second valid proof */
    if (rc != RH_OK) {
        check_refusal(rc, &e);
        if (truth && honest_proof)
            abort(); /* the honest proof of a true claim refused */
    }
}

static void raw(cursor *c)
{
    bool consistency = take(c) & 1;
    uint64_t s1 = take_u64(c, 8), s2 = take_u64(c, 8);
    uint8_t h1[HL], h2[HL];
    for (size_t i = 0; i < HL; i++)
        h1[i] = take(c);
    bool equal = take(c) & 1;
    for (size_t i = 0; i < HL; i++)
        h2[i] = equal ? h1[i] : take(c);
    edited p;
    p.n = take(c) % (MAXP + 1);
    for (size_t i = 0; i < p.n; i++) {
        for (size_t j = 0; j < HL; j++)
            p.h[i][j] = take(c);
        p.len[i] = HL;
    }
    rh_merkle_hashref refs[MAXP];
    refs_of(&p, refs);
    rh_merkle_hashref a = {h1, HL}, b = {h2, HL};
    rh_error e;
    rh_error_clear(&e);
    uint8_t empty[HL];
    rh_merkle_empty_root(empty);
    rh_err rc;
    bool trivial;
    if (consistency) {
        rc = rh_merkle_verify_consistency(s1, s2, a, b, refs, p.n, &e);
        trivial = p.n == 0 && ((s1 == s2 && memcmp(h1, h2, HL) == 0) ||
                               (s1 == 0 && memcmp(h1, empty, HL) == 0));
    } else {
        rc = rh_merkle_verify_inclusion(s1, s2, a, refs, p.n, b, &e);
        trivial = p.n == 0 && s1 == 0 && s2 == 1 && memcmp(h1, h2, HL) == 0;
    }
    if (rc == RH_OK && !trivial)
        abort();
    if (rc != RH_OK) {
        check_refusal(rc, &e);
        if (trivial)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor c = {data, size};
    if (take(&c) & 1)
        raw(&c);
    else
        trees(&c);
    return 0;
}
