/* quorum.h -- the client's transparency decisions (DESIGN 8, issue 7 part 3): checkpoints
 * collected from the mirrors grouped by text, verified witness cosignatures united per text, the
 * quorum choice, the merged note to keep, the split-view evidence, and whether a metadata file
 * about to be trusted is in the log. Pure: bytes in, decisions out; the I/O is in client.c. */
#ifndef RH_CLIENT_QUORUM_H
#define RH_CLIENT_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/note.h"
#include "manifest/rh_error.h"
#include "manifest/tlog_verify.h"

/* State directory file holding the last checkpoint the client accepted, with its cosignatures
 * (not "*.json": the metadata loader ignores it). */
#define RH_WIT_STATE_FILE "log.checkpoint"
/* State directory file with the entries of the stored checkpoint's tree (one bundle), so that
 * the next update fetches only the log's new tiles; kept while at most RH_WIT_ENTRIES_MAX
 * bytes, a cache checked against the stored checkpoint each time it is read. */
#define RH_WIT_ENTRIES_FILE "log.entries"
#define RH_WIT_ENTRIES_MAX ((size_t)64 << 20)
/* State directory file written when the log forked: the stored and the offered checkpoint. */
#define RH_WIT_EVIDENCE_FILE "log.evidence"
/* Longest mirror label kept in an observation (longer ones are cut in messages only). */
#define RH_WIT_MAX_LABEL 512

/* What one mirror showed at <base>/log/checkpoint. */
typedef struct rh_wit_obs {
    char label[RH_WIT_MAX_LABEL];
    rh_err err; /* RH_OK: a checkpoint signed by the log key; else why not */
    char msg[RH_ERRMSG_MAX]; /* the reason when err != RH_OK */
    size_t group; /* its checkpoint text (index into rh_wit.g) when err == RH_OK */
    uint64_t cosigned; /* bit i: witness i's cosignature line verified */
    uint64_t badsig; /* bit i: a line of witness i was present but did not verify */
} rh_wit_obs;

/* One checkpoint text and every verified cosignature any mirror showed for it. */
typedef struct rh_wit_group {
    uint8_t *text; /* the signed checkpoint text, final newline included */
    size_t textlen;
    uint64_t size;
    uint8_t root[32];
    char *logline; /* the log key's signature line, "— ...\n" */
    char *wline[RH_LOGV_MAX_WITNESSES]; /* first verified line of witness i, or NULL */
    uint64_t cosigned; /* union of the mirrors' verified witnesses */
    size_t nmirrors; /* mirrors that served this text */
} rh_wit_group;

typedef struct rh_wit {
    rh_log_keys keys;
    rh_wit_group *g;
    size_t ng;
    rh_wit_obs *obs;
    size_t nobs, capobs;
} rh_wit;

/* Checks keys for the client's use: the log key of type Ed25519 (0x01), 1..RH_LOGV_MAX_WITNESSES
 * witness keys of type tlog-cosignature/v1 (0x04), no witness twice (same name and key ID),
 * 1 <= quorum <= nwitnesses. Returns RH_OK or RH_EINVAL with the reason. */
rh_err rh_wit_keys_check(const rh_log_keys *keys, rh_error *e) __attribute__((warn_unused_result));

/* Start a collection under keys (copied; checked with rh_wit_keys_check). Returns RH_OK,
 * RH_EINVAL. rh_wit_cleanup frees everything and accepts a zeroed struct. */
rh_err rh_wit_init(rh_wit *w, const rh_log_keys *keys, rh_error *e)
    __attribute__((warn_unused_result));
void rh_wit_cleanup(rh_wit *w);

/* Record what the mirror named label served: the note bytes, or (fetch_err != NULL) why it
 * served none. A note that does not parse or is not signed by the log key is recorded as a
 * failure of that mirror (RH_EPARSE, RH_ESIG); otherwise each witness is checked alone: it
 * counts for this mirror when its first line verifies (later lines of a key that verified are
 * skipped, as in Go's note package; a failing first line is badsig), duplicates count once,
 * lines of unknown keys (name and key ID) are ignored, and the verified lines join the text's
 * group.
 * Returns RH_OK (the observation is recorded either way) or RH_ENOMEM. */
rh_err rh_wit_add(rh_wit *w, const char *label, const uint8_t *note, size_t len,
                  const rh_error *fetch_err) __attribute__((warn_unused_result));

/* Distinct witnesses of group gi. */
size_t rh_wit_count(const rh_wit *w, size_t gi);

/* The checkpoint to trust: among the groups cosigned by at least keys.quorum distinct
 * witnesses the largest tree; on equal sizes more witnesses, then the first one seen.
 * Returns true with *gi set, false when none reaches the quorum. */
bool rh_wit_choose(const rh_wit *w, size_t *gi);

/* Appends group gi as one signed note: its text, a blank line, the log's line, then one line
 * per witness that cosigned it (key order). Returns RH_OK, RH_ENOMEM, RH_ETOOBIG. */
rh_err rh_wit_note(const rh_wit *w, size_t gi, rh_buf *out) __attribute__((warn_unused_result));

/* The split-view evidence: "<label>: size N root <hex8> cosigned by a, b" (or "by no
 * witness", plus " (bad cosignature: c)") or "<label>: <reason>" per mirror, "; " between
 * them, NUL-terminated in out (cut to outsz). */
void rh_wit_evidence(const rh_wit *w, char *out, size_t outsz);

/* Inclusion (issue 7): RH_OK when log holds an entry for role at version whose length and
 * sha256 are those of p[0..n); else RH_ELOG "unlogged: <filename>: ..." (no entry, or the
 * entry names other bytes: both hashes in the message). */
rh_err rh_wit_included(const rh_log_view *log, const char *role, uint64_t version,
                       const char *filename, const uint8_t *p, size_t n, rh_error *e)
    __attribute__((warn_unused_result));

#endif
