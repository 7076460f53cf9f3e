/* merkle.h -- RFC 9162 Merkle tree hashing, an append-only compact tree, inclusion and
 * consistency proofs, and C2SP tlog-tiles paths. Pure: no I/O; stored hashes come through a
 * caller's callback. */
#ifndef RH_MERKLE_H
#define RH_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/rh_error.h"

#define RH_MERKLE_HASH_LEN 32    /* SHA-256 */
#define RH_MERKLE_MAX_HEIGHT 64  /* a tree of at most 2^64 - 2 leaves */
#define RH_MERKLE_MAX_PROOF 66   /* hashes in any inclusion or consistency proof of such a tree */
#define RH_TILE_HEIGHT 8         /* C2SP tlog-tiles: a tile is a subtree of height 8 */
#define RH_TILE_WIDTH 256        /* hashes in a full tile */
#define RH_TILE_MAX_LEVEL 63     /* C2SP tlog-tiles: <L> is 0..63 */
#define RH_TILE_PATH_MAX 96      /* bytes of the longest tile path, NUL included */

/* RFC 9162 2.1.1: leaf hash = SHA-256(0x00 || data). RH_OK or RH_ECRYPTO. */
rh_err rh_merkle_leaf_hash(const void *data, size_t len, uint8_t out[RH_MERKLE_HASH_LEN]);
/* RFC 9162 2.1.1: node hash = SHA-256(0x01 || left || right). RH_OK or RH_ECRYPTO. */
rh_err rh_merkle_node_hash(const uint8_t left[RH_MERKLE_HASH_LEN],
                           const uint8_t right[RH_MERKLE_HASH_LEN],
                           uint8_t out[RH_MERKLE_HASH_LEN]);
/* RFC 9162 2.1.1: the root of the empty tree, SHA-256 of the empty string. */
void rh_merkle_empty_root(uint8_t out[RH_MERKLE_HASH_LEN]);

/* Called for every node an append completes: the leaf (level 0) and each full subtree it closes.
 * (level, index) names the subtree of leaves [index * 2^level, (index + 1) * 2^level).
 * A non-OK return aborts the append (the tree is left unchanged). */
typedef rh_err (*rh_merkle_node_fn)(void *arg, unsigned level, uint64_t index,
                                    const uint8_t hash[RH_MERKLE_HASH_LEN]);
/* Returns the stored hash of the full subtree (level, index); RH_ENOTFOUND or any error aborts. */
typedef rh_err (*rh_merkle_get_fn)(void *arg, unsigned level, uint64_t index,
                                   uint8_t out[RH_MERKLE_HASH_LEN]);

/* An append-only tree as its compact range: the roots of the perfect subtrees that the binary
 * decomposition of size gives, largest (leftmost) first. Appends are O(log n), no allocation. */
typedef struct rh_merkle_tree {
    uint64_t size;
    unsigned n; /* entries of stack in use: popcount(size) */
    uint8_t stack[RH_MERKLE_MAX_HEIGHT][RH_MERKLE_HASH_LEN];
} rh_merkle_tree;

void rh_merkle_tree_init(rh_merkle_tree *t); /* the empty tree */
/* Appends one leaf hash; calls fn (may be NULL) for the leaf and every completed subtree, in
 * increasing level. Returns RH_OK, RH_ETOOBIG (tree full), or fn's error (tree unchanged). */
rh_err rh_merkle_tree_append(rh_merkle_tree *t, const uint8_t leaf_hash[RH_MERKLE_HASH_LEN],
                             rh_merkle_node_fn fn, void *arg);
/* RFC 9162 2.1.1 MTH of the whole tree (the empty root when size is 0). RH_OK or RH_ECRYPTO. */
rh_err rh_merkle_tree_root(const rh_merkle_tree *t, uint8_t out[RH_MERKLE_HASH_LEN]);
/* Rebuilds the compact range of a tree of size leaves from stored subtree hashes (a log that
 * restarts). *t is written only on success. Returns RH_OK, RH_ETOOBIG, or get's error. */
rh_err rh_merkle_tree_restore(rh_merkle_tree *t, uint64_t size, rh_merkle_get_fn get, void *arg);

/* MTH(D[start:end]) from stored full-subtree hashes; start < end. Returns RH_OK, RH_EINVAL,
 * RH_ECRYPTO or get's error. */
rh_err rh_merkle_range_root(uint64_t start, uint64_t end, rh_merkle_get_fn get, void *arg,
                            uint8_t out[RH_MERKLE_HASH_LEN]);

typedef struct rh_merkle_proof {
    size_t n;
    uint8_t h[RH_MERKLE_MAX_PROOF][RH_MERKLE_HASH_LEN];
} rh_merkle_proof;

/* RFC 9162 2.1.3.1: the inclusion proof of leaf index in the tree of size leaves, index < size.
 * *out written only on success. Returns RH_OK, RH_EINVAL, RH_ECRYPTO or get's error. */
rh_err rh_merkle_inclusion_proof(uint64_t index, uint64_t size, rh_merkle_get_fn get, void *arg,
                                 rh_merkle_proof *out, rh_error *e)
    __attribute__((warn_unused_result));
/* RFC 9162 2.1.4.1: the consistency proof between the trees of size1 and size2 leaves,
 * 0 < size1 <= size2 (empty when equal). Returns as above. */
rh_err rh_merkle_consistency_proof(uint64_t size1, uint64_t size2, rh_merkle_get_fn get,
                                   void *arg, rh_merkle_proof *out, rh_error *e)
    __attribute__((warn_unused_result));

/* A hash as received (from JSON, a tile, a checkpoint): any length; the verifiers refuse every
 * hash that is not exactly RH_MERKLE_HASH_LEN bytes. */
typedef struct rh_merkle_hashref {
    const uint8_t *p;
    size_t len;
} rh_merkle_hashref;

/* refs[i] points into p; refs must hold p->n entries. */
void rh_merkle_proof_refs(const rh_merkle_proof *p, rh_merkle_hashref *refs);

/* RFC 9162 2.1.3.2: RH_OK when proof shows leaf_hash at index in the tree of size leaves whose
 * root is root; RH_ELOG (with the reason) otherwise, including any hash that is not 32 bytes
 * and proofs longer than RH_MERKLE_MAX_PROOF. */
rh_err rh_merkle_verify_inclusion(uint64_t index, uint64_t size, rh_merkle_hashref leaf_hash,
                                  const rh_merkle_hashref *proof, size_t nproof,
                                  rh_merkle_hashref root, rh_error *e)
    __attribute__((warn_unused_result));
/* RFC 9162 2.1.4.2: RH_OK when proof shows the tree (size1, root1) is a prefix of (size2, root2);
 * RH_ELOG otherwise. Equal sizes need an empty proof and equal roots; size1 = 0 needs an empty
 * proof and root1 = the empty root (every tree extends the empty tree). */
rh_err rh_merkle_verify_consistency(uint64_t size1, uint64_t size2, rh_merkle_hashref root1,
                                    rh_merkle_hashref root2, const rh_merkle_hashref *proof,
                                    size_t nproof, rh_error *e) __attribute__((warn_unused_result));

/* C2SP tlog-tiles: "tile/<L>/<N>[.p/<W>]", or "tile/entries/<N>[.p/<W>]" when level < 0.
 * <N> in zero-padded 3-digit elements, all but the last prefixed with 'x' (1234067 ->
 * x001/x234/067); width RH_TILE_WIDTH means a full tile (no suffix), 1..255 a partial one.
 * Writes at most cap bytes with NUL. Returns RH_OK, RH_EINVAL (level > 63, width 0 or > 256),
 * RH_ETOOBIG (cap too small). */
rh_err rh_tile_path(int level, uint64_t index, unsigned width, char *out, size_t cap);
/* Strict inverse of rh_tile_path (no leading zeros in L or W, exact 3-digit groups, no excess
 * 'x000' groups): *level is -1 for entry bundles. Returns RH_OK or RH_EPARSE. */
rh_err rh_tile_path_parse(const char *path, int *level, uint64_t *index, unsigned *width);
/* Tiles of a level for a tree of size leaves: *full full tiles, then one partial tile of
 * *partial_width hashes when that is not 0 (C2SP tlog-tiles "Partial Tiles"). */
void rh_tile_count(uint64_t size, unsigned level, uint64_t *full, unsigned *partial_width);

#endif
