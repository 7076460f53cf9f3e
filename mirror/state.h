/* state.h -- the mirror's small persistent state (DATA/state.json): superseded files with the
 * time they stopped being referenced (grace-period GC), the last successful sync, and the
 * transparency log's last accepted checkpoint (witness). */
#ifndef RH_MIRROR_STATE_H
#define RH_MIRROR_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "manifest/rh_error.h"
#include "mirror/plan.h"

/* Largest state file read back (a superseded entry is about 100 bytes). */
#define RH_MIRROR_MAX_STATE_BYTES (64u * 1024 * 1024)

typedef struct rh_mirror_state {
    rh_plan_old *superseded; /* owned */
    size_t nsuperseded;
    int64_t last_success;    /* 0 = never */
    char *log_checkpoint;    /* the upstream's signed checkpoint note accepted last; NULL none */
    char *log_inconsistent;  /* evidence directory of an inconsistent checkpoint: the log is
                              * refused until an operator resets it; NULL = not refused */
} rh_mirror_state;

/* Read path; a missing file is an empty state. Returns RH_OK, RH_EIO, RH_EPARSE, RH_ETOOBIG,
 * RH_ENOMEM. out written only on success. */
rh_err rh_mirror_state_load(const char *path, rh_mirror_state *out, rh_error *e)
    __attribute__((warn_unused_result));

/* Write atomically (temporary file, fsync, rename, fsync of the directory).
 * Returns RH_OK, RH_EIO, RH_ENOMEM. */
rh_err rh_mirror_state_save(const char *path, const rh_mirror_state *s, rh_error *e)
    __attribute__((warn_unused_result));

void rh_mirror_state_cleanup(rh_mirror_state *s); /* accepts NULL */

#endif
