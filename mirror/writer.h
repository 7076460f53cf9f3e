/* writer.h -- the downloader's disk writes, done on a few threads so that the download loop
 * does not wait for each one (it waits when a queue is full: a disk slower than the network
 * holds the download back).
 *
 * Each thread (a lane) runs its queue in order, and every op names a descriptor whose lane is
 * fd % lanes: the writes of one file happen in the order given and its close comes last, also
 * when the descriptor number is reused by the next file.
 *
 * A write to a descriptor opened with O_DIRECT goes from the buffer to the device: the caller
 * sets O_DIRECT on large staging files, whose bytes must reach the disk before they are
 * published anyway, and the page cache then never copies them (on the VM this was measured
 * on, the copy into fresh page-cache pages was 40% of a 1 GiB sync). The part of a write that
 * is not a whole number of RH_WRITER_ALIGN blocks at an aligned offset from an aligned buffer,
 * and any write that the file system refuses to do direct (EINVAL), is written through the
 * page cache instead: the descriptor's O_DIRECT is cleared and the bytes are the same.
 *
 * A failed write is kept as the writer's error (the first one, naming the file); later writes,
 * to any file, are then skipped so that each staging file stays a prefix of what was sent, and
 * closes still happen. */
#ifndef RH_MIRROR_WRITER_H
#define RH_MIRROR_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RH_WRITER_ALIGN 4096u /* offset, length and address alignment of direct writes */

typedef struct rh_writer rh_writer;

/* Gives a buffer back once its bytes are written (or skipped); runs on a lane's thread. */
typedef void (*rh_writer_release_fn)(void *ctx, uint8_t *buf);

typedef struct rh_writer_stats {
    uint64_t direct;   /* bytes written with O_DIRECT */
    uint64_t buffered; /* bytes written through the page cache */
} rh_writer_stats;

/* lanes threads, each with a queue of at most depth ops (a full queue makes the caller wait:
 * a disk slower than the network holds the download back). When no thread can be started
 * (or lanes is 0), every op is done inline by the caller, with the same results. NULL only
 * when out of memory. */
rh_writer *rh_writer_new(size_t lanes, size_t depth, rh_writer_release_fn release, void *ctx);

/* Write buf[0..len) at offset off of fd, then release buf (when release is set). name (kept
 * until rh_writer_free) names the file in the error. */
void rh_writer_write(rh_writer *w, int fd, uint8_t *buf, size_t len, uint64_t off,
                     const char *name);

/* The same for bytes the caller cannot keep: the writer copies them first (into memory it
 * frees itself, not released). Returns false when out of memory (nothing queued). */
bool rh_writer_write_copy(rh_writer *w, int fd, const uint8_t *p, size_t len, uint64_t off,
                          const char *name) __attribute__((warn_unused_result));

/* Take ownership of fd: after what is queued for it, close it; with writeback, start the
 * writeback of what went through the page cache first (SYNC_FILE_RANGE_WRITE), so that a large
 * file written through it is on its way to the disk while the download goes on. (Each call
 * costs a request to the device, which on a VM is an exit to the host: not worth it for a
 * small file or a direct file's last block, which the caller's final syncfs(2) writes back in
 * one batch.) Durability comes from that syncfs(2), after rh_writer_free. */
void rh_writer_close(rh_writer *w, int fd, bool writeback);

/* Wait until every op queued so far for fd's lane is done: the caller may then read, truncate
 * or close fd itself. */
void rh_writer_wait(rh_writer *w, int fd);

/* Whether a write failed so far. Safe to call while the lanes run. */
bool rh_writer_failed(rh_writer *w);

/* Finish every queued op, stop the threads and free w (NULL is fine: false). Adds the byte
 * counts to stats (may be NULL). Returns whether a write failed, with the first failure's
 * message ("staging file NAME: write: REASON") in msg (cap bytes; msg may be NULL). */
bool rh_writer_free(rh_writer *w, rh_writer_stats *stats, char *msg, size_t cap);

#endif
