/* tlog.h -- the origin's transparency log writer (DESIGN 8): log entries naming each signed
 * metadata file, RFC 9162 hashing, C2SP tlog-tiles under <repo>/log/, a C2SP signed-note
 * checkpoint signed with the log key.
 *
 * Layout under <repo>/log/ (served as /log/):
 *   checkpoint                       signed note: "<origin>\n<size>\n<base64 root>\n" + signature
 *   tile/<L>/<N>                     full hash tiles (256 hashes of 32 bytes), never rewritten
 *   tile/<L>/<N>.p/<W>               partial hash tiles (W hashes), new files, never rewritten
 *   tile/entries/<N>[.p/<W>]         entry bundles: per entry a big-endian uint16 length + bytes
 * The checkpoint is written last: a file under tile/ that no checkpoint covers is an orphan of an
 * interrupted commit and is replaced by the next commit that reaches it.
 *
 * Log key: <keys>/online/log.pem (Ed25519 PKCS#8, 0600); its verifier key (C2SP vkey, name = the
 * log's origin line) is <keys>/log.pub, public, one line. The key name is the origin line. */
#ifndef RH_TLOG_H
#define RH_TLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/limits.h"
#include "manifest/merkle.h"
#include "manifest/rh_error.h"
#include "manifest/tlog_verify.h"

#define RH_TLOG_DIR          "log"      /* <repo>/log */
#define RH_TLOG_CHECKPOINT   "checkpoint"
#define RH_TLOG_KEY_FILE     "log.pem"  /* <keys>/online/log.pem */
#define RH_TLOG_PUB_FILE     "log.pub"  /* <keys>/log.pub */
#define RH_TLOG_MAX_ENTRY    4096       /* bytes of one log entry (C2SP allows 65535) */
#define RH_TLOG_MAX_SOURCE_REV 1024     /* bytes of a provenance source revision */
#define RH_TLOG_MAX_ENTRIES  ((uint64_t)1 << 32) /* entries in one log */
#define RH_TLOG_TILE_LEVELS  8          /* tile levels a 64-bit tree size can fill (256^8) */
/* An entry bundle: up to 256 entries with their 2-byte length prefixes. */
#define RH_TLOG_MAX_BUNDLE   ((size_t)RH_TILE_WIDTH * (2 + RH_TLOG_MAX_ENTRY))

/* One log entry: a signed metadata file (timestamps are not logged). The writer shares the
 * verifiers' struct and strict parser (manifest/tlog_verify.h, rh_log_entry_parse), so the
 * origin and every mirror, client and auditor read entries by the same rules. */
typedef rh_log_entry rh_tlog_entry;
_Static_assert(RH_TLOG_MAX_ENTRY == RH_LOGV_MAX_ENTRY, "one entry limit");
_Static_assert(RH_TLOG_MAX_SOURCE_REV == RH_LOGV_MAX_SOURCE_REV, "one source_rev limit");

/* The entry bytes: canonical JSON
 *   {"length":L,"provenance":{"build_recipe_sha256":"<hex>","source_rev":"<rev>"},
 *    "role":"<role>","sha256":"<hex>","time":"<YYYY-MM-DDTHH:MM:SSZ>","version":V}
 * with "provenance" (either or both members) and "time" only when present. Appends to out.
 * Returns RH_OK, RH_EINVAL (role "timestamp", empty or unsafe role, version 0, provenance on
 * root/snapshot, source_rev empty/too long/not UTF-8, time out of range), RH_ENOMEM. */
rh_err rh_tlog_entry_build(const rh_tlog_entry *en, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

/* The inverse is rh_log_entry_parse (manifest/tlog_verify.h): exactly what build gives. */

/* New log key: <keys>/online/log.pem (0600, the directory made 0700 if missing) and
 * <keys>/log.pub holding the vkey "<origin>+<id>+<base64>" and a newline (0644). Refuses to
 * replace an existing key (RH_EIO). vkey (optional) receives the vkey text.
 * Returns RH_OK, RH_EINVAL (bad origin name), RH_EIO, RH_ECRYPTO, RH_ENOMEM. */
rh_err rh_tlog_keygen(const char *keys_dir, const char *origin, rh_buf *vkey, rh_error *e)
    __attribute__((warn_unused_result));

/* The verifier key text of the log key at key_path under origin (appended to out). */
rh_err rh_tlog_vkey(const char *key_path, const char *origin, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

typedef struct rh_tlog rh_tlog;

/* Opens <repo>/log (created when missing) with the log key. When a checkpoint exists it must
 * verify under this key with this origin line, and the entry bundles must rebuild its root and
 * the stored hash tiles exactly (RH_ELOG otherwise). The caller serialises writers (the origin
 * holds the repository lock). Returns RH_OK, RH_ELOG, RH_EPARSE, RH_EIO, RH_ENOMEM, RH_EINVAL. */
rh_err rh_tlog_open(const char *repo, const char *origin, const char *key_path, rh_tlog **out,
                    rh_error *e) __attribute__((warn_unused_result));
/* Discards appends not committed. Accepts NULL. */
void rh_tlog_close(rh_tlog *log);

uint64_t rh_tlog_size(const rh_tlog *log);      /* entries, committed or not */
uint64_t rh_tlog_committed(const rh_tlog *log); /* entries the checkpoint covers */

/* Appends one entry (1..RH_TLOG_MAX_ENTRY bytes, a valid rh_tlog_entry encoding) in memory.
 * Returns RH_OK, RH_EINVAL (not an entry), RH_ETOOBIG (log full), RH_ENOMEM. */
rh_err rh_tlog_append(rh_tlog *log, const uint8_t *entry, size_t n, rh_error *e)
    __attribute__((warn_unused_result));

/* true when the log holds an entry for <version>.<role>.json; sha256 (optional) receives its
 * logged hash. */
bool rh_tlog_find(const rh_tlog *log, const char *role, uint64_t version, uint8_t sha256[32]);

/* Logs the signed metadata file <version>.<role>.json whose exact bytes are data: length,
 * sha256, time now, and for targets roles the provenance the file itself signs in
 * "x-rhine-provenance" (source_rev, build_recipe.sha256). A file already logged with the same
 * hash is not logged again (*added false); the same version with another hash is RH_ELOG.
 * Returns RH_OK, RH_ELOG, RH_EINVAL, RH_EPARSE (provenance malformed), RH_ETOOBIG, RH_ENOMEM. */
rh_err rh_tlog_log_metadata(rh_tlog *log, const char *role, uint64_t version,
                            const uint8_t *data, size_t len, int64_t now, bool *added,
                            rh_error *e) __attribute__((warn_unused_result));

/* Catch-up: logs every <version>.<role>.json of metadir (not timestamp.json) not yet logged,
 * roots first, then targets roles, then snapshots, each by increasing version. Run after every
 * operation, it also heals a crash between writing metadata and committing the log.
 * *nadded (optional) receives how many were logged. Returns as rh_tlog_log_metadata, RH_EIO. */
rh_err rh_tlog_sync_metadata(rh_tlog *log, const char *metadir, int64_t now, size_t *nadded,
                             rh_error *e) __attribute__((warn_unused_result));

/* Writes the tiles and entry bundles the appends completed (full and new partial tiles), then
 * the signed checkpoint last; each file via temp + fsync + rename. A no-op when nothing was
 * appended since the last commit (and a checkpoint exists). Returns RH_OK, RH_EIO, RH_ELOG (an
 * existing tile covered by the checkpoint differs), RH_ECRYPTO, RH_ENOMEM. */
rh_err rh_tlog_commit(rh_tlog *log, rh_error *e) __attribute__((warn_unused_result));

#endif
