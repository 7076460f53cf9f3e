/* witness.h -- the mirror as a transparency-log witness (DESIGN 8): sync and verify the
 * upstream's log, refuse metadata the log does not hold, check each checkpoint against the last
 * one accepted, keep signed evidence of an inconsistent log, and cosign verified checkpoints
 * (C2SP tlog-cosignature) with a key that signs nothing else. */
#ifndef RH_MIRROR_WITNESS_H
#define RH_MIRROR_WITNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/keys.h"
#include "manifest/note.h"
#include "manifest/rh_error.h"
#include "manifest/tlog_verify.h"
#include "mirror/state.h"
#include "mirror/sync.h"
#include "net/fetch.h"

#define RH_WITNESS_EVIDENCE_DIR "evidence"   /* DATA/evidence/<when>-<n>/ */
#define RH_WITNESS_MAX_SHOWN    16           /* evidence directories listed in status */
#define RH_WITNESS_MAX_PATH     512          /* bytes of one evidence path in status */
#define RH_WITNESS_MAX_EVIDENCE 1000         /* evidence directories one data dir may hold */

/* ---- pure decisions ------------------------------------------------------------------------ */

/* TUF metadata <role> version <version> (filename as served) with exactly bytes p[0..n) must be
 * logged: an entry with the same role and version whose length and sha256 match.
 * Returns RH_OK; RH_ELOG "metadata/<filename>: not in the transparency log (...)" or
 * "metadata/<filename>: differs from the transparency log: ..." (the entry is named). */
rh_err rh_witness_check_logged(const rh_log_view *log, const char *role, uint64_t version,
                               const char *filename, const uint8_t *p, size_t n, rh_error *e)
    __attribute__((warn_unused_result));

/* The same, for a file already hashed: n bytes with sha256 h (a lean TUF engine keeps no bytes
 * of the top-level targets: the mirror hashes them as they are persisted). */
rh_err rh_witness_check_logged_sha256(const rh_log_view *log, const char *role, uint64_t version,
                                      const char *filename, size_t n, const uint8_t h[32],
                                      rh_error *e) __attribute__((warn_unused_result));

typedef enum rh_witness_verdict {
    RH_WITNESS_FIRST,        /* no checkpoint accepted before: trust on first use */
    RH_WITNESS_SAME,         /* the same tree as the last accepted checkpoint */
    RH_WITNESS_GREW,         /* an append-only extension (RFC 9162 consistency proof) */
    RH_WITNESS_INCONSISTENT, /* shrunk, forked or rewritten: both notes are evidence */
} rh_witness_verdict;

/* Judges the signed checkpoint cur (under keys->log only) against old (the last accepted note,
 * NULL/0 for none), reading hash tiles of cur's tree through src. A failed consistency proof of a
 * larger tree counts as inconsistent only after cur's whole tree verified from src (tiles that
 * merely fail to match their own checkpoint are an upstream fault, not evidence).
 * On RH_OK *verdict is set; for RH_WITNESS_INCONSISTENT the reason is in why (always filled).
 * Returns RH_OK, or the error that made cur unusable (RH_ESIG, RH_EPARSE, RH_ELOG, RH_ENET,
 * RH_ENOTFOUND, RH_ETOOBIG, RH_ENOMEM); never RH_OK with a verdict that was not proven. */
rh_err rh_witness_judge(const rh_log_src *src, const rh_note_key *logkey, const uint8_t *old,
                        size_t oldlen, const uint8_t *cur, size_t curlen,
                        rh_witness_verdict *verdict, rh_error *why, rh_error *e)
    __attribute__((warn_unused_result));

/* The note to serve: note's text and signature lines, except any line of self's (name, key ID),
 * plus self's cosignature/v1 line by sk at time ts (replacing an older one of its own). Other
 * lines (the log's signature, upstream witnesses) keep their order and bytes. Appends to out.
 * Returns RH_OK, RH_EPARSE (note malformed), RH_EINVAL (self is not a cosignature/v1 key of
 * sk), RH_ECRYPTO, RH_ENOMEM, RH_ETOOBIG (the note would pass RH_NOTE_MAX_BYTES). */
rh_err rh_witness_cosign_note(const uint8_t *note, size_t len, const rh_note_key *self,
                              const rh_privkey *sk, uint64_t ts, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

/* true when note carries a line of self's (name, key ID). */
bool rh_witness_note_has(const uint8_t *note, size_t len, const rh_note_key *self);

/* ---- files --------------------------------------------------------------------------------- */

/* New witness key: path (PKCS#8 PEM, 0600) and path.pub holding the vkey of type 0x04
 * (tlog-cosignature/v1) under name and a newline. Refuses to replace either file (RH_EIO
 * "exists"). vkey (optional) receives the vkey text. Returns RH_OK, RH_EINVAL (bad name),
 * RH_EIO, RH_ECRYPTO, RH_ENOMEM. */
rh_err rh_witness_keygen(const char *name, const char *path, rh_buf *vkey, rh_error *e)
    __attribute__((warn_unused_result));

/* Loads the witness key at path as the cosigning key named name: *sk (caller frees) and its
 * cosignature/v1 note key. Returns RH_OK, RH_EIO, RH_EPARSE, RH_EINVAL (bad name), RH_ENOMEM. */
rh_err rh_witness_key_load(const char *path, const char *name, rh_privkey **sk, rh_note_key *self,
                           rh_error *e) __attribute__((warn_unused_result));

/* Keeps old and cur as evidence in a new directory DATA/evidence/<UTC time>[-k]/ holding
 * old-checkpoint, new-checkpoint and reason (why and the upstream), each fsynced; an existing
 * directory is never reused or overwritten. dir (dirsz bytes) receives the path.
 * Returns RH_OK, RH_EIO, RH_ETOOBIG. */
rh_err rh_witness_evidence_write(const char *data, const uint8_t *old, size_t oldlen,
                                 const uint8_t *cur, size_t curlen, const char *upstream,
                                 const char *why, int64_t now, char *dir, size_t dirsz,
                                 rh_error *e) __attribute__((warn_unused_result));

/* ---- the log part of a sync round ---------------------------------------------------------- */

typedef struct rh_witness_opts {
    const char *log_key;  /* the log's vkey or a file holding it (rh_config_vkey); NULL: no log */
    const char *key;      /* witness private key path; NULL: verify but do not cosign */
    const char *name;     /* witness name (required with key) */
} rh_witness_opts;

/* What the served log looks like (from DATA/state.json and DATA/evidence/). */
typedef struct rh_log_status {
    bool has_checkpoint;  /* a checkpoint was accepted */
    uint64_t size;
    uint8_t root[32];
    bool inconsistent;    /* evidence kept; the log is refused until `log-reset` */
    char marker[RH_WITNESS_MAX_PATH]; /* the evidence directory that set inconsistent */
    size_t nevidence;     /* evidence directories found (at most RH_WITNESS_MAX_SHOWN listed) */
    char evidence[RH_WITNESS_MAX_SHOWN][RH_WITNESS_MAX_PATH];
} rh_log_status;

/* What one round did with the log. */
typedef struct rh_log_round {
    bool checked;         /* the log was read and verified this round */
    bool unlogged;        /* a metadata file was refused: not in the log or different */
    bool inconsistent;    /* this round found an inconsistent checkpoint (evidence written) */
    bool refused;         /* refused at once: evidence from an earlier round */
    bool cosigned;        /* a new cosignature was published */
    uint64_t bytes, objects; /* log files fetched */
} rh_log_round;

/* One sync round (rh_mirror_sync_once) that also mirrors and witnesses the log when
 * w->log_key is set (w NULL or w->log_key NULL: exactly rh_mirror_sync_once). After a verified
 * TUF refresh: the upstream's log/checkpoint must verify under the log key and be consistent
 * with the checkpoint accepted last (DATA/state.json); the whole log is read (full tiles reused
 * from public/log, new files staged) and must rebuild the checkpoint; every metadata file of
 * the new version must be logged with its exact bytes. Publishing puts log tiles and bundles,
 * then log/checkpoint (cosigned when w->key is set), before any metadata. An inconsistent
 * checkpoint publishes nothing, writes evidence and refuses the log from then on (RH_ELOG).
 * A witness also archives every metadata file the log names (fetched from the upstream when
 * public/ lacks it, bounded by and checked against its entry) and never collects metadata, so
 * auditors can replay the whole history from any witness.
 * lr (optional) reports the log part. Returns as rh_mirror_sync_once, plus RH_ELOG. */
rh_err rh_mirror_sync_round(const rh_sync_opts *o, const rh_witness_opts *w, rh_sync_result *res,
                            rh_log_round *lr, rh_error *e) __attribute__((warn_unused_result));

/* The log status of data (never fails: missing files give an empty status). */
void rh_witness_status(const char *data, rh_log_status *out);

/* Operator action after an inconsistency was investigated: forgets the accepted checkpoint and
 * the refusal (DATA/state.json, under DATA/.lock); evidence stays, and the log served so far
 * (DATA/public/log) joins it as DATA/evidence/<when>-reset/served-log. The next round accepts
 * the upstream's current log as on first use. Returns RH_OK, RH_EIO (locked, unwritable),
 * RH_EPARSE, RH_ENOMEM. */
rh_err rh_witness_log_reset(const char *data, rh_error *e) __attribute__((warn_unused_result));

/* ---- used by the sync round (sync.c) ------------------------------------------------------- */

/* The log as one round sees it. */
typedef struct rh_witness_run {
    rh_note_key logkey;
    bool cosign;
    rh_note_key self;
    rh_privkey *sk;
    rh_buf cur;            /* the upstream's checkpoint note */
    rh_log_view *view;     /* the verified log */
    bool rewrite_cp;       /* the served checkpoint must be (re)written */
} rh_witness_run;

/* Loads keys for a round. Returns RH_OK, RH_ECONFIG (bad log_key/witness key), RH_ENOMEM. */
rh_err rh_witness_run_init(rh_witness_run *r, const rh_witness_opts *w, rh_error *e)
    __attribute__((warn_unused_result));
void rh_witness_run_cleanup(rh_witness_run *r); /* accepts NULL */

/* Fetches, judges and reads the log from upstream through h (see rh_mirror_sync_round); on an
 * inconsistency writes the evidence and sets st->log_inconsistent. Stages new log files under
 * DATA/staging/log/. Returns RH_OK or RH_ELOG / the fetch or verification error. */
rh_err rh_witness_run_sync(rh_witness_run *r, rh_http *h, const char *upstream, const char *data,
                           rh_mirror_state *st, int64_t now, rh_log_round *lr, rh_error *e)
    __attribute__((warn_unused_result));

/* The served checkpoint text (cosigned when configured) for the staged log into out. */
rh_err rh_witness_run_note(rh_witness_run *r, int64_t now, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

#endif
