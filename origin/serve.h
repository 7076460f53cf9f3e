/* serve.h -- `rhine-origin serve`: the repository over HTTP/2 and HTTP/1.1, timestamp refresh
 * with the online keys only, and push notifications to the mirrors. */
#ifndef RH_ORIGIN_SERVE_H
#define RH_ORIGIN_SERVE_H

/* Runs until SIGTERM/SIGINT. argv[0] is "serve". Returns the process exit status. */
int rh_origin_serve_main(int argc, char **argv);

#endif
