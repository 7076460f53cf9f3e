/* daemon.h -- rhine-mirror as a daemon: serves DATA/public with the shared server, syncs in a
 * worker thread on push, poll and start-up, reports /metrics and /.well-known/rhine/status. */
#ifndef RH_MIRROR_DAEMON_H
#define RH_MIRROR_DAEMON_H

#include "manifest/config.h"
#include "manifest/rh_error.h"

/* Rebuild the configuration (config file plus command-line overrides) for SIGHUP. */
typedef rh_err (*rh_mirror_reload_fn)(void *ctx, rh_mirror_config *out, rh_error *e);

/* Run until SIGTERM/SIGINT. cfg is taken over (cleaned up on return). reload may be NULL.
 * Returns RH_OK after a clean stop, or the start-up error (listen, TLS, data dir). */
rh_err rh_mirror_daemon_run(rh_mirror_config *cfg, rh_mirror_reload_fn reload, void *reload_ctx,
                            rh_error *e);

#endif
