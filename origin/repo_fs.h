/* repo_fs.h -- the origin's file system work: atomic writes, the source tree scan, streaming
 * compression of payloads into the targets tree, version discovery, the repository lock. */
#ifndef RH_REPO_FS_H
#define RH_REPO_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manifest/afile.h"
#include "manifest/buf.h"
#include "manifest/hash.h"
#include "manifest/rh_error.h"
#include "origin/origin_plan.h"

#define RH_ORIGIN_IO_CHUNK    (128u * 1024)  /* read buffer of the streaming paths */
#define RH_ORIGIN_MAX_FILES   1000000u       /* payload files in one source tree */
#define RH_ORIGIN_MAX_DEPTH   64             /* directory nesting of a source tree */


/* Durable writes and reads: manifest/afile.h (rh_file_write_atomic, rh_file_read, ...). */

/* Rename from -> to within one directory and fsync that directory. RH_EIO on failure. */
rh_err rh_fs_rename(const char *dir, const char *from, const char *to, rh_error *e)
    __attribute__((warn_unused_result));

/* Highest N of the files "N.<role>.json" in dir (0 when none). */
rh_err rh_fs_highest_version(const char *dir, const char *role, uint64_t *out, rh_error *e)
    __attribute__((warn_unused_result));

/* true when path does not exist or is an empty directory; RH_EIO when it is something else
 * that cannot be read. */
rh_err rh_fs_absent_or_empty(const char *path, bool *out, rh_error *e)
    __attribute__((warn_unused_result));

/* mkdir path with mode if missing (an existing directory is fine; chmod'ed to mode). */
rh_err rh_fs_mkdir(const char *path, mode_t mode, rh_error *e) __attribute__((warn_unused_result));

/* Take an exclusive lock on <repo>/.rhine-origin.lock (non-blocking: RH_EIO "locked" when
 * another rhine-origin holds it). *fd is closed by rh_fs_unlock. */
rh_err rh_fs_lock(const char *repo, int *fd, rh_error *e) __attribute__((warn_unused_result));
void rh_fs_unlock(int fd);

/* The payloads of a source tree. */
typedef struct rh_src_list {
    rh_src_file *files; /* sorted by relpath (bytewise) */
    size_t n, cap;
    char **skipped;     /* "<path>: <why>, skipped" for symlinks and special files */
    size_t nskipped;
} rh_src_list;

/* Walk root recursively: every regular file becomes an rh_src_file (path checked with
 * rh_origin_path_check: a bad name fails the whole scan with RH_EPATH, nothing is skipped
 * silently), its length and sha256 computed by streaming. Symlinks, sockets, FIFOs and devices
 * are listed in skipped. Returns RH_OK, RH_EPATH, RH_ETOOBIG, RH_EIO, RH_ENOMEM. */
rh_err rh_fs_scan_source(const char *root, rh_src_list *out, rh_error *e)
    __attribute__((warn_unused_result));
void rh_src_list_cleanup(rh_src_list *l);

/* What storing one payload produced. */
typedef struct rh_stored {
    uint64_t ulen, zlen;
    uint8_t usha[RH_SHA256_LEN], zsha[RH_SHA256_LEN];
    bool existed;       /* the content-addressed file was already there and was kept */
} rh_stored;

/* Stored files waiting to be made durable and put in place. rh_fs_store_target leaves each
 * payload in a temp file beside its final name; rh_store_batch_commit makes them all durable with
 * one syncfs(2), renames them, and syncs again for the renames and new directories: two syncs a
 * publish instead of an fsync of every file and of its directory (20,000 small files spent 22 s
 * of a 23 s publish waiting on 40,000 fsyncs on this VM's disk). No final name appears before its
 * bytes are durable, so a crash leaves only temp files, never a short file under a
 * content-addressed name. */
typedef struct rh_store_batch {
    int sfd;          /* the targets directory, opened first: syncfs(2) reports the write-back
                         errors of the file system from then on (Linux 5.8+) */
    char *dir;
    struct rh_store_pending {
        char *tmp;    /* DIR/.NAME.XXXXXX; its final name is DIR/<hex of zsha>.NAME */
        uint8_t zsha[RH_SHA256_LEN];
    } *v;             /* about 130 bytes a payload with its path: 9 MiB for 68,000 */
    size_t n, cap;
} rh_store_batch;

rh_err rh_store_batch_init(rh_store_batch *b, const char *targets_dir, rh_error *e)
    __attribute__((warn_unused_result));
/* Sync, rename every pending file into place, sync again. Returns RH_OK, RH_EIO. */
rh_err rh_store_batch_commit(rh_store_batch *b, rh_error *e) __attribute__((warn_unused_result));
/* Unlinks the temp files of what was not committed. */
void rh_store_batch_cleanup(rh_store_batch *b);

/* Remove the temp files ("." + name + ".XXXXXX"; stored names start with a hex digit) that an
 * interrupted publish left anywhere under targets_dir: a batch's payloads wait in temp files
 * until it is committed, so a crash may leave a whole release of them. Call with the repository
 * lock held. *removed counts them. Returns RH_OK, RH_EIO, RH_ENOMEM. */
rh_err rh_fs_remove_temps(const char *targets_dir, size_t *removed, rh_error *e)
    __attribute__((warn_unused_result));

/* Compress src_path (streaming, zstd at level) into b's targets directory, hashing the
 * uncompressed bytes while reading and the compressed bytes in the sink, through a temp file in
 * the target's directory that rh_store_batch_commit renames to
 * rh_target_stored_path(target_path, sha256(compressed)). When that file is already there with
 * the same length (content-addressed: the same bytes) it is kept and out->existed is set.
 * Memory is bounded by the zstd level, never by the payload. Returns RH_OK, RH_EIO, RH_ENOMEM,
 * RH_EINVAL (level). */
rh_err rh_fs_store_target(rh_store_batch *b, const char *src_path, const char *target_path,
                          int level, rh_stored *out, rh_error *e)
    __attribute__((warn_unused_result));

/* true when targets_dir/stored_rel is a regular file of exactly len bytes. */
bool rh_fs_stored_ok(const char *targets_dir, const char *stored_rel, uint64_t len);

#endif
