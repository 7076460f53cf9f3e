/* state.h -- the client's state directory: trusted metadata as "<percent-encoded role>.json"
 * (the root as root.json), each written atomically (temp file, fsync, rename, fsync dir). */
#ifndef RH_STATE_H
#define RH_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "manifest/buf.h"
#include "manifest/rh_error.h"
#include "manifest/tpath.h"

/* Room for a state file name: encoded role plus ".json". */
#define RH_STATE_NAME_MAX (RH_ROLE_FILENAME_MAX + 5)

/* File name of role in the state directory: "root.json", "timestamp.json", "a%2Fb.json".
 * Returns RH_OK, RH_EPATH (role name not usable), RH_EINVAL (out too small). */
rh_err rh_state_filename(const char *role, char *out, size_t outsz)
    __attribute__((warn_unused_result));

/* Write p[0..n) as dir/name atomically: "dir/.name.tmp-XXXXXX", fsync, rename, fsync dir. The
 * temp file is removed on every failure path. Returns RH_OK or RH_EIO. */
rh_err rh_state_write(const char *dir, const char *name, const uint8_t *p, size_t n,
                      rh_error *e) __attribute__((warn_unused_result));

/* Read the file at path into out (appended), refusing more than max bytes. Returns RH_OK,
 * RH_ENOTFOUND (no such file), RH_ETOOBIG, RH_EIO, RH_ENOMEM. */
rh_err rh_state_read(const char *path, size_t max, rh_buf *out, rh_error *e)
    __attribute__((warn_unused_result));

#endif
